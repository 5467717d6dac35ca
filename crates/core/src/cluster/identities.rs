//! What the tenant rules need beyond namespaces and Flux objects: which
//! service accounts exist, and the Pods of the controller namespaces (to
//! check that a controller's token is bound to one of them).

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A Pod a service-account token can be bound to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodFacts {
    pub uid: String,
    pub service_account: String,
}

#[derive(Debug, Default)]
pub struct Identities {
    service_accounts: HashMap<String, BTreeSet<String>>,
    pods: HashMap<String, BTreeMap<String, PodFacts>>,
}

impl Identities {
    pub fn upsert_service_account(&mut self, namespace: String, name: String) {
        self.service_accounts
            .entry(namespace)
            .or_default()
            .insert(name);
    }

    pub fn remove_service_account(&mut self, namespace: &str, name: &str) {
        if let Some(names) = self.service_accounts.get_mut(namespace) {
            names.remove(name);
            if names.is_empty() {
                self.service_accounts.remove(namespace);
            }
        }
    }

    pub fn has_service_account(&self, namespace: &str, name: &str) -> bool {
        self.service_accounts
            .get(namespace)
            .is_some_and(|names| names.contains(name))
    }

    pub fn clear_service_accounts(&mut self) {
        self.service_accounts.clear();
    }

    pub fn upsert_pod(&mut self, namespace: String, name: String, pod: PodFacts) {
        self.pods.entry(namespace).or_default().insert(name, pod);
    }

    pub fn remove_pod(&mut self, namespace: &str, name: &str) {
        if let Some(pods) = self.pods.get_mut(namespace) {
            pods.remove(name);
            if pods.is_empty() {
                self.pods.remove(namespace);
            }
        }
    }

    pub fn pod(&self, namespace: &str, name: &str) -> Option<&PodFacts> {
        self.pods.get(namespace)?.get(name)
    }

    pub fn clear_pods(&mut self, namespace: &str) {
        self.pods.remove(namespace);
    }

    pub fn sizes(&self) -> (usize, usize) {
        (
            self.service_accounts.values().map(BTreeSet::len).sum(),
            self.pods.values().map(BTreeMap::len).sum(),
        )
    }
}
