//! The drift watchers: for each configured kind, metadata-only watches of
//! Flux-labelled objects (so Secrets are never read), each event trimmed to
//! a record and judged by `detect`. Only drifted objects are kept; a relist
//! resolves whatever it no longer finds drifted (level-triggered).

use crate::object_ref::ObjectRef;
use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, PoisonError},
};

pub use super::metrics::DriftMetrics;
use futures::StreamExt;
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, GroupVersionKind, PartialObjectMeta},
    core::GroupVersion,
    runtime::{WatchStreamExt, watcher},
};

use k8s_openapi::api::core::v1::ObjectReference;

use super::{
    alerts::{Alerts, Labels},
    detect::{Drift, detect},
    events::{EventJob, EventSender},
    journal::Journal,
    record::{Record, managers as record_managers, record},
    settings::WatchedKind,
};
use crate::{
    cluster::shared::SharedView,
    guard::{
        decide::mode_of,
        message::where_in_git,
        ownership::{ARGO_TRACKING_ID, HELM_NAME, KUSTOMIZE_NAME},
    },
    policy::{Mode, Policy},
};

/// Shared by every watcher task.
pub struct DriftWatch {
    pub policy: Arc<Policy>,
    pub view: SharedView,
    pub journal: Arc<Journal>,
    pub alerts: Arc<Alerts>,
    pub metrics: DriftMetrics,
    pub cluster: String,
    /// Where Kubernetes Events go, if anywhere.
    pub events: Option<EventSender>,
    /// Watchers that have not listed yet.
    pending: std::sync::atomic::AtomicUsize,
    /// The objects drifted now.
    drifted: Mutex<HashMap<ObjectRef, Drifted>>,
}

/// What the watcher remembers of a drifted object until it resolves: what
/// its alert was last described from (to describe it again when an
/// attribution arrives after the drift was seen), and for the metrics'
/// labels (configured kinds and owner kinds only) and the resolving Event.
struct Drifted {
    kind: WatchedKind,
    record: Record,
    drift: Drift,
    reference: ObjectReference,
}

fn object_reference(
    kind: &WatchedKind,
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> ObjectReference {
    ObjectReference {
        api_version: Some(GroupVersion::gv(&kind.group, &kind.version).api_version()),
        kind: Some(kind.kind.clone()),
        namespace: meta.namespace.clone(),
        name: meta.name.clone(),
        uid: meta.uid.clone(),
        ..ObjectReference::default()
    }
}

/// `group/plural/namespace/name`, the key of drift state and alerts.
fn key(kind: &WatchedKind, ns: &str, name: &str) -> ObjectRef {
    ObjectRef::new(&kind.group, &kind.plural, ns, name)
}

impl DriftWatch {
    pub fn new(
        policy: Arc<Policy>,
        view: SharedView,
        journal: Arc<Journal>,
        alerts: Arc<Alerts>,
        metrics: DriftMetrics,
        cluster: String,
        events: Option<EventSender>,
    ) -> Self {
        Self {
            policy,
            view,
            journal,
            alerts,
            metrics,
            cluster,
            events,
            pending: std::sync::atomic::AtomicUsize::new(0),
            drifted: Mutex::default(),
        }
    }

    /// One watcher finished its first list.
    fn listed(&self) {
        if self
            .pending
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel)
            == 1
        {
            self.metrics.synced.set(1);
            tracing::info!(drifted = self.drifted_keys().len(), "drift watchers synced");
        }
    }

    fn event(&self, job: EventJob) {
        if !self.alerts.is_leader() {
            return;
        }
        if let Some(events) = &self.events
            && events.try_send(job).is_err()
        {
            self.metrics.events_dropped.inc();
            tracing::warn!("event queue full: a drift event was dropped");
        }
    }

    /// Who changed `key` is now known (an attribution Event arrived): if it
    /// is drifted, its alert is described again and re-sent.
    pub fn attributed(&self, key: &ObjectRef) {
        let seen = {
            let drifted = self.drifted.lock().unwrap_or_else(PoisonError::into_inner);
            drifted.get(key).map(|d| {
                let (kind, record, drift) = (d.kind.clone(), d.record.clone(), d.drift.clone());
                (kind, record, drift, d.reference.clone())
            })
        };
        let Some((kind, record, drift, reference)) = seen else {
            return;
        };
        let ns = reference.namespace.as_deref().unwrap_or("");
        let name = reference.name.as_deref().unwrap_or("");
        let (labels, annotations) = self.describe(&kind, ns, name, &record, &drift);
        tracing::info!(object = %key, changed_by = annotations.get("changed_by").map(String::as_str),
            "drift alert described again: its author is now known");
        self.alerts.fire(&key.to_string(), labels, annotations);
    }

    /// Judges one object as it is now; returns whether it is drifted.
    pub fn evaluate(&self, kind: &WatchedKind, meta: &PartialObjectMeta<DynamicObject>) -> bool {
        let ns = meta.metadata.namespace.as_deref().unwrap_or("");
        let name = meta.metadata.name.as_deref().unwrap_or("");
        let key = key(kind, ns, name);
        let found = record(&self.policy, &meta.metadata).and_then(|r| {
            let reconcilers = self.policy.owners.get(r.owner.kind).field_managers;
            detect(&r, reconcilers, &self.policy.drift.system_managers).map(|d| (r, d))
        });
        match found {
            Some((record, drift)) => {
                let reference = object_reference(kind, &meta.metadata);
                self.fire(kind, &key, reference, &record, &drift);
                true
            }
            None => {
                self.resolve(&key);
                false
            }
        }
    }

    fn fire(
        &self,
        kind: &WatchedKind,
        key: &ObjectRef,
        reference: ObjectReference,
        r: &Record,
        d: &Drift,
    ) {
        let owner_kind = r.owner.kind.object_kind();
        let ns = reference.namespace.clone().unwrap_or_default();
        let name = reference.name.clone().unwrap_or_default();
        let fresh = self
            .drifted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                key.clone(),
                Drifted {
                    kind: kind.clone(),
                    record: r.clone(),
                    drift: d.clone(),
                    reference: reference.clone(),
                },
            )
            .is_none();
        let (labels, annotations) = self.describe(kind, &ns, &name, r, d);
        if fresh {
            let metric = [kind.kind.as_str(), owner_kind];
            self.metrics.drifted.with_label_values(&metric).inc();
            self.metrics.detections.with_label_values(&metric).inc();
            tracing::info!(kind = %kind.kind, namespace = %ns, %name, manager = %d.manager, "drift detected");
            self.event(EventJob {
                reference,
                warning: true,
                reason: "GitOpsDrift",
                action: "Detected",
                note: annotations.get("summary").cloned().unwrap_or_default(),
            });
        }
        self.alerts.fire(&key.to_string(), labels, annotations);
    }

    /// An owned object (as `prior` was) that now carries no ownership
    /// marker: Git's reconciler no longer manages it, which is drift.
    pub fn lost_markers(
        &self,
        kind: &WatchedKind,
        prior: &PartialObjectMeta<DynamicObject>,
        now: &PartialObjectMeta<DynamicObject>,
    ) {
        let Some(was) = record(&self.policy, &prior.metadata) else {
            return;
        };
        let reconcilers = self.policy.owners.get(was.owner.kind).field_managers;
        let system = &self.policy.drift.system_managers;
        let latest = record_managers(&now.metadata)
            .into_iter()
            .filter(|m| !reconcilers.iter().chain(system).any(|r| **r == *m.manager))
            .max_by_key(|m| m.time.unwrap_or(i64::MIN));
        let drift = Drift {
            manager: latest
                .as_ref()
                .map_or_else(|| "unknown".into(), |m| m.manager.to_string()),
            operation: latest
                .as_ref()
                .map_or_else(String::new, |m| m.operation.to_string()),
            at: latest.as_ref().and_then(|m| m.time),
            fields: vec!["ownership markers removed (metadata.labels/annotations)".into()],
        };
        let ns = now.metadata.namespace.as_deref().unwrap_or("");
        let name = now.metadata.name.as_deref().unwrap_or("");
        let reference = object_reference(kind, &now.metadata);
        tracing::warn!(kind = %kind.kind, namespace = ns, name, "ownership markers removed");
        self.fire(kind, &key(kind, ns, name), reference, &was, &drift);
    }

    pub fn resolve(&self, key: &ObjectRef) {
        let gone = self
            .drifted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
        if let Some(Drifted {
            kind,
            record,
            reference,
            ..
        }) = gone
        {
            let kind = kind.kind;
            let labels = [kind.as_str(), record.owner.kind.object_kind()];
            self.metrics.drifted.with_label_values(&labels).dec();
            self.metrics.resolutions.with_label_values(&labels).inc();
            tracing::info!(object = %key, "drift resolved");
            self.alerts.resolve(&key.to_string());
            self.event(EventJob {
                reference,
                warning: false,
                reason: "GitOpsDriftResolved",
                action: "Resolved",
                note: format!("{kind} is back to what its reconciler last applied from Git."),
            });
        }
    }

    pub fn drifted_keys(&self) -> HashSet<ObjectRef> {
        let drifted = self.drifted.lock().unwrap_or_else(PoisonError::into_inner);
        drifted.keys().cloned().collect()
    }
}

mod describe;

mod run;
pub use run::spawn;
