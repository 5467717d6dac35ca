//! End-to-end tests: a real etcd + kube-apiserver + kube-controller-manager
//! (tests/cluster), gitops-guard registered from manifests/local, and the
//! real kubectl as users with client certificates and as Flux / Argo CD with
//! TokenRequest tokens. One control plane per run; throwaway namespaces.
//!
//! On failure the run directory (logs of every component) is kept and its
//! path printed.

mod admission;
mod balancer;
mod bypass;
mod cluster;
mod drift;
mod flux;
mod incluster;
mod lifecycle;
use gitops_guard_testkit::load_client;
mod namespaces;
mod pinning;
use gitops_guard_testkit::registry;
mod resilience;
mod rolling;
mod tenancy;

use std::process::ExitCode;

use cluster::{Cluster, Outcome, Setup};
use libtest_mimic::{Arguments, Trial};

type Scenario = fn(&Cluster) -> Outcome;

const SCENARIOS: &[(&str, Scenario)] = &[
    (
        "a_manual_kubectl_edit_is_denied_naming_the_owner_and_the_git_path",
        admission::a_manual_kubectl_edit_is_denied_naming_the_owner_and_the_git_path,
    ),
    (
        "a_manual_kubectl_apply_is_denied",
        admission::a_manual_kubectl_apply_is_denied,
    ),
    (
        "a_manual_kubectl_patch_is_denied",
        admission::a_manual_kubectl_patch_is_denied,
    ),
    (
        "removing_the_ownership_label_is_denied",
        admission::removing_the_ownership_label_is_denied,
    ),
    (
        "the_reconcile_disable_annotation_is_denied",
        admission::the_reconcile_disable_annotation_is_denied,
    ),
    (
        "a_create_claiming_flux_ownership_is_denied",
        admission::a_create_claiming_flux_ownership_is_denied,
    ),
    (
        "a_manual_delete_is_denied",
        admission::a_manual_delete_is_denied,
    ),
    (
        "a_forged_field_manager_is_denied",
        admission::a_forged_field_manager_is_denied,
    ),
    (
        "the_reconciler_may_change_and_prune_what_it_owns",
        admission::the_reconciler_may_change_and_prune_what_it_owns,
    ),
    (
        "kubectl_scale_is_denied_and_the_autoscaler_may_scale",
        admission::kubectl_scale_is_denied_and_the_autoscaler_may_scale,
    ),
    (
        "status_writes_are_allowed",
        admission::status_writes_are_allowed,
    ),
    (
        "helm_release_objects_belong_to_the_helm_controller",
        admission::helm_release_objects_belong_to_the_helm_controller,
    ),
    (
        "argo_cd_tracked_objects_belong_to_the_application_controller",
        admission::argo_cd_tracked_objects_belong_to_the_application_controller,
    ),
    (
        "warn_mode_lets_the_edit_through_with_a_warning",
        admission::warn_mode_lets_the_edit_through_with_a_warning,
    ),
    (
        "server_dry_run_gets_the_same_decision",
        admission::server_dry_run_gets_the_same_decision,
    ),
    (
        "a_tenant_kustomization_is_reconciled_by_its_own_service_account",
        admission::a_tenant_kustomization_is_reconciled_by_its_own_service_account,
    ),
    (
        "labelling_an_owned_namespace_out_of_the_guard_is_denied",
        namespaces::labelling_an_owned_namespace_out_of_the_guard_is_denied,
    ),
    (
        "a_deployment_in_a_pin_namespace_gets_the_served_digest_and_a_moved_tag_after_the_ttl",
        pinning::a_deployment_in_a_pin_namespace_gets_the_served_digest_and_a_moved_tag_after_the_ttl,
    ),
    (
        "kubectl_debug_ephemeral_containers_are_pinned",
        pinning::kubectl_debug_ephemeral_containers_are_pinned,
    ),
    (
        "a_registry_that_is_down_warns_in_pin_and_is_denied_in_require",
        pinning::a_registry_that_is_down_warns_in_pin_and_is_denied_in_require,
    ),
    (
        "the_htpasswd_registry_resolves_with_the_right_pull_secret_and_fails_clearly_with_a_wrong_one",
        pinning::the_htpasswd_registry_resolves_with_the_right_pull_secret_and_fails_clearly_with_a_wrong_one,
    ),
    (
        "a_flux_server_side_dry_run_of_the_unpinned_manifest_shows_no_drift",
        pinning::a_flux_server_side_dry_run_of_the_unpinned_manifest_shows_no_drift,
    ),
    (
        "a_manual_change_in_a_warn_namespace_alerts_naming_alice_and_resolves_when_flux_reapplies",
        drift::a_manual_change_in_a_warn_namespace_alerts_naming_alice_and_resolves_when_flux_reapplies,
    ),
    (
        "an_argo_cd_tracked_object_changed_in_a_warn_namespace_alerts_and_resolves_on_sync",
        drift::an_argo_cd_tracked_object_changed_in_a_warn_namespace_alerts_and_resolves_on_sync,
    ),
    (
        "break_glass_lets_alice_through_until_it_expires",
        lifecycle::break_glass_lets_alice_through_until_it_expires,
    ),
    (
        "the_garbage_collector_removes_what_a_pruned_deployment_owned",
        lifecycle::the_garbage_collector_removes_what_a_pruned_deployment_owned,
    ),
    (
        "deleting_a_namespace_full_of_owned_objects_completes",
        lifecycle::deleting_a_namespace_full_of_owned_objects_completes,
    ),
    (
        "the_apiserver_and_check_agree",
        lifecycle::the_apiserver_and_check_agree,
    ),
    (
        "the_install_manifests_pass_server_side_validation",
        lifecycle::the_install_manifests_pass_server_side_validation,
    ),
    (
        "the_guard_is_ready_and_counts_its_decisions",
        lifecycle::the_guard_is_ready_and_counts_its_decisions,
    ),
    (
        "tenant_kustomizations_that_break_the_rules_are_denied",
        tenancy::tenant_kustomizations_that_break_the_rules_are_denied,
    ),
    (
        "team_as_objects_are_written_by_team_as_reconciler_only",
        tenancy::team_as_objects_are_written_by_team_as_reconciler_only,
    ),
    (
        "an_over_broad_binding_is_stopped_at_admission_and_reported_by_the_audit",
        tenancy::an_over_broad_binding_is_stopped_at_admission_and_reported_by_the_audit,
    ),
    (
        "alice_with_edit_in_team_a_is_reported_as_able_to_impersonate_its_reconciler",
        tenancy::alice_with_edit_in_team_a_is_reported_as_able_to_impersonate_its_reconciler,
    ),
    (
        "a_certificate_named_like_team_as_reconciler_is_not_it",
        tenancy::a_certificate_named_like_team_as_reconciler_is_not_it,
    ),
    (
        "a_human_impersonating_kustomize_controller_is_denied_and_alerted",
        tenancy::a_human_impersonating_kustomize_controller_is_denied_and_alerted,
    ),
    (
        "a_status_write_changes_no_spec_and_cannot_disable_reconciliation",
        bypass::a_status_write_changes_no_spec_and_cannot_disable_reconciliation,
    ),
    (
        "kubectl_debug_on_an_owned_pod_is_denied",
        bypass::kubectl_debug_on_an_owned_pod_is_denied,
    ),
    (
        "deleting_the_whole_collection_spares_owned_objects",
        bypass::deleting_the_whole_collection_spares_owned_objects,
    ),
    (
        "a_human_server_side_apply_with_force_conflicts_is_denied",
        bypass::a_human_server_side_apply_with_force_conflicts_is_denied,
    ),
    (
        "removing_the_argo_cd_tracking_annotation_is_denied",
        bypass::removing_the_argo_cd_tracking_annotation_is_denied,
    ),
    (
        "only_the_reconciler_may_downgrade_an_owned_namespace_to_warn",
        bypass::only_the_reconciler_may_downgrade_an_owned_namespace_to_warn,
    ),
    (
        "posing_as_the_garbage_collector_is_denied_and_the_real_one_passes",
        bypass::posing_as_the_garbage_collector_is_denied_and_the_real_one_passes,
    ),
    (
        "an_annotation_changed_through_status_is_judged_like_any_change",
        bypass::an_annotation_changed_through_status_is_judged_like_any_change,
    ),
    (
        "the_guards_own_owned_deployment_cannot_be_scaled_edited_or_deleted_by_hand",
        bypass::the_guards_own_owned_deployment_cannot_be_scaled_edited_or_deleted_by_hand,
    ),
];

/// Take the webhook away: each runs alone, after everything else.
const ALONE: &[(&str, Scenario)] = &[
    (
        "restarting_each_of_two_instances_under_load_fails_no_review",
        rolling::restarting_each_of_two_instances_under_load_fails_no_review,
    ),
    (
        "the_alert_keeps_firing_while_the_guard_restarts",
        resilience::the_alert_keeps_firing_while_the_guard_restarts,
    ),
    (
        "two_guards_elect_one_sender_and_the_other_takes_over_when_it_stops",
        resilience::two_guards_elect_one_sender_and_the_other_takes_over_when_it_stops,
    ),
    (
        "a_restarted_guard_still_names_who_made_the_change",
        resilience::a_restarted_guard_still_names_who_made_the_change,
    ),
    (
        "the_leader_names_who_made_a_change_another_replica_admitted",
        resilience::the_leader_names_who_made_a_change_another_replica_admitted,
    ),
    (
        "an_alert_made_while_alertmanager_was_down_for_two_minutes_arrives_when_it_is_back",
        resilience::an_alert_made_while_alertmanager_was_down_for_two_minutes_arrives_when_it_is_back,
    ),
    (
        "changing_or_removing_the_webhook_alerts_and_drift_made_meanwhile_is_detected",
        drift::changing_or_removing_the_webhook_alerts_and_drift_made_meanwhile_is_detected,
    ),
    (
        "with_the_guard_down_owned_writes_fail_and_others_go_on",
        lifecycle::with_the_guard_down_owned_writes_fail_and_others_go_on,
    ),
];

/// Real Flux controllers in a cluster of their own, in this order.
const FLUX: &[(&str, Scenario)] = &[
    (
        "flux_bootstrap_reaches_ready_through_the_guard_with_inventories",
        flux::bootstrap_reaches_ready_through_the_guard_with_inventories,
    ),
    (
        "flux_applies_a_commit_prunes_a_removed_object_and_recreates_an_immutable_one",
        flux::a_commit_is_applied_a_removed_object_pruned_and_an_immutable_one_recreated,
    ),
    (
        "flux_derived_objects_pass_only_with_a_real_parent_of_the_same_owner",
        flux::derived_objects_pass_only_with_a_real_parent_of_the_same_owner,
    ),
    (
        "flux_a_persons_edit_is_denied_and_a_break_glass_edit_is_reverted_by_flux",
        flux::a_persons_edit_is_denied_and_a_break_glass_edit_is_reverted_by_flux,
    ),
    (
        "flux_reconcile_is_anyones_and_suspend_is_the_operators",
        flux::flux_reconcile_is_anyones_and_suspend_is_the_operators,
    ),
    (
        "flux_tenants_reconcile_by_impersonation_and_a_reach_into_another_tenant_fails",
        flux::tenants_reconcile_by_impersonation_and_a_reach_into_another_tenant_fails,
    ),
    (
        "flux_helm_controllers_writes_pass_and_source_controller_reconciles_its_helm_chart",
        flux::helm_controllers_writes_pass_and_source_controller_reconciles_its_helm_chart,
    ),
    (
        "flux_with_the_guard_stopped_flux_reports_the_failure_and_recovers",
        flux::with_the_guard_stopped_flux_reports_the_failure_and_recovers,
    ),
];

/// The guard installed as users install it, on a node of its own cluster,
/// in this order: each scenario builds on the install of the first.
const NODE: &[(&str, Scenario)] = &[
    (
        "node_kubectl_apply_k_manifests_brings_three_replicas_ready_behind_the_service",
        incluster::kubectl_apply_k_manifests_brings_three_replicas_ready_behind_the_service,
    ),
    (
        "node_the_service_registration_denies_a_persons_edit_and_lets_the_reconciler_write",
        incluster::the_service_registration_denies_a_persons_edit_and_lets_the_reconciler_write,
    ),
    (
        "node_a_rollout_restart_under_load_fails_no_review",
        incluster::a_rollout_restart_under_load_fails_no_review,
    ),
    (
        "node_deleting_the_leader_pod_hands_over_and_alerts_keep_flowing",
        incluster::deleting_the_leader_pod_hands_over_and_alerts_keep_flowing,
    ),
    (
        "node_the_disruption_budget_lets_one_guard_pod_be_evicted_at_a_time",
        incluster::the_disruption_budget_lets_one_guard_pod_be_evicted_at_a_time,
    ),
    (
        "node_a_stopping_pod_fails_readyz_at_once_and_leaves_the_ready_endpoints",
        incluster::a_stopping_pod_fails_readyz_at_once_and_leaves_the_ready_endpoints,
    ),
    (
        "node_a_frozen_guard_fails_readiness_then_liveness_and_is_restarted",
        incluster::a_frozen_guard_fails_readiness_then_liveness_and_is_restarted,
    ),
    (
        "node_the_network_policy_lets_through_what_it_lists_and_drops_the_rest",
        incluster::the_network_policy_lets_through_what_it_lists_and_drops_the_rest,
    ),
    (
        "node_the_helm_chart_installs_on_the_node_and_denies_a_persons_edit",
        incluster::the_helm_chart_installs_on_the_node_and_denies_a_persons_edit,
    ),
];

/// Whether the command line's filter selects any of `scenarios`.
fn selected(args: &Arguments, scenarios: &[(&str, Scenario)]) -> bool {
    let Some(filter) = args.filter.as_deref() else {
        return true;
    };
    scenarios.iter().any(|(name, _)| {
        if args.exact {
            *name == filter
        } else {
            name.contains(filter)
        }
    })
}

/// Brings a cluster up in `dir`, runs `together` in parallel, then each of
/// `alone` by itself in order, brings it down; whether any failed.
fn run_cluster(
    args: &Arguments,
    dir: &str,
    setup: Setup,
    together: &[(&'static str, Scenario)],
    alone: &[(&'static str, Scenario)],
) -> bool {
    let run_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(dir);
    let cluster: &'static Cluster = match Cluster::up(&run_dir, setup) {
        Ok(c) => Box::leak(Box::new(c)),
        Err(e) => {
            eprintln!("e2e: cannot start the local control plane: {e}");
            return true;
        }
    };
    let mut failed = false;
    if !together.is_empty() {
        failed |= libtest_mimic::run(args, trials(cluster, together)).has_failed();
    }
    let one_at_a_time = Arguments {
        test_threads: Some(1),
        ..args.clone()
    };
    for scenario in alone {
        let trial = trials(cluster, std::slice::from_ref(scenario));
        failed |= libtest_mimic::run(&one_at_a_time, trial).has_failed();
    }
    cluster.down(failed);
    if failed {
        eprintln!(
            "e2e: logs kept in {} (cluster/logs, logs/)",
            run_dir.display()
        );
    }
    failed
}

fn trials(cluster: &'static Cluster, scenarios: &[(&'static str, Scenario)]) -> Vec<Trial> {
    let trial = |&(name, run): &(&'static str, Scenario)| {
        Trial::test(name, move || run(cluster).map_err(Into::into))
    };
    scenarios.iter().map(trial).collect()
}

fn main() -> ExitCode {
    let args = Arguments::from_args();
    if args.list {
        let names = SCENARIOS
            .iter()
            .chain(ALONE)
            .chain(FLUX)
            .chain(NODE)
            .map(|(n, _)| Trial::test(*n, || Ok(())))
            .collect();
        return libtest_mimic::run(&args, names).exit_code();
    }
    let mut failed = false;
    if selected(&args, SCENARIOS) || selected(&args, ALONE) {
        failed |= run_cluster(&args, "e2e-run", Setup::GuardOnHost, SCENARIOS, ALONE);
    }
    // Real Flux: a cluster of its own, so the scenarios above, which play
    // Flux by hand, never race a real controller.
    if selected(&args, FLUX) {
        failed |= run_cluster(&args, "e2e-flux", Setup::GuardOnHostWithFlux, &[], FLUX);
    }
    // The guard installed in-cluster on a node: last, and alone on this host
    // (one node per host).
    if selected(&args, NODE) {
        failed |= run_cluster(&args, "e2e-node", Setup::Node, &[], NODE);
    }
    if failed {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
