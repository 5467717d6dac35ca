//! Helpers shared by the router-level tests.

use std::time::Duration;

use axum::{
    Router,
    body::{Body, to_bytes},
    http::{Request, StatusCode},
};
use gitops_guard::cluster::view::ClusterView;
use prometheus::Registry;
use serde_json::Value;
use tower::ServiceExt;

/// The real router over `view`, with its own metrics registry.
pub fn app(view: ClusterView) -> (Router, Registry) {
    app_with_timeout(view, Duration::from_secs(4))
}

/// [`app`] with another request deadline.
pub fn app_with_timeout(view: ClusterView, request_timeout: Duration) -> (Router, Registry) {
    gitops_guard_testkit::router_over(view, request_timeout)
}

/// POSTs a body to `/validate`; returns the status and the JSON answer.
pub async fn post(app: Router, body: Vec<u8>, content_type: &str) -> (StatusCode, Value) {
    let request = Request::post("/validate")
        .header("content-type", content_type)
        .body(Body::from(body))
        .unwrap_or_else(|e| panic!("{e}"));
    let response = app.oneshot(request).await.unwrap_or_else(|e| match e {});
    let status = response.status();
    let bytes = to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}
