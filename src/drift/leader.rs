//! One sender: leader election through a `coordination.k8s.io` Lease. Every
//! replica watches and keeps its drift state warm; only the holder of the
//! Lease sends alerts and Events.
//!
//! The Lease is kept by `kube-lease-manager` (server-side apply, so two
//! replicas cannot both take it): a holder renews `GRACE` before the
//! `DURATION` runs out; a Lease not renewed for `DURATION` is taken over;
//! a replica that stops releases it at once. Replicas do not fence: during
//! an API partition two may send for a while, which Alertmanager absorbs
//! (alerts are deduplicated by their labels).

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseParams};
use prometheus::{IntGauge, Registry};

/// Seconds a Lease holds without renewal.
const DURATION: u64 = 10;
/// Seconds before expiry the holder renews.
const GRACE: u64 = 3;

/// Whether this replica is the leader now; cheap to read anywhere.
#[derive(Clone, Default)]
pub struct Leadership(Arc<AtomicBool>);

impl Leadership {
    /// Always the leader: a single replica without a Lease (tests, `check`).
    pub fn always() -> Self {
        Self(Arc::new(AtomicBool::new(true)))
    }

    pub fn is_leader(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn set(&self, leader: bool) -> bool {
        self.0.swap(leader, Ordering::AcqRel) != leader
    }
}

pub struct Election {
    client: Client,
    namespace: String,
    name: String,
    identity: String,
}

impl Election {
    pub fn new(client: Client, namespace: &str, name: &str, identity: String) -> Self {
        Self {
            client,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            identity,
        }
    }

    /// Runs for the life of the process, updating `leadership`; `on_change`
    /// is called when it flips (to send at once on takeover). Returns only
    /// if the Lease manager gives up, which the supervisor reports.
    pub async fn run(self, leadership: Leadership, gauge: IntGauge, on_change: impl Fn() + Send) {
        let params = LeaseParams::new(self.identity.clone(), DURATION, GRACE);
        let built = LeaseManagerBuilder::new(self.client, &self.name)
            .with_namespace(&self.namespace)
            .with_parameters(params)
            .build()
            .await;
        let manager = match built {
            Ok(manager) => manager,
            Err(e) => {
                tracing::error!(error = %e, lease = %self.name, "cannot start leader election");
                return;
            }
        };
        // Dropping `held` (at shutdown) makes the manager release the Lease.
        let (mut held, _manager) = manager.watch().await;
        loop {
            let leader = *held.borrow_and_update();
            if leadership.set(leader) {
                tracing::info!(identity = %self.identity, leader, "leadership changed");
                gauge.set(i64::from(leader));
                on_change();
            }
            if held.changed().await.is_err() {
                tracing::error!(lease = %self.name, "the Lease manager stopped");
                leadership.set(false);
                gauge.set(0);
                return;
            }
        }
    }
}

pub fn gauge(registry: &Registry) -> Result<IntGauge, prometheus::Error> {
    let gauge = IntGauge::new(
        "gitops_guard_leader",
        "1 when this replica holds the drift Lease and sends alerts and Events.",
    )?;
    registry.register(Box::new(gauge.clone()))?;
    Ok(gauge)
}
