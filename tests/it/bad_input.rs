//! Bad input: each gets a clear error, is counted, never panics and never
//! turns into an allow.

use crate::common::{app, post};
use axum::http::StatusCode;
use gitops_guard::cluster::view::ClusterView;
use prometheus::Registry;
use rstest::rstest;

fn invalid_count(registry: &Registry, cause: &str) -> u64 {
    let families = registry.gather();
    let family = families
        .iter()
        .find(|f| f.name() == "gitops_guard_admission_invalid_total");
    let metrics = family.map(|f| f.get_metric().to_vec()).unwrap_or_default();
    let matching = metrics
        .iter()
        .find(|m| m.get_label().iter().any(|l| l.value() == cause));
    matching.map_or(0, |m| m.get_counter().get_value() as u64)
}

fn nested(depth: usize) -> Vec<u8> {
    let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"u","operation":"UPDATE",
        "userInfo":{{"username":"alice"}},"oldObject":{{"metadata":{{"name":"x"}}}},
        "object":{{"metadata":{{"name":"x"}},"spec":{deep}}}}}}}"#
    )
    .into_bytes()
}

#[rstest]
#[case::an_empty_body_is_a_bad_request(b"".to_vec(), "empty")]
#[case::invalid_json_is_a_bad_request(b"{\"apiVersion\": ".to_vec(), "json")]
#[case::a_review_without_request_is_a_bad_request(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(), "no-request")]
#[case::a_review_without_uid_is_a_bad_request(
    br#"{"apiVersion":"admission.k8s.io/v1","request":{"operation":"DELETE","userInfo":{"username":"alice"}}}"#.to_vec(), "no-uid")]
#[case::an_unknown_api_version_is_a_bad_request(
    br#"{"apiVersion":"admission.k8s.io/v1beta1","request":{"uid":"u","operation":"CREATE"}}"#.to_vec(), "api-version")]
#[case::deeply_nested_json_is_a_bad_request(nested(10_000), "json")]
#[tokio::test]
async fn malformed_reviews_are_rejected_and_counted(#[case] body: Vec<u8>, #[case] cause: &str) {
    let (app, registry) = app(ClusterView::synced());
    let (status, review) = post(app, body, "application/json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        review["response"]["allowed"], false,
        "never an allow: {review}"
    );
    assert!(
        !review["response"]["status"]["message"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
    );
    assert_eq!(invalid_count(&registry, cause), 1);
}

#[tokio::test]
async fn a_wrong_content_type_is_unsupported_media() {
    let (app, registry) = app(ClusterView::synced());
    let (status, review) = post(app, b"uid: x".to_vec(), "application/yaml").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(review["response"]["allowed"], false);
    assert_eq!(invalid_count(&registry, "content-type"), 1);
}

#[tokio::test]
async fn a_nine_mebibyte_body_is_too_large() {
    let (app, _) = app(ClusterView::synced());
    let (status, _) = post(app, vec![b' '; 9 * 1024 * 1024], "application/json").await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_body_just_under_the_limit_is_read() {
    let (app, _) = app(ClusterView::synced());
    let (status, review) = post(app, nested(1), "application/json; charset=utf-8").await;
    assert_eq!(status, StatusCode::OK, "{review}");
    assert_eq!(
        review["response"]["allowed"], true,
        "an unowned object: {review}"
    );
}
