//! Drift detection, one sentence a case.

use std::sync::Arc;

use rstest::rstest;

use super::*;
use crate::guard::ownership::{Owner, OwnerKind};

fn entry(manager: &str, operation: &str, time: i64) -> ManagerEntry {
    ManagerEntry {
        manager: Arc::from(manager),
        operation: Arc::from(operation),
        time: Some(time),
        fields: vec!["spec.replicas".into()],
    }
}

fn record(managers: Vec<ManagerEntry>) -> Record {
    Record {
        owner: Owner {
            kind: OwnerKind::Kustomization,
            namespace: "flux-system".into(),
            name: "apps".into(),
        },
        managers,
    }
}

fn flux() -> Vec<String> {
    vec!["kustomize-controller".into()]
}

fn system() -> Vec<String> {
    vec!["kube-controller-manager".into()]
}

#[rstest]
#[case::only_the_reconciler_wrote_it(vec![entry("kustomize-controller", "Apply", 100)], None)]
#[case::a_kubectl_edit_after_the_reconciler_is_drift(
    vec![entry("kustomize-controller", "Apply", 100), entry("kubectl-edit", "Update", 200)],
    Some("kubectl-edit")
)]
#[case::the_reconciler_writing_again_resolves_it(
    vec![entry("kubectl-edit", "Update", 200), entry("kustomize-controller", "Apply", 300)],
    None
)]
#[case::a_change_in_the_same_second_goes_to_the_reconciler(
    vec![entry("kubectl-scale", "Update", 100), entry("kustomize-controller", "Apply", 100)],
    None
)]
#[case::system_controllers_are_not_drift(
    vec![entry("kustomize-controller", "Apply", 100), entry("kube-controller-manager", "Update", 200)],
    None
)]
#[case::the_latest_foreign_manager_is_named(
    vec![entry("kustomize-controller", "Apply", 100), entry("kubectl-edit", "Update", 150), entry("kubectl-patch", "Update", 250)],
    Some("kubectl-patch")
)]
#[case::an_object_the_reconciler_never_wrote_is_drift_when_someone_else_did(
    vec![entry("kubectl-client-side-apply", "Update", 50)],
    Some("kubectl-client-side-apply")
)]
fn drift_follows_the_latest_writer(
    #[case] managers: Vec<ManagerEntry>,
    #[case] expected: Option<&str>,
) {
    let found = detect(&record(managers), &flux(), &system());
    assert_eq!(found.as_ref().map(|d| d.manager.as_str()), expected);
}

#[test]
fn a_scale_entry_without_a_time_is_drift_while_it_lasts() {
    let mut scale = entry("kubectl", "Update", 0);
    scale.time = None;
    let found = detect(
        &record(vec![entry("kustomize-controller", "Apply", 100), scale]),
        &flux(),
        &system(),
    );
    assert_eq!(
        found.map(|d| (d.manager, d.at)),
        Some(("kubectl".to_owned(), None))
    );
}

#[test]
fn a_drift_carries_operation_time_and_fields() {
    let found = detect(
        &record(vec![
            entry("kustomize-controller", "Apply", 100),
            entry("kubectl-edit", "Update", 200),
        ]),
        &flux(),
        &system(),
    )
    .expect("drift");
    assert_eq!(found.operation, "Update");
    assert_eq!(found.at, Some(200));
    assert_eq!(found.fields, ["spec.replicas"]);
}

#[test]
fn field_paths_read_fields_v1_and_skip_metadata() {
    let tree = serde_json::json!({
        "f:metadata": {"f:labels": {"f:app": {}}},
        "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}}}}}}
    });
    let paths = crate::drift::record::field_paths(&tree);
    assert_eq!(
        paths,
        ["spec.replicas", "spec.template.spec.containers[].image"]
    );
}

#[test]
fn malformed_or_huge_fields_v1_is_trimmed_without_failing() {
    use crate::drift::record::field_paths;
    assert!(field_paths(&serde_json::json!(42)).is_empty());
    assert!(field_paths(&serde_json::json!({"garbage": [1, 2]})).is_empty());
    let mut deep = serde_json::json!({});
    for _ in 0..200 {
        deep = serde_json::json!({ "f:x": deep });
    }
    let paths = field_paths(&deep);
    assert_eq!(paths.len(), 1, "one path, cut at the depth limit");
    let wide: serde_json::Map<String, serde_json::Value> = (0..10_000)
        .map(|i| (format!("f:field{i}"), serde_json::json!({})))
        .collect();
    let mut spec = serde_json::Map::new();
    spec.insert("f:spec".into(), serde_json::Value::Object(wide));
    assert_eq!(
        field_paths(&serde_json::Value::Object(spec)).len(),
        5,
        "at most five fields kept"
    );
}

#[test]
fn a_status_entry_that_owns_metadata_is_kept_and_a_plain_one_dropped() {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
        FieldsV1, ManagedFieldsEntry, ObjectMeta,
    };
    let status = |manager: &str, fields: serde_json::Value| ManagedFieldsEntry {
        manager: Some(manager.into()),
        operation: Some("Update".into()),
        subresource: Some("status".into()),
        fields_v1: Some(FieldsV1(fields)),
        ..ManagedFieldsEntry::default()
    };
    let meta = ObjectMeta {
        managed_fields: Some(vec![
            status(
                "kube-controller-manager",
                serde_json::json!({"f:status": {"f:replicas": {}}}),
            ),
            status(
                "kubectl-patch",
                serde_json::json!({"f:metadata": {"f:annotations": {"f:nginx.ingress.kubernetes.io/auth-url": {}}}}),
            ),
        ]),
        ..ObjectMeta::default()
    };
    let kept: Vec<_> = crate::drift::record::managers(&meta)
        .into_iter()
        .map(|m| m.manager.to_string())
        .collect();
    assert_eq!(kept, ["kubectl-patch"]);
}
