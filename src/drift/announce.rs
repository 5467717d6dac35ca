//! What the validating shell tells the drift side as a review happens, one
//! channel with two ends: [`ToDrift`] in the shell, [`FromAdmission`] in the
//! drift side. A manual change let through (warn, audit, break-glass) goes
//! into the journal, which the drift watcher reads to name who; a
//! break-glass use or a request posing as a controller is also a typed
//! event on a bounded channel, turned into Alertmanager alerts by a
//! supervised task (`admission-alerts`).

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
    pub entry: JournalEntry,
}

/// The validating shell's end; the default one is heard by nobody (tests,
/// benches).
#[derive(Clone, Default)]
pub struct ToDrift {
    journal: Arc<Journal>,
    announcements: Announcements,
}

/// The drift side's end: who the shell let through, and the events worth
/// an alert.
pub struct FromAdmission {
    pub journal: Arc<Journal>,
    pub admitted: mpsc::Receiver<Admitted>,
}

/// Both ends of one channel.
pub fn channel() -> (ToDrift, FromAdmission) {
    let journal = Arc::new(Journal::default());
    let (announcements, admitted) = Announcements::channel();
    let to_drift = ToDrift {
        journal: journal.clone(),
        announcements,
    };
    (to_drift, FromAdmission { journal, admitted })
}

impl ToDrift {
    /// One admitted manual change (or denied impersonation): remembered for
    /// the drift watcher, announced when it deserves an alert now. A denied
    /// impersonation changed nothing and is only announced.
    pub fn admitted(&self, object: ObjectRef, entry: JournalEntry) {
        match entry.admission {
            Admission::ControllerImpersonation => {
                self.announcements.send(Admitted { object, entry });
            }
            Admission::BreakGlass => {
                self.announcements.send(Admitted {
                    object: object.clone(),
                    entry: entry.clone(),
                });
                self.journal.record(object, entry);
            }
            Admission::Warned | Admission::Audited => self.journal.record(object, entry),
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

    /// Never waits: a review must not block on the alert sender.
    fn send(&self, admitted: Admitted) {
        let Some(tx) = &self.0 else { return };
        if let Err(mpsc::error::TrySendError::Full(dropped)) = tx.try_send(admitted) {
            tracing::warn!(object = %dropped.object, user = %dropped.entry.user,
                "announcement queue full: an admission alert was dropped");
        }
    }
}

/// Runs for the life of the process.
pub async fn run(mut admitted: mpsc::Receiver<Admitted>, alerts: Arc<Alerts>, cluster: String) {
    while let Some(Admitted { object, entry }) = admitted.recv().await {
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
