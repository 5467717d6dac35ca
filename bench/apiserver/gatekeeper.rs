//! OPA Gatekeeper v3.23.1's manager, built from its Go module by
//! tests/cluster/build-peers.sh and run out of cluster against the
//! bench's control plane: its CRDs, the gatekeeper-system namespace with a
//! Pod object its status objects name as owner (it never runs), and the
//! process with only the validating webhook, status and CRD generation, no
//! certificate rotation, serving our certificate on a loopback port. The
//! ValidatingWebhookConfiguration is ours (bench/peers/gatekeeper), shaped
//! like the shipped one with DELETE added, as the chart's
//! `enableDeleteOperations` does.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use gitops_guard::cert;

use super::{cluster::Env, peer, tls_server};

const WEBHOOK: &str = "gatekeeper-validating-webhook-configuration";

pub fn binary(root: &Path) -> PathBuf {
    root.join("tests/cluster/bin/gatekeeper")
}

/// Gatekeeper's output, kept beside the run directory.
pub fn log_path(env: &Env) -> PathBuf {
    env.run.with_extension("gatekeeper.log")
}

fn policy(env: &Env, file: &str) -> String {
    let path = env.root.join("bench/peers/gatekeeper").join(file);
    path.display().to_string()
}

/// CRDs and the gatekeeper-system namespace: once per cluster.
pub fn install(env: &Env) -> Result<(), String> {
    peer::install_crds(
        env,
        "gatekeeper",
        &["crd/constrainttemplates.templates.gatekeeper.sh"],
    )?;
    env.kubectl("admin", &["apply", "-f", &policy(env, "system.yaml")], None)?;
    Ok(())
}

/// A running manager.
pub struct Gatekeeper {
    child: Child,
}

impl Gatekeeper {
    /// Starts it on `port` (health on `port + 1`, Prometheus on `port + 2`),
    /// waits until it is ready and registers its webhook.
    pub fn start(env: &Env, port: u16) -> Result<Self, String> {
        let certs = env.run.with_extension("gatekeeper-certs");
        std::fs::create_dir_all(&certs).map_err(|e| e.to_string())?;
        let bundle = tls_server::certificate(&certs)?;
        let log = std::fs::File::create(log_path(env)).map_err(|e| e.to_string())?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let admin = env.run.join("cluster/admin.kubeconfig");
        let health = format!("127.0.0.1:{}", port + 1);
        let child = Command::new(binary(&env.root))
            .args([
                format!("--kubeconfig={}", admin.display()),
                "--operation=webhook".into(),
                "--operation=status".into(),
                // Creates each template's constraint CRD (without it the
                // template never becomes `created`).
                "--operation=generate".into(),
                "--disable-cert-rotation".into(),
                format!("--cert-dir={}", certs.display()),
                "--host=127.0.0.1".into(),
                format!("--port={port}"),
                format!("--health-addr={health}"),
                "--metrics-addr=0".into(),
                format!("--prometheus-port={}", port + 2),
                "--disable-opa-builtin=http.send".into(),
                "--shutdown-delay=0".into(),
            ])
            .env("POD_NAMESPACE", "gatekeeper-system")
            .env("POD_NAME", "gatekeeper-bench")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary(&env.root).display()))?;
        let gatekeeper = Self { child };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let ready = Command::new("curl")
                .args(["-sf", "--max-time", "2", &format!("http://{health}/readyz")])
                .output()
                .is_ok_and(|o| o.status.success());
            if ready {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "gatekeeper not ready in 120 s (log: {})",
                    log_path(env).display()
                ));
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        let template =
            std::fs::read_to_string(policy(env, "webhook.yaml.tmpl")).map_err(|e| e.to_string())?;
        let webhook = template
            .replace("@PORT@", &port.to_string())
            .replace("@CABUNDLE@", &cert::ca_bundle_base64(&bundle));
        env.kubectl("admin", &["apply", "-f", "-"], Some(&webhook))?;
        Ok(gatekeeper)
    }

    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// Applies template-and-constraint files. A constraint's kind exists
    /// only once Gatekeeper has compiled its template, so each file is
    /// applied again until it all goes in; then every template must say
    /// `created` and the webhook configuration reaches the apiserver.
    pub fn apply(&self, env: &Env, files: &[&str]) -> Result<(), String> {
        for file in files {
            peer::apply_until_accepted(env, &policy(env, file), Duration::from_secs(120))?;
        }
        env.kubectl(
            "admin",
            &[
                "wait",
                "--for=jsonpath={.status.created}=true",
                "--timeout=120s",
                "constrainttemplates",
                "--all",
            ],
            None,
        )?;
        // Constraints are loaded into the engine a moment after they exist.
        std::thread::sleep(Duration::from_secs(8));
        Ok(())
    }

    /// Unregisters the webhook first (it fails closed), then stops the
    /// process and removes every template (their constraint CRDs go with
    /// them).
    pub fn stop(mut self, env: &Env) {
        let _ = env.kubectl(
            "admin",
            &[
                "delete",
                "validatingwebhookconfiguration",
                WEBHOOK,
                "--ignore-not-found",
            ],
            None,
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = env.kubectl(
            "admin",
            &[
                "delete",
                "constrainttemplates",
                "--all",
                "--ignore-not-found",
            ],
            None,
        );
    }
}

impl Drop for Gatekeeper {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}
