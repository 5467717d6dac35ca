//! The Alertmanager sender against a double that fails, then recovers:
//! nothing is lost, failures are counted, resolutions go out with endsAt now.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{Json, Router, extract::State, http::StatusCode, routing::post};
use gitops_guard::drift::{
    alerts::{Alerts, Labels},
    leader::Leadership,
};
use serde_json::Value;

#[derive(Clone, Default)]
struct Double {
    failures_left: Arc<AtomicUsize>,
    received: Arc<Mutex<Vec<Value>>>,
    authorization: Arc<Mutex<Vec<String>>>,
}

async fn receive(
    State(d): State<Double>,
    headers: axum::http::HeaderMap,
    Json(body): Json<Value>,
) -> StatusCode {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    d.authorization.lock().expect("lock").push(auth.to_owned());
    if d.failures_left.load(Ordering::SeqCst) > 0 {
        d.failures_left.fetch_sub(1, Ordering::SeqCst);
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    d.received.lock().expect("lock").push(body);
    StatusCode::OK
}

async fn alertmanager(failures: usize) -> (Double, reqwest::Url) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let double = Double::default();
    double.failures_left.store(failures, Ordering::SeqCst);
    let app = Router::new()
        .route("/api/v2/alerts", post(receive))
        .with_state(double.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (double, format!("http://{addr}/").parse().expect("url"))
}

fn labels(name: &str) -> Labels {
    [("alertname", "GitOpsDrift"), ("name", name)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within 20 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_alert_fired_while_alertmanager_fails_arrives_once_it_answers_and_failures_are_counted()
{
    let (double, url) = alertmanager(2).await;
    let registry = prometheus::Registry::new();
    let alerts = Arc::new(
        Alerts::new(
            vec![url],
            Duration::from_secs(60),
            Leadership::always(),
            &registry,
        )
        .expect("alerts"),
    );
    tokio::spawn(alerts.clone().run());
    alerts.fire("a", labels("web"), Labels::new());
    until("delivery after two 503s", || {
        !double.received.lock().expect("lock").is_empty()
    })
    .await;
    let first = double.received.lock().expect("lock")[0].clone();
    assert_eq!(first[0]["labels"]["name"], "web");
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .expect("encode");
    assert!(
        text.contains("gitops_guard_alert_deliveries_total{outcome=\"error\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("gitops_guard_alert_deliveries_total{outcome=\"ok\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn a_resolution_is_sent_with_ends_at_now_and_a_follower_sends_nothing() {
    let (double, url) = alertmanager(0).await;
    let registry = prometheus::Registry::new();
    let alerts = Arc::new(
        Alerts::new(
            vec![url.clone()],
            Duration::from_secs(60),
            Leadership::always(),
            &registry,
        )
        .expect("alerts"),
    );
    tokio::spawn(alerts.clone().run());
    alerts.fire("a", labels("web"), Labels::new());
    until("firing", || {
        !double.received.lock().expect("lock").is_empty()
    })
    .await;
    let resolved_at = jiff::Timestamp::now();
    alerts.resolve("a");
    // A round carrying the alert with endsAt at the resolution, not ahead.
    let resolution = || {
        let received = double.received.lock().expect("lock");
        received
            .iter()
            .filter_map(Value::as_array)
            .flatten()
            .any(|a| {
                let ends: Option<jiff::Timestamp> =
                    a["endsAt"].as_str().and_then(|t| t.parse().ok());
                a["labels"]["name"] == "web"
                    && ends.is_some_and(|e| e >= resolved_at && e <= jiff::Timestamp::now())
            })
    };
    until("resolution with endsAt now", resolution).await;

    let (quiet, url) = alertmanager(0).await;
    let follower = Arc::new(
        Alerts::new(
            vec![url],
            Duration::from_millis(100),
            Leadership::default(),
            &prometheus::Registry::new(),
        )
        .expect("alerts"),
    );
    tokio::spawn(follower.clone().run());
    follower.fire("b", labels("db"), Labels::new());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        quiet.received.lock().expect("lock").is_empty(),
        "a follower posted"
    );
}

#[tokio::test]
async fn a_bearer_token_file_and_url_credentials_are_sent() {
    let (double, url) = alertmanager(0).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret-token\n").expect("write token");
    let registry = prometheus::Registry::new();
    let alerts = Arc::new(
        Alerts::new(
            vec![url.clone()],
            Duration::from_secs(60),
            Leadership::always(),
            &registry,
        )
        .and_then(|a| a.with_delivery(Some(token), None))
        .expect("alerts"),
    );
    tokio::spawn(alerts.clone().run());
    alerts.fire("a", labels("web"), Labels::new());
    until("bearer", || {
        !double.received.lock().expect("lock").is_empty()
    })
    .await;
    assert_eq!(
        double.authorization.lock().expect("lock")[0],
        "Bearer s3cret-token"
    );

    let (basic, url) = alertmanager(0).await;
    let mut with_user = url.clone();
    with_user.set_username("am").expect("user");
    with_user.set_password(Some("pw")).expect("password");
    let alerts = Arc::new(
        Alerts::new(
            vec![with_user],
            Duration::from_secs(60),
            Leadership::always(),
            &prometheus::Registry::new(),
        )
        .expect("alerts"),
    );
    tokio::spawn(alerts.clone().run());
    alerts.fire("a", labels("web"), Labels::new());
    until("basic", || !basic.received.lock().expect("lock").is_empty()).await;
    // base64("am:pw")
    assert_eq!(
        basic.authorization.lock().expect("lock")[0],
        "Basic YW06cHc="
    );
}
