//! What the validating shell tells the drift side as a review happens: a
//! break-glass use, or a request posing as a controller. A typed event on a
//! bounded channel, turned into Alertmanager alerts by a supervised task
//! (`admission-alerts`); the journal only remembers who changed what.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::{
    alerts::{Alerts, Labels},
    journal::{Admission, JournalEntry},
};
use crate::object_ref::ObjectRef;

/// One review worth telling the drift side about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    pub object: ObjectRef,
    pub entry: JournalEntry,
}

/// The shell's end of the channel; the default one goes nowhere (tests,
/// `check`).
#[derive(Clone, Default)]
pub struct Announcements(Option<mpsc::Sender<Admitted>>);

/// Announcements waiting at once before one is dropped (and logged): more
/// than a cluster's break-glass uses in any one second.
const CAPACITY: usize = 1024;

impl Announcements {
    pub fn channel() -> (Self, mpsc::Receiver<Admitted>) {
        let (tx, rx) = mpsc::channel(CAPACITY);
        (Self(Some(tx)), rx)
    }

    /// Never waits: a review must not block on the alert sender.
    pub fn send(&self, admitted: Admitted) {
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
