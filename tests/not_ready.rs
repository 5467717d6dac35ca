//! A review that meets a cluster view still loading: it waits for the view
//! within the apiserver's timeout and is then decided on it, or denied
//! "still loading"; it is never allowed on a half-loaded view.

use std::{
    path::Path,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use axum::{
    body::{Body, to_bytes},
    http::Request,
};
use gitops_guard::{
    check::load_state,
    cluster::view::ClusterView,
    metrics::AdmissionMetrics,
    policy::Policy,
    server::{Guard, router},
};
use prometheus::Registry;
use serde_json::Value;
use tower::ServiceExt;

fn loading_view() -> ClusterView {
    let mut view = ClusterView::synced();
    let state = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cluster-state.yaml");
    load_state(&mut view, &Policy::default(), &state).unwrap_or_else(|e| panic!("{e}"));
    view.set_synced(false);
    view
}

/// Posts the reconciler's apply (allowed once the view is loaded) with the
/// apiserver's `?timeout=`; returns (allowed, message, elapsed).
async fn review(
    view: Arc<RwLock<ClusterView>>,
    ready: tokio::sync::watch::Receiver<bool>,
    timeout: &str,
) -> (bool, String, Duration) {
    let guard = Guard {
        policy: Arc::new(Policy::default()),
        view,
        metrics: AdmissionMetrics::new(&Registry::new()).unwrap_or_else(|e| panic!("{e}")),
        journal: Default::default(),
        view_ready: ready,
    };
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/apply-flux-deployment-by-reconciler.json");
    let body = std::fs::read(fixture).unwrap_or_else(|e| panic!("{e}"));
    let request = Request::post(format!("/validate?timeout={timeout}"))
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let response = router(guard, Duration::from_secs(10))
        .oneshot(request)
        .await
        .unwrap_or_else(|e| match e {});
    let bytes = to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let answer: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let allowed = answer["response"]["allowed"].as_bool().unwrap_or(true);
    let message = answer["response"]["status"]["message"]
        .as_str()
        .unwrap_or_default();
    (allowed, message.to_owned(), started.elapsed())
}

#[tokio::test]
async fn a_review_waits_for_the_view_and_is_decided_on_it() {
    let view = Arc::new(RwLock::new(loading_view()));
    let (synced, ready) = tokio::sync::watch::channel(false);
    let loader = view.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        loader
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .set_synced(true);
        synced.send_replace(true);
    });
    let (allowed, message, _) = review(view, ready, "5s").await;
    assert!(allowed, "decided on the loaded view: {message}");
}

#[tokio::test]
async fn a_view_that_never_loads_is_a_denial_before_the_apiserver_gives_up() {
    let view = Arc::new(RwLock::new(loading_view()));
    let (_synced, ready) = tokio::sync::watch::channel(false);
    let (allowed, message, elapsed) = review(view, ready, "2s").await;
    assert!(!allowed);
    assert!(
        message.contains("still loading the cluster view"),
        "{message}"
    );
    println!("answered after {elapsed:?} (the apiserver waits 2s)");
}
