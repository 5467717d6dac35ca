//! The digest cache: TTLs, negative entries, one registry call per image.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

fn cache(size: usize, ttl: Duration, negative_ttl: Duration) -> Arc<DigestCache> {
    let registry = prometheus::Registry::new();
    let metrics = PinMetrics::new(&registry).expect("metrics register");
    let settings = CacheSettings {
        size,
        ttl,
        negative_ttl,
    };
    Arc::new(DigestCache::new(&settings, metrics))
}

fn key(tag: &str) -> CacheKey {
    CacheKey {
        registry: "r.example".into(),
        repository: "app".into(),
        tag: tag.into(),
        credential: "anonymous".into(),
    }
}

const LONG: Duration = Duration::from_secs(3600);

/// A resolution that counts its runs and answers after a short wait.
fn counted(runs: &Arc<AtomicUsize>, answer: Outcome) -> impl Future<Output = Outcome> + use<> {
    let runs = Arc::clone(runs);
    async move {
        runs.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        answer
    }
}

fn digest(d: &str) -> Outcome {
    Ok(Arc::from(d))
}

#[tokio::test]
async fn a_hundred_concurrent_callers_for_one_tag_cause_one_resolution() {
    let cache = cache(10, LONG, LONG);
    let runs = Arc::new(AtomicUsize::new(0));
    let calls = (0..100).map(|_| {
        let (cache, runs) = (Arc::clone(&cache), Arc::clone(&runs));
        tokio::spawn(async move {
            cache
                .get_or_resolve(key("1.0"), counted(&runs, digest("sha256:a")))
                .await
        })
    });
    for call in futures::future::join_all(calls).await {
        assert_eq!(call.expect("task"), digest("sha256:a"));
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_fresh_entry_is_served_without_resolving_again() {
    let cache = cache(10, LONG, LONG);
    let runs = Arc::new(AtomicUsize::new(0));
    for _ in 0..3 {
        let got = cache
            .get_or_resolve(key("1.0"), counted(&runs, digest("sha256:a")))
            .await;
        assert_eq!(got, digest("sha256:a"));
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_expired_entry_is_resolved_again_and_sees_the_moved_tag() {
    let cache = cache(10, Duration::ZERO, LONG);
    let runs = Arc::new(AtomicUsize::new(0));
    let first = cache
        .get_or_resolve(key("1.0"), counted(&runs, digest("sha256:a")))
        .await;
    let second = cache
        .get_or_resolve(key("1.0"), counted(&runs, digest("sha256:b")))
        .await;
    assert_eq!((first, second), (digest("sha256:a"), digest("sha256:b")));
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_failure_is_served_from_the_negative_cache_until_it_expires() {
    let failure: Outcome = Err(ResolveError::Unreachable {
        registry: "r.example".into(),
        detail: "connection refused".into(),
    });
    let runs = Arc::new(AtomicUsize::new(0));
    let remembered = cache(10, LONG, LONG);
    for _ in 0..2 {
        let got = remembered
            .get_or_resolve(key("1.0"), counted(&runs, failure.clone()))
            .await;
        assert_eq!(got, failure);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let forgotten = cache(10, LONG, Duration::ZERO);
    for _ in 0..2 {
        let _ = forgotten
            .get_or_resolve(key("1.0"), counted(&runs, failure.clone()))
            .await;
    }
    assert_eq!(runs.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn the_size_bound_evicts_the_least_recently_used_entry_and_counts_it() {
    let cache = cache(2, LONG, LONG);
    let runs = Arc::new(AtomicUsize::new(0));
    for tag in ["a", "b", "a", "c"] {
        let _ = cache
            .get_or_resolve(key(tag), counted(&runs, digest("sha256:x")))
            .await;
    }
    assert_eq!(cache.len(), 2);
    assert!(cache.peek(&key("a")).is_some(), "a was used most recently");
    assert!(
        cache.peek(&key("b")).is_none(),
        "b was the least recently used"
    );
    assert_eq!(cache.metrics.cache_evictions.get(), 1);
}

#[tokio::test]
async fn a_caller_that_gives_up_does_not_cancel_the_resolution() {
    let cache = cache(10, LONG, LONG);
    let slow = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        digest("sha256:late")
    };
    let gave_up = tokio::time::timeout(
        Duration::from_millis(10),
        cache.get_or_resolve(key("1"), slow),
    )
    .await;
    assert!(gave_up.is_err(), "the caller's deadline passed first");
    let deadline = Instant::now() + Duration::from_secs(5);
    while cache.peek(&key("1")).is_none() {
        assert!(Instant::now() < deadline, "the resolution never landed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(cache.peek(&key("1")), Some(digest("sha256:late")));
}

#[tokio::test]
async fn a_resolution_that_panics_does_not_wedge_its_key() {
    let cache = cache(10, LONG, LONG);
    let boom = async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        panic!("resolver bug")
    };
    let first = cache.get_or_resolve(key("1"), boom).await;
    assert!(
        matches!(first, Err(ResolveError::Protocol { .. })),
        "{first:?}"
    );
    let runs = Arc::new(AtomicUsize::new(0));
    let second = cache
        .get_or_resolve(key("1"), counted(&runs, digest("sha256:ok")))
        .await;
    assert_eq!(second, digest("sha256:ok"));
}
