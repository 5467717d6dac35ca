//! The drift watcher: owned objects changed by anyone but their reconciler,
//! found from `managedFields` (and attributed through the admission
//! journal), reported as metrics and Alertmanager alerts until Git wins.
//!
//! `record` trims a watched object to what `detect` (pure) reads; `journal`
//! remembers who the webhook let through; `watch` runs the watchers and
//! keeps the set of drifted objects; `alerts` delivers it.

pub use gitops_guard_core::drift::{detect, record, settings};
pub mod alerts;
pub mod announce;
pub mod attribution;
pub mod events;
pub mod journal;
pub mod leader;
pub mod metrics;
pub mod scan;
mod start;
pub mod watch;
pub mod webhooks;

pub use announce::{FromAdmission, ToDrift};
pub use start::{Settings, start};
