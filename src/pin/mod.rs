//! Digest pinning: the mutating webhook rewrites `repo:tag` to
//! `repo:tag@sha256:…` as the registry serves it at admission time.
//!
//! `reference` and `pullsecret` parse what users write; `locate` and `plan`
//! are the pure core (which fields, which patch); `registry`, `cache`,
//! `credentials` and `resolver` are the I/O around it (registry HEAD, LRU
//! with TTL and single-flight, pull secrets); `serve` is the HTTP shell.

pub use gitops_guard_core::pin::{error, locate, plan, reference, settings};
pub mod cache;
pub mod challenge;
pub mod credentials;
pub mod metrics;
pub mod pullsecret;
pub mod registry;
pub mod resolver;
pub mod serve;
