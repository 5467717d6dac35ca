//! Flux multi-tenancy: the tenant model, the impersonation and escalation
//! audit, and its reports. The admission rules live in `guard::tenancy`.

pub mod audit;
pub mod rbac;
pub mod report;
pub mod scan;
pub mod settings;

#[cfg(test)]
mod rbac_tests;
