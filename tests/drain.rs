//! Draining: once shutdown has begun, HTTP/1.1 keep-alive clients are told
//! in-band (`Connection: close`) to reconnect elsewhere, and the server
//! closes each such connection after that answer, so no client is left
//! holding a connection the server will close under its next review.

#[allow(dead_code)]
mod common;

use std::time::Duration;

use axum::{
    body::Body,
    http::{Request, Version, header::CONNECTION},
};
use gitops_guard::admin::Readiness;
use gitops_guard::cluster::view::ClusterView;
use gitops_guard::drain::{self, Drain};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::ServiceExt;

const REVIEW: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1",
  "kind":{"group":"","version":"v1","kind":"ConfigMap"},"resource":{"group":"","version":"v1","resource":"configmaps"},
  "name":"x","namespace":"prod","operation":"UPDATE","userInfo":{"username":"alice"},
  "object":{"metadata":{"name":"x"}},"oldObject":{"metadata":{"name":"x"}}}}"#;

/// One answer read off a keep-alive connection: its head (lower-cased) and
/// whether its body arrived whole.
struct Answer {
    head: String,
    complete: bool,
}

async fn review(stream: &mut TcpStream) -> Answer {
    let request = format!(
        "POST /validate HTTP/1.1\r\nhost: guard\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{REVIEW}",
        REVIEW.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before an answer");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .expect("a content-length");
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.unwrap();
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Answer {
        complete: buf.len() == head_end + length,
        head,
    }
}

async fn serve(drain: Drain) -> std::net::SocketAddr {
    let (app, _) = common::app(ClusterView::synced());
    let app = drain::layer(app, drain);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test]
async fn a_keep_alive_connection_is_closed_after_the_first_answer_once_draining() {
    let drain = Drain::default();
    let mut stream = TcpStream::connect(serve(drain.clone()).await)
        .await
        .unwrap();

    let before = review(&mut stream).await;
    assert!(before.complete && before.head.starts_with("http/1.1 200"));
    assert!(
        !before.head.contains("connection: close"),
        "{}",
        before.head
    );

    drain.start();
    let after = review(&mut stream).await;
    assert!(after.complete && after.head.starts_with("http/1.1 200"));
    assert!(after.head.contains("connection: close"), "{}", after.head);

    let mut rest = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut rest)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the server kept the connection open after Connection: close: {read:?}"
    );
}

#[tokio::test]
async fn an_http2_answer_never_carries_a_connection_header() {
    let drain = Drain::default();
    drain.start();
    let (app, _) = common::app(ClusterView::synced());
    let request = Request::post("/validate")
        .version(Version::HTTP_2)
        .header("content-type", "application/json")
        .body(Body::from(REVIEW))
        .unwrap();
    let response = drain::layer(app, drain).oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get(CONNECTION).is_none());
}

#[test]
fn a_draining_instance_reports_itself_not_ready() {
    let readiness = Readiness::default();
    for fact in [
        &readiness.certificate_loaded,
        &readiness.listener_bound,
        &readiness.view_synced,
    ] {
        fact.store(true, std::sync::atomic::Ordering::Release);
    }
    assert!(readiness.missing().is_empty());
    readiness.draining.start();
    assert_eq!(readiness.missing(), ["shutting down"]);
}
