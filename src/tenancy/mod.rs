//! Flux multi-tenancy: the tenant model, the impersonation and escalation
//! audit, and its reports. The admission rules live in `guard::tenancy`.

pub mod audit;
pub mod metrics;
pub mod questions;
pub mod rbac;
pub mod report;
pub mod scan;
pub mod settings;
pub mod watch;

#[cfg(test)]
mod rbac_tests;
