//! Drift, decided from a record alone: the latest change to the main
//! resource came from a field manager that is neither the owner's
//! reconciler nor a system controller. It ends when the reconciler writes
//! again (its entry is newer) or the foreign entry disappears (a forced
//! server-side apply took its fields back).

use super::record::{ManagerEntry, Record};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    pub manager: String,
    pub operation: String,
    pub at: Option<i64>,
    pub fields: Vec<String>,
}

/// `reconcilers`: field managers of the owner's reconciler; `system`:
/// managers never counted.
pub fn detect(record: &Record, reconcilers: &[String], system: &[String]) -> Option<Drift> {
    let is = |list: &[String], m: &ManagerEntry| list.iter().any(|r| **r == *m.manager);
    let time = |m: &&ManagerEntry| m.time.unwrap_or(i64::MIN);
    let reconciled = record
        .managers
        .iter()
        .filter(|m| is(reconcilers, m))
        .max_by_key(time)
        .and_then(|m| m.time);
    let foreign = record
        .managers
        .iter()
        .filter(|m| !is(reconcilers, m) && !is(system, m) && !m.manager.is_empty())
        .max_by_key(time)?;
    // A tie (same second) goes to the reconciler. An entry without a time
    // (the apiserver records none for `/scale` updates) cannot be ordered:
    // it is drift while it lasts, and a forced apply by the reconciler that
    // takes its fields back removes it.
    let newer = match (foreign.time, reconciled) {
        (Some(f), Some(r)) => f > r,
        (_, None) | (None, Some(_)) => true,
    };
    newer.then(|| Drift {
        manager: foreign.manager.to_string(),
        operation: foreign.operation.to_string(),
        at: foreign.time,
        fields: foreign.fields.clone(),
    })
}

#[cfg(test)]
mod tests;
