//! Digest pinning through the real apiserver: the mutating webhook against
//! the two registries scripts/up.sh runs (plain, and htpasswd).

use std::time::Duration;

use super::cluster::{Cluster, FLUX_APPLY, Outcome, eventually};
use super::registry::Registry;

/// A registry of the run: `plain` or `auth` (htpasswd user puller).
fn registry(c: &Cluster, which: &str) -> Result<Registry, String> {
    let env = std::fs::read_to_string(c.run.join("registries.env")).map_err(|e| e.to_string())?;
    let value = |key: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(str::to_owned)
            .ok_or_else(|| format!("{key} missing from registries.env"))
    };
    let log = c.run.join("logs").join(format!("registry-{which}.log"));
    match which {
        "plain" => Registry::existing(&value("PLAIN_REGISTRY")?, None, &log),
        _ => {
            let (user, password) = (
                value("AUTH_REGISTRY_USER")?,
                value("AUTH_REGISTRY_PASSWORD")?,
            );
            Registry::existing(&value("AUTH_REGISTRY")?, Some((&user, &password)), &log)
        }
    }
}

fn deployment(ns: &str, name: &str, image: &str, extra: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  replicas: 1\n  \
         selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    \
         spec:\n      {extra}containers: [{{name: app, image: \"{image}\"}}]\n"
    )
}

fn image_of(c: &Cluster, ns: &str, what: &str, path: &str) -> String {
    let jsonpath = format!("-o=jsonpath={{{path}}}");
    c.kubectl("admin", &["get", what, "-n", ns, &jsonpath])
        .stdout
}

pub fn a_deployment_in_a_pin_namespace_gets_the_served_digest_and_a_moved_tag_after_the_ttl(
    c: &Cluster,
) -> Outcome {
    let ns = c.namespace("e2e-pin", &["gitops-guard.io/pin-images=pin"])?;
    let reg = registry(c, "plain")?;
    let first = reg.push("e2e/app", "1.0", "first")?;
    let image = format!("{}/e2e/app:1.0", reg.addr());
    c.kubectl_stdin(
        "admin",
        &["apply", "-f", "-"],
        &deployment(&ns, "web", &image, ""),
    )
    .allowed("create the Deployment")?;
    let template = ".spec.template.spec.containers[0].image";
    let got = image_of(c, &ns, "deployment/web", template);
    if got != format!("{image}@{first}") {
        return Err(format!(
            "Deployment image {got:?}, expected {image}@{first}"
        ));
    }
    // The ReplicaSet controller's Pods carry the same digest.
    eventually(Duration::from_secs(20), || {
        let pods = image_of(c, &ns, "pods", ".items[*].spec.containers[0].image");
        if pods == format!("{image}@{first}") {
            Ok(())
        } else {
            Err(format!("pods: {pods:?}"))
        }
    })?;
    let moved = reg.push("e2e/app", "1.0", "second")?;
    // The local policy's TTL is 3 s, counted from the first resolution
    // (before the push). A dry run cannot show when it has passed any more:
    // it answers from the cache alone and never asks the registry.
    std::thread::sleep(Duration::from_secs(4));
    c.kubectl_stdin(
        "admin",
        &["apply", "-f", "-"],
        &deployment(&ns, "web2", &image, ""),
    )
    .allowed("create the second Deployment")?;
    let second = image_of(c, &ns, "deployment/web2", template);
    if second != format!("{image}@{moved}") {
        return Err(format!(
            "after the tag moved: {second:?}, expected {image}@{moved}"
        ));
    }
    Ok(())
}

pub fn kubectl_debug_ephemeral_containers_are_pinned(c: &Cluster) -> Outcome {
    let ns = c.namespace("e2e-debug", &["gitops-guard.io/pin-images=pin"])?;
    let reg = registry(c, "plain")?;
    let digest = reg.push("e2e/debug", "1", "dbg")?;
    let pod = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: target, namespace: {ns}}}\nspec:\n  containers: [{{name: app, image: \"{}/e2e/debug:1\"}}]\n",
        reg.addr()
    );
    c.kubectl_stdin("admin", &["apply", "-f", "-"], &pod)
        .allowed("create the Pod")?;
    let image = format!("{}/e2e/debug:1", reg.addr());
    c.kubectl(
        "admin",
        &[
            "debug",
            "pod/target",
            "-n",
            &ns,
            "--image",
            &image,
            "-c",
            "debugger",
        ],
    )
    .allowed("kubectl debug")?;
    let got = image_of(c, &ns, "pod/target", ".spec.ephemeralContainers[0].image");
    if got != format!("{image}@{digest}") {
        return Err(format!(
            "ephemeral container image {got:?}, expected {image}@{digest}"
        ));
    }
    Ok(())
}

pub fn a_registry_that_is_down_warns_in_pin_and_is_denied_in_require(c: &Cluster) -> Outcome {
    let pin = c.namespace("e2e-down-pin", &["gitops-guard.io/pin-images=pin"])?;
    let require = c.namespace("e2e-down-require", &["gitops-guard.io/pin-images=require"])?;
    // Nothing listens on port 1.
    let image = "127.0.0.1:1/e2e/gone:1";
    c.kubectl_stdin(
        "admin",
        &["apply", "-f", "-"],
        &deployment(&pin, "web", image, ""),
    )
    .allowed("pin mode lets it through")?
    .mentions("Warning: gitops-guard: not pinned, left as written")?
    .mentions("cannot reach 127.0.0.1:1")?;
    c.kubectl_stdin(
        "admin",
        &["apply", "-f", "-"],
        &deployment(&require, "web", image, ""),
    )
    .denied("require mode")?
    .mentions("requires images pinned to a digest")?
    .mentions(image)?
    .mentions("cannot reach 127.0.0.1:1")?;
    Ok(())
}

pub fn the_htpasswd_registry_resolves_with_the_right_pull_secret_and_fails_clearly_with_a_wrong_one(
    c: &Cluster,
) -> Outcome {
    let ns = c.namespace("e2e-private", &["gitops-guard.io/pin-images=require"])?;
    let reg = registry(c, "auth")?;
    let digest = reg.push("e2e/private", "v1", "private")?;
    let env = std::fs::read_to_string(c.run.join("registries.env")).map_err(|e| e.to_string())?;
    let password = env
        .lines()
        .find_map(|l| l.strip_prefix("AUTH_REGISTRY_PASSWORD="))
        .unwrap_or_default();
    for (name, pw) in [("right", password), ("wrong", "not-the-password")] {
        c.kubectl(
            "admin",
            &[
                "create",
                "secret",
                "docker-registry",
                name,
                "-n",
                &ns,
                "--docker-server",
                reg.addr(),
                "--docker-username",
                "puller",
                "--docker-password",
                pw,
            ],
        )
        .allowed("create the pull secret")?;
    }
    let image = format!("{}/e2e/private:v1", reg.addr());
    let pulls = |secret: &str| format!("imagePullSecrets: [{{name: {secret}}}]\n      ");
    c.kubectl_stdin(
        "admin",
        &["apply", "-f", "-"],
        &deployment(&ns, "ok", &image, &pulls("right")),
    )
    .allowed("the right pull secret")?;
    let got = image_of(
        c,
        &ns,
        "deployment/ok",
        ".spec.template.spec.containers[0].image",
    );
    if got != format!("{image}@{digest}") {
        return Err(format!("image {got:?}, expected {image}@{digest}"));
    }
    c.kubectl_stdin(
        "admin",
        &["apply", "-f", "-"],
        &deployment(&ns, "bad", &image, &pulls("wrong")),
    )
    .denied("the wrong pull secret")?
    .mentions("credentials for user \"puller\" were refused")?;
    Ok(())
}

pub fn a_flux_server_side_dry_run_of_the_unpinned_manifest_shows_no_drift(c: &Cluster) -> Outcome {
    let ns = c.namespace("e2e-pin-flux", &["gitops-guard.io/pin-images=pin"])?;
    let reg = registry(c, "plain")?;
    let digest = reg.push("e2e/flux", "2.0", "flux")?;
    let image = format!("{}/e2e/flux:2.0", reg.addr());
    let manifest = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: {ns}\n  labels:\n    \
         kustomize.toolkit.fluxcd.io/name: apps\n    kustomize.toolkit.fluxcd.io/namespace: flux-system\n\
         spec:\n  replicas: 1\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    \
         spec:\n      containers: [{{name: app, image: \"{image}\"}}]\n"
    );
    c.kubectl_stdin("kustomize-controller", &FLUX_APPLY, &manifest)
        .allowed("the reconciler's apply")?;
    let live = image_of(
        c,
        &ns,
        "deployment/web",
        ".spec.template.spec.containers[0].image",
    );
    if live != format!("{image}@{digest}") {
        return Err(format!("live image {live:?}"));
    }
    // What Flux's drift check does: a server-side dry-run apply of Git's
    // (unpinned) manifest, compared with the live object.
    let diff = c.kubectl_stdin(
        "kustomize-controller",
        &[
            "diff",
            "--server-side",
            "--field-manager=kustomize-controller",
            "-f",
            "-",
        ],
        &manifest,
    );
    if !diff.ok {
        return Err(format!(
            "kubectl diff reports a difference:\n{}{}",
            diff.stdout, diff.stderr
        ));
    }
    // The control: a real change in Git is a difference (kubectl diff exits 1).
    let changed = manifest.replace("replicas: 1", "replicas: 2");
    let control = c.kubectl_stdin(
        "kustomize-controller",
        &[
            "diff",
            "--server-side",
            "--field-manager=kustomize-controller",
            "-f",
            "-",
        ],
        &changed,
    );
    if control.ok || !control.stdout.contains("replicas: 2") {
        return Err(format!(
            "a replicas change should show:\n{}{}",
            control.stdout, control.stderr
        ));
    }
    Ok(())
}
