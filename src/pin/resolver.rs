//! From wanted images to digests: each distinct image once, through the
//! cache (single-flight), with the credential the keyring gives it, all
//! within the review's deadline.

use std::{collections::HashMap, sync::Arc, time::Instant};

use futures::StreamExt;

use super::{
    cache::{CacheKey, DigestCache, Outcome},
    error::ResolveError,
    plan::Wanted,
    pullsecret::Keyring,
    registry::RegistryClient,
};

/// Registry requests one review may have open at once.
const PARALLEL: usize = 16;

pub struct Resolver {
    pub cache: Arc<DigestCache>,
    pub registry: Arc<RegistryClient>,
}

impl Resolver {
    /// Digests (or errors) by image text; an image missing from the map was
    /// not resolved before `deadline`. With `cache_only` (dry runs) no
    /// registry is asked: what the cache does not hold is an error.
    pub async fn resolve_all(
        &self,
        wanted: &[Wanted<'_>],
        keyring: &Keyring,
        deadline: Instant,
        cache_only: bool,
    ) -> HashMap<String, Outcome> {
        let mut seen = std::collections::HashSet::new();
        let jobs: Vec<_> = wanted
            .iter()
            .filter(|w| seen.insert(w.text))
            .filter_map(|w| {
                let reference = w.reference.as_ref().ok()?.clone();
                let credential = keyring
                    .lookup(reference.registry(), reference.repository())
                    .cloned();
                Some((w.text.to_owned(), reference, credential))
            })
            .collect();
        let deadline = tokio::time::Instant::from_std(deadline);
        futures::stream::iter(jobs)
            .map(|(text, reference, credential)| {
                let key = CacheKey {
                    registry: reference.registry().to_owned(),
                    repository: reference.repository().to_owned(),
                    tag: reference.tag_or_latest().to_owned(),
                    credential: credential
                        .as_ref()
                        .map_or_else(|| "anonymous".to_owned(), |c| c.identity()),
                };
                if cache_only {
                    let outcome = self.cache.peek(&key).unwrap_or_else(|| {
                        let registry = reference.registry().to_owned();
                        Err(ResolveError::DryRunNotCached { registry })
                    });
                    return futures::future::Either::Left(async move { (text, Some(outcome)) });
                }
                let registry = Arc::clone(&self.registry);
                let ask = async move {
                    registry
                        .digest(&reference, credential.as_ref())
                        .await
                        .map(Arc::from)
                };
                let cache = Arc::clone(&self.cache);
                futures::future::Either::Right(async move {
                    let outcome =
                        tokio::time::timeout_at(deadline, cache.get_or_resolve(key, ask)).await;
                    (text, outcome.ok())
                })
            })
            .buffer_unordered(PARALLEL)
            .filter_map(|(text, outcome)| async move { outcome.map(|o| (text, o)) })
            .collect()
            .await
    }
}
