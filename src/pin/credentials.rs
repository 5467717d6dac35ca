//! Registry credentials for one review, like the kubelet gathers them: the
//! Pod's `imagePullSecrets`, then its service account's, then the Secrets
//! the policy names. Reads go to the API server (get Secret, get
//! ServiceAccount) and are cached briefly, so a burst of Pods from one
//! Deployment reads each Secret once.

use std::{
    num::NonZeroUsize,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::Api;
use lru::LruCache;

use super::pullsecret::Keyring;

/// How long a Secret or service account read is reused.
const REUSE: Duration = Duration::from_secs(30);
const ENTRIES: usize = 4096;

type Key = (String, String);
/// Entries stamped with when they were read.
type Stamped<V> = Mutex<LruCache<Key, (Instant, V)>>;

pub struct Credentials {
    client: Option<kube::Client>,
    configured: Vec<Key>,
    /// Credentials given directly (`check --docker-config`), tried last.
    fixed: Keyring,
    secrets: Stamped<Arc<Keyring>>,
    accounts: Stamped<Arc<Vec<String>>>,
}

fn cache<V>() -> Mutex<LruCache<Key, V>> {
    Mutex::new(LruCache::new(
        NonZeroUsize::new(ENTRIES).unwrap_or(NonZeroUsize::MIN),
    ))
}

fn fresh<V: Clone>(cache: &Mutex<LruCache<Key, (Instant, V)>>, key: &Key) -> Option<V> {
    let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
    match cache.get(key) {
        Some((at, value)) if at.elapsed() < REUSE => Some(value.clone()),
        _ => None,
    }
}

fn remember<V>(cache: &Mutex<LruCache<Key, (Instant, V)>>, key: Key, value: V) {
    let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
    cache.put(key, (Instant::now(), value));
}

impl Credentials {
    /// `configured` holds `namespace/name` entries (validated by the policy).
    pub fn new(client: Option<kube::Client>, configured: &[String], fixed: Keyring) -> Self {
        let configured = configured
            .iter()
            .filter_map(|e| e.split_once('/'))
            .map(|(ns, name)| (ns.to_owned(), name.to_owned()))
            .collect();
        Self {
            client,
            configured,
            fixed,
            secrets: cache(),
            accounts: cache(),
        }
    }

    /// The keyring for a pod spec in `namespace`. `service_account` is read
    /// only for templates: for Pods the apiserver has already copied the
    /// account's pull secrets into the spec.
    pub async fn keyring(
        &self,
        namespace: &str,
        pod_secrets: &[&str],
        service_account: Option<&str>,
    ) -> Keyring {
        let mut keyring = Keyring::default();
        for name in pod_secrets {
            keyring.extend(self.secret(namespace, name).await.as_ref().clone());
        }
        if let Some(account) = service_account {
            for name in self.account_secrets(namespace, account).await.iter() {
                keyring.extend(self.secret(namespace, name).await.as_ref().clone());
            }
        }
        for (ns, name) in &self.configured {
            keyring.extend(self.secret(ns, name).await.as_ref().clone());
        }
        keyring.extend(self.fixed.clone());
        keyring
    }

    async fn secret(&self, namespace: &str, name: &str) -> Arc<Keyring> {
        let key = (namespace.to_owned(), name.to_owned());
        if let Some(hit) = fresh(&self.secrets, &key) {
            return hit;
        }
        let Some(client) = &self.client else {
            return Arc::default();
        };
        let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
        let keyring = match api.get_opt(name).await {
            Ok(Some(secret)) => parse_secret(namespace, name, &secret),
            Ok(None) => {
                tracing::info!(namespace, secret = name, "pull secret not found");
                Keyring::default()
            }
            Err(e) => {
                tracing::warn!(namespace, secret = name, error = %e, "cannot read pull secret");
                Keyring::default()
            }
        };
        let keyring = Arc::new(keyring);
        remember(&self.secrets, key, keyring.clone());
        keyring
    }

    async fn account_secrets(&self, namespace: &str, account: &str) -> Arc<Vec<String>> {
        let key = (namespace.to_owned(), account.to_owned());
        if let Some(hit) = fresh(&self.accounts, &key) {
            return hit;
        }
        let Some(client) = &self.client else {
            return Arc::default();
        };
        let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
        let names = match api.get_opt(account).await {
            Ok(Some(sa)) => sa
                .image_pull_secrets
                .unwrap_or_default()
                .into_iter()
                .map(|r| r.name)
                .filter(|n| !n.is_empty())
                .collect(),
            Ok(None) => Vec::new(),
            Err(e) => {
                tracing::warn!(namespace, service_account = account, error = %e, "cannot read service account");
                Vec::new()
            }
        };
        let names = Arc::new(names);
        remember(&self.accounts, key, names.clone());
        names
    }
}

/// The keyring of a pull secret; any other Secret type contributes nothing.
fn parse_secret(namespace: &str, name: &str, secret: &Secret) -> Keyring {
    let data = secret.data.as_ref();
    let get = |k: &str| data.and_then(|d| d.get(k)).map(|b| b.0.as_slice());
    let parsed = match secret.type_.as_deref() {
        Some("kubernetes.io/dockerconfigjson") => {
            get(".dockerconfigjson").map(Keyring::from_dockerconfigjson)
        }
        Some("kubernetes.io/dockercfg") => get(".dockercfg").map(Keyring::from_dockercfg),
        other => {
            tracing::info!(namespace, secret = name, r#type = ?other, "not a pull secret");
            None
        }
    };
    match parsed {
        Some(Ok(keyring)) => keyring,
        Some(Err(e)) => {
            tracing::warn!(namespace, secret = name, error = %e, "unreadable pull secret");
            Keyring::default()
        }
        None => Keyring::default(),
    }
}
