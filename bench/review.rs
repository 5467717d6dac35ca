//! decode + decide + respond on reviews of three sizes, as the webhook does
//! them (minus HTTP). Criterion gives means; a second pass prints p50/p99
//! over individually timed iterations, which is what the latency goal names.
//!
//!     cargo bench --bench review

use std::{hint::black_box, time::Instant};

use criterion::{Criterion, Throughput};
use gitops_guard::{
    admission::{respond, review},
    cluster::view::{ClusterView, NamespaceFacts},
    guard::decide,
    policy::Policy,
};
use serde_json::{Value, json};

fn metadata(ns: &str) -> Value {
    json!({"name": "web", "namespace": ns, "uid": "3f1c6f1e-2b1a-4c55-9d7e-0c1b2a3d4e5f", "resourceVersion": "4711",
           "labels": {"app": "web", "kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"},
           "annotations": {"deployment.kubernetes.io/revision": "3"}})
}

fn configmap(bytes: usize) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata("prod"), "data": {"blob": "x".repeat(bytes)}})
}

/// A Deployment with two containers of `vars` env vars each, probes and managedFields.
fn deployment(vars: usize) -> Value {
    let env: Vec<Value> = (0..vars).map(|i| json!({"name": format!("SETTING_{i}"), "value": format!("value-{i}-{}", "v".repeat(40))})).collect();
    let container = |n: usize| {
        json!({"name": format!("c{n}"), "image": "registry.example.com/shop/web:1.27.3", "env": env,
        "ports": [{"containerPort": 8080, "protocol": "TCP"}], "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 5}})
    };
    let mut meta = metadata("prod");
    meta["managedFields"] = json!([{"manager": "kustomize-controller", "operation": "Apply", "apiVersion": "apps/v1",
        "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {}}}}}}]);
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
           "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container(0), container(1)]}}}})
}

fn review_of(object: Value, kind: &str, resource: &str) -> Vec<u8> {
    let group = if kind == "Deployment" { "apps" } else { "" };
    let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": {"group": group, "version": "v1", "kind": kind}, "resource": {"group": group, "version": "v1", "resource": resource},
        "name": "web", "namespace": "prod", "operation": "UPDATE",
        "userInfo": {"username": "alice", "groups": ["developers", "system:authenticated"]},
        "object": object.clone(), "oldObject": object, "dryRun": false,
        "options": {"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl-edit"}}});
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The whole path the handler runs, minus HTTP: decode, decide, encode.
fn handle(policy: &Policy, view: &ClusterView, body: &[u8], now: jiff::Timestamp) -> usize {
    match review::decode(body) {
        Ok(req) => {
            let decision = decide(policy, view, &req, now);
            serde_json::to_vec(&respond::review(&req.uid, &decision)).map_or(0, |v| v.len())
        }
        Err(_) => 0,
    }
}

fn percentiles(name: &str, policy: &Policy, view: &ClusterView, body: &[u8], iterations: usize) {
    let now = jiff::Timestamp::now();
    let mut samples: Vec<u128> = (0..iterations)
        .map(|_| {
            let start = Instant::now();
            black_box(handle(policy, view, black_box(body), now));
            start.elapsed().as_nanos()
        })
        .collect();
    samples.sort_unstable();
    let at = |q: f64| {
        samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)] as f64 / 1000.0
    };
    println!(
        "{name:<24} {:>8} bytes  p50 {:>9.2} µs  p99 {:>9.2} µs  max {:>9.2} µs  (n={iterations})",
        body.len(),
        at(0.50),
        at(0.99),
        at(1.0)
    );
}

/// Median of each stage alone, to see where the time goes.
fn stages(name: &str, policy: &Policy, view: &ClusterView, body: &[u8]) {
    let now = jiff::Timestamp::now();
    let Ok(req) = review::decode(body) else {
        return;
    };
    let decision = decide(policy, view, &req, now);
    let median = |f: &mut dyn FnMut()| {
        let mut s: Vec<u128> = (0..20_000)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_nanos()
            })
            .collect();
        s.sort_unstable();
        s[s.len() / 2] as f64 / 1000.0
    };
    let d = median(&mut || {
        black_box(review::decode(black_box(body)).is_ok());
    });
    let c = median(&mut || {
        let _ = black_box(decide(policy, view, black_box(&req), now));
    });
    let r = median(&mut || {
        black_box(
            serde_json::to_vec(&respond::review(&req.uid, black_box(&decision)))
                .map(|v| v.len())
                .unwrap_or(0),
        );
    });
    println!("{name:<24} decode {d:>8.2} µs  decide {c:>7.2} µs  respond {r:>7.2} µs");
}

fn main() {
    let policy = Policy::default();
    let mut view = ClusterView::synced();
    view.upsert_namespace("prod".into(), NamespaceFacts::default());
    let cases = [
        (
            "configmap-1k",
            review_of(configmap(400), "ConfigMap", "configmaps"),
        ),
        // UPDATE reviews carry the object twice: 21 env vars a container make
        // a 10 KB review; 40 make the 16 KB one measured before.
        (
            "deployment-10k",
            review_of(deployment(21), "Deployment", "deployments"),
        ),
        (
            "deployment-16k",
            review_of(deployment(40), "Deployment", "deployments"),
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
    println!("\nmedian per stage:");
    for (name, body) in &cases {
        stages(name, &policy, &view, body);
    }
    println!("\nper-iteration latency (denial path, warm):");
    for (name, body) in &cases {
        let n = if body.len() > 100_000 { 2_000 } else { 100_000 };
        percentiles(name, &policy, &view, body, n);
    }
}
