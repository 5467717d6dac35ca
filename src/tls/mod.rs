//! Serving certificate: loaded and checked before the socket is bound, then
//! reloaded without a restart when the files change (kubelet `..data` symlink
//! swaps included), keeping the last good certificate when a reload fails.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use prometheus::{Gauge, IntCounterVec, Opts, Registry};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{InconsistentKeys, ServerConfig};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

/// The command-line flag a file came from, so errors can name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    TlsCert,
    TlsKey,
}

impl Flag {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TlsCert => "--tls-cert",
            Self::TlsKey => "--tls-key",
        }
    }
}

/// Why a certificate/key pair could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{} {}: {source}", flag.as_str(), path.display())]
    Read {
        flag: Flag,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} {}: invalid PEM: {source}", flag.as_str(), path.display())]
    Pem {
        flag: Flag,
        path: PathBuf,
        source: pem::Error,
    },
    #[error("--tls-cert {}: no certificate found in PEM", path.display())]
    NoCertificate { path: PathBuf },
    #[error("--tls-cert {}: unusable certificate: {reason}", path.display())]
    Certificate { path: PathBuf, reason: String },
    #[error("--tls-key {}: no private key found in PEM", path.display())]
    NoKey { path: PathBuf },
    #[error("--tls-key {}: unusable private key: {source}", path.display())]
    Key {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("--tls-key {}: key does not match certificate", path.display())]
    KeyMismatch { path: PathBuf },
    #[error("building the TLS configuration: {0}")]
    Config(rustls::Error),
}

pub type Result<T, E = TlsError> = std::result::Result<T, E>;

/// Where the serving certificate chain and its key live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPaths {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A validated serving configuration and what it was built from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Arc<ServerConfig>,
    /// The leaf certificate's notAfter, in Unix seconds.
    pub not_after: i64,
    paths: CertPaths,
    snapshot: Snapshot,
}

/// The raw bytes of both files; reloads happen only when these change.
#[derive(Clone, PartialEq, Eq)]
struct Snapshot {
    cert: Vec<u8>,
    key: Vec<u8>,
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Snapshot { .. }") // never print key material
    }
}

impl Snapshot {
    fn read(paths: &CertPaths) -> Result<Self> {
        let read = |flag, path: &Path| {
            std::fs::read(path).map_err(|source| TlsError::Read {
                flag,
                path: path.to_path_buf(),
                source,
            })
        };
        Ok(Self {
            cert: read(Flag::TlsCert, &paths.cert)?,
            key: read(Flag::TlsKey, &paths.key)?,
        })
    }
}

/// Reads the PEM chain and key, checks that they belong together and builds
/// a server configuration (ring provider, TLS 1.3 and 1.2, ALPN h2 and
/// http/1.1, no client authentication).
pub fn load(cert: &Path, key: &Path) -> Result<Loaded> {
    let paths = CertPaths {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
    };
    let snapshot = Snapshot::read(&paths)?;
    build(paths, snapshot)
}

fn build(paths: CertPaths, snapshot: Snapshot) -> Result<Loaded> {
    let chain = parse_chain(&snapshot.cert, &paths.cert)?;
    let not_after = leaf_not_after(&chain, &paths.cert)?;
    let key = parse_key(&snapshot.key, &paths.key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certified = certified_key(chain, key, &provider, &paths)?;
    let versions = [&rustls::version::TLS13, &rustls::version::TLS12];
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let config = Arc::new(config);
    Ok(Loaded {
        config,
        not_after,
        paths,
        snapshot,
    })
}

fn parse_chain(pem_bytes: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_slice_iter(pem_bytes).collect::<Result<Vec<_>, _>>();
    chain.map_err(|source| TlsError::Pem {
        flag: Flag::TlsCert,
        path: path.into(),
        source,
    })
}

fn leaf_not_after(chain: &[CertificateDer<'_>], path: &Path) -> Result<i64> {
    let leaf = chain
        .first()
        .ok_or_else(|| TlsError::NoCertificate { path: path.into() })?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf).map_err(|e| unusable(path, e))?;
    Ok(cert.validity().not_after.timestamp())
}

fn parse_key(pem_bytes: &[u8], path: &Path) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem_bytes).map_err(|source| match source {
        pem::Error::NoItemsFound => TlsError::NoKey { path: path.into() },
        source => TlsError::Pem {
            flag: Flag::TlsKey,
            path: path.into(),
            source,
        },
    })
}

fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    provider: &CryptoProvider,
    paths: &CertPaths,
) -> Result<CertifiedKey> {
    let signing_key = provider.key_provider.load_private_key(key);
    let signing_key = signing_key.map_err(|source| TlsError::Key {
        path: paths.key.clone(),
        source,
    })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(InconsistentKeys::Unknown)) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::KeyMismatch {
                path: paths.key.clone(),
            })
        }
        Err(other) => Err(unusable(&paths.cert, other)),
    }
}

fn unusable(path: &Path, reason: impl fmt::Display) -> TlsError {
    TlsError::Certificate {
        path: path.into(),
        reason: reason.to_string(),
    }
}

/// `AsyncWrite` for a stream wrapper that only watches reads or holds a
/// resource: every write goes straight to its `stream` field.
macro_rules! write_through {
    (impl [$($generics:tt)*] $wrapper:ty) => {
        impl<$($generics)*> tokio::io::AsyncWrite for $wrapper {
            fn poll_write(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
            }

            fn poll_write_vectored(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                self.stream.is_write_vectored()
            }

            fn poll_flush(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.stream).poll_flush(cx)
            }

            fn poll_shutdown(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
            }
        }
    };
}

mod idle;
mod limit;
mod metrics;
mod watch;

pub use idle::{Clocks, Watch};
pub use limit::ConnectionLimit;
pub use metrics::{ReloadResult, TlsMetrics};
pub use watch::CertWatcher;

/// The accept chain of the webhook server, outermost first.
pub type Acceptor = Watch<axum_server::tls_rustls::RustlsAcceptor<ConnectionLimit>>;

/// The webhook's HTTPS server on `listener`: rustls with `config`, at most
/// `limit` connections, and `TCP_NODELAY` on every connection. Without it a
/// small answer can wait for the client's delayed ACK (Nagle): tens of
/// milliseconds under HTTP/2, which is what the apiserver speaks to
/// webhooks. A client gets `clocks.header_read` to finish the TLS handshake
/// and then, on HTTP/1, to complete each request's headers once it has
/// begun; a connection with nothing in flight is closed after `clocks.idle`
/// (see [`idle`]), so silent or trickling connections cannot pile up.
pub fn server(
    listener: std::net::TcpListener,
    config: RustlsConfig,
    clocks: Clocks,
    limit: ConnectionLimit,
) -> std::io::Result<axum_server::Server<std::net::SocketAddr, Acceptor>> {
    let tls = axum_server::tls_rustls::RustlsAcceptor::new(config)
        .handshake_timeout(clocks.header_read)
        .acceptor(limit);
    let mut server = axum_server::from_tcp(listener)?.acceptor(Watch::new(tls, clocks));
    // hyper's own timer would start on every idle keep-alive connection.
    server.http_builder().http1().header_read_timeout(None);
    Ok(server)
}
