//! The servers under load, on the guard's own TLS stack (`tls::load`:
//! rustls, ALPN h2 + http/1.1): gitops-guard's router, and a null webhook
//! answering a constant allow without reading the body.

use std::{net::SocketAddr, path::Path, sync::Arc, time::Duration};

use axum::{Router, body::Bytes, http::header::CONTENT_TYPE, routing::post};
use gitops_guard::{
    cluster::{shared::SharedView, view::ClusterView},
    metrics::AdmissionMetrics,
    pin::{pullsecret::Keyring, serve::Pinner},
    policy::Policy,
    server::{self, Guard},
};

const ALLOW: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"705ab4f5-6393-11e8-b7cc-42010a800002","allowed":true}}"#;

/// The physical limit: same stack, no decoding, a constant answer.
pub async fn null(dir: &Path) -> Result<SocketAddr, String> {
    async fn allow(_: Bytes) -> ([(axum::http::HeaderName, &'static str); 1], &'static str) {
        ([(CONTENT_TYPE, "application/json")], ALLOW)
    }
    let app = Router::new()
        .route("/validate", post(allow))
        .route("/mutate", post(allow));
    super::tls_server::serve(app, dir).await
}

/// gitops-guard's routers over `view` (`/validate`, `/mutate`, `/validate-images`).
pub async fn guard(dir: &Path, policy: Policy, view: ClusterView) -> Result<SocketAddr, String> {
    let registry = prometheus::Registry::new();
    let metrics = AdmissionMetrics::new(&registry).map_err(|e| e.to_string())?;
    let (policy, view) = (Arc::new(policy), SharedView::fixed(view));
    let pinner = Pinner::build(
        &policy,
        &view,
        None,
        Keyring::default(),
        metrics.clone(),
        &registry,
    )
    .map_err(|e| e.to_string())?;
    let guard = Guard::new(policy, view, metrics);
    let app = server::router(guard, Duration::from_secs(4))
        .merge(gitops_guard::pin::serve::router(pinner));
    super::tls_server::serve(app, dir).await
}
