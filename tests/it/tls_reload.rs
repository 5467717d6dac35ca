//! The serving certificate against a real TLS server: protocol versions and
//! ALPN, reloads through a kubelet-style `..data` symlink swap, and keeping
//! the last good certificate when the new one is broken.

use std::net::SocketAddr;
use std::os::unix::fs::symlink;

use gitops_guard_testkit::secret_volume;
use secret_volume::SecretVolume;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use axum_server::tls_rustls::RustlsConfig;
use gitops_guard::cert::{self, Bundle, CertRequest};
use gitops_guard::tls::{self, CertWatcher, TlsMetrics};
use prometheus::{Registry, TextEncoder};
use rstest::rstest;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};
use tokio::time::Instant;

const HOST: &str = "gitops-guard.gitops-guard.svc";
const DEADLINE: Duration = Duration::from_secs(15);
const HOUR: Duration = Duration::from_secs(3600);

fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn bundle() -> Bundle {
    let req = CertRequest {
        service: "gitops-guard".into(),
        namespace: "gitops-guard".into(),
        dns: vec![],
        ips: vec![],
        validity_days: 7,
    };
    cert::generate(&req).unwrap()
}

fn der(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

struct Server {
    addr: SocketAddr,
    registry: Registry,
}

async fn serve(cert: &Path, key: &Path, interval: Duration) -> Server {
    let loaded = tls::load(cert, key).unwrap();
    let rustls_config = RustlsConfig::from_config(Arc::clone(&loaded.config));
    let registry = Registry::new();
    let metrics = TlsMetrics::new(&registry).unwrap();
    CertWatcher::new(&loaded, rustls_config.clone(), metrics)
        .with_interval(interval)
        .spawn();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/", get(|| async { "ok" }));
    let server = axum_server::from_tcp_rustls(listener, rustls_config).unwrap();
    tokio::spawn(server.serve(app.into_make_service()));
    Server { addr, registry }
}

impl Server {
    /// A fresh connection (no pooling, no resumption) trusting `cas`.
    async fn get(
        &self,
        cas: &[&Bundle],
        versions: &[&'static SupportedProtocolVersion],
    ) -> reqwest::Result<reqwest::Response> {
        let mut roots = RootCertStore::empty();
        for ca in cas {
            roots.add(der(&ca.ca_pem).into()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        config.resumption = rustls::client::Resumption::disabled();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(config)
            .tls_info(true)
            .pool_max_idle_per_host(0)
            .resolve(HOST, self.addr)
            .build()
            .unwrap();
        let url = format!("https://{HOST}:{}/", self.addr.port());
        client.get(url).send().await
    }

    /// The DER of the leaf certificate a fresh connection is served.
    async fn served_leaf(&self, cas: &[&Bundle]) -> Vec<u8> {
        let response = self.get(cas, rustls::ALL_VERSIONS).await.unwrap();
        let info = response.extensions().get::<reqwest::tls::TlsInfo>();
        info.and_then(|info| info.peer_certificate())
            .unwrap()
            .to_vec()
    }

    fn metric(&self, series: &str) -> f64 {
        let text = TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap();
        let line = text.lines().find(|line| line.starts_with(series));
        let value = line.and_then(|line| line.rsplit(' ').next());
        value
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
            .parse()
            .unwrap()
    }
}

const RELOADED: &str = "gitops_guard_tls_reloads_total{result=\"success\"}";
const FAILED: &str = "gitops_guard_tls_reloads_total{result=\"failure\"}";

/// Polls `check` every 100 ms until it holds or the deadline passes.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_server_negotiates_tls13_tls12_and_h2() {
    install_provider();
    let first = bundle();
    let volume = SecretVolume::new(&first);
    let server = serve(&volume.cert(), &volume.key(), HOUR).await;

    let response = server.get(&[&first], rustls::ALL_VERSIONS).await.unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    let info = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .unwrap();
    assert_eq!(info.version(), Some(reqwest::tls::Version::TLS_1_3));
    assert_eq!(response.text().await.unwrap(), "ok");

    let tls12 = server
        .get(&[&first], &[&rustls::version::TLS12])
        .await
        .unwrap();
    let info = tls12.extensions().get::<reqwest::tls::TlsInfo>().unwrap();
    assert_eq!(info.version(), Some(reqwest::tls::Version::TLS_1_2));
    assert_eq!(tls12.version(), reqwest::Version::HTTP_2);
    assert_eq!(tls12.text().await.unwrap(), "ok");

    let stranger = bundle();
    assert!(
        server
            .get(&[&stranger], rustls::ALL_VERSIONS)
            .await
            .is_err()
    );
    let expiry = server.metric("gitops_guard_tls_certificate_expiry_timestamp_seconds");
    let not_after = tls::load(&volume.cert(), &volume.key()).unwrap().not_after;
    assert_eq!(expiry, not_after as f64);
}

#[rstest]
#[case::with_a_short_timer(Duration::from_millis(200))]
#[case::with_file_events_alone(HOUR)]
#[tokio::test]
async fn a_swapped_data_symlink_is_served_without_restart(#[case] interval: Duration) {
    install_provider();
    let (first, second) = (bundle(), bundle());
    let volume = SecretVolume::new(&first);
    let server = serve(&volume.cert(), &volume.key(), interval).await;
    assert_eq!(server.served_leaf(&[&first]).await, der(&first.cert_pem));

    let (cert, key) = (second.cert_pem.as_bytes(), second.key_pem.as_bytes());
    volume.swap_to("..2026_b", cert, key);
    let new_leaf = der(&second.cert_pem);
    eventually("the new certificate is served", async || {
        server.served_leaf(&[&first, &second]).await == new_leaf
    })
    .await;
    assert_eq!(server.metric(RELOADED), 1.0);
    assert_eq!(server.metric(FAILED), 0.0);
}

#[tokio::test]
async fn a_swapped_parent_directory_is_caught_by_the_timer_backstop() {
    install_provider();
    let (first, second) = (bundle(), bundle());
    // Only the watched directory's own entries raise events; replacing the
    // symlink *to* it does not, so this reload can only come from the timer.
    let volume = SecretVolume::new(&first);
    let root = tempfile::tempdir().unwrap();
    symlink(volume.dir.path(), root.path().join("live")).unwrap();
    let live = root.path().join("live");
    let server = serve(
        &live.join("tls.crt"),
        &live.join("tls.key"),
        Duration::from_millis(200),
    )
    .await;

    let next = SecretVolume::new(&second);
    symlink(next.dir.path(), root.path().join("live_tmp")).unwrap();
    std::fs::rename(root.path().join("live_tmp"), &live).unwrap();
    let new_leaf = der(&second.cert_pem);
    eventually("the timer reloads the certificate", async || {
        server.served_leaf(&[&first, &second]).await == new_leaf
    })
    .await;
}

#[tokio::test]
async fn a_bad_certificate_keeps_the_last_good_one() {
    install_provider();
    let first = bundle();
    let volume = SecretVolume::new(&first);
    let server = serve(&volume.cert(), &volume.key(), Duration::from_millis(200)).await;

    volume.swap_to("..2026_b", b"not a certificate", first.key_pem.as_bytes());
    eventually("the failed reload is counted", async || {
        server.metric(FAILED) >= 1.0
    })
    .await;
    assert_eq!(server.served_leaf(&[&first]).await, der(&first.cert_pem));
    assert_eq!(server.metric(RELOADED), 0.0);

    let other = bundle();
    volume.swap_to(
        "..2026_c",
        first.cert_pem.as_bytes(),
        other.key_pem.as_bytes(),
    );
    eventually("the mismatched key is refused", async || {
        server.metric(FAILED) >= 2.0
    })
    .await;
    assert_eq!(server.served_leaf(&[&first]).await, der(&first.cert_pem));
    assert_eq!(server.metric(RELOADED), 0.0);
}

#[test]
fn load_names_the_flag_for_a_missing_or_mismatched_key() {
    let (first, second) = (bundle(), bundle());
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("tls.crt");
    let key = dir.path().join("tls.key");
    std::fs::write(&cert, &first.cert_pem).unwrap();

    let missing = tls::load(&cert, &key).unwrap_err().to_string();
    assert!(
        missing.starts_with(&format!("--tls-key {}: ", key.display())),
        "{missing}"
    );

    std::fs::write(&key, &second.key_pem).unwrap();
    let mismatched = tls::load(&cert, &key).unwrap_err().to_string();
    let expected = format!(
        "--tls-key {}: key does not match certificate",
        key.display()
    );
    assert_eq!(mismatched, expected);

    std::fs::write(&key, "").unwrap();
    let empty = tls::load(&cert, &key).unwrap_err().to_string();
    assert_eq!(
        empty,
        format!("--tls-key {}: no private key found in PEM", key.display())
    );

    std::fs::write(&cert, "garbage").unwrap();
    let garbage = tls::load(&cert, &key).unwrap_err().to_string();
    let expected = format!("--tls-cert {}: no certificate found in PEM", cert.display());
    assert_eq!(garbage, expected);

    std::fs::write(&key, &first.key_pem).unwrap();
    std::fs::write(&cert, &first.cert_pem).unwrap();
    assert!(tls::load(&cert, &key).unwrap().not_after > 0);
}
