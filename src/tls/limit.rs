//! At most `--max-connections` open webhook connections. Each holds TLS and
//! HTTP buffers (tens of KiB), so their number, not the number of reviews in
//! flight, is what bounds memory under a flood of clients. One more is
//! closed as soon as it is accepted, before any TLS work, and counted.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum_server::accept::Accept;
use prometheus::{IntCounter, IntGauge, Registry};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The accept step of the webhook server: the connection limit, then
/// `TCP_NODELAY` (see [`super::server`]).
#[derive(Clone)]
pub struct ConnectionLimit {
    permits: Arc<Semaphore>,
    open: IntGauge,
    refused: IntCounter,
}

impl ConnectionLimit {
    /// `max` connections, with `gitops_guard_connections_open` and
    /// `gitops_guard_connections_refused_total` in `registry`.
    pub fn new(max: usize, registry: &Registry) -> Result<Self, prometheus::Error> {
        let limit = Self::unregistered(max)?;
        registry.register(Box::new(limit.open.clone()))?;
        registry.register(Box::new(limit.refused.clone()))?;
        Ok(limit)
    }

    /// A limit whose metrics go nowhere (benches and tests).
    pub fn unregistered(max: usize) -> Result<Self, prometheus::Error> {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        Ok(Self {
            permits: Arc::new(Semaphore::new(max)),
            open: IntGauge::new(
                "gitops_guard_connections_open",
                "Webhook connections open now.",
            )?,
            refused: IntCounter::new(
                "gitops_guard_connections_refused_total",
                "Webhook connections closed at accept because --max-connections were open.",
            )?,
        })
    }
}

impl<S: Send + 'static> Accept<TcpStream, S> for ConnectionLimit {
    type Stream = Limited;
    type Service = S;
    type Future = std::future::Ready<io::Result<(Limited, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            self.refused.inc();
            let full = io::Error::other("--max-connections reached");
            return std::future::ready(Err(full));
        };
        if let Err(e) = stream.set_nodelay(true) {
            return std::future::ready(Err(e));
        }
        self.open.inc();
        let open = self.open.clone();
        std::future::ready(Ok((
            Limited {
                stream,
                _slot: Slot {
                    _permit: permit,
                    open,
                },
            },
            service,
        )))
    }
}

/// Frees its connection slot when the connection is dropped.
struct Slot {
    _permit: OwnedSemaphorePermit,
    open: IntGauge,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open.dec();
    }
}

/// An accepted connection holding its slot.
pub struct Limited {
    stream: TcpStream,
    _slot: Slot,
}

impl AsyncRead for Limited {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

write_through!(impl[] Limited);
