//! `gitops-guard audit tenants` on a fixture RBAC set (two tenants as Flux's
//! guide sets them up, plus five mistakes), compared exactly, and every
//! tenant rule tried offline with `gitops-guard check --cluster-state`.

use std::{
    path::PathBuf,
    process::{Command, Output},
};

use serde_json::{Value, json};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn guard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gitops-guard"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run gitops-guard: {e}"))
}

fn read(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn audit(output: &str) -> Output {
    let state = fixture("tenants.yaml");
    guard(&[
        "audit",
        "tenants",
        "--cluster-state",
        &state.display().to_string(),
        "-o",
        output,
    ])
}

#[test]
fn the_audit_table_of_the_fixture_is_exactly_the_expected_one() {
    let out = audit("table");
    assert_eq!(out.status.code(), Some(1), "findings exit 1");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        read("tenants-audit.txt")
    );
}

#[test]
fn the_audit_json_of_the_fixture_is_exactly_the_expected_one() {
    let out = audit("json");
    assert_eq!(out.status.code(), Some(1));
    let got: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let want: Value = serde_json::from_str(&read("tenants-audit.json")).unwrap_or_default();
    assert_eq!(got, want);
    assert_ne!(want, Value::Null, "the expected file parses");
}

#[test]
fn minting_controller_tokens_and_forging_pod_bindings_are_reported() {
    let out = audit("table");
    let table = String::from_utf8_lossy(&out.stdout);
    for (identity, path) in [
        (
            "system:serviceaccount:flux-system:kustomize-controller",
            "mallory can act as it (serviceaccounts/token: mints its tokens)",
        ),
        (
            "system:serviceaccount:flux-system:kustomize-controller",
            "mallory can act as it (userextras: forges the Pod binding of its token)",
        ),
        (
            "system:serviceaccount:team-a:team-a",
            "alice can act as it (secrets: reads its legacy token Secrets)",
        ),
    ] {
        assert!(
            table
                .lines()
                .any(|l| l.contains(identity) && l.contains(path)),
            "{identity}: {path} missing from\n{table}"
        );
    }
}

#[test]
fn a_cluster_without_the_mistakes_has_no_findings_and_exits_0() {
    let clean: String = read("tenants.yaml")
        .split("\n---\n")
        .filter(|doc| !doc.contains("# Mistake"))
        .collect::<Vec<_>>()
        .join("\n---\n");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("clean.yaml");
    std::fs::write(&path, clean).unwrap_or_else(|e| panic!("{e}"));
    let out = guard(&[
        "audit",
        "tenants",
        "--cluster-state",
        &path.display().to_string(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.ends_with("no findings\n"), "{stdout}");
}

#[test]
fn an_unreadable_state_file_exits_2_naming_it() {
    let out = guard(&[
        "audit",
        "tenants",
        "--cluster-state",
        "/nonexistent/state.yaml",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/state.yaml"));
}

const KUSTOMIZE: &str = "system:serviceaccount:flux-system:kustomize-controller";
const TEAM_A: &str = "system:serviceaccount:team-a:team-a";
const TEAM_B: &str = "system:serviceaccount:team-b:team-b";
const BOUND: [(&str, &str); 2] = [
    (
        "authentication.kubernetes.io/pod-name",
        "kustomize-controller-0",
    ),
    (
        "authentication.kubernetes.io/pod-uid",
        "0e7d5a3c-1f2b-4c6d-8e9f-a0b1c2d3e4f5",
    ),
];

/// An AdmissionReview as the apiserver sends it.
fn review(op: &str, gvk: (&str, &str, &str), ns: &str, user: &str, object: Value) -> Value {
    let (group, kind, resource) = gvk;
    let extra: serde_json::Map<String, Value> = if user == KUSTOMIZE {
        BOUND
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!([v])))
            .collect()
    } else {
        serde_json::Map::new()
    };
    let old = if op == "UPDATE" {
        object.clone()
    } else {
        Value::Null
    };
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "3f9c2d1e-0000-4000-8000-000000000001",
        "kind": {"group": group, "version": "v1", "kind": kind},
        "resource": {"group": group, "version": "v1", "resource": resource},
        "name": object.pointer("/metadata/name").cloned().unwrap_or_default(),
        "namespace": ns, "operation": op,
        "userInfo": {"username": user, "groups": ["system:authenticated"], "extra": extra},
        "object": object, "oldObject": old, "dryRun": false}})
}

fn kustomization(ns: &str, spec: Value) -> Value {
    let object = json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": "apps", "namespace": ns}, "spec": spec});
    let gvk = (
        "kustomize.toolkit.fluxcd.io",
        "Kustomization",
        "kustomizations",
    );
    review("CREATE", gvk, ns, KUSTOMIZE, object)
}

fn configmap(ns: &str, user: &str) -> Value {
    let object = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings",
        "namespace": ns, "labels": {"kustomize.toolkit.fluxcd.io/name": "apps",
        "kustomize.toolkit.fluxcd.io/namespace": "team-a"}}});
    review("UPDATE", ("", "ConfigMap", "configmaps"), ns, user, object)
}

/// (exit code, the response's message) of `check` on one review.
fn check(review: &Value) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("review.json");
    std::fs::write(&path, review.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let state = fixture("tenants.yaml").display().to_string();
    let out = guard(&[
        "check",
        "--cluster-state",
        &state,
        &path.display().to_string(),
    ]);
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let message = answer
        .pointer("/response/status/message")
        .and_then(Value::as_str);
    (out.status.code(), message.unwrap_or_default().to_owned())
}

fn denied(review: &Value, fragment: &str) {
    let (code, message) = check(review);
    assert_eq!(code, Some(1), "expected a denial: {message}");
    assert!(
        message.contains(fragment),
        "{fragment:?} not in {message:?}"
    );
}

fn git(ns: Option<&str>) -> Value {
    match ns {
        Some(ns) => json!({"kind": "GitRepository", "name": "repo", "namespace": ns}),
        None => json!({"kind": "GitRepository", "name": "repo"}),
    }
}

#[test]
fn check_denies_a_tenant_kustomization_without_a_service_account() {
    let r = kustomization("team-a", json!({"sourceRef": git(None)}));
    denied(
        &r,
        "spec.serviceAccountName is required in tenant \"team-a\"",
    );
}

#[test]
fn check_denies_a_cross_tenant_source_ref() {
    let r = kustomization(
        "team-a",
        json!({"serviceAccountName": "team-a", "sourceRef": git(Some("team-b"))}),
    );
    denied(
        &r,
        "spec.sourceRef points to GitRepository team-b/repo, outside tenant \"team-a\"",
    );
}

#[test]
fn check_denies_a_foreign_target_namespace_and_a_kube_config() {
    let r = kustomization(
        "team-a",
        json!({"serviceAccountName": "team-a", "sourceRef": git(None),
        "targetNamespace": "team-b"}),
    );
    denied(
        &r,
        "spec.targetNamespace \"team-b\" is not a namespace of tenant \"team-a\"",
    );
    let r = kustomization(
        "team-a",
        json!({"serviceAccountName": "team-a", "sourceRef": git(None),
        "kubeConfig": {"secretRef": {"name": "prod"}}}),
    );
    denied(&r, "spec.kubeConfig is refused for tenants");
}

#[test]
fn check_denies_a_helm_release_storing_in_another_tenant() {
    let object = json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
        "metadata": {"name": "redis", "namespace": "team-a"}, "spec": {"serviceAccountName": "team-a",
        "storageNamespace": "team-b", "chart": {"spec": {"chart": "redis",
        "sourceRef": {"kind": "HelmRepository", "name": "bitnami", "namespace": "team-b"}}}}});
    let gvk = ("helm.toolkit.fluxcd.io", "HelmRelease", "helmreleases");
    let r = review("CREATE", gvk, "team-a", KUSTOMIZE, object);
    denied(&r, "spec.storageNamespace \"team-b\"");
    denied(
        &r,
        "spec.chart.spec.sourceRef points to HelmRepository team-b/bitnami",
    );
}

#[test]
fn check_allows_a_well_formed_tenant_kustomization() {
    let r = kustomization(
        "team-a",
        json!({"serviceAccountName": "team-a",
        "sourceRef": git(Some("flux-system"))}),
    );
    assert_eq!(check(&r).0, Some(0));
}

#[test]
fn check_lets_only_team_as_reconciler_write_team_as_objects() {
    assert_eq!(check(&configmap("team-a", TEAM_A)).0, Some(0));
    denied(
        &configmap("team-a", TEAM_B),
        "reconciles tenant \"team-b\" and may not write in namespace team-a",
    );
    denied(
        &configmap("team-a", KUSTOMIZE),
        "Only system:serviceaccount:team-a:team-a may write it",
    );
}

#[test]
fn check_stops_team_a_writing_into_team_b_whatever_rbac_says() {
    denied(
        &configmap("team-b", TEAM_A),
        "which belongs to tenant \"team-b\", whatever RBAC allows",
    );
}

#[test]
fn check_stops_a_tenant_reconciler_writing_cluster_scoped_objects() {
    let object = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "mine"}, "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"}});
    let gvk = (
        "rbac.authorization.k8s.io",
        "ClusterRoleBinding",
        "clusterrolebindings",
    );
    let r = review("CREATE", gvk, "", TEAM_A, object);
    denied(&r, "may not write cluster-scoped objects");
}

#[test]
fn check_flags_kustomize_controller_without_a_pod_bound_token() {
    let mut r = configmap("team-a", KUSTOMIZE);
    r["request"]["userInfo"]["extra"] = json!({});
    denied(&r, "carries no Pod-bound token");
}

#[test]
fn check_refuses_to_move_a_namespace_in_use_to_another_tenant() {
    let ns = |tenant: &str| {
        json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "team-a", "labels": {"toolkit.fluxcd.io/tenant": tenant}}})
    };
    let mut r = review(
        "UPDATE",
        ("", "Namespace", "namespaces"),
        "team-a",
        "alice",
        ns("team-b"),
    );
    r["request"]["oldObject"] = ns("team-a");
    denied(
        &r,
        "Namespace team-a is in use by tenant \"team-a\" (Kustomization team-a/apps lives there)",
    );
}
