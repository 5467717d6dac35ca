//! What the validating shell tells the drift side as a review happens, one
//! channel with two ends: [`ToDrift`] in the shell, [`FromAdmission`] in the
//! drift side. A manual change let through (warn, audit, break-glass) goes
//! into this replica's journal, which the drift watcher reads to name who,
//! and onto a bounded queue from which `super::attribution` writes it as a
//! Kubernetes Event, so the leader names the person whichever replica
//! admitted the change, and after a restart. A break-glass use or a request
//! posing as a controller is also a typed event on a bounded channel, turned
//! into Alertmanager alerts by a supervised task (`admission-alerts`).

use std::sync::Arc;

use tokio::sync::mpsc;

use super::{
    alerts::{Alerts, Labels},
    journal::{Admission, Journal, JournalEntry},
};
use crate::object_ref::ObjectRef;

/// One review worth telling the drift side about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    pub object: ObjectRef,
    /// The object's `apiVersion` and `kind`, for the Event that names it.
    pub involved: Involved,
    pub entry: JournalEntry,
}

/// An object's `apiVersion` and `kind`, as an Event's `involvedObject`
/// names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Involved {
    pub api_version: String,
    pub kind: String,
}

/// The validating shell's end; the default one is heard by nobody (tests,
/// benches).
#[derive(Clone, Default)]
pub struct ToDrift {
    journal: Arc<Journal>,
    announcements: Announcements,
    attributions: Announcements,
    /// Attributions dropped because their queue was full; registered as a
    /// metric by `super::attribution`.
    dropped: Option<prometheus::IntCounter>,
}

/// The drift side's end: who the shell let through, and the events worth
/// an alert.
pub struct FromAdmission {
    pub journal: Arc<Journal>,
    pub admitted: mpsc::Receiver<Admitted>,
    /// Manual changes to write as attribution Events.
    pub attributions: mpsc::Receiver<Admitted>,
    /// The counter of attributions dropped at the queue.
    pub attributions_dropped: prometheus::IntCounter,
}

/// Both ends of one channel.
pub fn channel() -> Result<(ToDrift, FromAdmission), prometheus::Error> {
    let journal = Arc::new(Journal::default());
    let (announcements, admitted) = Announcements::channel();
    let (attributions, attributed) = Announcements::channel();
    let dropped = prometheus::IntCounter::new(
        "gitops_guard_attribution_events_dropped_total",
        "Attribution Events not written because their queue (1024) was full.",
    )?;
    let to_drift = ToDrift {
        journal: journal.clone(),
        announcements,
        attributions,
        dropped: Some(dropped.clone()),
    };
    let from_admission = FromAdmission {
        journal,
        admitted,
        attributions: attributed,
        attributions_dropped: dropped,
    };
    Ok((to_drift, from_admission))
}

impl ToDrift {
    /// One admitted manual change (or denied impersonation): remembered for
    /// the drift watcher, written as an attribution Event for the other
    /// replicas, announced when it deserves an alert now. A denied
    /// impersonation changed nothing and is only announced.
    pub fn admitted(&self, object: ObjectRef, involved: Involved, entry: JournalEntry) {
        let admitted = Admitted {
            object,
            involved,
            entry,
        };
        match admitted.entry.admission {
            Admission::ControllerImpersonation => {
                self.announcements.send(admitted);
                return;
            }
            Admission::BreakGlass => {
                self.announcements.send(admitted.clone());
            }
            Admission::Warned | Admission::Audited => {}
        }
        self.journal
            .record(admitted.object.clone(), admitted.entry.clone());
        if !self.attributions.send(admitted)
            && let Some(dropped) = &self.dropped
        {
            dropped.inc();
        }
    }
}

/// The alert half of the channel; the default one goes nowhere.
#[derive(Clone, Default)]
struct Announcements(Option<mpsc::Sender<Admitted>>);

/// Announcements waiting at once before one is dropped (and logged): more
/// than a cluster's break-glass uses in any one second.
const CAPACITY: usize = 1024;

impl Announcements {
    fn channel() -> (Self, mpsc::Receiver<Admitted>) {
        let (tx, rx) = mpsc::channel(CAPACITY);
        (Self(Some(tx)), rx)
    }

    /// Never waits: a review must not block on the alert sender or the API.
    /// False when the queue was full and `admitted` was dropped (logged).
    fn send(&self, admitted: Admitted) -> bool {
        let Some(tx) = &self.0 else { return true };
        match tx.try_send(admitted) {
            Err(mpsc::error::TrySendError::Full(dropped)) => {
                tracing::warn!(object = %dropped.object, user = %dropped.entry.user,
                    "admission queue full: an alert or attribution was dropped");
                false
            }
            // Closed: the drift side is not running (`--drift` off).
            Err(mpsc::error::TrySendError::Closed(_)) | Ok(()) => true,
        }
    }
}

/// Runs for the life of the process.
pub async fn run(mut admitted: mpsc::Receiver<Admitted>, alerts: Arc<Alerts>, cluster: String) {
    while let Some(Admitted { object, entry, .. }) = admitted.recv().await {
        let alert = match entry.admission {
            Admission::BreakGlass => break_glass_alert(&object, &entry, &cluster),
            Admission::ControllerImpersonation => controller_token_alert(&object, &entry, &cluster),
            Admission::Warned | Admission::Audited => continue,
        };
        alerts.announce(alert.0, alert.1, BREAK_GLASS_HOLD);
    }
}

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
