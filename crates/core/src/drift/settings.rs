//! The `drift` section of the policy file.

use std::time::Duration;

use serde::Deserialize;

use crate::policy::de_duration;

/// A kind to watch: `group/version/kind` and its plural resource name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WatchedKind {
    #[serde(default)]
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct DriftPolicy {
    /// Kinds whose Flux-labelled objects are watched (metadata only).
    pub kinds: Vec<WatchedKind>,
    /// Field managers whose writes are never drift (controllers of the
    /// cluster itself).
    pub system_managers: Vec<String>,
    /// How often active alerts are sent again; `endsAt` is three of these ahead.
    #[serde(deserialize_with = "de_duration")]
    pub resend_interval: Duration,
    /// Also watch objects tracked by Argo CD's annotation. Selectors cannot
    /// see annotations, so this lists and watches every object of the kinds
    /// (metadata only) and filters in the guard: more traffic on big clusters.
    #[serde(rename = "watchArgoCD")]
    pub watch_argo_cd: bool,
}

fn kind(group: &str, version: &str, kind: &str, plural: &str) -> WatchedKind {
    WatchedKind {
        group: group.to_owned(),
        version: version.to_owned(),
        kind: kind.to_owned(),
        plural: plural.to_owned(),
    }
}

impl Default for DriftPolicy {
    fn default() -> Self {
        Self {
            kinds: vec![
                kind("apps", "v1", "Deployment", "deployments"),
                kind("apps", "v1", "StatefulSet", "statefulsets"),
                kind("apps", "v1", "DaemonSet", "daemonsets"),
                kind("batch", "v1", "CronJob", "cronjobs"),
                kind("", "v1", "Service", "services"),
                kind("", "v1", "ConfigMap", "configmaps"),
                kind("", "v1", "ServiceAccount", "serviceaccounts"),
                kind("rbac.authorization.k8s.io", "v1", "Role", "roles"),
                kind(
                    "rbac.authorization.k8s.io",
                    "v1",
                    "RoleBinding",
                    "rolebindings",
                ),
                kind("networking.k8s.io", "v1", "Ingress", "ingresses"),
                kind(
                    "networking.k8s.io",
                    "v1",
                    "NetworkPolicy",
                    "networkpolicies",
                ),
                kind(
                    "autoscaling",
                    "v2",
                    "HorizontalPodAutoscaler",
                    "horizontalpodautoscalers",
                ),
                kind(
                    "policy",
                    "v1",
                    "PodDisruptionBudget",
                    "poddisruptionbudgets",
                ),
            ],
            system_managers: [
                "kube-controller-manager",
                "kube-scheduler",
                "kubelet",
                "kube-apiserver",
                "gitops-guard",
            ]
            .into_iter()
            .map(str::to_owned)
            .collect(),
            resend_interval: Duration::from_secs(60),
            watch_argo_cd: true,
        }
    }
}
