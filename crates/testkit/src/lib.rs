//! What gitops-guard's integration tests, end-to-end suite and benches
//! share. Each piece is real: a registry process, a TLS server on the
//! guard's own stack, the local control plane; nothing here mocks the
//! guard.

pub mod args;
pub mod bench_cluster;
pub mod load_client;
pub mod registry;
pub mod results;
pub mod reviews;
pub mod secret_volume;
pub mod tls_peer;
pub mod tls_server;

use std::{path::PathBuf, sync::Arc, time::Duration};

use axum::Router;
use gitops_guard::{
    cluster::{shared::SharedView, view::ClusterView},
    metrics::AdmissionMetrics,
    policy::Policy,
    server::{Guard, router},
};
use prometheus::Registry;

/// The repository root (fixtures, scripts, bench/RESULTS.md).
pub fn repo_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .and_then(|crates| crates.parent())
        .map_or(here.clone(), PathBuf::from)
}

/// The guard's real router over `view` with the default policy, a fresh
/// metrics registry and the given request deadline.
pub fn router_over(view: ClusterView, request_timeout: Duration) -> (Router, Registry) {
    let registry = Registry::new();
    let metrics = AdmissionMetrics::new(&registry).unwrap_or_else(|e| panic!("{e}"));
    let guard = Guard::new(
        Arc::new(Policy::default()),
        SharedView::fixed(view),
        metrics,
    );
    (router(guard, request_timeout), registry)
}
