//! The compatibility model, one sentence a case: Flux's and Argo CD's own
//! writes pass, and nothing rides along with them.

use jiff::Timestamp;
use rstest::rstest;
use serde_json::json;

use crate::{
    admission::{
        decision::{Decision, Outcome, Reason},
        review::decode,
    },
    cluster::view::{ClusterView, FluxObject, NamespaceFacts},
    guard::{decide, ownership::OwnerKind, test_support::*},
    policy::Policy,
};

const FINALIZER: &str = "finalizers.fluxcd.io";
const REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";

fn view() -> ClusterView {
    let mut v = ClusterView::synced();
    controller_pods(&mut v);
    for (name, mode) in [("prod", None), ("staging", Some("warn"))] {
        let labels = mode
            .map(|m: &str| ("gitops-guard.io/mode".to_owned(), m.to_owned()))
            .into_iter()
            .collect();
        let facts = NamespaceFacts {
            labels,
            terminating: false,
        };
        v.upsert_namespace(name.into(), facts);
    }
    // A HelmRelease that impersonates its namespace's account.
    let release = FluxObject {
        service_account: Some("deployer".into()),
        ..FluxObject::default()
    };
    v.upsert_flux(
        OwnerKind::HelmRelease,
        "prod".into(),
        "podinfo".into(),
        release.clone(),
    );
    v.upsert_flux(
        OwnerKind::Kustomization,
        "prod".into(),
        "tenant".into(),
        release,
    );
    v
}

fn applied() -> Obj {
    obj().owned_by_kustomization("flux-system", "flux-system")
}

fn source() -> Rev {
    Rev::update().kind(
        "source.toolkit.fluxcd.io",
        "GitRepository",
        "gitrepositories",
    )
}

fn kustomization() -> Rev {
    Rev::update().kind(
        "kustomize.toolkit.fluxcd.io",
        "Kustomization",
        "kustomizations",
    )
}

fn helm_chart(op: Rev) -> Rev {
    op.kind("source.toolkit.fluxcd.io", "HelmChart", "helmcharts")
}

fn ks_spec(suspend: bool, path: &str) -> serde_json::Value {
    json!({"suspend": suspend, "path": path, "sourceRef": {"kind": "GitRepository", "name": "fleet"}})
}

fn run_with(policy: &Policy, rev: Rev) -> Decision {
    let body = rev.body();
    match decode(&body) {
        Ok(req) => decide(policy, &view(), &req, Timestamp::UNIX_EPOCH),
        Err(e) => Decision::deny(Reason::ViewNotSynced, format!("test review invalid: {e}")),
    }
}

fn run(rev: Rev) -> Decision {
    run_with(&Policy::default(), rev)
}

#[rstest]
#[case::source_controller_may_add_its_finalizer_to_a_source_a_kustomization_applied(
    source().old(applied()).new_obj(applied().finalizer(FINALIZER)).by(SOURCE), Outcome::Allowed, Reason::KindController)]
#[case::source_controller_may_remove_its_finalizer(
    source().old(applied().finalizer(FINALIZER)).new_obj(applied()).by(SOURCE), Outcome::Allowed, Reason::KindController)]
#[case::source_controller_may_not_change_a_sources_spec(
    source().old(applied()).new_obj(applied().with_spec(json!({"url": "https://evil"}))).by(SOURCE),
    Outcome::Denied, Reason::NotReconciler)]
#[case::source_controller_may_not_add_a_finalizer_to_a_kind_it_does_not_serve(
    Rev::update().old(applied()).new_obj(applied().finalizer(FINALIZER)).by(SOURCE), Outcome::Denied, Reason::NotReconciler)]
#[case::source_controller_without_a_pod_bound_token_is_denied(
    source().old(applied()).new_obj(applied().finalizer(FINALIZER)).by_unbound(SOURCE), Outcome::Denied, Reason::ControllerToken)]
#[case::a_person_may_not_add_a_finalizer_to_an_owned_source(
    source().old(applied()).new_obj(applied().finalizer(FINALIZER)), Outcome::Denied, Reason::NotReconciler)]
#[case::helm_controller_may_add_its_finalizer_to_a_helm_release_a_kustomization_applied(
    Rev::update().kind("helm.toolkit.fluxcd.io", "HelmRelease", "helmreleases")
        .old(applied()).new_obj(applied().finalizer(FINALIZER)).by(HELM), Outcome::Allowed, Reason::KindController)]
#[case::kustomize_controller_may_add_its_finalizer_to_a_kustomization_a_tenant_applied(
    kustomization().old(obj().owned_by_kustomization("prod", "tenant"))
        .new_obj(obj().owned_by_kustomization("prod", "tenant").finalizer(FINALIZER)).by(KUSTOMIZE),
    Outcome::Allowed, Reason::KindController)]
#[case::anyone_may_request_a_reconciliation_with_flux_reconcile(
    kustomization().old(applied()).new_obj(applied().annotation(REQUESTED_AT, "2026-11-29T10:00:00Z")),
    Outcome::Allowed, Reason::ReconcileRequest)]
#[case::a_receivers_requested_at_in_go_time_format_is_a_reconciliation_request(
    source().old(applied().annotation(REQUESTED_AT, "a"))
        .new_obj(applied().annotation(REQUESTED_AT, "2026-11-29 10:00:00.1 +0000 UTC m=+1.2")),
    Outcome::Allowed, Reason::ReconcileRequest)]
#[case::flux_reconcile_hr_force_is_a_reconciliation_request(
    Rev::update().kind("helm.toolkit.fluxcd.io", "HelmRelease", "helmreleases").old(applied())
        .new_obj(applied().annotation(REQUESTED_AT, "t").annotation("reconcile.fluxcd.io/forceAt", "t")),
    Outcome::Allowed, Reason::ReconcileRequest)]
#[case::a_reconciliation_request_that_also_changes_the_spec_is_a_manual_change(
    kustomize_change(ks_spec(false, "./a"), ks_spec(false, "./b"), Some("t")),
    Outcome::Denied,
    Reason::NotReconciler
)]
#[case::requested_at_on_a_deployment_is_no_reconciliation_request(
    Rev::update().old(applied()).new_obj(applied().annotation(REQUESTED_AT, "t")), Outcome::Denied, Reason::NotReconciler)]
#[case::a_person_suspending_an_owned_kustomization_is_denied_in_enforce(
    kustomize_change(ks_spec(false, "./a"), ks_spec(true, "./a"), None),
    Outcome::Denied,
    Reason::Suspend
)]
#[case::a_person_resuming_an_owned_kustomization_is_denied_in_enforce(
    kustomize_change(ks_spec(true, "./a"), ks_spec(false, "./a"), Some("t")),
    Outcome::Denied,
    Reason::Suspend
)]
#[case::suspending_in_a_warn_namespace_is_warned(
    kustomize_change(ks_spec(false, "./a"), ks_spec(true, "./a"), None).namespace("staging"), Outcome::Warned, Reason::Suspend)]
#[case::helm_controller_may_create_the_helm_chart_of_a_release_that_impersonates(
    helm_chart(Rev::create()).new_obj(obj().owned_by_helm_release("prod", "podinfo")
        .with_spec(json!({"chart": "podinfo"}))).by(HELM), Outcome::Allowed, Reason::GeneratedObject)]
#[case::helm_controller_may_delete_that_helm_chart(
    helm_chart(Rev::delete()).old(obj().owned_by_helm_release("prod", "podinfo")).by(HELM),
    Outcome::Allowed, Reason::GeneratedObject)]
#[case::helm_controller_may_not_write_a_release_that_impersonates_its_deployment(
    Rev::update().both(obj().owned_by_helm_release("prod", "podinfo")).by(HELM), Outcome::Denied, Reason::NotReconciler)]
#[case::a_person_may_not_create_a_helm_chart_claiming_a_release(
    helm_chart(Rev::create()).new_obj(obj().owned_by_helm_release("prod", "podinfo")), Outcome::Denied, Reason::SpoofedOwnership)]
#[case::removing_an_ownership_label_is_never_a_kind_controllers_write(
    source().old(applied()).new_obj(obj().finalizer(FINALIZER)).by(SOURCE), Outcome::Denied, Reason::EscapeHatch)]
fn compatibility(#[case] rev: Rev, #[case] outcome: Outcome, #[case] reason: Reason) {
    let decision = run(rev);
    assert_eq!(
        (decision.outcome, decision.reason()),
        (outcome, reason),
        "{decision:?}"
    );
}

fn kustomize_change(
    old: serde_json::Value,
    new: serde_json::Value,
    requested: Option<&str>,
) -> Rev {
    let mut after = applied().with_spec(new);
    if let Some(at) = requested {
        after = after.annotation(REQUESTED_AT, at);
    }
    kustomization().old(applied().with_spec(old)).new_obj(after)
}

#[test]
fn the_suspend_denial_names_who_may_suspend() {
    let decision = run(kustomize_change(
        ks_spec(false, "./a"),
        ks_spec(true, "./a"),
        None,
    ));
    let Decision {
        outcome: Outcome::Denied,
        message,
        ..
    } = decision
    else {
        panic!("suspend allowed: {decision:?}");
    };
    assert!(message.contains("compatibility.suspend"), "{message}");
    assert!(message.contains("BreakGlass"), "{message}");
}

#[test]
fn policy_named_operators_may_suspend_in_enforce() {
    let mut policy = Policy::default();
    policy.compatibility.suspend.operator_groups = vec!["flux-operators".into()];
    let rev = kustomize_change(ks_spec(false, "./a"), ks_spec(true, "./a"), None);
    let decision = run_with(&policy, rev.groups(&["flux-operators"]));
    assert_eq!(decision, Decision::allow(Reason::Operator));
    let other = kustomize_change(ks_spec(false, "./a"), ks_spec(true, "./b"), None);
    let decision = run_with(&policy, other.groups(&["flux-operators"]));
    assert_eq!(
        decision.reason(),
        Reason::NotReconciler,
        "suspend plus a spec change"
    );
}

#[test]
fn an_allowance_covers_its_identity_kinds_and_paths_only() {
    let policy = Policy::from_yaml(
        r#"
compatibility:
  allowances:
    - name: cainjector
      users: [system:serviceaccount:cert-manager:cainjector]
      kinds: [{group: admissionregistration.k8s.io, kinds: [ValidatingWebhookConfiguration]}]
      paths: [/webhooks/*/clientConfig/caBundle]
"#,
        "test",
    )
    .expect("policy");
    let hooks = |field: &str, value: &str| {
        applied()
            .with_spec(json!(null))
            .annotation("x", "y")
            .with_webhook(field, value)
    };
    let rev = |new: Obj| {
        Rev::update()
            .kind(
                "admissionregistration.k8s.io",
                "ValidatingWebhookConfiguration",
                "validatingwebhookconfigurations",
            )
            .old(hooks("caBundle", "old"))
            .new_obj(new)
            .by("system:serviceaccount:cert-manager:cainjector")
    };
    let ca = run_with(&policy, rev(hooks("caBundle", "new")));
    assert_eq!(ca, Decision::allow(Reason::Allowance));
    let url = run_with(&policy, rev(hooks("url", "https://elsewhere")));
    assert_eq!(url.reason(), Reason::NotReconciler);
    let person = run_with(&policy, rev(hooks("caBundle", "new")).by("alice"));
    assert_eq!(person.reason(), Reason::NotReconciler);
}

#[test]
fn an_allowance_without_an_identity_is_refused_with_its_path() {
    let err = Policy::from_yaml(
        "compatibility: {allowances: [{name: x, kinds: [], paths: [/spec]}]}",
        "test",
    )
    .expect_err("no identity");
    assert!(
        err.to_string()
            .contains("compatibility.allowances[0].users"),
        "{err}"
    );
}
