//! The load generator: AdmissionReviews over TLS with keep-alive, HTTP/1.1
//! and HTTP/2, against gitops-guard's `/validate` and `/mutate` (digest cache
//! warm) and, in the same run, against a null webhook on the same axum +
//! rustls stack that answers a constant allow without decoding: the limit
//! of this machine. Prints throughput, p50/p90/p99/p99.9/max and errors,
//! draws `bench/load.svg` and rewrites the load section of bench/RESULTS.md.
//!
//!     cargo bench --bench load [-- --seconds 5 --concurrency 32 --rate 20000]

use gitops_guard_testkit::{
    args, load_client as client, registry, results as results_file, reviews, tls_server,
};

mod plot;
mod results;

use std::{path::PathBuf, time::Duration};

use client::{Load, Outcome, Protocol};
use gitops_guard::{
    cluster::state_file::load as load_state,
    cluster::view::{ClusterView, NamespaceFacts},
    pin::settings::RegistrySettings,
    policy::Policy,
};

/// One measured configuration.
pub struct Run {
    pub target: &'static str,
    pub path: &'static str,
    pub protocol: Protocol,
    pub mode: String,
    pub outcome: Outcome,
}

fn view_with_pinning() -> Result<ClusterView, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut view = ClusterView::synced();
    load_state(
        &mut view,
        &Policy::default(),
        &root.join("tests/fixtures/cluster-state.yaml"),
    )
    .map_err(|e| e.to_string())?;
    let labels = [("gitops-guard.io/pin-images".to_owned(), "pin".to_owned())].into();
    view.upsert_namespace(
        "prod".into(),
        NamespaceFacts {
            labels,
            terminating: false,
        },
    );
    Ok(view)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        return; // `cargo test --all-targets` runs benches without --bench.
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let seconds: u64 = args::value_or_exit(&args, "--seconds", 5);
    let concurrency: usize = args::value_or_exit(&args, "--concurrency", 32);
    let rate: u64 = args::value_or_exit(&args, "--rate", 20_000);
    // One worker thread for the servers, one for the client: on two cores
    // each gets about one, and the ratio to the null webhook is the ratio of
    // per-review CPU rather than of who won the scheduler.
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime")
    };
    let (servers, clients) = (runtime(), runtime());
    if let Err(e) = measure(&servers, &clients, seconds, concurrency, rate) {
        eprintln!("bench load: {e}");
        std::process::exit(1);
    }
}

fn measure(
    servers_rt: &tokio::runtime::Runtime,
    clients: &tokio::runtime::Runtime,
    seconds: u64,
    concurrency: usize,
    rate: u64,
) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let ca = tls_server::certificate(dir.path())?.ca_pem;
    // The registry the mutate path pins against (Debian's docker-registry).
    let registry = registry::Registry::start(None)?;
    registry.push("shop/web", "1.27.3", "load")?;
    let image = format!("{}/shop/web:1.27.3", registry.addr());
    let mut policy = Policy::default();
    let plain = RegistrySettings {
        plain_http: true,
        ca_file: None,
    };
    policy
        .images
        .registries
        .insert(registry.addr().to_owned(), plain);
    let null = servers_rt.block_on(servers::null(dir.path()))?;
    let view = view_with_pinning()?;
    let guard = servers_rt.block_on(servers::guard(dir.path(), policy, view))?;
    clients.block_on(load(&ca, null, guard, &image, seconds, concurrency, rate))
}

async fn load(
    ca: &str,
    null: std::net::SocketAddr,
    guard: std::net::SocketAddr,
    image: &str,
    seconds: u64,
    concurrency: usize,
    rate: u64,
) -> Result<(), String> {
    let deployment = reviews::deployment(21, image);
    let validate = reviews::review(
        &deployment,
        "Deployment",
        "deployments",
        true,
        &reviews::kustomize_controller(),
    );
    let mutate = reviews::review(
        &deployment,
        "Deployment",
        "deployments",
        false,
        &reviews::kustomize_controller(),
    );
    println!(
        "bodies: /validate {} bytes (UPDATE by kustomize-controller), /mutate {} bytes (CREATE, 2 containers)",
        validate.len(),
        mutate.len()
    );
    // Warm the digest cache: one resolution, then every review is a hit.
    let warm = client::client(ca, Protocol::Http1, 1)?;
    let url = format!("https://127.0.0.1:{}/mutate", guard.port());
    let answer = warm
        .post(&url)
        .header("content-type", "application/json")
        .body(mutate.clone())
        .send()
        .await;
    let text = match answer {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(e) => return Err(format!("warming /mutate: {e}")),
    };
    if !text.contains("\"patch\"") {
        return Err(format!("/mutate did not pin on warm-up: {text}"));
    }

    let closed = Load {
        concurrency,
        rate: None,
        warmup: Duration::from_secs(1),
        duration: Duration::from_secs(seconds),
    };
    let open = Load {
        rate: Some(rate),
        ..closed
    };
    let mut runs = Vec::new();
    let plan: [(&'static str, std::net::SocketAddr, &'static str, &Vec<u8>); 4] = [
        ("null", null, "/validate", &validate),
        ("gitops-guard", guard, "/validate", &validate),
        ("null", null, "/mutate", &mutate),
        ("gitops-guard", guard, "/mutate", &mutate),
    ];
    for protocol in [Protocol::Http1, Protocol::Http2] {
        for (target, addr, path, body) in &plan {
            for (mode, load) in [
                (format!("{concurrency} concurrent"), closed),
                (format!("{rate}/s"), open),
            ] {
                let client = client::client(ca, protocol, concurrency)?;
                let url = format!("https://{addr}{path}");
                let outcome = client::run(client, url, (*body).clone(), load).await;
                let run = Run {
                    target,
                    path,
                    protocol,
                    mode,
                    outcome,
                };
                println!("{}", results::row(&run));
                for why in &run.outcome.first_errors {
                    eprintln!("  an error: {why}");
                }
                runs.push(run);
            }
        }
    }
    results::write(&runs, concurrency, rate, seconds)
}

mod servers;
