//! A watched object trimmed to a compact record: its owner and, per field
//! manager, the operation, the time and a few of the fields it owns.
//! Status entries are dropped (status is not Git's); `/scale` entries stay
//! (`kubectl scale` is a change to the spec).

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::guard::ownership::{Markers, Owner, owner_of};
use crate::policy::Policy;

/// Fields named per manager at most.
const FIELDS: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagerEntry {
    pub manager: Arc<str>,
    pub operation: Arc<str>,
    /// Seconds since the epoch of the manager's last change.
    pub time: Option<i64>,
    /// Field paths it owns, e.g. `spec.replicas` (at most a few).
    pub fields: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub owner: Owner,
    pub managers: Vec<ManagerEntry>,
}

struct Meta<'a>(&'a ObjectMeta);

impl Markers for Meta<'_> {
    fn label(&self, key: &str) -> Option<&str> {
        self.0.labels.as_ref()?.get(key).map(String::as_str)
    }

    fn annotation(&self, key: &str) -> Option<&str> {
        self.0.annotations.as_ref()?.get(key).map(String::as_str)
    }
}

/// The record of an owned object; None when nothing claims it.
pub fn record(policy: &Policy, meta: &ObjectMeta) -> Option<Record> {
    let owner = owner_of(policy, &Meta(meta))?;
    Some(Record {
        owner,
        managers: managers(meta),
    })
}

/// The manager entries of an object. Status entries are left out unless
/// they own metadata: the apiserver keeps label and annotation changes made
/// through `/status` for most kinds, and those are changes like any other.
pub fn managers(meta: &ObjectMeta) -> Vec<ManagerEntry> {
    meta.managed_fields
        .iter()
        .flatten()
        .filter(|m| m.subresource.as_deref() != Some("status") || owns_metadata(m))
        .map(|m| ManagerEntry {
            manager: Arc::from(m.manager.as_deref().unwrap_or("")),
            operation: Arc::from(m.operation.as_deref().unwrap_or("")),
            time: m.time.as_ref().map(|t| t.0.as_second()),
            fields: m
                .fields_v1
                .as_ref()
                .map(|f| field_paths(&f.0))
                .unwrap_or_default(),
        })
        .collect()
}

fn owns_metadata(
    entry: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry,
) -> bool {
    let fields = entry.fields_v1.as_ref().map(|f| &f.0);
    fields.is_some_and(|f| f.get("f:metadata").is_some())
}

/// Leaf paths of a `fieldsV1` tree, `f:` prefixes dropped, list keys
/// (`k:`/`v:`/`i:`) shown as `[]`, metadata left out, at most [`FIELDS`].
pub fn field_paths(tree: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(tree, String::new(), 0, &mut out);
    out
}

fn walk(node: &serde_json::Value, path: String, depth: usize, out: &mut Vec<String>) {
    let Some(map) = node.as_object().filter(|m| !m.is_empty() && depth < 8) else {
        if !path.is_empty() && out.len() < FIELDS {
            out.push(path);
        }
        return;
    };
    for (key, child) in map {
        if out.len() >= FIELDS {
            return;
        }
        let segment = match key.split_once(':') {
            Some(("f", name)) => name.to_owned(),
            Some(_) => "[]".to_owned(),
            None => continue, // "." marks the node itself
        };
        if depth == 0 && segment == "metadata" {
            continue;
        }
        let next = if path.is_empty() {
            segment
        } else if segment == "[]" {
            format!("{path}[]")
        } else {
            format!("{path}.{segment}")
        };
        walk(child, next, depth + 1, out);
    }
}
