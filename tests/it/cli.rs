//! The binary as users run it: `check` exit codes and output, generated files
//! that must not go stale, and startup errors that name the bad flag or field.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub(crate) fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures").join(name)
}

fn guard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gitops-guard"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run gitops-guard: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `gitops-guard check` of `review` against the fixture cluster state.
pub(crate) fn check(review: &Path, extra: &[&str]) -> Output {
    let state = fixture("cluster-state.yaml");
    let mut args = vec![
        "check",
        "--cluster-state",
        state.to_str().unwrap_or_default(),
    ];
    args.extend_from_slice(extra);
    args.push(review.to_str().unwrap_or_default());
    guard(&args)
}

#[test]
fn the_checked_in_breakglass_crd_matches_the_rust_type() {
    let generated = guard(&["crd"]);
    assert!(generated.status.success());
    let checked_in =
        std::fs::read_to_string(root().join("manifests/crds/breakglass.yaml")).unwrap_or_default();
    assert_eq!(
        text(&generated.stdout),
        checked_in,
        "manifests/crds/breakglass.yaml is stale: run `make crd`"
    );
}

#[test]
fn check_exits_zero_for_an_allowed_review_and_prints_the_response() {
    let out = check(&fixture("apply-flux-deployment-by-reconciler.json"), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let review: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(review["response"]["allowed"], true);
}

#[test]
fn check_exits_one_for_a_denied_review_with_the_denial_message() {
    let out = check(&fixture("edit-flux-deployment-by-human.json"), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("may not change it"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn check_lets_a_derived_object_of_a_parent_in_the_state_through_and_refuses_a_forged_reference() {
    let derived = check(
        &fixture("create-endpointslice-by-endpointslice-controller.json"),
        &[],
    );
    assert_eq!(derived.status.code(), Some(0), "{}", text(&derived.stdout));
    let forged = check(
        &fixture("create-with-forged-owner-reference-by-ci.json"),
        &[],
    );
    assert_eq!(forged.status.code(), Some(1), "{}", text(&forged.stdout));
    assert!(
        text(&forged.stdout).contains("is not an object gitops-guard knows with that owner"),
        "{}",
        text(&forged.stdout)
    );
}

#[test]
fn check_exits_two_with_a_one_line_reason_for_invalid_input() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"apiVersion":"admission.k8s.io/v1"}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    let out = check(&bad, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr).trim().lines().count(),
        1,
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stderr).contains("no request"));
    assert!(out.stdout.is_empty());
}

#[test]
fn check_reads_yaml_reviews_and_a_break_glass_grant_from_the_state_file() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(fixture("edit-flux-deployment-by-sre.json")).unwrap_or_default(),
    )
    .unwrap_or_default();
    let review = dir.path().join("review.yaml");
    std::fs::write(&review, serde_saphyr::to_string(&json).unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    let grant = "apiVersion: gitops-guard.io/v1alpha1\nkind: BreakGlass\nmetadata: {name: inc-9, namespace: prod, \
                 creationTimestamp: \"2026-11-23T10:00:00Z\"}\nspec:\n  subjects: [{kind: Group, name: sre}]\n  \
                 reason: INC-9\n  expiresAt: \"2026-11-23T12:00:00Z\"\n";
    let state = dir.path().join("state.yaml");
    let base = std::fs::read_to_string(fixture("cluster-state.yaml")).unwrap_or_default();
    std::fs::write(&state, format!("{base}---\n{grant}")).unwrap_or_else(|e| panic!("{e}"));
    let run = |at: &str| {
        guard(&[
            "check",
            "--cluster-state",
            state.to_str().unwrap_or_default(),
            "--at",
            at,
            review.to_str().unwrap_or_default(),
        ])
    };
    assert_eq!(
        run("2026-11-23T11:00:00Z").status.code(),
        Some(0),
        "inside the grant"
    );
    assert_eq!(
        run("2026-11-23T12:00:01Z").status.code(),
        Some(1),
        "after it expired"
    );
}

#[test]
fn a_broken_policy_file_names_the_offending_field() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, "systemActors:\n- identity: a\n  jobs: [sclae]\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let out = check(
        &fixture("edit-flux-deployment-by-human.json"),
        &["--policy", policy.to_str().unwrap_or_default()],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("systemActors[0].jobs[0]") && err.contains("sclae"),
        "{err}"
    );
}

#[test]
fn serve_refuses_to_start_with_a_broken_certificate_and_names_the_flag() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert, "not a certificate").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&key, "not a key").unwrap_or_else(|e| panic!("{e}"));
    let out = guard(&[
        "serve",
        "--tls-cert",
        cert.to_str().unwrap_or_default(),
        "--tls-key",
        key.to_str().unwrap_or_default(),
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--tls-cert"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn serve_refuses_an_idle_timeout_shorter_than_the_header_read_timeout() {
    let out = guard(&[
        "serve",
        "--tls-cert",
        "/nonexistent/tls.crt",
        "--tls-key",
        "/nonexistent/tls.key",
        "--idle-timeout",
        "1s",
        "--header-read-timeout",
        "2s",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("--idle-timeout must be at least --header-read-timeout"),
        "{err}"
    );
}

#[test]
fn serve_refuses_to_start_with_a_broken_policy_and_names_the_field() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, "defaultMode: block\n").unwrap_or_else(|e| panic!("{e}"));
    let out = guard(&[
        "serve",
        "--tls-cert",
        "/nonexistent",
        "--tls-key",
        "/nonexistent",
        "--policy",
        policy.to_str().unwrap_or_default(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("defaultMode"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_printed_default_policy_is_a_valid_policy_file() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, guard(&["policy"]).stdout).unwrap_or_else(|e| panic!("{e}"));
    let out = check(
        &fixture("edit-flux-deployment-by-human.json"),
        &["--policy", policy.to_str().unwrap_or_default()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
}

/// Every `gitops_guard_*` name in the PrometheusRule and the dashboard is
/// one the source registers (histogram suffixes aside).
#[test]
fn the_monitoring_manifests_only_use_metrics_the_guard_exports() {
    fn names(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = text;
        while let Some(at) = rest.find("gitops_guard_") {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()))
                .unwrap_or(tail.len());
            out.push(tail[..end].to_owned());
            rest = &tail[end..];
        }
        out
    }
    let mut source = String::new();
    let mut dirs = vec![root().join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                source.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
            }
        }
    }
    let exported: Vec<String> = names(&source);
    let mut checked = 0;
    for file in [
        "manifests/monitoring/prometheusrule.yaml",
        "manifests/monitoring/dashboard.json",
    ] {
        let text = std::fs::read_to_string(root().join(file)).unwrap_or_default();
        for name in names(&text) {
            let base = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(&name);
            assert!(
                exported.iter().any(|e| e == base),
                "{file} uses {name}, which the guard does not export"
            );
            checked += 1;
        }
    }
    assert!(checked > 10, "only {checked} metric references found");
}

#[test]
fn cert_with_an_existing_ca_renews_the_leaf_and_keeps_the_ca_bundle() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));
    let path = |p: &Path| p.to_str().unwrap_or_default().to_owned();
    let made = guard(&["cert", "--out", &path(&first)]);
    assert_eq!(made.status.code(), Some(0), "{}", text(&made.stderr));
    let (ca_cert, ca_key) = (first.join("ca.crt"), first.join("ca.key"));
    let renewed = guard(&[
        "cert",
        "--out",
        &path(&second),
        "--ca-cert",
        &path(&ca_cert),
        "--ca-key",
        &path(&ca_key),
    ]);
    assert_eq!(renewed.status.code(), Some(0), "{}", text(&renewed.stderr));
    assert_eq!(renewed.stdout, made.stdout, "the same caBundle is printed");
    let read = |p: PathBuf| std::fs::read(p).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(read(second.join("ca.crt")), read(first.join("ca.crt")));
    assert_ne!(read(second.join("tls.crt")), read(first.join("tls.crt")));
    assert!(
        !second.join("ca.key").exists(),
        "the CA key stays where it was"
    );

    let half = guard(&[
        "cert",
        "--out",
        &path(&second),
        "--ca-cert",
        &path(&ca_cert),
    ]);
    assert_eq!(half.status.code(), Some(2));
    assert!(
        text(&half.stderr).contains("--ca-key"),
        "{}",
        text(&half.stderr)
    );
}

/// No Docker engine runs here, so the image's promises are checked where
/// they are written: every build is `--locked`, the last stage runs as the
/// numeric non-root user the Deployment's `runAsUser` expects.
#[test]
fn the_dockerfile_builds_locked_and_runs_as_the_deployments_non_root_user() {
    let read =
        |p: &str| std::fs::read_to_string(root().join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    let dockerfile = read("Dockerfile");
    let builds: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.contains("cargo build"))
        .collect();
    assert!(!builds.is_empty());
    for line in &builds {
        assert!(line.contains("--locked"), "not --locked: {line}");
    }
    // Cargo loads the whole workspace even to build one binary: every other
    // member's manifest must be in the dependency layer.
    let manifest: toml_members::Members = read("Cargo.toml")
        .parse()
        .unwrap_or_else(|e| panic!("Cargo.toml: {e}"));
    assert!(manifest.0.len() > 1, "a workspace of one? {:?}", manifest.0);
    for member in manifest.0.iter().filter(|m| *m != ".") {
        let copied = format!("COPY {member}/Cargo.toml");
        assert!(
            dockerfile.contains(&copied),
            "the Dockerfile does not {copied}"
        );
    }
    let last_stage = dockerfile.rsplit("\nFROM ").next().unwrap_or_default();
    let user = last_stage
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .unwrap_or_else(|| panic!("the final stage sets no USER"));
    let uid = user.split(':').next().unwrap_or_default();
    assert!(uid.parse::<u32>().is_ok_and(|u| u != 0), "USER {user}");
    let deployment = read("manifests/deployment.yaml");
    assert!(
        deployment.contains(&format!("runAsUser: {uid}"))
            && deployment.contains("runAsNonRoot: true"),
        "manifests/deployment.yaml does not run as {uid}"
    );
}

/// The `[workspace] members` of a Cargo.toml, read without a TOML parser:
/// the list is one line.
mod toml_members {
    pub struct Members(pub Vec<String>);

    impl std::str::FromStr for Members {
        type Err = String;

        fn from_str(text: &str) -> Result<Self, String> {
            let line = text
                .lines()
                .find_map(|l| l.strip_prefix("members = ["))
                .ok_or("no workspace members line")?;
            let list = line.trim_end().trim_end_matches(']');
            let members = list
                .split(',')
                .map(|m| m.trim().trim_matches('"').to_owned());
            Ok(Members(members.filter(|m| !m.is_empty()).collect()))
        }
    }
}
