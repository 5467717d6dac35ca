//! The mutating webhook through its real router against a real registry
//! (Debian's docker-registry, crates/testkit/src/registry.rs): resolution, auth,
//! failure modes in `pin` and `require`, and single-flight counted at the
//! registry.

use gitops_guard_testkit::registry;

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::{Body, to_bytes},
    http::{Request, StatusCode},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use gitops_guard::{
    cluster::{
        shared::SharedView,
        view::{ClusterView, NamespaceFacts},
    },
    metrics::AdmissionMetrics,
    pin::{
        pullsecret::Keyring,
        serve::{Pinner, router},
        settings::RegistrySettings,
    },
    policy::Policy,
};
use registry::Registry;
use serde_json::{Value, json};
use tower::ServiceExt;

fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The router over a view with namespaces `pin`, `require` and `off`, the
/// registry at `plain` allowed over HTTP.
fn app(plain: &[&str], keyring: Keyring, timeout: Duration) -> (Router, prometheus::Registry) {
    let mut policy = Policy::default();
    for host in plain {
        let settings = RegistrySettings {
            plain_http: true,
            ca_file: None,
        };
        policy
            .images
            .registries
            .insert((*host).to_owned(), settings);
    }
    policy.images.timeout = timeout;
    let mut view = ClusterView::synced();
    for mode in ["pin", "require", "off"] {
        let labels = BTreeMap::from([("gitops-guard.io/pin-images".to_owned(), mode.to_owned())]);
        let facts = NamespaceFacts {
            labels,
            terminating: false,
        };
        view.upsert_namespace(mode.to_owned(), facts);
    }
    let metrics_registry = prometheus::Registry::new();
    let metrics = AdmissionMetrics::new(&metrics_registry).expect("metrics");
    let pinner = Pinner::build(
        &Arc::new(policy),
        &SharedView::fixed(view),
        None,
        keyring,
        metrics,
        &metrics_registry,
    )
    .expect("pinner");
    (router(pinner), metrics_registry)
}

fn deployment_review(namespace: &str, images: &[&str]) -> Vec<u8> {
    let containers: Vec<Value> = images
        .iter()
        .enumerate()
        .map(|(i, image)| json!({"name": format!("c{i}"), "image": image}))
        .collect();
    let object = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {"template": {"spec": {"containers": containers}}}
    });
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "u-1", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "name": "web", "namespace": namespace, "operation": "CREATE",
            "userInfo": {"username": "alice"}, "object": object
        }
    }))
    .expect("serializes")
}

async fn post(app: &Router, path: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let request = Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("request");
    let response = app
        .clone()
        .oneshot(request)
        .await
        .unwrap_or_else(|e| match e {});
    let status = response.status();
    let bytes = to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// The decoded JSON Patch of a mutate answer. kube serializes the bytes as
/// a JSON array of numbers, which the apiserver's Go decoder reads as
/// `[]byte` as readily as base64.
fn patch_of(answer: &Value) -> Vec<Value> {
    let bytes: Vec<u8> = match &answer["response"]["patch"] {
        Value::String(encoded) => STANDARD.decode(encoded).unwrap_or_default(),
        Value::Array(items) => items
            .iter()
            .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
            .collect(),
        _ => Vec::new(),
    };
    serde_json::from_slice(&bytes).unwrap_or_default()
}

mod cases;
