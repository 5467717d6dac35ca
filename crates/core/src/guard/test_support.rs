//! Builders for readable decision tests: reviews are built as the JSON the
//! apiserver sends, then decoded by the real decoder.

use serde_json::{Value, json};

use crate::identity::CREDENTIAL_ID;

use crate::guard::ownership::{
    ARGO_TRACKING_ID, HELM_NAME, HELM_NAMESPACE, KUSTOMIZE_NAME, KUSTOMIZE_NAMESPACE,
};

pub const ALICE: &str = "alice";
pub const KUSTOMIZE: &str = "system:serviceaccount:flux-system:kustomize-controller";
pub const HELM: &str = "system:serviceaccount:flux-system:helm-controller";
pub const ARGO: &str = "system:serviceaccount:argocd:argocd-application-controller";
pub const GC: &str = "system:serviceaccount:kube-system:generic-garbage-collector";
pub const NS_CONTROLLER: &str = "system:serviceaccount:kube-system:namespace-controller";
pub const HPA: &str = "system:serviceaccount:kube-system:horizontal-pod-autoscaler";
pub const SOURCE: &str = "system:serviceaccount:flux-system:source-controller";
/// A CI pipeline's token: a service account, no reconciler.
pub const CI: &str = "system:serviceaccount:ci:deployer";

/// (identity, namespace, Pod, Pod uid) of the controllers' Pods.
pub const CONTROLLER_PODS: [(&str, &str, &str, &str); 4] = [
    (KUSTOMIZE, "flux-system", "kustomize-controller-0", "uid-kc"),
    (HELM, "flux-system", "helm-controller-0", "uid-hc"),
    (SOURCE, "flux-system", "source-controller-0", "uid-sc"),
    (ARGO, "argocd", "argocd-application-controller-0", "uid-ac"),
];

/// Puts the controllers' Pods in a view, so their bound tokens check out.
pub fn controller_pods(view: &mut crate::cluster::view::ClusterView) {
    for (user, ns, pod, uid) in CONTROLLER_PODS {
        let account = user.rsplit(':').next().unwrap_or_default();
        view.identities.upsert_pod(
            ns.into(),
            pod.into(),
            crate::cluster::identities::PodFacts {
                uid: uid.into(),
                service_account: account.into(),
            },
        );
    }
}

/// Object metadata under construction.
#[derive(Clone, Default)]
pub struct Obj {
    labels: serde_json::Map<String, Value>,
    annotations: serde_json::Map<String, Value>,
    finalizers: Vec<String>,
    spec: Option<Value>,
    webhook: Option<(String, String)>,
    /// The controller reference: (apiVersion, kind, name, uid).
    controller: Option<[String; 4]>,
}

pub fn obj() -> Obj {
    Obj::default()
}

impl Obj {
    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.labels.insert(k.into(), v.into());
        self
    }

    pub fn annotation(mut self, k: &str, v: &str) -> Self {
        self.annotations.insert(k.into(), v.into());
        self
    }

    pub fn owned_by_kustomization(self, ns: &str, name: &str) -> Self {
        self.label(KUSTOMIZE_NAME, name)
            .label(KUSTOMIZE_NAMESPACE, ns)
    }

    pub fn owned_by_helm_release(self, ns: &str, name: &str) -> Self {
        self.label(HELM_NAME, name).label(HELM_NAMESPACE, ns)
    }

    pub fn tracked_by_argo(self, app: &str) -> Self {
        self.annotation(ARGO_TRACKING_ID, &format!("{app}:apps/Deployment:prod/web"))
    }

    /// Controlled by Service `web` (uid `1`).
    pub fn controlled(self) -> Self {
        self.controlled_by("v1", "Service", "web", "1")
    }

    pub fn controlled_by(mut self, api_version: &str, kind: &str, name: &str, uid: &str) -> Self {
        self.controller = Some([api_version, kind, name, uid].map(str::to_owned));
        self
    }

    pub fn finalizer(mut self, f: &str) -> Self {
        self.finalizers.push(f.into());
        self
    }

    pub fn with_spec(mut self, spec: Value) -> Self {
        self.spec = Some(spec);
        self
    }

    /// A webhook configuration's one webhook, with one `clientConfig` field.
    pub fn with_webhook(mut self, field: &str, value: &str) -> Self {
        self.webhook = Some((field.into(), value.into()));
        self
    }

    fn to_json(&self) -> Value {
        let refs = match &self.controller {
            Some([api_version, kind, name, uid]) => json!([{"apiVersion": api_version,
                "kind": kind, "name": name, "uid": uid, "controller": true}]),
            None => Value::Null,
        };
        let finalizers = match self.finalizers.as_slice() {
            [] => Value::Null,
            some => json!(some),
        };
        let spec = self.spec.clone().unwrap_or_else(|| json!({"replicas": 1}));
        let mut object = json!({"metadata": {"name": "web", "namespace": "prod", "labels": self.labels,
               "annotations": self.annotations, "ownerReferences": refs, "finalizers": finalizers},
               "spec": spec});
        if let Some((field, value)) = &self.webhook {
            object["webhooks"] = json!([{"name": "w", "clientConfig": {field: value}}]);
        }
        object
    }
}

/// An AdmissionReview under construction.
pub struct Rev {
    request: Value,
}

impl Rev {
    pub fn new(op: &str, kind: &str, resource: &str) -> Self {
        let group = if kind == "Deployment" { "apps" } else { "" };
        Rev {
            request: json!({
                "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                "kind": {"group": group, "version": "v1", "kind": kind},
                "resource": {"group": group, "version": "v1", "resource": resource},
                "name": "web", "namespace": "prod", "operation": op,
                "userInfo": {"username": ALICE, "groups": ["developers", "system:authenticated"]},
                "object": null, "oldObject": null, "dryRun": false,
            }),
        }
    }

    pub fn create() -> Self {
        Self::new("CREATE", "Deployment", "deployments")
    }

    pub fn update() -> Self {
        Self::new("UPDATE", "Deployment", "deployments")
    }

    pub fn delete() -> Self {
        Self::new("DELETE", "Deployment", "deployments")
    }

    pub fn scale() -> Self {
        let mut r = Self::new("UPDATE", "Deployment", "deployments").sub("scale");
        r.request["kind"] = json!({"group": "autoscaling", "version": "v1", "kind": "Scale"});
        r
    }

    pub fn sub(mut self, sub: &str) -> Self {
        self.request["subResource"] = sub.into();
        self
    }

    /// The request comes from `user`; a controller identity comes with a
    /// token bound to its Pod (see `controller_pods`), as in a real cluster.
    pub fn by(self, user: &str) -> Self {
        let pod = CONTROLLER_PODS.iter().find(|(u, ..)| *u == user);
        let mut rev = self.by_unbound(user);
        if let Some((_, _, name, uid)) = pod {
            let extra = &mut rev.request["userInfo"]["extra"];
            extra["authentication.kubernetes.io/pod-name"] = json!([name]);
            extra["authentication.kubernetes.io/pod-uid"] = json!([uid]);
        }
        rev
    }

    /// The request comes from `user` with no Pod-bound token: for a service
    /// account, a token from the TokenRequest API as kube-controller-manager
    /// gets them (credential id `JTI=…`, the account's groups).
    pub fn by_unbound(mut self, user: &str) -> Self {
        self.request["userInfo"]["username"] = user.into();
        self.request["userInfo"]["extra"] = json!({});
        if let Some(namespace) = user
            .strip_prefix("system:serviceaccount:")
            .and_then(|rest| rest.split(':').next())
        {
            self.request["userInfo"]["extra"][CREDENTIAL_ID] =
                json!(["JTI=6f1e0c1a-0b4e-4c55-9d3e-2f6c0a1b2c3d"]);
            self.request["userInfo"]["groups"] = json!([
                "system:serviceaccounts",
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated"
            ]);
        }
        self
    }

    /// `kubectl --as=USER` by someone RBAC lets impersonate: the apiserver
    /// adds a service account's groups, and no credential id.
    pub fn by_impersonation(self, user: &str) -> Self {
        let mut rev = self.by_unbound(user);
        rev.request["userInfo"]["extra"] = json!({});
        rev
    }

    /// A client certificate whose common name is `user`.
    pub fn by_certificate(mut self, user: &str) -> Self {
        self.request["userInfo"]["username"] = user.into();
        self.request["userInfo"]["groups"] = json!(["system:authenticated"]);
        self.request["userInfo"]["extra"] = json!({CREDENTIAL_ID: ["X509SHA256=0a016b6c2ff14c54"]});
        self
    }

    pub fn extra(mut self, key: &str, value: &str) -> Self {
        self.request["userInfo"]["extra"][key] = json!([value]);
        self
    }

    pub fn kind(mut self, group: &str, kind: &str, resource: &str) -> Self {
        self.request["kind"] = json!({"group": group, "version": "v1", "kind": kind});
        self.request["resource"] = json!({"group": group, "version": "v1", "resource": resource});
        self
    }

    /// The new object's `spec`, for Flux objects.
    pub fn spec(mut self, spec: Value) -> Self {
        self.request["object"]["spec"] = spec;
        self
    }

    /// The new object's labels (a Namespace's tenant label).
    pub fn new_labels(mut self, labels: Value) -> Self {
        self.request["object"]["metadata"]["labels"] = labels;
        self
    }

    pub fn old_labels(mut self, labels: Value) -> Self {
        self.request["oldObject"]["metadata"]["labels"] = labels;
        self
    }

    pub fn groups(mut self, groups: &[&str]) -> Self {
        self.request["userInfo"]["groups"] = json!(groups);
        self
    }

    pub fn named(mut self, name: &str) -> Self {
        self.request["name"] = name.into();
        self
    }

    pub fn namespace(mut self, ns: &str) -> Self {
        self.request["namespace"] = ns.into();
        self
    }

    pub fn old(mut self, o: Obj) -> Self {
        self.request["oldObject"] = o.to_json();
        self
    }

    pub fn new_obj(mut self, o: Obj) -> Self {
        self.request["object"] = o.to_json();
        self
    }

    /// UPDATE with the same object before and after.
    pub fn both(self, o: Obj) -> Self {
        self.old(o.clone()).new_obj(o)
    }

    pub fn field_manager(mut self, fm: &str) -> Self {
        self.request["options"] = json!({"kind": "UpdateOptions", "fieldManager": fm});
        self
    }

    pub fn dry_run(mut self) -> Self {
        self.request["dryRun"] = true.into();
        self
    }

    pub fn body(&self) -> Vec<u8> {
        let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": self.request});
        serde_json::to_vec(&review).unwrap_or_default()
    }
}
