//! The cluster view the decision reads, and how Kubernetes objects enter it.

pub mod breakglass;
mod by_namespace;
pub mod identities;
pub mod ingest;
pub mod view;
