//! Abuse: the real guard process (scripts/up.sh, defaults `--max-connections`
//! 256, `--max-in-flight` 512) flooded directly on its webhook port by 2,048
//! closed-loop clients, over HTTP/1.1 (one connection each) and HTTP/2, while
//! an apiserver-like client sends 200 reviews/s beside them. Prints what was
//! answered, refused and shed, the apiserver-like client's latency and
//! failures, and the guard's RSS before, at its peak during and after.
//!
//!     cargo bench --bench flood [-- --concurrency 2048 --seconds 10]

use gitops_guard_testkit::args;
use gitops_guard_testkit::bench_cluster as cluster;
use gitops_guard_testkit::load_client as load;
use gitops_guard_testkit::results as results_file;

use std::{
    fmt::Write,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

const BEGIN: &str = "<!-- flood:begin (written by cargo bench --bench flood) -->";
const END: &str = "<!-- flood:end -->";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        return; // needs the local control plane: only as a bench
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let concurrency: usize = args::value_or_exit(&args, "--concurrency", 2048);
    let seconds: u64 = args::value_or_exit(&args, "--seconds", 10);
    let env = match cluster::up(
        "bench-flood",
        env!("CARGO_BIN_EXE_gitops-guard"),
        env!("CARGO_TARGET_TMPDIR"),
    ) {
        Ok(env) => env,
        Err(e) => {
            eprintln!("bench flood: {e}");
            std::process::exit(1);
        }
    };
    let result = flood(&env, concurrency, seconds);
    env.down();
    match result.and_then(|section| results_file::write_section(BEGIN, END, "## Flood", &section)) {
        Ok(()) => {}
        Err(e) => {
            eprintln!("bench flood: {e}");
            std::process::exit(1);
        }
    }
}

fn flood(env: &cluster::Env, concurrency: usize, seconds: u64) -> Result<String, String> {
    let pid = std::fs::read_to_string(env.run.join("pids/guard.pid")).map_err(|e| e.to_string())?;
    let pid = pid.trim().to_owned();
    let port = env.env_value("guard.env", "GUARD_PORT");
    let ca = std::fs::read_to_string(env.run.join("certs/ca.crt")).map_err(|e| e.to_string())?;
    let body = std::fs::read(
        env.root
            .join("tests/fixtures/edit-flux-deployment-by-human.json"),
    )
    .map_err(|e| e.to_string())?;
    let url = format!("https://127.0.0.1:{port}/validate");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut s = String::new();
    let _ = writeln!(s, "{BEGIN}");
    let _ = writeln!(
        s,
        "{concurrency} concurrent reviews (closed loop) for {seconds} s straight at the guard \
         process of `scripts/up.sh` (defaults: `--max-connections` 256, `--max-in-flight` 512), \
         a Deployment review. HTTP/1.1 opens one connection per worker, so connections past 256 are \
         closed at accept (counted as failed by the client, `refused` by the guard); HTTP/2 \
         multiplexes every worker over one connection. Command: `cargo bench --bench flood`."
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "| flood protocol | answered | failed | connections refused | shed (503) | answered/s | p50 ms | p99 ms | RSS before | RSS peak | RSS after | apiserver-like client: answered, failed, p50 / p99 ms |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    let admin = env.env_value("guard.env", "ADMIN_PORT");
    for protocol in [load::Protocol::Http1, load::Protocol::Http2] {
        let before = cluster::rss_kib(&pid);
        let shed_before = counter(&admin, "gitops_guard_admission_shed_total");
        let refused_before = counter(&admin, "gitops_guard_connections_refused_total");
        let peak = Arc::new(AtomicU64::new(before));
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (peak, stop, pid) = (peak.clone(), stop.clone(), pid.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(cluster::rss_kib(&pid), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        // The apiserver's share: HTTP/2 at a constant 200 reviews/s on its
        // own thread, connected before the flood starts.
        let victim_runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let victim_plan = load::Load {
            concurrency: 4,
            rate: Some(200),
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs(seconds),
        };
        let victim_client = load::client(&ca, load::Protocol::Http2, 4)?;
        let victim = victim_runtime.spawn(load::run(
            victim_client,
            url.clone(),
            body.clone(),
            victim_plan,
        ));
        std::thread::sleep(Duration::from_millis(300));
        let client = load::client(&ca, protocol, concurrency)?;
        let plan = load::Load {
            concurrency,
            rate: None,
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs(seconds),
        };
        let outcome = runtime.block_on(load::run(client, url.clone(), body.clone(), plan));
        let victim = victim_runtime.block_on(victim).map_err(|e| e.to_string())?;
        stop.store(true, Ordering::Relaxed);
        let _ = sampler.join();
        std::thread::sleep(Duration::from_secs(5));
        let after = cluster::rss_kib(&pid);
        let shed = counter(&admin, "gitops_guard_admission_shed_total") - shed_before;
        let refused = counter(&admin, "gitops_guard_connections_refused_total") - refused_before;
        let mib = |kib: u64| kib as f64 / 1024.0;
        let row = format!(
            "| {} | {} | {} | {refused:.0} | {shed:.0} | {:.0} | {:.2} | {:.2} | {:.1} MiB | {:.1} MiB | {:.1} MiB | {}, {}, {:.2} / {:.2} |",
            protocol.as_str(),
            outcome.histogram.len(),
            outcome.errors,
            outcome.throughput(),
            outcome.ms(0.5),
            outcome.ms(0.99),
            mib(before),
            mib(peak.load(Ordering::Relaxed)),
            mib(after),
            victim.histogram.len(),
            victim.errors,
            victim.ms(0.5),
            victim.ms(0.99),
        );
        println!("{row}");
        let _ = writeln!(s, "{row}");
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Failed counts every review that did not get a 200 after the warm-up second; refused and \
         shed are the guard's own counters over the whole run, warm-up included. The \
         latency columns are of answered reviews only. RSS is the guard's own \
         (`/proc/PID/status`), sampled every 50 ms. The apiserver-like client runs beside the \
         flood on its own thread: HTTP/2, 4 streams, a constant 200 reviews/s, its connection \
         made before the flood; the machine's 2 cores are shared by guard, flood and client."
    );
    let _ = writeln!(s, "{END}");
    Ok(s)
}

/// A counter from the guard's admin port.
fn counter(admin_port: &str, name: &str) -> f64 {
    use std::io::{Read, Write as _};
    let text = (|| {
        let mut stream = std::net::TcpStream::connect(format!("127.0.0.1:{admin_port}")).ok()?;
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .ok()?;
        let mut text = String::new();
        stream.read_to_string(&mut text).ok()?;
        Some(text)
    })()
    .unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}
