//! The plain-HTTP admin listener: `/healthz`, `/readyz`, `/metrics`.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header::CONTENT_TYPE},
    response::IntoResponse,
    routing::get,
};
use prometheus::{Encoder, Registry, TextEncoder};

use crate::drain::Drain;

/// Readiness is the conjunction of three facts, each set by its owner, and
/// of not shutting down.
#[derive(Debug, Default)]
pub struct Readiness {
    pub certificate_loaded: AtomicBool,
    pub listener_bound: AtomicBool,
    pub view_synced: AtomicBool,
    pub draining: Drain,
    /// A supervised background task that stopped (`tasks`): the process is
    /// on its way out, and must not look ready meanwhile.
    pub stopped_task: std::sync::OnceLock<&'static str>,
}

impl Readiness {
    /// What is still missing, or empty when ready.
    pub fn missing(&self) -> Vec<String> {
        let facts = [
            (&self.certificate_loaded, "certificate not loaded"),
            (&self.listener_bound, "webhook listener not bound"),
            (&self.view_synced, "cluster view not synced"),
        ];
        facts
            .iter()
            .filter(|(f, _)| !f.load(Ordering::Acquire))
            .map(|(_, why)| (*why).to_owned())
            .chain(
                self.draining
                    .is_draining()
                    .then(|| "shutting down".to_owned()),
            )
            .chain(
                self.stopped_task
                    .get()
                    .map(|task| format!("background task {task} stopped")),
            )
            .collect()
    }
}

#[derive(Clone)]
struct AdminState {
    readiness: Arc<Readiness>,
    registry: Registry,
}

pub fn router(readiness: Arc<Readiness>, registry: Registry) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(AdminState {
            readiness,
            registry,
        })
}

async fn readyz(State(state): State<AdminState>) -> impl IntoResponse {
    let missing = state.readiness.missing();
    if missing.is_empty() {
        (StatusCode::OK, "ok".to_owned())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, missing.join("\n"))
    }
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    let encoder = TextEncoder::new();
    let mut out = Vec::new();
    match encoder.encode(&state.registry.gather(), &mut out) {
        Ok(()) => (
            StatusCode::OK,
            [(CONTENT_TYPE, encoder.format_type().to_owned())],
            out,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(CONTENT_TYPE, "text/plain".to_owned())],
            e.to_string().into_bytes(),
        ),
    }
}
