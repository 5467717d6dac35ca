//! The load: keep-alive HTTPS POSTs of one review body, HTTP/1.1 (one
//! connection per worker) or HTTP/2 (multiplexed), at a fixed concurrency
//! (closed loop) or a fixed rate (open loop, latency measured from the
//! scheduled send time so a stall is not hidden), into an HDR histogram.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    Http2,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http1 => "HTTP/1.1",
            Protocol::Http2 => "HTTP/2",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub concurrency: usize,
    /// Requests per second (open loop); `None` is closed loop.
    pub rate: Option<u64>,
    pub warmup: Duration,
    pub duration: Duration,
}

pub struct Outcome {
    /// Latency in microseconds.
    pub histogram: Histogram<u64>,
    pub errors: u64,
    pub seconds: f64,
}

impl Outcome {
    pub fn throughput(&self) -> f64 {
        self.histogram.len() as f64 / self.seconds
    }

    /// The latency at `q` (0..=1), in milliseconds.
    pub fn ms(&self, q: f64) -> f64 {
        self.histogram.value_at_quantile(q) as f64 / 1000.0
    }
}

pub fn client(ca_pem: &str, protocol: Protocol, pool: usize) -> Result<reqwest::Client, String> {
    let ca = reqwest::Certificate::from_pem_bundle(ca_pem.as_bytes()).map_err(|e| e.to_string())?;
    let builder = reqwest::Client::builder()
        .tls_certs_merge(ca)
        .pool_max_idle_per_host(pool)
        .timeout(Duration::from_secs(10));
    let builder = match protocol {
        Protocol::Http1 => builder.http1_only(),
        Protocol::Http2 => builder.http2_prior_knowledge(),
    };
    builder.build().map_err(|e| e.to_string())
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3)
        .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()))
}

struct Shared {
    histogram: Mutex<Histogram<u64>>,
    errors: Mutex<u64>,
}

async fn post(client: &reqwest::Client, url: &str, body: &bytes::Bytes) -> bool {
    let sent = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
        _ => false,
    }
}

/// Runs `load` against `url`; only requests sent after the warm-up count.
pub async fn run(client: reqwest::Client, url: String, body: Vec<u8>, load: Load) -> Outcome {
    let shared = Arc::new(Shared {
        histogram: Mutex::new(histogram()),
        errors: Mutex::new(0),
    });
    let body = bytes::Bytes::from(body);
    let start = Instant::now();
    let measure_from = start + load.warmup;
    let end = measure_from + load.duration;
    let record = {
        let shared = shared.clone();
        move |scheduled: Instant, ok: bool| {
            if scheduled < measure_from {
                return;
            }
            if ok {
                let micros = u64::try_from(scheduled.elapsed().as_micros()).unwrap_or(u64::MAX);
                let mut h = shared.histogram.lock().unwrap_or_else(|e| e.into_inner());
                let _ = h.record(micros.max(1));
            } else {
                *shared.errors.lock().unwrap_or_else(|e| e.into_inner()) += 1;
            }
        }
    };
    let mut tasks = Vec::new();
    match load.rate {
        None => {
            for _ in 0..load.concurrency {
                let (client, url, body, record) =
                    (client.clone(), url.clone(), body.clone(), record.clone());
                tasks.push(tokio::spawn(async move {
                    while Instant::now() < end {
                        let t = Instant::now();
                        let ok = post(&client, &url, &body).await;
                        record(t, ok);
                    }
                }));
            }
        }
        // Constant throughput on `concurrency` connections (wrk2's model):
        // worker k sends at start + k·gap + n·concurrency·gap and, when the
        // server falls behind, its latency counts from the scheduled time.
        Some(rate) => {
            let gap = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
            let workers = load.concurrency.max(1);
            for k in 0..workers {
                let (client, url, body, record) =
                    (client.clone(), url.clone(), body.clone(), record.clone());
                let step = gap * u32::try_from(workers).unwrap_or(u32::MAX);
                let mut scheduled = start + gap * u32::try_from(k).unwrap_or(0);
                tasks.push(tokio::spawn(async move {
                    while scheduled < end {
                        tokio::time::sleep_until(scheduled.into()).await;
                        let ok = post(&client, &url, &body).await;
                        record(scheduled, ok);
                        scheduled += step;
                    }
                }));
            }
        }
    }
    for task in tasks {
        let _ = task.await;
    }
    let histogram = shared
        .histogram
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let errors = *shared.errors.lock().unwrap_or_else(|e| e.into_inner());
    Outcome {
        histogram,
        errors,
        seconds: load.duration.as_secs_f64(),
    }
}
