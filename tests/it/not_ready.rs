//! A review that meets a cluster view still loading: it waits for the view
//! within the apiserver's timeout and is then decided on it, or denied
//! "still loading"; it is never allowed on a half-loaded view. A derived
//! object whose parent the view has not seen yet waits for it the same way.

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    body::{Body, to_bytes},
    http::Request,
};
use gitops_guard::{
    cluster::state_file::load as load_state,
    cluster::{
        shared::{SharedView, ViewFeed},
        view::{ClusterView, ParentKind},
    },
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
async fn review(view: SharedView, timeout: &str) -> (bool, String, Duration) {
    let fixture = "apply-flux-deployment-by-reconciler.json";
    review_of(fixture, view, timeout).await
}

async fn review_of(fixture: &str, view: SharedView, timeout: &str) -> (bool, String, Duration) {
    let metrics = AdmissionMetrics::new(&Registry::new()).unwrap_or_else(|e| panic!("{e}"));
    let guard = Guard::new(Arc::new(Policy::default()), view, metrics);
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(fixture);
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
    let (view, feed) = SharedView::starting_from(loading_view());
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        feed.mark_loaded();
    });
    let (allowed, message, _) = review(view, "5s").await;
    assert!(allowed, "decided on the loaded view: {message}");
}

#[tokio::test]
async fn a_view_that_never_loads_is_a_denial_before_the_apiserver_gives_up() {
    // The feed stays: the view may still load, so the review waits.
    let (view, _feed) = SharedView::starting_from(loading_view());
    let (allowed, message, elapsed) = review(view, "2s").await;
    assert!(!allowed);
    assert!(
        message.contains("still loading the cluster view"),
        "{message}"
    );
    println!("answered after {elapsed:?} (the apiserver waits 2s)");
}

/// The view of the state file without Service prod/web, the EndpointSlice
/// fixture's parent.
fn view_without_the_service() -> (SharedView, ViewFeed) {
    let mut view = loading_view();
    view.set_synced(true);
    let services = ParentKind::new("", "v1", "Service", "services");
    view.remove_parent(&services, "prod", "web");
    SharedView::starting_from(view)
}

#[tokio::test]
async fn a_derived_object_whose_parent_the_view_sees_during_the_review_is_allowed() {
    let (view, feed) = view_without_the_service();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let state = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cluster-state.yaml");
        let mut v = feed.write();
        load_state(&mut v, &Policy::default(), &state).unwrap_or_else(|e| panic!("{e}"));
        drop(v);
        feed.changed();
    });
    let fixture = "create-endpointslice-by-endpointslice-controller.json";
    let (allowed, message, elapsed) = review_of(fixture, view, "5s").await;
    assert!(allowed, "decided once the Service arrived: {message}");
    println!("answered after {elapsed:?}");
}

#[tokio::test]
async fn a_parent_that_never_arrives_leaves_the_derived_object_denied() {
    let (view, _feed) = view_without_the_service();
    let fixture = "create-endpointslice-by-endpointslice-controller.json";
    let (allowed, message, elapsed) = review_of(fixture, view, "5s").await;
    assert!(!allowed);
    assert!(
        message.contains("is not an object gitops-guard knows with that owner"),
        "{message}"
    );
    println!("answered after {elapsed:?} (the guard waits at most 2s)");
}
