//! Flux multi-tenancy, the pure half: the RBAC model, the audit's plan and
//! its findings.

pub mod audit;
pub mod questions;
pub mod rbac;
pub mod settings;

#[cfg(test)]
mod rbac_tests;
