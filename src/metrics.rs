//! Admission metrics, registered into an owned registry. Every label set is a
//! closed enum: webhook, operation, decision, reason, cause.

use prometheus::{
    HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry,
    core::{Collector, Desc},
    proto::MetricFamily,
};

use crate::cluster::shared::SharedView;

#[derive(Clone)]
pub struct AdmissionMetrics {
    pub requests: IntCounterVec,
    pub duration: HistogramVec,
    pub in_flight: IntGauge,
    pub invalid: IntCounterVec,
    pub break_glass_uses: IntCounterVec,
    /// Reviews refused at once because `--max-in-flight` were being answered.
    pub shed: prometheus::IntCounter,
}

impl AdmissionMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "gitops_guard_admission_requests_total",
                "Admission reviews answered.",
            ),
            &["webhook", "operation", "decision", "reason"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "gitops_guard_admission_duration_seconds",
                "Time from a decoded review to its encoded response.",
            )
            .buckets(vec![
                0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5,
            ]),
            &["webhook"],
        )?;
        let in_flight = IntGauge::new(
            "gitops_guard_admission_in_flight",
            "Reviews being processed.",
        )?;
        let invalid = IntCounterVec::new(
            Opts::new(
                "gitops_guard_admission_invalid_total",
                "Requests that were not a usable review.",
            ),
            &["cause"],
        )?;
        let break_glass_uses = IntCounterVec::new(
            Opts::new(
                "gitops_guard_break_glass_uses_total",
                "Changes let through by a break-glass grant.",
            ),
            &["operation"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(invalid.clone()))?;
        let shed = prometheus::IntCounter::new(
            "gitops_guard_admission_shed_total",
            "Reviews refused with 503 because --max-in-flight reviews were in progress.",
        )?;
        registry.register(Box::new(break_glass_uses.clone()))?;
        registry.register(Box::new(shed.clone()))?;
        Ok(Self {
            requests,
            duration,
            in_flight,
            invalid,
            break_glass_uses,
            shed,
        })
    }
}

/// Decrements the in-flight gauge when a review ends, however it ends.
pub struct InFlight(IntGauge);

impl InFlight {
    pub fn start(gauge: &IntGauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Cluster-view sizes, read at scrape time rather than kept up to date.
pub struct ViewSizeCollector {
    view: SharedView,
    desc: Desc,
}

impl ViewSizeCollector {
    pub fn register(registry: &Registry, view: SharedView) -> Result<(), prometheus::Error> {
        let desc = Desc::new(
            "gitops_guard_cluster_view_objects".into(),
            "Objects held in the in-memory cluster view.".into(),
            vec!["kind".into()],
            Default::default(),
        )?;
        registry.register(Box::new(Self { view, desc }))
    }
}

impl Collector for ViewSizeCollector {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        // A scrape never waits on a writer: a busy view skips one sample.
        let Some(view) = self.view.try_read() else {
            return Vec::new();
        };
        let sizes = view.sizes();
        let gauge = match prometheus::IntGaugeVec::new(
            Opts::new(
                "gitops_guard_cluster_view_objects",
                "Objects held in the in-memory cluster view.",
            ),
            &["kind"],
        ) {
            Ok(g) => g,
            Err(_) => return Vec::new(),
        };
        let pairs = [
            ("namespace", sizes.namespaces),
            ("breakglass", sizes.grants),
            ("parent", sizes.parents),
            ("flux-object", sizes.flux_objects),
            ("service-account", sizes.service_accounts),
            ("controller-pod", sizes.controller_pods),
        ];
        for (kind, n) in pairs {
            gauge
                .with_label_values(&[kind])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        gauge.collect()
    }
}
