//! Two clocks per webhook connection, where hyper has one. hyper's HTTP/1
//! header read timeout starts as soon as a keep-alive connection is idle, so
//! with it at a slow-client bound (seconds) every idle connection was closed
//! after seconds, abruptly: a client reusing it at that instant (Go's and
//! reqwest's pools keep idle connections 90 s) lost its review, because a
//! POST is not retried. Here:
//! - **head**: once the first bytes of an HTTP/1 request arrive on an idle
//!   connection, its headers must be complete within the header read timeout
//!   (slow-loris bound, as before);
//! - **idle**: a connection with no review in flight and no request begun is
//!   closed after the idle timeout, longer than clients keep idle
//!   connections, so that the client, which knows when it is not sending,
//!   is the side that closes.
//!
//! While a review is in flight neither clock runs: the request deadline
//! bounds it. HTTP/2 connections have only the idle clock (their frames are
//! not requests). The watch sits above TLS, so it sees plaintext and the
//! negotiated protocol, and counts reviews through a service wrapper.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum_server::accept::Accept;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};
use tokio_rustls::server::TlsStream;

/// The two limits (see the module documentation).
#[derive(Debug, Clone, Copy)]
pub struct Clocks {
    pub header_read: Duration,
    pub idle: Duration,
}

impl Default for Clocks {
    /// `serve`'s defaults (`--header-read-timeout`, `--idle-timeout`).
    fn default() -> Self {
        Self {
            header_read: Duration::from_secs(2),
            idle: Duration::from_secs(120),
        }
    }
}

/// The outermost accept step: after `inner` (TLS), wraps the stream and the
/// connection's service so that both share one [`Activity`].
#[derive(Clone)]
pub struct Watch<A> {
    inner: A,
    clocks: Clocks,
}

impl<A> Watch<A> {
    pub fn new(inner: A, clocks: Clocks) -> Self {
        Self { inner, clocks }
    }
}

type Accepted<S, V> = io::Result<(Watched<S>, Counted<V>)>;

impl<A, I, S, T> Accept<I, S> for Watch<A>
where
    A: Accept<I, S, Stream = TlsStream<T>>,
    A::Future: Send + 'static,
    A::Service: Send + 'static,
    T: Send + 'static,
{
    type Stream = Watched<TlsStream<T>>;
    type Service = Counted<A::Service>;
    type Future = Pin<Box<dyn Future<Output = Accepted<TlsStream<T>, A::Service>> + Send>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let accepted = self.inner.accept(stream, service);
        let clocks = self.clocks;
        Box::pin(async move {
            let (stream, service) = accepted.await?;
            let http2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
            let activity = Arc::new(Activity::new(http2));
            let counted = Counted {
                inner: service,
                activity: activity.clone(),
            };
            Ok((Watched::new(stream, activity, clocks), counted))
        })
    }
}

/// What the stream and the service of one connection know of each other.
struct Activity {
    in_flight: AtomicUsize,
    state: Mutex<State>,
}

struct State {
    http2: bool,
    /// When the connection last had nothing in flight.
    idle_since: Instant,
    /// When the bytes of a request that has not yet reached the service
    /// began to arrive (HTTP/1 only).
    head_started: Option<Instant>,
    /// The task parked in a read, woken when the last review ends so that
    /// the idle clock starts.
    reader: Option<Waker>,
}

impl Activity {
    fn new(http2: bool) -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            state: Mutex::new(State {
                http2,
                idle_since: Instant::now(),
                head_started: None,
                reader: None,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn begin(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.state().head_started = None;
    }

    fn end(&self) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            let mut state = self.state();
            state.idle_since = Instant::now();
            if let Some(reader) = state.reader.take() {
                reader.wake();
            }
        }
    }

    /// Bytes arrived; `preface` when they are the connection's first and
    /// open with HTTP/2's client preface (prior knowledge, no ALPN).
    fn read_bytes(&self, preface: bool) {
        if preface {
            self.state().http2 = true;
        }
        if self.in_flight.load(Ordering::Acquire) == 0 {
            let mut state = self.state();
            if !state.http2 && state.head_started.is_none() {
                state.head_started = Some(Instant::now());
            }
        }
    }

    /// When a read that is still waiting must give up, if at all.
    fn deadline(&self, clocks: Clocks, reader: &Waker) -> Option<(Instant, &'static str)> {
        let mut state = self.state();
        if !state.reader.as_ref().is_some_and(|w| w.will_wake(reader)) {
            state.reader = Some(reader.clone());
        }
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        Some(match state.head_started {
            Some(at) => (
                at + clocks.header_read,
                "request headers not complete in time",
            ),
            None => (state.idle_since + clocks.idle, "idle connection"),
        })
    }
}

/// A connection's stream whose reads fail when a clock runs out, which
/// makes hyper close the connection.
pub struct Watched<S> {
    stream: S,
    activity: Arc<Activity>,
    clocks: Clocks,
    timer: Pin<Box<Sleep>>,
    read_any: bool,
}

/// How an HTTP/2 connection opens (RFC 9113 §3.4), enough to tell it from
/// any HTTP/1 request line.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

impl<S> Watched<S> {
    fn new(stream: S, activity: Arc<Activity>, clocks: Clocks) -> Self {
        let timer = Box::pin(tokio::time::sleep(clocks.idle));
        Self {
            stream,
            activity,
            clocks,
            timer,
            read_any: false,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                let first = !std::mem::replace(&mut this.read_any, true);
                let preface = first && buf.filled()[before..].starts_with(H2_PREFACE);
                this.activity.read_bytes(preface);
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                let Some((deadline, why)) = this.activity.deadline(this.clocks, cx.waker()) else {
                    return Poll::Pending;
                };
                if this.timer.deadline() != deadline {
                    this.timer.as_mut().reset(deadline);
                }
                match this.timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, why)))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
            other => other,
        }
    }
}

write_through!(impl[S: AsyncWrite + Unpin] Watched<S>);

/// A connection's service that tells its [`Activity`] when a review begins
/// (its headers have been read) and ends.
#[derive(Clone)]
pub struct Counted<V> {
    inner: V,
    activity: Arc<Activity>,
}

struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.end();
    }
}

impl<V, R> tower::Service<R> for Counted<V>
where
    V: tower::Service<R>,
    V::Future: Send + 'static,
{
    type Response = V::Response;
    type Error = V::Error;
    type Future = Pin<Box<dyn Future<Output = Result<V::Response, V::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.activity.begin();
        let in_flight = InFlight(self.activity.clone());
        let answer = self.inner.call(request);
        Box::pin(async move {
            let answer = answer.await;
            drop(in_flight);
            answer
        })
    }
}
