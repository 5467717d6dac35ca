//! The escalation half of the audit: what to ask about each tenant
//! reconciler, and the findings its answers make.

use super::{
    audit::{Finding, Reconciler, Right},
    rbac::{Attributes, Rbac, UserRef},
};
use crate::{cluster::view::ClusterView, identity::ServiceAccount, policy::Policy};

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
        let Some(ServiceAccount { namespace, name }) = ServiceAccount::parse(&r.identity) else {
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
        let user = UserRef::service_account(ServiceAccount { namespace, name });
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
