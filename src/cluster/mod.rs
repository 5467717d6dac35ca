//! The cluster view and the reflectors that keep it.

pub mod breakglass;
mod by_namespace;
pub mod identities;
pub mod ingest;
pub mod reflect;
mod reflect_identities;
pub mod view;
