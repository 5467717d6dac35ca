//! Tenant rules, checked before ownership (pure, like the rest of `guard`):
//!
//! 1. a controller identity must come with a token bound to one of its Pods;
//! 2. a tenant's reconciler writes only inside its tenant, never cluster-scoped;
//! 3. tenant Kustomizations/HelmReleases/sources impersonate a service account
//!    of their namespace and point only inside their tenant;
//! 4. a namespace in use by a tenant is not handed to another one.

use super::tenancy_spec::{self, SpecCheck};
use crate::{
    admission::{
        decision::Reason,
        review::{Operation, Request},
    },
    cluster::view::ClusterView,
    identity::{POD_NAME, POD_UID, ServiceAccount},
    policy::Policy,
    tenancy::settings::OnViolation,
};

/// A broken tenant rule: what the namespace's mode turns into a denial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub reason: Reason,
    pub message: String,
}

/// What the tenant rules say about a request.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    pub violation: Option<Violation>,
    /// Soft findings (policy `warn`): the request goes on with these warnings.
    pub warnings: Vec<String>,
}

pub fn check(policy: &Policy, view: &ClusterView, req: &Request<'_>) -> Verdict {
    let mut verdict = Verdict::default();
    let checks = [controller_token, confinement, relabel];
    for rule in checks {
        if let Some(found) = rule(policy, view, req) {
            match found {
                Found::Violation(v) => {
                    verdict.violation = Some(v);
                    return verdict;
                }
                Found::Warning(w) => verdict.warnings.push(w),
            }
        }
    }
    match tenancy_spec::check(policy, view, req) {
        SpecCheck::Fine => {}
        SpecCheck::Broken(v) => verdict.violation = Some(v),
        SpecCheck::Warn(w) => verdict.warnings.push(w),
    }
    verdict
}

pub(super) enum Found {
    Violation(Violation),
    Warning(String),
}

impl Found {
    /// A violation, or with policy `warn` a warning.
    pub(super) fn by(setting: OnViolation, reason: Reason, message: String) -> Option<Found> {
        match setting {
            OnViolation::Deny => Some(Found::Violation(Violation { reason, message })),
            OnViolation::Warn => Some(Found::Warning(format!("gitops-guard: {message}"))),
            OnViolation::Off => None,
        }
    }
}

/// Controller identities: the owners' reconcilers and the controllers the
/// compatibility model lets write (source-controller, …) that are service
/// accounts.
pub fn controller_identities(policy: &Policy) -> impl Iterator<Item = &str> {
    let o = &policy.owners;
    let custom = o.custom.iter().flat_map(|c| c.reconcilers.iter());
    o.kustomization
        .reconcilers
        .iter()
        .chain(&o.helm_release.reconcilers)
        .chain(&o.argo_cd.reconcilers)
        .chain(custom)
        .map(String::as_str)
        .chain(policy.compatibility.controller_identities())
        .filter(|u| ServiceAccount::parse(u).is_some())
}

/// Rule 1: a controller identity without a token bound to one of its Pods.
fn controller_token(policy: &Policy, view: &ClusterView, req: &Request<'_>) -> Option<Found> {
    let setting = policy.tenancy.controller_tokens;
    let info = &req.user_info;
    let user = info.username.as_ref();
    if setting == OnViolation::Off || !controller_identities(policy).any(|c| c == user) {
        return None;
    }
    // By name, whatever the credential: a certificate named like a
    // controller is refused here in every mode too.
    let ServiceAccount {
        namespace,
        name: account,
    } = ServiceAccount::parse(user)?;
    let problem = match info.extra_value(POD_NAME) {
        None => format!(
            "{user} is a GitOps controller identity, but this request carries no Pod-bound token \
             (no {POD_NAME}): someone is impersonating the controller or using a token minted \
             outside its Pod."
        ),
        Some(pod) => {
            let known = view.identities.pod(namespace, pod);
            // A real bound token carries both; pod-name alone is forged
            // (impersonated userextras) or from an old token.
            let uid_ok = |uid: &str| info.extra_value(POD_UID) == Some(uid);
            match known {
                Some(p) if p.service_account == account && uid_ok(&p.uid) => return None,
                _ => format!(
                    "{user} is a GitOps controller identity, but its token is bound to Pod {pod:?}, \
                     which is not a Pod of namespace {namespace} running as {account}."
                ),
            }
        }
    };
    Found::by(setting, Reason::ControllerToken, problem)
}

/// A tenant reconciler identity: a service account some Kustomization or
/// HelmRelease of a tenant namespace impersonates (or the default one).
pub fn tenant_of_reconciler<'v>(
    policy: &Policy,
    view: &'v ClusterView,
    user: &str,
) -> Option<&'v str> {
    let ServiceAccount {
        namespace,
        name: account,
    } = ServiceAccount::parse(user)?;
    let tenant = view.tenant_of(&policy.tenancy.tenant_label, namespace)?;
    let default = policy.tenancy.default_service_account.as_deref();
    let impersonated = default == Some(account)
        || view
            .flux_in(namespace)
            .any(|(_, _, o)| o.service_account.as_deref() == Some(account));
    impersonated.then_some(tenant)
}

/// Rule 2: a tenant reconciler writing outside its tenant or cluster-wide.
fn confinement(policy: &Policy, view: &ClusterView, req: &Request<'_>) -> Option<Found> {
    let user = req.user_info.username.as_ref();
    let tenant = tenant_of_reconciler(policy, view, user)?;
    let cluster_scoped = req.namespace().is_empty()
        || (req.resource.group.is_empty() && req.resource.resource == "namespaces");
    let target = req.namespace();
    let label = &policy.tenancy.tenant_label;
    let message = if cluster_scoped {
        format!(
            "{user} reconciles tenant {tenant:?} and may not write cluster-scoped objects \
             ({} {}), whatever RBAC allows.",
            req.kind.kind, req.name
        )
    } else {
        match view.tenant_of(label, target) {
            Some(t) if t == tenant => return None,
            Some(other) => format!(
                "{user} reconciles tenant {tenant:?} and may not write in namespace {target}, \
                 which belongs to tenant {other:?}, whatever RBAC allows."
            ),
            None => format!(
                "{user} reconciles tenant {tenant:?} and may not write in namespace {target}, \
                 which is not a namespace of that tenant (label {label}), whatever RBAC allows."
            ),
        }
    };
    Found::by(OnViolation::Deny, Reason::TenantEscape, message)
}

/// Rule 4: changing the tenant label of a namespace a tenant already uses.
fn relabel(policy: &Policy, view: &ClusterView, req: &Request<'_>) -> Option<Found> {
    let namespace_object = req.resource.group.is_empty() && req.resource.resource == "namespaces";
    if !namespace_object || req.operation != Operation::Update {
        return None;
    }
    let label = policy.tenancy.tenant_label.as_str();
    let value = |o: Option<&crate::admission::review::ObjectView<'_>>| {
        o.and_then(|o| o.metadata.labels.get(label))
            .map(|v| v.to_string())
    };
    let (old, new) = (value(req.old_object.as_ref()), value(req.object.as_ref()));
    let old_tenant = old.as_deref().filter(|t| !t.is_empty())?;
    if new.as_deref() == Some(old_tenant) {
        return None;
    }
    // In use: a tenant's Flux object lives there, or applies or stores into
    // it (targetNamespace, storageNamespace).
    let (kind, owner_namespace, name) = view.flux_using(&req.name).next()?;
    let kind = kind.object_kind();
    let how = if owner_namespace == req.name {
        "lives there"
    } else {
        "writes into it"
    };
    let to = new.map_or_else(|| "no tenant".to_owned(), |t| format!("tenant {t:?}"));
    let message = format!(
        "Namespace {} is in use by tenant {old_tenant:?} ({kind} {owner_namespace}/{name} {how}); \
         changing its {label} label would hand it to {to}. Move the tenant's objects out first.",
        req.name
    );
    Found::by(OnViolation::Deny, Reason::TenantRelabel, message)
}
