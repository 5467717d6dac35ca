//! TLS reload metrics, registered into a passed registry.

use super::*;

/// Outcome label of `gitops_guard_tls_reloads_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadResult {
    Success,
    Failure,
}

impl ReloadResult {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// Serving-certificate metrics, registered into an owned registry.
#[derive(Debug, Clone)]
pub struct TlsMetrics {
    reloads: IntCounterVec,
    expiry: Gauge,
}

impl TlsMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let reloads = IntCounterVec::new(
            Opts::new(
                "gitops_guard_tls_reloads_total",
                "Serving certificate reload attempts, by result.",
            ),
            &["result"],
        )?;
        let expiry = Gauge::new(
            "gitops_guard_tls_certificate_expiry_timestamp_seconds",
            "notAfter of the serving certificate in use, in Unix seconds.",
        )?;
        registry.register(Box::new(reloads.clone()))?;
        registry.register(Box::new(expiry.clone()))?;
        for result in [ReloadResult::Success, ReloadResult::Failure] {
            reloads.with_label_values(&[result.as_str()]);
        }
        Ok(Self { reloads, expiry })
    }

    /// Counts one reload attempt.
    pub fn record(&self, result: ReloadResult) {
        self.reloads.with_label_values(&[result.as_str()]).inc();
    }

    /// Sets the expiry gauge to the certificate now being served.
    pub fn serving(&self, loaded: &Loaded) {
        self.expiry.set(loaded.not_after as f64);
    }
}
