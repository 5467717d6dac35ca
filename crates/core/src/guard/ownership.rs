//! Who owns an object: read from its labels and annotations alone.

use std::fmt;

use crate::{admission::review::Metadata, cluster::view::ParentMeta, policy::Policy};

pub const KUSTOMIZE_NAME: &str = "kustomize.toolkit.fluxcd.io/name";
pub const KUSTOMIZE_NAMESPACE: &str = "kustomize.toolkit.fluxcd.io/namespace";
pub const HELM_NAME: &str = "helm.toolkit.fluxcd.io/name";
pub const HELM_NAMESPACE: &str = "helm.toolkit.fluxcd.io/namespace";
pub const ARGO_TRACKING_ID: &str = "argocd.argoproj.io/tracking-id";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OwnerKind {
    Kustomization,
    HelmRelease,
    ArgoApplication,
    /// Index into `policy.owners.custom`.
    Custom(usize),
}

impl OwnerKind {
    /// The owner object's kind, as alerts, metrics and the audit name it
    /// (a bounded set: custom markers are all `custom`).
    pub fn object_kind(self) -> &'static str {
        match self {
            OwnerKind::Kustomization => "Kustomization",
            OwnerKind::HelmRelease => "HelmRelease",
            OwnerKind::ArgoApplication => "Application",
            OwnerKind::Custom(_) => "custom",
        }
    }
}

/// What claims an object: an owner kind and the owner's namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner {
    pub kind: OwnerKind,
    pub namespace: String,
    pub name: String,
}

impl Owner {
    /// `Kustomization flux-system/apps`, as messages print it.
    pub fn display<'a>(&'a self, policy: &'a Policy) -> OwnerDisplay<'a> {
        OwnerDisplay {
            owner: self,
            policy,
        }
    }
}

pub struct OwnerDisplay<'a> {
    owner: &'a Owner,
    policy: &'a Policy,
}

impl fmt::Display for OwnerDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Owner {
            kind,
            namespace,
            name,
        } = self.owner;
        let kind = match kind {
            OwnerKind::Kustomization => "Flux Kustomization",
            OwnerKind::HelmRelease => "Flux HelmRelease",
            OwnerKind::ArgoApplication => "Argo CD Application",
            OwnerKind::Custom(i) => {
                let custom = self.policy.owners.custom.get(*i);
                custom.map_or("custom owner", |c| c.name.as_str())
            }
        };
        if namespace.is_empty() {
            write!(f, "{kind} {name}")
        } else {
            write!(f, "{kind} {namespace}/{name}")
        }
    }
}

/// Labels and annotations, wherever they were read from.
pub trait Markers {
    fn label(&self, key: &str) -> Option<&str>;
    fn annotation(&self, key: &str) -> Option<&str>;
}

impl Markers for Metadata<'_> {
    fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(|v| v.as_ref())
    }

    fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).map(|v| v.as_ref())
    }
}

impl Markers for ParentMeta {
    fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).map(String::as_str)
    }
}

/// Reads the owner an object's metadata claims, if any.
pub fn owner_of(policy: &Policy, meta: &impl Markers) -> Option<Owner> {
    let label = |key: &str| meta.label(key);
    let annotation = |key: &str| meta.annotation(key);
    let flux = |kind, name_key, ns_key| {
        label(name_key).map(|name| Owner {
            kind,
            namespace: label(ns_key).unwrap_or_default().to_owned(),
            name: name.to_owned(),
        })
    };
    let argo = &policy.owners.argo_cd;
    flux(
        OwnerKind::Kustomization,
        KUSTOMIZE_NAME,
        KUSTOMIZE_NAMESPACE,
    )
    .or_else(|| flux(OwnerKind::HelmRelease, HELM_NAME, HELM_NAMESPACE))
    .or_else(|| annotation(ARGO_TRACKING_ID).map(|id| argo_owner(id, &argo.application_namespace)))
    .or_else(|| {
        let key = argo.instance_label.as_deref()?;
        label(key).map(|app| argo_owner(app, &argo.application_namespace))
    })
    .or_else(|| {
        policy
            .owners
            .custom
            .iter()
            .enumerate()
            .find_map(|(i, marker)| {
                let value = match (&marker.label, &marker.annotation) {
                    (Some(key), _) => label(key),
                    (None, Some(key)) => annotation(key),
                    (None, None) => None,
                }?;
                Some(Owner {
                    kind: OwnerKind::Custom(i),
                    namespace: String::new(),
                    name: value.to_owned(),
                })
            })
    })
}

/// Argo CD tracking ids look like `<app>:<group>/<kind>:<ns>/<name>`; an
/// application outside the control-plane namespace is written `<ns>_<app>`.
fn argo_owner(tracking: &str, default_namespace: &str) -> Owner {
    let app = tracking.split(':').next().unwrap_or(tracking);
    let (namespace, name) = match app.split_once('_') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() => (ns, name),
        _ => (default_namespace, app),
    };
    Owner {
        kind: OwnerKind::ArgoApplication,
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    }
}

/// The label that takes a namespace out of every webhook entry's
/// `namespaceSelector` (manifests/webhook).
pub const EXCLUDE_LABEL: &str = "gitops-guard.io/exclude";

/// Keys only the reconciler may add, change or remove: ownership markers
/// and escape hatches. Each is checked as a label and as an annotation.
pub fn protected_keys(policy: &Policy) -> impl Iterator<Item = &str> {
    let fixed = [
        KUSTOMIZE_NAME,
        KUSTOMIZE_NAMESPACE,
        HELM_NAME,
        HELM_NAMESPACE,
        ARGO_TRACKING_ID,
    ];
    let custom = policy
        .owners
        .custom
        .iter()
        .filter_map(|m| m.label.as_deref().or(m.annotation.as_deref()));
    fixed
        .into_iter()
        .chain(policy.owners.argo_cd.instance_label.as_deref())
        .chain(custom)
        .chain(policy.escape_hatches.iter().map(String::as_str))
}

/// The first protected key whose label or annotation differs between the
/// old and the new object (added, changed or removed).
pub fn changed_protected_key<'p>(
    policy: &'p Policy,
    old: &Metadata<'_>,
    new: &Metadata<'_>,
) -> Option<&'p str> {
    // Most edits leave labels and annotations alone: one comparison of each
    // map instead of two look-ups per protected key (~15 keys) in each (the
    // decide-alone profile of a person's denied Deployment edit spent a
    // quarter of its time in those look-ups).
    if old.labels == new.labels && old.annotations == new.annotations {
        return None;
    }
    protected_keys(policy).find(|key| changed(old, new, key))
}

/// The guard's own labels on a Namespace (mode, exclusion, pinning): on an
/// owned Namespace they would switch the guard off for it, so only the
/// reconciler may change them. Only Namespaces carry them, so only a
/// Namespace's review pays for the look-ups.
pub fn changed_guard_label<'p>(
    policy: &'p Policy,
    old: &Metadata<'_>,
    new: &Metadata<'_>,
) -> Option<&'p str> {
    [
        EXCLUDE_LABEL,
        policy.mode_label.as_str(),
        policy.images.mode_label.as_str(),
    ]
    .into_iter()
    .find(|key| changed(old, new, key))
}

fn changed(old: &Metadata<'_>, new: &Metadata<'_>, key: &str) -> bool {
    old.labels.get(key) != new.labels.get(key)
        || old.annotations.get(key) != new.annotations.get(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::review::StrMap;

    fn meta(
        labels: &[(&'static str, &'static str)],
        annotations: &[(&'static str, &'static str)],
    ) -> Metadata<'static> {
        let map = |pairs: &[(&'static str, &'static str)]| -> StrMap<'static> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect()
        };
        Metadata {
            labels: map(labels),
            annotations: map(annotations),
            ..Metadata::default()
        }
    }

    #[test]
    fn argo_tracking_ids_name_the_application_and_its_namespace() {
        let p = Policy::default();
        let plain = owner_of(
            &p,
            &meta(
                &[],
                &[(ARGO_TRACKING_ID, "guestbook:apps/Deployment:prod/web")],
            ),
        );
        assert_eq!(
            plain.map(|o| (o.namespace, o.name)),
            Some(("argocd".into(), "guestbook".into()))
        );
        let scoped = owner_of(
            &p,
            &meta(&[], &[(ARGO_TRACKING_ID, "team-a_shop:/Service:shop/web")]),
        );
        assert_eq!(
            scoped.map(|o| (o.namespace, o.name)),
            Some(("team-a".into(), "shop".into()))
        );
    }

    #[test]
    fn the_argo_instance_label_counts_only_when_configured() {
        let mut p = Policy::default();
        let m = meta(&[("app.kubernetes.io/instance", "guestbook")], &[]);
        assert_eq!(owner_of(&p, &m), None);
        p.owners.argo_cd.instance_label = Some("app.kubernetes.io/instance".into());
        assert_eq!(
            owner_of(&p, &m).map(|o| o.kind),
            Some(OwnerKind::ArgoApplication)
        );
    }

    #[test]
    fn an_escape_hatch_annotation_change_is_found() {
        let p = Policy::default();
        let old = meta(&[(KUSTOMIZE_NAME, "apps")], &[]);
        let new = meta(
            &[(KUSTOMIZE_NAME, "apps")],
            &[("kustomize.toolkit.fluxcd.io/reconcile", "disabled")],
        );
        assert_eq!(
            changed_protected_key(&p, &old, &new),
            Some("kustomize.toolkit.fluxcd.io/reconcile")
        );
        assert_eq!(changed_protected_key(&p, &old, &old), None);
    }
}
