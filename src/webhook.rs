//! What every webhook handler does before and around its own work: the
//! body limit, load shedding, the JSON check, counting and timing a review
//! in flight, decoding it, and the apiserver's deadline.

use std::time::Duration;

use axum::{
    Json, Router,
    http::{HeaderMap, StatusCode, Uri, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
};

use crate::{
    admission::{respond, review},
    metrics::{AdmissionMetrics, InFlight},
};

/// controller-runtime allows 7 MiB; the apiserver's own request limit is 3 MiB
/// of object, so 8 MiB covers any review carrying two of them.
pub const BODY_LIMIT: usize = 8 * 1024 * 1024;

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

/// What every webhook route gets: the body limit, and a 503 once `deadline`
/// passes (the apiserver then applies the webhook's failurePolicy).
pub fn limited<S: Clone + Send + Sync + 'static>(
    routes: Router<S>,
    deadline: Duration,
) -> Router<S> {
    routes
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            deadline,
        ))
}

/// Kept back from the apiserver's own deadline for encoding the answer and
/// the trip home.
const MARGIN: Duration = Duration::from_millis(500);

/// The budget when the apiserver names none: its default timeout (10 s).
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(10).saturating_sub(MARGIN);

/// What the apiserver allows a review: it appends `?timeout=5s` (the
/// webhook's timeoutSeconds) to every call; less `MARGIN`. The one place
/// every webhook reads it.
pub fn apiserver_budget(uri: &Uri) -> Option<Duration> {
    let asked = uri
        .query()
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| {
            let value = pair.strip_prefix("timeout=")?;
            crate::duration::parse_duration(value).ok()
        })?;
    Some(asked.saturating_sub(MARGIN))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(text: &str) -> Uri {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn the_apiserver_timeout_less_the_margin_is_the_budget() {
        let budget = apiserver_budget(&uri("/validate?timeout=5s"));
        assert_eq!(budget, Some(Duration::from_millis(4_500)));
    }

    #[test]
    fn no_timeout_or_an_unreadable_one_names_no_budget() {
        assert_eq!(apiserver_budget(&uri("/validate")), None);
        assert_eq!(apiserver_budget(&uri("/mutate?timeout=soon")), None);
    }
}
