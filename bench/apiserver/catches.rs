//! What each engine catches: the bypass-matrix and Flux-compatibility
//! scenarios (SECURITY.md) run through the real apiserver against each
//! engine's configuration in turn. An attack should be refused; a write that
//! Flux or Kubernetes makes should pass. Every scenario first puts its
//! fixtures back as kustomize-controller, which every engine lets write.
//! The bench cluster runs the real source-controller and kustomize-controller
//! (scripts/flux.sh); the finalizer case waits for the real one's write.
//!
//!     cargo bench --bench apiserver -- --catches

use std::time::{Duration, Instant};

use super::cluster::Env;

pub const NAMESPACE: &str = "peers";
const KUSTOMIZE: &str = "system:serviceaccount:flux-system:kustomize-controller";
const TEAM_A: &str = "system:serviceaccount:team-a:team-a";
/// A person's edit of the Flux-owned ConfigMap.
const EDIT_APP_CONFIG: [&str; 7] = [
    "patch",
    "configmap",
    "app-config",
    "-n",
    NAMESPACE,
    "-p",
    r#"{"data":{"color":"red"}}"#,
];

/// What should happen to a scenario's write.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// An attack: the engine should refuse it.
    Refused,
    /// Flux's or Kubernetes' own write: it must pass.
    Passes,
}

pub struct Case {
    pub name: &'static str,
    pub expect: Expect,
    run: fn(&Env) -> Attempt,
}

/// What a scenario's write did.
pub enum Attempt {
    Succeeded,
    /// Refused: by whom, in a few words.
    Refused(String),
    /// The scenario could not be run (its setup failed).
    Error(String),
}

impl Attempt {
    /// The table's cell.
    pub fn cell(&self, expect: Expect) -> String {
        match (self, expect) {
            (Attempt::Refused(by), Expect::Refused) => format!("denied ({by})"),
            (Attempt::Succeeded, Expect::Refused) => "**allowed**".into(),
            (Attempt::Succeeded, Expect::Passes) => "passes".into(),
            (Attempt::Refused(by), Expect::Passes) => format!("**broken** ({by})"),
            (Attempt::Error(e), _) => format!("not run: {e}"),
        }
    }
}

/// Who refused, from kubectl's error.
fn refusal(stderr: &str) -> String {
    if stderr.contains("gitops-guard.io\" denied") {
        "gitops-guard".into()
    } else if stderr.contains("validation.gatekeeper.sh") {
        "Gatekeeper".into()
    } else if stderr.contains("kyverno") {
        "Kyverno".into()
    } else if stderr.contains("ValidatingAdmissionPolicy") {
        "ValidatingAdmissionPolicy".into()
    } else if stderr.contains("is forbidden: User") {
        "RBAC".into()
    } else {
        stderr
            .lines()
            .last()
            .unwrap_or("refused")
            .chars()
            .take(80)
            .collect()
    }
}

fn attempt(result: Result<String, String>) -> Attempt {
    match result {
        Ok(_) => Attempt::Succeeded,
        Err(stderr) => Attempt::Refused(refusal(&stderr)),
    }
}

fn owned_configmap(ns: &str, name: &str, owner_ns: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n    \
         kustomize.toolkit.fluxcd.io/name: apps\n    kustomize.toolkit.fluxcd.io/namespace: {owner_ns}\n\
         data: {{color: blue}}\n"
    )
}

fn fixtures() -> String {
    let labels = "kustomize.toolkit.fluxcd.io/name: apps, kustomize.toolkit.fluxcd.io/namespace: flux-system";
    format!(
        "{}---\napiVersion: apps/v1\nkind: Deployment\n\
         metadata: {{name: web, namespace: {NAMESPACE}, labels: {{app: web, {labels}}}}}\n\
         spec: {{replicas: 1, selector: {{matchLabels: {{app: web}}}}, template: {{metadata: {{labels: {{app: web}}}}, \
         spec: {{containers: [{{name: web, image: nginx:1.27}}]}}}}}}\n---\n\
         apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n\
         metadata: {{name: app, namespace: {NAMESPACE}, labels: {{{labels}}}}}\n\
         spec: {{url: \"http://127.0.0.1:1/app.git\", interval: 10m, ref: {{branch: main}}}}\n---\n\
         apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n\
         metadata: {{name: app, namespace: {NAMESPACE}, labels: {{{labels}}}}}\n\
         spec: {{serviceAccountName: deployer, interval: 10m, path: ./, prune: true, \
         sourceRef: {{kind: GitRepository, name: app}}}}\n",
        owned_configmap(NAMESPACE, "app-config", "flux-system")
    )
}

/// A server-side apply from stdin under kustomize-controller's field manager.
const APPLY_AS_FLUX: [&str; 6] = [
    "apply",
    "--server-side",
    "--force-conflicts",
    "--field-manager=kustomize-controller",
    "-f",
    "-",
];

/// As kustomize-controller applies: server-side, its field manager.
fn flux_apply(env: &Env, manifest: &str) -> Result<String, String> {
    env.kubectl("kustomize-controller", &APPLY_AS_FLUX, Some(manifest))
}

/// Namespaces, tenants and RBAC the scenarios need; before any engine.
pub fn prepare(env: &Env) -> Result<(), String> {
    let setup = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {NAMESPACE}}}\n---\n\
         apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: deployer, namespace: {NAMESPACE}}}\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n\
         metadata: {{name: alice-edit, namespace: {NAMESPACE}}}\n\
         roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}}\n\
         subjects: [{{kind: User, name: alice}}]\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {{name: peers-flux-user}}\n\
         rules: [{{apiGroups: [kustomize.toolkit.fluxcd.io, source.toolkit.fluxcd.io], \
         resources: [kustomizations, gitrepositories], verbs: [get, list, patch, update]}}]\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n\
         metadata: {{name: alice-flux, namespace: {NAMESPACE}}}\n\
         roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: peers-flux-user}}\n\
         subjects: [{{kind: User, name: alice}}]\n---\n\
         # The built-in edit role lets alice impersonate flux-system's accounts.\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n\
         metadata: {{name: alice-edit, namespace: flux-system}}\n\
         roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}}\n\
         subjects: [{{kind: User, name: alice}}]\n"
    );
    env.kubectl("admin", &["apply", "-f", "-"], Some(&setup))?;
    for tenant in ["team-a", "team-b"] {
        let manifest = format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {tenant}, labels: {{toolkit.fluxcd.io/tenant: {tenant}}}}}\n---\n\
             apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: {tenant}, namespace: {tenant}}}\n---\n\
             apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n\
             metadata: {{name: gotk-reconciler, namespace: {tenant}}}\n\
             roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}}\n\
             subjects: [{{kind: ServiceAccount, name: {tenant}, namespace: {tenant}}}]\n"
        );
        env.kubectl("admin", &["apply", "-f", "-"], Some(&manifest))?;
    }
    // An over-broad binding: team-a's account may write in team-b too.
    let overreach = "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n\
         metadata: {name: team-a-overreach, namespace: team-b}\n\
         roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}\n\
         subjects: [{kind: ServiceAccount, name: team-a, namespace: team-a}]\n";
    env.kubectl("admin", &["apply", "-f", "-"], Some(overreach))?;
    // team-a's Kustomization, which impersonates its account.
    let kustomization = "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n\
         metadata: {name: apps, namespace: team-a}\n\
         spec: {serviceAccountName: team-a, interval: 10m, path: ./, prune: true, \
         sourceRef: {kind: GitRepository, name: team-a}}\n";
    flux_apply(env, kustomization)?;
    reset(env)
}

/// Puts the fixtures back.
fn reset(env: &Env) -> Result<(), String> {
    flux_apply(env, &fixtures()).map(drop)
}

fn alice(env: &Env, args: &[&str]) -> Attempt {
    attempt(env.kubectl("alice", args, None))
}

/// kubectl with a fresh token of `namespace/account`.
fn with_token(
    env: &Env,
    namespace: &str,
    account: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Attempt {
    let token = match env.kubectl(
        "admin",
        &["create", "token", account, "-n", namespace],
        None,
    ) {
        Ok(t) => t,
        Err(e) => return Attempt::Error(format!("token: {e}")),
    };
    let server = std::fs::read_to_string(env.run.join("cluster/ready")).unwrap_or_default();
    let ca = env.run.join("cluster/pki/ca.crt").display().to_string();
    let bearer = format!("--token={}", token.trim());
    let mut all = vec![
        "--kubeconfig=/dev/null",
        "--server",
        server.trim(),
        "--certificate-authority",
        &ca,
        &bearer,
    ];
    all.extend_from_slice(args);
    attempt(env.kubectl("admin", &all, stdin))
}

pub fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "a person edits a Flux-owned ConfigMap",
            expect: Expect::Refused,
            run: |env| alice(env, &EDIT_APP_CONFIG),
        },
        Case {
            name: "a person deletes it",
            expect: Expect::Refused,
            run: |env| {
                alice(
                    env,
                    &[
                        "delete",
                        "configmap",
                        "app-config",
                        "-n",
                        NAMESPACE,
                        "--wait=false",
                    ],
                )
            },
        },
        Case {
            name: "a person removes Flux's ownership label",
            expect: Expect::Refused,
            run: |env| {
                alice(
                    env,
                    &[
                        "label",
                        "configmap",
                        "app-config",
                        "-n",
                        NAMESPACE,
                        "kustomize.toolkit.fluxcd.io/name-",
                    ],
                )
            },
        },
        Case {
            name: "a person creates an object with Flux's labels (spoofed CREATE)",
            expect: Expect::Refused,
            run: |env| {
                let manifest = owned_configmap(NAMESPACE, "spoofed", "flux-system");
                let out = attempt(env.kubectl("alice", &["create", "-f", "-"], Some(&manifest)));
                let _ = env.kubectl(
                    "admin",
                    &[
                        "delete",
                        "configmap",
                        "spoofed",
                        "-n",
                        NAMESPACE,
                        "--ignore-not-found",
                    ],
                    None,
                );
                out
            },
        },
        Case {
            name: "`kubectl scale` of a Flux-owned Deployment (`/scale` carries no labels)",
            expect: Expect::Refused,
            run: |env| {
                alice(
                    env,
                    &[
                        "scale",
                        "deployment",
                        "web",
                        "-n",
                        NAMESPACE,
                        "--replicas=3",
                    ],
                )
            },
        },
        Case {
            name: "a person's server-side apply with Flux's field manager",
            expect: Expect::Refused,
            run: |env| {
                let manifest = format!(
                    "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: app-config, namespace: {NAMESPACE}}}\ndata: {{color: green}}\n"
                );
                attempt(env.kubectl("alice", &APPLY_AS_FLUX, Some(&manifest)))
            },
        },
        Case {
            name: "a person impersonates kustomize-controller (`--as`, granted by `edit` in flux-system)",
            expect: Expect::Refused,
            run: |env| alice(env, &[&["--as", KUSTOMIZE][..], &EDIT_APP_CONFIG].concat()),
        },
        Case {
            name: "a tenant's reconciler writes into another tenant (RBAC allows it)",
            expect: Expect::Refused,
            run: |env| {
                let manifest = owned_configmap("team-b", "escape", "team-a");
                let out = with_token(
                    env,
                    "team-a",
                    "team-a",
                    &["create", "-f", "-"],
                    Some(&manifest),
                );
                let _ = env.kubectl(
                    "admin",
                    &[
                        "delete",
                        "configmap",
                        "escape",
                        "-n",
                        "team-b",
                        "--ignore-not-found",
                    ],
                    None,
                );
                out
            },
        },
        Case {
            name: "a tenant Kustomization that names no service account",
            expect: Expect::Refused,
            run: |env| {
                let manifest = "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n\
                     metadata: {name: rogue, namespace: team-a}\n\
                     spec: {interval: 10m, path: ./, prune: true, sourceRef: {kind: GitRepository, name: team-a}}\n";
                let out = attempt(flux_apply(env, manifest));
                let _ = env.kubectl(
                    "admin",
                    &[
                        "delete",
                        "kustomization",
                        "rogue",
                        "-n",
                        "team-a",
                        "--ignore-not-found",
                    ],
                    None,
                );
                out
            },
        },
        Case {
            name: "kustomize-controller applies (the reconciler)",
            expect: Expect::Passes,
            run: |env| {
                attempt(flux_apply(
                    env,
                    &fixtures().replace("color: blue", "color: teal"),
                ))
            },
        },
        Case {
            name: "kustomize-controller applies a tenant's objects as the tenant's account",
            expect: Expect::Passes,
            run: |env| {
                let manifest = owned_configmap("team-a", "settings", "team-a");
                attempt(env.kubectl(
                    "kustomize-controller",
                    &[
                        "apply",
                        "--server-side",
                        "--field-manager=kustomize-controller",
                        "--as",
                        TEAM_A,
                        "-f",
                        "-",
                    ],
                    Some(&manifest),
                ))
            },
        },
        Case {
            name: "the real source-controller adds its finalizer to a new Flux-owned GitRepository",
            expect: Expect::Passes,
            run: source_controller_finalizer,
        },
        Case {
            name: "`flux reconcile` by a person (the requestedAt annotation)",
            expect: Expect::Passes,
            run: |env| {
                let now = jiff::Timestamp::now().to_string();
                alice(
                    env,
                    &[
                        "annotate",
                        "--overwrite",
                        "kustomization",
                        "app",
                        "-n",
                        NAMESPACE,
                        &format!("reconcile.fluxcd.io/requestedAt={now}"),
                    ],
                )
            },
        },
        Case {
            name: "the namespace controller empties a deleted namespace of Flux-owned objects",
            expect: Expect::Passes,
            run: namespace_deletion,
        },
    ]
}

/// The real source-controller (scripts/flux.sh) reconciles every
/// GitRepository: its first write adds `finalizers.fluxcd.io`. A new one,
/// under a new name each time, so the finalizer is the controller's own.
fn source_controller_finalizer(env: &Env) -> Attempt {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let name = format!(
        "app-{}",
        RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let labels = "kustomize.toolkit.fluxcd.io/name: apps, kustomize.toolkit.fluxcd.io/namespace: flux-system";
    let repo = format!(
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n\
         metadata: {{name: {name}, namespace: {NAMESPACE}, labels: {{{labels}}}}}\n\
         spec: {{url: \"http://127.0.0.1:1/app.git\", interval: 10m, ref: {{branch: main}}}}\n"
    );
    if let Err(e) = flux_apply(env, &repo) {
        return Attempt::Error(format!("setup: {e}"));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let finalizers = env
            .kubectl(
                "admin",
                &[
                    "get",
                    "gitrepository",
                    &name,
                    "-n",
                    NAMESPACE,
                    "-o",
                    "jsonpath={.metadata.finalizers}",
                ],
                None,
            )
            .unwrap_or_default();
        if finalizers.contains("finalizers.fluxcd.io") {
            return Attempt::Succeeded;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let log = env.run.join("logs/source-controller.log");
    let denied = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .rev()
        .find(|l| l.contains(&name) && l.contains("denied"))
        .map(refusal)
        .unwrap_or_else(|| "no finalizer after 30 s".into());
    Attempt::Refused(denied)
}

fn namespace_deletion(env: &Env) -> Attempt {
    let ns = "peers-gone";
    // A namespace an earlier engine left terminating finishes once that
    // engine is gone.
    let gone = Instant::now() + Duration::from_secs(60);
    while env
        .kubectl("admin", &["get", "namespace", ns], None)
        .is_ok()
        && Instant::now() < gone
    {
        std::thread::sleep(Duration::from_secs(1));
    }
    let setup = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n---\n{}",
        owned_configmap(ns, "app-config", "flux-system")
    );
    if let Err(e) = flux_apply(env, &setup) {
        return Attempt::Error(format!("setup: {e}"));
    }
    if let Err(e) = env.kubectl("admin", &["delete", "namespace", ns, "--wait=false"], None) {
        return Attempt::Error(format!("delete: {e}"));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if env
            .kubectl("admin", &["get", "namespace", ns], None)
            .is_err()
        {
            return Attempt::Succeeded;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    // Unstick it for the next engine: the admin empties it with no engine.
    let why = env
        .kubectl(
            "admin",
            &[
                "get",
                "namespace",
                ns,
                "-o",
                "jsonpath={.status.conditions[*].message}",
            ],
            None,
        )
        .unwrap_or_default();
    println!("    {ns} still terminating after 60 s: {why}");
    Attempt::Refused("namespace stuck terminating".into())
}

/// Runs every case; returns one cell per case.
pub fn run(env: &Env) -> Vec<String> {
    cases()
        .iter()
        .map(|case| {
            let outcome = match reset(env) {
                Ok(()) => (case.run)(env),
                Err(e) => Attempt::Error(format!("fixtures: {e}")),
            };
            let cell = outcome.cell(case.expect);
            println!("  {}: {cell}", case.name);
            cell
        })
        .collect()
}
