//! `gitops-guard check --mutate`: the patch printed offline from a digests
//! file, and online against a real registry with --resolve.

use gitops_guard_testkit::registry;

use std::{path::PathBuf, process::Output};

const NGINX: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const MIGRATE: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mutate-deployment.json")
}

fn guard(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_gitops-guard"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run gitops-guard: {e}"))
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

fn digests(dir: &tempfile::TempDir, entries: &str) -> String {
    let path = dir.path().join("digests.yaml");
    std::fs::write(&path, entries).expect("write digests");
    path.display().to_string()
}

#[test]
fn check_mutate_prints_the_patch_from_a_digests_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = digests(
        &dir,
        &format!("nginx:1.27: {NGINX}\nghcr.io/example/migrate:v3: {MIGRATE}\n"),
    );
    let review = fixture();
    let out = guard(&[
        "check",
        "--mutate",
        "--pin-mode",
        "pin",
        "--digests",
        &file,
        review.to_str().unwrap_or(""),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer = json(&out);
    assert_eq!(answer["reason"], "pinned");
    assert_eq!(
        answer["patch"],
        serde_json::json!([
            {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": format!("nginx:1.27@{NGINX}")},
            {"op": "replace", "path": "/spec/template/spec/initContainers/0/image", "value": format!("ghcr.io/example/migrate:v3@{MIGRATE}")}
        ])
    );
}

#[test]
fn check_mutate_accepts_normalised_names_and_denies_a_missing_digest_in_require_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = digests(&dir, &format!("docker.io/library/nginx:1.27: {NGINX}\n"));
    let review = fixture();
    let out = guard(&[
        "check",
        "--mutate",
        "--pin-mode",
        "require",
        "--digests",
        &file,
        review.to_str().unwrap_or(""),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let message = json(&out)["message"].as_str().unwrap_or("").to_owned();
    assert!(message.contains("ghcr.io/example/migrate:v3"), "{message}");
}

#[test]
fn check_mutate_with_pinning_off_prints_an_empty_patch() {
    let review = fixture();
    let out = guard(&["check", "--mutate", review.to_str().unwrap_or("")]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["reason"], "off", "the policy default is off");
    assert_eq!(json(&out)["patch"], serde_json::json!([]));
}

#[test]
fn check_mutate_resolve_asks_the_registry() {
    let registry = registry::Registry::start(None).expect("registry");
    let digest = registry.push("tools/cli", "1", "cli").expect("push");
    let dir = tempfile::tempdir().expect("tempdir");
    let image = format!("{}/tools/cli:1", registry.addr());
    let text = std::fs::read_to_string(fixture())
        .expect("fixture")
        .replace("ghcr.io/example/migrate:v3", &image)
        .replace("\"nginx:1.27\"", &format!("\"{image}\""));
    let review = dir.path().join("review.json");
    std::fs::write(&review, text).expect("write review");
    let policy = dir.path().join("policy.yaml");
    let config = format!(
        "images:\n  registries:\n    \"{}\": {{plainHttp: true}}\n",
        registry.addr()
    );
    std::fs::write(&policy, config).expect("write policy");
    let out = guard(&[
        "check",
        "--mutate",
        "--resolve",
        "--pin-mode",
        "require",
        "--policy",
        policy.to_str().unwrap_or(""),
        review.to_str().unwrap_or(""),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(json(&out)["patch"][0]["value"], format!("{image}@{digest}"));
}

#[test]
fn check_mutate_with_a_bad_digests_file_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = digests(&dir, "- not\n- a map\n");
    let review = fixture();
    let out = guard(&[
        "check",
        "--mutate",
        "--pin-mode",
        "pin",
        "--digests",
        &file,
        review.to_str().unwrap_or(""),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected a map of image to digest"));
}
