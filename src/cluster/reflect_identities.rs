//! Reflectors for the tenant rules: service accounts (metadata) everywhere,
//! and the Pods of the controllers' namespaces.

use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::{
    Api, Client,
    api::PartialObjectMeta,
    runtime::{WatchStreamExt, watcher},
};

use super::{
    identities::PodFacts,
    reflect::{Sink, SyncGate, Tasks, run},
    view::Category,
};
use crate::{guard::tenancy::controller_identities, identity, policy::Policy};

/// Service accounts (metadata, every namespace) and the Pods of the
/// controllers' namespaces, for the tenant rules.
pub(super) fn spawn(client: &Client, policy: &Policy, gate: &SyncGate, tasks: &mut Tasks) {
    let key = |m: &kube::api::ObjectMeta| {
        (
            m.namespace.clone().unwrap_or_default(),
            m.name.clone().unwrap_or_default(),
        )
    };
    let sink = Sink::<PartialObjectMeta<ServiceAccount>> {
        name: "serviceaccounts".into(),
        category: Category::ServiceAccounts,
        upsert: Box::new(move |v, o| {
            let (ns, name) = key(&o.metadata);
            v.identities.upsert_service_account(ns, name);
        }),
        remove: Box::new(move |v, o| {
            let (ns, name) = key(&o.metadata);
            v.identities.remove_service_account(&ns, &name);
        }),
    };
    let api = Api::<PartialObjectMeta<ServiceAccount>>::all(client.clone());
    let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
    tasks.push(Box::pin(run(stream, sink, gate.clone())));

    let mut namespaces: Vec<String> = controller_identities(policy)
        .filter_map(|u| identity::ServiceAccount::parse(u).map(|a| a.namespace.to_owned()))
        .collect();
    namespaces.sort();
    namespaces.dedup();
    for namespace in namespaces {
        let sink = Sink::<Pod> {
            name: format!("pods/{namespace}"),
            category: Category::ControllerPods(namespace.clone()),
            upsert: Box::new(move |v, o| {
                let (ns, name) = key(&o.metadata);
                let account = o.spec.as_ref().and_then(|s| s.service_account_name.clone());
                let facts = PodFacts {
                    uid: o.metadata.uid.clone().unwrap_or_default(),
                    service_account: account.unwrap_or_else(|| "default".to_owned()),
                };
                v.identities.upsert_pod(ns, name, facts);
            }),
            remove: Box::new(move |v, o| {
                let (ns, name) = key(&o.metadata);
                v.identities.remove_pod(&ns, &name);
            }),
        };
        let api = Api::<Pod>::namespaced(client.clone(), &namespace);
        let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
        tasks.push(Box::pin(run(stream, sink, gate.clone())));
    }
}
