//! Registry protocol paths the Debian registry does not exercise: bearer
//! token challenges, 429 with Retry-After, registries that do not answer
//! HEAD. A small axum double plays the registry; the client is the real one.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, Method, StatusCode},
    response::{IntoResponse, Response},
    routing::{any, get},
};
use gitops_guard::pin::{
    error::ResolveError,
    metrics::PinMetrics,
    pullsecret::Credential,
    reference::Reference,
    registry::RegistryClient,
    settings::{ImagePolicy, RegistrySettings},
};

const DIGEST: &str = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

#[derive(Default)]
struct Seen {
    manifests: AtomicUsize,
    tokens: AtomicUsize,
}

#[derive(Clone)]
struct Double {
    addr: SocketAddr,
    behaviour: &'static str,
    seen: Arc<Seen>,
}

async fn manifest(State(d): State<Double>, method: Method, headers: HeaderMap) -> Response {
    let n = d.seen.manifests.fetch_add(1, Ordering::SeqCst);
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let found = [("docker-content-digest", DIGEST)];
    match d.behaviour {
        "bearer" if auth != "Bearer t0ken" => {
            let challenge = format!(
                "Bearer realm=\"http://{}/token\",service=\"double\",scope=\"repository:team/app:pull\"",
                d.addr
            );
            (StatusCode::UNAUTHORIZED, [("www-authenticate", challenge)]).into_response()
        }
        "rate-limited" if n == 0 => {
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")]).into_response()
        }
        "rate-limited-long" => {
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "60")]).into_response()
        }
        "no-head" if method == Method::HEAD => StatusCode::METHOD_NOT_ALLOWED.into_response(),
        "no-digest-header" => (StatusCode::OK, r#"{"schemaVersion":2}"#).into_response(),
        "bad-digest" => (
            StatusCode::OK,
            [("docker-content-digest", "sha256:../../etc")],
        )
            .into_response(),
        "server-error" => (StatusCode::BAD_GATEWAY, "upstream exploded").into_response(),
        _ => (StatusCode::OK, found).into_response(),
    }
}

async fn token(
    State(d): State<Double>,
    headers: HeaderMap,
    query: axum::extract::RawQuery,
) -> Response {
    d.seen.tokens.fetch_add(1, Ordering::SeqCst);
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let query = query.0.unwrap_or_default();
    // "u:pw" in base64; the scope the client asked for must be the repository's.
    if auth != "Basic dTpwdw==" || !query.contains("scope=repository%3Ateam%2Fapp%3Apull") {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    (StatusCode::OK, r#"{"token":"t0ken","expires_in":300}"#).into_response()
}

async fn double(behaviour: &'static str) -> (Double, RegistryClient) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let d = Double {
        addr,
        behaviour,
        seen: Arc::default(),
    };
    let app = Router::new()
        .route("/v2/team/app/manifests/{tag}", any(manifest))
        .route("/token", get(token))
        .with_state(d.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut policy = ImagePolicy::default();
    let settings = RegistrySettings {
        plain_http: true,
        ca_file: None,
    };
    policy.registries.insert(addr.to_string(), settings);
    policy.timeout = Duration::from_secs(3);
    let metrics = PinMetrics::new(&prometheus::Registry::new()).expect("metrics");
    (d, RegistryClient::new(&policy, metrics).expect("client"))
}

fn image(d: &Double) -> Reference {
    Reference::parse(&format!("{}/team/app:1", d.addr)).expect("reference")
}

fn user() -> Credential {
    Credential::Basic {
        username: "u".into(),
        password: "pw".into(),
    }
}

#[tokio::test]
async fn a_bearer_challenge_is_answered_with_a_token_that_is_reused() {
    let (d, client) = double("bearer").await;
    for _ in 0..3 {
        let digest = client.digest(&image(&d), Some(&user())).await;
        assert_eq!(digest.as_deref(), Ok(DIGEST));
    }
    assert_eq!(d.seen.tokens.load(Ordering::SeqCst), 1, "one token, reused");
    assert_eq!(
        d.seen.manifests.load(Ordering::SeqCst),
        4,
        "one 401, then three with the token"
    );
}

#[tokio::test]
async fn a_token_service_refusing_the_credentials_is_unauthorized() {
    let (d, client) = double("bearer").await;
    let wrong = Credential::Basic {
        username: "u".into(),
        password: "nope".into(),
    };
    let e = client
        .digest(&image(&d), Some(&wrong))
        .await
        .expect_err("refused");
    assert!(matches!(e, ResolveError::Unauthorized { .. }), "{e}");
}

#[tokio::test]
async fn a_429_is_retried_after_its_retry_after_when_the_deadline_allows() {
    let (d, client) = double("rate-limited").await;
    assert_eq!(client.digest(&image(&d), None).await.as_deref(), Ok(DIGEST));
    assert_eq!(d.seen.manifests.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_429_asking_for_longer_than_the_timeout_is_reported_at_once() {
    let (d, client) = double("rate-limited-long").await;
    let started = std::time::Instant::now();
    let e = client.digest(&image(&d), None).await.expect_err("limited");
    assert!(
        matches!(e, ResolveError::RateLimited { retry_after: Some(t), .. } if t.as_secs() == 60),
        "{e}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_registry_without_head_is_asked_with_get() {
    let (d, client) = double("no-head").await;
    assert_eq!(client.digest(&image(&d), None).await.as_deref(), Ok(DIGEST));
}

#[tokio::test]
async fn without_a_digest_header_the_manifest_body_is_hashed() {
    let (d, client) = double("no-digest-header").await;
    let digest = client.digest(&image(&d), None).await.expect("digest");
    use sha2::Digest as _;
    let hash = sha2::Sha256::digest(br#"{"schemaVersion":2}"#);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(digest, format!("sha256:{hex}"));
}

#[tokio::test]
async fn a_malformed_digest_header_never_reaches_a_patch() {
    let (d, client) = double("bad-digest").await;
    let e = client.digest(&image(&d), None).await.expect_err("rejected");
    assert!(e.to_string().contains("is not a digest"), "{e}");
}

#[tokio::test]
async fn a_server_error_names_the_status_and_the_registry_answer() {
    let (d, client) = double("server-error").await;
    let e = client.digest(&image(&d), None).await.expect_err("error");
    assert!(e.to_string().contains("HTTP 502: upstream exploded"), "{e}");
}
