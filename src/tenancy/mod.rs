//! Flux multi-tenancy: the tenant model, the impersonation and escalation
//! audit, and its reports. The admission rules live in `guard::tenancy`.

pub use gitops_guard_core::tenancy::{audit, questions, rbac, settings};
pub mod metrics;
pub mod report;
pub mod scan;
pub mod watch;
