//! Draining: from SIGTERM until the listener closes, every HTTP/1.x answer
//! carries `Connection: close`, so a keep-alive client learns in-band that
//! it must reconnect (through the Service, to a ready instance) instead of
//! sending its next review on a connection the server is about to close.
//! Without it, the idle keep-alive connections still open when the shutdown
//! delay ends are closed under the client's feet, and a review written at
//! that instant fails (a POST is not retried). HTTP/2 clients get GOAWAY
//! from the graceful shutdown, which tells them which streams were not
//! processed.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use axum::{
    Router,
    extract::{Request, State},
    http::{HeaderValue, Version, header::CONNECTION},
    middleware::{self, Next},
    response::Response,
};

/// Set once, when the process is asked to stop.
#[derive(Debug, Clone, Default)]
pub struct Drain(Arc<AtomicBool>);

impl Drain {
    pub fn start(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// `app` with `Connection: close` on its HTTP/1.x answers once `drain` has
/// started (checked when the answer is ready, so a review that began before
/// SIGTERM closes its connection too).
pub fn layer(app: Router, drain: Drain) -> Router {
    app.layer(middleware::from_fn_with_state(drain, close_when_draining))
}

async fn close_when_draining(State(drain): State<Drain>, req: Request, next: Next) -> Response {
    let http1 = matches!(
        req.version(),
        Version::HTTP_09 | Version::HTTP_10 | Version::HTTP_11
    );
    let mut response = next.run(req).await;
    if http1 && drain.is_draining() {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
