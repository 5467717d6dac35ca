//! The drift watcher against the local control plane (scripts/up.sh):
//!
//! 1. detection latency: a manual change of an owned object until its
//!    GitOpsDrift alert is listed by Alertmanager, p50/p99 over 100 changes
//!    (goal: p99 under 2 s);
//! 2. RSS and time to ready (every drift watcher listed once) of a freshly
//!    started guard with N owned ConfigMaps in the cluster.
//!
//! ```text
//! cargo bench --bench drift                    # N = 1000, 10000, 50000
//! cargo bench --bench drift -- --objects 1000  # a quicker run
//! ```
//!
//! Alertmanager is polled with curl every 10 ms, so each latency includes up
//! to one poll interval and a curl start.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use gitops_guard_testkit::bench_cluster as cluster;

use cluster::Env;

fn curl(url: &str) -> String {
    Command::new("curl")
        .args(["-s", "--max-time", "2", url])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

fn percentile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort_unstable();
    samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)]
}

fn latency(env: &Env) -> Result<(), String> {
    let am = env.env_value("guard.env", "ALERTMANAGER_URL");
    let ns = "bench-latency";
    env.kubectl("admin", &["create", "namespace", ns], None)?;
    env.kubectl(
        "admin",
        &["label", "namespace", ns, "gitops-guard.io/mode=warn"],
        None,
    )?;
    env.apply_owned_configmaps(ns, 0..100)?;
    std::thread::sleep(Duration::from_millis(1100));
    let mut samples = Vec::new();
    for i in 0..100 {
        let patch = format!(r#"{{"data":{{"key":"changed-{i}"}}}}"#);
        env.kubectl(
            "alice",
            &[
                "patch",
                "configmap",
                &format!("cm-{i}"),
                "-n",
                ns,
                "--type=merge",
                "-p",
                &patch,
            ],
            None,
        )?;
        let changed = Instant::now();
        let url = format!(
            "{am}api/v2/alerts?filter=alertname%3D%22GitOpsDrift%22&filter=name%3D%22cm-{i}%22&filter=namespace%3D%22{ns}%22"
        );
        loop {
            if curl(&url).contains(&format!("\"cm-{i}\"")) {
                samples.push(changed.elapsed());
                break;
            }
            if changed.elapsed() > Duration::from_secs(30) {
                return Err(format!("no alert for cm-{i} after 30 s"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let (p50, p99) = (
        percentile(&mut samples, 0.5),
        percentile(&mut samples, 0.99),
    );
    let max = samples.iter().max().copied().unwrap_or_default();
    println!(
        "detection latency (change -> alert listed by Alertmanager), n=100: p50 {p50:?}  p99 {p99:?}  max {max:?}"
    );
    Ok(())
}

fn ready_and_rss(env: &Env, total: usize, existing: &mut usize) -> Result<(), String> {
    let ns = "bench-scale";
    if *existing == 0 {
        env.kubectl("admin", &["create", "namespace", ns], None)?;
    }
    let created = Instant::now();
    // Names cm-0..cm-(total-1): apply only the ones not there yet.
    let items = total - *existing;
    if items > 0 {
        env.apply_owned_configmaps(ns, *existing..total)?;
    }
    *existing = total;
    eprintln!(
        "{total} owned ConfigMaps in place ({items} created in {:?})",
        created.elapsed()
    );
    if !env.script("guard.sh", "stop") {
        return Err("guard.sh stop failed".into());
    }
    let started = Instant::now();
    if !env.script("guard.sh", "start") {
        return Err("guard.sh start failed".into());
    }
    let admin = env.env_value("guard.env", "ADMIN_PORT");
    let metrics = format!("http://127.0.0.1:{admin}/metrics");
    while !curl(&metrics).contains("gitops_guard_drift_synced 1") {
        if started.elapsed() > Duration::from_secs(600) {
            return Err("drift watchers not synced after 10 minutes".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let ready = started.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    let pid = std::fs::read_to_string(env.run.join("pids/guard.pid")).unwrap_or_default();
    let rss = cluster::rss_kib(pid.trim());
    // CPU at idle: nothing changes in the cluster for 30 s.
    let (cpu, window) = (cluster::cpu_seconds(pid.trim()), Duration::from_secs(30));
    std::thread::sleep(window);
    let idle = (cluster::cpu_seconds(pid.trim()) - cpu) / window.as_secs_f64() * 100.0;
    println!(
        "{total:>6} owned ConfigMaps: drift watchers synced {ready:?} after start, RSS {:.1} MiB, \
         CPU at idle {idle:.2} % of a core (30 s)",
        rss as f64 / 1024.0
    );
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        // `cargo test --all-targets` runs benches without --bench: this one
        // needs the whole local control plane, so it only runs as a bench.
        return;
    }
    let objects: Vec<usize> = args
        .iter()
        .position(|a| a == "--objects")
        .and_then(|i| args.get(i + 1))
        .map_or_else(
            || vec![1000, 10_000, 50_000],
            |list| list.split(',').filter_map(|n| n.parse().ok()).collect(),
        );
    let result = cluster::up(
        "bench-drift",
        env!("CARGO_BIN_EXE_gitops-guard"),
        env!("CARGO_TARGET_TMPDIR"),
    )
    .and_then(|env| {
        let measured = latency(&env).and_then(|()| {
            let mut existing = 0;
            objects
                .iter()
                .try_for_each(|&n| ready_and_rss(&env, n, &mut existing))
        });
        env.down();
        measured
    });
    if let Err(e) = result {
        eprintln!("bench drift: {e}");
        std::process::exit(1);
    }
}
