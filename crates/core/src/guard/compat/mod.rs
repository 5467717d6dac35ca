//! Who may change what on a GitOps-owned object besides its reconciler: the
//! compatibility model (README, "Flux compatibility"). Pure, like all of
//! `guard`; the full objects are compared only when a rule needs them.
//!
//! - a controller that serves a GitOps kind writes that kind's finalizers
//!   and status, whoever applied the object (source-controller on a
//!   GitRepository that a Kustomization applied);
//! - a controller writes objects it generates for an owner of another kind
//!   with its own identity (helm-controller's HelmCharts);
//! - anyone may ask for a reconciliation (`reconcile.fluxcd.io/requestedAt`)
//!   when nothing else changes in the same request;
//! - `spec.suspend` is switching GitOps off: policy-named operators may,
//!   anyone else makes a manual change (denied in enforce);
//! - policy allowances: an identity, kinds, and the paths it may change.

pub mod changes;
pub mod settings;

use changes::Changes;
use settings::GeneratedOwner;

use super::ownership::{Owner, OwnerKind};
use crate::{
    admission::{
        decision::Reason,
        review::{Operation, Request},
    },
    identity::Identity,
    policy::Policy,
};

/// What the compatibility model says about a non-reconciler's write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A write the GitOps system itself makes, or a policy allowance.
    Allow(Reason),
    /// `flux suspend` / `resume` by someone who is not an operator: a manual
    /// change, with its own message.
    Suspend,
}

pub fn check(
    policy: &Policy,
    req: &Request<'_>,
    writer: Identity<'_>,
    owner: &Owner,
) -> Option<Verdict> {
    let compat = &policy.compatibility;
    let (group, kind) = (req.kind.group.as_ref(), req.kind.kind.as_ref());
    let generated = compat.generated.iter().any(|g| {
        writer.is(&g.identity) && g.kinds.contains(group, kind) && owner_is(g.owner, owner)
    });
    if generated && req.sub_resource().is_empty() {
        return Some(Verdict::Allow(Reason::GeneratedObject));
    }
    if req.operation != Operation::Update || !req.sub_resource().is_empty() {
        return None;
    }
    // Which rules could apply is read from the request alone; the objects
    // are compared only then (an edit of a Deployment by a person, the
    // common denial, parses nothing more).
    let groups = &req.user_info.groups;
    let serving: Vec<_> = compat
        .kind_controllers
        .iter()
        .filter(|c| writer.is(&c.identity) && c.serves.contains(group, kind))
        .collect();
    let requests: Vec<_> = compat
        .reconcile_requests
        .iter()
        .filter(|r| r.group == group)
        .collect();
    let allowances: Vec<_> = compat
        .allowances
        .iter()
        .filter(|a| {
            let who = a.users.iter().any(|u| writer.is(u))
                || a.groups.iter().any(|g| groups.iter().any(|mine| mine == g));
            who && a.kinds.iter().any(|k| k.contains(group, kind))
        })
        .collect();
    let suspendable = compat.suspend.groups.iter().any(|g| g == group);
    if serving.is_empty() && requests.is_empty() && allowances.is_empty() && !suspendable {
        return None;
    }
    let changes = Changes::of_review(req.body.0).filter(|c| !c.is_empty())?;
    if serving.iter().any(|c| changes.all_under(&c.paths)) {
        return Some(Verdict::Allow(Reason::KindController));
    }
    let request = requests
        .iter()
        .any(|r| changes.all_under(&annotation_pointers(&r.annotations)));
    if request {
        return Some(Verdict::Allow(Reason::ReconcileRequest));
    }
    if allowances.iter().any(|a| changes.all_under(&a.paths)) {
        return Some(Verdict::Allow(Reason::Allowance));
    }
    suspendable
        .then(|| suspend(policy, req, writer, &changes))
        .flatten()
}

fn suspend(
    policy: &Policy,
    req: &Request<'_>,
    writer: Identity<'_>,
    changes: &Changes,
) -> Option<Verdict> {
    let rule = &policy.compatibility.suspend;
    let mut paths = annotation_pointers(&["reconcile.fluxcd.io/requestedAt"]);
    paths.push("/spec/suspend".to_owned());
    let touches = changes.paths().iter().any(|p| p == "/spec/suspend");
    if !touches || !changes.all_under(&paths) {
        return None;
    }
    let info = &req.user_info;
    let operator = rule.users.iter().any(|u| writer.is(u))
        || rule
            .operator_groups
            .iter()
            .any(|g| info.groups.iter().any(|mine| mine == g));
    Some(if operator {
        Verdict::Allow(Reason::Operator)
    } else {
        Verdict::Suspend
    })
}

fn owner_is(kind: GeneratedOwner, owner: &Owner) -> bool {
    matches!(
        (kind, owner.kind),
        (GeneratedOwner::HelmRelease, OwnerKind::HelmRelease)
            | (GeneratedOwner::Kustomization, OwnerKind::Kustomization)
    )
}

fn annotation_pointers<S: AsRef<str>>(keys: &[S]) -> Vec<String> {
    keys.iter()
        .map(|k| {
            format!(
                "/metadata/annotations/{}",
                k.as_ref().replace('~', "~0").replace('/', "~1")
            )
        })
        .collect()
}

#[cfg(test)]
mod tests;
