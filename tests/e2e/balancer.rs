//! A TCP load balancer for the rolling-restart test, standing in for a
//! Service: it sends each new connection to the next backend whose
//! `/readyz` answered 200 at the last probe (every 250 ms, as endpoints
//! follow readiness), and pipes bytes both ways. TLS passes through.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::net::{TcpListener, TcpStream};

use super::load_client::Failures;

#[derive(Clone, Copy, Debug)]
pub struct Backend {
    pub webhook: SocketAddr,
    pub admin: SocketAddr,
}

#[derive(Default)]
pub struct Counters {
    /// Connections accepted while no backend was ready (dropped).
    pub no_backend: AtomicU64,
    /// Connections whose backend refused the TCP connect.
    pub connect_failed: AtomicU64,
    pub connections: AtomicU64,
    /// Connections whose piping ended in an error (e.g. a reset), with the
    /// first few errors.
    pub broken: Mutex<Failures>,
}

pub struct Balancer {
    backends: Vec<Backend>,
    ready: Mutex<Vec<bool>>,
    next: AtomicUsize,
    pub counters: Counters,
    stop: AtomicBool,
}

impl Balancer {
    /// Binds on loopback and serves on `runtime` until [`Balancer::stop`].
    pub fn start(
        runtime: &tokio::runtime::Handle,
        backends: Vec<Backend>,
    ) -> std::io::Result<(Arc<Self>, SocketAddr)> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let balancer = Arc::new(Self {
            ready: Mutex::new(vec![false; backends.len()]),
            backends,
            next: AtomicUsize::new(0),
            counters: Counters::default(),
            stop: AtomicBool::new(false),
        });
        let accept = balancer.clone();
        runtime.spawn(async move {
            if let Ok(listener) = TcpListener::from_std(listener) {
                accept.accept(listener).await;
            }
        });
        runtime.spawn(balancer.clone().probe());
        Ok((balancer, addr))
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    pub fn ready(&self) -> Vec<bool> {
        self.ready.lock().map(|r| r.clone()).unwrap_or_default()
    }

    async fn probe(self: Arc<Self>) {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(500))
            .build()
            .unwrap_or_default();
        while !self.stop.load(Ordering::Relaxed) {
            for (i, backend) in self.backends.iter().enumerate() {
                let url = format!("http://{}/readyz", backend.admin);
                let up = matches!(client.get(url).send().await, Ok(r) if r.status().is_success());
                if let Ok(mut ready) = self.ready.lock() {
                    ready[i] = up;
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    fn pick(&self) -> Option<Backend> {
        let ready = self.ready();
        let n = self.backends.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| ready[i])
            .map(|i| self.backends[i])
    }

    async fn accept(self: Arc<Self>, listener: TcpListener) {
        while !self.stop.load(Ordering::Relaxed) {
            let Ok((client, _)) = listener.accept().await else {
                continue;
            };
            self.counters.connections.fetch_add(1, Ordering::Relaxed);
            let Some(backend) = self.pick() else {
                self.counters.no_backend.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let this = self.clone();
            tokio::spawn(async move {
                match TcpStream::connect(backend.webhook).await {
                    Ok(mut server) => {
                        let _ = server.set_nodelay(true);
                        let _ = client.set_nodelay(true);
                        let mut client = client;
                        let piped = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        if let Err(e) = piped
                            && let Ok(mut broken) = this.counters.broken.lock()
                        {
                            broken.add(|| format!("{}: {e}", backend.webhook));
                        }
                    }
                    Err(_) => {
                        this.counters.connect_failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    }
}
