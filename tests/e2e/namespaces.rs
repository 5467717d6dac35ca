//! Owned Namespaces: the labels that switch the guard off for a namespace
//! are themselves guarded when Git owns the Namespace.

use super::cluster::{Cluster, Outcome, flux_apply};

fn flux_namespace(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels:\n    \
         kustomize.toolkit.fluxcd.io/name: apps\n    kustomize.toolkit.fluxcd.io/namespace: flux-system\n"
    )
}

pub fn labelling_an_owned_namespace_out_of_the_guard_is_denied(c: &Cluster) -> Outcome {
    let ns = "e2e-owned-ns";
    flux_apply(c, &flux_namespace(ns))?;
    c.kubectl(
        "alice",
        &["label", "namespace", ns, "gitops-guard.io/exclude=true"],
    )
    .denied("exclude label on an owned Namespace")?
    .mentions("Flux Kustomization flux-system/apps")?;
    c.kubectl(
        "alice",
        &["label", "namespace", ns, "gitops-guard.io/mode=audit"],
    )
    .denied("mode label on an owned Namespace")?;
    let labels = c.kubectl("admin", &["get", "namespace", ns, "--show-labels"]);
    if labels.stdout.contains("gitops-guard.io/") {
        return Err(format!("a guard label got through:\n{}", labels.stdout));
    }
    Ok(())
}
