//! Command-line flags (clap derive, every flag also an environment variable).

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::duration::parse_duration;

#[derive(Debug, Parser)]
#[command(
    name = "gitops-guard",
    version,
    about = "Only the GitOps reconciler may change what Git owns."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log line format.
    #[arg(long, env = "GITOPS_GUARD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the admission webhook (HTTPS) and the admin endpoints (HTTP).
    Serve(Box<ServeArgs>),
    /// Decide one AdmissionReview offline and print the response review.
    Check(CheckArgs),
    /// Generate a CA and a serving certificate for the webhook Service.
    Cert(CertArgs),
    /// Print the BreakGlass CustomResourceDefinition.
    Crd,
    /// Print the embedded default policy.
    Policy,
    /// Scan the cluster once for drifted objects; exit 1 when there are any.
    Drift(DriftArgs),
    /// One-shot audits; exit 1 when there are findings.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Who can impersonate each reconciler, and which tenant reconcilers hold
    /// rights outside their tenant (SubjectAccessReview; RBAC model offline).
    Tenants(AuditTenantsArgs),
}

#[derive(Debug, Args)]
pub struct AuditTenantsArgs {
    /// Policy file (YAML); the embedded defaults apply without one.
    #[arg(long, env = "GITOPS_GUARD_POLICY")]
    pub policy: Option<PathBuf>,
    /// Kubeconfig; in-cluster or $KUBECONFIG without it.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Audit a cluster-state file (namespaces, Kustomizations, HelmReleases,
    /// Roles, ClusterRoles and bindings) instead of the cluster.
    #[arg(long, value_name = "FILE")]
    pub cluster_state: Option<PathBuf>,
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct DriftArgs {
    /// Policy file (YAML); the embedded defaults apply without one.
    #[arg(long, env = "GITOPS_GUARD_POLICY")]
    pub policy: Option<PathBuf>,
    /// Kubeconfig; in-cluster or $KUBECONFIG without it.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// The drift side of `serve`: Alertmanager, the alerts' cluster label, the
/// watched webhook registration and the sender's Lease.
#[derive(Debug, Clone, Args)]
pub struct DriftServeArgs {
    /// Alertmanager to send drift alerts to (repeatable); none: no alerts.
    #[arg(
        long = "alertmanager-url",
        env = "GITOPS_GUARD_ALERTMANAGER_URLS",
        value_delimiter = ','
    )]
    pub alertmanager_urls: Vec<reqwest::Url>,
    /// File holding a bearer token for Alertmanager (re-read every round).
    #[arg(long, env = "GITOPS_GUARD_ALERTMANAGER_BEARER_TOKEN_FILE")]
    pub alertmanager_bearer_token_file: Option<PathBuf>,
    /// Extra CA certificates (PEM) trusted for Alertmanager.
    #[arg(long, env = "GITOPS_GUARD_ALERTMANAGER_CA_FILE")]
    pub alertmanager_ca_file: Option<PathBuf>,
    /// The `cluster` label of every alert.
    #[arg(long, env = "GITOPS_GUARD_CLUSTER_NAME", default_value = "default")]
    pub cluster_name: String,
    /// Name of the guard's Validating/MutatingWebhookConfiguration, watched
    /// for deletion and changes.
    #[arg(
        long,
        env = "GITOPS_GUARD_WEBHOOK_CONFIGURATION",
        default_value = "gitops-guard"
    )]
    pub webhook_configuration: String,
    /// Elect one replica (a Lease) to send alerts and Events; off: this
    /// process always sends.
    #[arg(long, env = "GITOPS_GUARD_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Namespace of the Lease (the guard's own).
    #[arg(long, env = "POD_NAMESPACE", default_value = "gitops-guard")]
    pub lease_namespace: String,
    /// Name of the Lease.
    #[arg(
        long,
        env = "GITOPS_GUARD_LEASE_NAME",
        default_value = "gitops-guard-drift"
    )]
    pub lease_name: String,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Webhook HTTPS address.
    #[arg(long, env = "GITOPS_GUARD_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// Admin HTTP address (/healthz, /readyz, /metrics).
    #[arg(
        long,
        env = "GITOPS_GUARD_ADMIN_LISTEN",
        default_value = "0.0.0.0:9090"
    )]
    pub admin_listen: SocketAddr,
    /// PEM certificate chain served to the apiserver.
    #[arg(long, env = "GITOPS_GUARD_TLS_CERT")]
    pub tls_cert: PathBuf,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "GITOPS_GUARD_TLS_KEY")]
    pub tls_key: PathBuf,
    /// Policy file (YAML); the embedded defaults apply without one.
    #[arg(long, env = "GITOPS_GUARD_POLICY")]
    pub policy: Option<PathBuf>,
    /// kubeconfig to watch the cluster with; in-cluster config otherwise.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Where drift alerts go and who sends them.
    #[command(flatten)]
    pub drift: DriftServeArgs,
    /// Deadline for one review; keep it below the webhook's timeoutSeconds.
    #[arg(long, env = "GITOPS_GUARD_REQUEST_TIMEOUT", default_value = "4s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Reviews answered at once; more are refused with 503 at once (the
    /// apiserver applies the webhook's failurePolicy) instead of queueing.
    #[arg(long, env = "GITOPS_GUARD_MAX_IN_FLIGHT", default_value_t = 512)]
    pub max_in_flight: usize,
    /// Webhook connections open at once; one more is closed at accept,
    /// before TLS. Each costs tens of KiB: this bounds memory under a flood
    /// of clients (the apiserver multiplexes reviews over a few HTTP/2
    /// connections).
    #[arg(long, env = "GITOPS_GUARD_MAX_CONNECTIONS", default_value_t = 256)]
    pub max_connections: usize,
    /// Time a client gets to finish the TLS handshake, then (HTTP/1) to
    /// complete each request's headers once it has begun sending them.
    #[arg(long, env = "GITOPS_GUARD_HEADER_READ_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,
    /// A webhook connection with no review in flight is closed after this
    /// long. Keep it above the clients' idle timeout (Go's and so the
    /// apiserver's: 90 s) so the client, which knows when it is about to
    /// send, closes first; a server-side close can race a review.
    #[arg(long, env = "GITOPS_GUARD_IDLE_TIMEOUT", default_value = "120s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Re-read the certificate at least this often (file events also trigger
    /// it); unchanged files cost a read and a compare.
    #[arg(long, env = "GITOPS_GUARD_CERT_RELOAD_INTERVAL", default_value = "4s", value_parser = parse_duration)]
    pub cert_reload_interval: Duration,
    /// On SIGTERM, keep accepting this long (endpoints catch up), then drain.
    #[arg(long, env = "GITOPS_GUARD_SHUTDOWN_DELAY", default_value = "0s", value_parser = parse_duration)]
    pub shutdown_delay: Duration,
    /// Longest wait for in-flight reviews to finish after SIGTERM.
    #[arg(long, env = "GITOPS_GUARD_SHUTDOWN_GRACE", default_value = "20s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
}

impl ServeArgs {
    /// Cross-field rules, checked once, naming the flag.
    pub fn validate(&self) -> Result<(), String> {
        if self.request_timeout.is_zero() || self.request_timeout > Duration::from_secs(29) {
            return Err(
                "--request-timeout must be between 1ms and 29s (webhooks time out at 30s at most)"
                    .into(),
            );
        }
        if self.max_in_flight == 0 {
            return Err("--max-in-flight must be at least 1".into());
        }
        if self.idle_timeout < self.header_read_timeout {
            return Err("--idle-timeout must be at least --header-read-timeout".into());
        }
        if self.max_connections == 0 {
            return Err("--max-connections must be at least 1".into());
        }
        if self.listen == self.admin_listen {
            return Err("--admin-listen must differ from --listen".into());
        }
        Ok(())
    }
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Policy file (YAML); the embedded defaults apply without one.
    #[arg(long, env = "GITOPS_GUARD_POLICY")]
    pub policy: Option<PathBuf>,
    /// Objects standing in for the cluster view: a YAML/JSON stream of
    /// Namespaces, BreakGlass grants, scale parents, Kustomizations, HelmReleases.
    #[arg(long)]
    pub cluster_state: Option<PathBuf>,
    /// Decide as of this time (RFC 3339) instead of now, e.g. for grant expiry.
    #[arg(long)]
    pub at: Option<jiff::Timestamp>,
    /// Answer as the mutating webhook (`/mutate`): print the JSON Patch.
    #[arg(long)]
    pub mutate: bool,
    /// With --mutate: digests to use, a YAML/JSON map from image (as
    /// written, or `registry/repository:tag`) to `sha256:…`.
    #[arg(long, requires = "mutate", conflicts_with = "resolve")]
    pub digests: Option<PathBuf>,
    /// With --mutate: ask the registries (anonymous, or --docker-config).
    #[arg(long, requires = "mutate")]
    pub resolve: bool,
    /// With --resolve: a dockerconfigjson file with registry credentials.
    #[arg(long, requires = "resolve")]
    pub docker_config: Option<PathBuf>,
    /// With --mutate: the namespace's pin mode, instead of its label in
    /// --cluster-state or the policy default.
    #[arg(long, requires = "mutate", value_parser = parse_pin_mode)]
    pub pin_mode: Option<crate::pin::settings::PinMode>,
    /// The AdmissionReview (JSON or YAML); `-` or nothing reads stdin.
    #[arg(default_value = "-")]
    pub review: String,
}

#[derive(Debug, Args)]
pub struct CertArgs {
    /// Service name of the webhook.
    #[arg(long, default_value = "gitops-guard")]
    pub service: String,
    /// Namespace of the webhook Service.
    #[arg(long, default_value = "gitops-guard")]
    pub namespace: String,
    /// Extra DNS names.
    #[arg(long = "dns")]
    pub dns: Vec<String>,
    /// Extra IP addresses.
    #[arg(long = "ip")]
    pub ips: Vec<std::net::IpAddr>,
    /// Validity of the certificates, in days.
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    /// Directory to write ca.crt, tls.crt and tls.key to.
    #[arg(long)]
    pub out: PathBuf,
    /// Sign with this existing CA certificate instead of a new throwaway CA
    /// (a leaf rotation: caBundle stays as it is). Needs --ca-key.
    #[arg(long, requires = "ca_key")]
    pub ca_cert: Option<PathBuf>,
    /// The private key of --ca-cert (PEM).
    #[arg(long, requires = "ca_cert")]
    pub ca_key: Option<PathBuf>,
}

/// `--pin-mode off|pin|require`.
fn parse_pin_mode(value: &str) -> Result<crate::pin::settings::PinMode, String> {
    crate::pin::settings::PinMode::parse(value)
        .ok_or_else(|| format!("{value:?}: expected off, pin or require"))
}
