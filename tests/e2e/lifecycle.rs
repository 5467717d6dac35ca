//! Scenarios that involve time, controllers or the guard's own lifecycle.

use std::{process::Command, time::Duration};

use super::cluster::{Cluster, FLUX_APPLY, Outcome, eventually, flux_apply, flux_deployment};

pub fn break_glass_lets_alice_through_until_it_expires(c: &Cluster) -> Outcome {
    let ns = c.namespace("e2e-breakglass", &[])?;
    flux_apply(c, &flux_deployment(&ns, 1))?;
    let expires = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(12);
    let grant = format!(
        "apiVersion: gitops-guard.io/v1alpha1\nkind: BreakGlass\nmetadata: {{name: inc-1, namespace: {ns}}}\n\
         spec:\n  subjects: [{{kind: User, name: alice}}]\n  reason: INC-1 hotfix\n  expiresAt: \"{}\"\n",
        expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    );
    c.kubectl_stdin("admin", &["apply", "-f", "-"], &grant)
        .allowed("create BreakGlass")?;
    let scale = |n: &str| {
        c.kubectl(
            "alice",
            &[
                "scale",
                "deployment/web",
                "-n",
                &ns,
                &format!("--replicas={n}"),
            ],
        )
    };
    eventually(Duration::from_secs(8), || {
        scale("2")
            .allowed("scale under break-glass")?
            .mentions("break-glass inc-1")?;
        Ok(())
    })?;
    // Every use is alerted, naming the person.
    let base = super::drift::alertmanager(c)?;
    eventually(Duration::from_secs(20), || {
        let used = super::drift::alerts_named(&base, "GitOpsBreakGlassUsed")?;
        let mine = used
            .iter()
            .any(|a| a["labels"]["namespace"] == ns.as_str() && a["labels"]["user"] == "alice");
        if mine {
            Ok(())
        } else {
            Err(format!(
                "no GitOpsBreakGlassUsed for alice in {ns}: {used:?}"
            ))
        }
    })?;
    eventually(Duration::from_secs(20), || {
        scale("3").denied("scale after expiry")?;
        Ok(())
    })
}

fn count(c: &Cluster, kind: &str, ns: &str) -> Result<usize, String> {
    let out = c
        .kubectl("admin", &["get", kind, "-n", ns, "-o", "name"])
        .allowed("list")?;
    Ok(out.stdout.lines().filter(|l| !l.is_empty()).count())
}

pub fn the_garbage_collector_removes_what_a_pruned_deployment_owned(c: &Cluster) -> Outcome {
    let ns = c.namespace("e2e-gc", &[])?;
    flux_apply(c, &flux_deployment(&ns, 2))?;
    eventually(Duration::from_secs(30), || {
        match (count(c, "replicasets", &ns)?, count(c, "pods", &ns)?) {
            (1, 2) => Ok(()),
            other => Err(format!("replicasets, pods = {other:?}")),
        }
    })?;
    c.kubectl(
        "kustomize-controller",
        &["delete", "deployment/web", "-n", &ns],
    )
    .allowed("prune")?;
    eventually(Duration::from_secs(30), || {
        match (count(c, "replicasets", &ns)?, count(c, "pods", &ns)?) {
            (0, 0) => Ok(()),
            other => Err(format!("left behind: replicasets, pods = {other:?}")),
        }
    })
}

pub fn deleting_a_namespace_full_of_owned_objects_completes(c: &Cluster) -> Outcome {
    let ns = c.namespace("e2e-nsdelete", &[])?;
    flux_apply(c, &flux_deployment(&ns, 2))?;
    let cm = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: {ns}\n  labels:\n    \
         kustomize.toolkit.fluxcd.io/name: apps\n    kustomize.toolkit.fluxcd.io/namespace: flux-system\n"
    );
    flux_apply(c, &cm)?;
    c.kubectl("admin", &["delete", "namespace", &ns, "--wait=false"])
        .allowed("delete namespace")?;
    eventually(Duration::from_secs(90), || {
        let out = c.kubectl("admin", &["get", "namespace", &ns]);
        if out.stderr.contains("NotFound") {
            Ok(())
        } else {
            Err(format!("namespace still there: {}", out.stdout))
        }
    })
}

/// The same inputs through the apiserver and through `gitops-guard check`
/// give the same decision and the same message.
pub fn the_apiserver_and_check_agree(c: &Cluster) -> Outcome {
    let ns = c.namespace("e2e-check", &[])?;
    flux_apply(c, &flux_deployment(&ns, 1))?;
    let patch = r#"{"metadata":{"labels":{"kustomize.toolkit.fluxcd.io/name":null}}}"#;
    let via_apiserver = c.kubectl(
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
    );
    let via_apiserver = via_apiserver.denied("patch through the apiserver")?;
    let old = c
        .kubectl("admin", &["get", "deployment/web", "-n", &ns, "-o", "json"])
        .allowed("get")?
        .stdout;
    let old: serde_json::Value = serde_json::from_str(&old).map_err(|e| e.to_string())?;
    let mut new = old.clone();
    if let Some(labels) = new
        .pointer_mut("/metadata/labels")
        .and_then(|l| l.as_object_mut())
    {
        labels.remove("kustomize.toolkit.fluxcd.io/name");
    }
    let review = serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "e2e-check", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
        "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
        "name": "web", "namespace": ns, "operation": "UPDATE",
        "userInfo": {"username": "alice", "groups": ["developers", "system:authenticated"]},
        "object": new, "oldObject": old, "options": {"kind": "PatchOptions", "fieldManager": "kubectl-patch"}}});
    let state = c.kubectl(
        "admin",
        &[
            "get",
            "namespaces,kustomizations.kustomize.toolkit.fluxcd.io",
            "-A",
            "-o",
            "yaml",
        ],
    );
    let dir = c.run.join("check");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("review.json"), review.to_string()).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("state.yaml"), state.allowed("get state")?.stdout)
        .map_err(|e| e.to_string())?;
    let out = Command::new(env!("CARGO_BIN_EXE_gitops-guard"))
        .args(["check", "--cluster-state"])
        .arg(dir.join("state.yaml"))
        .arg(dir.join("review.json"))
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.code() != Some(1) {
        return Err(format!(
            "check exit {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let response: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let message = response["response"]["status"]["message"]
        .as_str()
        .unwrap_or_default();
    if message.is_empty() || !via_apiserver.stderr.contains(message) {
        return Err(format!(
            "check said:\n{message}\napiserver said:\n{}",
            via_apiserver.stderr
        ));
    }
    Ok(())
}

/// failurePolicy: Fail closes owned objects while the guard is away, and
/// nothing else; everything recovers when it returns.
pub fn with_the_guard_down_owned_writes_fail_and_others_go_on(c: &Cluster) -> Outcome {
    let ns = c.namespace("e2e-outage", &[])?;
    flux_apply(c, &flux_deployment(&ns, 1))?;
    // A robot account (a created token, not bound to a Pod: the requests
    // the identities entry sends to the guard) allowed to write here.
    let robot = format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: robot, namespace: {ns}}}\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: robot, namespace: {ns}}}\n\
         roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}}\n\
         subjects: [{{kind: ServiceAccount, name: robot, namespace: {ns}}}]\n"
    );
    c.kubectl_stdin("admin", &["apply", "-f", "-"], &robot)
        .allowed("the robot account")?;
    let _ = c.kubectl("admin", &["create", "namespace", "gitops-guard"]);
    c.guard("stop")?;
    let result = outage_checks(c, &ns);
    c.guard("start")?;
    result?;
    eventually(Duration::from_secs(30), || {
        flux_apply(c, &flux_deployment(&ns, 3)).map(|_| ())
    })
}

fn outage_checks(c: &Cluster, ns: &str) -> Outcome {
    let out = c.kubectl_stdin("kustomize-controller", &FLUX_APPLY, &flux_deployment(ns, 2));
    if out.ok || !out.stderr.contains("failed calling webhook") {
        return Err(format!(
            "expected the apiserver's webhook error, got ok={}: {}",
            out.ok, out.stderr
        ));
    }
    c.kubectl(
        "alice",
        &[
            "create",
            "configmap",
            "unowned",
            "-n",
            "default",
            "--from-literal=a=b",
        ],
    )
    .allowed("unowned write")?;
    c.kubectl(
        "admin",
        &["create", "configmap", "e2e-outage", "-n", "kube-system"],
    )
    .allowed("kube-system write")?;
    // No self-deadlock: the guard's own namespace (even owned objects),
    // and unowned writes, leases and events by a token not bound to a Pod.
    let owned = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: outage\n  namespace: gitops-guard\n  labels:\n    \
         kustomize.toolkit.fluxcd.io/name: gitops-guard\n    kustomize.toolkit.fluxcd.io/namespace: flux-system\n";
    c.kubectl_stdin("alice", &["apply", "-f", "-"], owned)
        .allowed("an owned write in the guard's own namespace")?;
    let robot = |args: &[&str]| c.kubectl_as_service_account(ns, "robot", args, "");
    robot(&["create", "configmap", "robot-unowned", "-n", ns])
        .allowed("an unowned write by a token not bound to a Pod")?;
    let lease = format!(
        "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {{name: robot, namespace: {ns}}}\n\
         spec: {{holderIdentity: robot, leaseDurationSeconds: 15}}\n"
    );
    c.kubectl_as_service_account(ns, "robot", &["apply", "-f", "-"], &lease)
        .allowed("a lease by a token not bound to a Pod")?;
    let event = format!(
        "apiVersion: v1\nkind: Event\nmetadata: {{name: robot, namespace: {ns}}}\n\
         involvedObject: {{kind: ConfigMap, name: robot-unowned, namespace: {ns}}}\nreason: Test\nmessage: outage\n"
    );
    c.kubectl_as_service_account(ns, "robot", &["apply", "-f", "-"], &event)
        .allowed("an event by a token not bound to a Pod")?;
    redeploy(c)
}

/// With no guard answering, the installation itself goes back in through
/// the same apiserver: everything `kubectl apply -k manifests` creates
/// (Deployment, Service, RBAC, PDB, webhook configurations), then the local
/// registration the suite runs with.
fn redeploy(c: &Cluster) -> Outcome {
    let manifests = c.root.join("manifests").display().to_string();
    let rendered = c
        .kubectl("admin", &["kustomize", &manifests])
        .allowed("kubectl kustomize manifests")?;
    c.kubectl_stdin("admin", &["apply", "-f", "-"], &rendered.stdout)
        .allowed("redeploying the guard while it is down")?
        .mentions("deployment.apps/gitops-guard")?
        .mentions("service/gitops-guard")?;
    let local = c.run.join("webhook.yaml").display().to_string();
    c.kubectl("admin", &["apply", "-f", &local])
        .allowed("re-registering the local webhook")?;
    Ok(())
}

/// What users install (`kubectl apply -k manifests`) is accepted by a real
/// apiserver's validation (server-side dry-run, nothing persisted but the namespace).
pub fn the_install_manifests_pass_server_side_validation(c: &Cluster) -> Outcome {
    let manifests = c.root.join("manifests").display().to_string();
    let rendered = c
        .kubectl("admin", &["kustomize", &manifests])
        .allowed("kubectl kustomize manifests")?;
    c.kubectl("admin", &["create", "namespace", "gitops-guard"])
        .allowed("create namespace")?;
    let out = c.kubectl_stdin(
        "admin",
        &["apply", "--dry-run=server", "-f", "-"],
        &rendered.stdout,
    );
    out.allowed("server-side dry-run of manifests/")?
        .mentions("validatingwebhookconfiguration.admissionregistration.k8s.io/gitops-guard")?
        .mentions("deployment.apps/gitops-guard")?;
    Ok(())
}

/// GET on the guard's plain-HTTP admin port.
pub fn admin_get(c: &Cluster, path: &str) -> Result<String, String> {
    use std::io::{Read, Write};
    let env = std::fs::read_to_string(c.run.join("guard.env")).map_err(|e| e.to_string())?;
    let port = env
        .lines()
        .find_map(|l| l.strip_prefix("ADMIN_PORT="))
        .ok_or("no ADMIN_PORT")?;
    let mut stream = std::net::TcpStream::connect((
        "127.0.0.1",
        port.parse::<u16>().map_err(|e| e.to_string())?,
    ))
    .map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").map_err(|e| e.to_string())?;
    let mut body = String::new();
    stream
        .read_to_string(&mut body)
        .map_err(|e| e.to_string())?;
    Ok(body)
}

/// The admin port reports readiness and counts decisions by bounded labels.
pub fn the_guard_is_ready_and_counts_its_decisions(c: &Cluster) -> Outcome {
    let ns = c.namespace("e2e-metrics", &[])?;
    flux_apply(c, &flux_deployment(&ns, 1))?;
    flux_apply(c, &flux_deployment(&ns, 2))?;
    c.kubectl(
        "alice",
        &["delete", "deployment/web", "-n", &ns, "--wait=false"],
    )
    .denied("delete")?;
    let ready = admin_get(c, "/readyz")?;
    if !ready.starts_with("HTTP/1.0 200") && !ready.starts_with("HTTP/1.1 200") {
        return Err(format!("/readyz: {ready}"));
    }
    let metrics = admin_get(c, "/metrics")?;
    let wanted = [
        r#"gitops_guard_admission_requests_total{decision="deny",operation="DELETE",reason="not-reconciler",webhook="validate"}"#,
        r#"gitops_guard_admission_requests_total{decision="allow",operation="UPDATE",reason="reconciler",webhook="validate"}"#,
        "gitops_guard_tls_certificate_expiry_timestamp_seconds",
        r#"gitops_guard_cluster_view_objects{kind="namespace"}"#,
    ];
    match wanted.iter().find(|w| !metrics.contains(*w)) {
        Some(missing) => Err(format!("{missing} not in /metrics")),
        None => Ok(()),
    }
}
