//! The digest cache: bounded LRU with a TTL (shorter for failures) and
//! single-flight, so N requests for one uncached tag make one registry
//! request. The registry request runs in its own task: a caller that gives
//! up at its deadline does not cancel it, and the answer still fills the
//! cache for the next caller.

use std::{
    collections::HashMap,
    future::Future,
    num::NonZeroUsize,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use lru::LruCache;
use tokio::sync::watch;

use super::{error::ResolveError, metrics::PinMetrics, settings::CacheSettings};

pub type Outcome = Result<Arc<str>, ResolveError>;

/// One tag as seen with one credential: another credential may see another
/// answer (or a refusal), so it is part of the key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub registry: String,
    pub repository: String,
    pub tag: String,
    /// `anonymous` or `Credential::identity()`.
    pub credential: String,
}

struct Entry {
    outcome: Outcome,
    expires: Instant,
}

type Waiter = watch::Receiver<Option<Outcome>>;

struct Inner {
    lru: LruCache<CacheKey, Entry>,
    in_flight: HashMap<CacheKey, Waiter>,
}

/// `lru` behind a `Mutex`, with our TTLs and single flight, rather than
/// `moka`: on the hit path (every image of every review) moka's `get` took
/// 1.4 to 2.6 times as long, on 1 and 2 threads (`bench/cache-compare`,
/// bench/RESULTS.md "Digest cache: lru against moka").
pub struct DigestCache {
    inner: Mutex<Inner>,
    ttl: Duration,
    negative_ttl: Duration,
    metrics: PinMetrics,
}

enum Lookup {
    Hit(Outcome),
    Wait(Waiter),
    Lead(watch::Sender<Option<Outcome>>, Waiter),
}

impl DigestCache {
    pub fn new(settings: &CacheSettings, metrics: PinMetrics) -> Self {
        let size = NonZeroUsize::new(settings.size).unwrap_or(NonZeroUsize::MIN);
        Self {
            inner: Mutex::new(Inner {
                lru: LruCache::new(size),
                in_flight: HashMap::new(),
            }),
            ttl: settings.ttl,
            negative_ttl: settings.negative_ttl,
            metrics,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere cannot leave the map half-updated: every critical
        // section is a single insert or remove.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A fresh cached outcome, without asking anyone.
    pub fn peek(&self, key: &CacheKey) -> Option<Outcome> {
        let mut inner = self.lock();
        let entry = inner.lru.get(key)?;
        (entry.expires > Instant::now()).then(|| entry.outcome.clone())
    }

    /// The cached outcome for `key`, or the outcome of `resolve`, run once
    /// however many callers ask at the same time.
    pub async fn get_or_resolve<F>(self: &Arc<Self>, key: CacheKey, resolve: F) -> Outcome
    where
        F: Future<Output = Outcome> + Send + 'static,
    {
        let lookup = {
            let mut inner = self.lock();
            let now = Instant::now();
            match inner.lru.get(&key) {
                Some(entry) if entry.expires > now => Lookup::Hit(entry.outcome.clone()),
                _ => match inner.in_flight.get(&key) {
                    Some(waiter) => Lookup::Wait(waiter.clone()),
                    None => {
                        let (tx, rx) = watch::channel(None);
                        inner.in_flight.insert(key.clone(), rx.clone());
                        Lookup::Lead(tx, rx)
                    }
                },
            }
        };
        let lookups = &self.metrics.cache_lookups;
        match lookup {
            Lookup::Hit(outcome) => {
                lookups.with_label_values(&["hit"]).inc();
                outcome
            }
            Lookup::Wait(waiter) => {
                lookups.with_label_values(&["coalesced"]).inc();
                wait(waiter, &key).await
            }
            Lookup::Lead(tx, waiter) => {
                lookups.with_label_values(&["miss"]).inc();
                let cache = Arc::clone(self);
                let stored = key.clone();
                tokio::spawn(async move {
                    let mut flight = Flight {
                        cache: Arc::clone(&cache),
                        key: stored.clone(),
                        landed: false,
                    };
                    let outcome = resolve.await;
                    cache.store(stored, outcome.clone());
                    flight.landed = true;
                    let _ = tx.send(Some(outcome));
                });
                wait(waiter, &key).await
            }
        }
    }

    fn store(&self, key: CacheKey, outcome: Outcome) {
        let ttl = if outcome.is_ok() {
            self.ttl
        } else {
            self.negative_ttl
        };
        let expires = Instant::now() + ttl;
        let mut inner = self.lock();
        inner.in_flight.remove(&key);
        let evicted = inner.lru.push(key.clone(), Entry { outcome, expires });
        if evicted.is_some_and(|(old, _)| old != key) {
            self.metrics.cache_evictions.inc();
        }
    }

    pub fn len(&self) -> usize {
        self.lock().lru.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Clears the in-flight mark if a resolution never lands (its task
/// panicked), so the next caller leads a new one instead of waiting forever.
struct Flight {
    cache: Arc<DigestCache>,
    key: CacheKey,
    landed: bool,
}

impl Drop for Flight {
    fn drop(&mut self) {
        if !self.landed {
            self.cache.lock().in_flight.remove(&self.key);
        }
    }
}

async fn wait(mut waiter: Waiter, key: &CacheKey) -> Outcome {
    match waiter.wait_for(Option::is_some).await {
        Ok(value) => value.clone().unwrap_or_else(|| Err(lost(key))),
        // The resolving task ended without an answer (it panicked).
        Err(_) => Err(lost(key)),
    }
}

fn lost(key: &CacheKey) -> ResolveError {
    ResolveError::Protocol {
        registry: key.registry.clone(),
        detail: "the resolution task ended without an answer".into(),
    }
}

#[cfg(test)]
mod tests;
