//! The Helm chart (`charts/gitops-guard`) as users render it: `helm lint`
//! with the default values and every `ci/*.yaml` values file, and
//! `helm template` against `kubectl kustomize manifests`, object by object.
//! helm and kubectl are the ones in tests/cluster/bin (`make test` builds
//! both); a missing one fails the test with the command that builds it.

use std::{
    collections::BTreeMap,
    fmt,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use serde_json::Value;

const CHART: &str = "charts/gitops-guard";
const NAMESPACE: &str = "gitops-guard";
/// Labels Helm charts add and manifests/ does not have: the only thing the
/// comparison drops.
const HELM_LABELS: [&str; 3] = [
    "app.kubernetes.io/instance",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A program built into tests/cluster/bin by `build`.
fn tool(name: &str, build: &str) -> PathBuf {
    let path = root().join("tests/cluster/bin").join(name);
    assert!(
        path.is_file(),
        "tests/cluster/bin/{name} is missing: run {build}"
    );
    path
}

fn run(program: &Path, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
}

/// stdout of a command that must succeed.
fn stdout(program: &Path, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{} {} failed:\n{}{}",
        program.display(),
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn helm() -> PathBuf {
    tool("helm", "tests/cluster/build-helm.sh")
}

/// `helm template` into the gitops-guard namespace, with extra flags.
fn template(flags: &[&str]) -> Objects {
    template_in(NAMESPACE, flags)
}

fn template_in(namespace: &str, flags: &[&str]) -> Objects {
    let mut args = vec!["template", "gitops-guard", CHART, "--namespace", namespace];
    args.extend_from_slice(flags);
    Objects::parse(&stdout(&helm(), &args))
}

/// `kubectl kustomize` of each directory, together.
fn kustomize(dirs: &[&str]) -> Objects {
    let kubectl = tool("kubectl", "tests/cluster/build.sh");
    let mut all = Objects::default();
    for dir in dirs {
        all.extend(Objects::parse(&stdout(&kubectl, &["kustomize", dir])));
    }
    all
}

/// What identifies an object in a cluster.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct ObjectKey {
    api_version: String,
    kind: String,
    namespace: String,
    name: String,
}

impl ObjectKey {
    fn new(api_version: &str, kind: &str, namespace: &str, name: &str) -> Self {
        Self {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    fn of(object: &Value) -> Self {
        let field = |pointer: &str| object.pointer(pointer).and_then(Value::as_str);
        let key = Self::new(
            field("/apiVersion").unwrap_or_default(),
            field("/kind").unwrap_or_default(),
            field("/metadata/namespace").unwrap_or_default(),
            field("/metadata/name").unwrap_or_default(),
        );
        assert!(
            !key.api_version.is_empty() && !key.kind.is_empty() && !key.name.is_empty(),
            "an object without apiVersion, kind or name: {object}"
        );
        key
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            api_version,
            kind,
            namespace,
            name,
        } = self;
        match namespace.as_str() {
            "" => write!(f, "{kind} {name} ({api_version})"),
            ns => write!(f, "{kind} {ns}/{name} ({api_version})"),
        }
    }
}

/// A rendered multi-document stream, normalised and keyed.
#[derive(Default)]
struct Objects(BTreeMap<ObjectKey, Value>);

impl Objects {
    fn parse(yaml: &str) -> Self {
        let documents: Vec<Value> = serde_saphyr::from_multiple(yaml)
            .unwrap_or_else(|e| panic!("unparsable YAML stream: {e}\n{yaml}"));
        let mut objects = Self::default();
        objects.extend(Self(
            documents
                .into_iter()
                .filter(|d| !d.is_null())
                .map(|d| (ObjectKey::of(&d), normalised(d)))
                .collect(),
        ));
        objects
    }

    fn extend(&mut self, other: Self) {
        for (key, object) in other.0 {
            let before = self.0.insert(key.clone(), object);
            assert!(before.is_none(), "{key} is rendered twice");
        }
    }

    fn get(&self, key: &ObjectKey) -> &Value {
        self.0
            .get(key)
            .unwrap_or_else(|| panic!("{key} is not rendered; rendered: {}", self.keys()))
    }

    fn keys(&self) -> String {
        let keys: Vec<String> = self.0.keys().map(ToString::to_string).collect();
        keys.join(", ")
    }

    /// Each object of `expected` that is missing here or differs, with the
    /// first differing path.
    fn differences_from(&self, expected: &Self) -> Vec<String> {
        expected
            .0
            .iter()
            .filter_map(|(key, want)| match self.0.get(key) {
                None => Some(format!("{key}: missing from the chart")),
                Some(got) => first_difference("", want, got).map(|d| format!("{key}: {d}")),
            })
            .collect()
    }

    /// Objects rendered here that `other` does not have.
    fn beyond(&self, other: &Self) -> Vec<&ObjectKey> {
        self.0.keys().filter(|k| !other.0.contains_key(k)).collect()
    }
}

/// Helm's labels dropped (and `labels` with them when nothing is left), and
/// CEL expressions with their whitespace collapsed: kustomize re-emits a
/// folded scalar's more-indented lines with a doubled line break, which the
/// apiserver's CEL ignores.
fn normalised(mut object: Value) -> Value {
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut)
        && let Some(labels) = metadata.get_mut("labels").and_then(Value::as_object_mut)
    {
        for label in HELM_LABELS {
            labels.remove(label);
        }
        if labels.is_empty() {
            metadata.remove("labels");
        }
    }
    collapse_expressions(&mut object);
    object
}

fn collapse_expressions(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                match field {
                    Value::String(cel) if key == "expression" => {
                        *cel = cel.split_whitespace().collect::<Vec<_>>().join(" ");
                    }
                    _ => collapse_expressions(field),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(collapse_expressions),
        _ => {}
    }
}

/// The first JSON pointer where `want` and `got` differ, with both values.
fn first_difference(path: &str, want: &Value, got: &Value) -> Option<String> {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            let mut keys: Vec<&String> = w.keys().chain(g.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| {
                let at = format!("{path}/{}", k.replace('~', "~0").replace('/', "~1"));
                match (w.get(k), g.get(k)) {
                    (Some(w), Some(g)) => first_difference(&at, w, g),
                    (w, g) => Some(format!("{at}: manifests/ has {w:?}, the chart {g:?}")),
                }
            })
        }
        (Value::Array(w), Value::Array(g)) if w.len() == g.len() => w
            .iter()
            .zip(g)
            .enumerate()
            .find_map(|(i, (w, g))| first_difference(&format!("{path}/{i}"), w, g)),
        _ if want == got => None,
        _ => Some(format!("{path}: manifests/ has {want}, the chart {got}")),
    }
}

fn assert_no_differences(differences: &[String]) {
    assert!(
        differences.is_empty(),
        "the chart and manifests/ disagree:\n{}",
        differences.join("\n")
    );
}

fn values_file(name: &str) -> String {
    format!("{CHART}/ci/{name}")
}

fn webhook_configuration(kind: &str) -> ObjectKey {
    ObjectKey::new("admissionregistration.k8s.io/v1", kind, "", "gitops-guard")
}

fn deployment() -> ObjectKey {
    ObjectKey::new("apps/v1", "Deployment", NAMESPACE, "gitops-guard")
}

fn strings<'a>(value: &'a Value, pointer: &str) -> Vec<&'a str> {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[test]
fn helm_lint_passes_with_the_default_values_and_every_ci_values_file() {
    let mut files: Vec<String> = std::fs::read_dir(root().join(CHART).join("ci"))
        .unwrap_or_else(|e| panic!("{CHART}/ci: {e}"))
        .filter_map(|entry| Some(entry.ok()?.file_name().to_str()?.to_owned()))
        .filter(|name| name.ends_with(".yaml"))
        .map(|name| values_file(&name))
        .collect();
    files.sort();
    assert!(
        files.contains(&values_file("cert-manager-values.yaml")),
        "{files:?}"
    );
    let mut runs: Vec<Vec<&str>> = vec![vec!["lint", "--strict", CHART]];
    runs.extend(
        files
            .iter()
            .map(|f| vec!["lint", "--strict", CHART, "-f", f]),
    );
    for args in runs {
        let out = stdout(&helm(), &args);
        assert!(
            out.contains("1 chart(s) linted, 0 chart(s) failed"),
            "helm {}:\n{out}",
            args.join(" ")
        );
    }
}

#[test]
fn the_chart_renders_what_manifests_holds() {
    let manifests = kustomize(&["manifests"]);
    let chart = template(&[]);
    assert!(manifests.0.len() > 20, "manifests/: {}", manifests.keys());
    assert_no_differences(&chart.differences_from(&manifests));
    assert!(
        chart.beyond(&manifests).is_empty(),
        "the default values render objects manifests/ does not have: {:?}",
        chart.beyond(&manifests)
    );
}

#[test]
fn the_opt_in_secret_grants_render_what_the_kustomize_components_hold() {
    let manifests = kustomize(&["tests/fixtures/secret-components"]);
    let chart = template(&[
        "--set",
        "rbac.pullSecrets.enabled=true,rbac.driftSecrets.enabled=true",
    ]);
    assert_no_differences(&chart.differences_from(&manifests));
    assert!(
        chart.beyond(&manifests).is_empty(),
        "{:?}",
        chart.beyond(&manifests)
    );
    // The two components are what reads Secrets; without them nothing in
    // manifests/ or the chart does.
    let opted_in = ["gitops-guard-drift-secrets", "gitops-guard-pull-secrets"];
    assert_eq!(secret_readers(&manifests), opted_in);
    assert_eq!(secret_readers(&chart), opted_in);
    assert_eq!(
        secret_readers(&kustomize(&["manifests"])),
        Vec::<String>::new()
    );
    assert_eq!(secret_readers(&template(&[])), Vec::<String>::new());
}

/// The names of the roles that may get, list or watch core Secrets.
fn secret_readers(objects: &Objects) -> Vec<String> {
    let reads_secrets = |rule: &Value| {
        let core = strings(rule, "/apiGroups").contains(&"");
        let secrets = strings(rule, "/resources").contains(&"secrets");
        let reads = strings(rule, "/verbs")
            .iter()
            .any(|v| ["get", "list", "watch", "*"].contains(v));
        core && secrets && reads
    };
    objects
        .0
        .iter()
        .filter(|(key, _)| key.kind == "ClusterRole" || key.kind == "Role")
        .filter(|(_, role)| {
            role["rules"]
                .as_array()
                .into_iter()
                .flatten()
                .any(reads_secrets)
        })
        .map(|(key, _)| key.name.clone())
        .collect()
}

#[test]
fn the_chart_with_monitoring_renders_what_manifests_monitoring_holds() {
    let manifests = kustomize(&["manifests", "manifests/monitoring"]);
    let chart = template(&[
        "--set",
        "monitoring.prometheusRule.enabled=true,monitoring.dashboard.enabled=true",
    ]);
    assert_no_differences(&chart.differences_from(&manifests));
    assert!(
        chart.beyond(&manifests).is_empty(),
        "{:?}",
        chart.beyond(&manifests)
    );
}

#[test]
fn cert_manager_values_add_a_ca_and_the_serving_certificate_and_change_nothing_else() {
    let manifests = kustomize(&["manifests"]);
    let chart = template(&["-f", &values_file("cert-manager-values.yaml")]);
    // The cainjector annotation manifests/ carries is the one that now works.
    assert_no_differences(&chart.differences_from(&manifests));
    let issuer =
        |kind: &str, name: &str| ObjectKey::new("cert-manager.io/v1", kind, NAMESPACE, name);
    let mut expected = vec![
        issuer("Issuer", "gitops-guard-selfsigned"),
        issuer("Certificate", "gitops-guard-ca"),
        issuer("Issuer", "gitops-guard-ca"),
        issuer("Certificate", "gitops-guard-tls"),
    ];
    expected.sort();
    let beyond: Vec<ObjectKey> = chart.beyond(&manifests).into_iter().cloned().collect();
    assert_eq!(beyond, expected);

    let serving = chart.get(&issuer("Certificate", "gitops-guard-tls"));
    assert_eq!(
        serving.pointer("/spec/secretName"),
        Some(&"gitops-guard-tls".into())
    );
    assert_eq!(
        strings(serving, "/spec/dnsNames"),
        [
            "gitops-guard.gitops-guard.svc",
            "gitops-guard.gitops-guard.svc.cluster.local"
        ]
    );
    assert_eq!(
        serving.pointer("/spec/issuerRef/name"),
        Some(&"gitops-guard-ca".into())
    );
}

#[test]
fn a_ca_bundle_in_the_values_reaches_every_webhook_and_drops_the_cainjector_annotation() {
    let chart = template(&["--set", "certificates.caBundle=Q0EK"]);
    for kind in [
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    ] {
        let configuration = chart.get(&webhook_configuration(kind));
        assert_eq!(
            configuration.pointer("/metadata/annotations"),
            None,
            "{kind}"
        );
        let webhooks = configuration["webhooks"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(!webhooks.is_empty(), "{kind} has no webhooks");
        for webhook in webhooks {
            assert_eq!(
                webhook.pointer("/clientConfig/caBundle"),
                Some(&"Q0EK".into()),
                "{kind} {}",
                webhook["name"]
            );
        }
    }
}

#[test]
fn image_replicas_policy_and_alertmanager_values_reach_the_deployment() {
    let chart = template(&["-f", &values_file("everything-values.yaml")]);
    let deployment = chart.get(&deployment());
    assert_eq!(deployment.pointer("/spec/replicas"), Some(&2.into()));
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["image"],
        "ghcr.io/gitops-guard/gitops-guard:0.1.0@sha256:0000000000000000000000000000000000000000000000000000000000000000"
    );
    let args = strings(container, "/args");
    for arg in [
        "--policy=/etc/gitops-guard/policy.yaml",
        "--alertmanager-url=http://alertmanager.monitoring:9093/",
        "--alertmanager-url=http://alertmanager-2.monitoring:9093/",
        "--cluster-name=production",
    ] {
        assert!(args.contains(&arg), "{arg} not in {args:?}");
    }
    let volumes = &deployment["spec"]["template"]["spec"]["volumes"];
    assert!(
        volumes.as_array().is_some_and(|v| v
            .iter()
            .any(|v| v["configMap"]["name"] == "gitops-guard-policy")),
        "{volumes}"
    );
    let argocd_pods = ObjectKey::new(
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        "argocd",
        "gitops-guard-controller-pods",
    );
    chart.get(&argocd_pods);
}

/// The policy file the chart writes from `mode` is one the guard loads, and
/// it changes the decision: a person's edit of a Flux-owned Deployment,
/// denied by the embedded defaults, is allowed with a warning.
#[test]
fn the_policy_the_chart_renders_is_one_the_guard_loads_and_applies() {
    let chart = template(&["--set", "mode=warn"]);
    let config = chart.get(&ObjectKey::new(
        "v1",
        "ConfigMap",
        NAMESPACE,
        "gitops-guard-policy",
    ));
    let policy_yaml = config["data"]["policy.yaml"].as_str().unwrap_or_default();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, policy_yaml).unwrap_or_else(|e| panic!("{e}"));

    let review = crate::cli::fixture("edit-flux-deployment-by-human.json");
    let check = |extra: &[&str]| crate::cli::check(&review, extra);
    assert_eq!(check(&[]).status.code(), Some(1), "denied by the defaults");
    let out = check(&["--policy", policy.to_str().unwrap_or_default()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{policy_yaml}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("warnings"));
}

/// Installed into another namespace, nothing still points at gitops-guard:
/// not the objects, the bindings' subjects, the webhooks' Service and
/// namespace selectors, the cainjector annotation or the certificate's names.
#[test]
fn every_namespace_reference_follows_the_release_namespace() {
    let chart = template_in("guard", &["-f", &values_file("cert-manager-values.yaml")]);
    let mut stale = Vec::new();
    for (key, object) in &chart.0 {
        if !["", "guard", "flux-system"].contains(&key.namespace.as_str()) {
            stale.push(format!("{key}"));
        }
        find_namespace_references(&key.to_string(), object, &mut stale);
    }
    assert!(
        stale.is_empty(),
        "still naming gitops-guard:\n{}",
        stale.join("\n")
    );
    let namespace = chart.get(&ObjectKey::new("v1", "Namespace", "", "guard"));
    assert_eq!(
        namespace["metadata"]["labels"]["gitops-guard.io/exclude"],
        "true"
    );
}

/// Places that name the namespace gitops-guard: `namespace: gitops-guard`,
/// a namespace-name selector with that value, `gitops-guard/…` and
/// `….gitops-guard.svc…` strings.
fn find_namespace_references(at: &str, value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let names_namespaces = map.get("key") == Some(&"kubernetes.io/metadata.name".into());
            if names_namespaces && strings(value, "/values").contains(&NAMESPACE) {
                found.push(format!("{at}/values"));
            }
            for (key, field) in map {
                if key == "namespace" && field == NAMESPACE {
                    found.push(format!("{at}/{key}"));
                }
                find_namespace_references(&format!("{at}/{key}"), field, found);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                find_namespace_references(&format!("{at}/{i}"), item, found);
            }
        }
        Value::String(s) if s.starts_with("gitops-guard/") || s.contains(".gitops-guard.svc") => {
            found.push(format!("{at}: {s}"));
        }
        _ => {}
    }
}
