//! Wiring of the drift side for `serve`: leader election, the Alertmanager
//! sender, the webhook-registration watch and the drift watchers.

use std::sync::{Arc, RwLock};

use prometheus::Registry;

use super::{
    alerts::{Alerts, Labels},
    events,
    journal::{Admission, Journal, JournalEntry},
    leader::{self, Election, Leadership},
    watch::{self, DriftMetrics, DriftWatch},
    webhooks,
};
use crate::{cluster::view::ClusterView, object_ref::ObjectRef, policy::Policy};

/// The `serve` flags the drift side reads.
pub type Settings = crate::config::DriftServeArgs;

/// How long a break-glass use stays visible in Alertmanager.
const BREAK_GLASS_HOLD: std::time::Duration = std::time::Duration::from_secs(15 * 60);

fn break_glass_alert(key: &ObjectRef, entry: &JournalEntry, cluster: &str) -> (Labels, Labels) {
    let (namespace, name, resource) = (&key.namespace, &key.name, key.resource_label());
    let pairs = |items: Vec<(&str, String)>| -> Labels {
        items.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    };
    let labels = pairs(vec![
        ("alertname", "GitOpsBreakGlassUsed".to_owned()),
        ("severity", "warning".to_owned()),
        ("namespace", namespace.clone()),
        ("resource", resource.clone()),
        ("name", name.clone()),
        ("user", entry.user.clone()),
        ("cluster", cluster.to_owned()),
    ]);
    let summary = format!(
        "{} changed GitOps-owned {resource} {namespace}/{name} under a break-glass grant.",
        entry.user
    );
    (labels, pairs(vec![("summary", summary)]))
}

/// A request as a controller identity without a Pod-bound token.
fn controller_token_alert(
    key: &ObjectRef,
    entry: &JournalEntry,
    cluster: &str,
) -> (Labels, Labels) {
    let (namespace, name, resource) = (&key.namespace, &key.name, key.resource_label());
    let labels: Labels = [
        ("alertname", "GitOpsControllerImpersonation".to_owned()),
        ("severity", "critical".to_owned()),
        ("user", entry.user.clone()),
        ("cluster", cluster.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let summary = format!(
        "A request as {} without a token bound to one of its Pods tried to write {resource} \
         {namespace}/{name}: someone is impersonating the controller or using its token elsewhere.",
        entry.user
    );
    (
        labels,
        [("summary".to_owned(), summary)].into_iter().collect(),
    )
}

/// Who this replica is in the Lease: the Pod's name, else host and pid.
fn identity() -> String {
    std::env::var("POD_NAME").unwrap_or_else(|_| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    })
}

pub fn start(
    client: kube::Client,
    policy: &Arc<Policy>,
    view: &Arc<RwLock<ClusterView>>,
    journal: Arc<Journal>,
    settings: Settings,
    registry: &Registry,
    tasks: &crate::tasks::Tasks,
) -> anyhow::Result<Arc<Alerts>> {
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
    tasks.spawn("alert-sender", alerts.clone().run());
    let (announcer, cluster) = (alerts.clone(), settings.cluster_name.clone());
    journal.observe(Box::new(move |key, entry| {
        let alert = match entry.admission {
            Admission::BreakGlass => break_glass_alert(key, entry, &cluster),
            Admission::ControllerImpersonation => controller_token_alert(key, entry, &cluster),
            Admission::Warned | Admission::Audited => return,
        };
        announcer.announce(alert.0, alert.1, BREAK_GLASS_HOLD);
    }));
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
    watch::spawn(client, Arc::new(drift), tasks);
    Ok(alerts)
}
