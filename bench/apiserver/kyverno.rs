//! Kyverno v1.19.1's admission controller, built from its Go module by
//! tests/cluster/build-peers.sh and run out of cluster against the bench's
//! control plane, as ../shared/notes/go-programs.md records: its CRDs, a
//! namespace with its two ConfigMaps, and the process with `-serverIP`, which
//! registers its webhooks as `https://127.0.0.1/…` (port 443, so the bench
//! runs as root). It uses the admin kubeconfig (in a cluster it has its own
//! ClusterRoles); its resource filters are empty, so nothing is excluded by
//! configuration, as in a `ConfigMap kyverno` with no `resourceFilters`.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use super::{cluster::Env, peer};

pub fn binary(root: &Path) -> PathBuf {
    root.join("tests/cluster/bin/kyverno")
}

/// Kyverno's output, kept beside the run directory (which `down` removes).
pub fn log_path(env: &Env) -> PathBuf {
    env.run.with_extension("kyverno.log")
}

/// CRDs, namespace and ConfigMaps: once per cluster.
pub fn install(env: &Env) -> Result<(), String> {
    peer::install_crds(
        env,
        "kyverno",
        &["crd/clusterpolicies.kyverno.io", "crd/policies.kyverno.io"],
    )?;
    let setup = "apiVersion: v1\nkind: Namespace\nmetadata: {name: kyverno}\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kyverno, namespace: kyverno}\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kyverno-metrics, namespace: kyverno}\n---\n\
         apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: kyverno-admission-controller, namespace: kyverno}\n";
    env.kubectl("admin", &["apply", "-f", "-"], Some(setup))?;
    Ok(())
}

/// A running admission controller.
pub struct Kyverno {
    child: Child,
}

impl Kyverno {
    /// Starts it and waits until it has registered its resource webhook.
    pub fn start(env: &Env, metrics_port: u16) -> Result<Self, String> {
        let log = std::fs::File::create(log_path(env)).map_err(|e| format!("kyverno log: {e}"))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let admin = env.run.join("cluster/admin.kubeconfig");
        let child = Command::new(binary(&env.root))
            .args([
                &format!("-kubeconfig={}", admin.display()),
                "-serverIP=127.0.0.1",
                "-webhookServerPort=443",
                "-caSecretName=kyverno-svc.kyverno.svc.kyverno-tls-ca",
                "-tlsSecretName=kyverno-svc.kyverno.svc.kyverno-tls-pair",
                "-admissionReports=false",
                &format!("-metricsPort={metrics_port}"),
                &format!("-profilePort={}", metrics_port + 1),
            ])
            .env("INIT_CONFIG", "kyverno")
            .env("METRICS_CONFIG", "kyverno-metrics")
            .env("KYVERNO_NAMESPACE", "kyverno")
            .env(
                "KYVERNO_SERVICEACCOUNT_NAME",
                "kyverno-admission-controller",
            )
            .env("KYVERNO_DEPLOYMENT", "kyverno-admission-controller")
            .env("KYVERNO_POD_NAME", "kyverno-bench")
            .env("KYVERNO_SVC", "kyverno-svc")
            .env("KYVERNO_ROLE_NAME", "kyverno")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary(&env.root).display()))?;
        let kyverno = Self { child };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let hooks = env
                .kubectl(
                    "admin",
                    &["get", "validatingwebhookconfigurations", "-o", "name"],
                    None,
                )
                .unwrap_or_default();
            if hooks.contains("kyverno-resource-validating-webhook-cfg") {
                return Ok(kyverno);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "kyverno registered no resource webhook in 120 s (log: {})",
                    log_path(env).display()
                ));
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// Applies policy files and waits until each is Ready and Kyverno's
    /// resource webhook has rules for them.
    pub fn apply(&self, env: &Env, files: &[&str]) -> Result<(), String> {
        // Its webhooks are registered a few seconds before its TLS pair is
        // served ("tls: internal error" until then): retry for a minute.
        for file in files {
            let path = env.root.join("bench/peers/kyverno").join(file);
            peer::apply_until_accepted(env, &path.display().to_string(), Duration::from_secs(60))?;
        }
        env.kubectl(
            "admin",
            &[
                "wait",
                "--for=condition=Ready",
                "--timeout=120s",
                "clusterpolicies",
                "--all",
            ],
            None,
        )?;
        // Webhook rules reach the apiserver through its informers.
        std::thread::sleep(Duration::from_secs(5));
        Ok(())
    }

    /// Removes every policy, stops the process and its webhooks, which it
    /// would otherwise leave registered (and failing closed).
    pub fn stop(mut self, env: &Env) {
        let _ = env.kubectl(
            "admin",
            &["delete", "clusterpolicies", "--all", "--wait=false"],
            None,
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
        for kind in [
            "validatingwebhookconfigurations",
            "mutatingwebhookconfigurations",
        ] {
            let _ = env.kubectl(
                "admin",
                &[
                    "delete",
                    kind,
                    "-l",
                    "webhook.kyverno.io/managed-by=kyverno",
                    "--ignore-not-found",
                ],
                None,
            );
        }
        // Policies are left for the next start to pick up otherwise.
        let _ = env.kubectl(
            "admin",
            &["delete", "clusterpolicies", "--all", "--ignore-not-found"],
            None,
        );
    }
}

impl Drop for Kyverno {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}
