//! Flux multi-tenancy on the local control plane: two tenants set up the way
//! Flux's multi-tenancy guide does (a namespace labelled
//! toolkit.fluxcd.io/tenant, a reconciler service account, a RoleBinding to
//! cluster-admin in the namespace, a Kustomization impersonating the account).

use std::{process::Command, sync::OnceLock, time::Duration};

use serde_json::Value;

use super::{
    cluster::{Cluster, Outcome, eventually},
    drift::{alertmanager, alerts_named},
};

const TEAM_A: &str = "system:serviceaccount:team-a:team-a";
const KUSTOMIZE: &str = "system:serviceaccount:flux-system:kustomize-controller";

/// How Flux applies for a tenant: the controller impersonating its account.
const FLUX_APPLY_AS_TEAM_A: [&str; 7] = [
    "apply",
    "--server-side",
    "--field-manager=kustomize-controller",
    "--as",
    TEAM_A,
    "-f",
    "-",
];

fn tenant_manifest(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}, labels: {{toolkit.fluxcd.io/tenant: {name}}}}}\n\
         ---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: {name}, namespace: {name}}}\n\
         ---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n\
         metadata: {{name: gotk-reconciler, namespace: {name}}}\n\
         roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}}\n\
         subjects: [{{kind: ServiceAccount, name: {name}, namespace: {name}}}]\n\
         ---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n\
         metadata: {{name: apps, namespace: {name}}}\n\
         spec: {{serviceAccountName: {name}, path: ./, prune: true, interval: 5m, \
         sourceRef: {{kind: GitRepository, name: {name}}}}}\n"
    )
}

/// Both tenants, once for every test of this file.
fn tenants(c: &Cluster) -> Outcome {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        for name in ["team-a", "team-b"] {
            // The Namespace first: the Kustomization's rules read its label.
            let manifest = tenant_manifest(name);
            let (ns, rest) = manifest.split_once("---\n").unwrap_or_default();
            c.kubectl_stdin("admin", &["apply", "-f", "-"], ns)
                .allowed("create the tenant namespace")?;
            eventually(Duration::from_secs(10), || {
                c.kubectl_stdin("admin", &["apply", "-f", "-"], rest)
                    .allowed("set up the tenant as `flux create tenant` does")
                    .map(drop)
            })?;
        }
        Ok(())
    })
    .clone()
}

fn configmap(ns: &str, name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n    \
         kustomize.toolkit.fluxcd.io/name: apps\n    kustomize.toolkit.fluxcd.io/namespace: team-a\n\
         data: {{color: blue}}\n"
    )
}

fn kustomization(spec: &str) -> String {
    format!(
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n\
         metadata: {{name: rogue, namespace: team-a}}\nspec: {spec}\n"
    )
}

pub fn tenant_kustomizations_that_break_the_rules_are_denied(c: &Cluster) -> Outcome {
    tenants(c)?;
    let apply = |spec: &str| {
        c.kubectl_stdin(
            "kustomize-controller",
            &[
                "apply",
                "--server-side",
                "--field-manager=kustomize-controller",
                "-f",
                "-",
            ],
            &kustomization(spec),
        )
    };
    apply("{path: ./, interval: 5m, sourceRef: {kind: GitRepository, name: team-a}}")
        .denied("a tenant Kustomization without serviceAccountName")?
        .mentions("spec.serviceAccountName is required in tenant \"team-a\"")?;
    apply("{serviceAccountName: team-a, path: ./, interval: 5m, sourceRef: {kind: GitRepository, name: team-b, namespace: team-b}}")
        .denied("a cross-tenant sourceRef")?
        .mentions("spec.sourceRef points to GitRepository team-b/team-b, outside tenant \"team-a\" (it belongs to tenant \"team-b\")")?;
    apply("{serviceAccountName: team-a, path: ./, interval: 5m, targetNamespace: team-b, sourceRef: {kind: GitRepository, name: team-a}}")
        .denied("a foreign targetNamespace")?
        .mentions("spec.targetNamespace \"team-b\" is not a namespace of tenant \"team-a\"")?;
    apply("{serviceAccountName: team-a, path: ./, interval: 5m, sourceRef: {kind: GitRepository, name: fleet, namespace: flux-system}}")
        .allowed("a tenant Kustomization using a shared source")?;
    Ok(())
}

pub fn team_as_objects_are_written_by_team_as_reconciler_only(c: &Cluster) -> Outcome {
    tenants(c)?;
    let manifest = configmap("team-a", "settings");
    eventually(Duration::from_secs(10), || {
        c.kubectl_stdin("kustomize-controller", &FLUX_APPLY_AS_TEAM_A, &manifest)
            .allowed("kustomize-controller impersonating team-a applies")
            .map(drop)
    })?;
    let patch = [
        "patch",
        "configmap",
        "settings",
        "-n",
        "team-a",
        "-p",
        r#"{"data":{"color":"red"}}"#,
    ];
    c.kubectl_as_service_account("team-a", "team-a", &patch, "")
        .allowed("team-a's reconciler token")?;
    // RBAC keeps team-b out of team-a as Flux's guide sets tenants up...
    let refused = c.kubectl_as_service_account("team-b", "team-b", &patch, "");
    if refused.ok || !refused.stderr.contains("Forbidden") {
        return Err(format!(
            "RBAC should refuse team-b in team-a: {}",
            refused.stderr
        ));
    }
    // ... and the guard still does when a binding lets team-b in.
    let binding = "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n\
         metadata: {name: team-b-in-team-a, namespace: team-a}\n\
         roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}\n\
         subjects: [{kind: ServiceAccount, name: team-b, namespace: team-b}]\n";
    c.kubectl_stdin("admin", &["apply", "-f", "-"], binding)
        .allowed("a binding letting team-b into team-a")?;
    let outcome = c
        .kubectl_as_service_account("team-b", "team-b", &patch, "")
        .denied("team-b's reconciler token")
        .and_then(|o| {
            o.mentions("reconciles tenant \"team-b\" and may not write in namespace team-a")
        });
    c.kubectl(
        "admin",
        &["delete", "rolebinding", "team-b-in-team-a", "-n", "team-a"],
    )
    .allowed("remove the binding")?;
    outcome?;
    c.kubectl("kustomize-controller", &patch)
        .denied("the controller's own identity")?
        .mentions(&format!("Only {TEAM_A} may write it"))?;
    Ok(())
}

fn audit(c: &Cluster) -> Result<(Option<i32>, Value), String> {
    let out = Command::new(env!("CARGO_BIN_EXE_gitops-guard"))
        .args(["audit", "tenants", "-o", "json", "--kubeconfig"])
        .arg(c.kubeconfig("admin"))
        .output()
        .map_err(|e| e.to_string())?;
    let report = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&out.stderr)))?;
    Ok((out.status.code(), report))
}

fn has_finding(report: &Value, want: &[(&str, &str)]) -> Outcome {
    let findings = report["findings"].as_array().cloned().unwrap_or_default();
    let matches = |f: &Value| want.iter().all(|(k, v)| f[*k].as_str() == Some(v));
    if findings.iter().any(matches) {
        Ok(())
    } else {
        Err(format!("no finding with {want:?} in {findings:#?}"))
    }
}

fn alert_with(c: &Cluster, alertname: &str, want: &[(&str, &str)]) -> Outcome {
    let base = alertmanager(c)?;
    let alerts = alerts_named(&base, alertname)?;
    let matches = |a: &Value| {
        want.iter()
            .all(|(k, v)| a["labels"][*k].as_str() == Some(v))
    };
    if alerts.iter().any(matches) {
        Ok(())
    } else {
        Err(format!("no active {alertname} with {want:?}: {alerts:?}"))
    }
}

pub fn an_over_broad_binding_is_stopped_at_admission_and_reported_by_the_audit(
    c: &Cluster,
) -> Outcome {
    tenants(c)?;
    let binding = "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n\
         metadata: {name: team-a-overreach, namespace: team-b}\n\
         roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}\n\
         subjects: [{kind: ServiceAccount, name: team-a, namespace: team-a}]\n";
    c.kubectl_stdin("admin", &["apply", "-f", "-"], binding)
        .allowed("the over-broad RoleBinding")?;
    c.kubectl_as_service_account(
        "team-a",
        "team-a",
        &["auth", "can-i", "create", "configmaps", "-n", "team-b"],
        "",
    )
    .allowed("RBAC lets team-a's reconciler write in team-b")?
    .mentions("yes")?;
    c.kubectl_as_service_account("team-a", "team-a", &["create", "configmap", "overreach", "-n", "team-b"], "")
        .denied("team-a's reconciler writing in team-b")?
        .mentions("may not write in namespace team-b, which belongs to tenant \"team-b\", whatever RBAC allows")?;
    let (code, report) = audit(c)?;
    if code != Some(1) {
        return Err(format!("audit exit {code:?}, want 1"));
    }
    has_finding(
        &report,
        &[
            ("kind", "TenantEscalation"),
            ("identity", TEAM_A),
            ("right", "write-other-tenant"),
            ("detail", "can create configmaps in namespace team-b"),
        ],
    )?;
    let want = [
        ("identity", TEAM_A),
        ("right", "write-other-tenant"),
        ("tenant", "team-a"),
    ];
    eventually(Duration::from_secs(30), || {
        alert_with(c, "GitOpsTenantEscalation", &want)
    })?;
    c.kubectl(
        "admin",
        &["delete", "rolebinding", "team-a-overreach", "-n", "team-b"],
    )
    .allowed("remove the binding")?;
    eventually(Duration::from_secs(30), || {
        match alert_with(c, "GitOpsTenantEscalation", &want) {
            Ok(()) => Err("the escalation alert is still active".into()),
            Err(_) => Ok(()),
        }
    })
}

pub fn alice_with_edit_in_team_a_is_reported_as_able_to_impersonate_its_reconciler(
    c: &Cluster,
) -> Outcome {
    tenants(c)?;
    c.alice_edit_in("team-a")?;
    // What the finding means: alice looks exactly like team-a's reconciler.
    c.kubectl_stdin(
        "alice",
        &["apply", "--as", TEAM_A, "-f", "-"],
        &configmap("team-a", "posed"),
    )
    .allowed("alice posing as team-a's reconciler (the risk the audit reports)")?;
    let (_, report) = audit(c)?;
    has_finding(
        &report,
        &[
            ("kind", "ImpersonationRisk"),
            ("identity", TEAM_A),
            ("subject", "User alice"),
            ("via", "RoleBinding team-a/alice-edit -> ClusterRole edit"),
        ],
    )?;
    let want = [("identity", TEAM_A), ("subject", "User alice")];
    eventually(Duration::from_secs(30), || {
        alert_with(c, "GitOpsImpersonationRisk", &want)
    })
}

pub fn a_human_impersonating_kustomize_controller_is_denied_and_alerted(c: &Cluster) -> Outcome {
    let ns = c.namespace("e2e-posing", &[])?;
    let manifest =
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: x, namespace: {ns}}}\n");
    c.kubectl_stdin("alice", &["apply", "--as", KUSTOMIZE, "-f", "-"], &manifest)
        .denied("alice impersonating kustomize-controller")?
        .mentions("carries no Pod-bound token")?;
    c.kubectl_stdin("kustomize-controller", &["apply", "-f", "-"], &manifest)
        .allowed("the real controller, with its Pod-bound token")?;
    eventually(Duration::from_secs(10), || {
        alert_with(c, "GitOpsControllerImpersonation", &[("user", KUSTOMIZE)])
    })
}

/// A client certificate for `subject`, issued by the cluster's own signer
/// through the CertificateSigningRequest API as anyone allowed to create
/// and approve CSRs can: returns the paths of the certificate and key.
fn mint_client_certificate(
    c: &Cluster,
    name: &str,
    subject: &str,
) -> Result<(String, String), String> {
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_ECDSA_P256_SHA256};
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| e.to_string())?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, subject);
    params.distinguished_name = dn;
    let csr = params
        .serialize_request(&key)
        .and_then(|r| r.pem())
        .map_err(|e| e.to_string())?;
    use base64::Engine;
    let request = base64::engine::general_purpose::STANDARD.encode(csr);
    let manifest = format!(
        "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\n\
         metadata: {{name: {name}}}\n\
         spec: {{request: {request}, signerName: kubernetes.io/kube-apiserver-client, \
         expirationSeconds: 3600, usages: [client auth]}}\n"
    );
    c.kubectl_stdin("admin", &["apply", "-f", "-"], &manifest)
        .allowed("create the CertificateSigningRequest")?;
    c.kubectl("admin", &["certificate", "approve", name])
        .allowed("approve it")?;
    let mut issued = String::new();
    eventually(Duration::from_secs(20), || {
        let out = c.kubectl(
            "admin",
            &["get", "csr", name, "-o", "jsonpath={.status.certificate}"],
        );
        issued = out.stdout.trim().to_owned();
        match issued.is_empty() {
            true => Err(format!("csr {name} not signed yet: {}", out.stderr)),
            false => Ok(()),
        }
    })?;
    let pem = base64::engine::general_purpose::STANDARD
        .decode(&issued)
        .map_err(|e| format!("csr {name}: certificate is not base64: {e}"))?;
    let dir = c.run.join("cluster");
    let (cert, key_path) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert, pem).map_err(|e| e.to_string())?;
    std::fs::write(&key_path, key.serialize_pem()).map_err(|e| e.to_string())?;
    Ok((cert.display().to_string(), key_path.display().to_string()))
}

/// Anyone who may approve a CertificateSigningRequest can mint a client
/// certificate named like team-a's reconciler, and RBAC gives it the
/// account's rights (a ServiceAccount subject matches by username). The
/// guard tells the certificate from the account: it may not scale team-a's
/// Deployment (a `/scale` carries no labels, the parent decides) nor patch
/// it, while the account's own token may.
pub fn a_certificate_named_like_team_as_reconciler_is_not_it(c: &Cluster) -> Outcome {
    tenants(c)?;
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: team-a\n  labels:\n    \
         app: web\n    kustomize.toolkit.fluxcd.io/name: apps\n    kustomize.toolkit.fluxcd.io/namespace: team-a\n\
         spec:\n  replicas: 1\n  selector: {matchLabels: {app: web}}\n  template:\n    \
         metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: web, image: nginx:1.27}]\n";
    eventually(Duration::from_secs(10), || {
        c.kubectl_stdin("kustomize-controller", &FLUX_APPLY_AS_TEAM_A, deployment)
            .allowed("kustomize-controller impersonating team-a applies the Deployment")
            .map(drop)
    })?;
    let (cert, key) = mint_client_certificate(c, "team-a-lookalike", TEAM_A)?;
    let credentials = ["--client-certificate", &cert, "--client-key", &key];
    let as_certificate = |args: &[&str]| c.kubectl_presenting(&credentials, args, "");
    // RBAC sees the certificate as the account: the guard is all that stands.
    as_certificate(&[
        "auth",
        "can-i",
        "patch",
        "deployments/scale",
        "-n",
        "team-a",
    ])
    .allowed("RBAC lets the certificate scale in team-a")?;
    let scale = ["scale", "deployment/web", "-n", "team-a", "--replicas=3"];
    as_certificate(&scale)
        .denied("a certificate named like team-a's reconciler scaling its Deployment")?
        .mentions(&format!("Only {TEAM_A} may write it"))?;
    let patch = [
        "patch",
        "deployment/web",
        "-n",
        "team-a",
        "-p",
        r#"{"spec":{"replicas":4}}"#,
    ];
    as_certificate(&patch).denied("the same certificate patching the Deployment")?;
    c.kubectl_as_service_account("team-a", "team-a", &scale, "")
        .allowed("team-a's reconciler token scales it")?;
    Ok(())
}
