//! Through the real kube-apiserver (scripts/up.sh), one workload in three
//! configurations: no admission control for these objects; a
//! ValidatingAdmissionPolicy with the same ownership rule in CEL
//! (bench/apiserver/vap.yaml); gitops-guard's webhook (manifests/local).
//! The workload: N merge-patches of Flux-owned ConfigMaps by the reconciler
//! (allowed) and N by alice (denied where a rule applies), from a client at a
//! fixed concurrency. Reports client p50/p99, the added p99 over no
//! admission, and the apiserver's own admission histograms.
//!
//!     cargo bench --bench apiserver [-- --requests 5000 --concurrency 16]

use gitops_guard_testkit::args;
use gitops_guard_testkit::bench_cluster as cluster;
mod metrics;
mod null;
use gitops_guard_testkit::results as results_file;
use gitops_guard_testkit::tls_server;
mod workload;

use std::{fmt::Write, time::Duration};

use cluster::Env;
use workload::Outcome;

const BEGIN: &str = "<!-- apiserver:begin (written by cargo bench --bench apiserver) -->";
const END: &str = "<!-- apiserver:end -->";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Setup {
    None,
    Policy,
    NullWebhook,
    Webhook,
}

impl Setup {
    fn name(self) -> &'static str {
        match self {
            Setup::None => "no admission",
            Setup::Policy => "ValidatingAdmissionPolicy (CEL)",
            Setup::NullWebhook => "null webhook (allow, same TLS stack)",
            Setup::Webhook => "gitops-guard webhook",
        }
    }
}

fn configure(env: &Env, setup: Setup, null: &str) -> Result<(), String> {
    let vap = env
        .root
        .join("bench/apiserver/vap.yaml")
        .display()
        .to_string();
    let webhook = env.run.join("webhook.yaml").display().to_string();
    let _ = env.kubectl("admin", &["delete", "--ignore-not-found", "-f", &vap], None);
    let _ = env.kubectl(
        "admin",
        &[
            "delete",
            "--ignore-not-found",
            "validatingwebhookconfiguration",
            "gitops-guard",
        ],
        None,
    );
    let _ = env.kubectl(
        "admin",
        &[
            "delete",
            "--ignore-not-found",
            "validatingwebhookconfiguration",
            "bench-null",
        ],
        None,
    );
    match setup {
        Setup::None => {}
        Setup::NullWebhook => {
            env.kubectl("admin", &["apply", "-f", "-"], Some(null))?;
        }
        Setup::Policy => {
            env.kubectl("admin", &["apply", "-f", &vap], None)?;
        }
        Setup::Webhook => {
            env.kubectl("admin", &["apply", "-f", &webhook], None)?;
        }
    }
    // Admission configuration reaches the apiserver through its informers.
    std::thread::sleep(Duration::from_secs(3));
    Ok(())
}

struct Row {
    setup: Setup,
    who: &'static str,
    concurrency: usize,
    outcome: Outcome,
    server: metrics::Delta,
}

/// `--concurrency 4,16`: every level must parse.
struct Levels(Vec<usize>);

impl std::str::FromStr for Levels {
    type Err = std::num::ParseIntError;

    fn from_str(list: &str) -> Result<Self, Self::Err> {
        list.split(',')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map(Levels)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        return; // needs the local control plane: only as a bench
    }
    let requests: usize = args::value_or_exit(&args, "--requests", 5000);
    let concurrency = args::value_or_exit(&args, "--concurrency", Levels(vec![4, 16])).0;
    let result = cluster::up(
        "bench-apiserver",
        env!("CARGO_BIN_EXE_gitops-guard"),
        env!("CARGO_TARGET_TMPDIR"),
    )
    .and_then(|env| {
        let rows = measure(&env, requests, &concurrency);
        env.down();
        rows.and_then(|(rows, rss)| write(&rows, &rss, requests))
    });
    if let Err(e) = result {
        eprintln!("bench apiserver: {e}");
        std::process::exit(1);
    }
}

fn measure(
    env: &Env,
    requests: usize,
    concurrency: &[usize],
) -> Result<(Vec<Row>, String), String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_secs(5));
    let idle = env.guard_rss_mib();
    println!("gitops-guard RSS, idle after start: {idle:.1} MiB");
    workload::prepare(env)?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let null = rt.block_on(null::start(dir.path()))?;
    let mut rows = Vec::new();
    for setup in [
        Setup::None,
        Setup::Policy,
        Setup::NullWebhook,
        Setup::Webhook,
    ] {
        configure(env, setup, &null)?;
        for &concurrency in concurrency {
            for who in ["kustomize-controller", "alice"] {
                // Warm connections, caches and the apiserver's informers first.
                rt.block_on(workload::run(env, who, requests / 10, concurrency))?;
                let before = metrics::scrape(env)?;
                let outcome = rt.block_on(workload::run(env, who, requests, concurrency))?;
                let server = metrics::scrape(env)?.since(&before);
                let row = Row {
                    setup,
                    who,
                    concurrency,
                    outcome,
                    server,
                };
                println!("{}", line(&row, None));
                rows.push(row);
            }
        }
    }
    let rss = format!(
        "gitops-guard RSS: {idle:.1} MiB idle after start, {:.1} MiB after all runs.",
        env.guard_rss_mib()
    );
    println!("{rss}");
    Ok((rows, rss))
}

fn line(r: &Row, baseline: Option<&Row>) -> String {
    let o = &r.outcome;
    let added = baseline.map_or_else(String::new, |b| {
        format!("{:+.2}", o.ms(0.99) - b.outcome.ms(0.99))
    });
    format!(
        "| {} | {} | {} | {} | {} | {:.2} | {:.2} | {added} | {} |",
        r.setup.name(),
        r.who,
        r.concurrency,
        o.allowed,
        o.denied,
        o.ms(0.50),
        o.ms(0.99),
        r.server.describe()
    )
}

fn write(rows: &[Row], rss: &str, requests: usize) -> Result<(), String> {
    let mut s = String::new();
    let _ = writeln!(s, "{BEGIN}");
    let _ = writeln!(
        s,
        "{requests} requests per row (after {} unmeasured), merge-patches of 50 Flux-owned ConfigMaps; \
         apiserver, etcd, controller-manager, guard and client share the machine's cores. \
         Command: `cargo bench --bench apiserver -- --requests {requests}`.\n",
        requests / 10
    );
    let _ = writeln!(
        s,
        "| configuration | client | concurrent | allowed | denied | client p50 ms | client p99 ms | p99 added over no admission (ms) | apiserver's admission histogram; gitops-guard's own |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let base = rows
            .iter()
            .find(|b| b.setup == Setup::None && b.who == r.who && b.concurrency == r.concurrency);
        let _ = writeln!(s, "{}", line(r, base.filter(|_| r.setup != Setup::None)));
    }
    let _ = writeln!(s, "\n{rss}\n{END}");
    results_file::write_section(
        BEGIN,
        END,
        "## Through the apiserver: no admission, ValidatingAdmissionPolicy, gitops-guard",
        &s,
    )
}
