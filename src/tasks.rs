//! The background tasks of `serve`, supervised: reflectors, watchers, the
//! alert sender and its Lease, the certificate watcher, the tenancy audit.
//! Each runs until the process stops; one that returns or panics is a bug
//! or a lost dependency, and the guard must not go on looking healthy
//! without it (a dead drift watcher would leave `/readyz` green and drift
//! unreported). So an exit is logged with the task's name, counted
//! (`gitops_guard_task_exits_total{task,how}`), makes `/readyz` fail, and
//! ends the process with an error so the kubelet restarts it: the same
//! answer a controller-runtime manager gives when a runnable fails.
//!
//! Shutdown cancels tasks in two steps. [`Tasks::shutdown`] stops the
//! watchers and the leader's work when the stop begins. The few tasks that
//! carry out what the webhook decides ([`Tasks::spawn_through_drain`]: the
//! attribution writer, the admission alerts and their sender) run on while the webhook still
//! answers through `--shutdown-delay` and the drain, and stop at
//! [`Tasks::drained`]: a manual change admitted by a stopping replica still
//! gets its `ManualChangeAdmitted` Event, found missing by the in-cluster
//! e2e when the leader's Pod was deleted.

use std::{future::Future, panic::AssertUnwindSafe};

use futures::FutureExt;
use prometheus::{IntCounterVec, Opts, Registry};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How a task stopped on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum How {
    Returned,
    Panicked(String),
}

impl How {
    fn label(&self) -> &'static str {
        match self {
            How::Returned => "returned",
            How::Panicked(_) => "panicked",
        }
    }
}

/// A task that stopped while nothing asked it to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    pub task: &'static str,
    pub how: How,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.how {
            How::Returned => write!(f, "background task {} returned", self.task),
            How::Panicked(why) => write!(f, "background task {} panicked: {why}", self.task),
        }
    }
}

/// Spawns supervised tasks; cheap to clone into the modules that start them.
#[derive(Clone)]
pub struct Tasks {
    token: CancellationToken,
    /// Cancelled after the webhook has drained.
    drained: CancellationToken,
    exits: mpsc::UnboundedSender<Exit>,
    counted: IntCounterVec,
}

/// The exits of every task spawned through [`Tasks`].
pub struct Exits(mpsc::UnboundedReceiver<Exit>);

impl Exits {
    /// The next task that stopped on its own; pending while all run.
    pub async fn next(&mut self) -> Exit {
        match self.0.recv().await {
            Some(exit) => exit,
            // Every sender is gone: nothing left that could exit.
            None => std::future::pending().await,
        }
    }

    /// An exit already reported, if any.
    pub fn try_next(&mut self) -> Option<Exit> {
        self.0.try_recv().ok()
    }
}

impl Tasks {
    pub fn new(registry: &Registry) -> prometheus::Result<(Self, Exits)> {
        let counted = IntCounterVec::new(
            Opts::new(
                "gitops_guard_task_exits_total",
                "Background tasks that stopped on their own (the process then exits), by task and how.",
            ),
            &["task", "how"],
        )?;
        registry.register(Box::new(counted.clone()))?;
        let (exits, received) = mpsc::unbounded_channel();
        let tasks = Self {
            token: CancellationToken::new(),
            drained: CancellationToken::new(),
            exits,
            counted,
        };
        Ok((tasks, Exits(received)))
    }

    /// Runs `work` until it ends or shutdown cancels it. `task` names it in
    /// logs and in the metric: a fixed name, never per object.
    pub fn spawn<F>(&self, task: &'static str, work: F) -> tokio::task::JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.spawn_until(self.token.clone(), task, work)
    }

    /// Like [`Tasks::spawn`], for work that serves the webhook's answers: it
    /// runs on through the shutdown drain until [`Tasks::drained`].
    pub fn spawn_through_drain<F>(&self, task: &'static str, work: F) -> tokio::task::JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.spawn_until(self.drained.clone(), task, work)
    }

    fn spawn_until<F>(
        &self,
        token: CancellationToken,
        task: &'static str,
        work: F,
    ) -> tokio::task::JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (exits, counted) = (self.exits.clone(), self.counted.clone());
        let stopping = self.token.clone();
        tokio::spawn(async move {
            let how = tokio::select! {
                // Once shut down, nothing reports: cancellation wins a tie.
                biased;
                () = token.cancelled() => return,
                ended = AssertUnwindSafe(work).catch_unwind() => match ended {
                    // A task that finishes once the stop has begun (the
                    // attribution writer, when the stopped webhook drops
                    // the last sender) has done its work: no exit.
                    Ok(()) if stopping.is_cancelled() => return,
                    Ok(()) => How::Returned,
                    Err(panic) => How::Panicked(panic_message(&*panic)),
                },
            };
            counted.with_label_values(&[task, how.label()]).inc();
            let exit = Exit { task, how };
            tracing::error!(task, error = %exit, "background task stopped");
            // The receiver is gone only while the process is stopping.
            let _ = exits.send(exit);
        })
    }

    /// Stops every task but those spawned through the drain.
    pub fn shutdown(&self) {
        self.token.cancel();
    }

    /// The webhook has answered its last review: stops the rest.
    pub fn drained(&self) {
        self.token.cancel();
        self.drained.cancel();
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tasks() -> (Tasks, Exits, Registry) {
        let registry = Registry::new();
        let (tasks, exits) = Tasks::new(&registry).unwrap_or_else(|e| panic!("{e}"));
        (tasks, exits, registry)
    }

    fn counted(registry: &Registry, task: &str, how: &str) -> u64 {
        let families = registry.gather();
        let family = families
            .iter()
            .find(|f| f.name() == "gitops_guard_task_exits_total");
        let metric = family.into_iter().flat_map(|f| f.get_metric()).find(|m| {
            let labels: Vec<_> = m.get_label().iter().map(|l| l.value()).collect();
            labels == [how, task]
        });
        metric.map_or(0, |m| m.get_counter().get_value() as u64)
    }

    #[tokio::test]
    async fn a_task_that_returns_is_reported_by_name_and_counted() {
        let (tasks, mut exits, registry) = tasks();
        tasks.spawn("drift-watch", async {});
        let exit = exits.next().await;
        assert_eq!(exit.task, "drift-watch");
        assert_eq!(exit.how, How::Returned);
        assert_eq!(counted(&registry, "drift-watch", "returned"), 1);
    }

    #[tokio::test]
    async fn a_task_that_panics_is_reported_with_its_message() {
        let (tasks, mut exits, registry) = tasks();
        tasks.spawn("alert-sender", async { panic!("lost the channel") });
        let exit = exits.next().await;
        assert_eq!(exit.how, How::Panicked("lost the channel".into()));
        assert!(exit.to_string().contains("alert-sender panicked"));
        assert_eq!(counted(&registry, "alert-sender", "panicked"), 1);
    }

    #[tokio::test]
    async fn a_task_cancelled_by_shutdown_is_no_exit() {
        let (tasks, mut exits, registry) = tasks();
        let running = tasks.spawn("reflector", std::future::pending());
        tasks.shutdown();
        // Ready at once, but spawned after the shutdown: cancelled first.
        let late = tasks.spawn("late", async {});
        for handle in [running, late] {
            handle.await.unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(exits.try_next(), None, "a cancelled task reported an exit");
        assert_eq!(counted(&registry, "reflector", "returned"), 0);
        assert_eq!(counted(&registry, "late", "returned"), 0);
    }

    #[tokio::test]
    async fn a_task_spawned_through_the_drain_outlives_shutdown_until_drained() {
        let (tasks, mut exits, _registry) = tasks();
        let (seen, mut received) = mpsc::unbounded_channel::<u32>();
        let (send, mut queue) = mpsc::unbounded_channel::<u32>();
        let writer = tasks.spawn_through_drain("attribution-writer", async move {
            while let Some(n) = queue.recv().await {
                let _ = seen.send(n);
            }
        });
        tasks.shutdown();
        // Admitted during the drain: still carried out.
        send.send(7).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(received.recv().await, Some(7));
        assert!(
            !writer.is_finished(),
            "stopped by shutdown, before the drain ended"
        );
        // The webhook stops: the last sender goes, the writer finishes.
        drop(send);
        tasks.drained();
        writer.await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(exits.try_next(), None, "a drained task reported an exit");
    }
}
