//! The drift watcher with the real Alertmanager scripts/up.sh runs.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use serde_json::Value;

use super::cluster::{Cluster, Outcome, eventually, flux_apply, flux_deployment};

pub fn alertmanager(c: &Cluster) -> Result<String, String> {
    let env = std::fs::read_to_string(c.run.join("guard.env")).map_err(|e| e.to_string())?;
    env.lines()
        .find_map(|l| l.strip_prefix("ALERTMANAGER_URL="))
        .map(|u| u.trim_end_matches('/').to_owned())
        .ok_or_else(|| "ALERTMANAGER_URL missing from guard.env".into())
}

/// Active alerts matching `filters` (`key%3D%22value%22`), as Alertmanager's API lists them.
fn active_alerts(base: &str, filters: &[String]) -> Result<Vec<Value>, String> {
    let query: String = filters.iter().map(|f| format!("&filter={f}")).collect();
    let url = format!("{base}/api/v2/alerts?active=true&silenced=false&inhibited=false{query}");
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "5", &url])
        .output()
        .map_err(|e| format!("curl: {e}"))?;
    if !out.status.success() {
        return Err(format!("GET {url} failed"));
    }
    let alerts: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    Ok(alerts.as_array().cloned().unwrap_or_default())
}

/// Active GitOpsDrift alerts for a namespace.
pub fn drift_alerts(base: &str, namespace: &str) -> Result<Vec<Value>, String> {
    let filters = [
        "alertname%3D%22GitOpsDrift%22".to_owned(),
        format!("namespace%3D%22{namespace}%22"),
    ];
    active_alerts(base, &filters)
}

/// Flux's apply, which takes fields back from other managers.
fn flux_apply_forced(c: &Cluster, manifest: &str) -> Outcome {
    let args = [
        "apply",
        "--server-side",
        "--field-manager=kustomize-controller",
        "--force-conflicts",
        "-f",
        "-",
    ];
    c.kubectl_stdin("kustomize-controller", &args, manifest)
        .allowed("the reconciler's forced apply")?;
    Ok(())
}

fn expect_label(alert: &Value, key: &str, value: &str) -> Outcome {
    let got = alert["labels"][key].as_str().unwrap_or("");
    if got == value {
        Ok(())
    } else {
        Err(format!(
            "label {key}: {got:?}, expected {value:?} in {alert}"
        ))
    }
}

pub fn a_manual_change_in_a_warn_namespace_alerts_naming_alice_and_resolves_when_flux_reapplies(
    c: &Cluster,
) -> Outcome {
    let base = alertmanager(c)?;
    let ns = c.namespace("e2e-drift", &["gitops-guard.io/mode=warn"])?;
    flux_apply(c, &flux_deployment(&ns, 1))?;
    // Let the reconciler's write age past the second managedFields record.
    std::thread::sleep(Duration::from_millis(1100));
    let patch = r#"{"spec":{"replicas":3}}"#;
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
    .allowed("warn mode lets alice through")?;
    let changed = Instant::now();
    let mut alert = Value::Null;
    eventually(Duration::from_secs(30), || {
        let alerts = drift_alerts(&base, &ns)?;
        alert = alerts
            .into_iter()
            .next()
            .ok_or("no GitOpsDrift alert yet")?;
        Ok(())
    })?;
    eprintln!(
        "drift alert in Alertmanager {:?} after the change",
        changed.elapsed()
    );
    for (key, value) in [
        ("kind", "Deployment"),
        ("name", "web"),
        ("owner_kind", "Kustomization"),
        ("owner", "flux-system/apps"),
        ("severity", "warning"),
        ("cluster", "local"),
    ] {
        expect_label(&alert, key, value)?;
    }
    let changed_by = alert["annotations"]["changed_by"].as_str().unwrap_or("");
    if changed_by != "alice" {
        return Err(format!(
            "changed_by {changed_by:?}, expected alice: {alert}"
        ));
    }
    // On the object: alice's attribution and the drift, as Events.
    events_appear(c, &ns, &["ManualChangeAdmitted", "GitOpsDrift"])?;
    // The one-shot scan finds it too, naming alice, and exits 1.
    let (code, rows) = drift_scan(c)?;
    let row = rows
        .iter()
        .find(|r| r["namespace"] == ns.as_str() && r["name"] == "web")
        .ok_or(format!(
            "gitops-guard drift does not list {ns}/web: {rows:?}"
        ))?;
    if code != Some(1) || row["changed_by"] != "alice" || row["kind"] != "Deployment" {
        return Err(format!("gitops-guard drift exit {code:?}, row {row}"));
    }
    flux_apply_forced(c, &flux_deployment(&ns, 1))?;
    eventually(Duration::from_secs(30), || {
        match drift_alerts(&base, &ns)?.len() {
            0 => Ok(()),
            n => Err(format!("{n} alert(s) still active")),
        }
    })?;
    events_appear(c, &ns, &["GitOpsDriftResolved"])?;
    let (_, rows) = drift_scan(c)?;
    match rows.iter().find(|r| r["namespace"] == ns.as_str()) {
        None => Ok(()),
        Some(row) => Err(format!("resolved, yet gitops-guard drift lists {row}")),
    }
}

/// Waits until Events with each of `reasons` are on deployment/web in `ns`.
fn events_appear(c: &Cluster, ns: &str, reasons: &[&str]) -> Outcome {
    eventually(Duration::from_secs(30), || {
        let found = event_reasons(c, ns)?;
        match reasons
            .iter()
            .find(|wanted| !found.iter().any(|r| r == *wanted))
        {
            Some(missing) => Err(format!("no {missing} Event on deployment/web: {found:?}")),
            None => Ok(()),
        }
    })
}

/// The reasons of the Events on deployment/web in `ns` (core and
/// events.k8s.io Events are one store; kubectl reads the core view).
fn event_reasons(c: &Cluster, ns: &str) -> Result<Vec<String>, String> {
    let out = c
        .kubectl(
            "admin",
            &[
                "get",
                "events",
                "-n",
                ns,
                "--field-selector",
                "involvedObject.kind=Deployment,involvedObject.name=web",
                "-o",
                "jsonpath={.items[*].reason}",
            ],
        )
        .allowed("list Events")?;
    Ok(out.stdout.split_whitespace().map(str::to_owned).collect())
}

/// `gitops-guard drift -o json` as the admin: its exit code and rows.
fn drift_scan(c: &Cluster) -> Result<(Option<i32>, Vec<Value>), String> {
    let out = Command::new(env!("CARGO_BIN_EXE_gitops-guard"))
        .args(["drift", "-o", "json", "--policy"])
        .arg(c.run.join("policy.yaml"))
        .env("KUBECONFIG", c.kubeconfig("admin"))
        .output()
        .map_err(|e| format!("gitops-guard drift: {e}"))?;
    let rows: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "gitops-guard drift printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    Ok((
        out.status.code(),
        rows.as_array().cloned().unwrap_or_default(),
    ))
}

/// Active alerts named `alertname` (any namespace).
pub fn alerts_named(base: &str, alertname: &str) -> Result<Vec<Value>, String> {
    active_alerts(base, &[format!("alertname%3D%22{alertname}%22")])
}

/// Takes the webhook away: runs alone.
pub fn changing_or_removing_the_webhook_alerts_and_drift_made_meanwhile_is_detected(
    c: &Cluster,
) -> Outcome {
    let base = alertmanager(c)?;
    let ns = c.namespace("e2e-unregistered", &[])?;
    flux_apply(c, &flux_deployment(&ns, 1))?;
    let settings = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: {ns}\n  labels:\n    \
         kustomize.toolkit.fluxcd.io/name: apps\n    kustomize.toolkit.fluxcd.io/namespace: flux-system\ndata: {{a: b}}\n"
    );
    flux_apply(c, &settings)?;
    std::thread::sleep(Duration::from_millis(1100));
    // A change to the registration (not a caBundle rotation) is alerted.
    let narrower = r#"[{"op":"replace","path":"/webhooks/0/timeoutSeconds","value":6}]"#;
    c.kubectl(
        "admin",
        &[
            "patch",
            "validatingwebhookconfiguration",
            "gitops-guard",
            "--type=json",
            "-p",
            narrower,
        ],
    )
    .allowed("change the registration")?;
    eventually(Duration::from_secs(30), || {
        let firing = alerts_named(&base, "GitOpsGuardWebhookChanged")?;
        let modified = firing.iter().any(|a| a["labels"]["change"] == "modified");
        if modified {
            Ok(())
        } else {
            Err(format!("no modified alert yet: {firing:?}"))
        }
    })?;
    c.kubectl(
        "admin",
        &["delete", "validatingwebhookconfiguration", "gitops-guard"],
    )
    .allowed("delete the registration")?;
    let removed = eventually(Duration::from_secs(30), || {
        let firing = alerts_named(&base, "GitOpsGuardWebhookChanged")?;
        let deleted = firing.iter().any(|a| {
            a["labels"]["kind"] == "ValidatingWebhookConfiguration"
                && a["labels"]["change"] == "deleted"
        });
        if deleted {
            Ok(())
        } else {
            Err(format!("not yet: {firing:?}"))
        }
    });
    // Without the webhook alice's patch goes through (eventually: the
    // apiserver drops the registration asynchronously).
    let patch = r#"{"spec":{"replicas":4}}"#;
    let slipped = eventually(Duration::from_secs(30), || {
        let out = c.kubectl(
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
        if out.ok { Ok(()) } else { Err(out.stderr) }
    });
    // Meanwhile a second owned object loses its ownership label.
    let unlabel = [
        "label",
        "configmap/settings",
        "-n",
        &ns,
        "kustomize.toolkit.fluxcd.io/name-",
    ];
    let stripped = slipped.and_then(|()| {
        c.kubectl("alice", &unlabel)
            .allowed("label removal")
            .map(|_| ())
    });
    let named = |name: &'static str| {
        move |alerts: &[Value]| alerts.iter().find(|a| a["labels"]["name"] == name).cloned()
    };
    let detected = stripped.and_then(|()| {
        eventually(Duration::from_secs(30), || {
            let alerts = drift_alerts(&base, &ns)?;
            let web = named("web")(&alerts).ok_or("no drift alert for web yet")?;
            expect_label(&web, "severity", "critical")?;
            let by = web["annotations"]["changed_by"].as_str().unwrap_or("");
            if by != "field manager kubectl-patch" {
                return Err(format!("changed_by {by:?}"));
            }
            let settings = named("settings")(&alerts)
                .ok_or("no drift alert for the unlabelled ConfigMap yet")?;
            let fields = settings["annotations"]["fields"].as_str().unwrap_or("");
            if fields.contains("ownership markers removed") {
                Ok(())
            } else {
                Err(format!("fields {fields:?}"))
            }
        })
    });
    // Put the registration back whatever happened, and wait until it bites.
    let webhook = c.run.join("webhook.yaml").display().to_string();
    c.kubectl("admin", &["apply", "-f", &webhook])
        .allowed("re-register")?;
    eventually(Duration::from_secs(60), || {
        c.kubectl_stdin(
            "alice",
            &["apply", "--dry-run=server", "-f", "-"],
            &flux_deployment(&ns, 9),
        )
        .denied("the webhook is back")
        .map(|_| ())
    })?;
    removed?;
    detected?;
    eventually(Duration::from_secs(30), || {
        let firing = alerts_named(&base, "GitOpsGuardWebhookChanged")?;
        if firing.iter().any(|a| a["labels"]["change"] == "deleted") {
            Err("the deletion alert is still firing".into())
        } else {
            Ok(())
        }
    })
}

pub fn an_argo_cd_tracked_object_changed_in_a_warn_namespace_alerts_and_resolves_on_sync(
    c: &Cluster,
) -> Outcome {
    let base = alertmanager(c)?;
    let ns = c.namespace("e2e-argo-drift", &["gitops-guard.io/mode=warn"])?;
    let cm = |color: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shop\n  namespace: {ns}\n  annotations:\n    \
             argocd.argoproj.io/tracking-id: shop:/ConfigMap:{ns}/shop\ndata: {{color: {color}}}\n"
        )
    };
    let sync = [
        "apply",
        "--server-side",
        "--field-manager=argocd-controller",
        "--force-conflicts",
        "-f",
        "-",
    ];
    c.kubectl_stdin("argocd-application-controller", &sync, &cm("blue"))
        .allowed("Argo CD sync")?;
    std::thread::sleep(Duration::from_millis(1100));
    let patch = r#"{"data":{"color":"red"}}"#;
    c.kubectl(
        "alice",
        &[
            "patch",
            "configmap/shop",
            "-n",
            &ns,
            "--type=merge",
            "-p",
            patch,
        ],
    )
    .allowed("warn mode lets alice through")?;
    eventually(Duration::from_secs(30), || {
        let alert = drift_alerts(&base, &ns)?
            .into_iter()
            .next()
            .ok_or("no GitOpsDrift alert yet")?;
        expect_label(&alert, "owner_kind", "Application")?;
        expect_label(&alert, "owner", "argocd/shop")?;
        expect_label(&alert, "kind", "ConfigMap")
    })?;
    c.kubectl_stdin("argocd-application-controller", &sync, &cm("blue"))
        .allowed("Argo CD sync again")?;
    eventually(Duration::from_secs(30), || {
        match drift_alerts(&base, &ns)?.len() {
            0 => Ok(()),
            n => Err(format!("{n} alert(s) still active after the sync")),
        }
    })
}
