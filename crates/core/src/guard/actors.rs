//! System actors: Kubernetes' own controllers, which must never be blocked
//! (a blocked garbage collector or namespace controller deadlocks the
//! cluster), recognised by the evidence a real one carries and allowed only
//! their own job.
//!
//! Evidence: kube-controller-manager with `--use-service-account-credentials`
//! acts through TokenRequest tokens of `kube-system` service accounts, so
//! its requests carry `authentication.kubernetes.io/credential-id: JTI=…`
//! (the e2e suite records this from the real controllers). An impersonated
//! request (`kubectl --as`, which the built-in `edit` and `admin` roles allow
//! for service accounts) carries no credential id, and a client certificate
//! carries `X509SHA256=…`: neither is a service account, whatever its name.

use serde::Deserialize;

use super::{compat::changes::Changes, compat::settings::Kinds};
use crate::{
    admission::review::{Operation, Request},
    identity::{Credential, Identity},
};

/// A system actor of the policy: an identity and its jobs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SystemActor {
    pub identity: String,
    pub jobs: Vec<Job>,
}

/// One kind of write a system actor is for.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Job {
    /// DELETE of any object: garbage collection, namespace deletion, TTL.
    Delete,
    /// An UPDATE changing only `metadata.finalizers` and
    /// `metadata.ownerReferences` (orphaning, foreground deletion).
    Finalize,
    /// An UPDATE of a `/scale` subresource (the autoscaler).
    Scale,
    /// Any write of these kinds (the deployment controller's ReplicaSets, the
    /// endpoints controller's Endpoints, which copy their Service's labels).
    Write(Kinds),
    /// An UPDATE of these kinds, of the object or its `/status`, changing
    /// only these JSON pointers (the deployment controller sets the revision
    /// annotation with UpdateStatus: a Deployment's status strategy keeps
    /// annotation changes).
    Change {
        #[serde(default)]
        group: String,
        kinds: Vec<String>,
        paths: Vec<String>,
    },
}

const FINALIZE: [&str; 2] = ["/metadata/finalizers", "/metadata/ownerReferences"];

impl Job {
    fn covers(&self, req: &Request<'_>) -> bool {
        let (group, kind) = (req.kind.group.as_ref(), req.kind.kind.as_ref());
        let main = req.sub_resource().is_empty();
        let update = req.operation == Operation::Update && main;
        let changes_under = |paths: &[&str]| {
            Changes::of_review(req.body.0).is_some_and(|c| !c.is_empty() && c.all_under(paths))
        };
        match self {
            Job::Delete => req.operation == Operation::Delete && main,
            Job::Finalize => update && changes_under(&FINALIZE),
            Job::Scale => req.operation == Operation::Update && req.sub_resource() == "scale",
            Job::Write(kinds) => main && kinds.contains(group, kind),
            Job::Change {
                group: g,
                kinds,
                paths,
            } => {
                let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
                let status = req.sub_resource() == "status";
                let update = req.operation == Operation::Update && (main || status);
                update && g == group && kinds.iter().any(|k| k == kind) && changes_under(&paths)
            }
        }
    }
}

/// Whether the request comes from a system actor, proven by its credential,
/// doing one of its jobs.
pub fn doing_its_job(actors: &[SystemActor], req: &Request<'_>) -> bool {
    let info = &req.user_info;
    // The name first (cheap, and no match for nearly every request), then
    // the identity: a certificate named like an actor's account is not it.
    let user = info.username.as_ref();
    let Some(actor) = actors.iter().find(|a| a.identity == user) else {
        return false;
    };
    let identity = Identity::of(info);
    if !identity.is(&actor.identity) {
        return false;
    }
    let proven = match (identity, Credential::of(info)) {
        (Identity::ServiceAccount(_), Credential::ServiceAccountToken) => {
            info.groups.iter().any(|g| g == "system:serviceaccounts")
        }
        // kube-controller-manager's own identity is a client certificate.
        (Identity::User(_), Credential::ClientCertificate) => true,
        _ => false,
    };
    proven && actor.jobs.iter().any(|job| job.covers(req))
}

fn kinds(group: &str, kinds: &[&str]) -> Kinds {
    Kinds {
        group: group.to_owned(),
        kinds: kinds.iter().map(|k| (*k).to_owned()).collect(),
    }
}

fn actor(name: &str, jobs: Vec<Job>) -> SystemActor {
    let identity = match name {
        "kube-controller-manager" => "system:kube-controller-manager".to_owned(),
        controller => format!("system:serviceaccount:kube-system:{controller}"),
    };
    SystemActor { identity, jobs }
}

/// The controllers of kube-controller-manager that write objects GitOps
/// owns, each with its job.
pub fn defaults() -> Vec<SystemActor> {
    let revision = || Job::Change {
        group: "apps".into(),
        kinds: vec!["Deployment".into()],
        paths: vec![
            "/metadata/annotations/deployment.kubernetes.io~1revision".into(),
            "/status".into(),
        ],
    };
    let replica_sets = || Job::Write(kinds("apps", &["ReplicaSet"]));
    let endpoints = || Job::Write(kinds("", &["Endpoints"]));
    vec![
        actor(
            "generic-garbage-collector",
            vec![Job::Delete, Job::Finalize],
        ),
        actor("namespace-controller", vec![Job::Delete, Job::Finalize]),
        actor("deployment-controller", vec![replica_sets(), revision()]),
        actor("endpoint-controller", vec![endpoints()]),
        actor("ttl-after-finished-controller", vec![Job::Delete]),
        actor("horizontal-pod-autoscaler", vec![Job::Scale]),
        // Without --use-service-account-credentials every controller acts
        // as kube-controller-manager itself.
        actor(
            "kube-controller-manager",
            vec![
                Job::Delete,
                Job::Finalize,
                Job::Scale,
                replica_sets(),
                revision(),
                endpoints(),
            ],
        ),
    ]
}
