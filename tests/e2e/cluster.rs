//! The local control plane as the e2e tests see it: started once per run by
//! scripts/up.sh, driven through the real kubectl as real identities.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

pub type Outcome = Result<(), String>;

pub struct Cluster {
    pub root: PathBuf,
    pub run: PathBuf,
    kubectl: PathBuf,
}

/// What one kubectl invocation did.
#[derive(Debug)]
pub struct Out {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Fails unless the command succeeded.
    pub fn allowed(self, what: &str) -> Result<Out, String> {
        if self.ok {
            Ok(self)
        } else {
            Err(format!("{what}: expected success, got:\n{}", self.stderr))
        }
    }

    /// Fails unless the guard denied the command.
    pub fn denied(self, what: &str) -> Result<Out, String> {
        let by_guard = self.stderr.contains("gitops-guard.io\" denied the request");
        if !self.ok && by_guard {
            Ok(self)
        } else {
            Err(format!(
                "{what}: expected a gitops-guard denial, got ok={}:\n{}{}",
                self.ok, self.stdout, self.stderr
            ))
        }
    }

    pub fn mentions(self, needle: &str) -> Result<Out, String> {
        let all = format!("{}{}", self.stdout, self.stderr);
        if all.contains(needle) {
            Ok(self)
        } else {
            Err(format!("expected {needle:?} in:\n{all}"))
        }
    }
}

/// What scripts/up.sh starts around the control plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setup {
    /// The guard as a local process, registered by URL; tests play Flux.
    GuardOnHost,
    /// The same, with real Flux controllers reconciling the fleet repository.
    GuardOnHostWithFlux,
    /// A node on this host and no guard yet: the in-cluster suite installs
    /// it the way users do (GG_NODE=1 GG_GUARD=0).
    Node,
}

impl Cluster {
    /// Starts the control plane and what `setup` names into `run`.
    pub fn up(run: &Path, setup: Setup) -> Result<Self, String> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let kubectl = root.join("tests/cluster/bin/kubectl");
        if !root.join("tests/cluster/bin/gg-cluster").exists() {
            return Err("tests/cluster/bin/gg-cluster is missing: run tests/cluster/build.sh (make test does)".into());
        }
        let status = Command::new(root.join("scripts/up.sh"))
            .arg(run)
            .env("GG_GUARD_BIN", env!("CARGO_BIN_EXE_gitops-guard"))
            .env(
                "GG_FLUX",
                if setup == Setup::GuardOnHostWithFlux {
                    "1"
                } else {
                    "0"
                },
            )
            .env("GG_NODE", if setup == Setup::Node { "1" } else { "0" })
            .env("GG_GUARD", if setup == Setup::Node { "0" } else { "1" })
            // The shipped NetworkPolicy lets the guard reach the apiserver on
            // 443 or 6443 (after the Service address is translated).
            .envs((setup == Setup::Node).then_some(("GG_API_PORT", "6443")))
            .status()
            .map_err(|e| format!("scripts/up.sh: {e}"))?;
        let cluster = Cluster {
            root,
            run: run.to_path_buf(),
            kubectl,
        };
        if !status.success() {
            cluster.down(true);
            return Err(format!(
                "scripts/up.sh failed; logs kept in {}",
                run.display()
            ));
        }
        Ok(cluster)
    }

    pub fn down(&self, keep_logs: bool) {
        let mut cmd = Command::new(self.root.join("scripts/down.sh"));
        cmd.arg(&self.run);
        if keep_logs {
            cmd.env("GG_KEEP_RUN_DIR", "1");
        }
        let _ = cmd.status();
    }

    /// `scripts/guard.sh start|stop`: take the webhook away and bring it back.
    pub fn guard(&self, action: &str) -> Outcome {
        let status = Command::new(self.root.join("scripts/guard.sh"))
            .args([action, &self.run.display().to_string()])
            .env("GG_GUARD_BIN", env!("CARGO_BIN_EXE_gitops-guard"))
            .status()
            .map_err(|e| e.to_string())?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("guard.sh {action} failed"))
        }
    }

    pub fn kubeconfig(&self, who: &str) -> PathBuf {
        self.run.join("cluster").join(format!("{who}.kubeconfig"))
    }

    /// Runs kubectl as `who`: `admin`, `alice`, `bob`, `carol` (client
    /// certificates) or `kustomize-controller`, `helm-controller`,
    /// `argocd-application-controller` (TokenRequest tokens).
    pub fn kubectl(&self, who: &str, args: &[&str]) -> Out {
        self.kubectl_with(who, args, None, &[])
    }

    pub fn kubectl_stdin(&self, who: &str, args: &[&str], stdin: &str) -> Out {
        self.kubectl_with(who, args, Some(stdin), &[])
    }

    pub fn kubectl_with(
        &self,
        who: &str,
        args: &[&str],
        stdin: Option<&str>,
        env: &[(&str, &str)],
    ) -> Out {
        let mut cmd = Command::new(&self.kubectl);
        cmd.args(args)
            .env("KUBECONFIG", self.kubeconfig(who))
            .envs(env.iter().copied());
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let output = cmd.spawn().and_then(|mut child| {
            if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
                pipe.write_all(text.as_bytes())?;
            }
            child.wait_with_output()
        });
        match output {
            Ok(o) => Out {
                ok: o.status.success(),
                stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            },
            Err(e) => Out {
                ok: false,
                stdout: String::new(),
                stderr: format!("cannot run kubectl: {e}"),
            },
        }
    }

    /// RoleBinding `alice-edit`: alice gets the built-in `edit` role in
    /// `namespace` (which, like the real one, may impersonate its service
    /// accounts).
    pub fn alice_edit_in(&self, namespace: &str) -> Outcome {
        let binding = format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n\
             metadata: {{name: alice-edit, namespace: {namespace}}}\n\
             roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}}\n\
             subjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}}]\n"
        );
        self.kubectl_stdin("admin", &["apply", "-f", "-"], &binding)
            .allowed(&format!("alice gets edit in {namespace}"))
            .map(|_| ())
    }

    /// A fresh namespace for one test, with optional labels.
    pub fn namespace(&self, name: &str, labels: &[&str]) -> Result<String, String> {
        self.kubectl("admin", &["create", "namespace", name])
            .allowed("create namespace")?;
        if !labels.is_empty() {
            let mut args = vec!["label", "namespace", name];
            args.extend_from_slice(labels);
            self.kubectl("admin", &args).allowed("label namespace")?;
        }
        Ok(name.to_owned())
    }
}

/// Polls `check` until it passes or `limit` runs out; the last error explains.
pub fn eventually(limit: Duration, mut check: impl FnMut() -> Outcome) -> Outcome {
    let deadline = Instant::now() + limit;
    loop {
        match check() {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!("still failing after {limit:?}: {e}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

/// A Deployment owned by the Flux Kustomization `flux-system/apps`.
pub fn flux_deployment(ns: &str, replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: {ns}\n  labels:\n    app: web\n    \
         kustomize.toolkit.fluxcd.io/name: apps\n    kustomize.toolkit.fluxcd.io/namespace: flux-system\n\
         spec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    \
         metadata: {{labels: {{app: web}}}}\n    spec:\n      containers: [{{name: web, image: nginx:1.27}}]\n"
    )
}

/// kubectl arguments of a server-side apply from stdin as kustomize-controller makes it.
pub const FLUX_APPLY: [&str; 5] = [
    "apply",
    "--server-side",
    "--field-manager=kustomize-controller",
    "-f",
    "-",
];

/// A merge patch of Deployment `web`'s `/status` in `ns`, as `who`.
pub fn patch_web_status(c: &Cluster, who: &str, ns: &str, patch: &str) -> Out {
    let args = [
        "patch",
        "deployment/web",
        "-n",
        ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        patch,
    ];
    c.kubectl(who, &args)
}

/// A ConfigMap `shop` tracked by the Argo CD Application `argocd/shop`.
pub fn argo_configmap(ns: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shop\n  namespace: {ns}\n  annotations:\n    \
         argocd.argoproj.io/tracking-id: shop:/ConfigMap:{ns}/shop\ndata: {{color: blue}}\n"
    )
}

/// Server-side apply as Argo CD's application controller does it.
pub fn argo_apply(c: &Cluster, manifest: &str) -> Result<Out, String> {
    let apply = [
        "apply",
        "--server-side",
        "--field-manager=argocd-controller",
        "-f",
        "-",
    ];
    c.kubectl_stdin("argocd-application-controller", &apply, manifest)
        .allowed("Argo CD's server-side apply")
}

/// Server-side apply as Flux's kustomize-controller does it.
pub fn flux_apply(c: &Cluster, manifest: &str) -> Result<Out, String> {
    c.kubectl_stdin("kustomize-controller", &FLUX_APPLY, manifest)
        .allowed("the reconciler's server-side apply")
}

impl Cluster {
    /// Runs kubectl with a fresh TokenRequest token of `namespace/sa`.
    pub fn kubectl_as_service_account(
        &self,
        namespace: &str,
        sa: &str,
        args: &[&str],
        stdin: &str,
    ) -> Out {
        let token = self.kubectl("admin", &["create", "token", sa, "-n", namespace]);
        if !token.ok {
            return token;
        }
        let bearer = format!("--token={}", token.stdout.trim());
        self.kubectl_presenting(&[&bearer], args, stdin)
    }

    /// Runs kubectl against the apiserver with only `credentials` (for
    /// example `--token=…`, or `--client-certificate` and `--client-key`).
    pub fn kubectl_presenting(&self, credentials: &[&str], args: &[&str], stdin: &str) -> Out {
        let server = std::fs::read_to_string(self.run.join("cluster/ready")).unwrap_or_default();
        let ca = self.run.join("cluster/pki/ca.crt").display().to_string();
        let mut all = vec![
            "--kubeconfig=/dev/null",
            "--server",
            server.trim(),
            "--certificate-authority",
            &ca,
        ];
        all.extend_from_slice(credentials);
        all.extend_from_slice(args);
        self.kubectl_with("admin", &all, Some(stdin), &[])
    }
}
