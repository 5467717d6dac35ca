//! The audit in `serve`: RBAC objects are watched into reflector stores; the
//! leader re-runs the audit after RBAC changes (debounced) and every
//! `tenancy.auditInterval`, and turns findings into metrics and
//! Alertmanager alerts that resolve when the finding goes away.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use futures::StreamExt;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::{
    Api, Client, Resource,
    runtime::{WatchStreamExt, reflector, watcher},
};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

use crate::tasks::Tasks;

use super::{
    audit::Finding,
    metrics::TenancyMetrics,
    rbac::Rbac,
    report::{self, AuditReport, Authority},
};
use crate::{
    cluster::shared::SharedView,
    drift::alerts::{Alerts, Labels},
    policy::Policy,
};

/// RBAC changes come in bursts (an apply of many bindings): wait this long.
const DEBOUNCE: Duration = Duration::from_secs(2);

type Store<K> = reflector::Store<K>;

fn watch<K>(client: &Client, changed: Arc<Notify>, tasks: &Tasks) -> Store<K>
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store();
    let api = Api::<K>::all(client.clone());
    let stream = reflector::reflector(writer, watcher::watcher(api, watcher::Config::default()))
        .default_backoff()
        .touched_objects();
    tasks.spawn("rbac-reflector", async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(_) => changed.notify_one(),
                Err(e) => {
                    tracing::warn!(kind = %K::kind(&()), error = %e, "RBAC watch failed; retrying")
                }
            }
        }
    });
    store
}

pub struct TenancyWatch {
    pub client: Client,
    pub policy: Arc<Policy>,
    pub view: SharedView,
    pub alerts: Arc<Alerts>,
    pub metrics: TenancyMetrics,
    pub cluster: String,
}

pub fn spawn(w: TenancyWatch, tasks: &Tasks) {
    let changed = Arc::new(Notify::new());
    let roles = watch::<Role>(&w.client, changed.clone(), tasks);
    let cluster_roles = watch::<ClusterRole>(&w.client, changed.clone(), tasks);
    let bindings = watch::<RoleBinding>(&w.client, changed.clone(), tasks);
    let cluster_bindings = watch::<ClusterRoleBinding>(&w.client, changed.clone(), tasks);
    tasks.spawn("tenancy-audit", async move {
        let mut ready = w.view.loaded();
        let _ = ready.wait_for(|synced| *synced).await;
        let _ = roles.wait_until_ready().await;
        let _ = cluster_roles.wait_until_ready().await;
        let _ = bindings.wait_until_ready().await;
        let _ = cluster_bindings.wait_until_ready().await;
        let mut firing: BTreeMap<String, ()> = BTreeMap::new();
        loop {
            if w.alerts.is_leader() {
                let rbac = Rbac::new(
                    &owned(&roles),
                    &owned(&cluster_roles),
                    &owned(&bindings),
                    &owned(&cluster_bindings),
                );
                let plan = {
                    let view = w.view.read();
                    report::plan(&w.policy, &view, &rbac)
                };
                match report::finish(plan, Authority::Apiserver(&w.client)).await {
                    Ok(report) => {
                        w.metrics.record(&report);
                        publish(&w, &report, &mut firing);
                    }
                    Err(e) => {
                        w.metrics.runs.with_label_values(&["error"]).inc();
                        tracing::warn!(error = %e, "tenant audit failed; retrying at the next change or interval");
                    }
                }
            }
            let _ = tokio::time::timeout(w.policy.tenancy.audit_interval, changed.notified()).await;
            tokio::time::sleep(DEBOUNCE).await;
        }
    });
}

fn owned<K: Clone + Resource<DynamicType = ()>>(store: &Store<K>) -> Vec<K> {
    store.state().iter().map(|k| (**k).clone()).collect()
}

/// Fires an alert per finding; resolves those no longer found.
fn publish(w: &TenancyWatch, report: &AuditReport, firing: &mut BTreeMap<String, ()>) {
    let mut now = BTreeMap::new();
    for finding in &report.findings {
        let (key, labels, annotations) = alert(finding, &w.cluster);
        w.alerts.fire(&key, labels, annotations);
        now.insert(key, ());
    }
    for key in firing.keys().filter(|k| !now.contains_key(*k)) {
        w.alerts.resolve(key);
    }
    *firing = now;
}

fn alert(finding: &Finding, cluster: &str) -> (String, Labels, Labels) {
    let pairs = |items: Vec<(&str, String)>| -> Labels {
        items.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    };
    match finding {
        Finding::ImpersonationRisk {
            tenant,
            identity,
            subject,
            what,
            via,
        } => (
            format!("tenancy/impersonation/{identity}/{subject}/{what}"),
            pairs(vec![
                ("alertname", "GitOpsImpersonationRisk".to_owned()),
                ("severity", "warning".to_owned()),
                ("tenant", tenant.clone()),
                ("identity", identity.clone()),
                ("subject", subject.clone()),
                ("cluster", cluster.to_owned()),
            ]),
            pairs(vec![
                (
                    "summary",
                    format!("{subject} can impersonate reconciler {identity} ({what})."),
                ),
                ("via", via.clone()),
            ]),
        ),
        Finding::TenantEscalation {
            tenant,
            identity,
            right,
            detail,
        } => (
            format!("tenancy/escalation/{identity}/{}/{detail}", right.as_str()),
            pairs(vec![
                ("alertname", "GitOpsTenantEscalation".to_owned()),
                ("severity", "critical".to_owned()),
                ("tenant", tenant.clone()),
                ("identity", identity.clone()),
                ("right", right.as_str().to_owned()),
                ("cluster", cluster.to_owned()),
            ]),
            pairs(vec![(
                "summary",
                format!("Tenant {tenant:?} reconciler {identity} {detail}."),
            )]),
        ),
    }
}
