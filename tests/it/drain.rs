//! Draining: once shutdown has begun, HTTP/1.1 keep-alive clients are told
//! in-band (`Connection: close`) to reconnect elsewhere, and the server
//! closes each such connection after that answer, so no client is left
//! holding a connection the server will close under its next review.

use gitops_guard_testkit::tls_peer as peer;

use std::net::TcpStream;
use std::time::Instant;

use axum::{
    body::Body,
    http::{Request, Version, header::CONNECTION},
};
use gitops_guard::admin::Readiness;
use gitops_guard::cluster::view::ClusterView;
use gitops_guard::drain::{self, Drain};
use peer::{PINNED, REVIEW, blocking, read_until_closed, review};
use tower::ServiceExt;

async fn serve(drain: Drain) -> std::net::SocketAddr {
    let (app, _) = crate::common::app(ClusterView::synced());
    let app = drain::layer(app, drain);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test]
async fn a_keep_alive_connection_is_closed_after_the_first_answer_once_draining() {
    let drain = Drain::default();
    let addr = serve(drain.clone()).await;
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PINNED)).unwrap();

    let (before, mut stream) = blocking(move || (review(&mut stream).to_lowercase(), stream)).await;
    assert!(before.starts_with("http/1.1 200"), "{before}");
    assert!(!before.contains("connection: close"), "{before}");

    drain.start();
    let after = blocking(move || {
        let after = review(&mut stream).to_lowercase();
        // Panics if the server keeps the connection open.
        read_until_closed(&mut stream, Instant::now());
        after
    })
    .await;
    assert!(after.starts_with("http/1.1 200"), "{after}");
    assert!(after.contains("connection: close"), "{after}");
}

#[tokio::test]
async fn an_http2_answer_never_carries_a_connection_header() {
    let drain = Drain::default();
    drain.start();
    let (app, _) = crate::common::app(ClusterView::synced());
    let request = Request::post("/validate")
        .version(Version::HTTP_2)
        .header("content-type", "application/json")
        .body(Body::from(REVIEW))
        .unwrap();
    let response = drain::layer(app, drain).oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get(CONNECTION).is_none());
}

/// A replica with its certificate, listener and view in place.
fn ready() -> Readiness {
    let readiness = Readiness::default();
    for fact in [
        &readiness.certificate_loaded,
        &readiness.listener_bound,
        &readiness.view_synced,
    ] {
        fact.store(true, std::sync::atomic::Ordering::Release);
    }
    readiness
}

#[test]
fn a_draining_instance_reports_itself_not_ready() {
    let readiness = ready();
    assert!(readiness.missing().is_empty());
    readiness.draining.start();
    assert_eq!(readiness.missing(), ["shutting down"]);
}

#[test]
fn a_stopped_background_task_makes_the_guard_not_ready_and_names_it() {
    let readiness = ready();
    let _ = readiness.stopped_task.set("drift-watch");
    assert_eq!(readiness.missing(), ["background task drift-watch stopped"]);
}
