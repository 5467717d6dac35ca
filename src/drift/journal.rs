//! Who the webhook let through: manual changes it admitted in warn or audit
//! mode or under break-glass, so drift can name the person rather than the
//! field manager. Bounded; level-triggered detection never depends on it
//! (after a restart drift is still found, named by its field manager).

use std::{
    num::NonZeroUsize,
    sync::{Mutex, PoisonError},
};

use lru::LruCache;

use crate::object_ref::ObjectRef;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    pub user: String,
    /// Seconds since the epoch.
    pub at: i64,
    pub admission: Admission,
}

/// How a manual change got into the cluster, or what was tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Allowed with a warning in a warn-mode namespace.
    Warned,
    /// Allowed silently in an audit-mode namespace.
    Audited,
    /// Allowed by a BreakGlass grant (alerted).
    BreakGlass,
    /// A controller identity without a Pod-bound token (denied, alerted).
    ControllerImpersonation,
}

impl Admission {
    /// How it is written in an attribution Event (`super::attribution`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warned => "warned",
            Self::Audited => "audited",
            Self::BreakGlass => "break-glass",
            Self::ControllerImpersonation => "controller-impersonation",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Warned,
            Self::Audited,
            Self::BreakGlass,
            Self::ControllerImpersonation,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }
}

/// Whether `entry` names who made the change drift found at `changed_at`
/// (seconds): the admission is at most 5 s older than the change's
/// managedFields time (one-second resolution, and the write lands after the
/// review); an older admission was of an earlier change.
pub fn names_change(entry: &JournalEntry, changed_at: Option<i64>) -> bool {
    changed_at.is_none_or(|at| entry.at + 5 >= at)
}

pub struct Journal {
    entries: Mutex<LruCache<ObjectRef, JournalEntry>>,
}

impl Default for Journal {
    fn default() -> Self {
        Self {
            entries: Mutex::new(LruCache::new(
                NonZeroUsize::new(10_000).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }
}

impl Journal {
    pub fn record(&self, key: ObjectRef, entry: JournalEntry) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .put(key, entry);
    }

    /// Records `entry` unless the journal already holds a later one for the
    /// object (attributions read back from the API arrive in any order).
    /// True when it was recorded.
    pub fn record_if_newer(&self, key: ObjectRef, entry: JournalEntry) -> bool {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries
            .peek(&key)
            .is_some_and(|known| known.at > entry.at || *known == entry)
        {
            return false;
        }
        entries.put(key, entry);
        true
    }

    pub fn get(&self, key: &ObjectRef) -> Option<JournalEntry> {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }
}
