//! The mutating path, against a real registry (Debian's docker-registry,
//! started here through crates/testkit/src/registry.rs):
//!
//! 1. cache hit: decode + plan + cached digests + patch + encode, on a
//!    10 KB Deployment CREATE review (the goal names p99 under 50 µs);
//! 2. cold miss: the same with an empty cache entry each time, so every
//!    review asks the registry (pooled connection), and the first request
//!    of a fresh client (new connection);
//! 3. 1,000 concurrent reviews of one uncached image, counted at the
//!    registry's access log (goal: exactly one manifest request).
//!
//!     cargo bench --bench pin

use gitops_guard_testkit::registry;

use std::{
    collections::BTreeMap,
    hint::black_box,
    sync::Arc,
    time::{Duration, Instant},
};

use gitops_guard::{
    admission::respond,
    cluster::{
        shared::SharedView,
        view::{ClusterView, NamespaceFacts},
    },
    metrics::AdmissionMetrics,
    pin::{locate, pullsecret::Keyring, serve::Pinner, settings::RegistrySettings},
    policy::Policy,
};
use serde_json::{Value, json};

fn pinner(addr: &str, ttl: Duration) -> Pinner {
    let mut policy = Policy::default();
    let settings = RegistrySettings {
        plain_http: true,
        ca_file: None,
    };
    policy.images.registries.insert(addr.to_owned(), settings);
    policy.images.cache.ttl = ttl;
    let mut view = ClusterView::synced();
    let labels = BTreeMap::from([("gitops-guard.io/pin-images".to_owned(), "pin".to_owned())]);
    view.upsert_namespace(
        "prod".into(),
        NamespaceFacts {
            labels,
            terminating: false,
        },
    );
    let registry = prometheus::Registry::new();
    let metrics = AdmissionMetrics::new(&registry).expect("metrics");
    Pinner::build(
        &Arc::new(policy),
        &SharedView::fixed(view),
        None,
        Keyring::default(),
        metrics,
        &registry,
    )
    .expect("pinner")
}

/// A Deployment CREATE review of about 10 KB: two containers of 56 env vars.
fn review(image: &str) -> Vec<u8> {
    let env: Vec<Value> = (0..56)
        .map(|i| json!({"name": format!("SETTING_{i}"), "value": format!("value-{i}-{}", "v".repeat(40))}))
        .collect();
    let container = |n: usize| {
        json!({"name": format!("c{n}"), "image": image, "env": env,
               "ports": [{"containerPort": 8080}], "resources": {"requests": {"cpu": "100m"}}})
    };
    let object = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "prod", "labels": {"app": "web"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container(0), container(1)]}}}});
    serde_json::to_vec(
        &json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
        "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
        "name": "web", "namespace": "prod", "operation": "CREATE",
        "userInfo": {"username": "system:serviceaccount:flux-system:kustomize-controller"},
        "object": object, "dryRun": false}}),
    )
    .expect("serializes")
}

/// The handler's work minus HTTP: decode, review (resolve), encode.
async fn handle(pinner: &Pinner, body: &[u8]) -> usize {
    let Ok(req) = locate::decode(body) else {
        return 0;
    };
    let plan = pinner
        .review(&req, Instant::now() + Duration::from_secs(5))
        .await;
    match respond::pin_review(&req.uid, &plan) {
        Ok(review) if !plan.replacements.is_empty() => {
            serde_json::to_vec(&review).map_or(0, |v| v.len())
        }
        _ => 0,
    }
}

fn report(name: &str, mut samples: Vec<u128>) {
    samples.sort_unstable();
    let at = |q: f64| {
        samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)] as f64 / 1000.0
    };
    println!(
        "{name:<34} p50 {:>9.2} µs  p99 {:>9.2} µs  max {:>10.2} µs  (n={})",
        at(0.5),
        at(0.99),
        at(1.0),
        samples.len()
    );
}

fn timed(rt: &tokio::runtime::Runtime, n: usize, mut f: impl FnMut() -> usize) -> Vec<u128> {
    let _guard = rt.enter();
    (0..n)
        .map(|_| {
            let t = Instant::now();
            black_box(f());
            t.elapsed().as_nanos()
        })
        .collect()
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let bench = std::env::args().any(|a| a == "--bench");
    let registry = registry::Registry::start(None).expect("registry");
    registry.push("bench/web", "1.0", "a").expect("push");
    let image = format!("{}/bench/web:1.0", registry.addr());
    let body = review(&image);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let hits = pinner(registry.addr(), Duration::from_secs(3600));
    let first = rt.block_on(handle(&hits, &body));
    // `cargo test --all-targets` runs this without --bench: one real
    // resolution must produce a patch; the timing passes are skipped.
    assert!(
        first > 0,
        "no patch from the registry at {}",
        registry.addr()
    );
    if !bench {
        return;
    }
    println!("review body {} bytes, image {image}\n", body.len());

    let samples = timed(&rt, 100_000, || rt.block_on(handle(&hits, &body)));
    report("cache hit (10 KB Deployment)", samples);

    let misses = pinner(registry.addr(), Duration::ZERO);
    rt.block_on(handle(&misses, &body));
    let samples = timed(&rt, 2_000, || rt.block_on(handle(&misses, &body)));
    report("cold miss, pooled connection", samples);

    // A fresh Pinner each time: new HTTP client, new connection; only the
    // review is timed, not building the client.
    let mut fresh_samples = Vec::new();
    for _ in 0..200 {
        let fresh = pinner(registry.addr(), Duration::ZERO);
        let t = Instant::now();
        black_box(rt.block_on(handle(&fresh, &body)));
        fresh_samples.push(t.elapsed().as_nanos());
    }
    report("cold miss, new connection", fresh_samples);

    registry.push("bench/burst", "1", "b").expect("push");
    let burst_image = format!("{}/bench/burst:1", registry.addr());
    let burst_body = Arc::new(review(&burst_image));
    let burst = Arc::new(pinner(registry.addr(), Duration::from_secs(3600)));
    let before = registry.manifest_requests_settled("bench/burst");
    let started = Instant::now();
    let patched = rt.block_on(async {
        let tasks = (0..1000).map(|_| {
            let (p, b) = (burst.clone(), burst_body.clone());
            tokio::spawn(async move { handle(&p, &b).await > 0 })
        });
        futures::future::join_all(tasks)
            .await
            .into_iter()
            .filter(|r| matches!(r, Ok(true)))
            .count()
    });
    let wall = started.elapsed();
    let requests = registry.manifest_requests_settled("bench/burst") - before;
    println!(
        "\n1,000 concurrent reviews of one uncached image: {patched} patched in {wall:?}, \
         {requests} manifest request(s) seen by the registry"
    );
}
