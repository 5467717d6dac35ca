//! The impersonation and escalation audit, pure: which identities reconcile
//! which tenant, who can impersonate them (from RBAC), which dangerous rights
//! to ask about (`questions`), and the findings the answers make.

use std::collections::BTreeSet;

use serde::Serialize;

use super::rbac::{Attributes, Rbac, SubjectIdentity, UserRef};
use crate::{
    cluster::view::ClusterView,
    guard::{identity::service_account, ownership::OwnerKind, tenancy::controller_identities},
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
            let kind = match kind {
                OwnerKind::HelmRelease => "HelmRelease",
                _ => "Kustomization",
            };
            let identity = format!("system:serviceaccount:{namespace}:{sa}");
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

/// Who can impersonate each reconciler, other than the legitimate impersonators.
pub fn impersonation(policy: &Policy, rbac: &Rbac, reconcilers: &[Reconciler]) -> Vec<Finding> {
    let allowed = &policy.tenancy.impersonators;
    let legitimate = |identity: &SubjectIdentity| match identity {
        SubjectIdentity::User(u) => allowed.users.contains(u),
        SubjectIdentity::Group(g) => allowed.groups.contains(g),
    };
    let mut findings = Vec::new();
    for r in reconcilers {
        let Some((namespace, name)) = service_account(&r.identity) else {
            continue;
        };
        let own_group = format!("system:serviceaccounts:{namespace}");
        let asks = [
            (
                "serviceaccounts",
                Attributes::new(namespace, "impersonate", "", "serviceaccounts").named(name),
            ),
            (
                "groups",
                Attributes::new("", "impersonate", "", "groups").named(&own_group),
            ),
        ];
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

/// One question about one tenant reconciler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub tenant: String,
    pub identity: String,
    pub right: Right,
    pub attrs: Attributes,
}

/// What to ask about each tenant reconciler. Other namespaces are asked
/// about where a RoleBinding names the reconciler (RBAC grants nothing
/// elsewhere but through ClusterRoleBindings, which the every-namespace
/// questions cover).
pub fn questions(
    policy: &Policy,
    view: &ClusterView,
    rbac: &Rbac,
    reconcilers: &[Reconciler],
) -> Vec<Question> {
    let label = &policy.tenancy.tenant_label;
    let mut out = Vec::new();
    for r in reconcilers.iter().filter(|r| !r.tenant.is_empty()) {
        let Some((namespace, name)) = service_account(&r.identity) else {
            continue;
        };
        let mut ask = |right, attrs| {
            out.push(Question {
                tenant: r.tenant.clone(),
                identity: r.identity.clone(),
                right,
                attrs,
            })
        };
        let cluster = [
            (Right::CreateNamespaces, "create", "", "namespaces"),
            (
                Right::CreateClusterRoleBindings,
                "create",
                "rbac.authorization.k8s.io",
                "clusterrolebindings",
            ),
            (
                Right::ClusterScopedWrite,
                "create",
                "rbac.authorization.k8s.io",
                "clusterroles",
            ),
            (
                Right::ClusterScopedWrite,
                "create",
                "apiextensions.k8s.io",
                "customresourcedefinitions",
            ),
            (
                Right::ClusterScopedWrite,
                "create",
                "admissionregistration.k8s.io",
                "validatingwebhookconfigurations",
            ),
            (
                Right::Bind,
                "bind",
                "rbac.authorization.k8s.io",
                "clusterroles",
            ),
            (
                Right::Escalate,
                "escalate",
                "rbac.authorization.k8s.io",
                "clusterroles",
            ),
            (Right::Impersonate, "impersonate", "", "users"),
            (Right::Impersonate, "impersonate", "", "serviceaccounts"),
            (Right::Impersonate, "impersonate", "", "groups"),
        ];
        for (right, verb, group, resource) in cluster {
            ask(right, Attributes::new("", verb, group, resource));
        }
        let user = UserRef::service_account(namespace, name);
        let others = rbac
            .namespaces_binding(&user)
            .into_iter()
            .filter(|ns| view.tenant_of(label, ns) != Some(r.tenant.as_str()));
        // "" = every namespace (what a ClusterRoleBinding grants).
        for target in std::iter::once(String::new()).chain(others) {
            let write = if target.is_empty() || view.tenant_of(label, &target).is_none() {
                Right::WriteOutsideTenant
            } else {
                Right::WriteOtherTenant
            };
            for (group, resource) in [("", "configmaps"), ("apps", "deployments"), ("", "secrets")]
            {
                ask(write, Attributes::new(&target, "create", group, resource));
            }
            ask(
                Right::ReadSecretsOutsideTenant,
                Attributes::new(&target, "get", "", "secrets"),
            );
        }
    }
    out
}

/// The findings from answered questions: one per identity, right and place.
pub fn escalations(answers: &[(Question, bool)]) -> Vec<Finding> {
    let mut findings: Vec<Finding> = Vec::new();
    for (q, _) in answers.iter().filter(|(_, allowed)| *allowed) {
        let a = &q.attrs;
        let resource = if a.group.is_empty() {
            a.resource.clone()
        } else {
            format!("{}.{}", a.resource, a.group)
        };
        let place = match a.namespace.as_str() {
            "" if is_cluster_scoped(q.right) => "cluster-wide".to_owned(),
            "" => "in every namespace".to_owned(),
            ns => format!("in namespace {ns}"),
        };
        let same = |f: &Finding| {
            matches!(f, Finding::TenantEscalation { identity, right, detail, .. }
            if *identity == q.identity && *right == q.right && detail.ends_with(&place))
        };
        if findings.iter().any(same) {
            continue;
        }
        findings.push(Finding::TenantEscalation {
            tenant: q.tenant.clone(),
            identity: q.identity.clone(),
            right: q.right,
            detail: format!("can {} {resource} {place}", a.verb),
        });
    }
    findings.sort();
    findings
}

fn is_cluster_scoped(right: Right) -> bool {
    !matches!(
        right,
        Right::WriteOtherTenant | Right::WriteOutsideTenant | Right::ReadSecretsOutsideTenant
    )
}
