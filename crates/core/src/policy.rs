//! The policy file: typed, unknown fields rejected, with embedded Flux and
//! Argo CD defaults so the binary runs with no file at all.
//!
//! `policy/default.yaml` documents the defaults; a test keeps it equal to
//! [`Policy::default`]. A section given in a policy file replaces that
//! section's default; sections left out keep it.

use std::{path::Path, time::Duration};

use serde::Deserialize;

use crate::duration::parse_duration;

/// The embedded default policy, as YAML, for `gitops-guard policy` and docs.
pub const DEFAULT_POLICY_YAML: &str = include_str!("../../../policy/default.yaml");

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read policy file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("policy {origin}: {path}: {message}")]
    Invalid {
        origin: String,
        path: String,
        message: String,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What happens to a manual change of a GitOps-owned object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Deny the request.
    Enforce,
    /// Allow it with an admission warning that kubectl prints.
    Warn,
    /// Allow it silently; log and count it.
    Audit,
}

impl Mode {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "enforce" => Some(Self::Enforce),
            "warn" => Some(Self::Warn),
            "audit" => Some(Self::Audit),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::Warn => "warn",
            Self::Audit => "audit",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Policy {
    pub default_mode: Mode,
    /// Namespace label that overrides the mode (`enforce`, `warn`, `audit`).
    pub mode_label: String,
    pub owners: Owners,
    /// Kubernetes' own controllers: recognised by their credential and
    /// allowed only their jobs (`guard::actors`).
    pub system_actors: Vec<crate::guard::actors::SystemActor>,
    /// Labels and annotations only the reconciler may add, change or remove
    /// (besides the ownership markers themselves).
    pub escape_hatches: Vec<String>,
    pub break_glass: BreakGlassPolicy,
    /// Digest pinning by the mutating webhook.
    pub images: crate::pin::settings::ImagePolicy,
    /// The drift watcher.
    pub drift: crate::drift::settings::DriftPolicy,
    pub tenancy: crate::tenancy::settings::TenancyPolicy,
    /// Who may change what on an owned object besides its reconciler.
    pub compatibility: crate::guard::compat::settings::CompatibilityPolicy,
    /// Objects derived from an owned parent (Pods, EndpointSlices, ...).
    pub derived: DerivedPolicy,
}

/// A service account may write an object that carries ownership markers
/// when the object's controller reference names a parent the guard keeps
/// in its view, with the same uid and the same owner.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct DerivedPolicy {
    /// Parent kinds besides the built-in workloads and Services: an
    /// operator's custom resources whose children copy their labels. The
    /// guard watches their metadata (grant it `list`/`watch`).
    pub extra_parents: Vec<crate::cluster::view::ParentKind>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Owners {
    pub kustomization: Reconciler,
    pub helm_release: Reconciler,
    #[serde(rename = "argoCD")]
    pub argo_cd: ArgoCd,
    pub custom: Vec<CustomMarker>,
}

/// What the policy says about one kind of owner: who reconciles it, and
/// the field managers its reconciler writes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnerPolicy<'p> {
    pub reconcilers: &'p [String],
    /// A second signal only, never a credential.
    pub field_managers: &'p [String],
}

impl Owners {
    /// The one place an owner kind is looked up in the policy.
    pub fn get(&self, kind: crate::guard::ownership::OwnerKind) -> OwnerPolicy<'_> {
        use crate::guard::ownership::OwnerKind;
        let (reconcilers, field_managers) = match kind {
            OwnerKind::Kustomization => (
                &self.kustomization.reconcilers,
                &self.kustomization.field_managers,
            ),
            OwnerKind::HelmRelease => (
                &self.helm_release.reconcilers,
                &self.helm_release.field_managers,
            ),
            OwnerKind::ArgoApplication => (&self.argo_cd.reconcilers, &self.argo_cd.field_managers),
            OwnerKind::Custom(i) => match self.custom.get(i) {
                Some(c) => (&c.reconcilers, &c.field_managers),
                None => {
                    return OwnerPolicy {
                        reconcilers: &[],
                        field_managers: &[],
                    };
                }
            },
        };
        OwnerPolicy {
            reconcilers,
            field_managers,
        }
    }
}

/// Who reconciles one kind of owner.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Reconciler {
    /// Usernames (as the apiserver reports them) allowed to write.
    pub reconcilers: Vec<String>,
    /// Field managers the reconciler uses: a second signal, never a credential.
    #[serde(default)]
    pub field_managers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArgoCd {
    pub reconcilers: Vec<String>,
    #[serde(default)]
    pub field_managers: Vec<String>,
    /// Legacy label tracking (e.g. `app.kubernetes.io/instance`); off when unset.
    #[serde(default)]
    pub instance_label: Option<String>,
    #[serde(default = "default_argo_namespace")]
    pub application_namespace: String,
}

/// A custom ownership marker: a label or an annotation.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomMarker {
    /// Shown in messages as the owner kind, e.g. `platform-operator`.
    pub name: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub annotation: Option<String>,
    pub reconcilers: Vec<String>,
    #[serde(default)]
    pub field_managers: Vec<String>,
    /// Where the source of truth lives, shown in denial messages.
    #[serde(default)]
    pub source_hint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct BreakGlassPolicy {
    /// Longest grant honoured, counted from the grant's creation.
    #[serde(deserialize_with = "de_duration")]
    pub max_duration: Duration,
}

fn default_argo_namespace() -> String {
    "argocd".to_owned()
}

pub(crate) fn de_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn reconciler(user: &str, manager: &str) -> Reconciler {
    Reconciler {
        reconcilers: strings(&[user]),
        field_managers: strings(&[manager]),
    }
}

impl Default for Owners {
    fn default() -> Self {
        Self {
            kustomization: reconciler(
                "system:serviceaccount:flux-system:kustomize-controller",
                "kustomize-controller",
            ),
            helm_release: reconciler(
                "system:serviceaccount:flux-system:helm-controller",
                "helm-controller",
            ),
            argo_cd: ArgoCd {
                reconcilers: strings(&[
                    "system:serviceaccount:argocd:argocd-application-controller",
                ]),
                field_managers: strings(&["argocd-controller"]),
                instance_label: None,
                application_namespace: default_argo_namespace(),
            },
            custom: Vec::new(),
        }
    }
}

impl Default for BreakGlassPolicy {
    fn default() -> Self {
        Self {
            max_duration: Duration::from_secs(4 * 3600),
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            default_mode: Mode::Enforce,
            mode_label: "gitops-guard.io/mode".to_owned(),
            owners: Owners::default(),
            system_actors: crate::guard::actors::defaults(),
            escape_hatches: strings(&[
                "kustomize.toolkit.fluxcd.io/reconcile",
                "kustomize.toolkit.fluxcd.io/ssa",
                "kustomize.toolkit.fluxcd.io/prune",
                "kustomize.toolkit.fluxcd.io/force",
                "helm.toolkit.fluxcd.io/driftDetection",
                "argocd.argoproj.io/sync-options",
                "argocd.argoproj.io/compare-options",
            ]),
            break_glass: BreakGlassPolicy::default(),
            images: Default::default(),
            drift: Default::default(),
            tenancy: Default::default(),
            compatibility: Default::default(),
            derived: Default::default(),
        }
    }
}

impl Policy {
    /// Every kind whose objects the view keeps as parents.
    pub fn parent_kinds(&self) -> Vec<crate::cluster::view::ParentKind> {
        let mut kinds = crate::cluster::ingest::builtin_parents();
        let extra = self.derived.extra_parents.iter();
        kinds.extend(
            extra
                .filter(|p| !kinds.contains(p))
                .cloned()
                .collect::<Vec<_>>(),
        );
        kinds
    }

    /// Parses a policy document; errors carry the path of the bad field.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Self> {
        let invalid = |path: String, message: String| Error::Invalid {
            origin: origin.to_owned(),
            path,
            message,
        };
        // YAML -> JSON value first, so serde_path_to_error can name the path.
        let value: serde_json::Value = serde_saphyr::from_str(text)
            .map_err(|e| invalid("(document)".into(), e.to_string()))?;
        let value = if value.is_null() {
            serde_json::json!({})
        } else {
            value
        };
        let policy: Policy = serde_path_to_error::deserialize(value)
            .map_err(|e| invalid(e.path().to_string(), e.inner().to_string()))?;
        policy
            .validate()
            .map_err(|(path, message)| invalid(path, message))?;
        Ok(policy)
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml(&text, &path.display().to_string())
    }

    fn validate(&self) -> Result<(), (String, String)> {
        for (i, marker) in self.owners.custom.iter().enumerate() {
            if marker.label.is_some() == marker.annotation.is_some() {
                let path = format!("owners.custom[{i}]");
                return Err((path, "set exactly one of `label` or `annotation`".into()));
            }
            if marker.reconcilers.is_empty() {
                let path = format!("owners.custom[{i}].reconcilers");
                return Err((path, "name at least one reconciler identity".into()));
            }
        }
        if self.mode_label.is_empty() {
            return Err(("modeLabel".into(), "must not be empty".into()));
        }
        for (i, parent) in self.derived.extra_parents.iter().enumerate() {
            if parent.version.is_empty() || parent.kind.is_empty() || parent.resource.is_empty() {
                let path = format!("derived.extraParents[{i}]");
                return Err((path, "set version, kind and resource".into()));
            }
        }
        self.images.validate()?;
        self.compatibility.validate()?;
        self.tenancy.validate()
    }
}

#[cfg(test)]
mod tests;
