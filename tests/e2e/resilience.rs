//! Drift alerts across outages: Alertmanager down for two minutes, the
//! guard restarted, two guard processes with one leader. Each runs alone.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use super::cluster::{Cluster, Outcome, eventually, flux_apply, flux_deployment};
use super::drift::{alertmanager, drift_alerts};

fn script(c: &Cluster, name: &str, action: &str) -> Outcome {
    let status = Command::new(c.root.join("scripts").join(name))
        .args([action, &c.run.display().to_string()])
        .env("GG_GUARD_BIN", env!("CARGO_BIN_EXE_gitops-guard"))
        .status()
        .map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{name} {action} failed"))
    }
}

/// A warn namespace with a Flux Deployment that alice has changed.
fn drifted(c: &Cluster, ns: &str) -> Result<String, String> {
    let ns = c.namespace(ns, &["gitops-guard.io/mode=warn"])?;
    flux_apply(c, &flux_deployment(&ns, 1))?;
    std::thread::sleep(Duration::from_millis(1100));
    c.kubectl(
        "alice",
        &["scale", "deployment/web", "-n", &ns, "--replicas=2"],
    )
    .allowed("alice's scale in warn mode")?;
    Ok(ns)
}

fn firing(base: &str, ns: &str) -> Outcome {
    match drift_alerts(base, ns)?.len() {
        0 => Err(format!("no drift alert for {ns}")),
        _ => Ok(()),
    }
}

/// Polls for `span` that the alert stays active the whole time.
fn stays_firing(base: &str, ns: &str, span: Duration) -> Outcome {
    let end = Instant::now() + span;
    while Instant::now() < end {
        firing(base, ns).map_err(|e| format!("gap in the alert: {e}"))?;
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(())
}

pub fn an_alert_made_while_alertmanager_was_down_for_two_minutes_arrives_when_it_is_back(
    c: &Cluster,
) -> Outcome {
    let base = alertmanager(c)?;
    script(c, "alertmanager.sh", "stop")?;
    let made = drifted(c, "e2e-am-outage");
    std::thread::sleep(Duration::from_secs(120));
    script(c, "alertmanager.sh", "start")?;
    let ns = made?;
    let back = Instant::now();
    eventually(Duration::from_secs(60), || firing(&base, &ns))?;
    eprintln!(
        "alert delivered {:?} after Alertmanager came back",
        back.elapsed()
    );
    Ok(())
}

pub fn the_alert_keeps_firing_while_the_guard_restarts(c: &Cluster) -> Outcome {
    let base = alertmanager(c)?;
    let ns = drifted(c, "e2e-restart")?;
    eventually(Duration::from_secs(30), || firing(&base, &ns))?;
    script(c, "guard.sh", "stop")?;
    let restarted = script(c, "guard.sh", "start");
    let kept = stays_firing(&base, &ns, Duration::from_secs(20));
    restarted.and(kept)
}

fn admin_metric(port: u16, name: &str) -> Option<f64> {
    let out = Command::new("curl")
        .args([
            "-sf",
            "--max-time",
            "2",
            &format!("http://127.0.0.1:{port}/metrics"),
        ])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with(name) && !l.starts_with('#'))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

pub fn guard_env_port(c: &Cluster, key: &str) -> Result<u16, String> {
    let env = std::fs::read_to_string(c.run.join("guard.env")).map_err(|e| e.to_string())?;
    env.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("{key} missing from guard.env"))
}

/// Another guard process with its own ports and `extra` flags, the same
/// Lease and Alertmanager, logging to `logs/guard-{name}.log`.
pub fn extra_guard(
    c: &Cluster,
    name: &str,
    port: u16,
    admin: u16,
    extra: &[&str],
) -> Result<Child, String> {
    let log_path = c.run.join(format!("logs/guard-{name}.log"));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .map_err(|e| e.to_string())?;
    let am = format!("{}/", alertmanager(c)?);
    Command::new(env!("CARGO_BIN_EXE_gitops-guard"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--admin-listen",
            &format!("127.0.0.1:{admin}"),
        ])
        .arg("--tls-cert")
        .arg(c.run.join("certs/tls.crt"))
        .arg("--tls-key")
        .arg(c.run.join("certs/tls.key"))
        .arg("--kubeconfig")
        .arg(c.kubeconfig("admin"))
        .arg("--policy")
        .arg(c.run.join("policy.yaml"))
        .args([
            "--alertmanager-url",
            &am,
            "--cluster-name",
            "local",
            "--lease-namespace",
            "default",
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| e.to_string())
}

pub fn two_guards_elect_one_sender_and_the_other_takes_over_when_it_stops(c: &Cluster) -> Outcome {
    let base = alertmanager(c)?;
    let first = guard_env_port(c, "ADMIN_PORT")?;
    let (port, second) = (first + 101, first + 102);
    let mut other = extra_guard(c, "2", port, second, &[])?;
    let result = (|| {
        let leader = |p: u16| admin_metric(p, "gitops_guard_leader") == Some(1.0);
        eventually(Duration::from_secs(30), || {
            match (leader(first), leader(second)) {
                (true, false) | (false, true) => Ok(()),
                both => Err(format!("leaders (first, second): {both:?}")),
            }
        })?;
        let ns = drifted(c, "e2e-leader")?;
        eventually(Duration::from_secs(30), || firing(&base, &ns))?;
        let (leading, following) = if leader(first) {
            (first, second)
        } else {
            (second, first)
        };
        let sent = |p: u16| {
            admin_metric(p, "gitops_guard_alert_deliveries_total{outcome=\"ok\"}").unwrap_or(0.0)
        };
        if sent(following) > 0.0 || sent(leading) == 0.0 {
            return Err(format!(
                "deliveries: leader {}, follower {}",
                sent(leading),
                sent(following)
            ));
        }
        // Stop the leader with SIGTERM, as a rollout does; the follower must
        // take over and keep the alert up.
        let stopped = Instant::now();
        if leading == first {
            script(c, "guard.sh", "stop")?;
        } else {
            terminate(&mut other);
        }
        eventually(Duration::from_secs(20), || {
            if leader(following) {
                Ok(())
            } else {
                Err("no takeover yet".into())
            }
        })?;
        // README quotes this line ("Leader takeover").
        eprintln!(
            "takeover {:?} after SIGTERM to the leader",
            stopped.elapsed()
        );
        stays_firing(&base, &ns, Duration::from_secs(10))?;
        let before = sent(following);
        eventually(Duration::from_secs(20), || {
            if sent(following) > before {
                Ok(())
            } else {
                Err("the new leader has not sent".into())
            }
        })?;
        if leading == first {
            script(c, "guard.sh", "start")
        } else {
            Ok(())
        }
    })();
    let _ = other.kill();
    let _ = other.wait();
    result
}

/// The `changed_by` annotation of the namespace's drift alert.
fn changed_by(base: &str, ns: &str) -> Result<String, String> {
    let alerts = drift_alerts(base, ns)?;
    let alert = alerts.first().ok_or(format!("no drift alert for {ns}"))?;
    Ok(alert["annotations"]["changed_by"]
        .as_str()
        .unwrap_or("")
        .to_owned())
}

fn names_alice(base: &str, ns: &str) -> Outcome {
    match changed_by(base, ns)?.as_str() {
        "alice" => Ok(()),
        other => Err(format!("changed_by {other:?}, expected alice")),
    }
}

/// The users the attribution Events in `ns` name.
fn attributed_users(c: &Cluster, ns: &str) -> Result<String, String> {
    let out = c
        .kubectl(
            "admin",
            &[
                "get",
                "events",
                "-n",
                ns,
                "-l",
                "gitops-guard.io/attribution",
                "-o",
                "jsonpath={.items[*].metadata.annotations.gitops-guard\\.io/user}",
            ],
        )
        .allowed("list attribution Events")?;
    Ok(out.stdout)
}

fn delivered(port: u16) -> f64 {
    admin_metric(port, "gitops_guard_alert_deliveries_total{outcome=\"ok\"}").unwrap_or(0.0)
}

/// Stops a process started by [`extra_guard`] with SIGTERM, as Kubernetes
/// does, so it releases the Lease.
fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

pub fn a_restarted_guard_still_names_who_made_the_change(c: &Cluster) -> Outcome {
    let base = alertmanager(c)?;
    let admin = guard_env_port(c, "ADMIN_PORT")?;
    let ns = drifted(c, "e2e-attribution-restart")?;
    eventually(Duration::from_secs(30), || names_alice(&base, &ns))?;
    eventually(Duration::from_secs(10), || {
        let users = attributed_users(c, &ns)?;
        if users.split_whitespace().any(|u| u == "alice") {
            Ok(())
        } else {
            Err(format!("no attribution Event naming alice: {users:?}"))
        }
    })?;
    // A new process knows nothing of the change but what the API keeps.
    script(c, "guard.sh", "stop")?;
    script(c, "guard.sh", "start")?;
    let restarted = Instant::now();
    eventually(Duration::from_secs(30), || {
        if delivered(admin) > 0.0 {
            Ok(())
        } else {
            Err("the restarted guard has not sent the alert again".into())
        }
    })?;
    eventually(Duration::from_secs(30), || names_alice(&base, &ns))?;
    let read = admin_metric(
        admin,
        "gitops_guard_attribution_events_total{outcome=\"read\"}",
    )
    .unwrap_or(0.0);
    if read < 1.0 {
        return Err(format!(
            "the restarted guard read {read} attribution Events"
        ));
    }
    eprintln!(
        "after a restart the alert names alice {:?} after the new process started",
        restarted.elapsed()
    );
    Ok(())
}

pub fn the_leader_names_who_made_a_change_another_replica_admitted(c: &Cluster) -> Outcome {
    let base = alertmanager(c)?;
    let first = guard_env_port(c, "ADMIN_PORT")?;
    let (port, second) = (first + 103, first + 104);
    let leader = |p: u16| admin_metric(p, "gitops_guard_leader") == Some(1.0);
    // The registered guard (first) must be the follower: stop it, let a
    // second process take the Lease, start the first again.
    script(c, "guard.sh", "stop")?;
    let mut other = extra_guard(c, "attribution", port, second, &[])?;
    let result = (|| {
        eventually(Duration::from_secs(30), || {
            if leader(second) {
                Ok(())
            } else {
                Err("the second guard does not lead yet".into())
            }
        })?;
        script(c, "guard.sh", "start")?;
        eventually(Duration::from_secs(30), || {
            match admin_metric(first, "gitops_guard_leader") {
                Some(0.0) => Ok(()),
                other => Err(format!("first guard's leader gauge: {other:?}")),
            }
        })?;
        // alice's change goes through the registered guard, the follower.
        let ns = drifted(c, "e2e-attribution-replicas")?;
        eventually(Duration::from_secs(30), || names_alice(&base, &ns))?;
        // Who wrote the attribution Event is who admitted the change.
        let admitted_by_second = admin_metric(
            second,
            "gitops_guard_attribution_events_total{outcome=\"written\"}",
        )
        .unwrap_or(0.0);
        let written_by_first = admin_metric(
            first,
            "gitops_guard_attribution_events_total{outcome=\"written\"}",
        )
        .unwrap_or(0.0);
        if admitted_by_second > 0.0 || written_by_first < 1.0 {
            return Err(format!(
                "attribution Events written: leader {admitted_by_second}, follower {written_by_first}: \
                 the follower should have admitted the change"
            ));
        }
        if delivered(second) == 0.0 || !leader(second) {
            return Err("the second guard should lead and have sent the alert".into());
        }
        Ok(())
    })();
    terminate(&mut other);
    let back = eventually(Duration::from_secs(30), || {
        if leader(first) {
            Ok(())
        } else {
            Err("the registered guard has not taken the Lease back".into())
        }
    });
    result.and(back)
}
