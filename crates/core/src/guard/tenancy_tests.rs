//! The tenant rules, one sentence a case, on two tenants set up the way
//! Flux's multi-tenancy guide does.

use jiff::Timestamp;
use rstest::rstest;
use serde_json::{Value, json};

use super::{decide, test_support::*};
use crate::{
    admission::{
        decision::{Decision, Outcome, Reason},
        review::decode,
    },
    cluster::view::{ClusterView, FluxObject, NamespaceFacts},
    guard::ownership::OwnerKind,
    policy::Policy,
    tenancy::settings::OnViolation,
};

const TEAM_A: &str = "system:serviceaccount:team-a:team-a";
const TEAM_B: &str = "system:serviceaccount:team-b:team-b";
const TENANT: &str = "toolkit.fluxcd.io/tenant";

fn namespace(v: &mut ClusterView, name: &str, tenant: Option<&str>) {
    let labels = tenant
        .map(|t| (TENANT.to_owned(), t.to_owned()))
        .into_iter();
    let facts = NamespaceFacts {
        labels: labels.collect(),
        terminating: false,
    };
    v.upsert_namespace(name.into(), facts);
}

fn kustomization(v: &mut ClusterView, ns: &str, name: &str, sa: Option<&str>) {
    let object = FluxObject {
        service_account: sa.map(str::to_owned),
        ..FluxObject::default()
    };
    v.upsert_flux(OwnerKind::Kustomization, ns.into(), name.into(), object);
}

/// team-a: namespaces team-a and team-a-apps; team-b: team-b; flux-system
/// shared; prod belongs to no tenant.
fn tenants() -> ClusterView {
    let mut v = ClusterView::synced();
    controller_pods(&mut v);
    namespace(&mut v, "team-a", Some("team-a"));
    namespace(&mut v, "team-a-apps", Some("team-a"));
    namespace(&mut v, "team-b", Some("team-b"));
    namespace(&mut v, "flux-system", None);
    namespace(&mut v, "prod", None);
    namespace(&mut v, "empty", Some("team-a"));
    let warn = NamespaceFacts {
        labels: [("gitops-guard.io/mode".to_owned(), "warn".to_owned())].into(),
        terminating: false,
    };
    v.upsert_namespace("staging".into(), warn);
    for (ns, sa) in [("team-a", "team-a"), ("team-b", "team-b")] {
        v.identities.upsert_service_account(ns.into(), sa.into());
    }
    kustomization(&mut v, "team-a", "apps", Some("team-a"));
    kustomization(&mut v, "team-a", "legacy", None);
    kustomization(&mut v, "team-b", "apps", Some("team-b"));
    kustomization(&mut v, "team-a-apps", "web", Some("team-a"));
    namespace(&mut v, "team-a-target", Some("team-a"));
    let targeting = FluxObject {
        service_account: Some("team-a".into()),
        targets: vec!["team-a-target".into()],
        ..FluxObject::default()
    };
    v.upsert_flux(
        OwnerKind::Kustomization,
        "team-a".into(),
        "deploy".into(),
        targeting,
    );
    v
}

fn run_with(policy: &Policy, rev: Rev, view: &ClusterView) -> Decision {
    let body = rev.body();
    match decode(&body) {
        Ok(req) => decide(policy, view, &req, Timestamp::UNIX_EPOCH),
        Err(e) => Decision::deny(Reason::ViewNotSynced, format!("test review invalid: {e}")),
    }
}

fn run(rev: Rev) -> Decision {
    run_with(&Policy::default(), rev, &tenants())
}

/// A Kustomization written in `ns` by team-a's platform reconciler.
fn ks(ns: &str, spec: Value) -> Rev {
    Rev::new("CREATE", "Kustomization", "kustomizations")
        .kind(
            "kustomize.toolkit.fluxcd.io",
            "Kustomization",
            "kustomizations",
        )
        .namespace(ns)
        .new_obj(obj())
        .spec(spec)
        .by(KUSTOMIZE)
}

fn hr(ns: &str, spec: Value) -> Rev {
    Rev::new("CREATE", "HelmRelease", "helmreleases")
        .kind("helm.toolkit.fluxcd.io", "HelmRelease", "helmreleases")
        .namespace(ns)
        .new_obj(obj())
        .spec(spec)
        .by(KUSTOMIZE)
}

fn git() -> Value {
    json!({"kind": "GitRepository", "name": "repo"})
}

fn owned_by_team_a() -> Obj {
    obj().owned_by_kustomization("team-a", "apps")
}

fn configmap(ns: &str) -> Rev {
    Rev::new("UPDATE", "ConfigMap", "configmaps").namespace(ns)
}

#[rstest]
#[case::a_tenant_kustomization_without_a_service_account_is_denied(
    ks("team-a", json!({"sourceRef": git(), "path": "./"})), Outcome::Denied, Reason::TenantSpec)]
#[case::a_tenant_kustomization_impersonating_its_service_account_is_allowed(
    ks("team-a", json!({"serviceAccountName": "team-a", "sourceRef": git()})), Outcome::Allowed, Reason::Unowned)]
#[case::a_source_in_another_tenant_is_refused(
    ks("team-a", json!({"serviceAccountName": "team-a",
        "sourceRef": {"kind": "GitRepository", "name": "repo", "namespace": "team-b"}})), Outcome::Denied, Reason::TenantSpec)]
#[case::a_source_in_a_shared_namespace_is_allowed(
    ks("team-a", json!({"serviceAccountName": "team-a",
        "sourceRef": {"kind": "GitRepository", "name": "fleet", "namespace": "flux-system"}})), Outcome::Allowed, Reason::Unowned)]
#[case::a_source_in_another_namespace_of_the_same_tenant_is_allowed(
    ks("team-a", json!({"serviceAccountName": "team-a",
        "sourceRef": {"kind": "GitRepository", "name": "repo", "namespace": "team-a-apps"}})), Outcome::Allowed, Reason::Unowned)]
#[case::a_foreign_target_namespace_is_refused(
    ks("team-a", json!({"serviceAccountName": "team-a", "sourceRef": git(), "targetNamespace": "team-b"})),
    Outcome::Denied, Reason::TenantSpec)]
#[case::a_target_namespace_outside_any_tenant_is_refused(
    ks("team-a", json!({"serviceAccountName": "team-a", "sourceRef": git(), "targetNamespace": "prod"})),
    Outcome::Denied, Reason::TenantSpec)]
#[case::a_target_namespace_of_the_same_tenant_is_allowed(
    ks("team-a", json!({"serviceAccountName": "team-a", "sourceRef": git(), "targetNamespace": "team-a-apps"})),
    Outcome::Allowed, Reason::Unowned)]
#[case::a_kube_config_is_refused_for_tenants(
    ks("team-a", json!({"serviceAccountName": "team-a", "sourceRef": git(),
        "kubeConfig": {"secretRef": {"name": "remote"}}})), Outcome::Denied, Reason::TenantSpec)]
#[case::a_helm_chart_from_another_tenant_is_refused(
    hr("team-a", json!({"serviceAccountName": "team-a", "chart": {"spec": {"chart": "redis",
        "sourceRef": {"kind": "HelmRepository", "name": "charts", "namespace": "team-b"}}}})), Outcome::Denied, Reason::TenantSpec)]
#[case::a_chart_ref_to_another_tenant_is_refused(
    hr("team-a", json!({"serviceAccountName": "team-a",
        "chartRef": {"kind": "OCIRepository", "name": "redis", "namespace": "team-b"}})), Outcome::Denied, Reason::TenantSpec)]
#[case::a_foreign_storage_namespace_is_refused(
    hr("team-a", json!({"serviceAccountName": "team-a", "storageNamespace": "team-b",
        "chart": {"spec": {"chart": "redis", "sourceRef": {"kind": "HelmRepository", "name": "charts"}}}})),
    Outcome::Denied, Reason::TenantSpec)]
#[case::an_image_update_automation_committing_to_another_tenants_repository_is_refused(
    Rev::new("CREATE", "ImageUpdateAutomation", "imageupdateautomations")
        .kind("image.toolkit.fluxcd.io", "ImageUpdateAutomation", "imageupdateautomations")
        .namespace("team-a").new_obj(obj())
        .spec(json!({"sourceRef": {"kind": "GitRepository", "name": "fleet", "namespace": "team-b"}})).by(KUSTOMIZE),
    Outcome::Denied, Reason::TenantSpec)]
#[case::an_image_policy_reading_another_tenants_repository_is_refused(
    Rev::new("CREATE", "ImagePolicy", "imagepolicies").kind("image.toolkit.fluxcd.io", "ImagePolicy", "imagepolicies")
        .namespace("team-a").new_obj(obj())
        .spec(json!({"imageRepositoryRef": {"name": "web", "namespace": "team-b"}})).by(KUSTOMIZE),
    Outcome::Denied, Reason::TenantSpec)]
#[case::an_image_policy_in_its_own_tenant_is_allowed(
    Rev::new("CREATE", "ImagePolicy", "imagepolicies").kind("image.toolkit.fluxcd.io", "ImagePolicy", "imagepolicies")
        .namespace("team-a").new_obj(obj())
        .spec(json!({"imageRepositoryRef": {"name": "web"}})).by(KUSTOMIZE),
    Outcome::Allowed, Reason::Unowned)]
#[case::a_kustomization_outside_any_tenant_needs_no_service_account(
    ks("prod", json!({"sourceRef": git()})), Outcome::Allowed, Reason::Unowned)]
#[case::team_a_reconciler_writes_team_a_objects(
    configmap("team-a").both(owned_by_team_a()).by(TEAM_A), Outcome::Allowed, Reason::Reconciler)]
#[case::a_client_certificate_named_like_team_as_reconciler_is_not_it(
    configmap("team-a").both(owned_by_team_a()).by_certificate(TEAM_A), Outcome::Denied, Reason::NotReconciler)]
#[case::team_b_reconciler_may_not_write_team_a_objects(
    configmap("team-a").both(owned_by_team_a()).by(TEAM_B), Outcome::Denied, Reason::TenantEscape)]
#[case::the_controller_identity_may_not_write_team_a_objects(
    configmap("team-a").both(owned_by_team_a()).by(KUSTOMIZE), Outcome::Denied, Reason::NotReconciler)]
#[case::team_a_reconciler_may_not_write_into_team_b_whatever_rbac_says(
    configmap("team-b").both(owned_by_team_a()).by(TEAM_A), Outcome::Denied, Reason::TenantEscape)]
#[case::team_a_reconciler_may_not_write_outside_any_tenant(
    configmap("prod").both(obj()).by(TEAM_A), Outcome::Denied, Reason::TenantEscape)]
#[case::team_a_reconciler_may_not_write_cluster_scoped_objects(
    Rev::new("CREATE", "ClusterRole", "clusterroles").kind("rbac.authorization.k8s.io", "ClusterRole", "clusterroles")
        .namespace("").new_obj(owned_by_team_a()).by(TEAM_A), Outcome::Denied, Reason::TenantEscape)]
#[case::team_a_reconciler_may_not_create_namespaces(
    Rev::new("CREATE", "Namespace", "namespaces").namespace("team-a-new").new_obj(owned_by_team_a()).by(TEAM_A),
    Outcome::Denied, Reason::TenantEscape)]
#[case::an_owner_impersonating_no_service_account_lets_nobody_write_in_a_tenant(
    configmap("team-a").both(obj().owned_by_kustomization("team-a", "legacy")).by(KUSTOMIZE), Outcome::Denied, Reason::NotReconciler)]
#[case::an_owner_missing_from_the_cluster_lets_nobody_write_in_a_tenant(
    configmap("team-a").both(obj().owned_by_kustomization("team-a", "gone")).by(KUSTOMIZE), Outcome::Denied, Reason::NotReconciler)]
#[case::a_human_posing_as_kustomize_controller_without_a_pod_token_is_denied(
    configmap("prod").both(obj()).by_unbound(KUSTOMIZE), Outcome::Denied, Reason::ControllerToken)]
#[case::a_controller_token_bound_to_an_unknown_pod_is_denied(
    configmap("prod").both(obj()).by_unbound(KUSTOMIZE)
        .extra("authentication.kubernetes.io/pod-name", "debug-pod"), Outcome::Denied, Reason::ControllerToken)]
#[case::a_controller_token_bound_to_another_accounts_pod_is_denied(
    configmap("prod").both(obj()).by_unbound(KUSTOMIZE)
        .extra("authentication.kubernetes.io/pod-name", "helm-controller-0"), Outcome::Denied, Reason::ControllerToken)]
#[case::a_controller_token_with_a_stale_pod_uid_is_denied(
    configmap("prod").both(obj()).by(KUSTOMIZE)
        .extra("authentication.kubernetes.io/pod-uid", "uid-of-a-deleted-pod"), Outcome::Denied, Reason::ControllerToken)]
#[case::a_pod_name_without_a_pod_uid_is_no_pod_bound_token(
    configmap("prod").both(obj()).by_unbound(KUSTOMIZE)
        .extra("authentication.kubernetes.io/pod-name", "kustomize-controller-0"), Outcome::Denied, Reason::ControllerToken)]
#[case::posing_as_kustomize_controller_is_denied_in_a_warn_namespace_too(
    configmap("staging").both(obj()).by_unbound(KUSTOMIZE), Outcome::Denied, Reason::ControllerToken)]
#[case::team_a_reconciler_writing_into_a_warn_namespace_is_denied(
    configmap("staging").both(obj()).by(TEAM_A), Outcome::Denied, Reason::TenantEscape)]
#[case::a_controller_with_its_pod_bound_token_passes(
    configmap("prod").both(obj()).by(KUSTOMIZE), Outcome::Allowed, Reason::Unowned)]
#[case::a_human_in_a_tenant_namespace_is_judged_by_ownership(
    configmap("team-a").both(owned_by_team_a()), Outcome::Denied, Reason::NotReconciler)]
#[case::moving_a_namespace_in_use_to_another_tenant_is_denied(
    Rev::new("UPDATE", "Namespace", "namespaces").namespace("team-a-apps").named("team-a-apps").both(obj())
        .old_labels(json!({TENANT: "team-a"})).new_labels(json!({TENANT: "team-b"})), Outcome::Denied, Reason::TenantRelabel)]
#[case::removing_the_tenant_of_a_namespace_in_use_is_denied(
    Rev::new("UPDATE", "Namespace", "namespaces").namespace("team-a-apps").named("team-a-apps").both(obj())
        .old_labels(json!({TENANT: "team-a"})).new_labels(json!({})), Outcome::Denied, Reason::TenantRelabel)]
#[case::moving_a_namespace_a_tenant_only_targets_to_another_tenant_is_denied(
    Rev::new("UPDATE", "Namespace", "namespaces").namespace("team-a-target").named("team-a-target").both(obj())
        .old_labels(json!({TENANT: "team-a"})).new_labels(json!({TENANT: "team-b"})), Outcome::Denied, Reason::TenantRelabel)]
#[case::an_unused_namespace_may_change_tenant(
    Rev::new("UPDATE", "Namespace", "namespaces").namespace("empty").named("empty").both(obj())
        .old_labels(json!({TENANT: "team-a"})).new_labels(json!({TENANT: "team-b"})), Outcome::Allowed, Reason::Unowned)]
fn tenant_rules_hold(#[case] rev: Rev, #[case] outcome: Outcome, #[case] reason: Reason) {
    let decision = run(rev);
    assert_eq!(
        (decision.outcome, decision.reason()),
        (outcome, reason),
        "{decision:?}"
    );
}

fn denial(decision: Decision) -> String {
    match decision.outcome {
        Outcome::Denied => decision.message,
        _ => format!("not denied: {decision:?}"),
    }
}

#[test]
fn every_broken_rule_is_listed_with_its_field() {
    let spec = json!({"sourceRef": {"kind": "GitRepository", "name": "repo", "namespace": "team-b"},
                      "targetNamespace": "prod", "kubeConfig": {"secretRef": {"name": "x"}}});
    let message = denial(run(ks("team-a", spec)));
    for field in [
        "spec.serviceAccountName is required in tenant \"team-a\"",
        "spec.sourceRef points to GitRepository team-b/repo, outside tenant \"team-a\" (it belongs to tenant \"team-b\")",
        "spec.targetNamespace \"prod\" is not a namespace of tenant \"team-a\"",
        "spec.kubeConfig is refused for tenants",
    ] {
        assert!(
            message.contains(field),
            "{field:?} missing from:\n{message}"
        );
    }
}

#[test]
fn a_default_service_account_stands_in_like_flux_default_service_account() {
    let mut policy = Policy::default();
    policy.tenancy.default_service_account = Some("team-a".into());
    let rev = ks("team-a", json!({"sourceRef": git()}));
    let decision = run_with(&policy, rev, &tenants());
    assert!(decision.is_allowed(), "{decision:?}");
    // ... and it is the identity that may write for an owner naming none.
    let rev = configmap("team-a")
        .both(obj().owned_by_kustomization("team-a", "legacy"))
        .by(TEAM_A);
    assert_eq!(
        run_with(&policy, rev, &tenants()).reason(),
        Reason::Reconciler
    );
}

#[test]
fn a_missing_service_account_warns_by_default_and_denies_when_configured() {
    let spec = json!({"serviceAccountName": "ghost", "sourceRef": git()});
    let decision = run(ks("team-a", spec.clone()));
    assert!(
        decision.is_allowed(),
        "a missing service account is only a warning by default"
    );
    let warnings = decision.warnings;
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("team-a/ghost, which does not exist")),
        "{warnings:?}"
    );
    let mut policy = Policy::default();
    policy.tenancy.missing_service_account = OnViolation::Deny;
    let message = denial(run_with(&policy, ks("team-a", spec), &tenants()));
    assert!(
        message.contains("team-a/ghost, which does not exist"),
        "{message}"
    );
}

#[test]
fn controller_tokens_can_be_warned_about_or_left_unchecked() {
    let rev = || configmap("prod").both(obj()).by_unbound(KUSTOMIZE);
    let mut policy = Policy::default();
    policy.tenancy.controller_tokens = OnViolation::Warn;
    let decision = run_with(&policy, rev(), &tenants());
    assert!(decision.is_allowed(), "warn lets the request through");
    let warnings = decision.warnings;
    assert!(
        warnings.iter().any(|w| w.contains("no Pod-bound token")),
        "{warnings:?}"
    );
    policy.tenancy.controller_tokens = OnViolation::Off;
    assert!(run_with(&policy, rev(), &tenants()).is_allowed());
}

#[test]
fn the_escape_denial_names_both_tenants() {
    let message = denial(run(configmap("team-b").both(owned_by_team_a()).by(TEAM_A)));
    assert_eq!(
        message,
        "system:serviceaccount:team-a:team-a reconciles tenant \"team-a\" and may not write in \
         namespace team-b, which belongs to tenant \"team-b\", whatever RBAC allows."
    );
}

#[test]
fn nothing_is_decided_before_the_view_is_synced() {
    let mut view = tenants();
    view.set_synced(false);
    let rev = configmap("team-a").both(owned_by_team_a()).by(TEAM_A);
    let decision = run_with(&Policy::default(), rev, &view);
    assert_eq!(
        (decision.outcome, decision.reason()),
        (Outcome::Denied, Reason::ViewNotSynced)
    );
}

/// `/scale` carries no labels, so the parent in the view names the owner;
/// the writer must still be the reconciler by its credential, not by a
/// certificate's common name.
#[rstest]
#[case::team_as_reconciler_may_scale_its_deployment(Rev::scale().namespace("team-a").by(TEAM_A), Outcome::Allowed, Reason::Reconciler)]
#[case::a_client_certificate_named_like_team_as_reconciler_may_not_scale_it(
    Rev::scale().namespace("team-a").by_certificate(TEAM_A), Outcome::Denied, Reason::NotReconciler)]
fn scaling_a_tenant_deployment_needs_its_reconciler(
    #[case] rev: Rev,
    #[case] outcome: Outcome,
    #[case] reason: Reason,
) {
    use crate::cluster::view::{ParentKind, ParentMeta};
    let mut view = tenants();
    let web = ParentMeta {
        uid: "d1".into(),
        labels: [
            ("kustomize.toolkit.fluxcd.io/name".into(), "apps".into()),
            (
                "kustomize.toolkit.fluxcd.io/namespace".into(),
                "team-a".into(),
            ),
        ]
        .into_iter()
        .collect(),
        annotations: Default::default(),
    };
    let deployments = ParentKind::new("apps", "v1", "Deployment", "deployments");
    view.upsert_parent(&deployments, "team-a".into(), "web".into(), web);
    let decision = run_with(&Policy::default(), rev, &view);
    assert_eq!(
        (decision.outcome, decision.reason()),
        (outcome, reason),
        "{decision:?}"
    );
}
