//! A router served on loopback over the guard's own TLS stack
//! (`tls::load` + `tls::server`), as the load and apiserver benches run
//! their servers.

use std::{net::SocketAddr, path::Path};

use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use gitops_guard::{
    cert::{self, Bundle, CertRequest},
    tls,
};

/// Writes a CA + serving certificate for 127.0.0.1 and localhost into `dir`.
pub fn certificate(dir: &Path) -> Result<Bundle, String> {
    let request = CertRequest {
        service: "gitops-guard".into(),
        namespace: "gitops-guard".into(),
        dns: vec!["localhost".into()],
        ips: vec!["127.0.0.1".parse().map_err(|e| format!("{e}"))?],
        validity_days: 1,
    };
    let bundle = cert::generate(&request).map_err(|e| e.to_string())?;
    cert::write(&bundle, dir).map_err(|e| e.to_string())?;
    Ok(bundle)
}

/// Serves `app` with the certificate in `dir` on a free loopback port.
pub async fn serve(app: Router, dir: &Path) -> Result<SocketAddr, String> {
    let loaded =
        tls::load(&dir.join("tls.crt"), &dir.join("tls.key")).map_err(|e| e.to_string())?;
    let rustls = RustlsConfig::from_config(loaded.config.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let server = tls::server(
        listener,
        rustls,
        tls::Clocks::default(),
        tls::ConnectionLimit::unregistered(usize::MAX).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    tokio::spawn(server.serve(app.into_make_service()));
    Ok(addr)
}
