//! Router-level tests: AdmissionReview fixtures shaped like kube-apiserver's,
//! sent through the real axum router with `tower::ServiceExt::oneshot`.

use std::path::Path;

use axum::{Router, http::StatusCode};
use gitops_guard::{
    cluster::state_file::load as load_state,
    cluster::{
        breakglass::{BreakGlassSpec, Subject, SubjectKind},
        view::{ClusterView, Grant},
    },
    policy::Policy,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use prometheus::Registry;
use rstest::rstest;
use serde_json::Value;

use crate::common::{app, post};

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{name}.json"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A grant for group `sre` in `prod` that expires `offset` from now.
fn sre_grant(offset: jiff::SignedDuration) -> Grant {
    let now = jiff::Timestamp::now();
    let spec = BreakGlassSpec {
        subjects: vec![Subject {
            kind: SubjectKind::Group,
            name: "sre".into(),
        }],
        reason: "INC-7: rollback".into(),
        expires_at: Time(now.checked_add(offset).unwrap_or(now)),
        kinds: vec![],
        names: vec![],
    };
    Grant {
        name: "sre-incident".into(),
        spec,
        created: Some(now),
    }
}

fn app_with(grant: Option<Grant>) -> (Router, Registry) {
    let mut view = ClusterView::synced();
    let state = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cluster-state.yaml");
    if let Err(e) = load_state(&mut view, &Policy::default(), &state) {
        panic!("cluster state: {e}");
    }
    if let Some(grant) = grant {
        view.upsert_grant("prod".into(), grant);
    }
    app(view)
}

#[rstest]
#[case::human_kubectl_edit_of_a_flux_owned_deployment_is_denied(
    "edit-flux-deployment-by-human",
    false,
    "not-reconciler"
)]
#[case::the_reconcilers_server_side_apply_is_allowed(
    "apply-flux-deployment-by-reconciler",
    true,
    "reconciler"
)]
#[case::a_forged_field_manager_is_denied(
    "apply-flux-deployment-with-forged-field-manager",
    false,
    "forged-field-manager"
)]
#[case::removing_the_ownership_label_is_denied(
    "remove-ownership-label-by-human",
    false,
    "escape-hatch"
)]
#[case::a_spoofed_create_is_denied(
    "create-claiming-flux-ownership-by-human",
    false,
    "spoofed-ownership"
)]
#[case::a_human_delete_is_denied("delete-flux-deployment-by-human", false, "not-reconciler")]
#[case::the_reconcilers_prune_is_allowed("prune-flux-deployment-by-reconciler", true, "reconciler")]
#[case::the_garbage_collectors_delete_is_allowed(
    "delete-flux-deployment-by-garbage-collector",
    true,
    "system-actor"
)]
#[case::the_namespace_controllers_delete_is_allowed(
    "delete-flux-deployment-by-namespace-controller",
    true,
    "system-actor"
)]
#[case::the_reconcile_disable_annotation_is_denied(
    "disable-reconcile-annotation-by-human",
    false,
    "escape-hatch"
)]
#[case::human_kubectl_scale_is_denied("scale-flux-deployment-by-human", false, "not-reconciler")]
#[case::hpa_scale_is_allowed("scale-flux-deployment-by-hpa", true, "system-actor")]
#[case::a_status_update_is_allowed("update-status-by-human", true, "status-write")]
#[case::a_human_edit_of_a_helm_release_object_is_denied(
    "edit-helm-release-object-by-human",
    false,
    "not-reconciler"
)]
#[case::the_helm_controller_is_allowed(
    "apply-helm-release-object-by-helm-controller",
    true,
    "reconciler"
)]
#[case::a_human_edit_of_an_argo_cd_object_is_denied(
    "edit-argocd-object-by-human",
    false,
    "not-reconciler"
)]
#[case::the_argo_cd_controller_is_allowed("sync-argocd-object-by-controller", true, "reconciler")]
#[case::a_dry_run_edit_is_denied_like_a_real_one(
    "edit-flux-deployment-dry-run",
    false,
    "not-reconciler"
)]
#[case::an_unowned_deployment_is_anyones("edit-unowned-deployment-by-human", true, "unowned")]
#[case::without_a_grant_the_sre_is_denied("edit-flux-deployment-by-sre", false, "not-reconciler")]
#[tokio::test]
async fn fixtures_get_the_expected_decision(
    #[case] name: &str,
    #[case] allowed: bool,
    #[case] reason: &str,
) {
    let (app, registry) = app_with(None);
    let body = fixture(name);
    let uid = serde_json::from_slice::<Value>(&body)
        .map(|v| v["request"]["uid"].clone())
        .unwrap_or_default();
    let (status, review) = post(app, body, "application/json").await;
    assert_eq!(status, StatusCode::OK);
    let response = &review["response"];
    assert_eq!(response["uid"], uid, "the uid is copied back");
    assert_eq!(response["allowed"], allowed, "{review:#}");
    assert_eq!(response["auditAnnotations"]["reason"], reason, "{review:#}");
    let counted = registry.gather().iter().any(|family| {
        family.name() == "gitops_guard_admission_requests_total"
            && family
                .get_metric()
                .iter()
                .any(|m| m.get_label().iter().any(|l| l.value() == reason))
    });
    assert!(counted, "the decision is counted with reason {reason}");
}

#[tokio::test]
async fn warn_mode_allows_with_a_warning_kubectl_prints() {
    let (app, _) = app_with(None);
    let (_, review) = post(
        app,
        fixture("edit-flux-deployment-in-warn-namespace"),
        "application/json",
    )
    .await;
    assert_eq!(review["response"]["allowed"], true);
    let warning = review["response"]["warnings"][0]
        .as_str()
        .unwrap_or_default();
    assert!(
        warning.contains("Flux Kustomization flux-system/apps"),
        "{review:#}"
    );
}

#[tokio::test]
async fn a_live_break_glass_grant_lets_its_group_through_with_a_warning() {
    let (app, registry) = app_with(Some(sre_grant(jiff::SignedDuration::from_hours(1))));
    let (_, review) = post(
        app,
        fixture("edit-flux-deployment-by-sre"),
        "application/json",
    )
    .await;
    assert_eq!(review["response"]["allowed"], true, "{review:#}");
    assert_eq!(
        review["response"]["auditAnnotations"]["reason"],
        "break-glass"
    );
    let warning = review["response"]["warnings"][0]
        .as_str()
        .unwrap_or_default();
    assert!(warning.contains("sre-incident"), "{warning}");
    let uses = registry
        .gather()
        .iter()
        .filter(|f| f.name() == "gitops_guard_break_glass_uses_total")
        .count();
    assert_eq!(uses, 1, "break-glass use is counted");
}

#[tokio::test]
async fn an_expired_break_glass_grant_does_nothing() {
    let (app, _) = app_with(Some(sre_grant(jiff::SignedDuration::from_secs(-60))));
    let (_, review) = post(
        app,
        fixture("edit-flux-deployment-by-sre"),
        "application/json",
    )
    .await;
    assert_eq!(review["response"]["allowed"], false, "{review:#}");
}

#[tokio::test]
async fn dry_run_and_real_requests_get_the_same_answer() {
    let (app, _) = app_with(None);
    let (_, real) = post(
        app.clone(),
        fixture("edit-flux-deployment-by-human"),
        "application/json",
    )
    .await;
    let (_, dry) = post(
        app,
        fixture("edit-flux-deployment-dry-run"),
        "application/json",
    )
    .await;
    assert_eq!(real["response"]["allowed"], dry["response"]["allowed"]);
    assert_eq!(
        real["response"]["status"]["message"],
        dry["response"]["status"]["message"]
    );
}
