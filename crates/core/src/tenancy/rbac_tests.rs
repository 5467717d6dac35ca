//! RBAC semantics the audit relies on, one sentence a case.

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::rbac::{Attributes, Rbac, UserRef, rule_allows};
use crate::identity::ServiceAccount;

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str], names: &[&str]) -> PolicyRule {
    let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    PolicyRule {
        api_groups: Some(owned(groups)),
        resources: Some(owned(resources)),
        verbs: owned(verbs),
        resource_names: (!names.is_empty()).then(|| owned(names)),
        non_resource_urls: None,
    }
}

fn meta(ns: Option<&str>, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: ns.map(str::to_owned),
        ..ObjectMeta::default()
    }
}

fn subject(kind: &str, name: &str, ns: Option<&str>) -> Subject {
    Subject {
        kind: kind.into(),
        name: name.into(),
        namespace: ns.map(str::to_owned),
        api_group: None,
    }
}

fn role_ref(name: &str) -> RoleRef {
    RoleRef {
        api_group: Some("rbac.authorization.k8s.io".into()),
        kind: "ClusterRole".into(),
        name: name.into(),
    }
}

#[test]
fn wildcards_match_any_verb_group_and_resource() {
    let r = rule(&["*"], &["*"], &["*"], &[]);
    assert!(rule_allows(
        &r,
        &Attributes::new("x", "delete", "apps", "deployments")
    ));
}

#[test]
fn a_star_slash_subresource_rule_matches_only_that_subresource() {
    let r = rule(&["apps"], &["*/scale"], &["update"], &[]);
    let mut scale = Attributes::new("x", "update", "apps", "deployments");
    assert!(!rule_allows(&r, &scale));
    scale.subresource = "scale".into();
    assert!(rule_allows(&r, &scale));
}

#[test]
fn resource_names_narrow_a_rule_and_never_match_an_unnamed_request() {
    let r = rule(&[""], &["serviceaccounts"], &["impersonate"], &["team-a"]);
    let ask = Attributes::new("team-a", "impersonate", "", "serviceaccounts");
    assert!(rule_allows(&r, &ask.clone().named("team-a")));
    assert!(!rule_allows(&r, &ask.clone().named("team-b")));
    assert!(!rule_allows(&r, &ask));
}

fn rbac() -> Rbac {
    let admin = ClusterRole {
        metadata: meta(None, "admin"),
        rules: Some(vec![rule(&["*"], &["*"], &["*"], &[])]),
        aggregation_rule: None,
    };
    let in_team_a = RoleBinding {
        metadata: meta(Some("team-a"), "reconciler"),
        role_ref: role_ref("admin"),
        // No namespace on a ServiceAccount subject: the binding's own.
        subjects: Some(vec![subject("ServiceAccount", "team-a", None)]),
    };
    let devs = ClusterRoleBinding {
        metadata: meta(None, "devs"),
        role_ref: role_ref("admin"),
        subjects: Some(vec![subject("Group", "devs", None)]),
    };
    Rbac::new(&[], &[admin], &[in_team_a], &[devs])
}

#[test]
fn a_role_binding_grants_only_in_its_namespace() {
    let sa = UserRef::service_account(ServiceAccount {
        namespace: "team-a",
        name: "team-a",
    });
    let rbac = rbac();
    assert!(rbac.allows(&sa, &Attributes::new("team-a", "create", "", "configmaps")));
    assert!(!rbac.allows(&sa, &Attributes::new("team-b", "create", "", "configmaps")));
    assert!(!rbac.allows(&sa, &Attributes::new("", "create", "", "namespaces")));
    assert_eq!(rbac.namespaces_binding(&sa), vec!["team-a".to_owned()]);
}

#[test]
fn a_group_subject_grants_to_its_members_and_is_listed_as_a_group() {
    let rbac = rbac();
    let member = UserRef {
        name: "bob".into(),
        groups: vec!["devs".into()],
    };
    assert!(rbac.allows(&member, &Attributes::new("", "create", "", "namespaces")));
    let who: Vec<String> = rbac
        .grantees(&Attributes::new("", "create", "", "namespaces"))
        .into_iter()
        .map(|g| format!("{} via {}", g.subject, g.via))
        .collect();
    assert_eq!(
        who,
        vec!["Group devs via ClusterRoleBinding devs -> ClusterRole admin".to_owned()]
    );
}

#[test]
fn a_binding_to_a_missing_role_grants_nothing() {
    let dangling = ClusterRoleBinding {
        metadata: meta(None, "dangling"),
        role_ref: role_ref("gone"),
        subjects: Some(vec![subject("User", "eve", None)]),
    };
    let rbac = Rbac::new(&[], &[], &[], &[dangling]);
    let eve = UserRef {
        name: "eve".into(),
        groups: vec![],
    };
    assert!(!rbac.allows(&eve, &Attributes::new("", "get", "", "secrets")));
}
