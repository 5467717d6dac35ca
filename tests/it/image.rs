//! The image scripts/image.sh builds without Docker, against the
//! Dockerfile's final stage: same user, entrypoint, command, ports and
//! binary path; the same digest from the same binary; and a filesystem the
//! binary runs in alone.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use gitops_guard_testkit::registry::Registry;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn crane() -> PathBuf {
    let crane = root().join("tests/cluster/bin/crane");
    assert!(
        crane.exists(),
        "{} is missing: run tests/cluster/build-crane.sh",
        crane.display()
    );
    crane
}

fn ok(what: &str, out: Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Builds the image of the test build's binary; returns `repo@digest`.
fn build(reference: &str) -> String {
    let out = Command::new(root().join("scripts/image.sh"))
        .arg(reference)
        .arg(env!("CARGO_BIN_EXE_gitops-guard"))
        .output()
        .unwrap_or_else(|e| panic!("scripts/image.sh: {e}"));
    ok("scripts/image.sh", out)
}

/// What the Dockerfile's last stage declares.
#[derive(Debug, Default)]
struct FinalStage {
    user: String,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    ports: BTreeSet<String>,
    binary: String,
}

fn final_stage(dockerfile: &str) -> FinalStage {
    let lines: Vec<&str> = dockerfile.lines().collect();
    let last_from = lines
        .iter()
        .rposition(|l| l.starts_with("FROM "))
        .expect("the Dockerfile has a FROM");
    let mut stage = FinalStage::default();
    let exec_form = |rest: &str| -> Vec<String> {
        serde_json::from_str(rest).unwrap_or_else(|e| panic!("not an exec form {rest:?}: {e}"))
    };
    for line in &lines[last_from + 1..] {
        let (instruction, rest) = line.split_once(' ').unwrap_or((line, ""));
        match instruction {
            "USER" => stage.user = rest.trim().to_owned(),
            "ENTRYPOINT" => stage.entrypoint = exec_form(rest),
            "CMD" => stage.cmd = exec_form(rest),
            "EXPOSE" => stage.ports.extend(rest.split_whitespace().map(|p| {
                if p.contains('/') {
                    p.to_owned()
                } else {
                    format!("{p}/tcp")
                }
            })),
            "COPY" => {
                stage.binary = rest
                    .split_whitespace()
                    .last()
                    .unwrap_or_default()
                    .to_owned()
            }
            _ => {}
        }
    }
    stage
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_image_built_without_docker_is_the_dockerfiles_final_stage_and_reproducible() {
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).expect("Dockerfile");
    let want = final_stage(&dockerfile);
    assert_eq!(want.user, "65532:65532", "{want:?}");
    let registry = Registry::start(None).expect("a local registry");
    let reference = format!("{}/gitops-guard:test", registry.addr());
    let first = build(&reference);
    let second = build(&format!("{}/gitops-guard:again", registry.addr()));
    assert!(first.contains("@sha256:"), "{first}");
    assert_eq!(
        first.split_once('@').map(|(_, d)| d),
        second.split_once('@').map(|(_, d)| d),
        "the same binary built twice gave two digests"
    );

    let config: Value = serde_json::from_str(&ok(
        "crane config",
        Command::new(crane())
            .args(["config", &first])
            .output()
            .expect("crane"),
    ))
    .expect("image config is JSON");
    let got = &config["config"];
    assert_eq!(got["User"].as_str(), Some(want.user.as_str()));
    assert_eq!(strings(&got["Entrypoint"]), want.entrypoint);
    assert_eq!(strings(&got["Cmd"]), want.cmd);
    let ports: BTreeSet<String> = got["ExposedPorts"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    assert_eq!(ports, want.ports);
    assert_eq!(config["os"], "linux");
    assert_eq!(config["architecture"], "amd64");

    // The filesystem: export it and run the binary in it alone, as 65532.
    let dir = tempfile::tempdir().expect("tempdir");
    let tar = dir.path().join("fs.tar");
    ok(
        "crane export",
        Command::new(crane())
            .args(["export", &first])
            .arg(&tar)
            .output()
            .expect("crane"),
    );
    let fs = dir.path().join("fs");
    std::fs::create_dir(&fs).expect("mkdir");
    ok(
        "tar -x",
        Command::new("tar")
            .arg("-xf")
            .arg(&tar)
            .arg("-C")
            .arg(&fs)
            .output()
            .expect("tar"),
    );
    for path in [
        want.binary.as_str(),
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/passwd",
        "/tmp",
    ] {
        assert!(
            fs.join(path.trim_start_matches('/')).exists(),
            "{path} missing from the image"
        );
    }
    let passwd = std::fs::read_to_string(fs.join("etc/passwd")).expect("passwd");
    assert!(passwd.contains(":65532:65532:"), "{passwd}");
    runs_inside(&fs, &want.binary);
}

/// The binary starts from the image's own files (its libraries, nothing of
/// the host's), as the image's user: `chroot` needs root, which the test
/// machines are (`id -u`); say so plainly elsewhere.
fn runs_inside(fs: &Path, binary: &str) {
    let uid = ok("id -u", Command::new("id").arg("-u").output().expect("id"));
    assert_eq!(
        uid, "0",
        "this check runs the image's filesystem with chroot, which needs root"
    );
    let version = ok(
        "the binary inside the image",
        Command::new("chroot")
            .arg("--userspec=65532:65532")
            .arg(fs)
            .args([binary, "--version"])
            .output()
            .expect("chroot"),
    );
    assert!(version.starts_with("gitops-guard "), "{version}");
}
