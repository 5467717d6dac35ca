//! Kubernetes Events on drifted objects, through kube's `Recorder` (which
//! folds repeats into a series). Detection never waits on the API: events
//! go through a bounded channel and are dropped, counted, when it is full.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::{
    Client,
    runtime::events::{Event, EventType, Recorder, Reporter},
};
use tokio::sync::mpsc;

pub struct EventJob {
    pub reference: ObjectReference,
    pub warning: bool,
    pub reason: &'static str,
    pub action: &'static str,
    pub note: String,
}

/// The sending side; `None` where no events are wanted (tests, scans).
pub type EventSender = mpsc::Sender<EventJob>;

/// Starts the publisher and returns where to send events.
pub fn spawn(client: Client, tasks: &crate::tasks::Tasks) -> EventSender {
    let (tx, mut rx) = mpsc::channel::<EventJob>(1024);
    let reporter = Reporter {
        controller: "gitops-guard".into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let recorder = Recorder::new(client, reporter);
    tasks.spawn("event-publisher", async move {
        while let Some(job) = rx.recv().await {
            let event = Event {
                type_: if job.warning {
                    EventType::Warning
                } else {
                    EventType::Normal
                },
                reason: job.reason.into(),
                note: Some(job.note.chars().take(1000).collect()),
                action: job.action.into(),
                secondary: None,
            };
            if let Err(e) = recorder.publish(&event, &job.reference).await {
                tracing::warn!(error = %e, reason = job.reason, "cannot publish event");
            }
        }
    });
    tx
}
