//! Who may write an owner's objects: the reconciler identity.
//!
//! Flux impersonates a Kustomization's or HelmRelease's `spec.serviceAccountName`
//! when it is set, so the view's record of that object decides; otherwise the
//! policy's reconcilers for the owner kind do.

use std::fmt;

use super::ownership::{Owner, OwnerKind};
use crate::{cluster::view::ClusterView, policy::Policy};

/// The identities allowed to write an owner's objects (not to be confused
/// with `cluster::identities`, the service accounts and Pods in the view).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Writers<'p> {
    Listed(&'p [String]),
    /// The service account a Flux object impersonates.
    Impersonated(String),
    /// A tenant's owner that impersonates no service account (or is not in
    /// the cluster): nobody may write for it.
    Nobody(&'static str),
}

impl Writers<'_> {
    pub fn contains(&self, user: &str) -> bool {
        match self {
            Writers::Listed(users) => users.iter().any(|u| u == user),
            Writers::Impersonated(sa) => sa == user,
            Writers::Nobody(_) => false,
        }
    }
}

impl fmt::Display for Writers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Writers::Impersonated(sa) => f.write_str(sa),
            Writers::Nobody(why) => write!(f, "nobody ({why})"),
            Writers::Listed([]) => f.write_str("(no reconciler configured)"),
            Writers::Listed(users) => f.write_str(&users.join(" or ")),
        }
    }
}

pub fn reconcilers<'p>(policy: &'p Policy, view: &ClusterView, owner: &Owner) -> Writers<'p> {
    let owners = &policy.owners;
    match owner.kind {
        OwnerKind::Kustomization | OwnerKind::HelmRelease => {
            let known = view.flux_object(owner);
            let default = policy.tenancy.default_service_account.as_deref();
            let impersonated = known
                .and_then(|o| o.service_account.as_deref())
                .or(default.filter(|_| known.is_some()));
            if let Some(sa) = impersonated {
                return Writers::Impersonated(format!(
                    "system:serviceaccount:{}:{sa}",
                    owner.namespace
                ));
            }
            // In a tenant, the controller's own identity never stands in.
            let label = &policy.tenancy.tenant_label;
            if view.tenant_of(label, &owner.namespace).is_some() {
                return Writers::Nobody(if known.is_some() {
                    "the owner impersonates no service account"
                } else {
                    "the owner is not in the cluster"
                });
            }
            Writers::Listed(owners.get(owner.kind).reconcilers)
        }
        OwnerKind::ArgoApplication | OwnerKind::Custom(_) => {
            Writers::Listed(owners.get(owner.kind).reconcilers)
        }
    }
}

/// `system:serviceaccount:<namespace>:<name>` as (namespace, name).
pub fn service_account(user: &str) -> Option<(&str, &str)> {
    let rest = user.strip_prefix("system:serviceaccount:")?;
    let (namespace, name) = rest.split_once(':')?;
    (!namespace.is_empty() && !name.is_empty() && !name.contains(':')).then_some((namespace, name))
}
