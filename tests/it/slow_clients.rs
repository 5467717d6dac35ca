//! Slow and silent clients cannot pin the webhook: a connection that never
//! finishes its TLS handshake or its headers is closed after the read
//! timeout, a body trickled past the request deadline gets a 503, and
//! hundreds of idle connections do not keep a review from being answered;
//! past `--max-connections` a new connection is closed at once and counted.

use gitops_guard_testkit::tls_peer as peer;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use peer::*;

#[tokio::test]
async fn a_connection_that_never_starts_its_tls_handshake_is_closed() {
    let server = serve().await;
    let addr = server.addr;
    let closed = blocking(move || {
        let mut tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(PINNED)).unwrap();
        read_until_closed(&mut tcp, Instant::now()).1
    })
    .await;
    println!("silent TCP connection closed after {closed:?}");
    assert!(
        closed >= READ_TIMEOUT,
        "closed before the timeout: {closed:?}"
    );
}

#[tokio::test]
async fn headers_that_never_end_are_cut_off_at_the_read_timeout() {
    let server = serve().await;
    let closed = blocking(move || {
        let mut stream = server.connect();
        let started = Instant::now();
        stream
            .write_all(b"POST /validate HTTP/1.1\r\nHost: gitops-guard\r\n")
            .unwrap();
        stream.flush().unwrap();
        read_until_closed(&mut stream, started)
    })
    .await;
    println!("unfinished headers: connection closed after {:?}", closed.1);
    assert!(closed.1 >= READ_TIMEOUT, "closed too early: {closed:?}");
}

#[tokio::test]
async fn a_body_trickled_past_the_request_deadline_gets_503() {
    let server = serve().await;
    let (answer, after) = blocking(move || {
        let mut stream = server.connect();
        let started = Instant::now();
        let head = format!(
            "POST /validate HTTP/1.1\r\nHost: gitops-guard\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n",
            REVIEW.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        // Ten bytes 50 ms apart, then nothing: the body never completes.
        for byte in REVIEW.as_bytes().iter().take(10) {
            stream.write_all(&[*byte]).unwrap();
            stream.flush().unwrap();
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut buf = [0u8; 512];
        let n = stream.read(&mut buf).unwrap_or(0);
        (
            String::from_utf8_lossy(&buf[..n]).into_owned(),
            started.elapsed(),
        )
    })
    .await;
    println!("trickled body answered after {after:?}");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_idle_connections_do_not_keep_a_review_from_being_answered() {
    let server = serve().await;
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(TcpStream::connect(server.addr).unwrap());
    }
    let ca = reqwest::Certificate::from_pem(server.bundle.ca_pem.as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_merge([ca])
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let started = Instant::now();
    let response = client
        .post(format!("https://127.0.0.1:{}/validate", server.addr.port()))
        .header("content-type", "application/json")
        .body(REVIEW)
        .send()
        .await
        .unwrap();
    println!(
        "review with 300 idle connections open: {:?}",
        started.elapsed()
    );
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert!(response.text().await.unwrap().contains(r#""allowed":true"#));
    drop(idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_connections_a_new_connection_is_closed_at_once_and_counted() {
    let server = serve_limited(2).await;
    let (first, second) = {
        let s = server.clone();
        blocking(move || (s.connect(), s.connect())).await
    };
    assert_eq!(server.metric("gitops_guard_connections_open"), 2.0);
    let addr = server.addr;
    let (sent, closed) = blocking(move || {
        let mut third = TcpStream::connect(addr).unwrap();
        third.set_read_timeout(Some(PINNED)).unwrap();
        let started = Instant::now();
        let sent = third.write_all(b"\x16\x03\x01");
        (sent.is_ok(), read_until_closed(&mut third, started).1)
    })
    .await;
    println!("third connection closed after {closed:?} (write accepted: {sent})");
    assert!(closed < READ_TIMEOUT, "not refused at once: {closed:?}");
    assert_eq!(server.metric("gitops_guard_connections_refused_total"), 1.0);

    drop(first);
    let s = server.clone();
    let mut again = None;
    for _ in 0..50 {
        if server.metric("gitops_guard_connections_open") < 2.0 {
            again = Some(blocking(move || s.connect()).await);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        again.is_some(),
        "the slot was not freed when a connection closed"
    );
    drop(second);
}
