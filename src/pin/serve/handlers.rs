//! The two pinning handlers: the wire around `Pinner::review`.

use tracing::Instrument;

use super::*;

fn span(webhook: &'static str, req: &PinRequest<'_>) -> tracing::Span {
    tracing::info_span!(
        "review",
        webhook,
        uid = %req.uid,
        kind = %req.kind.kind,
        namespace = req.namespace(),
        name = %req.name,
        operation = req.operation.as_str(),
        dry_run = req.dry_run,
        decision = Empty,
        reason = Empty,
    )
}

pub(super) async fn mutate(
    State(pinner): State<Pinner>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let metrics = &pinner.metrics;
    let admitted = match admit::<PinRequest<'_>>(metrics, "mutate", &headers, &body) {
        Ok(admitted) => admitted,
        Err(refusal) => return *refusal,
    };
    let req = &admitted.req;
    let span = span("mutate", req);
    let deadline = deadline(&pinner.policy, &uri);
    let plan = pinner.review(req, deadline).instrument(span.clone()).await;
    let verdict = if plan.denial.is_some() {
        "deny"
    } else {
        "allow"
    };
    span.record("decision", verdict)
        .record("reason", plan.reason.as_str());
    let labels = [
        "mutate",
        req.operation.as_str(),
        verdict,
        plan.reason.as_str(),
    ];
    metrics.requests.with_label_values(&labels).inc();
    let _entered = span.enter();
    if !plan.warnings.is_empty() || plan.denial.is_some() {
        tracing::info!(warnings = plan.warnings.len(), "images not pinned");
    }
    match respond::pin_review(&req.uid, &plan) {
        Ok(review) => Json(review).into_response(),
        Err(e) => {
            // Never a silent allow: a patch that cannot be encoded is an error.
            tracing::error!(error = %e, "cannot encode the patch");
            let review = respond::invalid(&format!("gitops-guard: cannot encode the patch: {e}"));
            (StatusCode::INTERNAL_SERVER_ERROR, Json(review)).into_response()
        }
    }
}

pub(super) async fn validate_images(
    State(pinner): State<Pinner>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let metrics = &pinner.metrics;
    let admitted = match admit::<PinRequest<'_>>(metrics, "validate-images", &headers, &body) {
        Ok(admitted) => admitted,
        Err(refusal) => return *refusal,
    };
    let req = &admitted.req;
    let span = span("validate-images", req);
    let _entered = span.enter();
    let decision = match pinner.mode(req.namespace()) {
        PinMode::Require => {
            let (wanted, _) = plan::wanted(req, &pinner.policy.images);
            match plan::unpinned_denial(&wanted) {
                Some(message) => Decision::deny(Reason::UnpinnedImage, message),
                None => Decision::allow(Reason::Unowned),
            }
        }
        PinMode::Off | PinMode::Pin => Decision::allow(Reason::Unowned),
    };
    let (verdict, reason) = (decision.verdict(), decision.reason().as_str());
    span.record("decision", verdict).record("reason", reason);
    let labels = ["validate-images", req.operation.as_str(), verdict, reason];
    metrics.requests.with_label_values(&labels).inc();
    if !decision.is_allowed() {
        tracing::info!("unpinned image denied");
    }
    Json(respond::review(&req.uid, &decision)).into_response()
}
