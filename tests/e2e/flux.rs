//! Real Flux through the guard: source-controller and kustomize-controller
//! built from their Go modules reconcile the fleet repository
//! (tests/e2e/fleet) from a real Git server, in enforce mode, while people use
//! kubectl. helm-controller is not served by the Go module proxy: where it
//! appears, its writes are made with its Pod-bound token as its source does
//! them (internal/reconcile/helmchart_template.go), and named a stand-in.
//!
//! These scenarios share one cluster and one repository and run in order.

use std::{path::Path, time::Duration};

use serde_json::Value;

use super::cluster::{Cluster, Outcome, eventually};

const LONG: Duration = Duration::from_secs(180);
const REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";

fn get_json(c: &Cluster, args: &[&str]) -> Result<Value, String> {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    let out = c.kubectl("admin", &all).allowed("get")?;
    serde_json::from_str(&out.stdout).map_err(|e| format!("{e}: {}", out.stdout))
}

/// The Ready condition of a Flux object: (status, message).
fn ready(c: &Cluster, kind: &str, ns: &str, name: &str) -> Result<(String, String), String> {
    let object = get_json(c, &[kind, name, "-n", ns])?;
    let conditions = object["status"]["conditions"].as_array().cloned();
    let ready = conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c["type"] == "Ready")
        .ok_or_else(|| format!("{kind} {ns}/{name} has no Ready condition yet"))?;
    let text = |k: &str| ready[k].as_str().unwrap_or_default().to_owned();
    Ok((text("status"), text("message")))
}

fn expect_ready(c: &Cluster, kind: &str, ns: &str, name: &str) -> Outcome {
    match ready(c, kind, ns, name)? {
        (status, _) if status == "True" => Ok(()),
        (status, message) => Err(format!("{kind} {ns}/{name} Ready={status}: {message}")),
    }
}

/// Waits until the Kustomization is Ready having applied `revision`.
fn applied(c: &Cluster, ns: &str, name: &str, revision: &str) -> Outcome {
    eventually(LONG, || {
        expect_ready(c, "kustomization", ns, name)?;
        let object = get_json(c, &["kustomization", name, "-n", ns])?;
        let last = object["status"]["lastAppliedRevision"]
            .as_str()
            .unwrap_or("");
        if last.ends_with(revision) {
            Ok(())
        } else {
            Err(format!(
                "Kustomization {ns}/{name} applied {last:?}, not {revision}"
            ))
        }
    })
}

/// What `flux reconcile` and a notification-controller Receiver do: a merge
/// patch of the `reconcile.fluxcd.io/requestedAt` annotation, nothing else.
fn request_reconcile(c: &Cluster, who: &str, kind: &str, ns: &str, name: &str) -> Outcome {
    let now = jiff::Timestamp::now().to_string();
    let annotation = format!("{REQUESTED_AT}={now}");
    c.kubectl(
        who,
        &["annotate", "--overwrite", kind, name, "-n", ns, &annotation],
    )
    .allowed(&format!(
        "{who} requesting a reconcile of {kind} {ns}/{name}"
    ))?;
    Ok(())
}

/// Edits the fleet's work tree, commits and pushes; the new revision.
fn commit(
    c: &Cluster,
    message: &str,
    edit: impl FnOnce(&Path) -> std::io::Result<()>,
) -> Result<String, String> {
    let work = c.run.join("git/work");
    edit(&work).map_err(|e| format!("editing the fleet: {e}"))?;
    let out = std::process::Command::new(c.root.join("scripts/flux.sh"))
        .args(["commit", &c.run.display().to_string(), message])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "commit failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn replace_in(path: &Path, from: &str, to: &str) -> std::io::Result<()> {
    let text = std::fs::read_to_string(path)?;
    if !text.contains(from) {
        return Err(std::io::Error::other(format!(
            "{from:?} not in {}",
            path.display()
        )));
    }
    std::fs::write(path, text.replacen(from, to, 1))
}

/// The fleet's revision at HEAD, then a reconcile of everything applying it.
fn sync(c: &Cluster, revision: &str, kustomizations: &[(&str, &str)]) -> Outcome {
    request_reconcile(c, "alice", "gitrepository", "flux-system", "flux-system")?;
    for (ns, name) in kustomizations {
        applied(c, ns, name, revision)?;
    }
    Ok(())
}

fn jsonpath(c: &Cluster, args: &[&str], path: &str) -> String {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    let jp = format!("-o=jsonpath={path}");
    all.push(&jp);
    let out = c.kubectl("admin", &all);
    if out.ok {
        out.stdout
    } else {
        format!("error: {}", out.stderr)
    }
}

fn expect_eq(what: &str, got: String, want: &str) -> Outcome {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: {got:?}, expected {want:?}"))
    }
}

const KUSTOMIZATIONS: [(&str, &str); 7] = [
    ("flux-system", "flux-system"),
    ("flux-system", "infrastructure"),
    ("flux-system", "apps"),
    ("flux-system", "immutable"),
    ("flux-system", "tenants"),
    ("team-a", "team-a"),
    ("team-b", "team-b"),
];

pub fn bootstrap_reaches_ready_through_the_guard_with_inventories(c: &Cluster) -> Outcome {
    eventually(LONG, || {
        for ns in ["flux-system", "team-a", "team-b"] {
            let name = if ns == "flux-system" {
                "flux-system"
            } else {
                ns
            };
            expect_ready(c, "gitrepository", ns, name)?;
        }
        KUSTOMIZATIONS
            .iter()
            .try_for_each(|(ns, name)| expect_ready(c, "kustomization", ns, name))
    })?;
    let listed = c
        .kubectl("admin", &["get", "kustomizations", "-A", "-o", "json"])
        .allowed("kubectl get kustomizations -A")?;
    let list: Value = serde_json::from_str(&listed.stdout).map_err(|e| e.to_string())?;
    for item in list["items"].as_array().cloned().unwrap_or_default() {
        let entries = item["status"]["inventory"]["entries"]
            .as_array()
            .map_or(0, Vec::len);
        if entries == 0 {
            return Err(format!("no inventory in {}", item["metadata"]["name"]));
        }
    }
    // The write that broke Flux before: source-controller's finalizer on a
    // GitRepository that the flux-system Kustomization applied.
    let repo = get_json(c, &["gitrepository", "flux-system", "-n", "flux-system"])?;
    expect_eq(
        "GitRepository flux-system's applier",
        repo["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"]
            .as_str()
            .unwrap_or("")
            .into(),
        "flux-system",
    )?;
    expect_eq(
        "its finalizers",
        repo["metadata"]["finalizers"].to_string(),
        r#"["finalizers.fluxcd.io"]"#,
    )?;
    let metrics = super::lifecycle::admin_get(c, "/metrics")?;
    let counted =
        r#"decision="allow",operation="UPDATE",reason="kind-controller",webhook="validate""#;
    if !metrics.contains(counted) {
        return Err(format!("no kind-controller allowances counted ({counted})"));
    }
    Ok(())
}

pub fn a_commit_is_applied_a_removed_object_pruned_and_an_immutable_one_recreated(
    c: &Cluster,
) -> Outcome {
    let before = jsonpath(
        c,
        &["configmap", "settings", "-n", "shop"],
        "{.metadata.uid}",
    );
    let revision = commit(
        c,
        "shop: 2 replicas; staging: drop web-config; settings level 2",
        |w| {
            replace_in(&w.join("apps/shop.yaml"), "replicas: 1", "replicas: 2")?;
            let staging = std::fs::read_to_string(w.join("apps/staging.yaml"))?;
            let kept = staging.split("---\n").next().unwrap_or_default().to_owned();
            std::fs::write(w.join("apps/staging.yaml"), kept)?;
            replace_in(
                &w.join("immutable/settings.yaml"),
                r#"level: "1""#,
                r#"level: "2""#,
            )
        },
    )?;
    sync(
        c,
        &revision,
        &[("flux-system", "apps"), ("flux-system", "immutable")],
    )?;
    expect_eq(
        "shop/web replicas",
        jsonpath(c, &["deployment", "web", "-n", "shop"], "{.spec.replicas}"),
        "2",
    )?;
    let pruned = c.kubectl(
        "admin",
        &["get", "configmap", "web-config", "-n", "staging"],
    );
    if pruned.ok {
        return Err("staging/web-config was not pruned".into());
    }
    expect_eq(
        "settings level",
        jsonpath(c, &["configmap", "settings", "-n", "shop"], "{.data.level}"),
        "2",
    )?;
    let after = jsonpath(
        c,
        &["configmap", "settings", "-n", "shop"],
        "{.metadata.uid}",
    );
    if before == after {
        return Err(format!(
            "the immutable ConfigMap was not recreated (uid {after})"
        ));
    }
    Ok(())
}

/// The real endpointslice controller copies the Flux-owned Service's labels
/// to its EndpointSlice; a CI token that copies them onto an object of its
/// own, with a controller reference to a parent that is not there, is denied.
pub fn derived_objects_pass_only_with_a_real_parent_of_the_same_owner(c: &Cluster) -> Outcome {
    let uid = jsonpath(c, &["service", "web", "-n", "shop"], "{.metadata.uid}");
    eventually(LONG, || {
        let slices = get_json(
            c,
            &[
                "endpointslices",
                "-n",
                "shop",
                "-l",
                "kubernetes.io/service-name=web",
            ],
        )?;
        let items = slices["items"].as_array().cloned().unwrap_or_default();
        let derived = items.iter().any(|s| {
            s["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"] == "apps"
                && s["metadata"]["ownerReferences"][0]["uid"] == uid.as_str()
        });
        match derived {
            true => Ok(()),
            false => Err(format!(
                "no EndpointSlice of Service shop/web (uid {uid}) with Flux's labels: {items:?}"
            )),
        }
    })?;
    let metrics = super::lifecycle::admin_get(c, "/metrics")?;
    let counted =
        r#"decision="allow",operation="CREATE",reason="derived-object",webhook="validate""#;
    if !metrics.contains(counted) {
        return Err(format!(
            "the endpointslice controller's create was not counted ({counted})"
        ));
    }
    for step in [
        vec!["create", "serviceaccount", "deployer", "-n", "shop"],
        vec![
            "create",
            "rolebinding",
            "deployer-edit",
            "-n",
            "shop",
            "--clusterrole=edit",
            "--serviceaccount=shop:deployer",
        ],
    ] {
        c.kubectl("admin", &step).allowed("the CI account")?;
    }
    let forged = |name: &str, kind: &str, uid: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: shop\n  labels:\n    \
             kustomize.toolkit.fluxcd.io/name: apps\n    kustomize.toolkit.fluxcd.io/namespace: flux-system\n  \
             ownerReferences: [{{apiVersion: v1, kind: {kind}, name: web, uid: {uid}, controller: true}}]\n\
             data: {{planted: \"yes\"}}\n"
        )
    };
    let create = |manifest: String| {
        c.kubectl_as_service_account("shop", "deployer", &["create", "-f", "-"], &manifest)
    };
    create(forged(
        "planted",
        "Service",
        "00000000-0000-0000-0000-000000000000",
    ))
    .denied("a CI token planting Flux's labels under a Service uid that does not exist")?
    .mentions("is not an object gitops-guard knows with that owner")?;
    // A reference to a kind the guard keeps no parents of proves nothing.
    create(forged("planted-2", "Secret", &uid))
        .denied("a CI token planting Flux's labels under a Secret")?
        .mentions("may not create")?;
    let metrics = super::lifecycle::admin_get(c, "/metrics")?;
    let counted =
        r#"decision="deny",operation="CREATE",reason="unknown-parent",webhook="validate""#;
    if !metrics.contains(counted) {
        return Err(format!("the forged reference was not counted ({counted})"));
    }
    Ok(())
}

pub fn a_persons_edit_is_denied_and_a_break_glass_edit_is_reverted_by_flux(c: &Cluster) -> Outcome {
    let scale = |n: &str| {
        let replicas = format!("--replicas={n}");
        c.kubectl(
            "alice",
            &["scale", "deployment/web", "-n", "shop", &replicas],
        )
    };
    scale("5")
        .denied("alice scaling a Deployment Flux applied")?
        .mentions("Flux Kustomization flux-system/apps")?
        .mentions("./apps")?;
    let expires = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(300);
    let grant = format!(
        "apiVersion: gitops-guard.io/v1alpha1\nkind: BreakGlass\nmetadata: {{name: inc-flux, namespace: shop}}\n\
         spec:\n  subjects: [{{kind: User, name: alice}}]\n  reason: INC-7 load spike\n  expiresAt: \"{}\"\n",
        expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    );
    c.kubectl_stdin("admin", &["apply", "-f", "-"], &grant)
        .allowed("create BreakGlass")?;
    let outcome = break_glass_edit_reverted(c);
    c.kubectl("admin", &["delete", "breakglass", "inc-flux", "-n", "shop"])
        .allowed("delete BreakGlass")?;
    outcome
}

fn break_glass_edit_reverted(c: &Cluster) -> Outcome {
    let scale = |n: &str| {
        let replicas = format!("--replicas={n}");
        c.kubectl(
            "alice",
            &["scale", "deployment/web", "-n", "shop", &replicas],
        )
    };
    eventually(Duration::from_secs(10), || {
        scale("5")
            .allowed("scale under break-glass")?
            .mentions("break-glass inc-flux")?;
        Ok(())
    })?;
    let base = super::drift::alertmanager(c)?;
    let web_alerts = || -> Result<Vec<Value>, String> {
        let all = super::drift::drift_alerts(&base, "shop")?;
        Ok(all
            .into_iter()
            .filter(|a| a["labels"]["name"] == "web")
            .collect())
    };
    eventually(Duration::from_secs(30), || match web_alerts()?.first() {
        Some(alert) if alert["annotations"]["changed_by"] == "alice" => Ok(()),
        Some(alert) => Err(format!("drift alert does not name alice: {alert}")),
        None => Err("no GitOpsDrift alert for shop/web".into()),
    })?;
    // Flux's own drift correction: the next reconcile takes the field back.
    request_reconcile(c, "alice", "kustomization", "flux-system", "apps")?;
    eventually(LONG, || {
        expect_eq(
            "shop/web replicas after Flux reconciled",
            jsonpath(c, &["deployment", "web", "-n", "shop"], "{.spec.replicas}"),
            "2",
        )
    })?;
    eventually(Duration::from_secs(60), || match web_alerts()?.as_slice() {
        [] => Ok(()),
        left => Err(format!("drift alert still active: {left:?}")),
    })
}

pub fn flux_reconcile_is_anyones_and_suspend_is_the_operators(c: &Cluster) -> Outcome {
    request_reconcile(c, "alice", "kustomization", "flux-system", "apps")?;
    request_reconcile(c, "carol", "gitrepository", "team-a", "team-a")?;
    let patch = |who: &str, body: &str| {
        c.kubectl(
            who,
            &[
                "patch",
                "kustomization",
                "apps",
                "-n",
                "flux-system",
                "--type=merge",
                "-p",
                body,
            ],
        )
    };
    patch(
        "alice",
        &format!(r#"{{"metadata":{{"annotations":{{"{REQUESTED_AT}":"now"}}}},"spec":{{"path":"./elsewhere"}}}}"#),
    )
    .denied("a reconcile request that also changes the path")?;
    patch("alice", r#"{"spec":{"suspend":true}}"#)
        .denied("alice: flux suspend")?
        .mentions("compatibility.suspend")?;
    patch("admin", r#"{"spec":{"suspend":true}}"#).allowed("admin (an operator): flux suspend")?;
    expect_eq(
        "suspended",
        jsonpath(
            c,
            &["kustomization", "apps", "-n", "flux-system"],
            "{.spec.suspend}",
        ),
        "true",
    )?;
    patch("alice", r#"{"spec":{"suspend":false}}"#).denied("alice: flux resume")?;
    patch("admin", r#"{"spec":{"suspend":false}}"#).allowed("admin: flux resume")?;
    Ok(())
}

pub fn tenants_reconcile_by_impersonation_and_a_reach_into_another_tenant_fails(
    c: &Cluster,
) -> Outcome {
    expect_eq(
        "team-a's ConfigMap",
        jsonpath(
            c,
            &["configmap", "team-a-config", "-n", "team-a"],
            "{.data.owner}",
        ),
        "team-a",
    )?;
    commit(c, "team-a reaches into team-b", |w| {
        let dir = w.join("tenant-repos/team-a");
        std::fs::write(
            dir.join("escape.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: stolen, namespace: team-b}\ndata: {from: team-a}\n",
        )?;
        replace_in(
            &dir.join("kustomization.yaml"),
            "[config.yaml]",
            "[config.yaml, escape.yaml]",
        )
    })?;
    let failing_with = |needle: &str| {
        eventually(LONG, || {
            request_reconcile(c, "carol", "gitrepository", "team-a", "team-a")?;
            match ready(c, "kustomization", "team-a", "team-a")? {
                (status, message) if status == "False" && message.contains(needle) => Ok(()),
                (status, message) => Err(format!("team-a Ready={status}: {message}")),
            }
        })
    };
    // RBAC refuses first: team-a's account has no rights in team-b.
    failing_with("forbidden")?;
    // An over-broad binding lets RBAC through; the guard still refuses.
    let binding = "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: too-broad, namespace: team-b}\n\
                   roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}\n\
                   subjects: [{kind: ServiceAccount, name: team-a, namespace: team-a}]\n";
    c.kubectl_stdin("admin", &["apply", "-f", "-"], binding)
        .allowed("the over-broad RoleBinding")?;
    failing_with("gitops-guard")?;
    if c.kubectl("admin", &["get", "configmap", "stolen", "-n", "team-b"])
        .ok
    {
        return Err("team-a wrote into team-b".into());
    }
    c.kubectl(
        "admin",
        &["delete", "rolebinding", "too-broad", "-n", "team-b"],
    )
    .allowed("delete binding")?;
    let revision = commit(c, "team-a stays home", |w| {
        let dir = w.join("tenant-repos/team-a");
        std::fs::remove_file(dir.join("escape.yaml"))?;
        replace_in(
            &dir.join("kustomization.yaml"),
            "[config.yaml, escape.yaml]",
            "[config.yaml]",
        )
    })?;
    request_reconcile(c, "carol", "gitrepository", "team-a", "team-a")?;
    applied(c, "team-a", "team-a", &revision)
}

pub fn helm_controllers_writes_pass_and_source_controller_reconciles_its_helm_chart(
    c: &Cluster,
) -> Outcome {
    let revision = commit(c, "shop: podinfo HelmRelease", |w| {
        std::fs::write(
            w.join("apps/podinfo.yaml"),
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata: {name: podinfo, namespace: shop}\n\
             spec: {interval: 10m, url: \"http://127.0.0.1:9/charts\"}\n---\n\
             apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: podinfo, namespace: shop}\n\
             spec:\n  interval: 10m\n  chart:\n    spec:\n      chart: podinfo\n      sourceRef: {kind: HelmRepository, name: podinfo}\n",
        )?;
        replace_in(
            &w.join("apps/kustomization.yaml"),
            "[shop.yaml, staging.yaml]",
            "[shop.yaml, staging.yaml, podinfo.yaml]",
        )
    })?;
    sync(c, &revision, &[("flux-system", "apps")])?;
    // helm-controller (stand-in: its Pod-bound token, its requests): the
    // finalizer on a HelmRelease a Kustomization applied, by merge patch ...
    c.kubectl(
        "helm-controller",
        &[
            "patch",
            "helmrelease",
            "podinfo",
            "-n",
            "shop",
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":["finalizers.fluxcd.io"]}}"#,
        ],
    )
    .allowed("helm-controller's finalizer on the HelmRelease")?;
    // ... and the HelmChart it generates, carrying the release's labels, by
    // server-side apply with its own identity (spec.chart is a string).
    let chart = "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmChart\nmetadata:\n  name: shop-podinfo\n  namespace: shop\n  labels:\n    \
                 helm.toolkit.fluxcd.io/name: podinfo\n    helm.toolkit.fluxcd.io/namespace: shop\n\
                 spec: {chart: podinfo, interval: 10m, reconcileStrategy: ChartVersion, sourceRef: {kind: HelmRepository, name: podinfo}}\n";
    c.kubectl_stdin(
        "helm-controller",
        &[
            "apply",
            "--server-side",
            "--field-manager=helm-controller",
            "-f",
            "-",
        ],
        chart,
    )
    .allowed("helm-controller's HelmChart")?;
    // The real source-controller takes it from there: its finalizer.
    eventually(LONG, || {
        expect_eq(
            "HelmChart finalizers",
            jsonpath(
                c,
                &["helmchart", "shop-podinfo", "-n", "shop"],
                "{.metadata.finalizers}",
            ),
            r#"["finalizers.fluxcd.io"]"#,
        )
    })?;
    c.kubectl(
        "alice",
        &[
            "patch",
            "helmchart",
            "shop-podinfo",
            "-n",
            "shop",
            "--type=merge",
            "-p",
            r#"{"spec":{"version":"9.9.9"}}"#,
        ],
    )
    .denied("alice changing the HelmChart")?
    .mentions("Flux HelmRelease shop/podinfo")?;
    Ok(())
}

/// Runs last: the guard goes away in the middle of the work.
pub fn with_the_guard_stopped_flux_reports_the_failure_and_recovers(c: &Cluster) -> Outcome {
    c.guard("stop")?;
    let outcome = guard_outage(c);
    c.guard("start")?;
    let revision = outcome?;
    applied(c, "flux-system", "apps", &revision)?;
    expect_eq(
        "shop/web replicas",
        jsonpath(c, &["deployment", "web", "-n", "shop"], "{.spec.replicas}"),
        "3",
    )
}

fn guard_outage(c: &Cluster) -> Result<String, String> {
    let revision = commit(c, "shop: 3 replicas", |w| {
        replace_in(&w.join("apps/shop.yaml"), "replicas: 2", "replicas: 3")
    })?;
    // Nobody can ask for a reconcile now (the annotation is a write the guard
    // judges): source-controller finds the commit on its own interval. The
    // first Kustomization to apply it reports the apiserver's refusal (apps
    // may only say that infrastructure, which it depends on, is not ready).
    eventually(LONG, || {
        let mut seen = Vec::new();
        for name in ["flux-system", "infrastructure", "apps"] {
            let (status, message) = ready(c, "kustomization", "flux-system", name)?;
            if status == "False" && message.contains("failed calling webhook") {
                return Ok(());
            }
            seen.push(format!("{name} Ready={status}: {message}"));
        }
        Err(seen.join("; "))
    })?;
    Ok(revision)
}
