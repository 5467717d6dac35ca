//! `decide`: pure, synchronous, no I/O. Given the policy, the cluster view and
//! one admission request, say whether the write may happen.

use jiff::Timestamp;

use super::{
    compat,
    identity::{field_managers, reconcilers},
    message::{self, Subject},
    ownership::{Owner, changed_protected_key, owner_of},
    tenancy,
};
use crate::{
    admission::{
        decision::{Decision, Reason},
        review::{Metadata, Operation, Request},
    },
    cluster::view::{ClusterView, Who},
    policy::{Mode, Policy},
};

pub fn decide(policy: &Policy, view: &ClusterView, req: &Request<'_>, now: Timestamp) -> Decision {
    let user = req.user_info.username.as_ref();
    if req.sub_resource() == "status" && !changes_markers(policy, req) {
        return Decision::allow(Reason::StatusWrite);
    }
    if policy.system_actors.always.iter().any(|a| a == user) {
        return Decision::allow(Reason::SystemActor);
    }
    // Every request the webhook sees is about GitOps-owned objects, tenants
    // or reconciler identities: none is decided on a half-loaded view.
    if !view.is_synced() {
        let subject = Subject::of(req);
        let text = || message::not_synced(&subject);
        return apply_mode(policy, view, req, Reason::ViewNotSynced, text, text);
    }
    let verdict = tenancy::check(policy, view, req);
    if let Some(v) = verdict.violation {
        let warning = || format!("gitops-guard: {}", v.message.replace('\n', " "));
        return apply_mode(policy, view, req, v.reason, || v.message.clone(), warning);
    }
    let decision = decide_ownership(policy, view, req, now);
    match decision {
        Decision::Allow {
            reason,
            mut warnings,
        } if !verdict.warnings.is_empty() => {
            warnings.extend(verdict.warnings);
            Decision::Allow { reason, warnings }
        }
        other => other,
    }
}

/// Whether an UPDATE adds, changes or removes an ownership marker or escape
/// hatch. The apiserver keeps metadata changes made through `/status` for
/// most kinds (a Deployment's status strategy resets only spec and labels),
/// so a status write that touches these is judged like any other change.
fn changes_markers(policy: &Policy, req: &Request<'_>) -> bool {
    let old = req.old_object.as_ref().map(|o| &o.metadata);
    let new = req.object.as_ref().map(|o| &o.metadata);
    match (old, new) {
        (Some(old), Some(new)) => changed_protected_key(policy, old, new).is_some(),
        _ => false,
    }
}

/// Who owns the object, and whether this writer is its reconciler.
fn decide_ownership(
    policy: &Policy,
    view: &ClusterView,
    req: &Request<'_>,
    now: Timestamp,
) -> Decision {
    let user = req.user_info.username.as_ref();
    if req.sub_resource() == "scale" {
        return decide_scale(policy, view, req, now);
    }
    let namespace = view.namespace(req.namespace());
    if req.operation == Operation::Delete && namespace.is_some_and(|n| n.terminating) {
        return Decision::allow(Reason::TerminatingNamespace);
    }
    let old = req.old_object.as_ref().map(|o| &o.metadata);
    let new = req.object.as_ref().map(|o| &o.metadata);
    // UPDATE and DELETE are judged on the old object; an UPDATE that adds or
    // changes ownership is also judged against the owner it claims.
    let (judged, claimed) = match req.operation {
        Operation::Create | Operation::Connect => (new, None),
        Operation::Delete => (old, None),
        Operation::Update => (old, new),
    };
    let judged_owner = judged.and_then(|m| owner_of(policy, m));
    let claimed_owner = claimed
        .and_then(|m| owner_of(policy, m))
        .filter(|c| Some(c) != judged_owner.as_ref());
    let Some(owner) = judged_owner.as_ref().or(claimed_owner.as_ref()) else {
        return Decision::allow(Reason::Unowned);
    };
    let owners = [judged_owner.as_ref(), claimed_owner.as_ref()];
    if owners
        .iter()
        .flatten()
        .all(|o| reconcilers(policy, view, o).contains(user))
    {
        return Decision::allow(Reason::Reconciler);
    }
    let derived = judged.is_some_and(Metadata::has_controller);
    if derived && user.starts_with("system:serviceaccount:") {
        return Decision::allow(Reason::DerivedObject);
    }
    // Only the judged owner's objects: a write that also claims another
    // owner is never a compatible one.
    let compatible = claimed_owner
        .is_none()
        .then(|| compat::check(policy, req, owner))
        .flatten();
    let (reason, key) = match compatible {
        Some(compat::Verdict::Allow(reason)) => return Decision::allow(reason),
        Some(compat::Verdict::Suspend) => (Reason::Suspend, None),
        None => classify(policy, req, owner, old, new),
    };
    let subject = Subject::of(req);
    judge_manual(
        policy,
        view,
        req,
        now,
        Manual {
            // Only a manual change names its owner in a message: clone it here.
            owner: owner.clone(),
            reason,
            key,
            subject,
        },
    )
}

/// `/scale` carries no labels: the parent in the cluster view decides.
fn decide_scale(
    policy: &Policy,
    view: &ClusterView,
    req: &Request<'_>,
    now: Timestamp,
) -> Decision {
    let user = req.user_info.username.as_ref();
    if policy.system_actors.scale.iter().any(|a| a == user) {
        return Decision::allow(Reason::SystemActor);
    }
    let resource = &req.resource;
    let parent = view.scale_parent(
        &resource.group,
        &resource.resource,
        req.namespace(),
        &req.name,
    );
    // `decide` answered already if the view is still loading: an unknown
    // parent here is one the cluster does not have.
    let Some(owner) = parent.and_then(|p| owner_of(policy, p)) else {
        return Decision::allow(Reason::Unowned);
    };
    if reconcilers(policy, view, &owner).contains(user) {
        return Decision::allow(Reason::Reconciler);
    }
    judge_manual(
        policy,
        view,
        req,
        now,
        Manual {
            owner,
            reason: Reason::NotReconciler,
            key: None,
            subject: Subject::of(req),
        },
    )
}

/// A manual change of an owned object, and why it is one.
pub(super) struct Manual<'p> {
    pub owner: Owner,
    pub reason: Reason,
    /// The protected label/annotation the change touches, if any.
    pub key: Option<&'p str>,
    pub subject: Subject,
}

fn classify<'p>(
    policy: &'p Policy,
    req: &Request<'_>,
    owner: &Owner,
    old: Option<&Metadata<'_>>,
    new: Option<&Metadata<'_>>,
) -> (Reason, Option<&'p str>) {
    let forged = req
        .field_manager()
        .is_some_and(|fm| field_managers(policy, owner.kind).iter().any(|m| m == fm));
    if forged {
        return (Reason::ForgedFieldManager, None);
    }
    if req.operation == Operation::Create {
        return (Reason::SpoofedOwnership, None);
    }
    if let (Some(old), Some(new)) = (old, new)
        && let Some(key) = changed_protected_key(policy, old, new)
    {
        return (Reason::EscapeHatch, Some(key));
    }
    (Reason::NotReconciler, None)
}

fn judge_manual(
    policy: &Policy,
    view: &ClusterView,
    req: &Request<'_>,
    now: Timestamp,
    m: Manual<'_>,
) -> Decision {
    let who = Who {
        user: &req.user_info.username,
        groups: &req.user_info.groups,
    };
    let names = [req.kind.kind.as_ref(), req.resource.resource.as_ref()];
    let max = policy.break_glass.max_duration;
    let grant = view
        .grants_in(req.namespace())
        .find(|g| g.covers(&who, &names, &req.name, now, max));
    if let Some(grant) = grant {
        let warning = message::break_glass(policy, &m, grant, max);
        return Decision::Allow {
            reason: Reason::BreakGlass,
            warnings: vec![warning],
        };
    }
    let denial = || message::denial(policy, view, req, &m);
    match m.reason {
        // Deception and switching the reconciler off are never just warned about.
        Reason::EscapeHatch | Reason::ForgedFieldManager => Decision::Deny {
            reason: m.reason,
            message: denial(),
        },
        reason => apply_mode(policy, view, req, reason, denial, || {
            message::warning(policy, &m)
        }),
    }
}

fn apply_mode(
    policy: &Policy,
    view: &ClusterView,
    req: &Request<'_>,
    reason: Reason,
    denial: impl FnOnce() -> String,
    warning: impl FnOnce() -> String,
) -> Decision {
    match mode_of(policy, view, req.namespace()) {
        Mode::Enforce => Decision::Deny {
            reason,
            message: denial(),
        },
        Mode::Warn => Decision::Allow {
            reason: Reason::Warned,
            warnings: vec![warning()],
        },
        Mode::Audit => Decision::allow(Reason::Audited),
    }
}

/// The namespace's `gitops-guard.io/mode` label, else the policy default. An
/// unknown value enforces: a typo must not open the namespace.
pub fn mode_of(policy: &Policy, view: &ClusterView, namespace: &str) -> Mode {
    let label = view
        .namespace(namespace)
        .and_then(|n| n.labels.get(&policy.mode_label));
    match label {
        Some(value) => Mode::parse(value).unwrap_or(Mode::Enforce),
        None => policy.default_mode,
    }
}
