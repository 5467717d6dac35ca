//! `gitops-guard check`: one AdmissionReview decided offline, exactly as the
//! webhook would decide it, with a state file standing in for the cluster.

use std::io::Read;

use crate::{
    admission::{decision::Decision, respond, review},
    cluster::view::ClusterView,
    config::CheckArgs,
    guard::decide,
    policy::Policy,
};

/// Invalid input or usage: exit code 2 with a one-line reason.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Policy(#[from] crate::policy::Error),
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not YAML or JSON: {message}")]
    Parse { path: String, message: String },
    #[error("{0}")]
    State(#[from] crate::cluster::state_file::StateFileError),
    #[error("cannot build the JSON patch: {0}")]
    Patch(String),
    #[error("cannot encode the answer: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("{path}: {source}")]
    PullSecret {
        path: String,
        source: crate::pin::pullsecret::PullSecretError,
    },
    #[error("cannot set up the registry client: {0}")]
    Registry(#[from] crate::pin::registry::ClientError),
    #[error("cannot set up the pinning metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("cannot start a runtime: {0}")]
    Runtime(std::io::Error),
    #[error("{path}: {source}")]
    Review {
        path: String,
        source: review::DecodeError,
    },
}

/// The decision and the response review to print.
pub struct Outcome {
    pub decision: Decision,
    pub response: String,
}

/// What both `check` and `check --mutate` read: the policy, the cluster
/// view from `--cluster-state`, and the review (its label and JSON body).
pub(crate) struct Inputs {
    pub policy: Policy,
    pub view: ClusterView,
    pub label: String,
    pub body: Vec<u8>,
}

pub(crate) fn inputs(args: &CheckArgs) -> Result<Inputs, Error> {
    let policy = match &args.policy {
        Some(path) => Policy::load(path)?,
        None => Policy::default(),
    };
    let mut view = ClusterView::synced();
    if let Some(path) = &args.cluster_state {
        crate::cluster::state_file::load(&mut view, &policy, path)?;
    }
    let (label, text) = read_input(&args.review)?;
    let body = to_json(&label, &text)?;
    Ok(Inputs {
        policy,
        view,
        label,
        body,
    })
}

impl Inputs {
    /// The review decoded by `decode` (the validating or the pinning view
    /// of it); an error names the input.
    pub(crate) fn review<'b, R>(
        &'b self,
        decode: impl FnOnce(&'b [u8]) -> Result<R, review::DecodeError>,
    ) -> Result<R, Error> {
        decode(&self.body).map_err(|source| Error::Review {
            path: self.label.clone(),
            source,
        })
    }
}

pub fn run(args: &CheckArgs) -> Result<Outcome, Error> {
    let inputs = inputs(args)?;
    let req = inputs.review(review::decode)?;
    let (policy, view, label) = (&inputs.policy, &inputs.view, inputs.label.clone());
    let now = args.at.unwrap_or_else(jiff::Timestamp::now);
    let decision = decide(policy, view, &req, now);
    let response =
        serde_json::to_string_pretty(&respond::review(&req.uid, &decision)).map_err(|e| {
            Error::Parse {
                path: label,
                message: e.to_string(),
            }
        })?;
    Ok(Outcome { decision, response })
}

fn read_input(arg: &str) -> Result<(String, String), Error> {
    let mut text = String::new();
    if arg == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|source| Error::Read {
                path: "stdin".into(),
                source,
            })?;
        return Ok(("stdin".into(), text));
    }
    let text = std::fs::read_to_string(arg).map_err(|source| Error::Read {
        path: arg.into(),
        source,
    })?;
    Ok((arg.to_owned(), text))
}

/// JSON passes through untouched; YAML is converted to JSON first.
fn to_json(label: &str, text: &str) -> Result<Vec<u8>, Error> {
    if text.trim_start().starts_with('{') {
        return Ok(text.as_bytes().to_vec());
    }
    let parse = |message: String| Error::Parse {
        path: label.to_owned(),
        message,
    };
    let value: serde_json::Value =
        serde_saphyr::from_str(text).map_err(|e| parse(e.to_string()))?;
    serde_json::to_vec(&value).map_err(|e| parse(e.to_string()))
}
