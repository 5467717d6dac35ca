//! Alertmanager delivery: the set of firing alerts is state, not a queue.
//! Every change wakes the sender; every `resend` interval the whole set is
//! posted again with `endsAt` three intervals ahead, and resolved alerts go
//! out once with `endsAt` now. A failed round is retried with backoff, and
//! since the set is re-derived from the cluster after a restart, an outage
//! of Alertmanager or of the guard loses nothing.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use backon::{BackoffBuilder, ExponentialBuilder};
use prometheus::{IntCounterVec, Opts, Registry};
use serde::Serialize;
use tokio::sync::Notify;

use super::leader::Leadership;

pub type Labels = BTreeMap<String, String>;

/// One alert as Alertmanager's v2 API takes it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub labels: Labels,
    pub annotations: Labels,
    pub starts_at: String,
    pub ends_at: String,
}

#[derive(Default)]
struct State {
    /// Firing, by object key: labels, annotations, start.
    active: HashMap<String, (Labels, Labels, jiff::Timestamp)>,
    /// Resolved but not yet delivered.
    resolved: Vec<Alert>,
    /// One-time announcements (a break-glass use): sent by whichever
    /// replica saw the event, leader or not, until delivered.
    announcements: Vec<Alert>,
}

pub struct Alerts {
    state: Mutex<State>,
    wake: Notify,
    urls: Vec<reqwest::Url>,
    client: reqwest::Client,
    /// Read before every round, so a rotated token is picked up.
    bearer_token_file: Option<std::path::PathBuf>,
    resend: Duration,
    deliveries: IntCounterVec,
    leadership: Leadership,
}

impl Alerts {
    pub fn new(
        urls: Vec<reqwest::Url>,
        resend: Duration,
        leadership: Leadership,
        registry: &Registry,
    ) -> Result<Self, anyhow::Error> {
        let deliveries = IntCounterVec::new(
            Opts::new(
                "gitops_guard_alert_deliveries_total",
                "Rounds of alerts posted to Alertmanager, by outcome.",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(deliveries.clone()))?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        Ok(Self {
            state: Mutex::default(),
            wake: Notify::new(),
            urls,
            client,
            bearer_token_file: None,
            resend,
            deliveries,
            leadership,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bearer token (read from a file before every round) and extra CA
    /// certificates for Alertmanager. Basic auth: `https://user:password@host/`.
    pub fn with_delivery(
        mut self,
        bearer_token_file: Option<std::path::PathBuf>,
        ca_file: Option<&std::path::Path>,
    ) -> Result<Self, anyhow::Error> {
        if let Some(path) = ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("--alertmanager-ca-file {}: {e}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| anyhow::anyhow!("--alertmanager-ca-file {}: {e}", path.display()))?;
            self.client = reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .tls_certs_merge(certs)
                .build()?;
        }
        self.bearer_token_file = bearer_token_file;
        Ok(self)
    }

    /// Starts or updates the alert for `key`; its start time is kept.
    pub fn fire(&self, key: &str, labels: Labels, annotations: Labels) {
        let mut state = self.lock();
        let start = state
            .active
            .get(key)
            .map_or_else(jiff::Timestamp::now, |(_, _, s)| *s);
        let changed = state
            .active
            .insert(key.to_owned(), (labels.clone(), annotations.clone(), start))
            .is_none_or(|(l, a, _)| l != labels || a != annotations);
        drop(state);
        if changed {
            self.wake.notify_one();
        }
    }

    /// Ends the alert for `key`, if it was firing.
    pub fn resolve(&self, key: &str) {
        let mut state = self.lock();
        if let Some((labels, annotations, start)) = state.active.remove(key) {
            let now = jiff::Timestamp::now();
            state.resolved.push(Alert {
                labels,
                annotations,
                starts_at: start.to_string(),
                ends_at: now.to_string(),
            });
            drop(state);
            self.wake.notify_one();
        }
    }

    pub fn is_leader(&self) -> bool {
        self.leadership.is_leader()
    }

    /// An alert that fires for `hold` from now, sent once by this replica
    /// whether it leads or not (only it saw the event).
    pub fn announce(&self, labels: Labels, annotations: Labels, hold: Duration) {
        let now = jiff::Timestamp::now();
        let ends = now.checked_add(hold).unwrap_or(now);
        let alert = Alert {
            labels,
            annotations,
            starts_at: now.to_string(),
            ends_at: ends.to_string(),
        };
        // A repeat of a pending announcement replaces it: a flood of
        // flagged requests is one alert, not a growing queue.
        let mut state = self.lock();
        let pending = &mut state.announcements;
        match pending.iter_mut().find(|a| a.labels == alert.labels) {
            Some(same) => *same = alert,
            None => pending.push(alert),
        }
        drop(state);
        self.wake.notify_one();
    }

    /// Sends at once (a new leader does not wait for the next tick).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub fn firing(&self) -> usize {
        self.lock().active.len()
    }

    /// Everything to post now: firing alerts and undelivered resolutions.
    /// Everything to post now, and how many resolutions and announcements
    /// it carries (dropped once delivered).
    fn round(&self) -> (Vec<Alert>, usize, usize) {
        let mut state = self.lock();
        if !self.leadership.is_leader() {
            // The leader delivers the firing set and resolutions; a follower
            // keeps the set warm for when it takes over.
            state.resolved.clear();
            let announcements = state.announcements.clone();
            let n = announcements.len();
            return (announcements, 0, n);
        }
        let ends = jiff::Timestamp::now()
            .checked_add(self.resend * 3)
            .unwrap_or_else(|_| jiff::Timestamp::now());
        let mut alerts: Vec<Alert> = state
            .active
            .values()
            .map(|(labels, annotations, start)| Alert {
                labels: labels.clone(),
                annotations: annotations.clone(),
                starts_at: start.to_string(),
                ends_at: ends.to_string(),
            })
            .collect();
        let resolved = state.resolved.len();
        alerts.extend(state.resolved.iter().cloned());
        let announced = state.announcements.len();
        alerts.extend(state.announcements.iter().cloned());
        (alerts, resolved, announced)
    }

    async fn post(&self, alerts: &[Alert]) -> Result<(), String> {
        let token = match &self.bearer_token_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| format!("bearer token {}: {e}", path.display()))?
                    .trim()
                    .to_owned(),
            ),
            None => None,
        };
        for base in &self.urls {
            let url = base
                .join("api/v2/alerts")
                .map_err(|e| format!("{base}: {e}"))?;
            let mut request = self.client.post(url.clone()).json(alerts);
            if let Some(token) = &token {
                request = request.bearer_auth(token);
            }
            if !base.username().is_empty() {
                request = request.basic_auth(base.username(), base.password());
            }
            let response = request.send().await.map_err(|e| format!("{url}: {e}"))?;
            if !response.status().is_success() {
                let status = response.status();
                let body: String = response
                    .text()
                    .await
                    .unwrap_or_default()
                    .chars()
                    .take(200)
                    .collect();
                return Err(format!("{url}: HTTP {status}: {body}"));
            }
        }
        Ok(())
    }

    /// The sender: runs for the life of the process.
    pub async fn run(self: Arc<Self>) {
        if self.urls.is_empty() {
            return;
        }
        // 1 s doubling to 30 s between failed rounds; reset by a delivery.
        let retries = ExponentialBuilder::default()
            .with_min_delay(Duration::from_secs(1))
            .with_max_delay(Duration::from_secs(30))
            .without_max_times();
        let mut backoff = retries.build();
        loop {
            let (alerts, resolved, announced) = self.round();
            let wait = if alerts.is_empty() {
                self.resend
            } else {
                match self.post(&alerts).await {
                    Ok(()) => {
                        self.deliveries.with_label_values(&["ok"]).inc();
                        // Drop only what this round carried.
                        let mut state = self.lock();
                        state.resolved.drain(..resolved);
                        state.announcements.drain(..announced);
                        drop(state);
                        backoff = retries.build();
                        self.resend
                    }
                    Err(e) => {
                        self.deliveries.with_label_values(&["error"]).inc();
                        let wait = backoff.next().unwrap_or(Duration::from_secs(30));
                        tracing::warn!(error = %e, alerts = alerts.len(), retry_in = ?wait, "cannot deliver alerts");
                        wait
                    }
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {},
                () = self.wake.notified() => {},
            }
        }
    }
}
