//! Webhooks never see changes to webhook configurations, so the watcher
//! must: deleting gitops-guard's Validating/MutatingWebhookConfiguration
//! fires `GitOpsGuardWebhookChanged` until it is back; changing it (other
//! than a `caBundle` rotation) fires it for `hold`.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use kube::{
    Api, Client, Resource,
    runtime::{WatchStreamExt, watcher},
};
use serde::{Serialize, de::DeserializeOwned};

use super::alerts::{Alerts, Labels};

/// How long a modification keeps the alert firing.
const HOLD: Duration = Duration::from_secs(15 * 60);

/// What the configuration says, minus the CA bundle (rotations are routine).
fn fingerprint<K: Serialize>(obj: &K) -> String {
    let mut value = serde_json::to_value(obj).unwrap_or_default();
    if let Some(hooks) = value.get_mut("webhooks").and_then(|w| w.as_array_mut()) {
        for hook in hooks {
            if let Some(config) = hook.get_mut("clientConfig").and_then(|c| c.as_object_mut()) {
                config.remove("caBundle");
            }
        }
    }
    value["webhooks"].to_string()
}

fn labels(kind: &str, name: &str, change: &str, cluster: &str) -> Labels {
    [
        ("alertname", "GitOpsGuardWebhookChanged"),
        ("severity", "critical"),
        ("kind", kind),
        ("name", name),
        ("change", change),
        ("cluster", cluster),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn annotations(kind: &str, name: &str, change: &str) -> Labels {
    let summary = match change {
        "deleted" => format!(
            "{kind} {name} is gone: the API server no longer asks gitops-guard, and manual changes to GitOps-owned objects go through unchecked."
        ),
        _ => format!(
            "{kind} {name} was changed (selectors, rules or failure policy): what gitops-guard sees may have narrowed."
        ),
    };
    [("summary".to_owned(), summary)].into_iter().collect()
}

pub fn spawn(
    client: Client,
    alerts: Arc<Alerts>,
    name: String,
    cluster: String,
    tasks: &crate::tasks::Tasks,
) {
    let validating = Api::<ValidatingWebhookConfiguration>::all(client.clone());
    let mutating = Api::<MutatingWebhookConfiguration>::all(client);
    let watch_validating = run(validating, alerts.clone(), name.clone(), cluster.clone());
    tasks.spawn("webhook-watch", watch_validating);
    tasks.spawn("webhook-watch", run(mutating, alerts, name, cluster));
}

async fn run<K>(api: Api<K>, alerts: Arc<Alerts>, name: String, cluster: String)
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug
        + Send
        + 'static,
{
    let kind = K::kind(&()).to_string();
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = std::pin::pin!(watcher::watcher(api, config).default_backoff());
    let (mut seen, mut present_in_list, mut known): (Option<String>, bool, bool) =
        (None, false, false);
    let deleted = format!("webhook/{kind}/deleted");
    let modified = format!("webhook/{kind}/modified");
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::Init) => present_in_list = false,
            Ok(watcher::Event::InitApply(obj) | watcher::Event::Apply(obj)) => {
                present_in_list = true;
                alerts.resolve(&deleted);
                let now = fingerprint(&obj);
                if seen.as_ref().is_some_and(|before| *before != now) {
                    tracing::warn!(%kind, %name, "webhook configuration changed");
                    alerts.fire(
                        &modified,
                        labels(&kind, &name, "modified", &cluster),
                        annotations(&kind, &name, "modified"),
                    );
                    let (alerts, key) = (alerts.clone(), modified.clone());
                    tokio::spawn(async move {
                        tokio::time::sleep(HOLD).await;
                        alerts.resolve(&key);
                    });
                }
                seen = Some(now);
            }
            Ok(watcher::Event::InitDone) => {
                if !present_in_list {
                    fire_deleted(&alerts, &deleted, &kind, &name, &cluster, known);
                }
                known = true;
            }
            Ok(watcher::Event::Delete(_)) => {
                fire_deleted(&alerts, &deleted, &kind, &name, &cluster, true);
            }
            Err(e) => {
                tracing::warn!(%kind, error = %e, "webhook configuration watch failed; retrying")
            }
        }
    }
}

fn fire_deleted(
    alerts: &Alerts,
    key: &str,
    kind: &str,
    name: &str,
    cluster: &str,
    was_there: bool,
) {
    let what = if was_there {
        "deleted"
    } else {
        "missing at startup"
    };
    tracing::warn!(%kind, %name, what, "gitops-guard's webhook configuration is not registered");
    alerts.fire(
        key,
        labels(kind, name, "deleted", cluster),
        annotations(kind, name, "deleted"),
    );
}
