//! The cluster view as the runtime shares it: one feeding side (the
//! reflectors, [`ViewFeed`]) and any number of readers ([`SharedView`]: the
//! webhook shells, the drift watcher, the tenancy audit, the size metric).
//! A reader sees the view, whether it has loaded, and a wake-up on each
//! change; only the feed writes.

use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, TryLockError};

use tokio::sync::{Notify, watch};

use super::view::ClusterView;

/// A reader's handle; cheap to clone.
#[derive(Clone)]
pub struct SharedView {
    view: Arc<RwLock<ClusterView>>,
    loaded: watch::Receiver<bool>,
    changed: Arc<Notify>,
}

/// The reflectors' handle.
#[derive(Clone)]
pub struct ViewFeed {
    view: Arc<RwLock<ClusterView>>,
    loaded: Arc<watch::Sender<bool>>,
    changed: Arc<Notify>,
}

impl SharedView {
    /// An empty view, not loaded yet, and the feed that fills it.
    pub fn empty() -> (Self, ViewFeed) {
        Self::starting_from(ClusterView::default())
    }

    /// `view` as it stands (loaded if it is synced), and its feed.
    pub fn starting_from(view: ClusterView) -> (Self, ViewFeed) {
        let (loaded_tx, loaded) = watch::channel(view.is_synced());
        let view = Arc::new(RwLock::new(view));
        let changed = Arc::new(Notify::new());
        let feed = ViewFeed {
            view: view.clone(),
            loaded: Arc::new(loaded_tx),
            changed: changed.clone(),
        };
        let shared = Self {
            view,
            loaded,
            changed,
        };
        (shared, feed)
    }

    /// A view nobody feeds (tests, benches, `check`): as loaded as `view` is.
    pub fn fixed(view: ClusterView) -> Self {
        Self::starting_from(view).0
    }

    /// Reads the view. A writer that panicked left a view that is still
    /// whole (each change is one call), so poisoning is ignored.
    pub fn read(&self) -> RwLockReadGuard<'_, ClusterView> {
        self.view.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the view unless a writer holds it (a metrics scrape never waits).
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, ClusterView>> {
        match self.view.try_read() {
            Ok(view) => Some(view),
            Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// Turns true once every reflector has listed. A view nobody feeds never
    /// turns: waiting on it ends with an error at once.
    pub fn loaded(&self) -> watch::Receiver<bool> {
        self.loaded.clone()
    }

    /// Woken after every change the feed makes.
    pub fn changed(&self) -> &Notify {
        &self.changed
    }
}

impl ViewFeed {
    /// Changes the view; call [`ViewFeed::changed`] once the change is made.
    pub fn write(&self) -> RwLockWriteGuard<'_, ClusterView> {
        self.view.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the readers waiting for a change.
    pub fn changed(&self) {
        self.changed.notify_waiters();
    }

    /// The view is whole: decisions may rely on it.
    pub fn mark_loaded(&self) {
        self.write().set_synced(true);
        self.loaded.send_replace(true);
        self.changed();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn readers_wake_when_the_feed_loads_the_view() {
        let (shared, feed) = SharedView::empty();
        assert!(!shared.read().is_synced());
        let mut loaded = shared.loaded();
        let feeder = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            feed.mark_loaded();
        });
        let waited = tokio::time::timeout(Duration::from_secs(5), loaded.wait_for(|l| *l)).await;
        assert!(matches!(waited, Ok(Ok(_))), "{waited:?}");
        assert!(shared.read().is_synced());
        feeder.await.unwrap_or_else(|e| panic!("{e}"));
    }

    #[tokio::test]
    async fn waiting_on_a_view_nobody_feeds_ends_at_once() {
        let mut view = ClusterView::synced();
        view.set_synced(false);
        let shared = SharedView::fixed(view);
        let mut loaded = shared.loaded();
        let waited = tokio::time::timeout(Duration::from_secs(5), loaded.wait_for(|l| *l)).await;
        assert!(matches!(waited, Ok(Err(_))), "{waited:?}");
    }
}
