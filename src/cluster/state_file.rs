//! A cluster-state file (`check --cluster-state`, `audit tenants
//! --cluster-state`): YAML or JSON documents, or `kubectl get -o yaml`
//! Lists, fed into a `ClusterView` through the same `ingest` functions as
//! the reflectors.

use std::path::Path;

use kube::core::DynamicObject;

use super::{ingest, view::ClusterView};
use crate::policy::Policy;

/// Why a state file could not be used; names the file.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not YAML or JSON: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: {source}")]
    Object {
        path: String,
        source: ingest::IngestError,
    },
}

/// Loads a cluster-state file into `view`; returns its RBAC objects, which
/// the admission view does not keep (`audit tenants` reads them).
pub fn load(
    view: &mut ClusterView,
    policy: &Policy,
    path: &Path,
) -> Result<Vec<DynamicObject>, StateFileError> {
    let label = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| StateFileError::Read {
        path: label.clone(),
        source,
    })?;
    let parse = |message: String| StateFileError::Parse {
        path: label.clone(),
        message,
    };
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(&text).map_err(|e| parse(e.to_string()))?;
    let mut rbac = Vec::new();
    for (index, doc) in docs.into_iter().enumerate().filter(|(_, d)| !d.is_null()) {
        // A `kind: List` (kubectl get -o yaml) contributes its items.
        let items = match doc.get("items").and_then(|i| i.as_array()) {
            Some(items) if doc.get("kind").and_then(|k| k.as_str()) == Some("List") => {
                items.clone()
            }
            _ => vec![doc],
        };
        for item in items {
            let obj: DynamicObject = serde_json::from_value(item)
                .map_err(|e| parse(format!("document {index}: {e}")))?;
            let is_rbac = obj
                .types
                .as_ref()
                .is_some_and(|t| t.api_version.starts_with(ingest::RBAC_GROUP));
            if is_rbac {
                rbac.push(obj.clone());
            }
            ingest::apply(view, policy, index, obj).map_err(|source| StateFileError::Object {
                path: label.clone(),
                source,
            })?;
        }
    }
    Ok(rbac)
}
