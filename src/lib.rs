//! gitops-guard: admission webhook and drift guard for GitOps clusters.
//!
//! The data flow is described in README.md: a pure `guard::decide` core with
//! thin HTTP (`server`, `admin`) and watch (`cluster`) shells around it.
#![forbid(unsafe_code)]

pub mod admission;
pub mod cert;
pub mod guard;
pub mod tls;
