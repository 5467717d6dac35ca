//! `gitops-guard audit tenants`: the audit once, from the cluster (current
//! kubeconfig, SubjectAccessReviews) or offline from a cluster-state file.

use std::path::Path;

use anyhow::Context;
use k8s_openapi::api::{
    core::v1::Namespace,
    rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding},
};
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, GroupVersionKind, ListParams},
    core::DynamicObject as Dyn,
};

use super::{
    rbac::Rbac,
    report::{self, AuditReport, Authority},
};
use crate::{
    cluster::{
        ingest::{self, HELM_RELEASE_GROUP, KUSTOMIZATION_GROUP},
        view::ClusterView,
    },
    guard::ownership::OwnerKind,
    policy::Policy,
};

/// The RBAC objects of a cluster-state file, typed.
pub fn rbac_from_objects(objects: &[Dyn]) -> anyhow::Result<Rbac> {
    let (mut roles, mut cluster_roles, mut bindings, mut cluster_bindings) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for obj in objects {
        let kind = obj
            .types
            .as_ref()
            .map(|t| t.kind.as_str())
            .unwrap_or_default();
        let name = obj.metadata.name.clone().unwrap_or_default();
        let value = serde_json::to_value(obj)?;
        let typed = |e: serde_json::Error| anyhow::anyhow!("{kind} {name}: {e}");
        match kind {
            "Role" => roles.push(serde_json::from_value::<Role>(value).map_err(typed)?),
            "ClusterRole" => {
                cluster_roles.push(serde_json::from_value::<ClusterRole>(value).map_err(typed)?)
            }
            "RoleBinding" => {
                bindings.push(serde_json::from_value::<RoleBinding>(value).map_err(typed)?)
            }
            "ClusterRoleBinding" => cluster_bindings
                .push(serde_json::from_value::<ClusterRoleBinding>(value).map_err(typed)?),
            _ => {}
        }
    }
    Ok(Rbac::new(
        &roles,
        &cluster_roles,
        &bindings,
        &cluster_bindings,
    ))
}

/// Offline: the RBAC model answers.
pub async fn offline(policy: &Policy, state: &Path) -> anyhow::Result<AuditReport> {
    let mut view = ClusterView::synced();
    let objects = crate::cluster::state_file::load(&mut view, policy, state)?;
    let rbac = rbac_from_objects(&objects)?;
    let plan = report::plan(policy, &view, &rbac);
    Ok(report::finish(plan, Authority::Model(&rbac)).await?)
}

async fn list<K>(client: &Client) -> anyhow::Result<Vec<K>>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let api = Api::<K>::all(client.clone());
    let list = api
        .list(&ListParams::default())
        .await
        .with_context(|| format!("listing {}", K::plural(&())))?;
    Ok(list.items)
}

/// Online: lists what the audit reads, then asks the apiserver.
pub async fn online(client: Client, policy: &Policy) -> anyhow::Result<AuditReport> {
    let mut view = ClusterView::synced();
    let namespaces = Api::<Namespace>::all(client.clone())
        .list_metadata(&ListParams::default())
        .await
        .context("listing namespaces")?;
    for ns in namespaces.items {
        let name = ns.metadata.name.clone().unwrap_or_default();
        view.upsert_namespace(name, ingest::namespace_facts(&ns.metadata));
    }
    let flux = [
        (
            OwnerKind::Kustomization,
            GroupVersionKind::gvk(KUSTOMIZATION_GROUP, "v1", "Kustomization"),
        ),
        (
            OwnerKind::HelmRelease,
            GroupVersionKind::gvk(HELM_RELEASE_GROUP, "v2", "HelmRelease"),
        ),
    ];
    for (kind, gvk) in flux {
        let api = Api::<DynamicObject>::all_with(client.clone(), &ApiResource::from_gvk(&gvk));
        let items = match api.list(&ListParams::default()).await {
            Ok(list) => list.items,
            Err(kube::Error::Api(status)) if status.code == 404 => continue,
            Err(e) => return Err(anyhow::Error::from(e).context(format!("listing {}", gvk.kind))),
        };
        for o in items {
            let spec = o.data.get("spec").cloned().unwrap_or_default();
            let ns = o.metadata.namespace.clone().unwrap_or_default();
            let name = o.metadata.name.clone().unwrap_or_default();
            view.upsert_flux(kind, ns, name, ingest::flux_object(kind, &spec));
        }
    }
    let rbac = Rbac::new(
        &list::<Role>(&client).await?,
        &list::<ClusterRole>(&client).await?,
        &list::<RoleBinding>(&client).await?,
        &list::<ClusterRoleBinding>(&client).await?,
    );
    let plan = report::plan(policy, &view, &rbac);
    report::finish(plan, Authority::Apiserver(&client))
        .await
        .context("SubjectAccessReview")
}
