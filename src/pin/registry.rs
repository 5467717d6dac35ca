//! The OCI distribution client: one tag to one digest, by `HEAD
//! /v2/<name>/manifests/<tag>` (GET only where HEAD is not answered), with
//! anonymous, basic and bearer-token auth, per-registry TLS roots or plain
//! HTTP, a timeout per resolution and `Retry-After` honoured on 429.
//!
//! Hand-written rather than `oci-client` (read at 0.18.0, issue 17): its
//! credential store is first-credential-wins per registry and its token
//! cache is keyed by registry and repository, not by credential
//! (`client.rs` `store_auth_if_needed`, `token_cache.rs`), so in a
//! multi-tenant webhook one namespace's pull secret would resolve private
//! images for every other namespace. Our digest and token caches key on the
//! credential. It also has no 429/`Retry-After` handling, no identity-token
//! grant, no size cap on a GET body, drops a refused token request's error,
//! and sends credentials to a plain-HTTP token realm; and it would add 30
//! crates (`cargo tree` of a scratch crate with `rustls-tls-no-provider`)
//! to save about 400 lines net.

use std::{
    collections::HashMap,
    num::NonZeroUsize,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use lru::LruCache;
use sha2::{Digest, Sha256};

use super::{
    challenge::Challenge, error::ResolveError, metrics::PinMetrics, pullsecret::Credential,
    reference::Reference, settings::ImagePolicy,
};

/// Every manifest type a tag may point at, so the registry answers with the
/// digest a runtime pulls (the index for multi-arch images).
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";

const USER_AGENT: &str = concat!("gitops-guard/", env!("CARGO_PKG_VERSION"));
/// Manifests are small; registries cap them at 4 MiB.
const MANIFEST_LIMIT: usize = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("images.registries.{registry}.caFile {path}: {detail}")]
    CaFile {
        registry: String,
        path: String,
        detail: String,
    },
    #[error("cannot build the registry HTTP client: {0}")]
    Build(#[from] reqwest::Error),
}

/// A bearer token for one repository, as one credential obtained it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TokenKey {
    registry: String,
    repository: String,
    credential: String,
}

pub struct RegistryClient {
    default: reqwest::Client,
    custom_roots: HashMap<String, reqwest::Client>,
    plain_http: Vec<String>,
    timeout: Duration,
    tokens: Mutex<LruCache<TokenKey, (String, Instant)>>,
    metrics: PinMetrics,
}

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .redirect(reqwest::redirect::Policy::limited(5))
        .connect_timeout(Duration::from_secs(2))
}

impl RegistryClient {
    pub fn new(policy: &ImagePolicy, metrics: PinMetrics) -> Result<Self, ClientError> {
        let mut custom_roots = HashMap::new();
        for (registry, settings) in &policy.registries {
            let Some(path) = &settings.ca_file else {
                continue;
            };
            let ca_error = |detail: String| ClientError::CaFile {
                registry: registry.clone(),
                path: path.display().to_string(),
                detail,
            };
            let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ca_error(e.to_string()))?;
            if certs.is_empty() {
                return Err(ca_error("no PEM certificate in the file".into()));
            }
            custom_roots.insert(registry.clone(), builder().tls_certs_merge(certs).build()?);
        }
        let plain_http = policy
            .registries
            .iter()
            .filter(|(_, s)| s.plain_http)
            .map(|(r, _)| r.clone())
            .collect();
        Ok(Self {
            default: builder().build()?,
            custom_roots,
            plain_http,
            timeout: policy.timeout,
            tokens: Mutex::new(LruCache::new(
                NonZeroUsize::new(1024).unwrap_or(NonZeroUsize::MIN),
            )),
            metrics,
        })
    }

    /// The digest `reference`'s tag points at, as `credential` sees it.
    pub async fn digest(
        &self,
        reference: &Reference,
        credential: Option<&Credential>,
    ) -> Result<String, ResolveError> {
        let _timer = self.metrics.registry_duration.start_timer();
        let started = Instant::now();
        let deadline = started + self.timeout;
        let result =
            match tokio::time::timeout(self.timeout, self.resolve(reference, credential, deadline))
                .await
            {
                Ok(result) => result,
                Err(_) => Err(ResolveError::Timeout {
                    registry: reference.registry().to_owned(),
                    after: self.timeout,
                }),
            };
        let outcome = result.as_ref().map_or_else(ResolveError::kind, |_| "ok");
        self.metrics
            .registry_requests
            .with_label_values(&[outcome])
            .inc();
        tracing::debug!(image = %reference, outcome, elapsed = ?started.elapsed(), "registry resolution");
        result
    }

    fn client(&self, registry: &str) -> &reqwest::Client {
        self.custom_roots.get(registry).unwrap_or(&self.default)
    }

    fn is_plain_http(&self, registry: &str) -> bool {
        self.plain_http.iter().any(|r| r == registry)
    }

    fn base_url(&self, reference: &Reference) -> String {
        let scheme = if self.is_plain_http(reference.registry()) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{}", reference.api_host())
    }
}

mod flow;

/// `sha256:<64 hex>` or `sha512:<128 hex>`, lowercase, as a digest must be
/// before it goes into a patch.
pub fn valid_digest(value: &str) -> bool {
    let hex_len = match value.split_once(':') {
        Some(("sha256", hex)) => (hex.len() == 64).then_some(hex),
        Some(("sha512", hex)) => (hex.len() == 128).then_some(hex),
        _ => None,
    };
    hex_len.is_some_and(|hex| hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

fn sha256_digest(body: &[u8]) -> String {
    let hash = Sha256::digest(body);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The challenge to answer: bearer when offered, else basic.
fn pick(challenges: &[Challenge]) -> Option<&Challenge> {
    challenges
        .iter()
        .find(|c| c.scheme == "bearer")
        .or_else(|| challenges.iter().find(|c| c.scheme == "basic"))
}
