//! The workload: merge-patches of Flux-owned ConfigMaps through kube's
//! client (one client, keep-alive), at a fixed concurrency, timed per request.

use std::{sync::Arc, time::Instant};

use hdrhistogram::Histogram;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};

use super::cluster::Env;

pub const NAMESPACE: &str = "bench-admission";
const OBJECTS: usize = 50;

pub struct Outcome {
    pub histogram: Histogram<u64>,
    pub allowed: u64,
    pub denied: u64,
}

impl Outcome {
    pub fn ms(&self, q: f64) -> f64 {
        self.histogram.value_at_quantile(q) as f64 / 1000.0
    }
}

/// The namespace and 50 ConfigMaps owned by flux-system/apps.
pub fn prepare(env: &Env) -> Result<(), String> {
    let _ = env.kubectl("admin", &["create", "namespace", NAMESPACE], None);
    env.apply_owned_configmaps(NAMESPACE, 0..OBJECTS)
}

async fn client(env: &Env, who: &str) -> Result<Client, String> {
    let path = env.run.join(format!("cluster/{who}.kubeconfig"));
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).map_err(|e| e.to_string())?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(|e| e.to_string())?;
    Client::try_from(config).map_err(|e| e.to_string())
}

/// `requests` patches as `who`, `concurrency` at a time.
pub async fn run(
    env: &Env,
    who: &str,
    requests: usize,
    concurrency: usize,
) -> Result<Outcome, String> {
    let api: Api<ConfigMap> = Api::namespaced(client(env, who).await?, NAMESPACE);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (api, next) = (api.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut h =
                Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())?;
            let (mut allowed, mut denied) = (0u64, 0u64);
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= requests {
                    break;
                }
                let patch = serde_json::json!({"data": {"key": format!("v{i}")}});
                let started = Instant::now();
                let answer = api
                    .patch(
                        &format!("cm-{}", i % OBJECTS),
                        &PatchParams::default(),
                        &Patch::Merge(&patch),
                    )
                    .await;
                let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                let _ = h.record(micros.max(1));
                match answer {
                    Ok(_) => allowed += 1,
                    Err(kube::Error::Api(s)) if s.code == 403 || s.code == 400 || s.code == 422 => {
                        denied += 1
                    }
                    Err(e) => return Err(format!("patch: {e}")),
                }
            }
            Ok::<_, String>((h, allowed, denied))
        }));
    }
    let mut outcome = Outcome {
        histogram: Histogram::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())?,
        allowed: 0,
        denied: 0,
    };
    for task in tasks {
        let (h, allowed, denied) = task.await.map_err(|e| e.to_string())??;
        outcome.histogram.add(h).map_err(|e| e.to_string())?;
        outcome.allowed += allowed;
        outcome.denied += denied;
    }
    Ok(outcome)
}
