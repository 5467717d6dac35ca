//! The pinning webhooks' HTTP shell: `POST /mutate` (pin tags to digests)
//! and `POST /validate-images` (in `require` namespaces, deny what is still
//! unpinned). Decode, read the namespace's mode, call the pure plan, resolve
//! in between, encode. One span a review; objects are never logged.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::post,
};
use tracing::field::Empty;

use super::{
    cache::DigestCache,
    credentials::Credentials,
    locate::{self, Carrier, PinRequest},
    metrics::{CacheSizeCollector, PinMetrics},
    plan::{self, PinReason, Plan, Untouched},
    pullsecret::Keyring,
    registry::RegistryClient,
    resolver::Resolver,
    settings::PinMode,
};
use crate::{
    admission::{decision::Decision, decision::Reason, respond},
    cluster::shared::SharedView,
    metrics::AdmissionMetrics,
    policy::Policy,
    webhook::{admit, apiserver_budget, limited},
};

/// Everything a pinning review needs, shared by all requests.
#[derive(Clone)]
pub struct Pinner {
    pub policy: Arc<Policy>,
    pub view: SharedView,
    pub resolver: Arc<Resolver>,
    pub credentials: Arc<Credentials>,
    pub metrics: AdmissionMetrics,
    pub pin_metrics: PinMetrics,
}

impl Pinner {
    /// The mutating side: digest cache, registry client, pull-secret reader,
    /// their metrics registered into `registry`. `client` is None offline
    /// (`check`, tests): then only `fixed` credentials are used.
    pub fn build(
        policy: &Arc<Policy>,
        view: &SharedView,
        client: Option<kube::Client>,
        fixed: Keyring,
        metrics: AdmissionMetrics,
        registry: &prometheus::Registry,
    ) -> anyhow::Result<Self> {
        let pin_metrics = PinMetrics::new(registry)?;
        let cache = Arc::new(DigestCache::new(&policy.images.cache, pin_metrics.clone()));
        CacheSizeCollector::register(registry, &cache)?;
        let client_registry = RegistryClient::new(&policy.images, pin_metrics.clone())?;
        let credentials = Credentials::new(client, &policy.images.pull_secrets, fixed);
        Ok(Self {
            policy: policy.clone(),
            view: view.clone(),
            resolver: Arc::new(Resolver {
                cache,
                registry: Arc::new(client_registry),
            }),
            credentials: Arc::new(credentials),
            metrics,
            pin_metrics,
        })
    }
}

pub fn router(pinner: Pinner) -> Router {
    let limit = pinner.policy.images.deadline + Duration::from_secs(1);
    let routes = Router::new()
        .route("/mutate", post(mutate))
        .route("/validate-images", post(validate_images));
    limited(routes, limit).with_state(pinner)
}

/// The review's deadline: the policy's, or sooner when the apiserver's
/// `?timeout=` leaves less.
fn deadline(policy: &Policy, uri: &Uri) -> Instant {
    let asked = apiserver_budget(uri);
    let budget = asked.map_or(policy.images.deadline, |a| a.min(policy.images.deadline));
    Instant::now() + budget
}

impl Pinner {
    fn mode(&self, namespace: &str) -> PinMode {
        let view = self.view.read();
        let labels = view.namespace(namespace).map(|facts| &facts.labels);
        self.policy.images.mode(labels)
    }

    fn count(&self, untouched: Untouched, plan: &Plan) {
        let fields = &self.pin_metrics.fields;
        let add = |outcome: &str, n: usize| {
            fields
                .with_label_values(&[outcome])
                .inc_by(u64::try_from(n).unwrap_or(u64::MAX));
        };
        add("already-pinned", untouched.already_pinned);
        add("skipped", untouched.skipped);
        add("unchanged", untouched.unchanged);
        add("pinned", plan.replacements.len());
    }

    /// Decode, mode, plan, resolve, finish: the whole mutate review.
    pub async fn review(&self, req: &PinRequest<'_>, deadline: Instant) -> Plan {
        let mode = self.mode(req.namespace());
        if mode == PinMode::Off {
            return Plan::nothing(PinReason::Off);
        }
        let (wanted, untouched) = plan::wanted(req, &self.policy.images);
        if wanted.is_empty() {
            self.count(untouched, &Plan::nothing(PinReason::NothingToPin));
            return Plan::nothing(PinReason::NothingToPin);
        }
        let (secrets, account) = pull_context(req);
        let keyring = self
            .credentials
            .keyring(req.namespace(), &secrets, account)
            .await;
        // A dry run changes nothing, so it asks no registry either: it gets
        // what the cache holds (Flux's server-side dry run after an apply).
        let digests = (self.resolver)
            .resolve_all(&wanted, &keyring, deadline, req.dry_run)
            .await;
        let result = plan::finish(mode, &wanted, |text| {
            digests.get(text).map(|o| o.as_ref().map(|d| d.as_ref()))
        });
        self.count(untouched, &result);
        let failed = wanted.len() - result.replacements.len();
        if failed > 0 {
            self.pin_metrics
                .fields
                .with_label_values(&["failed"])
                .inc_by(u64::try_from(failed).unwrap_or(u64::MAX));
        }
        result
    }
}

/// The pull secrets named in the pod spec, and the service account to read
/// more from (templates only: for Pods the apiserver has already copied them).
fn pull_context<'r>(req: &'r PinRequest<'r>) -> (Vec<&'r str>, Option<&'r str>) {
    let Some((_, carrier, spec)) = req
        .object
        .as_ref()
        .and_then(|o| locate::pod_spec(&req.kind, o))
    else {
        return (Vec::new(), None);
    };
    let secrets = spec
        .image_pull_secrets
        .iter()
        .map(|s| s.name.as_ref())
        .filter(|n| !n.is_empty())
        .collect();
    let account = match carrier {
        Carrier::Template => Some(spec.service_account_name.as_deref().unwrap_or("default")),
        Carrier::Pod => None,
    };
    (secrets, account)
}

mod handlers;
use handlers::{mutate, validate_images};
