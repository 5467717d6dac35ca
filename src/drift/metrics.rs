//! Drift metrics: bounded labels only (kind and owner kind come from the
//! policy's list and a closed enum).

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};

#[derive(Clone)]
pub struct DriftMetrics {
    pub drifted: IntGaugeVec,
    pub detections: IntCounterVec,
    pub resolutions: IntCounterVec,
    /// Watch failures by kind (a kind the cluster does not serve shows here).
    pub watch_errors: IntCounterVec,
    /// 1 once every drift watcher has listed once.
    pub synced: prometheus::IntGauge,
    /// Drift Events dropped because the publisher's queue was full.
    pub events_dropped: prometheus::IntCounter,
}

impl DriftMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let labels = &["kind", "owner_kind"];
        let drifted = IntGaugeVec::new(
            Opts::new(
                "gitops_guard_drifted_objects",
                "Owned objects drifted from Git now.",
            ),
            labels,
        )?;
        let detections = IntCounterVec::new(
            Opts::new(
                "gitops_guard_drift_detections_total",
                "Objects found drifted.",
            ),
            labels,
        )?;
        let resolutions = IntCounterVec::new(
            Opts::new(
                "gitops_guard_drift_resolutions_total",
                "Drifted objects brought back by their reconciler.",
            ),
            labels,
        )?;
        let watch_errors = IntCounterVec::new(
            Opts::new(
                "gitops_guard_drift_watch_errors_total",
                "Failed drift watch requests, by kind; retried with backoff.",
            ),
            &["kind"],
        )?;
        let synced = prometheus::IntGauge::new(
            "gitops_guard_drift_synced",
            "1 once every drift watcher has listed its objects once.",
        )?;
        let events_dropped = prometheus::IntCounter::new(
            "gitops_guard_drift_events_dropped_total",
            "Drift Kubernetes Events dropped because the publisher's queue (1024) was full.",
        )?;
        registry.register(Box::new(events_dropped.clone()))?;
        registry.register(Box::new(drifted.clone()))?;
        registry.register(Box::new(detections.clone()))?;
        registry.register(Box::new(resolutions.clone()))?;
        registry.register(Box::new(watch_errors.clone()))?;
        registry.register(Box::new(synced.clone()))?;
        Ok(Self {
            drifted,
            detections,
            resolutions,
            watch_errors,
            synced,
            events_dropped,
        })
    }
}
