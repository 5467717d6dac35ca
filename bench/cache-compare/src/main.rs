//! The digest cache's hit path, as the pinning webhook takes it for every
//! image of every review: our `Mutex<LruCache>` (lock, get, check expiry,
//! clone the `Arc<str>`) against `moka::sync::Cache` (get, clone), with the
//! same key (four strings) and value, 1,000 hot entries, on 1 and 2
//! threads. Five runs each, alternating; prints ns per hit (median and
//! spread) and the ratio.

use std::{
    hash::Hash,
    num::NonZeroUsize,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    registry: String,
    repository: String,
    tag: String,
    credential: String,
}

#[derive(Clone)]
struct Entry {
    digest: Arc<str>,
    expires: Instant,
}

const KEYS: usize = 1_000;
const GETS: usize = 2_000_000;

fn keys() -> Vec<Key> {
    (0..KEYS)
        .map(|i| Key {
            registry: "registry.example.com".into(),
            repository: format!("shop/service-{i}"),
            tag: "1.27.3".into(),
            credential: "anonymous".into(),
        })
        .collect()
}

fn entry() -> Entry {
    Entry {
        digest: Arc::from("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
        expires: Instant::now() + Duration::from_secs(3600),
    }
}

/// ns per hit over `threads` threads each doing GETS lookups.
fn run(threads: usize, get: impl Fn(&Key) -> Option<Arc<str>> + Sync) -> f64 {
    let keys = keys();
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (keys, get) = (&keys, &get);
            s.spawn(move || {
                let mut found = 0usize;
                for i in 0..GETS {
                    let key = &keys[(i * 7 + t * 13) % KEYS];
                    found += usize::from(std::hint::black_box(get(key)).is_some());
                }
                assert_eq!(found, GETS);
            });
        }
    });
    started.elapsed().as_nanos() as f64 / (GETS * threads) as f64
}

fn median_and_spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn main() {
    let lru = Mutex::new(lru::LruCache::<Key, Entry>::new(NonZeroUsize::new(10_000).unwrap()));
    let moka: moka::sync::Cache<Key, Entry> = moka::sync::Cache::builder()
        .max_capacity(10_000)
        .time_to_live(Duration::from_secs(3600))
        .build();
    for k in keys() {
        lru.lock().unwrap().put(k.clone(), entry());
        moka.insert(k, entry());
    }
    moka.run_pending_tasks();
    let lru_get = |k: &Key| {
        let mut cache = lru.lock().unwrap();
        let e = cache.get(k)?;
        (e.expires > Instant::now()).then(|| e.digest.clone())
    };
    let moka_get = |k: &Key| moka.get(k).map(|e| e.digest);
    for threads in [1, 2] {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..5 {
            ours.push(run(threads, lru_get));
            theirs.push(run(threads, moka_get));
        }
        let (o, o_lo, o_hi) = median_and_spread(ours);
        let (m, m_lo, m_hi) = median_and_spread(theirs);
        println!(
            "{threads} thread(s): Mutex<LruCache> {o:.1} ns/hit ({o_lo:.1}-{o_hi:.1}), \
             moka::sync::Cache {m:.1} ns/hit ({m_lo:.1}-{m_hi:.1}); moka/ours = {:.2}",
            m / o
        );
    }
}
