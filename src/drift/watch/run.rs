//! The watch loops: one per kind and ownership label, restarted (a full
//! relist) at least every five minutes.

use super::*;
use crate::object_ref::ObjectRef;

/// A fresh watch (a full relist and re-evaluation) at least this often:
/// the level-triggered safety net.
const REEVALUATE: std::time::Duration = std::time::Duration::from_secs(300);

/// Which objects one watcher looks at.
#[derive(Debug, Clone, Copy)]
enum Selection {
    /// Selected server-side by a Flux ownership label.
    Label(&'static str),
    /// Argo CD tracks by annotation, which selectors cannot see: every
    /// object of the kind is watched (metadata only) and filtered here.
    ArgoCd,
}

/// Starts a watcher per kind and ownership label (and for Argo CD).
pub fn spawn(client: Client, watch: Arc<DriftWatch>, tasks: &crate::tasks::Tasks) {
    let kinds = watch.policy.drift.kinds.clone();
    let mut selections = vec![
        Selection::Label(KUSTOMIZE_NAME),
        Selection::Label(HELM_NAME),
    ];
    if watch.policy.drift.watch_argo_cd {
        selections.push(Selection::ArgoCd);
    }
    watch.pending.store(
        kinds.len() * selections.len(),
        std::sync::atomic::Ordering::Release,
    );
    for kind in kinds {
        for &selection in &selections {
            let gvk = GroupVersionKind::gvk(&kind.group, &kind.version, &kind.kind);
            let ar = ApiResource::from_gvk_with_plural(&gvk, &kind.plural);
            let api = Api::<PartialObjectMeta<DynamicObject>>::all_with(client.clone(), &ar);
            let getter = Getter {
                client: client.clone(),
                resource: ar,
            };
            tasks.spawn(
                "drift-watch",
                run(api, getter, selection, kind.clone(), watch.clone()),
            );
        }
    }
}

/// Reads one object's current metadata (to tell "left the selection" from
/// "deleted").
struct Getter {
    client: Client,
    resource: ApiResource,
}

impl Getter {
    async fn metadata(&self, ns: &str, name: &str) -> Option<PartialObjectMeta<DynamicObject>> {
        let api: Api<DynamicObject> = if ns.is_empty() {
            Api::all_with(self.client.clone(), &self.resource)
        } else {
            Api::namespaced_with(self.client.clone(), ns, &self.resource)
        };
        api.get_metadata_opt(name).await.ok().flatten()
    }

    /// The object as it is now if it still exists (same uid) but no longer
    /// carries any ownership marker.
    async fn stripped(
        &self,
        policy: &Policy,
        prior: &PartialObjectMeta<DynamicObject>,
    ) -> Option<PartialObjectMeta<DynamicObject>> {
        let ns = prior.metadata.namespace.as_deref().unwrap_or("");
        let name = prior.metadata.name.as_deref()?;
        let now = self.metadata(ns, name).await?;
        let same = now.metadata.uid == prior.metadata.uid;
        (same && record(policy, &now.metadata).is_none()).then_some(now)
    }
}

async fn run(
    api: Api<PartialObjectMeta<DynamicObject>>,
    getter: Getter,
    selection: Selection,
    kind: WatchedKind,
    watch: Arc<DriftWatch>,
) {
    let config = match selection {
        Selection::Label(label) => watcher::Config::default().labels(label),
        Selection::ArgoCd => watcher::Config::default(),
    };
    let mut mine = HashMap::new();
    let mut first = true;
    loop {
        let stream = watcher::watcher(api.clone(), config.clone()).default_backoff();
        let stream = stream.filter(move |event| {
            let keep = match (selection, event) {
                (
                    Selection::ArgoCd,
                    Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)),
                ) => argo_only(&o.metadata),
                _ => true,
            };
            std::future::ready(keep)
        });
        let pass = consume(stream, &kind, &watch, &getter, &mut mine, &mut first);
        let _ = tokio::time::timeout(REEVALUATE, pass).await;
    }
}

/// Tracked by Argo CD's annotation and not by Flux (the label watchers have
/// those). An object that loses the annotation is dropped from this watcher;
/// if it was drifted, the next relist resolves it.
fn argo_only(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> bool {
    let annotated = meta
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(ARGO_TRACKING_ID));
    let flux = meta
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key(KUSTOMIZE_NAME) || l.contains_key(HELM_NAME));
    annotated && !flux
}

fn object_key(kind: &WatchedKind, obj: &PartialObjectMeta<DynamicObject>) -> ObjectRef {
    let ns = obj.metadata.namespace.as_deref().unwrap_or("");
    key(kind, ns, obj.metadata.name.as_deref().unwrap_or(""))
}

async fn consume<S>(
    stream: S,
    kind: &WatchedKind,
    watch: &DriftWatch,
    getter: &Getter,
    mine: &mut HashMap<ObjectRef, Option<PartialObjectMeta<DynamicObject>>>,
    first: &mut bool,
) where
    S: futures::Stream<
            Item = Result<watcher::Event<PartialObjectMeta<DynamicObject>>, watcher::Error>,
        >,
{
    let mut stream = std::pin::pin!(stream);
    // What the current relist finds drifted. `mine`: what this watcher
    // reported, with the last owned state of those that lost their markers.
    let mut relisted = HashSet::new();
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::Apply(obj)) => {
                let key = object_key(kind, &obj);
                if watch.evaluate(kind, &obj) {
                    mine.insert(key, None);
                } else {
                    mine.remove(&key);
                }
            }
            Ok(watcher::Event::Delete(obj)) => {
                // A label-selected watch also reports an object that left the
                // selection: if it still exists without its markers, that is
                // drift too (the event carries the last owned state).
                let key = object_key(kind, &obj);
                match getter.stripped(&watch.policy, &obj).await {
                    Some(now) => {
                        watch.lost_markers(kind, &obj, &now);
                        mine.insert(key, Some(obj));
                    }
                    None => {
                        watch.resolve(&key);
                        mine.remove(&key);
                    }
                }
            }
            Ok(watcher::Event::Init) => relisted.clear(),
            Ok(watcher::Event::InitApply(obj)) => {
                if watch.evaluate(kind, &obj) {
                    relisted.insert(object_key(kind, &obj));
                }
            }
            Ok(watcher::Event::InitDone) => {
                // Level-triggered: what the relist no longer finds drifted
                // (deleted while the watch was down, or fixed) is resolved,
                // unless it is still there without its markers.
                let mut next: HashMap<_, _> = relisted.drain().map(|k| (k, None)).collect();
                for (key, prior) in mine.drain() {
                    if next.contains_key(&key) {
                        continue;
                    }
                    let still = match &prior {
                        Some(prior) => getter.stripped(&watch.policy, prior).await.is_some(),
                        None => false,
                    };
                    if still {
                        next.insert(key, prior);
                    } else {
                        watch.resolve(&key);
                    }
                }
                *mine = next;
                if std::mem::replace(first, false) {
                    watch.listed();
                }
            }
            Err(e) => {
                watch
                    .metrics
                    .watch_errors
                    .with_label_values(&[&kind.kind])
                    .inc();
                tracing::warn!(kind = %kind.kind, error = %e, "drift watch failed; retrying");
            }
        }
    }
}
