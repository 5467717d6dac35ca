//! Turning Kubernetes objects into cluster-view entries. Used by the
//! reflectors and by `check --cluster-state`, so both see the same view.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::DynamicObject;
use serde_json::Value;

use super::{
    breakglass::BreakGlassSpec,
    identities::PodFacts,
    view::{ClusterView, FluxObject, Grant, NamespaceFacts, ParentKind, ParentMeta, SourceRef},
};
use crate::{
    guard::ownership::{ARGO_TRACKING_ID, OwnerKind},
    policy::Policy,
};

/// The parents the view always keeps: the workload kinds (whose `/scale` the
/// guard resolves, and whose Pods, ReplicaSets, Jobs and ControllerRevisions
/// copy their template's labels) and Services (whose EndpointSlices copy
/// their labels). `policy.derived.extraParents` adds an operator's kinds.
pub fn builtin_parents() -> Vec<ParentKind> {
    vec![
        ParentKind::new("apps", "v1", "Deployment", "deployments"),
        ParentKind::new("apps", "v1", "StatefulSet", "statefulsets"),
        ParentKind::new("apps", "v1", "ReplicaSet", "replicasets"),
        ParentKind::new("apps", "v1", "DaemonSet", "daemonsets"),
        ParentKind::new("", "v1", "ReplicationController", "replicationcontrollers"),
        ParentKind::new("batch", "v1", "Job", "jobs"),
        ParentKind::new("batch", "v1", "CronJob", "cronjobs"),
        ParentKind::new("", "v1", "Service", "services"),
    ]
}

pub const KUSTOMIZATION_GROUP: &str = "kustomize.toolkit.fluxcd.io";
pub const HELM_RELEASE_GROUP: &str = "helm.toolkit.fluxcd.io";

pub fn namespace_facts(meta: &ObjectMeta) -> NamespaceFacts {
    NamespaceFacts {
        labels: meta.labels.clone().unwrap_or_default(),
        terminating: meta.deletion_timestamp.is_some(),
    }
}

pub fn grant(meta: &ObjectMeta, spec: BreakGlassSpec) -> Grant {
    Grant {
        name: meta.name.clone().unwrap_or_default(),
        spec,
        created: meta.creation_timestamp.as_ref().map(|t| t.0),
    }
}

/// Keeps every label (small) but only the annotations ownership reads.
pub fn parent_meta(policy: &Policy, meta: &ObjectMeta) -> ParentMeta {
    let wanted = |key: &String| {
        key == ARGO_TRACKING_ID
            || policy
                .owners
                .custom
                .iter()
                .any(|c| c.annotation.as_ref() == Some(key))
    };
    let annotations = meta.annotations.iter().flatten();
    ParentMeta {
        uid: meta.uid.clone().unwrap_or_default(),
        labels: meta.labels.clone().unwrap_or_default(),
        annotations: annotations
            .filter(|(k, _)| wanted(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// What a Kustomization or HelmRelease spec says about who applies it and from where.
pub fn flux_object(kind: OwnerKind, spec: &Value) -> FluxObject {
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let source_ref = match kind {
        OwnerKind::HelmRelease => spec
            .pointer("/chart/spec/sourceRef")
            .or_else(|| spec.get("chartRef")),
        _ => spec.get("sourceRef"),
    };
    let source = source_ref.and_then(|r| {
        Some(SourceRef {
            kind: r.get("kind")?.as_str()?.to_owned(),
            namespace: r.get("namespace").and_then(text),
            name: r.get("name")?.as_str()?.to_owned(),
        })
    });
    let path = match kind {
        OwnerKind::HelmRelease => spec
            .pointer("/chart/spec/chart")
            .and_then(text)
            .map(|c| format!("chart {c}")),
        _ => spec.get("path").and_then(text),
    };
    let targets = ["targetNamespace", "storageNamespace"]
        .iter()
        .filter_map(|field| spec.get(*field).and_then(text))
        .collect();
    FluxObject {
        service_account: spec.get("serviceAccountName").and_then(text),
        source,
        path,
        targets,
    }
}

pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// The Pod a token can be bound to: its uid and service account.
pub fn pod_facts(meta: &ObjectMeta, spec: &Value) -> PodFacts {
    let account = spec.get("serviceAccountName").and_then(Value::as_str);
    PodFacts {
        uid: meta.uid.clone().unwrap_or_default(),
        service_account: account.unwrap_or("default").to_owned(),
    }
}

/// Why a cluster-state document was not used.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("document {index}: {message}")]
    Document { index: usize, message: String },
}

/// Adds one object of any supported kind to the view; other kinds are
/// reported so a typo in a state file is not silently ignored.
pub fn apply(
    view: &mut ClusterView,
    policy: &Policy,
    index: usize,
    obj: DynamicObject,
) -> Result<(), IngestError> {
    let err = |message: String| IngestError::Document { index, message };
    let types = obj
        .types
        .clone()
        .ok_or_else(|| err("missing apiVersion/kind".into()))?;
    let group = types.api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let meta = &obj.metadata;
    let name = meta
        .name
        .clone()
        .ok_or_else(|| err("missing metadata.name".into()))?;
    let ns = meta.namespace.clone().unwrap_or_default();
    let spec = obj.data.get("spec").cloned().unwrap_or(Value::Null);
    match (group, types.kind.as_str()) {
        ("", "Namespace") => view.upsert_namespace(name, namespace_facts(meta)),
        ("gitops-guard.io", "BreakGlass") => {
            let spec: BreakGlassSpec = serde_json::from_value(spec)
                .map_err(|e| err(format!("BreakGlass {ns}/{name}: {e}")))?;
            view.upsert_grant(ns, grant(meta, spec));
        }
        (KUSTOMIZATION_GROUP, "Kustomization") => {
            view.upsert_flux(
                OwnerKind::Kustomization,
                ns,
                name,
                flux_object(OwnerKind::Kustomization, &spec),
            );
        }
        (HELM_RELEASE_GROUP, "HelmRelease") => {
            view.upsert_flux(
                OwnerKind::HelmRelease,
                ns,
                name,
                flux_object(OwnerKind::HelmRelease, &spec),
            );
        }
        ("", "ServiceAccount") => view.identities.upsert_service_account(ns, name),
        ("", "Pod") => view.identities.upsert_pod(ns, name, pod_facts(meta, &spec)),
        // RBAC is read by `audit tenants`, not by admission decisions.
        (RBAC_GROUP, "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding") => {}
        (group, kind) => {
            let parents = policy.parent_kinds();
            let parent = parents.iter().find(|p| p.group == group && p.kind == kind);
            let parent = parent.ok_or_else(|| err(format!("unsupported kind {}", types.kind)))?;
            view.upsert_parent(parent, ns, name, parent_meta(policy, meta));
        }
    }
    Ok(())
}
