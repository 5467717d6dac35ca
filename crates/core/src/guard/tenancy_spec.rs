//! Rule 3 of the tenant rules: what a Flux object in a tenant namespace may
//! say. Every broken rule is listed, each naming its field.

use std::fmt::Write;

use super::tenancy::Violation;
use crate::{
    admission::{
        decision::Reason,
        review::{Operation, Request},
        spec::SpecView,
    },
    cluster::view::ClusterView,
    policy::Policy,
    tenancy::settings::OnViolation,
};

pub const KUSTOMIZE_GROUP: &str = "kustomize.toolkit.fluxcd.io";
pub const HELM_GROUP: &str = "helm.toolkit.fluxcd.io";
pub const SOURCE_GROUP: &str = "source.toolkit.fluxcd.io";
pub const IMAGE_GROUP: &str = "image.toolkit.fluxcd.io";

/// The Flux kinds the rules read, by (group, kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FluxKind {
    Kustomization,
    HelmRelease,
    Source,
}

fn flux_kind(group: &str, kind: &str) -> Option<FluxKind> {
    match (group, kind) {
        (KUSTOMIZE_GROUP, "Kustomization") => Some(FluxKind::Kustomization),
        (HELM_GROUP, "HelmRelease") => Some(FluxKind::HelmRelease),
        (SOURCE_GROUP, "GitRepository" | "OCIRepository" | "HelmRepository" | "Bucket") => {
            Some(FluxKind::Source)
        }
        // Image automation reads a tenant's registries and commits to its
        // Git sources: confined like sources (ImageUpdateAutomation's
        // sourceRef, ImagePolicy's imageRepositoryRef).
        (IMAGE_GROUP, "ImageRepository" | "ImagePolicy" | "ImageUpdateAutomation") => {
            Some(FluxKind::Source)
        }
        _ => None,
    }
}

pub enum SpecCheck {
    Fine,
    Broken(Violation),
    /// Only a missing service account under policy `warn`.
    Warn(String),
}

pub fn check(policy: &Policy, view: &ClusterView, req: &Request<'_>) -> SpecCheck {
    let writes = matches!(req.operation, Operation::Create | Operation::Update);
    let kind = flux_kind(&req.kind.group, &req.kind.kind);
    let (Some(kind), true, Some(object)) = (kind, writes, req.object.as_ref()) else {
        return SpecCheck::Fine;
    };
    let settings = &policy.tenancy;
    let namespace = req.namespace();
    let Some(tenant) = view.tenant_of(&settings.tenant_label, namespace) else {
        return SpecCheck::Fine;
    };
    let spec = &object.spec;
    let mut broken = Vec::new();
    // Flux's default service account stands in for Kustomizations and
    // HelmReleases only; a source's service account is for pulling.
    let account = match kind {
        FluxKind::Source => spec.service_account_name.as_deref(),
        _ => spec
            .service_account_name
            .as_deref()
            .or(settings.default_service_account.as_deref()),
    };
    let mut missing = None;
    match (kind, account) {
        (FluxKind::Source, None) => {}
        (_, None) => broken.push(format!(
            "spec.serviceAccountName is required in tenant {tenant:?} (and no default service \
             account is configured): without it the controller applies with its own \
             cluster-wide rights."
        )),
        (_, Some(sa)) if !view.identities.has_service_account(namespace, sa) => {
            missing = Some(format!(
                "spec.serviceAccountName names service account {namespace}/{sa}, which does not \
                 exist: create it (with its RoleBinding) in the same namespace."
            ));
        }
        _ => {}
    }
    references(policy, view, namespace, tenant, spec, &mut broken);
    let targets = [
        ("spec.targetNamespace", spec.target_namespace.as_deref()),
        ("spec.storageNamespace", spec.storage_namespace.as_deref()),
    ];
    for (field, target) in targets {
        let Some(target) = target.filter(|t| !t.is_empty()) else {
            continue;
        };
        if view.tenant_of(&settings.tenant_label, target) != Some(tenant) {
            broken.push(format!(
                "{field} {target:?} is not a namespace of tenant {tenant:?}{}.",
                owner_of(policy, view, target)
            ));
        }
    }
    if spec.kube_config && kind != FluxKind::Source {
        broken.push(
            "spec.kubeConfig is refused for tenants: a remote cluster's kubeconfig bypasses \
             the tenant's service account."
                .to_owned(),
        );
    }
    if let Some(text) = missing {
        match settings.missing_service_account {
            OnViolation::Deny => broken.push(text),
            OnViolation::Warn if broken.is_empty() => {
                return SpecCheck::Warn(format!("gitops-guard: {text}"));
            }
            _ => {}
        }
    }
    if broken.is_empty() {
        return SpecCheck::Fine;
    }
    let mut message = format!(
        "{} {namespace}/{} is in tenant {tenant:?} and breaks the tenant rules:",
        req.kind.kind, req.name
    );
    for line in &broken {
        let _ = write!(message, "\n- {line}");
    }
    SpecCheck::Broken(Violation {
        reason: Reason::TenantSpec,
        message,
    })
}

/// `sourceRef`/`chartRef`/`imageRepositoryRef` may point into the tenant or
/// a shared namespace.
fn references(
    policy: &Policy,
    view: &ClusterView,
    namespace: &str,
    tenant: &str,
    spec: &SpecView<'_>,
    broken: &mut Vec<String>,
) {
    let settings = &policy.tenancy;
    for (field, r) in spec.references() {
        let Some(target) = r.namespace.as_deref().filter(|n| *n != namespace) else {
            continue;
        };
        let shared = settings.shared_namespaces.iter().any(|s| s == target);
        let same = view.tenant_of(&settings.tenant_label, target) == Some(tenant);
        if !shared && !same {
            broken.push(format!(
                "{field} points to {} {target}/{}, outside tenant {tenant:?}{}; sources may come \
                 from the tenant's namespaces or the shared ones ({}).",
                r.kind,
                r.name,
                owner_of(policy, view, target),
                settings.shared_namespaces.join(", ")
            ));
        }
    }
}

/// `, in tenant "b"` when the namespace belongs to another tenant.
fn owner_of(policy: &Policy, view: &ClusterView, namespace: &str) -> String {
    match view.tenant_of(&policy.tenancy.tenant_label, namespace) {
        Some(t) => format!(" (it belongs to tenant {t:?})"),
        None => String::new(),
    }
}
