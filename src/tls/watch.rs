//! Reloading the certificate on file events and on a timer backstop.

use super::*;

/// Reloads the serving certificate into a [`RustlsConfig`] when its files
/// change, as seen by directory events or by the timer backstop.
pub struct CertWatcher {
    paths: CertPaths,
    interval: Duration,
    rustls_config: RustlsConfig,
    metrics: TlsMetrics,
    last: Attempt,
}

/// What the last look at the files found; a failure is reported once, not
/// on every tick, and a reload happens only when the bytes differ.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Attempt {
    Read(Snapshot),
    Unreadable(String),
}

impl CertWatcher {
    /// The timer backstop, as controller-runtime's certwatcher.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
    /// Pause after a file event so a writer can finish both files.
    const SETTLE: Duration = Duration::from_millis(100);

    /// Watches the files `loaded` came from; sets the expiry gauge to it.
    pub fn new(loaded: &Loaded, rustls_config: RustlsConfig, metrics: TlsMetrics) -> Self {
        metrics.serving(loaded);
        Self {
            paths: loaded.paths.clone(),
            interval: Self::DEFAULT_INTERVAL,
            rustls_config,
            metrics,
            last: Attempt::Read(loaded.snapshot.clone()),
        }
    }

    /// Replaces the timer backstop (at least 10 ms).
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Runs until the returned handle is aborted.
    pub fn spawn(self) -> JoinHandle<()> {
        tokio::spawn(self.run())
    }

    /// Runs until dropped (`serve` runs it supervised).
    pub async fn run(mut self) {
        let wake = Arc::new(Notify::new());
        let _watcher = watch_parent_dirs(&self.paths, Arc::clone(&wake));
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticker.tick().await;
        // Catch a change made between `load` and the watch being set up.
        self.check().await;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = wake.notified() => tokio::time::sleep(Self::SETTLE).await,
            }
            self.check().await;
        }
    }

    async fn check(&mut self) {
        let paths = self.paths.clone();
        let attempt = match tokio::task::spawn_blocking(move || Snapshot::read(&paths)).await {
            Ok(Ok(snapshot)) => Attempt::Read(snapshot),
            Ok(Err(error)) => Attempt::Unreadable(error.to_string()),
            Err(error) => Attempt::Unreadable(error.to_string()),
        };
        if attempt == self.last {
            return;
        }
        self.last = attempt.clone();
        let loaded = match attempt {
            Attempt::Read(snapshot) => {
                build(self.paths.clone(), snapshot).map_err(|e| e.to_string())
            }
            Attempt::Unreadable(error) => Err(error),
        };
        self.apply(loaded);
    }

    fn apply(&self, loaded: Result<Loaded, String>) {
        let cert = self.paths.cert.display();
        match loaded {
            Ok(loaded) => {
                let config = Arc::clone(&loaded.config);
                self.rustls_config.reload_from_config(config);
                self.metrics.record(ReloadResult::Success);
                self.metrics.serving(&loaded);
                let not_after = loaded.not_after;
                tracing::info!(%cert, not_after, "reloaded the serving certificate");
            }
            Err(error) => {
                self.metrics.record(ReloadResult::Failure);
                tracing::warn!(%cert, %error, "reload failed; keeping the last good certificate");
            }
        }
    }
}

/// Watches the directories holding the files, not the files: the kubelet
/// replaces a Secret volume by renaming the `..data` symlink next to them.
fn watch_parent_dirs(paths: &CertPaths, wake: Arc<Notify>) -> Option<RecommendedWatcher> {
    let handler = move |event: notify::Result<notify::Event>| match event {
        Ok(event) if is_change(&event.kind) => wake.notify_one(),
        Ok(_) => {}
        Err(error) => tracing::debug!(%error, "certificate directory watch error"),
    };
    let mut watcher = notify::recommended_watcher(handler)
        .inspect_err(|error| tracing::warn!(%error, "cannot watch certificate files; polling only"))
        .ok()?;
    let mut dirs = vec![parent_dir(&paths.cert), parent_dir(&paths.key)];
    dirs.dedup();
    for dir in dirs {
        if let Err(error) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
            tracing::warn!(dir = %dir.display(), %error, "cannot watch certificate directory; polling only");
        }
    }
    Some(watcher)
}

/// Opening and reading (our own reloads included) change nothing.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}
