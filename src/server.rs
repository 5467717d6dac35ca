//! The webhook's HTTP shell: decode, call the pure core, encode. One span a
//! review; object bodies are never logged.

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, StatusCode, Uri, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
    routing::post,
};
use tower_http::timeout::TimeoutLayer;
use tracing::{Level, field::Empty};

use crate::{
    admission::{
        decision::{Decision, Outcome, Reason},
        respond, review,
    },
    cluster::view::ClusterView,
    drift::journal::{Admission, Journal, JournalEntry},
    guard::decide,
    metrics::{AdmissionMetrics, InFlight},
    policy::Policy,
    tenancy::settings::WhenNotSynced,
};

/// controller-runtime allows 7 MiB; the apiserver's own request limit is 3 MiB
/// of object, so 8 MiB covers any review carrying two of them.
pub const BODY_LIMIT: usize = 8 * 1024 * 1024;

/// Everything a review needs, shared by all requests.
#[derive(Clone)]
pub struct Guard {
    pub policy: Arc<Policy>,
    pub view: Arc<RwLock<ClusterView>>,
    pub metrics: AdmissionMetrics,
    /// Manual changes let through, for the drift watcher to name who.
    pub journal: Arc<Journal>,
    /// Turns true once the cluster view has loaded.
    pub view_ready: tokio::sync::watch::Receiver<bool>,
    /// Woken whenever a reflector changes the view.
    pub view_changed: Arc<tokio::sync::Notify>,
}

impl Guard {
    /// Decides one decoded request against the current view.
    pub fn decide(&self, req: &review::Request<'_>) -> Decision {
        let view = self
            .view
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        decide(&self.policy, &view, req, jiff::Timestamp::now())
    }
}

/// `POST /validate`, with the body limit and a deadline below the webhook timeout.
pub fn router(guard: Guard, request_timeout: Duration) -> Router {
    Router::new()
        .route("/validate", post(validate))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            request_timeout,
        ))
        .with_state(guard)
}

/// Sheds load past `max_in_flight` concurrent reviews (one limit for every
/// route) with a fast 503, counted; nothing queues, so a flood cannot grow
/// memory or latency.
pub fn shed(app: Router, max_in_flight: usize, metrics: &AdmissionMetrics) -> Router {
    let shed = metrics.shed.clone();
    let refuse = move |_: tower::BoxError| {
        shed.inc();
        std::future::ready((
            StatusCode::SERVICE_UNAVAILABLE,
            "gitops-guard is at --max-in-flight",
        ))
    };
    app.layer(
        tower::ServiceBuilder::new()
            .layer(axum::error_handling::HandleErrorLayer::new(refuse))
            .layer(tower::load_shed::LoadShedLayer::new())
            .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
                max_in_flight,
            )),
    )
}

pub fn is_json(headers: &HeaderMap) -> bool {
    let value = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = value.split(';').next().unwrap_or("").trim();
    media.eq_ignore_ascii_case("application/json")
}

/// A review past the checks every webhook makes first: JSON content type,
/// counted in flight, timed, decoded. The guards end with the request.
pub struct Admitted<R> {
    pub req: R,
    _in_flight: InFlight,
    _timer: prometheus::HistogramTimer,
}

/// The common prelude of the webhook handlers; a refusal is the response
/// to send (415 or 400, counted by cause, never an allow).
pub fn admit<'b, R>(
    metrics: &AdmissionMetrics,
    webhook: &str,
    headers: &HeaderMap,
    body: &'b [u8],
) -> Result<Admitted<R>, Box<Response>>
where
    R: serde::Deserialize<'b> + review::ReviewRequest<'b>,
{
    if !is_json(headers) {
        metrics.invalid.with_label_values(&["content-type"]).inc();
        let review = respond::invalid(&"Content-Type must be application/json");
        return Err(Box::new(
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, Json(review)).into_response(),
        ));
    }
    let in_flight = InFlight::start(&metrics.in_flight);
    let timer = metrics.duration.with_label_values(&[webhook]).start_timer();
    match review::decode_as::<R>(body) {
        Ok(req) => Ok(Admitted {
            req,
            _in_flight: in_flight,
            _timer: timer,
        }),
        Err(e) => {
            metrics.invalid.with_label_values(&[e.cause()]).inc();
            tracing::warn!(cause = e.cause(), error = %e, "invalid admission review");
            Err(Box::new(
                (StatusCode::BAD_REQUEST, Json(respond::invalid(&e))).into_response(),
            ))
        }
    }
}

/// The apiserver appends `?timeout=5s` (the webhook's timeoutSeconds); a
/// review waiting for the view answers 500 ms before it.
fn wait_budget(uri: &Uri) -> Duration {
    const MARGIN: Duration = Duration::from_millis(500);
    let asked = uri
        .query()
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| {
            let value = pair.strip_prefix("timeout=")?;
            crate::duration::parse_duration(value).ok()
        });
    asked
        .unwrap_or(Duration::from_secs(10))
        .saturating_sub(MARGIN)
}

/// A controller creates children right after its parent appears, and the
/// guard's watch may see the child's review first: re-decide after each view
/// change, for at most `PARENT_WAIT`. A forged reference waits that long and
/// is then judged as it was.
async fn wait_for_parent(
    guard: &Guard,
    req: &review::Request<'_>,
    budget: Duration,
    mut decision: Decision,
) -> Decision {
    const PARENT_WAIT: Duration = Duration::from_secs(2);
    let deadline = tokio::time::Instant::now() + budget.min(PARENT_WAIT);
    while decision.reason() == Reason::UnknownParent {
        let changed = guard.view_changed.notified();
        let mut changed = std::pin::pin!(changed);
        // Registered before deciding again, so no change slips between.
        changed.as_mut().enable();
        decision = guard.decide(req);
        if decision.reason() != Reason::UnknownParent {
            break;
        }
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            break;
        }
    }
    decision
}

async fn validate(
    State(guard): State<Guard>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let admitted = match admit::<review::Request<'_>>(&guard.metrics, "validate", &headers, &body) {
        Ok(admitted) => admitted,
        Err(refusal) => return *refusal,
    };
    let req = &admitted.req;
    let mut decision = guard.decide(req);
    let waits = guard.policy.tenancy.when_not_synced == WhenNotSynced::Wait;
    if decision.reason() == Reason::ViewNotSynced && waits {
        let mut ready = guard.view_ready.clone();
        let wait = ready.wait_for(|synced| *synced);
        if tokio::time::timeout(wait_budget(&uri), wait)
            .await
            .is_ok_and(|r| r.is_ok())
        {
            decision = guard.decide(req);
        }
    }
    if decision.reason() == Reason::UnknownParent {
        decision = wait_for_parent(&guard, req, wait_budget(&uri), decision).await;
    }
    let span = tracing::info_span!(
        "review",
        uid = %req.uid,
        kind = %req.kind.kind,
        namespace = req.namespace(),
        name = req.object_name(),
        user = %req.user_info.username,
        credential = crate::guard::actors::credential(&req.user_info).as_str(),
        operation = req.operation.as_str(),
        dry_run = req.dry_run,
        decision = Empty,
        reason = Empty,
    );
    let _entered = span.enter();
    record(&guard, &span, req, &decision);
    Json(respond::review(&req.uid, &decision)).into_response()
}

/// A manual change admitted in warn or audit mode or under break-glass goes
/// into the journal (dry runs change nothing and are left out).
fn remember(guard: &Guard, req: &review::Request<'_>, decision: &Decision) {
    let admission = match (decision.rule, decision.outcome) {
        (Reason::ControllerToken, _) => Admission::ControllerImpersonation,
        (Reason::BreakGlass, _) => Admission::BreakGlass,
        (_, Outcome::Warned) => Admission::Warned,
        (_, Outcome::Audited) => Admission::Audited,
        _ => return,
    };
    if req.dry_run {
        return;
    }
    let key = crate::object_ref::ObjectRef::new(
        &req.resource.group,
        &req.resource.resource,
        req.namespace(),
        req.object_name(),
    );
    let entry = JournalEntry {
        user: req.user_info.username.to_string(),
        at: jiff::Timestamp::now().as_second(),
        admission,
    };
    if admission == Admission::ControllerImpersonation {
        guard.journal.flag(&key, &entry);
    } else {
        guard.journal.record(key, entry);
    }
}

fn record(guard: &Guard, span: &tracing::Span, req: &review::Request<'_>, decision: &Decision) {
    let (verdict, reason) = (decision.verdict(), decision.reason().as_str());
    span.record("decision", verdict).record("reason", reason);
    let labels = ["validate", req.operation.as_str(), verdict, reason];
    guard.metrics.requests.with_label_values(&labels).inc();
    remember(guard, req, decision);
    if decision.reason() == crate::admission::decision::Reason::BreakGlass {
        guard
            .metrics
            .break_glass_uses
            .with_label_values(&[req.operation.as_str()])
            .inc();
    }
    // Manual changes are worth a line at info; routine allows only at debug.
    let routine = decision.outcome == Outcome::Allowed && decision.warnings.is_empty();
    if routine {
        tracing::event!(Level::DEBUG, "allowed");
    } else {
        tracing::event!(Level::INFO, "manual change reviewed");
    }
}
