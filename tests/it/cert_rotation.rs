//! Certificate rotation under load: reviews keep flowing over fresh TLS
//! connections (a handshake each) and a keep-alive connection while first
//! the serving certificate and then the CA rotate as the procedure in
//! certs/README.md says. Not one handshake or review may fail, and each new
//! certificate must be served within 5 s of the files changing.

use gitops_guard_testkit::secret_volume;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use gitops_guard::cert::{self, Bundle, Ca, CertRequest};
use gitops_guard::cluster::view::ClusterView;
use gitops_guard::tls::{self, CertWatcher, TlsMetrics};
use prometheus::Registry;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};
use secret_volume::SecretVolume;
use tokio::time::Instant;

const HOST: &str = "gitops-guard.gitops-guard.svc";
/// The production default of `--cert-reload-interval`.
const RELOAD_INTERVAL: Duration = Duration::from_secs(4);
const REVIEW: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1",
  "kind":{"group":"","version":"v1","kind":"ConfigMap"},"resource":{"group":"","version":"v1","resource":"configmaps"},
  "name":"x","namespace":"prod","operation":"UPDATE","userInfo":{"username":"alice"},
  "object":{"metadata":{"name":"x"}},"oldObject":{"metadata":{"name":"x"}}}}"#;

fn request() -> CertRequest {
    CertRequest {
        service: "gitops-guard".into(),
        namespace: "gitops-guard".into(),
        dns: vec![],
        ips: vec![],
        validity_days: 7,
    }
}

fn der(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

/// What the apiserver trusts: the webhook configuration's `caBundle`. A
/// change makes every client build a new TLS configuration, as the
/// apiserver does when the bundle changes.
struct CaBundle {
    pems: RwLock<(u64, Vec<String>)>,
    /// Where the Service name resolves to.
    addr: std::net::SocketAddr,
}

impl CaBundle {
    fn set(&self, cas: &[&Bundle]) {
        let mut pems = self.pems.write().unwrap();
        pems.0 += 1;
        pems.1 = cas.iter().map(|b| b.ca_pem.clone()).collect();
    }

    fn client(&self, pooled: bool) -> (u64, reqwest::Client) {
        let (generation, pems) = self.pems.read().unwrap().clone();
        let mut roots = RootCertStore::empty();
        for pem in &pems {
            roots.add(der(pem).into()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec()];
        config.resumption = rustls::client::Resumption::disabled();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(config)
            .tls_info(true)
            .pool_max_idle_per_host(if pooled { 1 } else { 0 })
            .timeout(Duration::from_secs(5))
            .resolve(HOST, self.addr)
            .build()
            .unwrap();
        (generation, client)
    }
}

#[derive(Default)]
struct Tally {
    reviews: AtomicU64,
    handshakes: AtomicU64,
    failures: Mutex<Vec<String>>,
}

struct Load {
    url: String,
    bundle: Arc<CaBundle>,
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
}

impl Load {
    /// One review; `Ok` carries the leaf the connection was served.
    async fn review(&self, client: &reqwest::Client) -> Result<Vec<u8>, String> {
        let response = client
            .post(&self.url)
            .header("content-type", "application/json")
            .body(REVIEW)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        let leaf = response
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|info| info.peer_certificate())
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        let status = response.status();
        let body = response.text().await.map_err(|e| e.to_string())?;
        if status != reqwest::StatusCode::OK || !body.contains(r#""allowed":true"#) {
            return Err(format!("{status}: {body}"));
        }
        Ok(leaf)
    }

    fn record(&self, outcome: &Result<Vec<u8>, String>) {
        match outcome {
            Ok(_) => self.tally.reviews.fetch_add(1, Ordering::Relaxed),
            Err(e) => {
                self.tally.failures.lock().unwrap().push(e.clone());
                0
            }
        };
    }

    /// A new connection, hence a full handshake, for every review.
    async fn fresh_connections(self: Arc<Self>) {
        while !self.stop.load(Ordering::Relaxed) {
            let (_, client) = self.bundle.client(false);
            self.tally.handshakes.fetch_add(1, Ordering::Relaxed);
            self.record(&self.review(&client).await);
        }
    }

    /// One HTTP/2 connection kept alive, rebuilt when the bundle changes.
    async fn keep_alive(self: Arc<Self>) {
        let (mut generation, mut client) = self.bundle.client(true);
        while !self.stop.load(Ordering::Relaxed) {
            let current = self.bundle.pems.read().unwrap().0;
            if current != generation {
                (generation, client) = self.bundle.client(true);
            }
            self.record(&self.review(&client).await);
        }
    }

    /// The leaf a fresh connection is served now.
    async fn served_leaf(&self) -> Result<Vec<u8>, String> {
        let (_, client) = self.bundle.client(false);
        self.review(&client).await
    }
}

/// Swaps the volume to `next` and returns how long until a fresh
/// connection is served it.
async fn rotate(load: &Load, volume: &SecretVolume, version: &str, next: &Bundle) -> Duration {
    let swapped = Instant::now();
    volume.swap_to(version, next.cert_pem.as_bytes(), next.key_pem.as_bytes());
    let want = der(&next.cert_pem);
    loop {
        let elapsed = swapped.elapsed();
        assert!(
            elapsed < Duration::from_secs(5),
            "{version} not served 5 s after the files changed"
        );
        if load.served_leaf().await.as_deref() == Ok(&want[..]) {
            return elapsed;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leaf_and_then_the_ca_rotate_under_load_without_one_failed_review() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let first = cert::generate(&request()).unwrap();
    let first_ca = Ca {
        cert_pem: &first.ca_pem,
        key_pem: first.ca_key_pem.as_deref().unwrap(),
    };
    let renewed = cert::renew(&request(), first_ca).unwrap();
    let next_ca = cert::generate(&request()).unwrap();

    let volume = SecretVolume::new(&first);
    let loaded = tls::load(&volume.cert(), &volume.key()).unwrap();
    let rustls = RustlsConfig::from_config(Arc::clone(&loaded.config));
    let registry = Registry::new();
    CertWatcher::new(&loaded, rustls.clone(), TlsMetrics::new(&registry).unwrap())
        .with_interval(RELOAD_INTERVAL)
        .spawn();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let (app, _) = crate::common::app(ClusterView::synced());
    tokio::spawn(
        tls::server(
            listener,
            rustls,
            tls::Clocks::default(),
            tls::ConnectionLimit::unregistered(64).unwrap(),
        )
        .unwrap()
        .serve(app.into_make_service()),
    );

    let bundle = Arc::new(CaBundle {
        pems: RwLock::default(),
        addr,
    });
    bundle.set(&[&first]);
    let load = Arc::new(Load {
        url: format!("https://{HOST}:{}/validate", addr.port()),
        bundle: bundle.clone(),
        tally: Arc::default(),
        stop: Arc::default(),
    });
    let mut workers = Vec::new();
    for _ in 0..3 {
        workers.push(tokio::spawn(load.clone().fresh_connections()));
    }
    workers.push(tokio::spawn(load.clone().keep_alive()));
    let steady = Duration::from_millis(700);
    tokio::time::sleep(steady).await;

    // 1. Leaf rotation: same CA, caBundle untouched.
    let leaf_reload = rotate(&load, &volume, "..2026_b", &renewed).await;
    tokio::time::sleep(steady).await;

    // 2. CA rotation: trust both, serve the new pair, then trust the new alone.
    bundle.set(&[&renewed, &next_ca]);
    tokio::time::sleep(steady).await;
    let ca_reload = rotate(&load, &volume, "..2026_c", &next_ca).await;
    tokio::time::sleep(steady).await;
    bundle.set(&[&next_ca]);
    tokio::time::sleep(steady).await;

    load.stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    let tally = &load.tally;
    let failures = tally.failures.lock().unwrap();
    let (reviews, handshakes) = (
        tally.reviews.load(Ordering::Relaxed),
        tally.handshakes.load(Ordering::Relaxed),
    );
    println!(
        "rotation under load: {reviews} reviews, {handshakes} fresh handshakes, \
         {} failures; leaf served {leaf_reload:?} and new CA's leaf {ca_reload:?} after the swap",
        failures.len()
    );
    assert!(failures.is_empty(), "failed reviews: {failures:#?}");
    assert!(
        handshakes > 50,
        "too little load to prove anything: {handshakes}"
    );
}
