//! Wiring of the drift side for `serve`: leader election, the Alertmanager
//! sender, the webhook-registration watch and the drift watchers.

use std::sync::Arc;

use super::{
    alerts::Alerts,
    announce::{self, FromAdmission},
    attribution, events,
    leader::{self, Election, Leadership},
    watch::{self, DriftMetrics, DriftWatch},
    webhooks,
};
use crate::runtime::Runtime;

/// The `serve` flags the drift side reads.
pub type Settings = crate::config::DriftServeArgs;

/// Who this replica is in the Lease: the Pod's name, else host and pid.
pub(super) fn identity() -> String {
    std::env::var("POD_NAME").unwrap_or_else(|_| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    })
}

/// Starts the drift side: leader election, the alert sender, the
/// admission alerts, the webhook-registration watch and the drift watchers.
pub fn start(
    runtime: &Runtime,
    from_admission: FromAdmission,
    settings: Settings,
) -> anyhow::Result<Arc<Alerts>> {
    let Runtime {
        policy,
        client,
        view,
        registry,
        tasks,
        ..
    } = runtime;
    let leadership = if settings.leader_election {
        Leadership::default()
    } else {
        Leadership::always()
    };
    let alerts = Arc::new(
        Alerts::new(
            settings.alertmanager_urls,
            policy.drift.resend_interval,
            leadership.clone(),
            registry,
        )?
        .with_delivery(
            settings.alertmanager_bearer_token_file,
            settings.alertmanager_ca_file.as_deref(),
        )?,
    );
    let gauge = leader::gauge(registry)?;
    if settings.leader_election {
        let identity = identity();
        tracing::info!(%identity, lease = %settings.lease_name, namespace = %settings.lease_namespace, "joining leader election");
        let election = Election::new(
            client.clone(),
            &settings.lease_namespace,
            &settings.lease_name,
            identity,
        );
        let wake = alerts.clone();
        tasks.spawn(
            "leader-election",
            election.run(leadership, gauge, move || wake.wake()),
        );
    } else {
        gauge.set(1);
    }
    // Through the drain: break-glass and controller-token alerts come from
    // admissions, which a stopping replica still makes.
    tasks.spawn_through_drain("alert-sender", alerts.clone().run());
    let FromAdmission {
        journal,
        admitted,
        attributions,
        attributions_dropped,
    } = from_admission;
    // Through the drain, like the sender: a stopping replica still admits.
    tasks.spawn_through_drain(
        "admission-alerts",
        announce::run(admitted, alerts.clone(), settings.cluster_name.clone()),
    );
    webhooks::spawn(
        client.clone(),
        alerts.clone(),
        settings.webhook_configuration,
        settings.cluster_name.clone(),
        tasks,
    );
    let drift = DriftWatch::new(
        policy.clone(),
        view.clone(),
        journal,
        alerts.clone(),
        DriftMetrics::new(registry)?,
        settings.cluster_name,
        Some(events::spawn(client.clone(), tasks)),
    );
    let drift = Arc::new(drift);
    attribution::spawn(
        client.clone(),
        attributions,
        attributions_dropped,
        drift.clone(),
        registry,
        tasks,
    )?;
    watch::spawn(client.clone(), drift, tasks);
    Ok(alerts)
}
