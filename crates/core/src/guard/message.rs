//! Messages for a person at a terminal: what was denied, who owns it, who may
//! write it, and where in Git to make the change instead.

use std::{fmt::Write, time::Duration};

use super::{
    decide::Manual,
    identity::reconcilers,
    ownership::{Owner, OwnerKind},
};
use crate::{
    admission::{
        decision::Reason,
        review::{Operation, Request},
    },
    cluster::view::{ClusterView, Grant},
    policy::Policy,
};

/// The object a request is about, as messages name it.
#[derive(Debug, Clone)]
pub struct Subject {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub verb: &'static str,
    pub user: String,
}

impl Subject {
    pub fn of(req: &Request<'_>) -> Self {
        let scale = req.sub_resource() == "scale";
        let kind = if scale {
            scaled_kind(&req.resource.resource)
        } else {
            req.kind.kind.to_string()
        };
        let verb = match req.operation {
            _ if scale => "scale",
            Operation::Create => "create",
            Operation::Update => "change",
            Operation::Delete => "delete",
            Operation::Connect => "connect to",
        };
        Subject {
            kind,
            namespace: req.namespace().to_owned(),
            name: req.object_name().to_owned(),
            verb,
            user: req.user_info.username.to_string(),
        }
    }
}

/// `deployments` -> `Deployment` for the parents the guard knows; others as `<resource>/scale`.
fn scaled_kind(resource: &str) -> String {
    let known = crate::cluster::ingest::builtin_parents()
        .into_iter()
        .find(|p| p.resource == resource);
    known.map_or_else(|| format!("{resource}/scale"), |p| p.kind)
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A Namespace's review carries its own name as the namespace.
        match self.namespace.as_str() {
            "" => write!(f, "{} {}", self.kind, self.name),
            _ if self.kind == "Namespace" => write!(f, "Namespace {}", self.name),
            ns => write!(f, "{} {ns}/{}", self.kind, self.name),
        }
    }
}

/// The few lines a denied user reads.
pub(super) fn denial(
    policy: &Policy,
    view: &ClusterView,
    req: &Request<'_>,
    m: &Manual<'_>,
) -> String {
    let (s, owner) = (&m.subject, m.owner.display(policy));
    let mut text = match m.reason {
        Reason::SpoofedOwnership => {
            format!(
                "{} may not create {s} carrying the ownership markers of {owner}.",
                s.user
            )
        }
        Reason::EscapeHatch => format!(
            "{s} is managed by {owner}; {} may not add, change or remove {:?} on it.",
            s.user,
            m.key.unwrap_or_default()
        ),
        Reason::ForgedFieldManager => format!(
            "{s} is managed by {owner}; {} sent field manager {:?}, which is its reconciler's: \
             a field manager is not a credential.",
            s.user,
            req.field_manager().unwrap_or_default()
        ),
        Reason::UnknownParent => {
            let meta = match req.operation {
                Operation::Create => req.object.as_ref(),
                _ => req.old_object.as_ref().or(req.object.as_ref()),
            };
            let parent = meta
                .and_then(|o| o.metadata.controller())
                .map_or_else(String::new, |r| {
                    format!("{} {} (uid {})", r.kind, r.name, r.uid)
                });
            format!(
                "{} may not {} {s} carrying the ownership markers of {owner}: its controller \
                 {parent} is not an object gitops-guard knows with that owner. Derived objects \
                 are written by their parent's controller, and the parent must exist first.",
                s.user, s.verb
            )
        }
        Reason::Suspend => format!(
            "{s} is managed by {owner}; {} may not suspend or resume it: that switches GitOps \
             off (or on) for everything it applies. Only the operators named in the policy \
             (compatibility.suspend) may, or a BreakGlass grant.",
            s.user
        ),
        _ => format!(
            "{s} is managed by {owner}; {} may not {} it.",
            s.user, s.verb
        ),
    };
    let who = reconcilers(policy, view, &m.owner);
    let _ = write!(
        text,
        "\nOnly {who} may write it. {}",
        where_in_git(policy, view, &m.owner)
    );
    if !s.namespace.is_empty() {
        let _ = write!(
            text,
            "\nIn an emergency, a BreakGlass grant in namespace {} lets named people through until it expires.",
            s.namespace
        );
    }
    text
}

/// A review the apiserver would never send: an UPDATE or DELETE without
/// the old object, from which ownership is read.
pub(super) fn incomplete(s: &Subject) -> String {
    format!(
        "gitops-guard refuses to judge this {} of {s}: the review carries no oldObject, which the \
         apiserver always sends and ownership is read from. Whatever sent it is not a kube-apiserver.",
        s.verb
    )
}

/// Where the source of truth of an owner lives.
pub fn where_in_git(policy: &Policy, view: &ClusterView, owner: &Owner) -> String {
    let shown = owner.display(policy);
    match owner.kind {
        OwnerKind::Kustomization | OwnerKind::HelmRelease => {
            let known = view.flux_object(owner);
            match known.and_then(|o| Some((o.path.as_deref()?, o.source.as_ref()?))) {
                Some((path, source)) => {
                    format!(
                        "Change it in Git ({shown} applies {path} from {source}) and let Flux reconcile."
                    )
                }
                None => {
                    format!("Change it in Git, in the source of {shown}, and let Flux reconcile.")
                }
            }
        }
        OwnerKind::ArgoApplication => {
            format!("Change it in Git, in the source of {shown}, and let Argo CD sync.")
        }
        OwnerKind::Custom(i) => match policy
            .owners
            .custom
            .get(i)
            .and_then(|c| c.source_hint.as_deref())
        {
            Some(hint) => format!("Change it in {hint}."),
            None => format!("Change it at the source of {shown}."),
        },
    }
}

/// The one line kubectl prints as `Warning:` in a warn-mode namespace.
pub(super) fn warning(policy: &Policy, m: &Manual<'_>) -> String {
    format!(
        "gitops-guard: {} is managed by {}; this manual change will be reverted, change it in Git",
        m.subject,
        m.owner.display(policy)
    )
}

/// The warning attached to a change let through by break-glass.
pub(super) fn break_glass(policy: &Policy, m: &Manual<'_>, grant: &Grant, max: Duration) -> String {
    format!(
        "gitops-guard: break-glass {} lets {} change {} (managed by {}) until {}; put the change in Git too",
        grant.name,
        m.subject.user,
        m.subject,
        m.owner.display(policy),
        grant.effective_expiry(max)
    )
}

/// Scale of a parent the view has not loaded yet.
pub(super) fn not_synced(subject: &Subject) -> String {
    format!(
        "gitops-guard is still loading the cluster view and cannot tell who owns {subject}; retry in a few seconds."
    )
}
