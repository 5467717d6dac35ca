//! gitops-guard: parse flags, start telemetry, run the subcommand.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use gitops_guard::{
    app, cert, check,
    cluster::breakglass,
    config::{AuditCommand, CertArgs, Cli, Command},
    policy::DEFAULT_POLICY_YAML,
    telemetry,
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    // One TLS provider for the whole process, installed before any TLS use.
    if rustls::crypto::ring::default_provider()
        .install_default()
        .is_err()
    {
        tracing::debug!("a rustls crypto provider was already installed");
    }
    match cli.command {
        Command::Serve(args) => serve(*args),
        Command::Drift(args) => run_drift(&args),
        Command::Audit(AuditCommand::Tenants(args)) => run_audit_tenants(&args),
        Command::Check(args) => run_check(&args),
        Command::Cert(args) => report(write_cert(&args)),
        Command::Crd => report(
            breakglass::crd_yaml()
                .map(|yaml| print!("{yaml}"))
                .map_err(Into::into),
        ),
        Command::Policy => {
            print!("{DEFAULT_POLICY_YAML}");
            ExitCode::SUCCESS
        }
    }
}

fn serve(args: gitops_guard::config::ServeArgs) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return report(Err(e.into())),
    };
    report(runtime.block_on(app::serve(args)))
}

/// Exit 0 no drift, 1 drift found, 2 the scan could not run.
fn run_drift(args: &gitops_guard::config::DriftArgs) -> ExitCode {
    use gitops_guard::{config::Output, drift::scan};
    let run = async {
        let policy = match &args.policy {
            Some(path) => gitops_guard::policy::Policy::load(path)?,
            None => gitops_guard::policy::Policy::default(),
        };
        let client = app::kube_client(args.kubeconfig.as_deref()).await?;
        scan::scan(client, &policy).await
    };
    let rows = match tokio::runtime::Runtime::new().map_err(anyhow::Error::from) {
        Ok(rt) => rt.block_on(run),
        Err(e) => Err(e),
    };
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("gitops-guard drift: {e:#}");
            return ExitCode::from(2);
        }
    };
    match args.output {
        Output::Json => {
            if let Err(code) = print_json("drift", &rows) {
                return code;
            }
        }
        Output::Table if rows.is_empty() => println!("no drift"),
        Output::Table => println!("{}", scan::table(&rows)),
    }
    if rows.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Exit 0 no findings, 1 findings, 2 the audit could not run.
fn run_audit_tenants(args: &gitops_guard::config::AuditTenantsArgs) -> ExitCode {
    use gitops_guard::{config::Output, tenancy::report, tenancy::scan};
    let run = async {
        let policy = match &args.policy {
            Some(path) => gitops_guard::policy::Policy::load(path)?,
            None => gitops_guard::policy::Policy::default(),
        };
        match &args.cluster_state {
            Some(state) => scan::offline(&policy, state).await,
            None => {
                let client = app::kube_client(args.kubeconfig.as_deref()).await?;
                scan::online(client, &policy).await
            }
        }
    };
    let outcome = tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(run));
    let report = match outcome {
        Ok(report) => report,
        Err(e) => {
            eprintln!("gitops-guard audit tenants: {e:#}");
            return ExitCode::from(2);
        }
    };
    match args.output {
        Output::Json => {
            if let Err(code) = print_json("audit tenants", &report) {
                return code;
            }
        }
        Output::Table => print!("{}", report::table(&report)),
    }
    if report.findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Exit 0 allowed, 1 denied, 2 invalid input or usage. With --mutate the
/// answer is the mutating webhook's (patched or not, it is allowed).
fn run_check(args: &gitops_guard::config::CheckArgs) -> ExitCode {
    let outcome = if args.mutate {
        gitops_guard::check_mutate::run(args).and_then(|o| {
            let text = serde_json::to_string_pretty(&o)?;
            Ok((o.allowed, text))
        })
    } else {
        check::run(args).map(|o| (o.decision.is_allowed(), o.response))
    };
    match outcome {
        Ok((allowed, text)) => {
            println!("{text}");
            if allowed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("gitops-guard check: {e}");
            ExitCode::from(2)
        }
    }
}

fn write_cert(args: &CertArgs) -> anyhow::Result<()> {
    let request = cert::CertRequest {
        service: args.service.clone(),
        namespace: args.namespace.clone(),
        dns: args.dns.clone(),
        ips: args.ips.clone(),
        validity_days: args.days,
    };
    let bundle = match (&args.ca_cert, &args.ca_key) {
        (Some(cert_path), Some(key_path)) => {
            let read = |path: &std::path::PathBuf, flag: &str| {
                std::fs::read_to_string(path).with_context(|| format!("{flag} {}", path.display()))
            };
            let (cert_pem, key_pem) = (read(cert_path, "--ca-cert")?, read(key_path, "--ca-key")?);
            let ca = cert::Ca {
                cert_pem: &cert_pem,
                key_pem: &key_pem,
            };
            cert::renew(&request, ca)?
        }
        _ => cert::generate(&request)?,
    };
    cert::write(&bundle, &args.out)?;
    println!("{}", cert::ca_bundle_base64(&bundle));
    Ok(())
}

/// Prints `value` as pretty JSON; exit 2 when it cannot be written.
fn print_json(command: &str, value: &impl serde::Serialize) -> Result<(), ExitCode> {
    match serde_json::to_string_pretty(value) {
        Ok(text) => {
            println!("{text}");
            Ok(())
        }
        Err(e) => {
            eprintln!("gitops-guard {command}: {e}");
            Err(ExitCode::from(2))
        }
    }
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gitops-guard: {e:#}");
            ExitCode::from(2)
        }
    }
}
