//! `decide`: pure, synchronous, no I/O. Given the policy, the cluster view and
//! one admission request, say whether the write may happen.

use jiff::Timestamp;

use super::{
    actors, compat,
    identity::reconcilers,
    message::{self, Subject},
    ownership::{Owner, changed_guard_label, changed_protected_key, owner_of},
    tenancy,
};
use crate::{
    admission::{
        decision::{Decision, Outcome, Reason},
        review::{Metadata, Operation, Request},
    },
    cluster::view::{ClusterView, ParentLookup, Who},
    identity::Identity,
    policy::{Mode, Policy},
};

pub fn decide(policy: &Policy, view: &ClusterView, req: &Request<'_>, now: Timestamp) -> Decision {
    // A status write that leaves labels and annotations alone changes
    // nothing Git owns; one that changes them is judged like any update.
    if req.sub_resource() == "status" && !changes_metadata(req) {
        return Decision::allow(Reason::StatusWrite);
    }
    if actors::doing_its_job(&policy.system_actors, req) {
        return Decision::allow(Reason::SystemActor);
    }
    // Every request the webhook sees is about GitOps-owned objects, tenants
    // or reconciler identities: none is decided on a half-loaded view.
    // Nor in any mode: the namespace's mode is itself in the view. The shell
    // waits for the view within the review's deadline and asks again.
    if !view.is_synced() {
        let subject = Subject::of(req);
        return Decision::deny(Reason::ViewNotSynced, message::not_synced(&subject));
    }
    // Tenant rules and controller tokens hold in every mode.
    let verdict = tenancy::check(policy, view, req);
    if let Some(v) = verdict.violation {
        return Decision::deny(v.reason, v.message);
    }
    let mut decision = decide_ownership(policy, view, req, now);
    if decision.is_allowed() {
        decision.warnings.extend(verdict.warnings);
    }
    decision
}

/// Whether an UPDATE changes labels or annotations. The apiserver keeps
/// metadata changes made through `/status` for most kinds (Ingress and
/// Service among them), so such a status write is no status write at all.
fn changes_metadata(req: &Request<'_>) -> bool {
    let old = req.old_object.as_ref().map(|o| &o.metadata);
    let new = req.object.as_ref().map(|o| &o.metadata);
    match (old, new) {
        (Some(old), Some(new)) => old.labels != new.labels || old.annotations != new.annotations,
        _ => true,
    }
}

/// Who owns the object, and whether this writer is its reconciler.
fn decide_ownership(
    policy: &Policy,
    view: &ClusterView,
    req: &Request<'_>,
    now: Timestamp,
) -> Decision {
    if req.sub_resource() == "scale" {
        return decide_scale(policy, view, req, now);
    }
    // The apiserver always sends the old object of an UPDATE or DELETE, and
    // ownership is read from it: a review without one is not judged.
    let needs_old = matches!(req.operation, Operation::Update | Operation::Delete);
    if needs_old && req.old_object.is_none() {
        return Decision::deny(
            Reason::IncompleteReview,
            message::incomplete(&Subject::of(req)),
        );
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
    // A client certificate named like a service account is a user, never
    // that account (`Identity::of`).
    let writer = Identity::of(&req.user_info);
    let owners = [judged_owner.as_ref(), claimed_owner.as_ref()];
    if owners
        .iter()
        .flatten()
        .all(|o| reconcilers(policy, view, o).contains(writer))
    {
        return Decision::allow(Reason::Reconciler);
    }
    // A controller (the endpointslice controller, a ReplicaSet's) copies its
    // parent's labels: its write is derived, not manual, when the parent is
    // in the view with the same owner. Any other reference is forged, stale
    // or not yet seen: the write is judged as the manual change it may be.
    let derivation = match writer {
        Identity::ServiceAccount(_) => {
            derivation_of(policy, view, req.namespace(), [judged, claimed])
        }
        Identity::User(_) => Derivation::NotDerived,
    };
    if derivation == Derivation::FromOwnedParent {
        return Decision::allow(Reason::DerivedObject);
    }
    // Only the judged owner's objects: a write that also claims another
    // owner is never a compatible one.
    let compatible = claimed_owner
        .is_none()
        .then(|| compat::check(policy, req, writer, owner))
        .flatten();
    let (reason, key) = match compatible {
        Some(compat::Verdict::Allow(reason)) => return Decision::allow(reason),
        Some(compat::Verdict::Suspend) => (Reason::Suspend, None),
        None => match classify(policy, req, owner, old, new) {
            // Deception and escape hatches outrank a missing parent.
            (Reason::NotReconciler | Reason::SpoofedOwnership, None)
                if derivation == Derivation::UnknownParent =>
            {
                (Reason::UnknownParent, None)
            }
            classified => classified,
        },
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

/// What the controller references of a write say about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Derivation {
    /// Some object has no controller, a parent the view does not keep, or
    /// a parent with another owner.
    NotDerived,
    /// Every object's controller is in the view, with the object's owner.
    FromOwnedParent,
    /// A controller the view should have but does not (yet).
    UnknownParent,
}

/// Judges the objects of a write (the judged one and, for an UPDATE, the
/// new one): each must name, as its controller, a parent in the view that
/// carries the same owner.
fn derivation_of(
    policy: &Policy,
    view: &ClusterView,
    namespace: &str,
    objects: [Option<&Metadata<'_>>; 2],
) -> Derivation {
    let mut missing = false;
    for meta in objects.into_iter().flatten() {
        let Some(reference) = meta.controller() else {
            return Derivation::NotDerived;
        };
        match view.referenced_parent(namespace, reference) {
            ParentLookup::Found(parent) if owner_of(policy, parent) == owner_of(policy, meta) => {}
            ParentLookup::Found(_) | ParentLookup::Unwatched => return Derivation::NotDerived,
            ParentLookup::Missing => missing = true,
        }
    }
    match missing {
        true => Derivation::UnknownParent,
        false => Derivation::FromOwnedParent,
    }
}

/// `/scale` carries no labels: the parent in the cluster view decides.
fn decide_scale(
    policy: &Policy,
    view: &ClusterView,
    req: &Request<'_>,
    now: Timestamp,
) -> Decision {
    let resource = &req.resource;
    let parent = view.parent(
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
    if reconcilers(policy, view, &owner).contains(Identity::of(&req.user_info)) {
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
    let forged = req.field_manager().is_some_and(|fm| {
        policy
            .owners
            .get(owner.kind)
            .field_managers
            .iter()
            .any(|m| m == fm)
    });
    if forged {
        return (Reason::ForgedFieldManager, None);
    }
    if req.operation == Operation::Create {
        return (Reason::SpoofedOwnership, None);
    }
    if let (Some(old), Some(new)) = (old, new) {
        let namespace = req.kind.group.is_empty() && req.kind.kind == "Namespace";
        let guard_label = || {
            namespace
                .then(|| changed_guard_label(policy, old, new))
                .flatten()
        };
        if let Some(key) = changed_protected_key(policy, old, new).or_else(guard_label) {
            return (Reason::EscapeHatch, Some(key));
        }
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
    // `/scale` carries kind Scale: a grant names the parent's kind.
    let names = [
        req.kind.kind.as_ref(),
        req.resource.resource.as_ref(),
        m.subject.kind.as_str(),
    ];
    let max = policy.break_glass.max_duration;
    let grant = view
        .grants_in(req.namespace())
        .find(|g| g.covers(&who, &names, req.object_name(), now, max));
    if let Some(grant) = grant {
        let warning = message::break_glass(policy, &m, grant, max);
        return Decision::allow(Reason::BreakGlass).with_warning(warning);
    }
    // Deception and switching the reconciler off are denied in every mode;
    // the mode decides only what happens to a plain manual change.
    let mode = match m.reason.follows_mode() {
        true => mode_of(policy, view, req.namespace()),
        false => Mode::Enforce,
    };
    match mode {
        Mode::Enforce => Decision::deny(m.reason, message::denial(policy, view, req, &m)),
        Mode::Warn => {
            Decision::new(m.reason, Outcome::Warned).with_warning(message::warning(policy, &m))
        }
        Mode::Audit => Decision::new(m.reason, Outcome::Audited),
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
