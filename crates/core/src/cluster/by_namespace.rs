//! A two-level index: namespace, then name.

use std::collections::{BTreeMap, HashMap};

/// Entries by namespace, then name, looked up with borrowed strings: the
/// decision path never allocates a key.
#[derive(Debug)]
pub(super) struct ByNamespace<V>(HashMap<String, BTreeMap<String, V>>);

impl<V> Default for ByNamespace<V> {
    fn default() -> Self {
        Self(HashMap::new())
    }
}

impl<V> ByNamespace<V> {
    pub fn insert(&mut self, namespace: String, name: String, value: V) {
        self.0.entry(namespace).or_default().insert(name, value);
    }

    pub fn remove(&mut self, namespace: &str, name: &str) {
        if let Some(names) = self.0.get_mut(namespace) {
            names.remove(name);
            if names.is_empty() {
                self.0.remove(namespace);
            }
        }
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<&V> {
        self.0.get(namespace)?.get(name)
    }

    pub fn in_namespace(&self, namespace: &str) -> impl Iterator<Item = &V> {
        self.0.get(namespace).into_iter().flat_map(BTreeMap::values)
    }

    /// (name, value) of one namespace, by name.
    pub fn entries(&self, namespace: &str) -> impl Iterator<Item = (&String, &V)> {
        self.0.get(namespace).into_iter().flatten()
    }

    /// (namespace, name, value) of every entry, in no particular order.
    pub fn all(&self) -> impl Iterator<Item = (&str, &str, &V)> {
        self.0.iter().flat_map(|(ns, names)| {
            names
                .iter()
                .map(move |(name, v)| (ns.as_str(), name.as_str(), v))
        })
    }

    pub fn len(&self) -> usize {
        self.0.values().map(BTreeMap::len).sum()
    }
}
