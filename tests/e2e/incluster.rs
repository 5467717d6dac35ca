//! The guard installed the way users install it, on the node `gg-cluster
//! node` runs on this host (containerd, kubelet, kube-proxy, kube-scheduler;
//! tests/cluster/NODE.md): the image built without Docker and pulled from
//! the local registry by digest, `kubectl apply -k` of an overlay over
//! `manifests/`, three replicas behind the Service the registration names,
//! and the kube-apiserver calling them through that Service.
//!
//! The image holds the test build's binary (a debug build), not a release
//! build: what is proven here is the image, the manifests and the wiring.
//! NetworkPolicy is enforced by kube-network-policies on the node
//! (tests/cluster/build-netpol.sh), which judges traffic between Pods, not
//! between a Pod and the host's own addresses (the apiserver and
//! Alertmanager here): those rules of the policy are exercised, not proven.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

use super::cluster::{Cluster, Outcome, eventually, flux_apply};
use super::drift::drift_alerts;

const NS: &str = "gitops-guard";
const DEPLOYMENT: &str = "deployment/gitops-guard";

fn read(c: &Cluster, file: &str) -> Result<String, String> {
    std::fs::read_to_string(c.run.join(file))
        .map(|s| s.trim().to_owned())
        .map_err(|e| format!("{file}: {e}"))
}

/// `KEY=value` from a run directory's env file.
fn env_value(c: &Cluster, file: &str, key: &str) -> Result<String, String> {
    let text = read(c, file)?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_owned)
        .ok_or_else(|| format!("{key} missing from {file}"))
}

/// The host address Pods reach host services on (`up --node` wrote it).
fn node_ip(c: &Cluster) -> Result<String, String> {
    read(c, "cluster/node-ip")
}

fn alertmanager(c: &Cluster) -> Result<String, String> {
    Ok(format!(
        "http://127.0.0.1:{}",
        read(c, "alertmanager/port")?
    ))
}

fn json(c: &Cluster, args: &[&str]) -> Result<Value, String> {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let out = c.kubectl("admin", &all).allowed(&args.join(" "))?;
    serde_json::from_str(&out.stdout).map_err(|e| format!("{}: {e}", args.join(" ")))
}

fn install_dir(c: &Cluster) -> PathBuf {
    c.run.join("install")
}

/// Builds the guard's image (scripts/image.sh, crane) from the test build's
/// binary and pushes it to the local registry; returns (repository, digest).
fn push_image(c: &Cluster) -> Result<(String, String), String> {
    let registry = env_value(c, "registries.env", "PLAIN_REGISTRY")?;
    let mut image = Command::new(c.root.join("scripts/image.sh"));
    image
        .arg(format!("{registry}/gitops-guard:e2e"))
        .arg(env!("CARGO_BIN_EXE_gitops-guard"));
    let pinned = stdout_of(image, "scripts/image.sh")?;
    let (repository, digest) = pinned
        .split_once('@')
        .ok_or_else(|| format!("scripts/image.sh printed {pinned:?}, not repo@digest"))?;
    Ok((repository.to_owned(), digest.to_owned()))
}

/// `gitops-guard cert` into `dir`; returns the caBundle it prints.
fn certificate(dir: &Path) -> Result<String, String> {
    let mut cert = Command::new(env!("CARGO_BIN_EXE_gitops-guard"));
    cert.args(["cert", "--out"]).arg(dir);
    stdout_of(cert, "gitops-guard cert")
}

/// Runs `command`; its trimmed stdout, or an error with its stderr.
fn stdout_of(mut command: Command, what: &str) -> Result<String, String> {
    let out = command.output().map_err(|e| format!("{what}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// How many webhooks each registration in `manifests/` has, as kustomize
/// renders it: the overlay patches each one's caBundle by index.
fn webhook_counts(c: &Cluster) -> Result<(usize, usize), String> {
    let rendered = c
        .kubectl(
            "admin",
            &["kustomize", &c.root.join("manifests").display().to_string()],
        )
        .allowed("kubectl kustomize manifests")?
        .stdout;
    let count = |kind: &str| {
        rendered
            .split("\n---\n")
            .filter(|doc| doc.contains(&format!("kind: {kind}\n")))
            .map(|doc| doc.matches("clientConfig:").count())
            .sum::<usize>()
    };
    Ok((
        count("ValidatingWebhookConfiguration"),
        count("MutatingWebhookConfiguration"),
    ))
}

/// The overlay a user writes: manifests/ as its base, the image by digest,
/// the serving Secret from `gitops-guard cert`'s files, the caBundle in
/// every webhook, and Alertmanager's address.
fn write_overlay(c: &Cluster, repository: &str, digest: &str, ca: &str) -> Outcome {
    let dir = install_dir(c);
    let (validating, mutating) = webhook_counts(c)?;
    if validating == 0 || mutating == 0 {
        return Err(format!(
            "manifests/ renders {validating} validating and {mutating} mutating webhooks"
        ));
    }
    let ca_patches = |count: usize| -> String {
        (0..count)
            .map(|i| {
                format!(
                    "      - {{op: add, path: /webhooks/{i}/clientConfig/caBundle, value: \"{ca}\"}}\n"
                )
            })
            .collect()
    };
    // kustomize takes only a relative path to a base on disk.
    let base = relative(&dir, &c.root.join("manifests"));
    let alertmanager = format!("http://{}:{}/", node_ip(c)?, read(c, "alertmanager/port")?);
    let kustomization = format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
         resources: [{base}]\n\
         images:\n  - {{name: ghcr.io/gitops-guard/gitops-guard, newName: {repository}, digest: \"{digest}\"}}\n\
         generatorOptions: {{disableNameSuffixHash: true}}\n\
         secretGenerator:\n  - {{name: gitops-guard-tls, namespace: {NS}, type: kubernetes.io/tls, files: [tls.crt, tls.key]}}\n\
         patches:\n\
         \x20 - target: {{kind: Deployment, name: gitops-guard}}\n    patch: |-\n\
         \x20     - {{op: add, path: /spec/template/spec/containers/0/args/-, value: \"--alertmanager-url={alertmanager}\"}}\n\
         \x20     - {{op: add, path: /spec/template/spec/containers/0/args/-, value: \"--cluster-name=node\"}}\n\
         \x20 - target: {{kind: ValidatingWebhookConfiguration, name: gitops-guard}}\n    patch: |-\n{}\
         \x20 - target: {{kind: MutatingWebhookConfiguration, name: gitops-guard}}\n    patch: |-\n{}",
        ca_patches(validating),
        ca_patches(mutating),
    );
    std::fs::write(dir.join("kustomization.yaml"), kustomization).map_err(|e| e.to_string())
}

/// A fresh install is serving: rolled out, three ready endpoints, and the
/// apiserver calling it.
fn serving(c: &Cluster) -> Outcome {
    rolled_out(c)?;
    eventually(Duration::from_secs(30), || {
        three_ready_behind_the_service(c)
    })?;
    webhook_in_force(c)
}

/// Waits until the apiserver calls the installed guard: a new registration
/// and a new Service reach the apiserver and kube-proxy a moment after
/// `apply` (up.sh waits the same way for the local one).
fn webhook_in_force(c: &Cluster) -> Outcome {
    let probe = owned_configmap("default", "gg-probe", "x");
    eventually(Duration::from_secs(60), || {
        c.kubectl_stdin("alice", &["apply", "--dry-run=server", "-f", "-"], &probe)
            .denied("a probe claiming Flux ownership")
            .map(|_| ())
    })
}

/// `to` as a path relative to the directory `from` (both absolute).
fn relative(from: &Path, to: &Path) -> String {
    let (from, to): (Vec<_>, Vec<_>) = (from.components().collect(), to.components().collect());
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let up = std::iter::repeat_n("..".to_owned(), from.len() - common);
    let down = to[common..]
        .iter()
        .map(|c| c.as_os_str().to_string_lossy().into_owned());
    up.chain(down).collect::<Vec<_>>().join("/")
}

/// Waits until the Deployment has rolled out and its pods are all ready.
fn rolled_out(c: &Cluster) -> Outcome {
    c.kubectl(
        "admin",
        &["-n", NS, "rollout", "status", DEPLOYMENT, "--timeout=180s"],
    )
    .allowed("kubectl rollout status")?;
    Ok(())
}

/// The guard's Pods as the API returns them.
fn guard_pod_objects(c: &Cluster) -> Result<Vec<Value>, String> {
    let selector = "app.kubernetes.io/name=gitops-guard";
    let pods = json(c, &["-n", NS, "get", "pods", "-l", selector])?;
    Ok(pods["items"].as_array().cloned().unwrap_or_default())
}

/// The guard's pods: (name, ready), running ones only.
fn guard_pods(c: &Cluster) -> Result<Vec<(String, bool)>, String> {
    Ok(guard_pod_objects(c)?
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| {
            let ready = p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            (
                p["metadata"]["name"].as_str().unwrap_or("").to_owned(),
                ready,
            )
        })
        .collect())
}

/// The Service's endpoints that EndpointSlices mark ready: pod name → ready.
fn service_endpoints(c: &Cluster) -> Result<Vec<(String, Value)>, String> {
    let slices = json(
        c,
        &[
            "-n",
            NS,
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=gitops-guard",
        ],
    )?;
    Ok(slices["items"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
        .map(|e| {
            (
                e["targetRef"]["name"].as_str().unwrap_or("").to_owned(),
                e["conditions"].clone(),
            )
        })
        .collect())
}

fn three_ready_behind_the_service(c: &Cluster) -> Outcome {
    let ready: Vec<String> = service_endpoints(c)?
        .into_iter()
        .filter(|(_, cond)| cond["ready"] == true)
        .map(|(name, _)| name)
        .collect();
    if ready.len() == 3 {
        Ok(())
    } else {
        Err(format!(
            "ready endpoints of Service gitops-guard: {ready:?}"
        ))
    }
}

pub fn kubectl_apply_k_manifests_brings_three_replicas_ready_behind_the_service(
    c: &Cluster,
) -> Outcome {
    let dir = install_dir(c);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let (repository, digest) = push_image(c)?;
    let ca = certificate(&dir)?;
    write_overlay(c, &repository, &digest, &ca)?;
    let started = Instant::now();
    c.kubectl("admin", &["apply", "-k", &dir.display().to_string()])
        .allowed("kubectl apply -k (an overlay of manifests/)")?;
    serving(c)?;
    eprintln!(
        "3 replicas ready behind the Service and denying {:?} after kubectl apply -k",
        started.elapsed()
    );
    // The apiserver reaches the kubelet (its client certificate, the
    // kubelet's webhook authorization): the guard's JSON logs come back.
    let logs = c
        .kubectl("admin", &["-n", NS, "logs", DEPLOYMENT, "--tail=5"])
        .allowed("kubectl logs of a guard pod")?;
    if !logs.stdout.contains("\"level\"") {
        return Err(format!(
            "kubectl logs gave no JSON log lines:\n{}",
            logs.stdout
        ));
    }
    // Each runs the image the install named by digest, pulled from the
    // local registry (containerd reports what it resolved).
    for pod in &guard_pod_objects(c)? {
        let status = &pod["status"]["containerStatuses"][0];
        let image_id = status["imageID"].as_str().unwrap_or("");
        if !image_id.ends_with(&digest) || status["restartCount"] != 0 {
            return Err(format!(
                "pod {} runs {image_id:?} (restarts {}), expected {repository}@{digest}",
                pod["metadata"]["name"], status["restartCount"]
            ));
        }
    }
    Ok(())
}

/// A ConfigMap as kustomize-controller applies it for Kustomization `apps`.
fn owned_configmap(ns: &str, name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n    \
         kustomize.toolkit.fluxcd.io/name: apps\n    kustomize.toolkit.fluxcd.io/namespace: flux-system\n\
         data: {{greeting: {value}}}\n"
    )
}

/// The sum of a counter over every guard pod, read through the apiserver's
/// pod proxy (the same network path the kubelet's probes take).
fn counter_over_pods(c: &Cluster, metric: &str, labels: &str) -> Result<f64, String> {
    let mut total = 0.0;
    for (pod, _) in guard_pods(c)? {
        let path = format!("/api/v1/namespaces/{NS}/pods/{pod}:9090/proxy/metrics");
        let text = c
            .kubectl("admin", &["get", "--raw", &path])
            .allowed("the guard's /metrics through the pod proxy")?
            .stdout;
        total += text
            .lines()
            .filter(|l| l.starts_with(metric) && l.contains(labels))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>();
    }
    Ok(total)
}

pub fn the_service_registration_denies_a_persons_edit_and_lets_the_reconciler_write(
    c: &Cluster,
) -> Outcome {
    let ns = c.namespace("node-admission", &[])?;
    let denied_before = counter_over_pods(
        c,
        "gitops_guard_admission_requests_total",
        "decision=\"deny\"",
    )?;
    flux_apply(c, &owned_configmap(&ns, "settings", "hello"))?;
    let edit = owned_configmap(&ns, "settings", "changed-by-hand");
    c.kubectl_stdin("alice", &["apply", "-f", "-"], &edit)
        .denied("alice's edit of a Flux-owned ConfigMap")?
        .mentions("Kustomization flux-system/apps")?;
    c.kubectl("alice", &["delete", "configmap", "settings", "-n", &ns])
        .denied("alice's delete of a Flux-owned ConfigMap")?;
    flux_apply(c, &owned_configmap(&ns, "settings", "from-git"))?;
    // The denials were made by the pods behind the Service, not elsewhere.
    let denied_after = counter_over_pods(
        c,
        "gitops_guard_admission_requests_total",
        "decision=\"deny\"",
    )?;
    if denied_after < denied_before + 2.0 {
        return Err(format!(
            "the guard pods counted {denied_before} then {denied_after} denials; expected 2 more"
        ));
    }
    Ok(())
}

/// What the load threads saw: reviews answered as expected, and the rest.
#[derive(Default)]
struct Tally {
    answered: u64,
    failures: Vec<String>,
}

pub fn a_rollout_restart_under_load_fails_no_review(c: &Cluster) -> Outcome {
    let ns = c.namespace("node-rollout", &[])?;
    flux_apply(c, &owned_configmap(&ns, "load", "v1"))?;
    let stop = AtomicBool::new(false);
    let tally = Mutex::new(Tally::default());
    let manifest = owned_configmap(&ns, "load", "edited");
    let (restarted, rollout) = thread::scope(|scope| {
        // Each review goes kubectl → kube-apiserver → Service → a guard pod:
        // alice's edits must be denied by the guard, the reconciler's
        // allowed. Anything else (a webhook call that failed, timed out or
        // found no endpoint) is a failed review.
        for (who, allowed) in [
            ("alice", false),
            ("alice", false),
            ("alice", false),
            ("kustomize-controller", true),
        ] {
            let (stop, tally, manifest) = (&stop, &tally, &manifest);
            scope.spawn(move || {
                let args = [
                    "apply",
                    "--server-side",
                    "--field-manager=kustomize-controller",
                    "--force-conflicts",
                    "--dry-run=server",
                    "-f",
                    "-",
                ];
                while !stop.load(Ordering::Relaxed) {
                    let out = c.kubectl_stdin(who, &args, manifest);
                    let by_guard = out.stderr.contains("gitops-guard.io\" denied the request");
                    let as_expected = if allowed { out.ok } else { !out.ok && by_guard };
                    let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
                    if as_expected {
                        t.answered += 1;
                    } else {
                        t.failures
                            .push(format!("{who}: ok={} {}", out.ok, out.stderr.trim()));
                    }
                }
            });
        }
        thread::sleep(Duration::from_secs(3));
        let started = Instant::now();
        let restarted = c
            .kubectl("admin", &["-n", NS, "rollout", "restart", DEPLOYMENT])
            .allowed("kubectl rollout restart")
            .and_then(|_| rolled_out(c));
        let rollout = started.elapsed();
        // Past the old pods' shutdown (delay 5 s, then draining).
        thread::sleep(Duration::from_secs(8));
        stop.store(true, Ordering::Relaxed);
        (restarted, rollout)
    });
    restarted?;
    let t = tally.into_inner().unwrap_or_else(|e| e.into_inner());
    eprintln!(
        "rollout restart took {rollout:?}; {} reviews answered as expected, {} failed",
        t.answered,
        t.failures.len()
    );
    if !t.failures.is_empty() {
        return Err(format!(
            "{} of {} reviews failed during the rollout; first: {}",
            t.failures.len(),
            t.answered + t.failures.len() as u64,
            t.failures[0]
        ));
    }
    // A kubectl round trip here takes 0.1-0.3 s: four workers through a
    // rollout and the old pods' shutdown make 140 and more.
    if t.answered < 60 {
        return Err(format!(
            "only {} reviews during the rollout: too few to show anything",
            t.answered
        ));
    }
    eventually(Duration::from_secs(30), || {
        three_ready_behind_the_service(c)
    })
}

fn leader(c: &Cluster) -> Result<String, String> {
    let lease = json(c, &["-n", NS, "get", "lease", "gitops-guard-drift"])?;
    lease["spec"]["holderIdentity"]
        .as_str()
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| format!("Lease gitops-guard-drift has no holder: {}", lease["spec"]))
}

/// alice changes `name` in warn mode; Alertmanager gets a GitOpsDrift alert
/// for it naming her.
fn alice_drifts(c: &Cluster, base: &str, ns: &str, name: &str) -> Outcome {
    let patch = r#"{"data":{"greeting":"by-hand"}}"#;
    c.kubectl(
        "alice",
        &[
            "patch",
            "configmap",
            name,
            "-n",
            ns,
            "--type=merge",
            "-p",
            patch,
        ],
    )
    .allowed("warn mode lets alice through")?;
    eventually(Duration::from_secs(60), || {
        let alerts = drift_alerts(base, ns)?;
        let alert = alerts
            .iter()
            .find(|a| a["labels"]["name"] == name)
            .ok_or_else(|| format!("no GitOpsDrift alert for {name}: {alerts:?}"))?;
        match alert["annotations"]["changed_by"].as_str() {
            Some("alice") => Ok(()),
            other => Err(format!("changed_by {other:?}, expected alice")),
        }
    })
}

pub fn deleting_the_leader_pod_hands_over_and_alerts_keep_flowing(c: &Cluster) -> Outcome {
    let base = alertmanager(c)?;
    let ns = c.namespace("node-leader", &["gitops-guard.io/mode=warn"])?;
    flux_apply(c, &owned_configmap(&ns, "before", "v1"))?;
    flux_apply(c, &owned_configmap(&ns, "after", "v1"))?;
    std::thread::sleep(Duration::from_millis(1100));
    alice_drifts(c, &base, &ns, "before")?;
    let old = leader(c)?;
    let deleted = Instant::now();
    c.kubectl("admin", &["-n", NS, "delete", "pod", &old, "--wait=false"])
        .allowed("deleting the leader's pod")?;
    let mut new = String::new();
    eventually(Duration::from_secs(90), || {
        new = leader(c)?;
        let running: Vec<String> = guard_pods(c)?.into_iter().map(|(n, _)| n).collect();
        if new != old && running.contains(&new) {
            Ok(())
        } else {
            Err(format!("holder {new}, deleted {old}, running {running:?}"))
        }
    })?;
    eprintln!(
        "leadership went from {old} to {new} {:?} after the delete",
        deleted.elapsed()
    );
    // The new leader sends: a fresh drift is alerted, and the earlier one
    // stays active (it re-describes what it finds drifted).
    alice_drifts(c, &base, &ns, "after")?;
    let names: Vec<Value> = drift_alerts(&base, &ns)?
        .iter()
        .map(|a| a["labels"]["name"].clone())
        .collect();
    if !names.contains(&Value::from("before")) {
        return Err(format!(
            "the drift alerted before the takeover is no longer active: {names:?}"
        ));
    }
    rolled_out(c)
}

fn evict(c: &Cluster, pod: &str) -> super::cluster::Out {
    let eviction = format!(
        "{{\"apiVersion\":\"policy/v1\",\"kind\":\"Eviction\",\"metadata\":{{\"name\":\"{pod}\",\"namespace\":\"{NS}\"}}}}"
    );
    let path = format!("/api/v1/namespaces/{NS}/pods/{pod}/eviction");
    c.kubectl_stdin("admin", &["create", "--raw", &path, "-f", "-"], &eviction)
}

pub fn the_disruption_budget_lets_one_guard_pod_be_evicted_at_a_time(c: &Cluster) -> Outcome {
    rolled_out(c)?;
    eventually(Duration::from_secs(60), || {
        // The PDB's status counts the pods it allows to go.
        let pdb = json(c, &["-n", NS, "get", "pdb", "gitops-guard"])?;
        match pdb["status"]["disruptionsAllowed"].as_i64() {
            Some(1) => Ok(()),
            other => Err(format!("disruptionsAllowed {other:?}")),
        }
    })?;
    let pods: Vec<String> = guard_pods(c)?.into_iter().map(|(n, _)| n).collect();
    let [first, second, ..] = pods.as_slice() else {
        return Err(format!("expected 3 guard pods, got {pods:?}"));
    };
    evict(c, first).allowed("evicting the first guard pod")?;
    let refused = evict(c, second);
    if refused.ok || !refused.stderr.contains("disruption budget") {
        return Err(format!(
            "the second eviction: ok={}, {}",
            refused.ok, refused.stderr
        ));
    }
    rolled_out(c)?;
    eventually(Duration::from_secs(60), || {
        three_ready_behind_the_service(c)
    })
}

/// GET on a guard pod's admin port through the apiserver's pod proxy, as
/// admin: (HTTP status, body). curl, as kubectl hides a proxied body.
fn admin_port_get(c: &Cluster, pod: &str, path: &str) -> Result<(u16, String), String> {
    let pki = c.run.join("cluster/pki");
    let url = format!(
        "{}/api/v1/namespaces/{NS}/pods/{pod}:9090/proxy/{path}",
        read(c, "cluster/ready")?
    );
    let out = Command::new("curl")
        .args(["-s", "--max-time", "5", "-w", "\n%{http_code}"])
        .arg("--cacert")
        .arg(pki.join("ca.crt"))
        .arg("--cert")
        .arg(pki.join("admin.crt"))
        .arg("--key")
        .arg(pki.join("admin.key"))
        .arg(&url)
        .output()
        .map_err(|e| format!("curl: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    let code = code
        .trim()
        .parse()
        .map_err(|_| format!("GET {url}: {text}"))?;
    Ok((code, body.to_owned()))
}

pub fn a_stopping_pod_fails_readyz_at_once_and_leaves_the_ready_endpoints(c: &Cluster) -> Outcome {
    rolled_out(c)?;
    // Every pod answers the probes' paths on the admin port.
    let pods: Vec<String> = guard_pods(c)?.into_iter().map(|(n, _)| n).collect();
    for pod in &pods {
        for path in ["healthz", "readyz"] {
            let (code, body) = admin_port_get(c, pod, path)?;
            if code != 200 {
                return Err(format!("{pod} /{path}: {code} {body}"));
            }
        }
    }
    let pod = pods.first().ok_or("no guard pod")?.clone();
    c.kubectl("admin", &["-n", NS, "delete", "pod", &pod, "--wait=false"])
        .allowed("deleting a guard pod")?;
    // Through --shutdown-delay the pod still runs: /readyz fails at once
    // with the reason, and the endpoint is no longer ready, so new
    // connections go to the others while this one finishes what it has.
    let mut seen = String::new();
    eventually(Duration::from_secs(5), || {
        let (code, body) = admin_port_get(c, &pod, "readyz")?;
        let endpoints = service_endpoints(c)?;
        let conditions = endpoints
            .iter()
            .find(|(name, _)| *name == pod)
            .map(|(_, cond)| cond.clone())
            .unwrap_or(Value::Null);
        seen = format!("/readyz {code} {body:?}, endpoint {conditions}");
        if code == 503 && body.contains("shutting down") && conditions["ready"] == false {
            Ok(())
        } else {
            Err(seen.clone())
        }
    })?;
    eprintln!("{pod} while stopping: {seen}");
    rolled_out(c)?;
    eventually(Duration::from_secs(60), || {
        three_ready_behind_the_service(c)
    })
}

/// The host PID of a pod's guard container, from the node's containerd (the
/// node is this host, so the test can reach its processes).
fn container_pid(c: &Cluster, pod: &str) -> Result<String, String> {
    let p = json(c, &["-n", NS, "get", "pod", pod])?;
    let id = p["status"]["containerStatuses"][0]["containerID"]
        .as_str()
        .and_then(|id| id.strip_prefix("containerd://"))
        .ok_or_else(|| format!("{pod} has no containerd container"))?
        .to_owned();
    let out = Command::new("ctr")
        .arg("--address")
        .arg(c.run.join("node/containerd.sock"))
        .args(["--namespace", "k8s.io", "tasks", "ls"])
        .output()
        .map_err(|e| format!("ctr: {e}"))?;
    let tasks = String::from_utf8_lossy(&out.stdout).into_owned();
    tasks
        .lines()
        .find_map(|l| {
            let mut f = l.split_whitespace();
            (f.next() == Some(id.as_str())).then(|| f.next().map(str::to_owned))?
        })
        .ok_or_else(|| format!("no containerd task {id} in:\n{tasks}"))
}

pub fn a_frozen_guard_fails_readiness_then_liveness_and_is_restarted(c: &Cluster) -> Outcome {
    rolled_out(c)?;
    let pod = guard_pods(c)?
        .into_iter()
        .map(|(n, _)| n)
        .next()
        .ok_or("no guard pod")?;
    let pid = container_pid(c, &pod)?;
    // SIGSTOP: the process is there but answers nothing, as a deadlocked
    // or livelocked guard would.
    let stopped = Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .map_err(|e| e.to_string())?;
    if !stopped.success() {
        return Err(format!("kill -STOP {pid} failed"));
    }
    let frozen = Instant::now();
    // Readiness (every 5 s, 3 failures) takes it out of the Service first.
    eventually(Duration::from_secs(60), || {
        let endpoints = service_endpoints(c)?;
        match endpoints.iter().find(|(name, _)| *name == pod) {
            Some((_, cond)) if cond["ready"] == false => Ok(()),
            other => Err(format!("{pod} endpoint: {other:?}")),
        }
    })?;
    let unready = frozen.elapsed();
    // Liveness (every 10 s, 3 failures) restarts the container; the frozen
    // process ignores SIGTERM, so the kubelet kills it after the grace period.
    eventually(Duration::from_secs(150), || {
        let p = json(c, &["-n", NS, "get", "pod", &pod])?;
        let status = &p["status"]["containerStatuses"][0];
        if status["restartCount"].as_i64().unwrap_or(0) >= 1 && status["ready"] == true {
            Ok(())
        } else {
            Err(format!(
                "{pod}: restarts {}, ready {}",
                status["restartCount"], status["ready"]
            ))
        }
    })?;
    eprintln!(
        "{pod} frozen: out of the Service after {unready:?}, restarted and ready again after {:?}",
        frozen.elapsed()
    );
    eventually(Duration::from_secs(60), || {
        three_ready_behind_the_service(c)
    })
}

/// The busybox image up.sh pushed for the node's tests.
fn busybox(c: &Cluster) -> Result<String, String> {
    Ok(format!(
        "{}/busybox:gg",
        env_value(c, "registries.env", "PLAIN_REGISTRY")?
    ))
}

/// Runs `busybox ARGS…` in a new ephemeral container of `pod` (its network
/// namespace, so its NetworkPolicy) and returns its exit code.
fn in_pod_network(
    c: &Cluster,
    ns: &str,
    pod: &str,
    name: &str,
    args: &[&str],
) -> Result<i64, String> {
    debug_container(c, ns, pod, name, args)?;
    let mut code = None;
    eventually(Duration::from_secs(30), || {
        let state = ephemeral_state(c, ns, pod, name)?;
        code = state["terminated"]["exitCode"].as_i64();
        code.map(|_| ())
            .ok_or_else(|| format!("{name} not done: {state}"))
    })?;
    code.ok_or_else(|| format!("{name}: no exit code"))
}

/// The state of ephemeral container `name` of `pod`.
fn ephemeral_state(c: &Cluster, ns: &str, pod: &str, name: &str) -> Result<Value, String> {
    let p = json(c, &["-n", ns, "get", "pod", pod])?;
    Ok(p["status"]["ephemeralContainerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["name"] == name)
        .map(|s| s["state"].clone())
        .unwrap_or(Value::Null))
}

/// Starts `busybox ARGS…` as ephemeral container `name` of `pod`, as 65532
/// (the guard's namespace enforces Pod Security `restricted`).
fn debug_container(c: &Cluster, ns: &str, pod: &str, name: &str, args: &[&str]) -> Outcome {
    let custom = c.run.join("install/debug-as-nonroot.json");
    std::fs::write(
        &custom,
        r#"{"securityContext":{"runAsUser":65532,"runAsGroup":65532}}"#,
    )
    .map_err(|e| e.to_string())?;
    let custom_flag = format!("--custom={}", custom.display());
    let image_flag = format!("--image={}", busybox(c)?);
    let name_flag = format!("--container={name}");
    let mut all = vec![
        "debug",
        "-n",
        ns,
        pod,
        "--profile=restricted",
        "--attach=false",
        // The image's entrypoint is busybox: ARGS name the applet.
        "--arguments-only",
        &custom_flag,
        &image_flag,
        &name_flag,
        "--",
    ];
    all.extend_from_slice(args);
    c.kubectl("admin", &all).allowed("kubectl debug")?;
    Ok(())
}

/// A Pod in `ns` serving HTTP on each of `ports` (busybox httpd).
fn listener(c: &Cluster, ns: &str, ports: &[u16]) -> Result<String, String> {
    let image = busybox(c)?;
    let containers: String = ports
        .iter()
        .map(|p| {
            format!(
                "  - {{name: http-{p}, image: \"{image}\", args: [httpd, -f, -p, \"{p}\", -h, /]}}\n"
            )
        })
        .collect();
    let pod = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: listener, namespace: {ns}}}\n\
         spec:\n  terminationGracePeriodSeconds: 1\n  containers:\n{containers}"
    );
    c.kubectl_stdin("admin", &["apply", "-f", "-"], &pod)
        .allowed("the listener Pod")?;
    c.kubectl(
        "admin",
        &[
            "-n",
            ns,
            "wait",
            "pod/listener",
            "--for=condition=Ready",
            "--timeout=60s",
        ],
    )
    .allowed("the listener Pod Ready")?;
    let p = json(c, &["-n", ns, "get", "pod", "listener"])?;
    p["status"]["podIP"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "the listener Pod has no IP".into())
}

fn pod_ip(c: &Cluster, ns: &str, pod: &str) -> Result<String, String> {
    let p = json(c, &["-n", ns, "get", "pod", pod])?;
    p["status"]["podIP"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{pod} has no IP"))
}

/// `nc` from `pod`'s network namespace to `ip:port`: its exit code (0:
/// connected; 1: refused or no answer within 3 s).
fn connects(
    c: &Cluster,
    ns: &str,
    pod: &str,
    name: &str,
    ip: &str,
    port: &str,
) -> Result<i64, String> {
    in_pod_network(c, ns, pod, name, &["nc", "-w", "3", ip, port])
}

pub fn the_network_policy_lets_through_what_it_lists_and_drops_the_rest(c: &Cluster) -> Outcome {
    rolled_out(c)?;
    let ns = c.namespace("node-netpol", &[])?;
    // Egress: Alertmanager's port (9093) is listed, 19093 is not. The
    // listener is another Pod, so the packets cross the node's bridge, where
    // the agent judges them (traffic to the host's own address is not
    // forwarded, and no policy agent judges it).
    let target = listener(c, &ns, &[9093, 19093])?;
    let guard = guard_pods(c)?
        .into_iter()
        .map(|(n, _)| n)
        .next()
        .ok_or("no guard pod")?;
    let listed = connects(c, NS, &guard, "egress-9093", &target, "9093")?;
    let unlisted = connects(c, NS, &guard, "egress-19093", &target, "19093")?;
    // Ingress: the admin port (9090) is listed; a port the guard does not
    // list (a listener in its own network namespace on 7777) is not.
    debug_container(
        c,
        NS,
        &guard,
        "serve-7777",
        &["httpd", "-f", "-p", "7777", "-h", "/"],
    )?;
    eventually(Duration::from_secs(30), || {
        let state = ephemeral_state(c, NS, &guard, "serve-7777")?;
        if state["running"].is_object() {
            Ok(())
        } else {
            Err(format!("serve-7777: {state}"))
        }
    })?;
    let guard_ip = pod_ip(c, NS, &guard)?;
    let admin = connects(c, &ns, "listener", "ingress-9090", &guard_ip, "9090")?;
    let other = connects(c, &ns, "listener", "ingress-7777", &guard_ip, "7777")?;
    eprintln!(
        "from a guard pod: to 9093 exit {listed}, to 19093 exit {unlisted}; \
         to a guard pod: 9090 exit {admin}, 7777 exit {other}"
    );
    if (listed, unlisted, admin, other) != (0, 1, 0, 1) {
        return Err(format!(
            "nc exit codes: egress 9093 {listed} (want 0), egress 19093 {unlisted} (want 1), \
             ingress 9090 {admin} (want 0), ingress 7777 {other} (want 1)"
        ));
    }
    // The control: without the policy the same two connections go through,
    // so it was the policy that dropped them.
    c.kubectl(
        "admin",
        &["-n", NS, "delete", "networkpolicy", "gitops-guard"],
    )
    .allowed("deleting the NetworkPolicy")?;
    let mut attempt = 0;
    eventually(Duration::from_secs(30), || {
        attempt += 1;
        let egress_name = format!("unpoliced-egress-{attempt}");
        let egress = connects(c, NS, &guard, &egress_name, &target, "19093")?;
        let ingress_name = format!("unpoliced-ingress-{attempt}");
        let ingress = connects(c, &ns, "listener", &ingress_name, &guard_ip, "7777")?;
        if (egress, ingress) == (0, 0) {
            Ok(())
        } else {
            Err(format!(
                "without the policy: egress 19093 exit {egress}, ingress 7777 exit {ingress}"
            ))
        }
    })?;
    eprintln!("without the NetworkPolicy both connect (attempt {attempt})");
    Ok(())
}

pub fn the_helm_chart_installs_on_the_node_and_denies_a_persons_edit(c: &Cluster) -> Outcome {
    let dir = install_dir(c).display().to_string();
    c.kubectl(
        "admin",
        &[
            "delete",
            "-k",
            &dir,
            "--ignore-not-found",
            "--wait=true",
            "--timeout=180s",
        ],
    )
    .allowed("removing the kustomize install")?;
    let helm = c.root.join("tests/cluster/bin/helm");
    let (repository, digest) = push_image(c)?;
    let ca = certificate(&install_dir(c))?;
    c.kubectl("admin", &["create", "namespace", NS])
        .allowed("create the release namespace")?;
    let dir = install_dir(c);
    c.kubectl(
        "admin",
        &[
            "-n",
            NS,
            "create",
            "secret",
            "tls",
            "gitops-guard-tls",
            &format!("--cert={}", dir.join("tls.crt").display()),
            &format!("--key={}", dir.join("tls.key").display()),
        ],
    )
    .allowed("the serving Secret")?;
    let alertmanager = format!("http://{}:{}/", node_ip(c)?, read(c, "alertmanager/port")?);
    let started = Instant::now();
    let out = Command::new(&helm)
        .args(["install", "gitops-guard"])
        .arg(c.root.join("charts/gitops-guard"))
        .args(["--namespace", NS, "--take-ownership"])
        .args(["--set", &format!("image.repository={repository}")])
        .args(["--set", &format!("image.digest={digest}")])
        .args(["--set", &format!("certificates.caBundle={ca}")])
        .args(["--set", &format!("alertmanager.urls[0]={alertmanager}")])
        .env("KUBECONFIG", c.kubeconfig("admin"))
        .output()
        .map_err(|e| format!("{}: {e}", helm.display()))?;
    if !out.status.success() {
        return Err(format!(
            "helm install failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serving(c)?;
    eprintln!(
        "helm install: 3 replicas ready behind the Service and denying after {:?}",
        started.elapsed()
    );
    let ns = c.namespace("node-helm", &[])?;
    flux_apply(c, &owned_configmap(&ns, "settings", "hello"))?;
    c.kubectl_stdin(
        "alice",
        &["apply", "-f", "-"],
        &owned_configmap(&ns, "settings", "by-hand"),
    )
    .denied("alice's edit with the chart's install")?;
    Ok(())
}
