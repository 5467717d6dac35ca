//! A pure model of Kubernetes RBAC: who a rule covers and what it allows,
//! with the apiserver's wildcard, `*/subresource` and `resourceNames`
//! semantics. It answers the audit offline (`--cluster-state`) and tells the
//! online audit who holds `impersonate`; the online audit asks the apiserver
//! (SubjectAccessReview) for everything else.
//!
//! Aggregated ClusterRoles are read as stored: kube-controller-manager's
//! aggregation controller writes the aggregated rules into them.

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, Subject,
};

use crate::identity::ServiceAccount;

/// A request, as the authorizer sees it. `namespace` is empty for
/// cluster-scoped resources (and, for namespaced ones, means "every namespace").
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Attributes {
    pub namespace: String,
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    /// Empty: any object (a rule with `resourceNames` does not match).
    pub name: String,
}

impl Attributes {
    pub fn new(namespace: &str, verb: &str, group: &str, resource: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            verb: verb.to_owned(),
            group: group.to_owned(),
            resource: resource.to_owned(),
            subresource: String::new(),
            name: String::new(),
        }
    }

    pub fn named(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    pub fn subresource(mut self, subresource: &str) -> Self {
        self.subresource = subresource.to_owned();
        self
    }
}

/// An authenticated identity: a username and its groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRef {
    pub name: String,
    pub groups: Vec<String>,
}

impl UserRef {
    /// A service account with the groups the apiserver gives it.
    pub fn service_account(account: ServiceAccount<'_>) -> Self {
        let namespace = account.namespace;
        Self {
            name: account.username(),
            groups: vec![
                "system:serviceaccounts".to_owned(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".to_owned(),
            ],
        }
    }
}

/// One binding's grant: who, through which binding and role.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grantee {
    /// `User alice`, `Group devs`, `ServiceAccount team-a/ci`.
    pub subject: String,
    /// The subject as the apiserver authenticates it: a username, or a group.
    pub identity: SubjectIdentity,
    /// `RoleBinding team-a/alice-edit -> ClusterRole edit`.
    pub via: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum SubjectIdentity {
    User(String),
    Group(String),
}

struct RoleDef {
    namespace: String,
    name: String,
    rules: Vec<PolicyRule>,
}

struct BindingDef {
    /// Empty for a ClusterRoleBinding.
    namespace: String,
    name: String,
    role_kind: String,
    role_name: String,
    subjects: Vec<Subject>,
}

#[derive(Default)]
pub struct Rbac {
    roles: Vec<RoleDef>,
    bindings: Vec<BindingDef>,
}

impl Rbac {
    pub fn new(
        roles: &[Role],
        cluster_roles: &[ClusterRole],
        role_bindings: &[RoleBinding],
        cluster_role_bindings: &[ClusterRoleBinding],
    ) -> Self {
        let meta = |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
            (
                m.namespace.clone().unwrap_or_default(),
                m.name.clone().unwrap_or_default(),
            )
        };
        let mut rbac = Rbac::default();
        let role_defs = roles.iter().map(|r| (meta(&r.metadata), &r.rules));
        let cluster_defs = cluster_roles
            .iter()
            .map(|r| ((String::new(), meta(&r.metadata).1), &r.rules));
        for ((namespace, name), rules) in role_defs.chain(cluster_defs) {
            let rules = rules.clone().unwrap_or_default();
            rbac.roles.push(RoleDef {
                namespace,
                name,
                rules,
            });
        }
        for b in role_bindings {
            let (namespace, name) = meta(&b.metadata);
            rbac.bindings.push(BindingDef {
                namespace,
                name,
                role_kind: b.role_ref.kind.clone(),
                role_name: b.role_ref.name.clone(),
                subjects: b.subjects.clone().unwrap_or_default(),
            });
        }
        for b in cluster_role_bindings {
            let (_, name) = meta(&b.metadata);
            rbac.bindings.push(BindingDef {
                namespace: String::new(),
                name,
                role_kind: b.role_ref.kind.clone(),
                role_name: b.role_ref.name.clone(),
                subjects: b.subjects.clone().unwrap_or_default(),
            });
        }
        rbac
    }

    fn rules(&self, b: &BindingDef) -> &[PolicyRule] {
        // A RoleBinding's Role lives in its namespace; ClusterRoles have none.
        let namespace = if b.role_kind == "Role" {
            b.namespace.as_str()
        } else {
            ""
        };
        self.roles
            .iter()
            .find(|r| r.name == b.role_name && r.namespace == namespace)
            .map_or(&[], |r| &r.rules)
    }

    /// Bindings that take effect for `attrs` and whose role allows it.
    fn granting<'s>(&'s self, attrs: &'s Attributes) -> impl Iterator<Item = &'s BindingDef> + 's {
        self.bindings.iter().filter(move |b| {
            let in_scope = b.namespace.is_empty() || b.namespace == attrs.namespace;
            in_scope && self.rules(b).iter().any(|r| rule_allows(r, attrs))
        })
    }

    /// Whether RBAC lets `user` do `attrs`.
    pub fn allows(&self, user: &UserRef, attrs: &Attributes) -> bool {
        self.granting(attrs)
            .any(|b| b.subjects.iter().any(|s| applies_to(s, &b.namespace, user)))
    }

    /// Everyone RBAC lets do `attrs`, each with the binding that does.
    pub fn grantees(&self, attrs: &Attributes) -> Vec<Grantee> {
        let mut found: Vec<Grantee> = self
            .granting(attrs)
            .flat_map(|b| b.subjects.iter().map(move |s| grantee(s, b)))
            .collect();
        found.sort();
        found.dedup();
        found
    }

    /// Namespaces where a RoleBinding names `user` (directly or by group).
    pub fn namespaces_binding(&self, user: &UserRef) -> Vec<String> {
        let mut found: Vec<String> = self
            .bindings
            .iter()
            .filter(|b| !b.namespace.is_empty())
            .filter(|b| b.subjects.iter().any(|s| applies_to(s, &b.namespace, user)))
            .map(|b| b.namespace.clone())
            .collect();
        found.sort();
        found.dedup();
        found
    }
}

fn grantee(s: &Subject, b: &BindingDef) -> Grantee {
    let via = if b.namespace.is_empty() {
        format!(
            "ClusterRoleBinding {} -> {} {}",
            b.name, b.role_kind, b.role_name
        )
    } else {
        format!(
            "RoleBinding {}/{} -> {} {}",
            b.namespace, b.name, b.role_kind, b.role_name
        )
    };
    let (subject, identity) = match s.kind.as_str() {
        "ServiceAccount" => {
            let ns = s
                .namespace
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or(&b.namespace);
            (
                format!("ServiceAccount {ns}/{}", s.name),
                SubjectIdentity::User(
                    ServiceAccount {
                        namespace: ns,
                        name: &s.name,
                    }
                    .username(),
                ),
            )
        }
        "Group" => (
            format!("Group {}", s.name),
            SubjectIdentity::Group(s.name.clone()),
        ),
        kind => (
            format!("{kind} {}", s.name),
            SubjectIdentity::User(s.name.clone()),
        ),
    };
    Grantee {
        subject,
        identity,
        via,
    }
}

fn applies_to(s: &Subject, binding_namespace: &str, user: &UserRef) -> bool {
    match s.kind.as_str() {
        "User" => s.name == user.name,
        "Group" => user.groups.contains(&s.name),
        "ServiceAccount" => {
            let ns = s
                .namespace
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or(binding_namespace);
            ServiceAccount::parse(&user.name)
                == Some(ServiceAccount {
                    namespace: ns,
                    name: &s.name,
                })
        }
        _ => false,
    }
}

fn has(list: &[String], wanted: &str) -> bool {
    list.iter().any(|v| v == "*" || v == wanted)
}

/// One rule against one request, as the apiserver's RBAC authorizer reads it.
pub fn rule_allows(rule: &PolicyRule, attrs: &Attributes) -> bool {
    let groups = rule.api_groups.as_deref().unwrap_or_default();
    let resources = rule.resources.as_deref().unwrap_or_default();
    let names = rule.resource_names.as_deref().unwrap_or_default();
    let combined = if attrs.subresource.is_empty() {
        attrs.resource.clone()
    } else {
        format!("{}/{}", attrs.resource, attrs.subresource)
    };
    let resource_ok = resources.iter().any(|r| {
        r == "*"
            || *r == combined
            || (!attrs.subresource.is_empty()
                && r.strip_prefix("*/") == Some(attrs.subresource.as_str()))
    });
    let name_ok = names.is_empty() || (!attrs.name.is_empty() && names.contains(&attrs.name));
    has(&rule.verbs, &attrs.verb) && has(groups, &attrs.group) && resource_ok && name_ok
}
