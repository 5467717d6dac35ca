//! Rolling restarts under load: two guard instances behind a TCP load
//! balancer that follows their readiness, the project's load generator at a
//! steady rate over HTTP/2 (as the apiserver calls) and over HTTP/1.1
//! keep-alive connections, and each instance in turn stopped with SIGTERM
//! and started again. Not one review may fail.

use std::{
    process::{Child, Command},
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use super::balancer::{Backend, Balancer};
use super::cluster::{Cluster, Outcome, eventually};
use super::load_client as load;
use super::resilience::{extra_guard, guard_env_port};

/// Reviews per second over HTTP/2 and over HTTP/1.1.
const RATES: [(load::Protocol, u64); 2] =
    [(load::Protocol::Http2, 200), (load::Protocol::Http1, 100)];
const LOAD_FOR: Duration = Duration::from_secs(30);
/// Longer than the balancer's probe period, as a pod's delay must outlast
/// the time endpoints take to drop it.
const SHUTDOWN_DELAY: &str = "1s";
/// The clients drop idle connections sooner than the delay, as HTTP/1.1
/// clients must: a connection used during the delay is closed after its
/// answer (`Connection: close`), but one idle through the whole delay is
/// closed by the server when draining ends, and a review sent on it at that
/// instant would fail (HTTP/2 clients are told by GOAWAY instead).
const CLIENT_IDLE: Duration = Duration::from_millis(800);

struct Instance {
    name: String,
    backend: Backend,
    child: Child,
}

impl Instance {
    fn start(c: &Cluster, name: &str, backend: Backend) -> Result<Child, String> {
        let (port, admin) = (backend.webhook.port(), backend.admin.port());
        let flags = [
            "--shutdown-delay",
            SHUTDOWN_DELAY,
            "--shutdown-grace",
            "10s",
        ];
        extra_guard(c, name, port, admin, &flags)
    }

    /// SIGTERM, then how long until readiness dropped and until it exited.
    fn terminate(&mut self, balancer: &Balancer, index: usize) -> Result<String, String> {
        let sent = Instant::now();
        let kill = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .map_err(|e| e.to_string())?;
        if !kill.success() {
            return Err(format!("kill -TERM {} failed", self.name));
        }
        let mut unready = None;
        loop {
            if unready.is_none() && !balancer.ready()[index] {
                unready = Some(sent.elapsed());
            }
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                let exited = sent.elapsed();
                if !status.success() {
                    return Err(format!("{} exited with {status} after SIGTERM", self.name));
                }
                return Ok(format!(
                    "{}: out of the balancer after {:?}, exited after {exited:?}",
                    self.name,
                    unready.unwrap_or(exited)
                ));
            }
            if sent.elapsed() > Duration::from_secs(20) {
                return Err(format!("{} still running 20 s after SIGTERM", self.name));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn ready(balancer: &Balancer, index: usize) -> Outcome {
    if balancer.ready()[index] {
        Ok(())
    } else {
        Err(format!("instance {index} not ready"))
    }
}

pub fn restarting_each_of_two_instances_under_load_fails_no_review(c: &Cluster) -> Outcome {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let base = guard_env_port(c, "ADMIN_PORT")?;
    let addr = |port: u16| std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let backends = [
        Backend {
            webhook: addr(base + 121),
            admin: addr(base + 122),
        },
        Backend {
            webhook: addr(base + 123),
            admin: addr(base + 124),
        },
    ];
    let mut instances = Vec::new();
    for (i, backend) in backends.iter().enumerate() {
        let name = format!("rolling-{i}");
        let child = Instance::start(c, &name, *backend)?;
        instances.push(Instance {
            name,
            backend: *backend,
            child,
        });
    }
    let (balancer, lb) =
        Balancer::start(runtime.handle(), backends.to_vec()).map_err(|e| e.to_string())?;
    let result = (|| {
        eventually(Duration::from_secs(60), || {
            ready(&balancer, 0).and(ready(&balancer, 1))
        })?;
        let ca = std::fs::read_to_string(c.run.join("certs/ca.crt")).map_err(|e| e.to_string())?;
        let body = std::fs::read(
            c.root
                .join("tests/fixtures/edit-flux-deployment-by-human.json"),
        )
        .map_err(|e| e.to_string())?;
        let url = format!("https://127.0.0.1:{}/validate", lb.port());
        let started = Instant::now();
        let mut running = Vec::new();
        for (protocol, rate) in RATES {
            let client = load::client_with_idle(&ca, protocol, 4, CLIENT_IDLE)?;
            let plan = load::Load {
                concurrency: 4,
                rate: Some(rate),
                warmup: Duration::ZERO,
                duration: LOAD_FOR,
            };
            let run = load::run(client, url.clone(), body.clone(), plan);
            running.push((protocol, rate, runtime.spawn(run)));
        }
        let mut steps = Vec::new();
        for (index, instance) in instances.iter_mut().enumerate() {
            std::thread::sleep(Duration::from_secs(3));
            steps.push(format!(
                "{}: SIGTERM at {:.3} s",
                instance.name,
                started.elapsed().as_secs_f64()
            ));
            steps.push(instance.terminate(&balancer, index)?);
            let restarted = Instant::now();
            instance.child = Instance::start(c, &instance.name, instance.backend)?;
            eventually(Duration::from_secs(30), || ready(&balancer, index))?;
            steps.push(format!(
                "{}: back in the balancer {:?} after its restart",
                instance.name,
                restarted.elapsed()
            ));
        }
        if started.elapsed() + Duration::from_secs(2) > LOAD_FOR {
            return Err(format!(
                "the restarts took {:?}, longer than the load ({LOAD_FOR:?})",
                started.elapsed()
            ));
        }
        let mut failed = Vec::new();
        for (protocol, rate, run) in running {
            let outcome = runtime.block_on(run).map_err(|e| e.to_string())?;
            eprintln!(
                "rolling restart, {}: {} reviews at {rate}/s over {LOAD_FOR:?}, {} failed; \
                 p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                protocol.as_str(),
                outcome.histogram.len(),
                outcome.errors,
                outcome.ms(0.5),
                outcome.ms(0.99),
                outcome.ms(1.0),
            );
            for why in &outcome.first_errors {
                eprintln!("  failed: {why}");
            }
            let expected = rate * LOAD_FOR.as_secs() * 9 / 10;
            if outcome.errors > 0 || outcome.histogram.len() < expected {
                failed.push(format!(
                    "{}: {} reviews failed, {} succeeded (expected at least {expected})",
                    protocol.as_str(),
                    outcome.errors,
                    outcome.histogram.len()
                ));
            }
        }
        let counters = &balancer.counters;
        let broken = counters
            .broken
            .lock()
            .map(|b| b.clone())
            .unwrap_or_default();
        eprintln!(
            "  {} connections through the balancer ({} with no ready backend, {} refused by one, \
             {} broken {:?})\n  {}",
            counters.connections.load(Ordering::Relaxed),
            counters.no_backend.load(Ordering::Relaxed),
            counters.connect_failed.load(Ordering::Relaxed),
            broken.count,
            broken.first,
            steps.join("\n  ")
        );
        if !failed.is_empty() {
            return Err(failed.join("; "));
        }
        Ok(())
    })();
    balancer.stop();
    for instance in &mut instances {
        let _ = instance.child.kill();
        let _ = instance.child.wait();
    }
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}
