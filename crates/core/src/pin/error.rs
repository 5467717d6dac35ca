//! Why a tag could not be resolved: cloned into the negative cache and into
//! every waiter of a single-flight resolution, so it holds only strings.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("{registry} has no manifest for {repository}:{tag}")]
    NotFound {
        registry: String,
        repository: String,
        tag: String,
    },
    #[error("{registry} refused access to {repository}: {detail}")]
    Unauthorized {
        registry: String,
        repository: String,
        detail: String,
    },
    #[error("{registry} is rate limiting requests (HTTP 429){}", retry_hint(*.retry_after))]
    RateLimited {
        registry: String,
        retry_after: Option<Duration>,
    },
    #[error("{registry} did not answer within {after:?}")]
    Timeout { registry: String, after: Duration },
    #[error("cannot reach {registry}: {detail}")]
    Unreachable { registry: String, detail: String },
    #[error("{registry} answered HTTP {status}: {detail}")]
    Status {
        registry: String,
        status: u16,
        detail: String,
    },
    #[error("{registry}: {detail}")]
    Protocol { registry: String, detail: String },
    #[error("{registry}: not in the digest cache, and a dry run never asks the registry")]
    DryRunNotCached { registry: String },
}

fn retry_hint(after: Option<Duration>) -> String {
    after.map_or_else(String::new, |d| format!(", retry after {}s", d.as_secs()))
}

impl ResolveError {
    /// A bounded label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "not-found",
            Self::Unauthorized { .. } => "unauthorized",
            Self::RateLimited { .. } => "rate-limited",
            Self::Timeout { .. } => "timeout",
            Self::Unreachable { .. } => "unreachable",
            Self::Status { .. } => "status",
            Self::Protocol { .. } => "protocol",
            Self::DryRunNotCached { .. } => "dry-run-not-cached",
        }
    }
}
