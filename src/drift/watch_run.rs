//! The watch loops: one per kind and ownership label, restarted (a full
//! relist) at least every five minutes.

use super::*;

/// A fresh watch (a full relist and re-evaluation) at least this often:
/// the level-triggered safety net.
const REEVALUATE: std::time::Duration = std::time::Duration::from_secs(300);

/// Starts a watcher per kind and ownership label.
pub fn spawn(client: Client, watch: Arc<DriftWatch>) {
    let kinds = watch.policy.drift.kinds.clone();
    watch
        .pending
        .store(kinds.len() * 2, std::sync::atomic::Ordering::Release);
    for kind in kinds {
        for selector in [KUSTOMIZE_NAME, HELM_NAME] {
            let gvk = GroupVersionKind::gvk(&kind.group, &kind.version, &kind.kind);
            let ar = ApiResource::from_gvk_with_plural(&gvk, &kind.plural);
            let api = Api::<PartialObjectMeta<DynamicObject>>::all_with(client.clone(), &ar);
            let config = watcher::Config::default().labels(selector);
            tokio::spawn(run(api, config, kind.clone(), watch.clone()));
        }
    }
}

async fn run(
    api: Api<PartialObjectMeta<DynamicObject>>,
    config: watcher::Config,
    kind: WatchedKind,
    watch: Arc<DriftWatch>,
) {
    let mut mine = HashSet::new();
    let mut first = true;
    loop {
        let stream = watcher::watcher(api.clone(), config.clone()).default_backoff();
        let pass = consume(stream, &kind, &watch, &mut mine, &mut first);
        let _ = tokio::time::timeout(REEVALUATE, pass).await;
    }
}

fn object_key(kind: &WatchedKind, obj: &PartialObjectMeta<DynamicObject>) -> String {
    let ns = obj.metadata.namespace.as_deref().unwrap_or("");
    key(kind, ns, obj.metadata.name.as_deref().unwrap_or(""))
}

async fn consume<S>(
    stream: S,
    kind: &WatchedKind,
    watch: &DriftWatch,
    mine: &mut HashSet<String>,
    first: &mut bool,
) where
    S: futures::Stream<
            Item = Result<watcher::Event<PartialObjectMeta<DynamicObject>>, watcher::Error>,
        >,
{
    let mut stream = std::pin::pin!(stream);
    // What the current relist finds drifted (`mine`: what this watcher did).
    let mut relisted = HashSet::new();
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::Apply(obj)) => {
                let key = object_key(kind, &obj);
                if watch.evaluate(kind, &obj) {
                    mine.insert(key);
                } else {
                    mine.remove(&key);
                }
            }
            Ok(watcher::Event::Delete(obj)) => {
                let key = object_key(kind, &obj);
                watch.resolve(&key);
                mine.remove(&key);
            }
            Ok(watcher::Event::Init) => relisted.clear(),
            Ok(watcher::Event::InitApply(obj)) => {
                if watch.evaluate(kind, &obj) {
                    relisted.insert(object_key(kind, &obj));
                }
            }
            Ok(watcher::Event::InitDone) => {
                // Level-triggered: what the relist no longer finds drifted
                // (deleted while the watch was down, or fixed) is resolved.
                for gone in mine.difference(&relisted) {
                    watch.resolve(gone);
                }
                *mine = std::mem::take(&mut relisted);
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
