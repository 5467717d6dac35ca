//! One sender: leader election through a `coordination.k8s.io` Lease. Every
//! replica watches and keeps its drift state warm; only the holder of the
//! Lease sends alerts and Events. A holder renews every `RENEW`; a Lease not
//! renewed for `DURATION` is taken over, so failover takes at most
//! `DURATION + RENEW` (12 s).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
};
use kube::{Api, Client, api::PostParams};
use prometheus::{IntGauge, Registry};

const DURATION: Duration = Duration::from_secs(10);
const RENEW: Duration = Duration::from_secs(2);

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
    pub api: Api<Lease>,
    pub name: String,
    pub identity: String,
}

impl Election {
    pub fn new(client: Client, namespace: &str, name: &str, identity: String) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
            identity,
        }
    }

    /// One round: take, renew or observe the Lease. True when we hold it.
    async fn round(&self) -> Result<bool, kube::Error> {
        let now = jiff::Timestamp::now();
        let me = Some(self.identity.clone());
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec(now, 0)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let held_by_me = spec.holder_identity == me;
        let expired = spec.renew_time.as_ref().is_none_or(|renewed| {
            let duration = spec
                .lease_duration_seconds
                .map_or(DURATION.as_secs() as i64, i64::from);
            renewed.0.as_second() + duration < now.as_second()
        });
        if !held_by_me && !expired && spec.holder_identity.is_some() {
            return Ok(false);
        }
        let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!held_by_me);
        let mut next = self.spec(now, transitions);
        if held_by_me {
            next.acquire_time = spec.acquire_time;
        }
        lease.spec = Some(next);
        // The resourceVersion from the read makes this a compare-and-swap.
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn spec(&self, now: jiff::Timestamp, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(DURATION.as_secs() as i32),
            acquire_time: Some(MicroTime(now)),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// Runs for the life of the process, updating `leadership`; `on_change`
    /// is called when it flips (to send at once on takeover).
    pub async fn run(self, leadership: Leadership, gauge: IntGauge, on_change: impl Fn() + Send) {
        let mut last_renewed: Option<std::time::Instant> = None;
        loop {
            let leader = match self.round().await {
                Ok(true) => {
                    last_renewed = Some(std::time::Instant::now());
                    true
                }
                Ok(false) => false,
                Err(e) => {
                    tracing::warn!(error = %e, lease = %self.name, "leader election round failed");
                    // Keep leading only while our last renewal still holds.
                    last_renewed.is_some_and(|t| t.elapsed() < DURATION) && leadership.is_leader()
                }
            };
            if leadership.set(leader) {
                tracing::info!(identity = %self.identity, leader, "leadership changed");
                gauge.set(i64::from(leader));
                on_change();
            }
            tokio::time::sleep(RENEW).await;
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
