//! The servers under load, on the guard's own TLS stack (`tls::load`:
//! rustls, ALPN h2 + http/1.1): gitops-guard's router, and a null webhook
//! answering a constant allow without reading the body.

use std::{
    net::SocketAddr,
    path::Path,
    sync::{Arc, RwLock},
    time::Duration,
};

use axum::{Router, body::Bytes, http::header::CONTENT_TYPE, routing::post};
use axum_server::tls_rustls::RustlsConfig;
use gitops_guard::{
    cert::{self, CertRequest},
    cluster::view::ClusterView,
    metrics::AdmissionMetrics,
    pin::{pullsecret::Keyring, serve::Pinner},
    policy::Policy,
    server::{self, Guard},
    tls,
};

/// Writes a CA + serving certificate for 127.0.0.1 into `dir`; returns the CA PEM.
pub fn certificate(dir: &Path) -> Result<String, String> {
    let request = CertRequest {
        service: "gitops-guard".into(),
        namespace: "gitops-guard".into(),
        dns: vec!["localhost".into()],
        ips: vec!["127.0.0.1".parse().map_err(|e| format!("{e}"))?],
        validity_days: 1,
    };
    let bundle = cert::generate(&request).map_err(|e| e.to_string())?;
    cert::write(&bundle, dir).map_err(|e| e.to_string())?;
    Ok(bundle.ca_pem)
}

async fn serve(app: Router, dir: &Path) -> Result<SocketAddr, String> {
    let loaded =
        tls::load(&dir.join("tls.crt"), &dir.join("tls.key")).map_err(|e| e.to_string())?;
    let rustls = RustlsConfig::from_config(loaded.config.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let server = tls::server(
        listener,
        rustls,
        std::time::Duration::from_secs(2),
        tls::ConnectionLimit::unregistered(usize::MAX).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    tokio::spawn(server.serve(app.into_make_service()));
    Ok(addr)
}

const ALLOW: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"705ab4f5-6393-11e8-b7cc-42010a800002","allowed":true}}"#;

/// The physical limit: same stack, no decoding, a constant answer.
pub async fn null(dir: &Path) -> Result<SocketAddr, String> {
    async fn allow(_: Bytes) -> ([(axum::http::HeaderName, &'static str); 1], &'static str) {
        ([(CONTENT_TYPE, "application/json")], ALLOW)
    }
    let app = Router::new()
        .route("/validate", post(allow))
        .route("/mutate", post(allow));
    serve(app, dir).await
}

/// gitops-guard's routers over `view` (`/validate`, `/mutate`, `/validate-images`).
pub async fn guard(dir: &Path, policy: Policy, view: ClusterView) -> Result<SocketAddr, String> {
    let registry = prometheus::Registry::new();
    let metrics = AdmissionMetrics::new(&registry).map_err(|e| e.to_string())?;
    let (policy, view) = (Arc::new(policy), Arc::new(RwLock::new(view)));
    let pinner = Pinner::build(
        &policy,
        &view,
        None,
        Keyring::default(),
        metrics.clone(),
        &registry,
    )
    .map_err(|e| e.to_string())?;
    let guard = Guard {
        policy,
        view,
        metrics,
        journal: Default::default(),
        view_ready: tokio::sync::watch::channel(true).1,
    };
    let app = server::router(guard, Duration::from_secs(4))
        .merge(gitops_guard::pin::serve::router(pinner));
    serve(app, dir).await
}
