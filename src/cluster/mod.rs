//! The cluster view and the reflectors that keep it.

pub mod breakglass;
pub mod identities;
pub mod ingest;
pub mod reflect;
pub mod view;
