//! gitops-guard: admission webhook and drift guard for GitOps clusters.
//!
//! The data flow is described in README.md: a pure `guard::decide` core with
//! thin HTTP (`server`, `admin`) and watch (`cluster`) shells around it.
#![forbid(unsafe_code)]

pub mod admin;
pub mod admission;
pub mod app;
pub mod cert;
pub mod check;
pub mod check_mutate;
pub mod cluster;
pub mod config;
pub mod drain;
pub mod drift;
pub mod duration;
pub mod guard;
pub mod metrics;
pub mod pin;
pub mod policy;
pub mod server;
pub mod table;
pub mod tasks;
pub mod telemetry;
pub mod tenancy;
pub mod tls;
