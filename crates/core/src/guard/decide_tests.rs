//! Every rule of `decide`, one sentence a case.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use rstest::rstest;

use super::{decide, ownership::OwnerKind, test_support::*};
use crate::{
    admission::{
        decision::{Decision, Outcome, Reason},
        review::decode,
    },
    cluster::{
        breakglass::{BreakGlassSpec, Subject, SubjectKind},
        view::{ClusterView, FluxObject, Grant, NamespaceFacts, ParentKind, ParentMeta},
    },
    policy::Policy,
};

const NOW: &str = "2026-11-23T12:00:00Z";

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap_or_default()
}

fn ns(view: &mut ClusterView, name: &str, mode: Option<&str>, terminating: bool) {
    let labels = mode
        .map(|m| ("gitops-guard.io/mode".to_owned(), m.to_owned()))
        .into_iter()
        .collect();
    view.upsert_namespace(
        name.into(),
        NamespaceFacts {
            labels,
            terminating,
        },
    );
}

fn grant(name: &str, subject: Subject, expires: &str, created: &str, kinds: &[&str]) -> Grant {
    let spec = BreakGlassSpec {
        subjects: vec![subject],
        reason: "INC-42".into(),
        expires_at: Time(ts(expires)),
        kinds: kinds.iter().map(|k| (*k).to_owned()).collect(),
        names: Vec::new(),
    };
    Grant {
        name: name.into(),
        spec,
        created: Some(ts(created)),
    }
}

fn user(name: &str) -> Subject {
    Subject {
        kind: SubjectKind::User,
        name: name.into(),
    }
}

fn view() -> ClusterView {
    let mut v = ClusterView::synced();
    controller_pods(&mut v);
    ns(&mut v, "prod", None, false);
    ns(&mut v, "staging", Some("warn"), false);
    ns(&mut v, "sandbox", Some("audit"), false);
    ns(&mut v, "typo", Some("relaxed"), false);
    ns(&mut v, "dying", None, true);
    let sre = Subject {
        kind: SubjectKind::Group,
        name: "sre".into(),
    };
    v.upsert_grant(
        "prod".into(),
        grant(
            "sre-incident",
            sre,
            "2026-11-23T13:00:00Z",
            "2026-11-23T11:00:00Z",
            &[],
        ),
    );
    v.upsert_grant(
        "prod".into(),
        grant(
            "old",
            user("bob"),
            "2026-11-23T11:59:59Z",
            "2026-11-23T11:00:00Z",
            &[],
        ),
    );
    v.upsert_grant(
        "prod".into(),
        grant(
            "long",
            user("dave"),
            "2026-11-30T00:00:00Z",
            "2026-11-23T07:00:00Z",
            &[],
        ),
    );
    v.upsert_grant(
        "prod".into(),
        grant(
            "deployments-only",
            user("frank"),
            "2026-11-23T13:00:00Z",
            "2026-11-23T11:00:00Z",
            &["Deployment"],
        ),
    );
    v.upsert_grant(
        "prod".into(),
        grant(
            "cm-only",
            user("erin"),
            "2026-11-23T13:00:00Z",
            "2026-11-23T11:00:00Z",
            &["ConfigMap"],
        ),
    );
    let parent = |uid: &str, owner: &str| ParentMeta {
        uid: uid.into(),
        labels: [("kustomize.toolkit.fluxcd.io/name".into(), owner.into())]
            .into_iter()
            .collect(),
        annotations: Default::default(),
    };
    let deployments = ParentKind::new("apps", "v1", "Deployment", "deployments");
    v.upsert_parent(
        &deployments,
        "prod".into(),
        "web".into(),
        parent("d1", "apps"),
    );
    // The Service an EndpointSlice named `web` is derived from (test_support's
    // controller reference: Service web, uid 1), and one owned by another
    // Kustomization.
    let services = ParentKind::new("", "v1", "Service", "services");
    let mut service = parent("1", "apps");
    service.labels.insert(
        "kustomize.toolkit.fluxcd.io/namespace".into(),
        "flux-system".into(),
    );
    v.upsert_parent(&services, "prod".into(), "web".into(), service);
    let mut other = parent("2", "infra");
    other.labels.insert(
        "kustomize.toolkit.fluxcd.io/namespace".into(),
        "flux-system".into(),
    );
    v.upsert_parent(&services, "prod".into(), "other".into(), other);
    let tenant = FluxObject {
        service_account: Some("tenant-a".into()),
        ..FluxObject::default()
    };
    v.upsert_flux(
        OwnerKind::Kustomization,
        "tenant-a".into(),
        "apps".into(),
        tenant,
    );
    v
}

fn flux() -> Obj {
    obj().owned_by_kustomization("flux-system", "apps")
}

fn run(rev: Rev, view: &ClusterView) -> Decision {
    let body = rev.body();
    match decode(&body) {
        Ok(req) => decide(&Policy::default(), view, &req, ts(NOW)),
        Err(e) => Decision::deny(Reason::ViewNotSynced, format!("test review invalid: {e}")),
    }
}

#[rstest]
#[case::manual_edit_of_a_flux_owned_deployment_is_denied(Rev::update().both(flux()), Outcome::Denied, Reason::NotReconciler)]
#[case::the_kustomize_controller_may_update_what_it_owns(Rev::update().both(flux()).by(KUSTOMIZE), Outcome::Allowed, Reason::Reconciler)]
#[case::a_human_sending_the_reconcilers_field_manager_is_denied(
    Rev::update().both(flux()).field_manager("kustomize-controller"), Outcome::Denied, Reason::ForgedFieldManager)]
#[case::removing_the_ownership_label_is_denied(Rev::update().old(flux()).new_obj(obj()), Outcome::Denied, Reason::EscapeHatch)]
#[case::adding_the_ownership_label_to_an_unowned_object_is_denied(
    Rev::update().old(obj()).new_obj(flux()), Outcome::Denied, Reason::EscapeHatch)]
#[case::disabling_reconciliation_by_annotation_is_denied_even_in_warn_mode(
    Rev::update().namespace("staging").old(flux())
        .new_obj(flux().annotation("kustomize.toolkit.fluxcd.io/reconcile", "disabled")), Outcome::Denied, Reason::EscapeHatch)]
#[case::a_human_creating_an_object_that_claims_flux_ownership_is_denied(
    Rev::create().new_obj(flux()), Outcome::Denied, Reason::SpoofedOwnership)]
#[case::the_reconciler_may_create_what_it_owns(Rev::create().new_obj(flux()).by(KUSTOMIZE), Outcome::Allowed, Reason::Reconciler)]
#[case::a_human_delete_of_an_owned_object_is_denied(Rev::delete().old(flux()), Outcome::Denied, Reason::NotReconciler)]
#[case::the_reconciler_may_prune(Rev::delete().old(flux()).by(KUSTOMIZE), Outcome::Allowed, Reason::Reconciler)]
#[case::the_garbage_collector_may_delete(Rev::delete().old(flux()).by(GC), Outcome::Allowed, Reason::SystemActor)]
#[case::the_namespace_controller_may_delete(Rev::delete().old(flux()).by(NS_CONTROLLER), Outcome::Allowed, Reason::SystemActor)]
#[case::any_delete_in_a_terminating_namespace_is_allowed(
    Rev::delete().namespace("dying").old(flux()), Outcome::Allowed, Reason::TerminatingNamespace)]
#[case::unowned_objects_are_anyones(Rev::update().both(obj()), Outcome::Allowed, Reason::Unowned)]
#[case::status_writes_are_allowed(Rev::update().sub("status").both(flux()), Outcome::Allowed, Reason::StatusWrite)]
#[case::a_status_write_that_disables_reconciliation_is_denied(
    Rev::update().sub("status").old(flux())
        .new_obj(flux().annotation("kustomize.toolkit.fluxcd.io/reconcile", "disabled")), Outcome::Denied, Reason::EscapeHatch)]
#[case::a_status_write_that_drops_argo_tracking_is_denied(
    Rev::update().sub("status").old(obj().tracked_by_argo("shop")).new_obj(obj()), Outcome::Denied, Reason::EscapeHatch)]
#[case::the_reconciler_may_write_status_with_its_markers(
    Rev::update().sub("status").old(obj()).new_obj(flux()).by(KUSTOMIZE), Outcome::Allowed, Reason::Reconciler)]
#[case::a_human_kubectl_scale_of_an_owned_deployment_is_denied(
    Rev::scale(),
    Outcome::Denied,
    Reason::NotReconciler
)]
#[case::the_autoscaler_may_scale(Rev::scale().by(HPA), Outcome::Allowed, Reason::SystemActor)]
#[case::scaling_an_unknown_parent_is_unowned_once_synced(Rev::scale().namespace("dev"), Outcome::Allowed, Reason::Unowned)]
#[case::helm_controller_owns_helm_release_objects(
    Rev::update().both(obj().owned_by_helm_release("apps", "redis")).by(HELM), Outcome::Allowed, Reason::Reconciler)]
#[case::kustomize_controller_may_not_write_helm_release_objects(
    Rev::update().both(obj().owned_by_helm_release("apps", "redis")).by(KUSTOMIZE), Outcome::Denied, Reason::NotReconciler)]
#[case::a_human_edit_of_a_helm_release_object_is_denied(
    Rev::update().both(obj().owned_by_helm_release("apps", "redis")), Outcome::Denied, Reason::NotReconciler)]
#[case::argo_cd_owns_tracked_objects(Rev::update().both(obj().tracked_by_argo("shop")).by(ARGO), Outcome::Allowed, Reason::Reconciler)]
#[case::a_human_edit_of_an_argo_tracked_object_is_denied(
    Rev::update().both(obj().tracked_by_argo("shop")), Outcome::Denied, Reason::NotReconciler)]
#[case::warn_mode_allows_with_a_warning(Rev::update().namespace("staging").both(flux()), Outcome::Warned, Reason::NotReconciler)]
#[case::audit_mode_allows_silently(Rev::update().namespace("sandbox").both(flux()), Outcome::Audited, Reason::NotReconciler)]
#[case::an_unknown_mode_label_enforces(Rev::update().namespace("typo").both(flux()), Outcome::Denied, Reason::NotReconciler)]
#[case::dry_run_gets_the_same_decision(Rev::update().both(flux()).dry_run(), Outcome::Denied, Reason::NotReconciler)]
#[case::a_live_break_glass_grant_lets_its_group_through(
    Rev::update().both(flux()).groups(&["sre"]), Outcome::Allowed, Reason::BreakGlass)]
#[case::an_expired_break_glass_grant_does_nothing(Rev::update().both(flux()).by("bob"), Outcome::Denied, Reason::NotReconciler)]
#[case::a_grant_longer_than_the_policy_maximum_is_cut_short(
    Rev::update().both(flux()).by("dave"), Outcome::Denied, Reason::NotReconciler)]
#[case::a_grant_narrowed_to_other_kinds_does_not_cover_deployments(
    Rev::update().both(flux()).by("erin"), Outcome::Denied, Reason::NotReconciler)]
#[case::break_glass_covers_kubectl_scale(Rev::scale().groups(&["sre"]), Outcome::Allowed, Reason::BreakGlass)]
#[case::a_controller_owned_copy_written_by_a_service_account_is_derived(
    Rev::create().new_obj(flux().controlled()).by("system:serviceaccount:kube-system:endpointslice-controller"),
    Outcome::Allowed, Reason::DerivedObject)]
#[case::a_ci_token_cannot_dodge_the_guard_with_a_reference_to_a_parent_that_does_not_exist(
    Rev::create().new_obj(flux().controlled_by("v1", "Service", "ghost", "9")).by(CI),
    Outcome::Denied, Reason::UnknownParent)]
#[case::a_reference_to_a_parent_recreated_under_the_same_name_is_stale(
    Rev::create().new_obj(flux().controlled_by("v1", "Service", "web", "old-uid")).by(CI),
    Outcome::Denied, Reason::UnknownParent)]
#[case::a_reference_to_a_parent_with_another_owner_does_not_lend_its_ownership(
    Rev::create().new_obj(flux().controlled_by("v1", "Service", "other", "2")).by(CI),
    Outcome::Denied, Reason::SpoofedOwnership)]
#[case::a_reference_to_a_kind_the_guard_does_not_keep_proves_nothing(
    Rev::create().new_obj(flux().controlled_by("example.com/v1", "Widget", "web", "1")).by(CI),
    Outcome::Denied, Reason::SpoofedOwnership)]
#[case::an_update_that_swaps_in_a_forged_controller_is_not_derived(
    Rev::update().old(flux().controlled()).new_obj(flux().controlled_by("v1", "Service", "ghost", "9")).by(CI),
    Outcome::Denied, Reason::UnknownParent)]
#[case::an_unknown_parent_in_a_warn_namespace_is_a_manual_change_warned(
    Rev::create().namespace("staging").new_obj(flux().controlled_by("v1", "Service", "ghost", "9")).by(CI),
    Outcome::Warned, Reason::UnknownParent)]
#[case::a_human_cannot_dodge_the_guard_with_an_owner_reference(
    Rev::create().new_obj(flux().controlled()), Outcome::Denied, Reason::SpoofedOwnership)]
#[case::a_tenant_kustomization_is_reconciled_by_its_own_service_account(
    Rev::update().both(obj().owned_by_kustomization("tenant-a", "apps")).by("system:serviceaccount:tenant-a:tenant-a"),
    Outcome::Allowed, Reason::Reconciler)]
#[case::the_controller_itself_may_not_write_for_an_impersonating_tenant(
    Rev::update().both(obj().owned_by_kustomization("tenant-a", "apps")).by(KUSTOMIZE), Outcome::Denied, Reason::NotReconciler)]
#[case::moving_an_object_to_another_owner_needs_both_reconcilers(
    Rev::update().old(flux()).new_obj(obj().owned_by_helm_release("apps", "x")).by(KUSTOMIZE), Outcome::Denied, Reason::EscapeHatch)]
#[case::excluding_an_owned_namespace_from_the_guard_is_denied_even_in_warn_mode(
    Rev::new("UPDATE", "Namespace", "namespaces").namespace("staging").named("staging")
        .old(flux()).new_obj(flux().label("gitops-guard.io/exclude", "true")), Outcome::Denied, Reason::EscapeHatch)]
#[case::switching_an_owned_namespace_to_audit_is_denied_even_in_warn_mode(
    Rev::new("UPDATE", "Namespace", "namespaces").namespace("staging").named("staging")
        .old(flux().label("gitops-guard.io/mode", "warn")).new_obj(flux().label("gitops-guard.io/mode", "audit")),
    Outcome::Denied, Reason::EscapeHatch)]
#[case::the_reconciler_may_set_the_mode_it_keeps_in_git(
    Rev::new("UPDATE", "Namespace", "namespaces").namespace("staging").named("staging")
        .old(flux()).new_obj(flux().label("gitops-guard.io/mode", "warn")).by(KUSTOMIZE), Outcome::Allowed, Reason::Reconciler)]
#[case::an_impersonated_garbage_collector_is_not_the_garbage_collector(
    Rev::update().old(flux()).new_obj(obj()).by_impersonation(GC), Outcome::Denied, Reason::EscapeHatch)]
#[case::an_impersonated_garbage_collector_may_not_delete(
    Rev::delete().old(flux()).by_impersonation(GC), Outcome::Denied, Reason::NotReconciler)]
#[case::a_client_certificate_named_like_the_garbage_collector_is_no_service_account(
    Rev::delete().old(flux()).by_certificate(GC), Outcome::Denied, Reason::NotReconciler)]
#[case::the_garbage_collector_may_not_change_a_spec(
    Rev::update().old(flux()).new_obj(flux().with_spec(serde_json::json!({"replicas": 9}))).by(GC),
    Outcome::Denied, Reason::NotReconciler)]
#[case::the_garbage_collector_may_clear_a_finalizer(
    Rev::update().old(flux().finalizer("orphan")).new_obj(flux()).by(GC), Outcome::Allowed, Reason::SystemActor)]
#[case::the_autoscaler_may_not_edit_the_spec(
    Rev::update().old(flux()).new_obj(flux().with_spec(serde_json::json!({"replicas": 9}))).by(HPA),
    Outcome::Denied, Reason::NotReconciler)]
#[case::an_impersonated_autoscaler_may_not_scale(Rev::scale().by_impersonation(HPA), Outcome::Denied, Reason::NotReconciler)]
#[case::kube_controller_manager_with_its_certificate_may_delete(
    Rev::delete().old(flux()).by_certificate("system:kube-controller-manager"), Outcome::Allowed, Reason::SystemActor)]
#[case::the_deployment_controller_may_set_the_revision_annotation_through_status(
    Rev::update().sub("status").old(flux())
        .new_obj(flux().annotation("deployment.kubernetes.io/revision", "1"))
        .by("system:serviceaccount:kube-system:deployment-controller"),
    Outcome::Allowed, Reason::SystemActor)]
#[case::the_deployment_controller_may_not_change_another_annotation(
    Rev::update().sub("status").old(flux())
        .new_obj(flux().annotation("nginx.ingress.kubernetes.io/auth-url", ""))
        .by("system:serviceaccount:kube-system:deployment-controller"),
    Outcome::Denied, Reason::NotReconciler)]
#[case::an_update_without_its_old_object_is_not_judged(
    Rev::update().new_obj(obj()), Outcome::Denied, Reason::IncompleteReview)]
#[case::a_status_write_changing_an_annotation_is_judged_like_an_update(
    Rev::update().sub("status").old(flux()).new_obj(flux().annotation("nginx.ingress.kubernetes.io/auth-url", "")),
    Outcome::Denied, Reason::NotReconciler)]
#[case::a_grant_for_deployments_covers_their_scale(Rev::scale().by("frank"), Outcome::Allowed, Reason::BreakGlass)]
fn decide_follows_the_rules(#[case] rev: Rev, #[case] outcome: Outcome, #[case] reason: Reason) {
    let decision = run(rev, &view());
    assert_eq!(
        (decision.outcome, decision.reason()),
        (outcome, reason),
        "{decision:?}"
    );
}

#[test]
fn scale_before_the_view_is_synced_fails_closed_in_enforce_mode() {
    let mut v = view();
    v.set_synced(false);
    let decision = run(Rev::scale().namespace("dev"), &v);
    assert_eq!(
        (decision.outcome, decision.reason()),
        (Outcome::Denied, Reason::ViewNotSynced)
    );
}

#[test]
fn the_denial_names_object_owner_user_reconciler_and_git() {
    let Decision {
        outcome: Outcome::Denied,
        message,
        ..
    } = run(Rev::update().both(flux()), &view())
    else {
        panic!("expected a denial");
    };
    for needle in [
        "Deployment prod/web",
        "Flux Kustomization flux-system/apps",
        "alice",
        KUSTOMIZE,
        "Git",
        "BreakGlass",
    ] {
        assert!(
            message.contains(needle),
            "{needle:?} missing from:\n{message}"
        );
    }
    assert!(message.lines().count() <= 4, "{message}");
}

#[test]
fn the_warn_mode_warning_is_one_line_naming_the_owner() {
    let decision = run(Rev::update().namespace("staging").both(flux()), &view());
    assert_eq!(decision.outcome, Outcome::Warned);
    let warnings = decision.warnings;
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].contains("Flux Kustomization flux-system/apps") && !warnings[0].contains('\n')
    );
}

#[test]
fn the_break_glass_warning_names_the_grant() {
    let decision = run(Rev::update().both(flux()).groups(&["sre"]), &view());
    assert_eq!(decision.outcome, Outcome::Allowed);
    let warnings = decision.warnings;
    assert!(
        warnings.iter().any(|w| w.contains("sre-incident")),
        "{warnings:?}"
    );
}

#[test]
fn custom_markers_from_the_policy_mark_ownership() {
    let yaml = "owners:\n  custom:\n  - name: platform\n    annotation: example.com/managed-by\n    reconcilers: [ops-bot]\n";
    let policy = Policy::from_yaml(yaml, "test").unwrap_or_default();
    let rev = |by: &str| {
        Rev::update()
            .both(obj().annotation("example.com/managed-by", "platform"))
            .by(by)
            .body()
    };
    let (human, bot) = (rev(ALICE), rev("ops-bot"));
    let decide_body =
        |body: &[u8]| decode(body).map(|r| decide(&policy, &view(), &r, ts(NOW)).reason());
    assert_eq!(decide_body(&human).ok(), Some(Reason::NotReconciler));
    assert_eq!(decide_body(&bot).ok(), Some(Reason::Reconciler));
}

#[test]
fn a_namespace_is_named_once_in_its_denial() {
    let rev = Rev::new("UPDATE", "Namespace", "namespaces")
        .namespace("web")
        .both(flux());
    let Decision {
        outcome: Outcome::Denied,
        message,
        ..
    } = run(rev, &view())
    else {
        panic!("expected a denial");
    };
    assert!(
        message.starts_with("Namespace web is managed by"),
        "{message}"
    );
}

#[test]
fn a_delete_collection_item_is_named_from_its_old_object_and_a_named_grant_covers_it() {
    // The apiserver admits a DeleteCollection item by item with an empty
    // `name`; the item is the oldObject.
    let rev = || Rev::delete().named("").old(flux());
    let Decision {
        outcome: Outcome::Denied,
        message,
        ..
    } = run(rev(), &view())
    else {
        panic!("an owned item of a DeleteCollection is denied");
    };
    assert!(
        message.starts_with("Deployment prod/web is managed by"),
        "{message}"
    );
    let mut v = view();
    let mut named = grant(
        "named",
        user("gina"),
        "2026-11-23T13:00:00Z",
        "2026-11-23T11:00:00Z",
        &[],
    );
    named.spec.names = vec!["web".into()];
    v.upsert_grant("prod".into(), named);
    let decision = run(rev().by("gina"), &v);
    assert_eq!(decision.reason(), Reason::BreakGlass, "{decision:?}");
}
