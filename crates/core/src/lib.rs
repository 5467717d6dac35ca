//! gitops-guard's pure core: everything that decides, and nothing that does
//! I/O or awaits. Given the policy, the cluster view and one request,
//! `guard::decide` says whether the write may happen; `pin::plan` which
//! image fields a review pins; `drift::detect` whether a change is drift;
//! `tenancy::{audit, questions}` what to ask RBAC about each tenant. The
//! `gitops-guard` crate wraps them in HTTP, watches and alerts
//! (ARCHITECTURE.md).
#![forbid(unsafe_code)]

pub mod admission;
pub mod cluster;
pub mod drift;
pub mod duration;
pub mod guard;
pub mod identity;
pub mod object_ref;
pub mod pin;
pub mod policy;
pub mod tenancy;
