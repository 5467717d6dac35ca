//! A webhook server on loopback with the guard's TLS stack and short
//! timeouts, and a raw blocking TLS client to misbehave against it: shared
//! by the slow-client, idle-connection and drain tests.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum_server::tls_rustls::RustlsConfig;
use gitops_guard::cert::{self, Bundle, CertRequest};
use gitops_guard::cluster::view::ClusterView;
use gitops_guard::tls;
use prometheus::Registry;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

pub const READ_TIMEOUT: Duration = Duration::from_millis(500);
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
pub const IDLE_TIMEOUT: Duration = Duration::from_millis(1500);
/// How long a test waits before calling a connection pinned.
pub const PINNED: Duration = Duration::from_secs(10);
pub const REVIEW: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1",
  "kind":{"group":"","version":"v1","kind":"ConfigMap"},"resource":{"group":"","version":"v1","resource":"configmaps"},
  "name":"x","namespace":"prod","operation":"UPDATE","userInfo":{"username":"alice"},
  "object":{"metadata":{"name":"x"}},"oldObject":{"metadata":{"name":"x"}}}}"#;

#[derive(Clone)]
pub struct Server {
    pub addr: SocketAddr,
    pub bundle: Bundle,
    pub registry: Registry,
}

pub async fn serve() -> Server {
    serve_limited(1024).await
}

pub async fn serve_limited(max_connections: usize) -> Server {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let request = CertRequest {
        service: "gitops-guard".into(),
        namespace: "gitops-guard".into(),
        dns: vec![],
        ips: vec!["127.0.0.1".parse().unwrap()],
        validity_days: 1,
    };
    let bundle = cert::generate(&request).unwrap();
    let dir = tempfile::tempdir().unwrap();
    cert::write(&bundle, dir.path()).unwrap();
    let loaded = tls::load(&dir.path().join("tls.crt"), &dir.path().join("tls.key")).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let (app, _) = crate::router_over(ClusterView::synced(), REQUEST_TIMEOUT);
    let registry = Registry::new();
    let limit = tls::ConnectionLimit::new(max_connections, &registry).unwrap();
    let server = tls::server(
        listener,
        RustlsConfig::from_config(loaded.config),
        tls::Clocks {
            header_read: READ_TIMEOUT,
            idle: IDLE_TIMEOUT,
        },
        limit,
    );
    tokio::spawn(server.unwrap().serve(app.into_make_service()));
    Server {
        addr,
        bundle,
        registry,
    }
}

impl Server {
    pub fn metric(&self, name: &str) -> f64 {
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap();
        let line = text.lines().find(|l| l.starts_with(name));
        line.and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    }

    /// A blocking HTTP/1.1 TLS stream to the server, handshake done.
    pub fn connect(&self) -> StreamOwned<ClientConnection, TcpStream> {
        self.connect_alpn(b"http/1.1")
    }

    /// A blocking TLS stream offering `alpn`, handshake done.
    pub fn connect_alpn(&self, alpn: &[u8]) -> StreamOwned<ClientConnection, TcpStream> {
        let mut roots = RootCertStore::empty();
        let ca = CertificateDer::from_pem_slice(self.bundle.ca_pem.as_bytes()).unwrap();
        roots.add(ca).unwrap();
        let mut config = ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![alpn.to_vec()];
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let conn = ClientConnection::new(Arc::new(config), name).unwrap();
        let tcp = TcpStream::connect(self.addr).unwrap();
        tcp.set_read_timeout(Some(PINNED)).unwrap();
        let mut stream = StreamOwned::new(conn, tcp);
        stream.conn.complete_io(&mut stream.sock).unwrap();
        stream
    }
}

/// Reads until the server closes; returns what it sent and when it closed.
pub fn read_until_closed(stream: &mut impl Read, since: Instant) -> (String, Duration) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                panic!("still open after {PINNED:?}")
            }
            Err(_) => break,
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), since.elapsed())
}

/// Sends one review on a keep-alive connection; returns the answer's head.
pub fn review(stream: &mut (impl Read + Write)) -> String {
    let request = format!(
        "POST /validate HTTP/1.1\r\nHost: gitops-guard\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{REVIEW}",
        REVIEW.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    stream.flush().unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    // The answer is small: it is whole once its body's closing brace is in.
    while !got.ends_with(b"}") {
        let n = stream.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "closed before answering: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}
