//! Through the real kube-apiserver (scripts/up.sh), one workload in each
//! configuration: no admission control for these objects; a
//! ValidatingAdmissionPolicy with the same ownership rule in CEL
//! (bench/apiserver/vap.yaml); a null webhook; gitops-guard's webhook
//! (manifests/local); and with `--peers`, Kyverno v1.19.1 running the
//! policies a Flux user would write (bench/peers/kyverno). The workload: N
//! merge-patches of Flux-owned ConfigMaps by the reconciler (allowed) and N
//! by alice (denied where a rule applies), from a client at a fixed
//! concurrency. Reports client p50/p99 (median and range of `--rounds`
//! interleaved rounds), the added p99 over no admission, each engine's CPU
//! seconds per 1,000 reviews and RSS, and the apiserver's own admission
//! histograms. `--catches` instead runs the bypass and Flux-compatibility
//! scenarios against each engine (catches.rs).
//!
//!     cargo bench --bench apiserver [-- --requests 5000 --concurrency 4,16]
//!     cargo bench --bench apiserver -- --peers --rounds 3     (needs tests/cluster/build-peers.sh)
//!     cargo bench --bench apiserver -- --catches [--peers]

use gitops_guard_testkit::args;
use gitops_guard_testkit::bench_cluster as cluster;
mod catches;
mod gatekeeper;
mod kyverno;
mod metrics;
mod null;
mod peer;
mod plot;
use gitops_guard_testkit::results as results_file;
use gitops_guard_testkit::tls_server;
mod workload;

use std::{fmt::Write, time::Duration};

use cluster::Env;
use workload::Outcome;

const BEGIN: &str = "<!-- apiserver:begin (written by cargo bench --bench apiserver) -->";
const END: &str = "<!-- apiserver:end -->";
const PEERS_BEGIN: &str =
    "<!-- apiserver-peers:begin (written by cargo bench --bench apiserver -- --peers) -->";
const PEERS_END: &str = "<!-- apiserver-peers:end -->";
const CATCHES_BEGIN: &str =
    "<!-- catches:begin (written by cargo bench --bench apiserver -- --catches) -->";
const CATCHES_END: &str = "<!-- catches:end -->";
/// Gatekeeper's webhook port; health and Prometheus on the next two.
const GATEKEEPER_PORT: u16 = 18451;
/// Gatekeeper's templates and constraints (bench/peers/gatekeeper).
const GATEKEEPER_POLICIES: [&str; 2] = ["flux-owned.yaml", "flux-multi-tenancy.yaml"];
/// Kyverno's metrics port; its profiling port is the next one.
const KYVERNO_METRICS_PORT: u16 = 18431;
/// Which ClusterPolicies Kyverno runs (bench/peers/kyverno), each with the
/// Flux multi-tenancy rules.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum KyvernoPolicies {
    /// The ownership rule with Kyverno's defaults.
    Default,
    /// The same with `allowExistingViolations: false`.
    Strict,
    /// Strict, plus the rules for what it misses.
    Extra,
}

impl KyvernoPolicies {
    fn files(self) -> [&'static str; 2] {
        let owned = match self {
            KyvernoPolicies::Default => "flux-owned-default.yaml",
            KyvernoPolicies::Strict => "flux-owned.yaml",
            KyvernoPolicies::Extra => "flux-owned-extra.yaml",
        };
        [owned, "flux-multi-tenancy.yaml"]
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Setup {
    None,
    Policy,
    NullWebhook,
    Webhook,
    Kyverno(KyvernoPolicies),
    Gatekeeper,
}

impl Setup {
    fn name(self) -> &'static str {
        match self {
            Setup::None => "no admission",
            Setup::Policy => "ValidatingAdmissionPolicy (CEL)",
            Setup::NullWebhook => "null webhook (allow, same TLS stack)",
            Setup::Webhook => "gitops-guard webhook",
            Setup::Kyverno(KyvernoPolicies::Default) => "Kyverno 1.19.1, its defaults",
            Setup::Kyverno(KyvernoPolicies::Strict) => {
                "Kyverno 1.19.1, allowExistingViolations: false"
            }
            Setup::Kyverno(KyvernoPolicies::Extra) => "Kyverno 1.19.1, + extra rules",
            Setup::Gatekeeper => "Gatekeeper 3.23.1 (Rego)",
        }
    }

    /// The chart's color.
    fn index(self) -> usize {
        match self {
            Setup::None => 0,
            Setup::Policy => 1,
            Setup::NullWebhook => 2,
            Setup::Webhook => 3,
            Setup::Kyverno(_) => 4,
            Setup::Gatekeeper => 5,
        }
    }
}

/// The engines' state across configurations: Kyverno runs only while it is
/// the one measured (its webhooks fail closed when it is gone).
struct Engines<'e> {
    env: &'e Env,
    null: String,
    kyverno: Option<(kyverno::Kyverno, KyvernoPolicies)>,
    gatekeeper: Option<gatekeeper::Gatekeeper>,
    /// Gatekeeper's RSS after each start (before load) and at its peak.
    gatekeeper_rss: Vec<(f64, f64)>,
    /// Kyverno's RSS after each start (before load) and at its peak.
    kyverno_rss: Vec<(f64, f64)>,
}

impl Engines<'_> {
    fn configure(&mut self, setup: Setup) -> Result<(), String> {
        let env = self.env;
        let vap = env
            .root
            .join("bench/apiserver/vap.yaml")
            .display()
            .to_string();
        let webhook = env.run.join("webhook.yaml").display().to_string();
        let _ = env.kubectl("admin", &["delete", "--ignore-not-found", "-f", &vap], None);
        for name in ["gitops-guard", "bench-null"] {
            let _ = env.kubectl(
                "admin",
                &[
                    "delete",
                    "--ignore-not-found",
                    "validatingwebhookconfiguration",
                    name,
                ],
                None,
            );
        }
        let running = self.kyverno.as_ref().map(|(_, p)| Setup::Kyverno(*p));
        if running.is_some_and(|r| r != setup) {
            self.stop_kyverno();
        }
        if setup != Setup::Gatekeeper {
            self.stop_gatekeeper();
        }
        match setup {
            Setup::None => {}
            Setup::NullWebhook => {
                env.kubectl("admin", &["apply", "-f", "-"], Some(&self.null))?;
            }
            Setup::Policy => {
                env.kubectl("admin", &["apply", "-f", &vap], None)?;
            }
            Setup::Webhook => {
                env.kubectl("admin", &["apply", "-f", &webhook], None)?;
            }
            Setup::Kyverno(policies) => {
                if self.kyverno.is_none() {
                    let started = kyverno::Kyverno::start(env, KYVERNO_METRICS_PORT)?;
                    started.apply(env, &policies.files())?;
                    let idle = cluster::rss_kib(&started.pid()) as f64 / 1024.0;
                    println!("Kyverno RSS, idle after start: {idle:.1} MiB");
                    self.kyverno_rss.push((idle, 0.0));
                    self.kyverno = Some((started, policies));
                }
            }
            Setup::Gatekeeper => {
                if self.gatekeeper.is_none() {
                    let started = gatekeeper::Gatekeeper::start(env, GATEKEEPER_PORT)?;
                    started.apply(env, &GATEKEEPER_POLICIES)?;
                    let idle = cluster::rss_kib(&started.pid()) as f64 / 1024.0;
                    println!("Gatekeeper RSS, idle after start: {idle:.1} MiB");
                    self.gatekeeper_rss.push((idle, 0.0));
                    self.gatekeeper = Some(started);
                }
            }
        }
        // Admission configuration reaches the apiserver through its informers.
        std::thread::sleep(Duration::from_secs(3));
        Ok(())
    }

    fn stop_kyverno(&mut self) {
        if let Some((k, _)) = self.kyverno.take() {
            if let Some(last) = self.kyverno_rss.last_mut() {
                last.1 = peak_rss_mib(&k.pid());
            }
            k.stop(self.env);
        }
    }

    fn stop_gatekeeper(&mut self) {
        if let Some(g) = self.gatekeeper.take() {
            if let Some(last) = self.gatekeeper_rss.last_mut() {
                last.1 = peak_rss_mib(&g.pid());
            }
            g.stop(self.env);
        }
    }

    /// The process that decides for `setup`, if it is not the apiserver.
    fn engine_pid(&self, setup: Setup) -> Option<String> {
        match setup {
            Setup::Webhook => Some(self.env.guard_pid()),
            Setup::Kyverno(_) => self.kyverno.as_ref().map(|(k, _)| k.pid()),
            Setup::Gatekeeper => self.gatekeeper.as_ref().map(gatekeeper::Gatekeeper::pid),
            _ => None,
        }
    }
}

/// The highest RSS a process has had (VmHWM), in MiB.
fn peak_rss_mib(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

struct Row {
    setup: Setup,
    who: &'static str,
    concurrency: usize,
    outcome: Outcome,
    server: metrics::Delta,
    /// CPU seconds per 1,000 requests: the engine's process, and the control
    /// plane's (etcd, apiserver, controller-manager: one harness process).
    engine_cpu: Option<f64>,
    plane_cpu: f64,
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

/// What this run measures.
struct Plan {
    requests: usize,
    concurrency: Vec<usize>,
    rounds: usize,
    peers: bool,
    /// With `--peers`, when tests/cluster/build-peers.sh has built it.
    gatekeeper: bool,
    catches: bool,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        return; // needs the local control plane: only as a bench
    }
    let root = gitops_guard_testkit::repo_root();
    let peers = args.iter().any(|a| a == "--peers");
    let plan = Plan {
        requests: args::value_or_exit(&args, "--requests", 5000),
        concurrency: args::value_or_exit(&args, "--concurrency", Levels(vec![4, 16])).0,
        rounds: args::value_or_exit(&args, "--rounds", 1),
        peers,
        gatekeeper: peers && gatekeeper::binary(&root).exists(),
        catches: args.iter().any(|a| a == "--catches"),
    };
    if plan.peers && !plan.gatekeeper {
        println!(
            "bench apiserver: Gatekeeper not built (tests/cluster/build-peers.sh gatekeeper): left out"
        );
    }
    if plan.peers && !kyverno::binary(&root).exists() {
        eprintln!(
            "bench apiserver: --peers needs Kyverno: run tests/cluster/build-peers.sh (about 7 minutes an engine)"
        );
        std::process::exit(2);
    }
    let result = cluster::up(
        "bench-apiserver",
        env!("CARGO_BIN_EXE_gitops-guard"),
        env!("CARGO_TARGET_TMPDIR"),
    )
    .and_then(|env| {
        let outcome = if plan.catches {
            run_catches(&env, &plan)
        } else {
            measure(&env, &plan).and_then(|(rows, rss)| write(&rows, &rss, &plan))
        };
        env.down();
        outcome
    });
    if let Err(e) = result {
        eprintln!("bench apiserver: {e}");
        std::process::exit(1);
    }
}

fn setups(plan: &Plan) -> Vec<Setup> {
    let mut all = vec![
        Setup::None,
        Setup::Policy,
        Setup::NullWebhook,
        Setup::Webhook,
    ];
    if plan.peers {
        all.push(Setup::Kyverno(KyvernoPolicies::Strict));
    }
    if plan.gatekeeper {
        all.push(Setup::Gatekeeper);
    }
    all
}

fn measure(env: &Env, plan: &Plan) -> Result<(Vec<Row>, String), String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_secs(5));
    let idle = env.guard_rss_mib();
    println!("gitops-guard RSS, idle after start: {idle:.1} MiB");
    workload::prepare(env)?;
    if plan.peers {
        kyverno::install(env)?;
    }
    if plan.gatekeeper {
        gatekeeper::install(env)?;
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let null = rt.block_on(null::start(dir.path()))?;
    let mut engines = Engines {
        env,
        null,
        kyverno: None,
        kyverno_rss: Vec::new(),
        gatekeeper: None,
        gatekeeper_rss: Vec::new(),
    };
    let plane = env.plane_pid();
    let mut rows = Vec::new();
    for round in 1..=plan.rounds.max(1) {
        println!("round {round} of {}", plan.rounds.max(1));
        for setup in setups(plan) {
            engines.configure(setup)?;
            for &concurrency in &plan.concurrency {
                for who in ["kustomize-controller", "alice"] {
                    // Warm connections, caches and the apiserver's informers first.
                    rt.block_on(workload::run(env, who, plan.requests / 10, concurrency))?;
                    let before = metrics::scrape(env)?;
                    let engine = engines.engine_pid(setup);
                    let cpu_before = engine.as_deref().map(cluster::cpu_seconds);
                    let plane_before = cluster::tree_cpu_seconds(&plane);
                    let outcome =
                        rt.block_on(workload::run(env, who, plan.requests, concurrency))?;
                    let per_1000 = 1000.0 / plan.requests.max(1) as f64;
                    let engine_cpu = engine
                        .as_deref()
                        .zip(cpu_before)
                        .map(|(pid, b)| (cluster::cpu_seconds(pid) - b) * per_1000);
                    let plane_cpu = (cluster::tree_cpu_seconds(&plane) - plane_before) * per_1000;
                    let server = metrics::scrape(env)?.since(&before);
                    let row = Row {
                        setup,
                        who,
                        concurrency,
                        outcome,
                        server,
                        engine_cpu,
                        plane_cpu,
                    };
                    println!("{}", line(&row, None));
                    rows.push(row);
                }
            }
        }
    }
    engines.stop_kyverno();
    engines.stop_gatekeeper();
    let mut rss = format!(
        "gitops-guard RSS: {idle:.1} MiB idle after start, {:.1} MiB after all runs, {:.1} MiB at its peak.",
        env.guard_rss_mib(),
        peak_rss_mib(&env.guard_pid())
    );
    for (i, (idle, peak)) in engines.kyverno_rss.iter().enumerate() {
        let _ = write!(
            rss,
            " Kyverno (start {}): {idle:.1} MiB idle after start and policies, {peak:.1} MiB at its peak.",
            i + 1
        );
    }
    for (i, (idle, peak)) in engines.gatekeeper_rss.iter().enumerate() {
        let _ = write!(
            rss,
            " Gatekeeper (start {}): {idle:.1} MiB idle after start and policies, {peak:.1} MiB at its peak.",
            i + 1
        );
    }
    println!("{rss}");
    Ok((rows, rss))
}

fn run_catches(env: &Env, plan: &Plan) -> Result<(), String> {
    catches::prepare(env)?;
    let mut order = vec![Setup::None, Setup::Policy, Setup::Webhook];
    if plan.peers {
        kyverno::install(env)?;
        order.extend([
            Setup::Kyverno(KyvernoPolicies::Default),
            Setup::Kyverno(KyvernoPolicies::Strict),
            Setup::Kyverno(KyvernoPolicies::Extra),
        ]);
    }
    if plan.gatekeeper {
        gatekeeper::install(env)?;
        order.push(Setup::Gatekeeper);
    }
    let mut engines = Engines {
        env,
        null: String::new(),
        kyverno: None,
        kyverno_rss: Vec::new(),
        gatekeeper: None,
        gatekeeper_rss: Vec::new(),
    };
    let mut columns = Vec::new();
    for setup in &order {
        println!("{}:", setup.name());
        engines.configure(*setup)?;
        columns.push(catches::run(env));
    }
    engines.stop_kyverno();
    engines.stop_gatekeeper();
    let mut s = String::new();
    let _ = writeln!(s, "{CATCHES_BEGIN}");
    let _ = writeln!(
        s,
        "Each scenario through the real apiserver, as a real user (client certificate) or a real \
         service-account token, with the real source-controller and kustomize-controller running; \
         fixtures put back by kustomize-controller before each. An attack should be denied; \
         Flux's and Kubernetes' own writes must pass. Command: \
         `cargo bench --bench apiserver -- --catches{}`.\n",
        if plan.peers { " --peers" } else { "" }
    );
    let header: Vec<&str> = order.iter().map(|s| s.name()).collect();
    let _ = writeln!(s, "| scenario | should be | {} |", header.join(" | "));
    let _ = writeln!(s, "|---|---|{}", "---|".repeat(order.len()));
    for (i, case) in catches::cases().iter().enumerate() {
        let cells: Vec<&str> = columns
            .iter()
            .map(|c| c.get(i).map_or("-", String::as_str))
            .collect();
        let should = match case.expect {
            catches::Expect::Refused => "denied",
            catches::Expect::Passes => "passes",
        };
        let _ = writeln!(s, "| {} | {should} | {} |", case.name, cells.join(" | "));
    }
    let _ = writeln!(s, "{CATCHES_END}");
    results_file::write_section(
        CATCHES_BEGIN,
        CATCHES_END,
        "## What each engine catches (same run, same scenarios)",
        &s,
    )
}

fn line(r: &Row, baseline: Option<&Row>) -> String {
    let o = &r.outcome;
    let added = baseline.map_or_else(String::new, |b| {
        format!("{:+.2}", o.ms(0.99) - b.outcome.ms(0.99))
    });
    let engine = r.engine_cpu.map_or("-".to_owned(), |c| format!("{c:.2}"));
    format!(
        "| {} | {} | {} | {} | {} | {:.2} | {:.2} | {added} | {engine} | {:.2} | {} |",
        r.setup.name(),
        r.who,
        r.concurrency,
        o.allowed,
        o.denied,
        o.ms(0.50),
        o.ms(0.99),
        r.plane_cpu,
        r.server.describe()
    )
}

/// The rounds of one (configuration, client, concurrency).
struct Group<'r> {
    rows: Vec<&'r Row>,
}

impl Group<'_> {
    fn first(&self) -> &Row {
        self.rows[0]
    }

    fn values(&self, f: impl Fn(&Row) -> f64) -> Vec<f64> {
        let mut v: Vec<f64> = self.rows.iter().map(|r| f(r)).collect();
        v.sort_by(f64::total_cmp);
        v
    }

    fn median(&self, f: impl Fn(&Row) -> f64) -> f64 {
        let v = self.values(f);
        v[v.len() / 2]
    }

    /// `median` alone for one round, `median (min–max)` for several.
    fn spread(&self, f: impl Fn(&Row) -> f64) -> String {
        let v = self.values(f);
        match v.as_slice() {
            [one] => format!("{one:.2}"),
            _ => format!("{:.2} ({:.2}–{:.2})", v[v.len() / 2], v[0], v[v.len() - 1]),
        }
    }

    fn count(&self, f: impl Fn(&Row) -> u64) -> String {
        let (lo, hi) = self
            .rows
            .iter()
            .map(|r| f(r))
            .fold((u64::MAX, 0), |(lo, hi), n| (lo.min(n), hi.max(n)));
        if lo == hi {
            lo.to_string()
        } else {
            format!("{lo}–{hi}")
        }
    }
}

fn groups(rows: &[Row]) -> Vec<Group<'_>> {
    let mut out: Vec<Group<'_>> = Vec::new();
    for r in rows {
        let same = |g: &Group<'_>| {
            let f = g.first();
            f.setup == r.setup && f.who == r.who && f.concurrency == r.concurrency
        };
        match out.iter_mut().find(|g| same(g)) {
            Some(g) => g.rows.push(r),
            None => out.push(Group { rows: vec![r] }),
        }
    }
    out
}

fn write(rows: &[Row], rss: &str, plan: &Plan) -> Result<(), String> {
    let requests = plan.requests;
    let rounds = plan.rounds.max(1);
    let (begin, end) = if plan.peers {
        (PEERS_BEGIN, PEERS_END)
    } else {
        (BEGIN, END)
    };
    let mut s = String::new();
    let _ = writeln!(s, "{begin}");
    let _ = writeln!(
        s,
        "{requests} requests per row (after {} unmeasured), merge-patches of 50 Flux-owned ConfigMaps; \
         {rounds} round(s), the configurations interleaved in each; with several rounds a figure is \
         the median and (range) of the rounds. apiserver, etcd, controller-manager, engines and client \
         share the machine's 2 cores. CPU is seconds per 1,000 requests: the engine's own process \
         (gitops-guard or Kyverno; the policy runs inside the apiserver) and the control plane's \
         (the harness process and its children: etcd, kube-apiserver, kube-controller-manager). \
         Command: `cargo bench --bench apiserver -- --requests {requests} --rounds {rounds}{}`.\n",
        requests / 10,
        if plan.peers { " --peers" } else { "" }
    );
    let _ = writeln!(
        s,
        "| configuration | client | concurrent | allowed | denied | client p50 ms | client p99 ms | p99 added over no admission (ms) | engine CPU s / 1000 | control plane CPU s / 1000 | apiserver's admission histogram (last round); gitops-guard's own |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|");
    let all = groups(rows);
    let mut bars = Vec::new();
    for g in &all {
        let f = g.first();
        let p99 = |r: &Row| r.outcome.ms(0.99);
        let base = all.iter().find(|b| {
            let b = b.first();
            b.setup == Setup::None && b.who == f.who && b.concurrency == f.concurrency
        });
        let added = base
            .filter(|_| f.setup != Setup::None)
            .map_or_else(String::new, |b| {
                format!("{:+.2}", g.median(p99) - b.median(p99))
            });
        let engine = match f.engine_cpu {
            Some(_) => g.spread(|r| r.engine_cpu.unwrap_or(0.0)),
            None => "-".to_owned(),
        };
        let last = g
            .rows
            .last()
            .map_or_else(String::new, |r| r.server.describe());
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {added} | {engine} | {} | {last} |",
            f.setup.name(),
            f.who,
            f.concurrency,
            g.count(|r| r.outcome.allowed),
            g.count(|r| r.outcome.denied),
            g.spread(|r| r.outcome.ms(0.50)),
            g.spread(p99),
            g.spread(|r| r.plane_cpu),
        );
        let v = g.values(p99);
        bars.push(plot::Bar {
            label: format!("{}, {}, {}", f.setup.name(), f.who, f.concurrency),
            series: f.setup.index(),
            min: v[0],
            median: g.median(p99),
            max: v[v.len() - 1],
        });
    }
    let _ = writeln!(s, "\n{rss}\n{end}");
    if plan.peers {
        let svg = gitops_guard_testkit::repo_root().join("bench/peers.svg");
        let title =
            format!("Client p99 through the apiserver, {requests} patches a row, {rounds} rounds");
        plot::draw(&svg, &title, &bars)?;
        println!("wrote {}", svg.display());
    }
    let heading = if plan.peers {
        "## Peers through the apiserver: gitops-guard, Kyverno, ValidatingAdmissionPolicy (same run)"
    } else {
        "## Through the apiserver: no admission, ValidatingAdmissionPolicy, gitops-guard"
    };
    results_file::write_section(begin, end, heading, &s)
}
