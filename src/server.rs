//! The webhook's HTTP shell: decode, call the pure core, encode. One span a
//! review; object bodies are never logged.

use std::{sync::Arc, time::Duration};

use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, Uri},
    response::{IntoResponse, Response},
    routing::post,
};
use tracing::{Level, field::Empty};

use crate::{
    admission::{
        decision::{Decision, Outcome, Reason},
        respond, review,
    },
    cluster::shared::SharedView,
    drift::{
        announce::Involved,
        announce::ToDrift,
        journal::{Admission, JournalEntry},
    },
    guard::decide,
    metrics::AdmissionMetrics,
    policy::Policy,
    tenancy::settings::WhenNotSynced,
    webhook::{DEFAULT_BUDGET, admit, apiserver_budget, limited},
};

/// Everything a review needs, shared by all requests.
#[derive(Clone)]
pub struct Guard {
    pub policy: Arc<Policy>,
    pub view: SharedView,
    pub metrics: AdmissionMetrics,
    /// Manual changes let through (for the drift watcher to name who),
    /// break-glass uses and impersonation attempts (for the alert sender).
    pub to_drift: ToDrift,
}

impl Guard {
    /// A guard whose admissions nobody hears (tests, benches); `serve`
    /// sets [`Guard::to_drift`].
    pub fn new(policy: Arc<Policy>, view: SharedView, metrics: AdmissionMetrics) -> Self {
        Self {
            policy,
            view,
            metrics,
            to_drift: ToDrift::default(),
        }
    }

    /// Decides one decoded request against the current view.
    pub fn decide(&self, req: &review::Request<'_>) -> Decision {
        decide(&self.policy, &self.view.read(), req, jiff::Timestamp::now())
    }
}

/// `POST /validate`, with the body limit and a deadline below the webhook timeout.
pub fn router(guard: Guard, request_timeout: Duration) -> Router {
    let routes = Router::new().route("/validate", post(validate));
    limited(routes, request_timeout).with_state(guard)
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
        let changed = guard.view.changed().notified();
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
    // Waits end before the apiserver gives up (10 s if it did not say).
    let budget = apiserver_budget(&uri).unwrap_or(DEFAULT_BUDGET);
    let mut decision = guard.decide(req);
    let waits = guard.policy.tenancy.when_not_synced == WhenNotSynced::Wait;
    if decision.reason() == Reason::ViewNotSynced && waits {
        let mut ready = guard.view.loaded();
        let wait = ready.wait_for(|synced| *synced);
        if tokio::time::timeout(budget, wait)
            .await
            .is_ok_and(|r| r.is_ok())
        {
            decision = guard.decide(req);
        }
    }
    if decision.reason() == Reason::UnknownParent {
        decision = wait_for_parent(&guard, req, budget, decision).await;
    }
    let span = tracing::info_span!(
        "review",
        uid = %req.uid,
        kind = %req.kind.kind,
        namespace = req.namespace(),
        name = req.object_name(),
        user = %req.user_info.username,
        credential = crate::identity::Credential::of(&req.user_info).as_str(),
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
    let kind = &req.kind;
    let involved = Involved {
        api_version: kube::core::GroupVersion::gv(&kind.group, &kind.version).api_version(),
        kind: kind.kind.to_string(),
    };
    guard.to_drift.admitted(key, involved, entry);
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
