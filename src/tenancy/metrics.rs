//! Audit metrics: findings by kind and tenant (tenants are few and named by
//! the platform team), runs by outcome.

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};

use super::{audit::Finding, report::AuditReport};

#[derive(Clone)]
pub struct TenancyMetrics {
    pub findings: IntGaugeVec,
    pub runs: IntCounterVec,
}

impl TenancyMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let findings = IntGaugeVec::new(
            Opts::new(
                "gitops_guard_tenancy_findings",
                "Findings of the last tenant audit, by finding and tenant.",
            ),
            &["finding", "tenant"],
        )?;
        let runs = IntCounterVec::new(
            Opts::new(
                "gitops_guard_tenancy_audit_runs_total",
                "Tenant audit runs, by outcome.",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(findings.clone()))?;
        registry.register(Box::new(runs.clone()))?;
        Ok(Self { findings, runs })
    }

    pub fn record(&self, report: &AuditReport) {
        self.findings.reset();
        for f in &report.findings {
            let (finding, tenant) = match f {
                Finding::ImpersonationRisk { tenant, .. } => ("impersonation-risk", tenant),
                Finding::TenantEscalation { tenant, .. } => ("tenant-escalation", tenant),
            };
            self.findings.with_label_values(&[finding, tenant]).inc();
        }
        self.runs.with_label_values(&["ok"]).inc();
    }
}
