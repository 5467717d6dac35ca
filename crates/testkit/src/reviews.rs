//! AdmissionReviews for the benchmarks, shaped like the apiserver's.

use serde_json::{Value, json};

pub fn metadata(ns: &str) -> Value {
    json!({"name": "web", "namespace": ns, "uid": "3f1c6f1e-2b1a-4c55-9d7e-0c1b2a3d4e5f", "resourceVersion": "4711",
           "labels": {"app": "web", "kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"},
           "annotations": {"deployment.kubernetes.io/revision": "3"}})
}

/// A Deployment with two containers of `vars` env vars each, probes and managedFields.
pub fn deployment(vars: usize, image: &str) -> Value {
    let env: Vec<Value> = (0..vars)
        .map(|i| json!({"name": format!("SETTING_{i}"), "value": format!("value-{i}-{}", "v".repeat(40))}))
        .collect();
    let container = |n: usize| {
        json!({"name": format!("c{n}"), "image": image, "env": env,
        "ports": [{"containerPort": 8080, "protocol": "TCP"}], "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 5}})
    };
    let mut meta = metadata("prod");
    meta["managedFields"] = json!([{"manager": "kustomize-controller", "operation": "Apply", "apiVersion": "apps/v1",
        "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {}}}}}}]);
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
           "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container(0), container(1)]}}}})
}

/// Who sends a review: a username, its groups and `userInfo.extra`.
pub struct Sender<'a> {
    pub user: &'a str,
    pub groups: &'a [&'a str],
    pub extra: Value,
}

pub fn alice() -> Sender<'static> {
    Sender {
        user: "alice",
        groups: &["developers", "system:authenticated"],
        extra: json!({}),
    }
}

/// kustomize-controller with a token bound to its Pod (as in cluster-state.yaml).
pub fn kustomize_controller() -> Sender<'static> {
    Sender {
        user: "system:serviceaccount:flux-system:kustomize-controller",
        groups: &[
            "system:serviceaccounts",
            "system:serviceaccounts:flux-system",
            "system:authenticated",
        ],
        extra: json!({"authentication.kubernetes.io/pod-name": ["kustomize-controller-5f8c7d9b6-q2x7m"],
                      "authentication.kubernetes.io/pod-uid": ["6c1f0a52-3b1e-4d8e-9a57-0c7d2e9b1a01"]}),
    }
}

/// An UPDATE (object twice) or CREATE (`old` = false) review of `object`.
pub fn review(
    object: &Value,
    kind: &str,
    resource: &str,
    update: bool,
    who: &Sender<'_>,
) -> Vec<u8> {
    let group = if kind == "Deployment" { "apps" } else { "" };
    let (op, old, options) = if update {
        (
            "UPDATE",
            object.clone(),
            json!({"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl-edit"}),
        )
    } else {
        (
            "CREATE",
            Value::Null,
            json!({"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}),
        )
    };
    let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": {"group": group, "version": "v1", "kind": kind}, "resource": {"group": group, "version": "v1", "resource": resource},
        "name": "web", "namespace": "prod", "operation": op,
        "userInfo": {"username": who.user, "groups": who.groups, "extra": who.extra},
        "object": object, "oldObject": old, "dryRun": false, "options": options}});
    serde_json::to_vec(&body).unwrap_or_default()
}
