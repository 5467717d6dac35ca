//! decode + decide + respond on reviews of three sizes, as the webhook does
//! them (minus HTTP). Criterion gives means; a second pass prints p50/p99
//! over individually timed iterations, which is what the latency goal names.
//!
//!     cargo bench --bench review

use std::{hint::black_box, time::Instant};

use criterion::{Criterion, Throughput};
use gitops_guard::{
    admission::{depth, respond, review, skim},
    cluster::{
        identities::PodFacts,
        view::{ClusterView, NamespaceFacts},
    },
    guard::decide,
    policy::Policy,
};
use serde_json::{Value, json};

use gitops_guard_testkit::reviews;

use reviews::{alice, deployment, metadata};

fn configmap(bytes: usize) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata("prod"), "data": {"blob": "x".repeat(bytes)}})
}

/// An UPDATE by alice (denied: the message is built too).
fn review_of(object: Value, kind: &str, resource: &str) -> Vec<u8> {
    reviews::review(&object, kind, resource, true, &alice())
}

type Decode = for<'a> fn(&'a [u8]) -> Result<review::Request<'a>, review::DecodeError>;

/// The whole path the handler runs, minus HTTP: decode, decide, encode.
fn handle(policy: &Policy, view: &ClusterView, body: &[u8], now: jiff::Timestamp) -> usize {
    handle_with(review::decode, policy, view, body, now)
}

fn handle_with(
    decode: Decode,
    policy: &Policy,
    view: &ClusterView,
    body: &[u8],
    now: jiff::Timestamp,
) -> usize {
    match decode(body) {
        Ok(req) => {
            let decision = decide(policy, view, &req, now);
            serde_json::to_vec(&respond::review(&req.uid, &decision)).map_or(0, |v| v.len())
        }
        Err(_) => 0,
    }
}

/// `f` timed `iterations` times, each alone, in nanoseconds, sorted.
fn timed(iterations: usize, f: &mut dyn FnMut()) -> Vec<u128> {
    let mut samples: Vec<u128> = (0..iterations)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_nanos()
        })
        .collect();
    samples.sort_unstable();
    samples
}

/// The value at quantile `q` (0..=1) of sorted nanoseconds, in µs.
fn micros(sorted: &[u128], q: f64) -> f64 {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)] as f64 / 1000.0
}

fn percentiles(
    name: &str,
    decode: Decode,
    policy: &Policy,
    view: &ClusterView,
    body: &[u8],
    iterations: usize,
) {
    let now = jiff::Timestamp::now();
    let samples = timed(iterations, &mut || {
        black_box(handle_with(decode, policy, view, black_box(body), now));
    });
    println!(
        "{name:<24} {:>8} bytes  p50 {:>9.2} µs  p99 {:>9.2} µs  max {:>9.2} µs  (n={iterations})",
        body.len(),
        micros(&samples, 0.50),
        micros(&samples, 0.99),
        micros(&samples, 1.0)
    );
}

/// Each stage alone, to see where the time goes: p50 of each, and p50/p99
/// of decode (the one pass) and of the whole-body decode it replaced (the
/// depth scan, then serde_json over everything), so each run carries its
/// own baseline and the ratio between them.
fn stages(name: &str, policy: &Policy, view: &ClusterView, body: &[u8]) {
    let now = jiff::Timestamp::now();
    let Ok(req) = review::decode(body) else {
        return;
    };
    let decision = decide(policy, view, &req, now);
    let quantiles = |f: &mut dyn FnMut()| {
        let samples = timed(20_000, f);
        (micros(&samples, 0.50), micros(&samples, 0.99))
    };
    let (d, d99) = quantiles(&mut || {
        black_box(review::decode(black_box(body)).is_ok());
    });
    let reads = <review::Request<'_> as review::ReviewRequest<'_>>::READS;
    let (outline, _) = quantiles(&mut || {
        if let Some(reads) = &reads {
            black_box(skim::outline(black_box(body), reads).is_ok());
        }
    });
    let (whole, whole99) = quantiles(&mut || {
        black_box(review::decode_whole(black_box(body)).is_ok());
    });
    let (scan, _) = quantiles(&mut || {
        black_box(depth::exceeds(black_box(body), depth::MAX_DEPTH));
    });
    let (c, _) = quantiles(&mut || {
        let _ = black_box(decide(policy, view, black_box(&req), now));
    });
    let (r, _) = quantiles(&mut || {
        black_box(
            serde_json::to_vec(&respond::review(&req.uid, black_box(&decision)))
                .map(|v| v.len())
                .unwrap_or(0),
        );
    });
    println!(
        "{name:<24} decode {d:>7.2} µs (p99 {d99:>7.2}, of which the scan {outline:>6.2}; whole body {whole:>7.2} / p99 {whole99:>7.2}, {ratio:>4.2}x, of which depth scan {scan:>6.2})  decide {c:>6.2} µs  respond {r:>6.2} µs",
        ratio = whole / d
    );
}

const IMAGE: &str = "registry.example.com/shop/web:1.27.3";

fn main() {
    let policy = Policy::default();
    let mut view = ClusterView::synced();
    view.upsert_namespace("prod".into(), NamespaceFacts::default());
    view.identities.upsert_pod(
        "flux-system".into(),
        "kustomize-controller-5f8c7d9b6-q2x7m".into(),
        PodFacts {
            uid: "6c1f0a52-3b1e-4d8e-9a57-0c7d2e9b1a01".into(),
            service_account: "kustomize-controller".into(),
        },
    );
    let cases = [
        (
            "configmap-1k",
            review_of(configmap(400), "ConfigMap", "configmaps"),
        ),
        // UPDATE reviews carry the object twice: 21 env vars a container make
        // a 10 KB review; 40 make the 16 KB one measured before.
        (
            "deployment-10k",
            review_of(deployment(21, IMAGE), "Deployment", "deployments"),
        ),
        // The common case in a GitOps cluster: the reconciler's own write
        // (allowed; its Pod-bound token checked against the view).
        (
            "deployment-10k-flux",
            reviews::review(
                &deployment(21, IMAGE),
                "Deployment",
                "deployments",
                true,
                &reviews::kustomize_controller(),
            ),
        ),
        (
            "deployment-16k",
            review_of(deployment(40, IMAGE), "Deployment", "deployments"),
        ),
        (
            "configmap-1m",
            review_of(configmap(512 * 1024), "ConfigMap", "configmaps"),
        ),
    ];
    // `cargo test --all-targets` runs this file without `--bench`: check that
    // every case decodes and is decided, and skip the timing passes.
    if !std::env::args().any(|a| a == "--bench") {
        let now = jiff::Timestamp::now();
        for (name, body) in &cases {
            assert!(
                handle(&policy, &view, body, now) > 0,
                "{name} did not produce a response"
            );
        }
        return;
    }
    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("decode_decide_respond");
    let now = jiff::Timestamp::now();
    for (name, body) in &cases {
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(*name, |b| {
            b.iter(|| handle(&policy, &view, black_box(body), now))
        });
    }
    group.finish();
    criterion.final_summary();
    println!("\nper stage alone (p50, and p99 where named):");
    for (name, body) in &cases {
        stages(name, &policy, &view, body);
    }
    // The one pass against the whole-body decode it replaced, alternating
    // case by case so a slow minute of the machine hits both.
    println!(
        "\nper-iteration latency (warm; \"whole\" decodes the whole body, as before the one pass):"
    );
    for (name, body) in &cases {
        let n = if body.len() > 100_000 { 2_000 } else { 100_000 };
        percentiles(name, review::decode, &policy, &view, body, n);
        percentiles(
            &format!("{name} whole"),
            review::decode_whole,
            &policy,
            &view,
            body,
            n,
        );
    }
}
