//! Running the audit: plan (pure, under the view's read lock), answer (the
//! apiserver's SubjectAccessReview, or the RBAC model offline), report.

use futures::{StreamExt, stream};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::{Api, Client, api::PostParams};
use serde::Serialize;

use super::{
    audit::{self, Finding, Reconciler},
    questions::{self, Question},
    rbac::{Attributes, Rbac, UserRef},
};
use crate::{cluster::view::ClusterView, identity::ServiceAccount, policy::Policy};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    pub reconcilers: Vec<Reconciler>,
    pub findings: Vec<Finding>,
}

/// What to ask, computed from a consistent view.
pub struct Plan {
    pub reconcilers: Vec<Reconciler>,
    pub impersonation: Vec<Finding>,
    pub questions: Vec<Question>,
}

pub fn plan(policy: &Policy, view: &ClusterView, rbac: &Rbac) -> Plan {
    let reconcilers = audit::reconcilers(policy, view);
    Plan {
        impersonation: audit::impersonation(policy, rbac, &reconcilers),
        questions: questions::questions(policy, view, rbac, &reconcilers),
        reconcilers,
    }
}

/// Who answers the questions.
pub enum Authority<'a> {
    /// The apiserver (every authorizer, aggregated roles as served).
    Apiserver(&'a Client),
    /// The RBAC model (offline, `--cluster-state`).
    Model(&'a Rbac),
}

fn user_of(identity: &str) -> UserRef {
    match ServiceAccount::parse(identity) {
        Some(account) => UserRef::service_account(account),
        None => UserRef {
            name: identity.to_owned(),
            groups: vec!["system:authenticated".to_owned()],
        },
    }
}

async fn ask(client: &Client, user: &UserRef, a: &Attributes) -> Result<bool, kube::Error> {
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.name.clone()),
            groups: Some(user.groups.clone()),
            resource_attributes: Some(ResourceAttributes {
                namespace: opt(&a.namespace),
                verb: opt(&a.verb),
                group: Some(a.group.clone()),
                resource: opt(&a.resource),
                subresource: opt(&a.subresource),
                name: opt(&a.name),
                ..ResourceAttributes::default()
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    };
    let api = Api::<SubjectAccessReview>::all(client.clone());
    let answer = api.create(&PostParams::default(), &review).await?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

/// Answers every question; the first apiserver error ends the run.
pub async fn finish(plan: Plan, authority: Authority<'_>) -> Result<AuditReport, kube::Error> {
    let answers: Vec<(Question, bool)> = match authority {
        Authority::Model(rbac) => plan
            .questions
            .into_iter()
            .map(|q| {
                let allowed = rbac.allows(&user_of(&q.identity), &q.attrs);
                (q, allowed)
            })
            .collect(),
        Authority::Apiserver(client) => {
            let asked = stream::iter(plan.questions.into_iter().map(|q| async move {
                let allowed = ask(client, &user_of(&q.identity), &q.attrs).await?;
                Ok::<_, kube::Error>((q, allowed))
            }))
            .buffered(8)
            .collect::<Vec<_>>()
            .await;
            asked.into_iter().collect::<Result<_, _>>()?
        }
    };
    let mut findings = plan.impersonation;
    findings.extend(questions::escalations(&answers));
    Ok(AuditReport {
        reconcilers: plan.reconcilers,
        findings,
    })
}

/// The report for a terminal: reconcilers, then one line a finding.
pub fn table(report: &AuditReport) -> String {
    let mut rows = vec![[
        "TENANT".to_owned(),
        "RECONCILER".to_owned(),
        "USED BY".to_owned(),
    ]];
    for r in &report.reconcilers {
        let tenant = if r.tenant.is_empty() { "-" } else { &r.tenant };
        rows.push([tenant.to_owned(), r.identity.clone(), r.used_by.join(", ")]);
    }
    let mut out = columns(&rows);
    out.push('\n');
    if report.findings.is_empty() {
        out.push_str("no findings\n");
        return out;
    }
    let mut rows = vec![[
        "FINDING".to_owned(),
        "TENANT".to_owned(),
        "IDENTITY".to_owned(),
        "DETAIL".to_owned(),
    ]];
    for f in &report.findings {
        rows.push(match f {
            Finding::ImpersonationRisk {
                tenant,
                identity,
                subject,
                what,
                via,
            } => [
                "ImpersonationRisk".to_owned(),
                dash(tenant),
                identity.clone(),
                match what.as_str() {
                    "serviceaccounts" | "groups" => {
                        format!("{subject} can impersonate it ({what}) via {via}")
                    }
                    path => format!("{subject} can act as it ({path}) via {via}"),
                },
            ],
            Finding::TenantEscalation {
                tenant,
                identity,
                right,
                detail,
            } => [
                "TenantEscalation".to_owned(),
                dash(tenant),
                identity.clone(),
                format!("{}: {detail}", right.as_str()),
            ],
        });
    }
    out.push_str(&columns(&rows));
    out
}

fn dash(s: &str) -> String {
    if s.is_empty() {
        "-".to_owned()
    } else {
        s.to_owned()
    }
}

fn columns<const N: usize>(rows: &[[String; N]]) -> String {
    let mut out = String::new();
    for line in crate::table::columns(rows) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}
