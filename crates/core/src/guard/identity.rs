//! Who may write an owner's objects: the reconciler identity.
//!
//! Flux impersonates a Kustomization's or HelmRelease's `spec.serviceAccountName`
//! when it is set, so the view's record of that object decides; otherwise the
//! policy's reconcilers for the owner kind do.

use std::fmt;

use super::ownership::{Owner, OwnerKind};
use crate::{
    cluster::view::ClusterView,
    identity::{Identity, ServiceAccount},
    policy::Policy,
};

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
    /// Whether `writer` is one of them: by identity, so a client certificate
    /// named like a listed service account is not that account.
    pub fn contains(&self, writer: Identity<'_>) -> bool {
        match self {
            Writers::Listed(users) => users.iter().any(|u| writer.is(u)),
            Writers::Impersonated(sa) => writer.is(sa),
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
                let account = ServiceAccount {
                    namespace: &owner.namespace,
                    name: sa,
                };
                return Writers::Impersonated(account.username());
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
