//! The bypass matrix: ways around the guard tried against the real
//! apiserver. Each scenario is one attack by alice (a person with write
//! rights everywhere) and what stops it; SECURITY.md lists them with results.

use super::cluster::{
    Cluster, Outcome, argo_apply, argo_configmap, flux_apply, flux_deployment, patch_web_status,
};

/// A namespace with a Flux-owned Deployment `web` in it.
fn owned(c: &Cluster, ns: &str, labels: &[&str]) -> Result<String, String> {
    let ns = c.namespace(ns, labels)?;
    flux_apply(c, &flux_deployment(&ns, 1))?;
    Ok(ns)
}

fn get(c: &Cluster, ns: &str, what: &str, path: &str) -> String {
    let jsonpath = format!("-o=jsonpath={path}");
    c.kubectl("admin", &["get", what, "-n", ns, &jsonpath])
        .stdout
        .trim()
        .to_owned()
}

fn expect(what: &str, got: String, want: &str) -> Outcome {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: {got:?}, expected {want:?}"))
    }
}

const RECONCILE: &str = "{.metadata.annotations.kustomize\\.toolkit\\.fluxcd\\.io/reconcile}";

pub fn a_status_write_changes_no_spec_and_cannot_disable_reconciliation(c: &Cluster) -> Outcome {
    let ns = owned(c, "e2e-bypass-status", &[])?;
    let status = |who: &str, patch: &str| patch_web_status(c, who, &ns, patch);
    // The apiserver drops spec from a status write: it passes, and changes nothing.
    status(
        "alice",
        r#"{"spec":{"replicas":9},"status":{"observedGeneration":1}}"#,
    )
    .allowed("status write carrying a spec change")?;
    expect(
        "replicas",
        get(c, &ns, "deployment/web", "{.spec.replicas}"),
        "1",
    )?;
    // Metadata survives a status write, so the escape hatch is judged.
    let disable =
        r#"{"metadata":{"annotations":{"kustomize.toolkit.fluxcd.io/reconcile":"disabled"}}}"#;
    status("alice", disable)
        .denied("reconcile=disabled through /status")?
        .mentions("kustomize.toolkit.fluxcd.io/reconcile")?;
    expect(
        "annotation after the denial",
        get(c, &ns, "deployment/web", RECONCILE),
        "",
    )?;
    // The same write by the reconciler lands: the path is real.
    status("kustomize-controller", disable).allowed("the reconciler's status write")?;
    expect(
        "annotation",
        get(c, &ns, "deployment/web", RECONCILE),
        "disabled",
    )
}

pub fn kubectl_debug_on_an_owned_pod_is_denied(c: &Cluster) -> Outcome {
    let ns = c.namespace("e2e-bypass-debug", &["gitops-guard.io/pin-images=off"])?;
    let pod = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bare\n  namespace: {ns}\n  labels:\n    \
         kustomize.toolkit.fluxcd.io/name: apps\n    kustomize.toolkit.fluxcd.io/namespace: flux-system\n\
         spec:\n  containers: [{{name: app, image: nginx:1.27}}]\n"
    );
    flux_apply(c, &pod)?;
    let debug = [
        "debug",
        "pod/bare",
        "-n",
        &ns,
        "--image=busybox:1.36",
        "-c",
        "shell",
    ];
    c.kubectl("alice", &debug)
        .denied("an ephemeral container in an owned Pod")?
        .mentions("Flux Kustomization flux-system/apps")?;
    expect(
        "ephemeral containers",
        get(c, &ns, "pod/bare", "{.spec.ephemeralContainers}"),
        "",
    )
}

pub fn deleting_the_whole_collection_spares_owned_objects(c: &Cluster) -> Outcome {
    let ns = c.namespace("e2e-bypass-collection", &[])?;
    let cm = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: owned\n  namespace: {ns}\n  labels:\n    \
         kustomize.toolkit.fluxcd.io/name: apps\n    kustomize.toolkit.fluxcd.io/namespace: flux-system\n"
    );
    flux_apply(c, &cm)?;
    c.kubectl("alice", &["create", "configmap", "mine", "-n", &ns])
        .allowed("an unowned ConfigMap")?;
    // One DELETE on the collection URL: the apiserver admits item by item,
    // each review naming the item and carrying it as oldObject, so the
    // denial names the object.
    let url = format!("/api/v1/namespaces/{ns}/configmaps");
    c.kubectl("alice", &["delete", "--raw", &url])
        .denied("DeleteCollection")?
        .mentions(&format!(
            "ConfigMap {ns}/owned is managed by Flux Kustomization"
        ))?;
    expect(
        "owned",
        get(c, &ns, "configmap/owned", "{.metadata.name}"),
        "owned",
    )?;
    // A grant narrowed to that kind and name covers the collection's item.
    let expires = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(120);
    let grant = format!(
        "apiVersion: gitops-guard.io/v1alpha1\nkind: BreakGlass\nmetadata: {{name: cleanup, namespace: {ns}}}\n\
         spec:\n  subjects: [{{kind: User, name: alice}}]\n  reason: INC-9 cleanup\n  expiresAt: \"{}\"\n  \
         kinds: [ConfigMap]\n  names: [owned]\n",
        expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    );
    c.kubectl_stdin("admin", &["apply", "-f", "-"], &grant)
        .allowed("a BreakGlass for configmap/owned")?;
    super::cluster::eventually(std::time::Duration::from_secs(10), || {
        c.kubectl("alice", &["delete", "--raw", &url])
            .allowed("DeleteCollection under the grant")?;
        Ok(())
    })?;
    let gone = c.kubectl("admin", &["get", "configmap", "owned", "-n", &ns]);
    if gone.stderr.contains("NotFound") {
        Ok(())
    } else {
        Err("configmap/owned survived the granted DeleteCollection".into())
    }
}

pub fn a_human_server_side_apply_with_force_conflicts_is_denied(c: &Cluster) -> Outcome {
    let ns = owned(c, "e2e-bypass-force", &[])?;
    let apply = ["apply", "--server-side", "--force-conflicts", "-f", "-"];
    c.kubectl_stdin("alice", &apply, &flux_deployment(&ns, 8))
        .denied("server-side apply --force-conflicts")?;
    expect(
        "replicas",
        get(c, &ns, "deployment/web", "{.spec.replicas}"),
        "1",
    )
}

pub fn removing_the_argo_cd_tracking_annotation_is_denied(c: &Cluster) -> Outcome {
    let ns = c.namespace("e2e-bypass-argo", &[])?;
    argo_apply(c, &argo_configmap(&ns))?;
    let strip = [
        "annotate",
        "configmap/shop",
        "-n",
        &ns,
        "argocd.argoproj.io/tracking-id-",
    ];
    c.kubectl("alice", &strip)
        .denied("removing the tracking annotation")?
        .mentions("Argo CD Application argocd/shop")?;
    Ok(())
}

pub fn only_the_reconciler_may_downgrade_an_owned_namespace_to_warn(c: &Cluster) -> Outcome {
    let ns = "e2e-bypass-mode";
    let namespace = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n  labels:\n    \
         kustomize.toolkit.fluxcd.io/name: apps\n    kustomize.toolkit.fluxcd.io/namespace: flux-system\n"
    );
    flux_apply(c, &namespace)?;
    let warn = ["label", "namespace", ns, "gitops-guard.io/mode=warn"];
    c.kubectl("alice", &warn)
        .denied("alice sets mode=warn")?
        .mentions("Flux Kustomization flux-system/apps")?;
    let mode = "{.metadata.labels.gitops-guard\\.io/mode}";
    expect(
        "mode after the denial",
        get(c, ns, &format!("namespace/{ns}"), mode),
        "",
    )?;
    let from_git = namespace.replace(
        "flux-system\n",
        "flux-system\n    gitops-guard.io/mode: warn\n",
    );
    flux_apply(c, &from_git)?;
    expect(
        "mode from Git",
        get(c, ns, &format!("namespace/{ns}"), mode),
        "warn",
    )
}

/// The guard's own installation, when Git owns it: admission sees it
/// (self.gitops-guard.io, failurePolicy Ignore) and judges it like any other.
pub fn the_guards_own_owned_deployment_cannot_be_scaled_edited_or_deleted_by_hand(
    c: &Cluster,
) -> Outcome {
    let ns = "gitops-guard";
    let _ = c.kubectl("admin", &["create", "namespace", ns]);
    let deployment = flux_deployment(ns, 1).replace("name: web\n", "name: e2e-self\n");
    flux_apply(c, &deployment)?;
    c.kubectl(
        "alice",
        &["scale", "deployment/e2e-self", "-n", ns, "--replicas=0"],
    )
    .denied("scaling the guard to zero")?;
    let patch =
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"evil:1"}]}}}}"#;
    c.kubectl(
        "alice",
        &[
            "patch",
            "deployment/e2e-self",
            "-n",
            ns,
            "--type=strategic",
            "-p",
            patch,
        ],
    )
    .denied("patching the guard's image")?;
    c.kubectl("alice", &["delete", "deployment/e2e-self", "-n", ns])
        .denied("deleting the guard")?;
    let service = "apiVersion: v1\nkind: Service\nmetadata:\n  name: e2e-self\n  namespace: gitops-guard\n  labels:\n    \
         kustomize.toolkit.fluxcd.io/name: apps\n    kustomize.toolkit.fluxcd.io/namespace: flux-system\n\
         spec:\n  ports: [{port: 443, targetPort: 8443}]\n  selector: {app: web}\n";
    flux_apply(c, service)?;
    let repoint = r#"{"spec":{"selector":{"app":"impostor"}}}"#;
    c.kubectl(
        "alice",
        &[
            "patch",
            "service/e2e-self",
            "-n",
            ns,
            "--type=merge",
            "-p",
            repoint,
        ],
    )
    .denied("repointing the guard's Service")?;
    c.kubectl(
        "kustomize-controller",
        &["delete", "deployment/e2e-self", "-n", ns],
    )
    .allowed("the reconciler prunes it")?;
    c.kubectl(
        "kustomize-controller",
        &["delete", "service/e2e-self", "-n", ns],
    )
    .allowed("the reconciler prunes the Service")?;
    Ok(())
}

/// An owned ConfigMap `name` in `ns`, applied as Flux, with `extra` YAML
/// lines under metadata.
fn owned_configmap(c: &Cluster, ns: &str, name: &str, extra: &str) -> Outcome {
    let cm = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n    \
         kustomize.toolkit.fluxcd.io/name: apps\n    kustomize.toolkit.fluxcd.io/namespace: flux-system\n{extra}"
    );
    flux_apply(c, &cm).map(|_| ())
}

/// The built-in `edit` and `admin` roles carry `impersonate` on service
/// accounts: alice, with that in kube-system, poses as the garbage
/// collector. The real garbage collector (kube-controller-manager with
/// `--use-service-account-credentials`, a TokenRequest token) still passes.
pub fn posing_as_the_garbage_collector_is_denied_and_the_real_one_passes(c: &Cluster) -> Outcome {
    let ns = owned(c, "e2e-bypass-gc", &[])?;
    // The deployment controller does its job on an owned Deployment: it
    // sets the revision annotation (through /status).
    super::cluster::eventually(std::time::Duration::from_secs(20), || {
        let path = "{.metadata.annotations.deployment\\.kubernetes\\.io/revision}";
        expect("revision", get(c, &ns, "deployment/web", path), "1")
    })?;
    c.alice_edit_in("kube-system")?;
    let gc = "--as=system:serviceaccount:kube-system:generic-garbage-collector";
    c.kubectl(
        "alice",
        &[
            "set",
            "image",
            "deployment/web",
            "web=nginx:evil",
            "-n",
            &ns,
            gc,
        ],
    )
    .denied("set image as the garbage collector")?;
    c.kubectl(
        "alice",
        &[
            "label",
            "deployment/web",
            "-n",
            &ns,
            "kustomize.toolkit.fluxcd.io/name-",
            gc,
        ],
    )
    .denied("strip the ownership label as the garbage collector")?;
    c.kubectl(
        "alice",
        &["delete", "deployment/web", "-n", &ns, "--wait=false", gc],
    )
    .denied("delete as the garbage collector")?;
    // The real one: delete the owner of an owned dependent.
    c.kubectl("admin", &["create", "configmap", "parent", "-n", &ns])
        .allowed("the parent")?;
    let uid = get(c, &ns, "configmap/parent", "{.metadata.uid}");
    let owner_ref = format!(
        "  ownerReferences: [{{apiVersion: v1, kind: ConfigMap, name: parent, uid: {uid}}}]\n"
    );
    owned_configmap(c, &ns, "dependent", &owner_ref)?;
    c.kubectl("admin", &["delete", "configmap", "parent", "-n", &ns])
        .allowed("delete the parent")?;
    super::cluster::eventually(std::time::Duration::from_secs(60), || {
        let out = c.kubectl("admin", &["get", "configmap", "dependent", "-n", &ns]);
        if out.stderr.contains("NotFound") {
            Ok(())
        } else {
            Err("the garbage collector has not deleted the owned dependent".into())
        }
    })?;
    c.kubectl(
        "admin",
        &["delete", "rolebinding", "alice-edit", "-n", "kube-system"],
    )
    .allowed("remove alice's edit in kube-system")?;
    Ok(())
}

/// The apiserver keeps label and annotation changes made through a
/// Service's `/status` (and an Ingress's): such a write is judged like any
/// change, not waved through as a status write.
pub fn an_annotation_changed_through_status_is_judged_like_any_change(c: &Cluster) -> Outcome {
    let ns = c.namespace("e2e-bypass-status-meta", &[])?;
    let svc = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: {ns}\n  labels:\n    \
         kustomize.toolkit.fluxcd.io/name: apps\n    kustomize.toolkit.fluxcd.io/namespace: flux-system\n  \
         annotations: {{auth: required}}\nspec:\n  ports: [{{port: 80}}]\n  selector: {{app: web}}\n"
    );
    flux_apply(c, &svc)?;
    let patch = r#"{"metadata":{"annotations":{"auth":null}}}"#;
    c.kubectl(
        "alice",
        &[
            "patch",
            "service/web",
            "-n",
            &ns,
            "--subresource=status",
            "--type=merge",
            "-p",
            patch,
        ],
    )
    .denied("dropping an annotation through /status")?
    .mentions("Flux Kustomization flux-system/apps")?;
    expect(
        "the annotation",
        get(c, &ns, "service/web", "{.metadata.annotations.auth}"),
        "required",
    )
}
