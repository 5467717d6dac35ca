//! What the parts of `serve` share, made once in `app::serve`: the policy,
//! the Kubernetes client, the cluster view (fed by the reflectors it
//! starts), the validating shell's end of the admission channel, the
//! metrics registry and the supervised task set. Each part is handed the
//! runtime, or the pieces of it a test can make without a cluster.

use std::sync::{Arc, atomic::Ordering};

use prometheus::Registry;

use crate::{
    admin::Readiness,
    cluster::{reflect, shared::SharedView},
    drift::{self, FromAdmission, ToDrift},
    metrics::{AdmissionMetrics, ViewSizeCollector},
    policy::Policy,
    server::Guard,
    tasks::Tasks,
};

pub struct Runtime {
    pub policy: Arc<Policy>,
    pub client: kube::Client,
    pub view: SharedView,
    /// What the validating shell tells the drift side.
    pub to_drift: ToDrift,
    pub registry: Registry,
    pub tasks: Tasks,
}

impl Runtime {
    /// Starts the reflectors that feed the view (readiness turns on once
    /// they have all listed) and opens the admission channel, whose drift
    /// end is returned for [`drift::start`].
    pub async fn start(
        policy: Arc<Policy>,
        client: kube::Client,
        registry: Registry,
        tasks: Tasks,
        readiness: &Arc<Readiness>,
    ) -> anyhow::Result<(Self, FromAdmission)> {
        let (view, feed) = SharedView::empty();
        ViewSizeCollector::register(&registry, view.clone())?;
        let ready = readiness.clone();
        let on_synced = Arc::new(move || ready.view_synced.store(true, Ordering::Release));
        reflect::spawn(client.clone(), policy.clone(), feed, on_synced, &tasks).await;
        let (to_drift, from_admission) = drift::announce::channel()?;
        let runtime = Self {
            policy,
            client,
            view,
            to_drift,
            registry,
            tasks,
        };
        Ok((runtime, from_admission))
    }

    /// The validating shell's state.
    pub fn guard(&self, metrics: AdmissionMetrics) -> Guard {
        Guard {
            to_drift: self.to_drift.clone(),
            ..Guard::new(self.policy.clone(), self.view.clone(), metrics)
        }
    }
}
