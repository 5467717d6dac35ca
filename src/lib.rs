//! gitops-guard: admission webhook and drift guard for GitOps clusters.
//!
//! The runtime around the pure core (`gitops-guard-core`, re-exported here
//! under the same module names): HTTP shells (`server`, `pin::serve`,
//! `admin`), TLS, reflectors, watchers, the alert sender, supervised tasks
//! and the CLI. ARCHITECTURE.md has the map.
#![forbid(unsafe_code)]

pub use gitops_guard_core::{admission, duration, guard, identity, object_ref, policy};

pub mod admin;
pub mod app;
pub mod cert;
pub mod check;
pub mod check_mutate;
pub mod cluster;
pub mod config;
pub mod drain;
pub mod drift;
pub mod metrics;
pub mod pin;
pub mod runtime;
pub mod server;
pub mod table;
pub mod tasks;
pub mod telemetry;
pub mod tenancy;
pub mod tls;
pub mod webhook;
