//! The `compatibility` section of the policy: who may change what on an
//! owned object besides its reconciler. Defaults model Flux's and Argo CD's
//! own write patterns (see README, "Flux compatibility").

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct CompatibilityPolicy {
    /// Controllers that serve GitOps kinds: they write those kinds'
    /// finalizers and status whoever applied the object.
    pub kind_controllers: Vec<KindController>,
    /// Objects a controller generates for an owner of another kind and writes
    /// whole with its own identity (helm-controller's HelmCharts).
    pub generated: Vec<Generated>,
    /// Annotations that only ask for a reconciliation: anyone RBAC lets patch
    /// may set them, provided nothing else changes in the same request.
    pub reconcile_requests: Vec<ReconcileRequest>,
    /// `flux suspend` / `resume` (`spec.suspend` of Flux objects).
    pub suspend: Suspend,
    /// Field-level allowances: an identity, kinds, and the paths it may change.
    pub allowances: Vec<Allowance>,
}

/// An API group and kinds in it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Kinds {
    #[serde(default)]
    pub group: String,
    pub kinds: Vec<String>,
}

impl Kinds {
    pub fn contains(&self, group: &str, kind: &str) -> bool {
        self.group == group && self.kinds.iter().any(|k| k == kind)
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KindController {
    /// Username as the apiserver reports it (a service account).
    pub identity: String,
    #[serde(flatten)]
    pub serves: Kinds,
    /// What it may change: finalizers and status unless the policy says more
    /// (Argo CD's Application has no status subresource, and its controller
    /// also clears `operation` and the refresh annotation).
    #[serde(default = "finalizers_and_status")]
    pub paths: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Generated {
    pub identity: String,
    #[serde(flatten)]
    pub kinds: Kinds,
    /// The owner kind whose labels the generated object carries.
    pub owner: GeneratedOwner,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum GeneratedOwner {
    HelmRelease,
    Kustomization,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReconcileRequest {
    pub group: String,
    pub annotations: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Suspend {
    /// API groups whose objects have `spec.suspend`.
    pub groups: Vec<String>,
    /// Who may suspend and resume owned objects in every mode (an
    /// operations group); anyone else is a manual change: denied in enforce
    /// unless a BreakGlass grant covers it.
    pub users: Vec<String>,
    pub operator_groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Allowance {
    /// Shown in logs, e.g. `cert-manager-cainjector`.
    pub name: String,
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    pub kinds: Vec<Kinds>,
    /// JSON pointers; a segment `*` matches any one key or index.
    pub paths: Vec<String>,
}

fn finalizers_and_status() -> Vec<String> {
    strings(&["/metadata/finalizers", "/status"])
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn flux(controller: &str, group: &str, kinds: &[&str]) -> KindController {
    KindController {
        identity: format!("system:serviceaccount:flux-system:{controller}"),
        serves: Kinds {
            group: group.to_owned(),
            kinds: strings(kinds),
        },
        paths: finalizers_and_status(),
    }
}

const REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";
const FLUX_GROUPS: [&str; 5] = [
    "source.toolkit.fluxcd.io",
    "kustomize.toolkit.fluxcd.io",
    "helm.toolkit.fluxcd.io",
    "notification.toolkit.fluxcd.io",
    "image.toolkit.fluxcd.io",
];

impl Default for CompatibilityPolicy {
    fn default() -> Self {
        let source = "source.toolkit.fluxcd.io";
        let image = "image.toolkit.fluxcd.io";
        let mut requests: Vec<ReconcileRequest> = FLUX_GROUPS
            .iter()
            .map(|g| ReconcileRequest {
                group: (*g).to_owned(),
                annotations: strings(&[REQUESTED_AT]),
            })
            .collect();
        // `flux reconcile hr --force` / `--reset`.
        requests[2].annotations.extend(strings(&[
            "reconcile.fluxcd.io/forceAt",
            "reconcile.fluxcd.io/resetAt",
        ]));
        requests.push(ReconcileRequest {
            group: "argoproj.io".into(),
            annotations: strings(&["argocd.argoproj.io/refresh"]),
        });
        Self {
            kind_controllers: vec![
                flux(
                    "source-controller",
                    source,
                    &[
                        "GitRepository",
                        "OCIRepository",
                        "HelmRepository",
                        "HelmChart",
                        "Bucket",
                    ],
                ),
                flux(
                    "kustomize-controller",
                    "kustomize.toolkit.fluxcd.io",
                    &["Kustomization"],
                ),
                flux(
                    "helm-controller",
                    "helm.toolkit.fluxcd.io",
                    &["HelmRelease"],
                ),
                flux(
                    "notification-controller",
                    "notification.toolkit.fluxcd.io",
                    &["Alert", "Provider", "Receiver"],
                ),
                flux(
                    "image-reflector-controller",
                    image,
                    &["ImageRepository", "ImagePolicy"],
                ),
                flux(
                    "image-automation-controller",
                    image,
                    &["ImageUpdateAutomation"],
                ),
                KindController {
                    identity: "system:serviceaccount:argocd:argocd-application-controller".into(),
                    serves: Kinds {
                        group: "argoproj.io".into(),
                        kinds: strings(&["Application"]),
                    },
                    paths: strings(&[
                        "/metadata/finalizers",
                        "/status",
                        "/operation",
                        "/metadata/annotations/argocd.argoproj.io~1refresh",
                    ]),
                },
            ],
            generated: vec![Generated {
                identity: "system:serviceaccount:flux-system:helm-controller".into(),
                kinds: Kinds {
                    group: source.into(),
                    kinds: strings(&["HelmChart"]),
                },
                owner: GeneratedOwner::HelmRelease,
            }],
            reconcile_requests: requests,
            suspend: Suspend::default(),
            allowances: Vec::new(),
        }
    }
}

impl Default for Suspend {
    fn default() -> Self {
        Self {
            groups: strings(&FLUX_GROUPS),
            users: Vec::new(),
            operator_groups: Vec::new(),
        }
    }
}

impl CompatibilityPolicy {
    /// Identities that are controllers (their tokens must be Pod-bound).
    pub fn controller_identities(&self) -> impl Iterator<Item = &str> {
        let kinds = self.kind_controllers.iter().map(|k| k.identity.as_str());
        kinds.chain(self.generated.iter().map(|g| g.identity.as_str()))
    }

    pub fn validate(&self) -> Result<(), (String, String)> {
        for (i, a) in self.allowances.iter().enumerate() {
            let at = |field: &str| format!("compatibility.allowances[{i}].{field}");
            if a.users.is_empty() && a.groups.is_empty() {
                return Err((at("users"), "name at least one user or group".into()));
            }
            if let Some(p) = a
                .paths
                .iter()
                .find(|p| !p.starts_with('/') || p.as_str() == "/")
            {
                let why = format!("{p:?} is not a JSON pointer below the object root");
                return Err((at("paths"), why));
            }
        }
        Ok(())
    }
}
