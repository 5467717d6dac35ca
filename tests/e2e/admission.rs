//! The validating webhook's acceptance list, through a real apiserver.

use super::cluster::{
    Cluster, Outcome, argo_apply, argo_configmap, flux_apply, flux_deployment, patch_web_status,
};

/// A namespace with a Flux-owned Deployment `web` in it.
fn owned(c: &Cluster, ns: &str) -> Result<String, String> {
    let ns = c.namespace(ns, &[])?;
    flux_apply(c, &flux_deployment(&ns, 1))?;
    Ok(ns)
}

pub fn a_manual_kubectl_edit_is_denied_naming_the_owner_and_the_git_path(c: &Cluster) -> Outcome {
    let ns = owned(c, "e2e-edit")?;
    let editor = [("KUBE_EDITOR", "sed -i s/replicas:\\ 1/replicas:\\ 3/")];
    let out = c.kubectl_with(
        "alice",
        &["edit", "deployment/web", "-n", &ns],
        None,
        &editor,
    );
    out.denied("kubectl edit")?
        .mentions("Flux Kustomization flux-system/apps")?
        .mentions("./apps/production from GitRepository fleet")?
        .mentions("alice may not change it")?;
    Ok(())
}

pub fn a_manual_kubectl_apply_is_denied(c: &Cluster) -> Outcome {
    let ns = owned(c, "e2e-apply")?;
    c.kubectl_stdin("alice", &["apply", "-f", "-"], &flux_deployment(&ns, 4))
        .denied("kubectl apply")?;
    Ok(())
}

pub fn a_manual_kubectl_patch_is_denied(c: &Cluster) -> Outcome {
    let ns = owned(c, "e2e-patch")?;
    let patch = r#"{"spec":{"replicas":5}}"#;
    c.kubectl(
        "alice",
        &[
            "patch",
            "deployment/web",
            "-n",
            &ns,
            "--type=merge",
            "-p",
            patch,
        ],
    )
    .denied("kubectl patch")?;
    Ok(())
}

pub fn removing_the_ownership_label_is_denied(c: &Cluster) -> Outcome {
    let ns = owned(c, "e2e-unlabel")?;
    let args = [
        "label",
        "deployment/web",
        "-n",
        &ns,
        "kustomize.toolkit.fluxcd.io/name-",
    ];
    c.kubectl("alice", &args)
        .denied("label removal")?
        .mentions("kustomize.toolkit.fluxcd.io/name")?;
    Ok(())
}

pub fn the_reconcile_disable_annotation_is_denied(c: &Cluster) -> Outcome {
    let ns = owned(c, "e2e-hatch")?;
    let args = [
        "annotate",
        "deployment/web",
        "-n",
        &ns,
        "kustomize.toolkit.fluxcd.io/reconcile=disabled",
    ];
    c.kubectl("alice", &args)
        .denied("escape-hatch annotation")?;
    Ok(())
}

pub fn a_create_claiming_flux_ownership_is_denied(c: &Cluster) -> Outcome {
    let ns = c.namespace("e2e-spoof", &[])?;
    c.kubectl_stdin("alice", &["create", "-f", "-"], &flux_deployment(&ns, 1))
        .denied("spoofed create")?
        .mentions("may not create")?;
    Ok(())
}

pub fn a_manual_delete_is_denied(c: &Cluster) -> Outcome {
    let ns = owned(c, "e2e-delete")?;
    c.kubectl(
        "alice",
        &["delete", "deployment/web", "-n", &ns, "--wait=false"],
    )
    .denied("kubectl delete")?;
    c.kubectl("admin", &["get", "deployment/web", "-n", &ns])
        .allowed("the Deployment is still there")?;
    Ok(())
}

pub fn a_forged_field_manager_is_denied(c: &Cluster) -> Outcome {
    let ns = owned(c, "e2e-forged")?;
    let args = [
        "apply",
        "--server-side",
        "--field-manager=kustomize-controller",
        "--force-conflicts",
        "-f",
        "-",
    ];
    c.kubectl_stdin("alice", &args, &flux_deployment(&ns, 6))
        .denied("forged field manager")?
        .mentions("not a credential")?;
    Ok(())
}

pub fn the_reconciler_may_change_and_prune_what_it_owns(c: &Cluster) -> Outcome {
    let ns = owned(c, "e2e-prune")?;
    flux_apply(c, &flux_deployment(&ns, 2))?;
    c.kubectl(
        "kustomize-controller",
        &["delete", "deployment/web", "-n", &ns],
    )
    .allowed("prune")?;
    Ok(())
}

pub fn kubectl_scale_is_denied_and_the_autoscaler_may_scale(c: &Cluster) -> Outcome {
    let ns = owned(c, "e2e-scale")?;
    c.kubectl(
        "alice",
        &["scale", "deployment/web", "-n", &ns, "--replicas=4"],
    )
    .denied("kubectl scale")?;
    // The autoscaler acts with a TokenRequest token of its kube-system
    // account, as kube-controller-manager's controllers do
    // (--use-service-account-credentials); like the HPA controller, it only
    // writes the scale subresource.
    let url = format!("/apis/apps/v1/namespaces/{ns}/deployments/web/scale");
    let scale = format!(
        r#"{{"kind":"Scale","apiVersion":"autoscaling/v1","metadata":{{"name":"web","namespace":"{ns}"}},"spec":{{"replicas":4}}}}"#
    );
    let args = ["replace", "--raw", &url, "-f", "-"];
    c.kubectl_as_service_account("kube-system", "horizontal-pod-autoscaler", &args, &scale)
        .allowed("autoscaler scale")?;
    // Impersonating it proves nothing: no credential id.
    let hpa = "--as=system:serviceaccount:kube-system:horizontal-pod-autoscaler";
    let args = ["replace", "--raw", &url, "-f", "-", hpa];
    c.kubectl_stdin(
        "admin",
        &args,
        &scale.replace("\"replicas\":4", "\"replicas\":5"),
    )
    .denied("impersonated autoscaler scale")?;
    Ok(())
}

pub fn status_writes_are_allowed(c: &Cluster) -> Outcome {
    let ns = owned(c, "e2e-status")?;
    let patch = r#"{"status":{"observedGeneration":1}}"#;
    patch_web_status(c, "alice", &ns, patch).allowed("status patch")?;
    Ok(())
}

pub fn helm_release_objects_belong_to_the_helm_controller(c: &Cluster) -> Outcome {
    let ns = c.namespace("e2e-helm", &[])?;
    let cm = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: redis\n  namespace: {ns}\n  labels:\n    \
         helm.toolkit.fluxcd.io/name: redis\n    helm.toolkit.fluxcd.io/namespace: {ns}\ndata: {{maxmemory: 1gb}}\n"
    );
    let apply = [
        "apply",
        "--server-side",
        "--field-manager=helm-controller",
        "-f",
        "-",
    ];
    c.kubectl_stdin("helm-controller", &apply, &cm)
        .allowed("helm-controller apply")?;
    let patch = [
        "patch",
        "configmap/redis",
        "-n",
        &ns,
        "--type=merge",
        "-p",
        r#"{"data":{"maxmemory":"9gb"}}"#,
    ];
    c.kubectl("alice", &patch)
        .denied("alice edits a HelmRelease object")?
        .mentions("Flux HelmRelease")?;
    c.kubectl("kustomize-controller", &patch)
        .denied("kustomize-controller is not its reconciler")?;
    Ok(())
}

pub fn argo_cd_tracked_objects_belong_to_the_application_controller(c: &Cluster) -> Outcome {
    let ns = c.namespace("e2e-argo", &[])?;
    argo_apply(c, &argo_configmap(&ns))?;
    let patch = [
        "patch",
        "configmap/shop",
        "-n",
        &ns,
        "--type=merge",
        "-p",
        r#"{"data":{"color":"red"}}"#,
    ];
    c.kubectl("alice", &patch)
        .denied("alice edits an Argo CD object")?
        .mentions("Argo CD Application argocd/shop")?;
    c.kubectl("argocd-application-controller", &patch)
        .allowed("Argo CD syncs")?;
    Ok(())
}

pub fn warn_mode_lets_the_edit_through_with_a_warning(c: &Cluster) -> Outcome {
    let ns = c.namespace("e2e-warn", &["gitops-guard.io/mode=warn"])?;
    flux_apply(c, &flux_deployment(&ns, 1))?;
    // The guard learns the namespace label through its watch.
    super::cluster::eventually(std::time::Duration::from_secs(10), || {
        let out = c.kubectl(
            "alice",
            &["scale", "deployment/web", "-n", &ns, "--replicas=2"],
        );
        out.allowed("scale in warn mode")?
            .mentions("Warning: gitops-guard")?;
        Ok(())
    })
}

pub fn server_dry_run_gets_the_same_decision(c: &Cluster) -> Outcome {
    let ns = owned(c, "e2e-dryrun")?;
    let patch = [
        "patch",
        "deployment/web",
        "-n",
        &ns,
        "--type=merge",
        "-p",
        r#"{"spec":{"replicas":7}}"#,
    ];
    let real = c.kubectl("alice", &patch).denied("real patch")?;
    let mut dry = patch.to_vec();
    dry.push("--dry-run=server");
    let dry = c.kubectl("alice", &dry).denied("dry-run patch")?;
    if real.stderr != dry.stderr {
        return Err(format!(
            "messages differ:\nreal: {}\ndry:  {}",
            real.stderr, dry.stderr
        ));
    }
    Ok(())
}

/// A tenant Kustomization with `spec.serviceAccountName`: Flux impersonates
/// that account, so it (and not kustomize-controller) writes the tenant's objects.
pub fn a_tenant_kustomization_is_reconciled_by_its_own_service_account(c: &Cluster) -> Outcome {
    let ns = c.namespace("e2e-tenant", &[])?;
    c.kubectl(
        "admin",
        &["create", "serviceaccount", "reconciler", "-n", &ns],
    )
    .allowed("create sa")?;
    let sa = format!("{ns}:reconciler");
    let bind = [
        "create",
        "rolebinding",
        "reconciler",
        "-n",
        &ns,
        "--clusterrole=admin",
        "--serviceaccount",
        &sa,
    ];
    c.kubectl("admin", &bind).allowed("bind sa")?;
    let ks = format!(
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {{name: apps, namespace: {ns}}}\n\
         spec: {{serviceAccountName: reconciler, path: ./tenants/{ns}, sourceRef: {{kind: GitRepository, name: tenant}}}}\n"
    );
    c.kubectl_stdin("admin", &["apply", "-f", "-"], &ks)
        .allowed("create tenant Kustomization")?;
    let cm = |data: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: {ns}\n  labels:\n    \
             kustomize.toolkit.fluxcd.io/name: apps\n    kustomize.toolkit.fluxcd.io/namespace: {ns}\ndata: {{v: \"{data}\"}}\n"
        )
    };
    let apply = [
        "apply",
        "--server-side",
        "--field-manager=kustomize-controller",
        "-f",
        "-",
    ];
    // The guard learns the Kustomization through its watch.
    super::cluster::eventually(std::time::Duration::from_secs(10), || {
        c.kubectl_as_service_account(&ns, "reconciler", &apply, &cm("1"))
            .allowed("the tenant's account applies")?;
        Ok(())
    })?;
    c.kubectl_stdin("kustomize-controller", &apply, &cm("2"))
        .denied("kustomize-controller itself for an impersonating tenant")?
        .mentions(&format!(
            "Only system:serviceaccount:{ns}:reconciler may write it"
        ))?
        .mentions(&format!("./tenants/{ns}"))?;
    Ok(())
}
