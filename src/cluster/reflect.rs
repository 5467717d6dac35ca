//! Reflectors: kube watchers that keep the `ClusterView` current. A relist is
//! buffered and swapped in under one write lock, so a decision never sees a
//! half-filled category.

use std::{
    fmt::Debug,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use super::{
    breakglass::BreakGlass,
    ingest::{self, HELM_RELEASE_GROUP, KUSTOMIZATION_GROUP},
    shared::ViewFeed,
    view::{Category, ClusterView},
};
use crate::{guard::ownership::OwnerKind, policy::Policy};
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, GroupVersionKind, PartialObjectMeta},
    runtime::{WatchStreamExt, watcher},
};

/// Counts watchers still doing their first list; the view is synced at zero.
#[derive(Clone)]
pub(super) struct SyncGate {
    pending: Arc<AtomicUsize>,
    /// Writes the view and wakes reviews waiting on a change (a parent).
    feed: ViewFeed,
    on_synced: Arc<dyn Fn() + Send + Sync>,
}

impl SyncGate {
    fn done(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.feed.mark_loaded();
            (self.on_synced)();
            tracing::info!("cluster view synced");
        }
    }
}

/// Applies one watched object to the view.
pub(super) type Apply<K> = Box<dyn Fn(&mut ClusterView, &K) + Send>;

/// How one watcher's objects enter and leave the view.
pub(super) struct Sink<K> {
    pub(super) name: String,
    pub(super) category: Category,
    pub(super) upsert: Apply<K>,
    pub(super) remove: Apply<K>,
}

pub(super) async fn run<K, S>(stream: S, sink: Sink<K>, gate: SyncGate)
where
    K: Debug + Send,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
{
    let mut stream = std::pin::pin!(stream);
    let (mut relist, mut synced) = (Vec::new(), false);
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::Apply(obj)) => {
                (sink.upsert)(&mut gate.feed.write(), &obj);
                gate.feed.changed();
            }
            Ok(watcher::Event::Delete(obj)) => (sink.remove)(&mut gate.feed.write(), &obj),
            Ok(watcher::Event::Init) => relist.clear(),
            Ok(watcher::Event::InitApply(obj)) => relist.push(obj),
            Ok(watcher::Event::InitDone) => {
                let mut v = gate.feed.write();
                v.clear(sink.category.clone());
                relist.drain(..).for_each(|obj| (sink.upsert)(&mut v, &obj));
                drop(v);
                gate.feed.changed();
                if !std::mem::replace(&mut synced, true) {
                    tracing::debug!(watcher = %sink.name, "initial list done");
                    gate.done();
                }
            }
            // A list the guard may not make (RBAC left out, namespace absent)
            // would hold the view unsynced forever: it counts as empty, loudly.
            Err(watcher::Error::InitialListFailed(kube::Error::Api(status)))
                if !synced && matches!(status.code, 403 | 404) =>
            {
                tracing::error!(watcher = %sink.name, error = %status.message,
                    "cannot list; treating as empty until it can (check the guard's RBAC)");
                synced = true;
                gate.done();
            }
            Err(e) => tracing::warn!(watcher = %sink.name, error = %e, "watch failed; retrying"),
        }
    }
}

/// Starts every reflector, feeding the view through `feed`; once all have
/// listed the view is marked loaded and `on_synced` runs (readiness).
pub async fn spawn(
    client: Client,
    policy: Arc<Policy>,
    feed: ViewFeed,
    on_synced: Arc<dyn Fn() + Send + Sync>,
    supervised: &crate::tasks::Tasks,
) {
    let mut tasks: Tasks = Vec::new();
    let gate = SyncGate {
        pending: Arc::new(AtomicUsize::new(0)),
        feed,
        on_synced,
    };
    let cfg = watcher::Config::default;

    let ns_sink = Sink::<PartialObjectMeta<Namespace>> {
        name: "namespaces".into(),
        category: Category::Namespaces,
        upsert: Box::new(|v, o| {
            v.upsert_namespace(
                o.metadata.name.clone().unwrap_or_default(),
                ingest::namespace_facts(&o.metadata),
            )
        }),
        remove: Box::new(|v, o| v.remove_namespace(o.metadata.name.as_deref().unwrap_or_default())),
    };
    let stream = watcher::watcher(
        Api::<PartialObjectMeta<Namespace>>::all(client.clone()),
        cfg(),
    )
    .default_backoff();
    tasks.push(Box::pin(run(stream, ns_sink, gate.clone())));

    for parent in policy.parent_kinds() {
        let gvk = GroupVersionKind::gvk(&parent.group, &parent.version, &parent.kind);
        let ar = ApiResource::from_gvk_with_plural(&gvk, &parent.resource);
        let api = Api::<PartialObjectMeta<DynamicObject>>::all_with(client.clone(), &ar);
        let p = policy.clone();
        let kind = Arc::new(parent.clone());
        let (added, removed) = (kind.clone(), kind);
        let name_of = |o: &PartialObjectMeta<DynamicObject>| {
            let m = &o.metadata;
            (
                m.namespace.clone().unwrap_or_default(),
                m.name.clone().unwrap_or_default(),
            )
        };
        let sink = Sink::<PartialObjectMeta<DynamicObject>> {
            name: parent.resource.clone(),
            category: Category::Parents(parent.resource.clone()),
            upsert: Box::new(move |v, o| {
                let (ns, name) = name_of(o);
                v.upsert_parent(&added, ns, name, ingest::parent_meta(&p, &o.metadata))
            }),
            remove: Box::new(move |v, o| {
                let (ns, name) = name_of(o);
                v.remove_parent(&removed, &ns, &name)
            }),
        };
        let stream = watcher::watcher(api, cfg()).default_backoff();
        tasks.push(Box::pin(run(stream, sink, gate.clone())));
    }

    if installed(
        &client,
        &GroupVersionKind::gvk("gitops-guard.io", "v1alpha1", "BreakGlass"),
    )
    .await
    {
        let sink = Sink::<BreakGlass> {
            name: "breakglasses".into(),
            category: Category::Grants,
            upsert: Box::new(|v, o| {
                v.upsert_grant(
                    o.metadata.namespace.clone().unwrap_or_default(),
                    ingest::grant(&o.metadata, o.spec.clone()),
                )
            }),
            remove: Box::new(|v, o| {
                v.remove_grant(
                    o.metadata.namespace.as_deref().unwrap_or_default(),
                    o.metadata.name.as_deref().unwrap_or_default(),
                )
            }),
        };
        let stream =
            watcher::watcher(Api::<BreakGlass>::all(client.clone()), cfg()).default_backoff();
        tasks.push(Box::pin(run(stream, sink, gate.clone())));
    } else {
        tracing::warn!("BreakGlass CRD not installed: no break-glass grants will be honoured");
    }

    let flux = [
        (
            OwnerKind::Kustomization,
            GroupVersionKind::gvk(KUSTOMIZATION_GROUP, "v1", "Kustomization"),
        ),
        (
            OwnerKind::HelmRelease,
            GroupVersionKind::gvk(HELM_RELEASE_GROUP, "v2", "HelmRelease"),
        ),
    ];
    for (owner_kind, gvk) in flux {
        if !installed(&client, &gvk).await {
            tracing::info!(kind = %gvk.kind, "Flux CRD not installed: using the policy's default reconcilers");
            continue;
        }
        let api = Api::<DynamicObject>::all_with(client.clone(), &ApiResource::from_gvk(&gvk));
        let key = |o: &DynamicObject| {
            (
                o.metadata.namespace.clone().unwrap_or_default(),
                o.metadata.name.clone().unwrap_or_default(),
            )
        };
        let sink = Sink::<DynamicObject> {
            name: gvk.kind.clone(),
            category: Category::Flux(owner_kind),
            upsert: Box::new(move |v, o| {
                let (ns, name) = key(o);
                let spec = o.data.get("spec").cloned().unwrap_or_default();
                v.upsert_flux(owner_kind, ns, name, ingest::flux_object(owner_kind, &spec));
            }),
            remove: Box::new(move |v, o| {
                let (ns, name) = key(o);
                v.remove_flux(owner_kind, &ns, &name);
            }),
        };
        let stream = watcher::watcher(api, cfg()).default_backoff();
        tasks.push(Box::pin(run(stream, sink, gate.clone())));
    }

    super::reflect_identities::spawn(&client, &policy, &gate, &mut tasks);

    gate.pending.store(tasks.len(), Ordering::Release);
    for task in tasks {
        supervised.spawn("reflector", task);
    }
}

pub(super) type Tasks = Vec<futures::future::BoxFuture<'static, ()>>;

/// Whether the API serves `gvk`. Only a definite answer counts: a 404 or a
/// group without the kind is "not installed"; other errors (API briefly
/// unreachable) are retried for about 45 s, so a blip at startup does not
/// switch break-glass or tenant service accounts off for the process's life.
async fn installed(client: &Client, gvk: &GroupVersionKind) -> bool {
    use backon::{ExponentialBuilder, Retryable};
    use kube::{Error, error::DiscoveryError};
    let ask = || async {
        match kube::discovery::pinned_kind(client, gvk).await {
            Ok(_) => Ok(true),
            Err(Error::Api(status)) if status.code == 404 => Ok(false),
            Err(Error::Discovery(DiscoveryError::MissingKind(_))) => Ok(false),
            Err(e) => Err(e),
        }
    };
    // 250 ms doubling to 15 s, eight retries: about 45 s in all.
    let retries = ExponentialBuilder::default()
        .with_min_delay(std::time::Duration::from_millis(250))
        .with_max_delay(std::time::Duration::from_secs(15))
        .with_max_times(8);
    let answer = ask
        .retry(retries)
        .notify(|e, _| tracing::warn!(kind = %gvk.kind, error = %e, "discovery failed; retrying"))
        .await;
    answer.unwrap_or_else(|_| {
        tracing::error!(kind = %gvk.kind, "discovery kept failing; not watching this kind");
        false
    })
}
