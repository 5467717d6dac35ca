//! A flood beyond --max-in-flight is refused at once with 503 and counted,
//! never queued; a review in progress is not disturbed by it.

use std::{sync::Arc, time::Duration};

use axum::{
    body::{Body, to_bytes},
    http::{Request, StatusCode},
};
use gitops_guard::{
    cluster::{shared::SharedView, view::ClusterView},
    metrics::AdmissionMetrics,
    policy::Policy,
    server::{self, Guard},
};
use prometheus::Registry;
use tower::ServiceExt;

fn review() -> Vec<u8> {
    br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1",
        "kind":{"group":"","version":"v1","kind":"ConfigMap"},"resource":{"group":"","version":"v1","resource":"configmaps"},
        "name":"x","namespace":"prod","operation":"UPDATE","userInfo":{"username":"alice"},
        "object":{"metadata":{"name":"x","labels":{"kustomize.toolkit.fluxcd.io/name":"apps"}}},
        "oldObject":{"metadata":{"name":"x","labels":{"kustomize.toolkit.fluxcd.io/name":"apps"}}}}}"#
        .to_vec()
}

#[tokio::test]
async fn reviews_past_max_in_flight_are_refused_at_once_and_counted() {
    let registry = Registry::new();
    let metrics = AdmissionMetrics::new(&registry).unwrap_or_else(|e| panic!("{e}"));
    // A view that stays unsynced holds the first review until its deadline.
    let mut view = ClusterView::synced();
    view.set_synced(false);
    let (view, _feed) = SharedView::starting_from(view);
    let guard = Guard::new(Arc::new(Policy::default()), view, metrics.clone());
    let app =
        gitops_guard::webhook::shed(server::router(guard, Duration::from_secs(10)), 1, &metrics);
    let send = |app: axum::Router| async move {
        let request = Request::post("/validate?timeout=3s")
            .header("content-type", "application/json")
            .body(Body::from(review()))
            .unwrap_or_else(|e| panic!("{e}"));
        let response = app.oneshot(request).await.unwrap_or_else(|e| match e {});
        let status = response.status();
        let body = to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap_or_default();
        (status, String::from_utf8_lossy(&body).into_owned())
    };
    let first = tokio::spawn(send(app.clone()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, body) = send(app.clone()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("max-in-flight"), "{body}");
    assert!(
        !first.is_finished(),
        "the shed review answered while the first still waits"
    );
    assert_eq!(metrics.shed.get(), 1);
    let (status, body) = first.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        status,
        StatusCode::OK,
        "the first review is answered: {body}"
    );
    assert!(body.contains("still loading"), "{body}");
    // The slot is free again.
    let (status, _) = send(app).await;
    assert_eq!(status, StatusCode::OK);
}
