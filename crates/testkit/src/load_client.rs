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
    /// What the first few failures were, so a failed run says why.
    pub first_errors: Vec<String>,
    pub seconds: f64,
}

/// A count of failures with the first few of them, so a failed run says why.
#[derive(Debug, Default, Clone)]
pub struct Failures {
    pub count: u64,
    pub first: Vec<String>,
}

impl Failures {
    /// How many failures are described.
    const SAMPLES: usize = 3;

    /// Counts one failure; `why` is only formatted while samples are kept.
    pub fn add(&mut self, why: impl FnOnce() -> String) {
        self.count += 1;
        if self.first.len() < Self::SAMPLES {
            self.first.push(why());
        }
    }
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
    client_with_idle(ca_pem, protocol, pool, Duration::from_secs(90))
}

/// [`client`] dropping connections idle for `idle` (reqwest's default: 90 s).
pub fn client_with_idle(
    ca_pem: &str,
    protocol: Protocol,
    pool: usize,
    idle: Duration,
) -> Result<reqwest::Client, String> {
    let ca = reqwest::Certificate::from_pem_bundle(ca_pem.as_bytes()).map_err(|e| e.to_string())?;
    let builder = reqwest::Client::builder()
        .tls_certs_merge(ca)
        .pool_max_idle_per_host(pool)
        .pool_idle_timeout(idle)
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
    errors: Mutex<Failures>,
}

async fn post(client: &reqwest::Client, url: &str, body: &bytes::Bytes) -> Result<(), String> {
    let sent = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await;
    // `{:?}` keeps the source chain (e.g. hyper's "connection closed").
    let response = sent.map_err(|e| format!("{e:?}"))?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| format!("{e:?}"))?;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("{status}: {}", String::from_utf8_lossy(&body)))
    }
}

/// Runs `load` against `url`; only requests sent after the warm-up count.
pub async fn run(client: reqwest::Client, url: String, body: Vec<u8>, load: Load) -> Outcome {
    let shared = Arc::new(Shared {
        histogram: Mutex::new(histogram()),
        errors: Mutex::new(Failures::default()),
    });
    let body = bytes::Bytes::from(body);
    let start = Instant::now();
    let measure_from = start + load.warmup;
    let end = measure_from + load.duration;
    let record = {
        let shared = shared.clone();
        move |scheduled: Instant, sent: Result<(), String>| {
            if scheduled < measure_from {
                return;
            }
            match sent {
                Ok(()) => {
                    let micros = u64::try_from(scheduled.elapsed().as_micros()).unwrap_or(u64::MAX);
                    let mut h = shared.histogram.lock().unwrap_or_else(|e| e.into_inner());
                    let _ = h.record(micros.max(1));
                }
                Err(why) => {
                    let at = scheduled.saturating_duration_since(start).as_secs_f64();
                    let mut errors = shared.errors.lock().unwrap_or_else(|e| e.into_inner());
                    errors.add(|| format!("sent at {at:.3} s: {why}"));
                }
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
                        let sent = post(&client, &url, &body).await;
                        record(t, sent);
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
                        let sent = post(&client, &url, &body).await;
                        record(scheduled, sent);
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
    let Failures {
        count: errors,
        first: first_errors,
    } = std::mem::take(&mut *shared.errors.lock().unwrap_or_else(|e| e.into_inner()));
    Outcome {
        histogram,
        errors,
        first_errors,
        seconds: load.duration.as_secs_f64(),
    }
}
