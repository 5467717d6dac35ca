//! `gitops-guard drift`: one scan with the current kubeconfig, the same
//! record + detect as the watcher, printed as a table or JSON. Who made each
//! change comes, as in the watcher's alerts, from the attribution Events the
//! webhook wrote (`super::attribution`), else the field manager.

use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, GroupVersionKind, ListParams},
};
use serde::Serialize;

use k8s_openapi::api::core::v1::Event;

use super::{detect::detect, journal::Journal, record::record};
use crate::{
    guard::ownership::{HELM_NAME, KUSTOMIZE_NAME},
    object_ref::ObjectRef,
    policy::Policy,
};

#[derive(Debug, Serialize)]
pub struct Row {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub owner: String,
    /// The person the webhook let through, when an attribution Event
    /// names them; else `field manager NAME`, as the alert says.
    pub changed_by: String,
    pub field_manager: String,
    pub operation: String,
    pub changed_at: String,
    pub fields: Vec<String>,
}

/// Every drifted object of the policy's kinds; kinds the cluster does not
/// serve are reported on stderr and skipped.
pub async fn scan(client: Client, policy: &Policy) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let people = attributions(client.clone()).await;
    for kind in &policy.drift.kinds {
        let gvk = GroupVersionKind::gvk(&kind.group, &kind.version, &kind.kind);
        let ar = ApiResource::from_gvk_with_plural(&gvk, &kind.plural);
        let api = Api::<DynamicObject>::all_with(client.clone(), &ar);
        for selector in [KUSTOMIZE_NAME, HELM_NAME] {
            let list = match api
                .list_metadata(&ListParams::default().labels(selector))
                .await
            {
                Ok(list) => list,
                Err(kube::Error::Api(status)) if status.code == 404 => {
                    eprintln!(
                        "gitops-guard drift: {} not served by this cluster; skipped",
                        kind.kind
                    );
                    break;
                }
                Err(e) => return Err(anyhow::anyhow!("listing {}: {e}", kind.plural)),
            };
            for item in list.items {
                let Some(r) = record(policy, &item.metadata) else {
                    continue;
                };
                let reconcilers = policy.owners.get(r.owner.kind).field_managers;
                let Some(d) = detect(&r, reconcilers, &policy.drift.system_managers) else {
                    continue;
                };
                let namespace = item.metadata.namespace.clone().unwrap_or_default();
                let name = item.metadata.name.clone().unwrap_or_default();
                let object = ObjectRef::new(&kind.group, &kind.plural, &namespace, &name);
                let changed_by = people
                    .get(&object)
                    .filter(|e| super::journal::names_change(e, d.at))
                    .map_or_else(
                        || format!("field manager {}", d.manager),
                        |e| e.user.clone(),
                    );
                rows.push(Row {
                    kind: kind.kind.clone(),
                    namespace,
                    name,
                    changed_by,
                    owner: format!(
                        "{} {}/{}",
                        r.owner.kind.object_kind(),
                        r.owner.namespace,
                        r.owner.name
                    ),
                    field_manager: d.manager,
                    operation: d.operation,
                    changed_at: d
                        .at
                        .and_then(|s| jiff::Timestamp::from_second(s).ok())
                        .map_or_else(|| "unknown".into(), |t| t.to_string()),
                    fields: d.fields,
                });
            }
        }
    }
    Ok(rows)
}

/// The latest attribution Event of each object, in a journal as the
/// watcher keeps them. Without the right to list Events the scan still runs
/// and names field managers (said on stderr).
async fn attributions(client: Client) -> Journal {
    let journal = Journal::default();
    let api = Api::<Event>::all(client);
    let params = ListParams::default().labels(super::attribution::LABEL);
    match api.list(&params).await {
        Ok(list) => {
            for (object, entry) in list.items.iter().filter_map(super::attribution::read) {
                journal.record_if_newer(object, entry);
            }
        }
        Err(e) => eprintln!(
            "gitops-guard drift: cannot list attribution Events ({e}); naming field managers"
        ),
    }
    journal
}

/// A fixed-width table, one drifted object a line.
pub fn table(rows: &[Row]) -> String {
    let header = [
        "KIND",
        "NAMESPACE",
        "NAME",
        "OWNER",
        "CHANGED BY",
        "WHEN",
        "FIELDS",
    ];
    let mut cells = vec![header.map(str::to_owned)];
    cells.extend(rows.iter().map(|r| {
        [
            r.kind.clone(),
            r.namespace.clone(),
            r.name.clone(),
            r.owner.clone(),
            format!("{} ({})", r.changed_by, r.operation),
            r.changed_at.clone(),
            r.fields.join(","),
        ]
    }));
    crate::table::columns(&cells).join("\n")
}
