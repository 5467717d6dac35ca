//! Who made a manual change, shared by every replica and kept across
//! restarts: each manual change a replica admits (warn, audit, break-glass)
//! is written as a Kubernetes Event on the object, and every replica
//! watches those Events back into its journal. The leader, whichever replica
//! admitted the change, then names the person in the drift alert.
//!
//! Why Events: the apiserver already stores them, bounded (they expire
//! after its `--event-ttl`, one hour by default), in the object's namespace,
//! where `kubectl describe` and `kubectl events` show them next to the
//! object; the guard writes Events already, so it needs no new store, CRD or
//! volume. A ConfigMap or a CRD per object would be unbounded and need its
//! own clean-up; a Lease-style annotation on the object would be a write to
//! a Git-owned object. What this costs: one create per manual change let
//! through (denials write nothing), and list/watch on Events (filtered by
//! the `gitops-guard.io/attribution` label) in the guard's RBAC.
//!
//! A change older than the Event TTL, or whose Event was dropped (queue
//! full, counted) or failed to write (counted), is named by its field
//! manager, as before.

use std::{collections::BTreeMap, sync::Arc};

use futures::StreamExt;
use k8s_openapi::{
    api::core::v1::{Event, EventSource, ObjectReference},
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time},
};
use kube::{
    Api, Client,
    api::PostParams,
    runtime::{WatchStreamExt, watcher},
};
use prometheus::{IntCounter, IntCounterVec, Opts, Registry};
use tokio::sync::mpsc;

use super::{
    announce::Admitted,
    journal::{Admission, JournalEntry},
    watch::DriftWatch,
};
use crate::object_ref::ObjectRef;

/// Marks the guard's attribution Events; the watch selects on it.
pub const LABEL: &str = "gitops-guard.io/attribution";
const USER: &str = "gitops-guard.io/user";
const ADMISSION: &str = "gitops-guard.io/admission";
const OBJECT: &str = "gitops-guard.io/object";
const ADMITTED_AT: &str = "gitops-guard.io/admitted-at";
pub const REASON: &str = "ManualChangeAdmitted";
const COMPONENT: &str = "gitops-guard";

/// The attribution Event for one admitted change, written by `instance`.
pub fn event_of(admitted: &Admitted, instance: &str) -> Event {
    let Admitted {
        object,
        involved,
        entry,
    } = admitted;
    // Events of cluster-scoped objects live in `default`, as kubectl's do.
    let namespace = if object.namespace.is_empty() {
        "default".to_owned()
    } else {
        object.namespace.clone()
    };
    let annotations = BTreeMap::from([
        (USER.to_owned(), entry.user.clone()),
        (ADMISSION.to_owned(), entry.admission.as_str().to_owned()),
        (OBJECT.to_owned(), object.to_string()),
        (ADMITTED_AT.to_owned(), entry.at.to_string()),
    ]);
    let now = jiff::Timestamp::from_second(entry.at).unwrap_or_else(|_| jiff::Timestamp::now());
    let how = match entry.admission {
        Admission::Warned => "in a warn-mode namespace",
        Admission::Audited => "in an audit-mode namespace",
        Admission::BreakGlass => "under a break-glass grant",
        Admission::ControllerImpersonation => "as a controller without its Pod-bound token",
    };
    let prefix: String = object.name.chars().take(200).collect();
    Event {
        metadata: ObjectMeta {
            generate_name: Some(format!("{prefix}.")),
            namespace: Some(namespace),
            labels: Some(BTreeMap::from([(
                LABEL.to_owned(),
                "manual-change".to_owned(),
            )])),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some(involved.api_version.clone()),
            kind: Some(involved.kind.clone()),
            name: Some(object.name.clone()),
            namespace: (!object.namespace.is_empty()).then(|| object.namespace.clone()),
            ..ObjectReference::default()
        },
        reason: Some(REASON.to_owned()),
        message: Some(format!(
            "{} changed this object outside Git; the change was let through {how}.",
            entry.user
        )),
        type_: Some(
            if entry.admission == Admission::BreakGlass {
                "Warning"
            } else {
                "Normal"
            }
            .to_owned(),
        ),
        source: Some(EventSource {
            component: Some(COMPONENT.to_owned()),
            host: None,
        }),
        reporting_component: Some(COMPONENT.to_owned()),
        reporting_instance: Some(instance.to_owned()),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        count: Some(1),
        ..Event::default()
    }
}

/// The object and entry an attribution Event records, if it is one.
pub fn read(event: &Event) -> Option<(ObjectRef, JournalEntry)> {
    let annotations = event.metadata.annotations.as_ref()?;
    let object = annotations.get(OBJECT)?.parse().ok()?;
    let entry = JournalEntry {
        user: annotations.get(USER)?.clone(),
        at: annotations.get(ADMITTED_AT)?.parse().ok()?,
        admission: Admission::parse(annotations.get(ADMISSION)?)?,
    };
    Some((object, entry))
}

#[derive(Clone)]
struct Metrics {
    /// Attribution Events by outcome: written, failed, read.
    events: IntCounterVec,
}

impl Metrics {
    fn new(registry: &Registry, dropped: IntCounter) -> Result<Self, prometheus::Error> {
        let events = IntCounterVec::new(
            Opts::new(
                "gitops_guard_attribution_events_total",
                "Attribution Events (who made a manual change the webhook let through): \
                 written by this replica, failed to write, read back from any replica.",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(events.clone()))?;
        registry.register(Box::new(dropped))?;
        Ok(Self { events })
    }
}

/// Starts the writer (every admitted manual change becomes an Event) and
/// the reader (every attribution Event goes into `drift`'s journal, and a
/// drifted object's alert is described again).
pub fn spawn(
    client: Client,
    admitted: mpsc::Receiver<Admitted>,
    dropped: IntCounter,
    drift: Arc<DriftWatch>,
    registry: &Registry,
    tasks: &crate::tasks::Tasks,
) -> Result<(), prometheus::Error> {
    let metrics = Metrics::new(registry, dropped)?;
    let instance = std::env::var("POD_NAME").unwrap_or_else(|_| super::start::identity());
    // Through the drain: a stopping replica still admits changes.
    tasks.spawn_through_drain(
        "attribution-writer",
        write(client.clone(), admitted, instance, metrics.clone()),
    );
    tasks.spawn("attribution-reader", read_back(client, drift, metrics));
    Ok(())
}

async fn write(
    client: Client,
    mut admitted: mpsc::Receiver<Admitted>,
    instance: String,
    metrics: Metrics,
) {
    while let Some(change) = admitted.recv().await {
        let event = event_of(&change, &instance);
        let namespace = event.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
        match api.create(&PostParams::default(), &event).await {
            Ok(_) => metrics.events.with_label_values(&["written"]).inc(),
            Err(e) => {
                metrics.events.with_label_values(&["failed"]).inc();
                tracing::warn!(object = %change.object, error = %e,
                    "cannot write the attribution Event: drift will name the field manager");
            }
        }
    }
}

async fn read_back(client: Client, drift: Arc<DriftWatch>, metrics: Metrics) {
    let api: Api<Event> = Api::all(client);
    let config = watcher::Config::default().labels(LABEL);
    let events = watcher::watcher(api, config)
        .default_backoff()
        .applied_objects();
    let mut events = std::pin::pin!(events);
    while let Some(next) = events.next().await {
        match next {
            Ok(event) => {
                let Some((object, entry)) = read(&event) else {
                    continue;
                };
                metrics.events.with_label_values(&["read"]).inc();
                if drift.journal.record_if_newer(object.clone(), entry) {
                    drift.attributed(&object);
                }
            }
            Err(e) => tracing::warn!(error = %e, "attribution Event watch failed; retrying"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::announce::Involved;

    #[test]
    fn an_attribution_event_reads_back_as_the_change_it_records() {
        let admitted = Admitted {
            object: ObjectRef::new("apps", "deployments", "shop", "web"),
            involved: Involved {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
            },
            entry: JournalEntry {
                user: "alice".into(),
                at: 1_764_000_000,
                admission: Admission::Warned,
            },
        };
        let event = event_of(&admitted, "gitops-guard-0");
        assert_eq!(event.metadata.namespace.as_deref(), Some("shop"));
        assert_eq!(event.involved_object.kind.as_deref(), Some("Deployment"));
        assert_eq!(event.reason.as_deref(), Some(REASON));
        assert_eq!(
            read(&event),
            Some((admitted.object.clone(), admitted.entry.clone()))
        );
    }

    #[test]
    fn a_cluster_scoped_object_is_attributed_in_default() {
        let admitted = Admitted {
            object: ObjectRef::new("", "namespaces", "", "prod"),
            involved: Involved {
                api_version: "v1".into(),
                kind: "Namespace".into(),
            },
            entry: JournalEntry {
                user: "bob".into(),
                at: 1_764_000_000,
                admission: Admission::BreakGlass,
            },
        };
        let event = event_of(&admitted, "i");
        assert_eq!(event.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(event.involved_object.namespace, None);
        assert_eq!(event.type_.as_deref(), Some("Warning"));
        assert_eq!(read(&event).map(|(o, _)| o), Some(admitted.object));
    }

    #[test]
    fn an_event_without_our_annotations_is_not_an_attribution() {
        assert_eq!(read(&Event::default()), None);
        let mut event = Event::default();
        event.metadata.annotations = Some(BTreeMap::from([
            (USER.to_owned(), "alice".to_owned()),
            (OBJECT.to_owned(), "apps/deployments/shop/web".to_owned()),
            (ADMITTED_AT.to_owned(), "soon".to_owned()),
            (ADMISSION.to_owned(), "warned".to_owned()),
        ]));
        assert_eq!(read(&event), None);
    }
}
