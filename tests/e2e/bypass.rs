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
    // One DELETE on the collection URL: the apiserver admits item by item.
    let url = format!("/api/v1/namespaces/{ns}/configmaps");
    c.kubectl("alice", &["delete", "--raw", &url])
        .denied("DeleteCollection")?;
    expect(
        "owned",
        get(c, &ns, "configmap/owned", "{.metadata.name}"),
        "owned",
    )
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
