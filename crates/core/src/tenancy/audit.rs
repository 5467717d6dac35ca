//! The impersonation and escalation audit, pure: which identities reconcile
//! which tenant, who can impersonate them (from RBAC), which dangerous rights
//! to ask about (`questions`), and the findings the answers make.

use std::collections::BTreeSet;

use serde::Serialize;

use super::rbac::{Attributes, Rbac, SubjectIdentity};
use crate::{
    cluster::view::ClusterView, guard::tenancy::controller_identities, identity::ServiceAccount,
    policy::Policy,
};

/// An identity that applies Git to the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub struct Reconciler {
    /// Empty for the controllers themselves.
    pub tenant: String,
    pub identity: String,
    /// `Kustomization team-a/apps`, or `controller`.
    pub used_by: Vec<String>,
}

/// The reconcilers: every service account a tenant's Kustomization or
/// HelmRelease impersonates, then the controller identities.
pub fn reconcilers(policy: &Policy, view: &ClusterView) -> Vec<Reconciler> {
    let label = &policy.tenancy.tenant_label;
    let default = policy.tenancy.default_service_account.as_deref();
    let mut found: Vec<Reconciler> = Vec::new();
    for namespace in view.namespace_names() {
        let Some(tenant) = view.tenant_of(label, namespace) else {
            continue;
        };
        for (kind, name, object) in view.flux_in(namespace) {
            let Some(sa) = object.service_account.as_deref().or(default) else {
                continue;
            };
            let kind = kind.object_kind();
            let identity = ServiceAccount {
                namespace,
                name: sa,
            }
            .username();
            let user = format!("{kind} {namespace}/{name}");
            match found.iter_mut().find(|r| r.identity == identity) {
                Some(r) => r.used_by.push(user),
                None => found.push(Reconciler {
                    tenant: tenant.to_owned(),
                    identity,
                    used_by: vec![user],
                }),
            }
        }
    }
    for r in &mut found {
        r.used_by.sort();
    }
    let controllers: BTreeSet<&str> = controller_identities(policy).collect();
    found.extend(controllers.into_iter().map(|c| Reconciler {
        tenant: String::new(),
        identity: c.to_owned(),
        used_by: vec!["controller".to_owned()],
    }));
    // Kubernetes' own controllers the guard trusts with their jobs: whoever
    // can become one can delete owned objects.
    let actors = policy.system_actors.iter().map(|a| a.identity.as_str());
    let actors: BTreeSet<&str> = actors
        .filter(|a| ServiceAccount::parse(a).is_some())
        .collect();
    found.extend(actors.into_iter().map(|a| Reconciler {
        tenant: String::new(),
        identity: a.to_owned(),
        used_by: vec!["system actor".to_owned()],
    }));
    found.sort();
    found
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(tag = "kind")]
pub enum Finding {
    /// `subject` can impersonate `identity` (or its groups).
    ImpersonationRisk {
        tenant: String,
        identity: String,
        subject: String,
        /// `serviceaccounts` or `groups`.
        what: String,
        via: String,
    },
    /// A tenant reconciler holds a right outside its tenant.
    TenantEscalation {
        tenant: String,
        identity: String,
        right: Right,
        detail: String,
    },
}

/// The rights the audit asks about; a small set, used as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Right {
    WriteOtherTenant,
    WriteOutsideTenant,
    ReadSecretsOutsideTenant,
    CreateNamespaces,
    CreateClusterRoleBindings,
    ClusterScopedWrite,
    Bind,
    Escalate,
    Impersonate,
}

impl Right {
    pub fn as_str(self) -> &'static str {
        match self {
            Right::WriteOtherTenant => "write-other-tenant",
            Right::WriteOutsideTenant => "write-outside-tenant",
            Right::ReadSecretsOutsideTenant => "read-secrets-outside-tenant",
            Right::CreateNamespaces => "create-namespaces",
            Right::CreateClusterRoleBindings => "create-clusterrolebindings",
            Right::ClusterScopedWrite => "cluster-scoped-write",
            Right::Bind => "bind",
            Right::Escalate => "escalate",
            Right::Impersonate => "impersonate",
        }
    }
}

/// Every way RBAC lets someone act as each reconciler or trusted actor,
/// other than the legitimate impersonators and Kubernetes' own controllers:
/// impersonating the account or its namespace's group, minting its tokens
/// (`serviceaccounts/token`), creating Pods in its namespace (which can run
/// as it), reading Secrets there (legacy token Secrets), and, for the
/// controller identities whose Pod-bound tokens the guard checks,
/// impersonating `userextras` (which forges the Pod binding and credential
/// id).
pub fn impersonation(policy: &Policy, rbac: &Rbac, reconcilers: &[Reconciler]) -> Vec<Finding> {
    let allowed = &policy.tenancy.impersonators;
    let legitimate = |identity: &SubjectIdentity| match identity {
        SubjectIdentity::User(u) => {
            allowed.users.contains(u)
                || u.starts_with("system:serviceaccount:kube-system:")
                || u.starts_with("system:kube-")
        }
        SubjectIdentity::Group(g) => allowed.groups.contains(g),
    };
    let mut findings = Vec::new();
    for r in reconcilers {
        let Some(ServiceAccount { namespace, name }) = ServiceAccount::parse(&r.identity) else {
            continue;
        };
        let own_group = format!("system:serviceaccounts:{namespace}");
        let mut asks = vec![
            (
                "serviceaccounts",
                Attributes::new(namespace, "impersonate", "", "serviceaccounts").named(name),
            ),
            (
                "groups",
                Attributes::new("", "impersonate", "", "groups").named(&own_group),
            ),
            (
                "serviceaccounts/token: mints its tokens",
                Attributes::new(namespace, "create", "", "serviceaccounts")
                    .subresource("token")
                    .named(name),
            ),
            (
                "pods: creates Pods that run as it",
                Attributes::new(namespace, "create", "", "pods"),
            ),
            (
                "secrets: reads its legacy token Secrets",
                Attributes::new(namespace, "get", "", "secrets"),
            ),
        ];
        if r.used_by.iter().any(|u| u == "controller") {
            asks.push((
                "userextras: forges the Pod binding of its token",
                Attributes::new("", "impersonate", "authentication.k8s.io", "userextras")
                    .subresource("authentication.kubernetes.io/pod-name"),
            ));
        }
        for (what, attrs) in asks {
            for g in rbac.grantees(&attrs) {
                if legitimate(&g.identity)
                    || g.identity == SubjectIdentity::User(r.identity.clone())
                {
                    continue;
                }
                findings.push(Finding::ImpersonationRisk {
                    tenant: r.tenant.clone(),
                    identity: r.identity.clone(),
                    subject: g.subject,
                    what: what.to_owned(),
                    via: g.via,
                });
            }
        }
    }
    findings.sort();
    findings.dedup();
    findings
}
