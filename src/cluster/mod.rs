//! The cluster view and the reflectors that keep it.

pub use gitops_guard_core::cluster::{breakglass, identities, ingest, view};
pub mod reflect;
mod reflect_identities;
pub mod shared;
pub mod state_file;
