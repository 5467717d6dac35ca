//! Pinning metrics. Labels are closed sets: cache result, registry outcome
//! (a `ResolveError::kind`), field outcome. Registry hosts and images go to
//! logs, never to labels.

use std::sync::{Arc, Weak};

use super::cache::DigestCache;
use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    core::{Collector, Desc},
    proto::MetricFamily,
};

#[derive(Clone)]
pub struct PinMetrics {
    /// `hit`, `miss` (this caller asks the registry), `coalesced` (waits on another's request).
    pub cache_lookups: IntCounterVec,
    pub cache_evictions: IntCounter,
    /// Outcome `ok` or a `ResolveError::kind`.
    pub registry_requests: IntCounterVec,
    pub registry_duration: Histogram,
    /// Per image field: `pinned`, `already-pinned`, `skipped`, `unchanged`, `failed`.
    pub fields: IntCounterVec,
}

impl PinMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let cache_lookups = IntCounterVec::new(
            Opts::new(
                "gitops_guard_image_cache_lookups_total",
                "Digest cache lookups by result (hit, miss, coalesced).",
            ),
            &["result"],
        )?;
        let cache_evictions = IntCounter::new(
            "gitops_guard_image_cache_evictions_total",
            "Digest cache entries evicted to stay within the size bound.",
        )?;
        let registry_requests = IntCounterVec::new(
            Opts::new(
                "gitops_guard_registry_resolutions_total",
                "Tag resolutions against a registry, by outcome.",
            ),
            &["outcome"],
        )?;
        let registry_duration = Histogram::with_opts(
            HistogramOpts::new(
                "gitops_guard_registry_resolution_duration_seconds",
                "Time to resolve one tag against its registry, token included.",
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
        )?;
        let fields = IntCounterVec::new(
            Opts::new(
                "gitops_guard_image_fields_total",
                "Image fields seen by the mutating webhook, by outcome.",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(cache_lookups.clone()))?;
        registry.register(Box::new(cache_evictions.clone()))?;
        registry.register(Box::new(registry_requests.clone()))?;
        registry.register(Box::new(registry_duration.clone()))?;
        registry.register(Box::new(fields.clone()))?;
        Ok(Self {
            cache_lookups,
            cache_evictions,
            registry_requests,
            registry_duration,
            fields,
        })
    }
}

/// `gitops_guard_image_cache_entries`, read at scrape time.
pub struct CacheSizeCollector {
    cache: Weak<DigestCache>,
    desc: Desc,
}

impl CacheSizeCollector {
    const NAME: &'static str = "gitops_guard_image_cache_entries";
    const HELP: &'static str = "Digests held in the cache (fresh or expired).";

    pub fn register(
        registry: &Registry,
        cache: &Arc<DigestCache>,
    ) -> Result<(), prometheus::Error> {
        let desc = Desc::new(
            Self::NAME.into(),
            Self::HELP.into(),
            Vec::new(),
            Default::default(),
        )?;
        let cache = Arc::downgrade(cache);
        registry.register(Box::new(Self { cache, desc }))
    }
}

impl Collector for CacheSizeCollector {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let Some(cache) = self.cache.upgrade() else {
            return Vec::new();
        };
        let Ok(gauge) = IntGauge::new(Self::NAME, Self::HELP) else {
            return Vec::new();
        };
        gauge.set(i64::try_from(cache.len()).unwrap_or(i64::MAX));
        gauge.collect()
    }
}
