//! The apiserver's own admission histograms, scraped from /metrics before
//! and after a run: the webhook's (gitops-guard's, the null one's or
//! Kyverno's) and the ValidatingAdmissionPolicy's.

use std::collections::BTreeMap;

use super::cluster::Env;

const WEBHOOK: &str = "apiserver_admission_webhook_admission_duration_seconds_bucket";
const POLICY: &str = "apiserver_validating_admission_policy_check_duration_seconds_bucket";
const GUARD: &str = "gitops_guard_admission_duration_seconds_bucket{webhook=\"validate\"";

/// Cumulative bucket counts by (metric, le), summed over the other labels
/// (only gitops-guard's webhooks and the benchmark's policy count).
#[derive(Debug, Default, Clone)]
pub struct Scrape(BTreeMap<(String, String), f64>);

pub struct Delta(BTreeMap<(String, String), f64>);

/// The apiserver's /metrics and the guard's own (its admin port).
pub fn scrape(env: &Env) -> Result<Scrape, String> {
    let mut text = env.kubectl("admin", &["get", "--raw", "/metrics"], None)?;
    let port = env.env_value("guard.env", "ADMIN_PORT");
    let guard = std::process::Command::new("curl")
        .args([
            "-sf",
            "--max-time",
            "5",
            &format!("http://127.0.0.1:{port}/metrics"),
        ])
        .output()
        .map_err(|e| format!("curl: {e}"))?;
    text.push_str(&String::from_utf8_lossy(&guard.stdout));
    let mut buckets = BTreeMap::new();
    for line in text.lines() {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        // gitops-guard's webhooks, the null one (named under
        // gitops-guard.io), Kyverno's (`*.kyverno.svc*`) and Gatekeeper's.
        let engine = series.contains("gitops-guard.io")
            || series.contains("kyverno.svc")
            || series.contains("validation.gatekeeper.sh");
        let metric = if series.starts_with(WEBHOOK) && engine {
            "webhook"
        } else if series.starts_with(POLICY) && series.contains("gitops-ownership") {
            "policy"
        } else if series.starts_with(GUARD) {
            "inside gitops-guard"
        } else {
            continue;
        };
        let Some(le) = series
            .split("le=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
        else {
            continue;
        };
        let value: f64 = value.parse().unwrap_or(0.0);
        *buckets
            .entry((metric.to_owned(), le.to_owned()))
            .or_insert(0.0) += value;
    }
    Ok(Scrape(buckets))
}

impl Scrape {
    pub fn since(&self, before: &Scrape) -> Delta {
        let delta = self
            .0
            .iter()
            .map(|(k, v)| (k.clone(), v - before.0.get(k).copied().unwrap_or(0.0)))
            .collect();
        Delta(delta)
    }
}

impl Delta {
    /// `webhook: n calls, 99.9 % <= 5 ms, p99 <= 10 ms` for each metric seen.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for metric in ["webhook", "policy", "inside gitops-guard"] {
            let mut buckets: Vec<(f64, f64)> = self
                .0
                .iter()
                .filter(|((m, _), _)| m == metric)
                .map(|((_, le), n)| (le.parse().unwrap_or(f64::INFINITY), *n))
                .collect();
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            let total = buckets.last().map_or(0.0, |b| b.1);
            if total < 1.0 {
                continue;
            }
            let within = |limit: f64| buckets.iter().find(|b| b.0 >= limit).map_or(0.0, |b| b.1);
            let p99 = buckets
                .iter()
                .find(|b| b.1 >= 0.99 * total)
                .map_or(f64::INFINITY, |b| b.0);
            parts.push(format!(
                "{metric}: {total:.0} calls, {:.2} % <= 5 ms, p99 <= {} ms",
                100.0 * within(0.005) / total,
                p99 * 1000.0
            ));
        }
        if parts.is_empty() {
            "-".to_owned()
        } else {
            parts.join("; ")
        }
    }
}
