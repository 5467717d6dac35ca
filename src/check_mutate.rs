//! `gitops-guard check --mutate`: a review answered as the mutating webhook
//! would, offline with digests from a file or online with `--resolve`.

use std::{collections::BTreeMap, sync::Arc, time::Instant};

use serde::Serialize;

use crate::{
    check::{Error, inputs},
    config::CheckArgs,
    pin::{
        cache::DigestCache, error::ResolveError, locate, metrics::PinMetrics, plan,
        pullsecret::Keyring, registry::RegistryClient, resolver::Resolver, settings::PinMode,
    },
    policy::Policy,
};

/// What `check --mutate` prints.
#[derive(Debug, Serialize)]
pub struct MutateOutcome {
    pub allowed: bool,
    pub reason: &'static str,
    pub patch: serde_json::Value,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

fn read_file(path: &std::path::Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.display().to_string(),
        source,
    })
}

pub fn run(args: &CheckArgs) -> Result<MutateOutcome, Error> {
    let inputs = inputs(args)?;
    let req = inputs.review(locate::decode)?;
    let (policy, view) = (&inputs.policy, &inputs.view);
    let mode = match args.pin_mode {
        Some(mode) => mode,
        None => policy
            .images
            .mode(view.namespace(req.namespace()).map(|n| &n.labels)),
    };
    let result = if mode == PinMode::Off {
        plan::Plan::nothing(plan::PinReason::Off)
    } else {
        let (wanted, _) = plan::wanted(&req, &policy.images);
        let digests = if args.resolve {
            resolve(args, policy, &wanted)?
        } else {
            from_file(args, &wanted)?
        };
        plan::finish(mode, &wanted, |text| {
            digests.get(text).map(|o| o.as_ref().map(String::as_str))
        })
    };
    let patch = result.patch().map_err(Error::Patch)?;
    Ok(MutateOutcome {
        allowed: result.denial.is_none(),
        reason: result.reason.as_str(),
        patch: serde_json::to_value(patch)?,
        warnings: result.warnings,
        message: result.denial,
    })
}

type Digests = BTreeMap<String, Result<String, ResolveError>>;

/// Digests from `--digests`: keyed by the image as written or normalised.
fn from_file(args: &CheckArgs, wanted: &[plan::Wanted<'_>]) -> Result<Digests, Error> {
    let mut known: BTreeMap<String, String> = BTreeMap::new();
    if let Some(path) = &args.digests {
        let text = read_file(path)?;
        known = serde_saphyr::from_str(&text).map_err(|e| Error::Parse {
            path: path.display().to_string(),
            message: format!("expected a map of image to digest: {e}"),
        })?;
    }
    let mut out = Digests::new();
    for w in wanted {
        let Ok(r) = &w.reference else { continue };
        let normal = format!("{}/{}:{}", r.registry(), r.repository(), r.tag_or_latest());
        let answer = match known.get(w.text).or_else(|| known.get(&normal)) {
            Some(d) if crate::pin::registry::valid_digest(d) => Ok(d.clone()),
            Some(d) => Err(ResolveError::Protocol {
                registry: "--digests".into(),
                detail: format!("{d:?} for {} is not a digest", w.text),
            }),
            None => Err(ResolveError::NotFound {
                registry: "--digests".into(),
                repository: r.repository().to_owned(),
                tag: r.tag_or_latest().to_owned(),
            }),
        };
        out.insert(w.text.to_owned(), answer);
    }
    Ok(out)
}

/// Digests from the registries themselves.
fn resolve(
    args: &CheckArgs,
    policy: &Policy,
    wanted: &[plan::Wanted<'_>],
) -> Result<Digests, Error> {
    let keyring = match &args.docker_config {
        Some(path) => {
            Keyring::from_dockerconfigjson(read_file(path)?.as_bytes()).map_err(|source| {
                Error::PullSecret {
                    path: path.display().to_string(),
                    source,
                }
            })?
        }
        None => Keyring::default(),
    };
    let metrics = PinMetrics::new(&prometheus::Registry::new())?;
    let registry = RegistryClient::new(&policy.images, metrics.clone())?;
    let resolver = Resolver {
        cache: Arc::new(DigestCache::new(&policy.images.cache, metrics)),
        registry: Arc::new(registry),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let deadline = Instant::now() + policy.images.deadline;
    let found = runtime.block_on(resolver.resolve_all(wanted, &keyring, deadline, false));
    Ok(found
        .into_iter()
        .map(|(text, outcome)| (text, outcome.map(|d| d.to_string())))
        .collect())
}
