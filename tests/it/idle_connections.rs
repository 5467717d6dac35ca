//! A keep-alive connection between reviews is not a slow client: the
//! header read timeout starts only once a request has begun, and a
//! connection with nothing in flight is closed at the (longer) idle timeout,
//! HTTP/1.1 and HTTP/2 alike. Before, hyper's header timeout closed idle
//! keep-alive connections after seconds, racing clients that reused them.

use gitops_guard_testkit::tls_peer as peer;

use std::io::Write;
use std::time::Instant;

use peer::*;
use rstest::rstest;

/// HTTP/2's client connection preface (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#[tokio::test]
async fn an_idle_keep_alive_connection_outlives_the_header_read_timeout() {
    let server = serve().await;
    let second = blocking(move || {
        let mut stream = server.connect();
        let first = review(&mut stream);
        assert!(first.starts_with("HTTP/1.1 200"), "{first}");
        std::thread::sleep(READ_TIMEOUT * 2);
        review(&mut stream)
    })
    .await;
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
}

#[tokio::test]
async fn a_keep_alive_connection_left_idle_is_closed_at_the_idle_timeout() {
    let server = serve().await;
    let (_, closed) = blocking(move || {
        let mut stream = server.connect();
        let answer = review(&mut stream);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        read_until_closed(&mut stream, Instant::now())
    })
    .await;
    println!("idle HTTP/1.1 connection closed after {closed:?}");
    // The server's idle clock starts when it has written the answer, a
    // little before the client has read it, so the client sees slightly
    // less than IDLE_TIMEOUT. What must not happen is a close at the header
    // read timeout (READ_TIMEOUT, a third of IDLE_TIMEOUT): midway between
    // the two separates them with room to spare on a loaded machine.
    assert!(
        closed > (READ_TIMEOUT + IDLE_TIMEOUT) / 2,
        "closed at the header read timeout, not the idle timeout: {closed:?}"
    );
}

/// Opens a connection offering `alpn` (h2, or http/1.1 and then HTTP/2 by
/// prior knowledge), sends HTTP/2's preface and an empty SETTINGS frame,
/// then stays silent; the server must keep it until the idle timeout,
/// counted from before the connect (the idle clock starts at accept), not
/// close it at the header timeout.
#[rstest]
#[case::negotiated_by_alpn(&b"h2"[..])]
#[case::by_prior_knowledge_without_alpn(&b"http/1.1"[..])]
#[tokio::test]
async fn an_http2_connection_with_nothing_in_flight_is_closed_at_the_idle_timeout(
    #[case] alpn: &'static [u8],
) {
    let server = serve().await;
    let closed = blocking(move || {
        let started = Instant::now();
        let mut stream = server.connect_alpn(alpn);
        assert_eq!(stream.conn.alpn_protocol(), Some(alpn));
        stream.write_all(H2_PREFACE).unwrap();
        stream.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).unwrap();
        stream.flush().unwrap();
        read_until_closed(&mut stream, started).1
    })
    .await;
    println!(
        "idle HTTP/2 connection (ALPN {}) closed after {closed:?}",
        String::from_utf8_lossy(alpn)
    );
    // The server's idle clock starts when it has written the answer, a
    // little before the client has read it, so the client sees slightly
    // less than IDLE_TIMEOUT. What must not happen is a close at the header
    // read timeout (READ_TIMEOUT, a third of IDLE_TIMEOUT): midway between
    // the two separates them with room to spare on a loaded machine.
    assert!(
        closed > (READ_TIMEOUT + IDLE_TIMEOUT) / 2,
        "closed at the header read timeout, not the idle timeout: {closed:?}"
    );
}
