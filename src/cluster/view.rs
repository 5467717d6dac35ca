//! `ClusterView`: what the decision needs to know about the cluster, kept in
//! memory so that no API call sits on the decision path.
//!
//! The same upsert/remove functions are fed by the reflectors (`cluster::reflect`)
//! and by `gitops-guard check --cluster-state`, so offline checks and the
//! running webhook see the cluster the same way.

use std::{
    collections::{BTreeMap, HashMap},
    time::Duration,
};

use jiff::Timestamp;

use super::breakglass::{BreakGlassSpec, SubjectKind};
use crate::guard::ownership::{Owner, OwnerKind};

pub type Labels = BTreeMap<String, String>;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceFacts {
    pub labels: Labels,
    pub terminating: bool,
}

/// A break-glass grant, reduced to what the decision checks.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub name: String,
    pub spec: BreakGlassSpec,
    pub created: Option<Timestamp>,
}

impl Grant {
    /// The earlier of `spec.expiresAt` and creation + `max_duration`.
    pub fn effective_expiry(&self, max_duration: Duration) -> Timestamp {
        let by_spec = self.spec.expires_at.0;
        let capped = self.created.and_then(|c| {
            let max = jiff::SignedDuration::try_from(max_duration).ok()?;
            c.checked_add(max).ok()
        });
        capped.map_or(by_spec, |cap| cap.min(by_spec))
    }

    /// Whether the grant lets `who` change the object called `name`, of a kind
    /// known by any of `kinds` (kind and resource), at `now`.
    pub fn covers(
        &self,
        who: &Who<'_>,
        kinds: &[&str],
        name: &str,
        now: Timestamp,
        max: Duration,
    ) -> bool {
        let spec = &self.spec;
        let subject = spec.subjects.iter().any(|s| match s.kind {
            SubjectKind::User => s.name == who.user,
            SubjectKind::Group => who.groups.iter().any(|g| *g == s.name),
        });
        let kind_ok = spec.kinds.is_empty()
            || spec
                .kinds
                .iter()
                .any(|k| kinds.iter().any(|c| k.eq_ignore_ascii_case(c)));
        let name_ok = spec.names.is_empty() || spec.names.iter().any(|n| n == name);
        subject && kind_ok && name_ok && now < self.effective_expiry(max)
    }
}

/// The requesting identity, as the apiserver authenticated it.
pub struct Who<'a> {
    pub user: &'a str,
    pub groups: &'a [std::borrow::Cow<'a, str>],
}

/// What a Flux Kustomization or HelmRelease tells the guard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FluxObject {
    /// `spec.serviceAccountName`: Flux impersonates it when set.
    pub service_account: Option<String>,
    /// `spec.sourceRef` (Kustomization) or `spec.chart.spec.sourceRef`, as `Kind ns/name`.
    pub source: Option<String>,
    /// `spec.path` of a Kustomization, or the chart of a HelmRelease.
    pub path: Option<String>,
}

/// A set of view entries fed by one watcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category<'a> {
    Namespaces,
    Grants,
    /// Parents of one resource, e.g. `deployments`.
    ScaleParents(&'a str),
    Flux(OwnerKind),
}

/// `(group, resource, namespace, name)` of a parent of `/scale`.
pub type ScaleKey = (String, String, String, String);

#[derive(Debug, Default)]
pub struct ClusterView {
    namespaces: HashMap<String, NamespaceFacts>,
    grants: HashMap<String, BTreeMap<String, Grant>>,
    scale_parents: HashMap<ScaleKey, ParentMeta>,
    flux: HashMap<(OwnerKind, String, String), FluxObject>,
    synced: bool,
}

/// The ownership-relevant metadata of a scalable parent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParentMeta {
    pub labels: Labels,
    pub annotations: Labels,
}

/// Sizes for the scrape-time gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewSizes {
    pub namespaces: usize,
    pub grants: usize,
    pub scale_parents: usize,
    pub flux_objects: usize,
}

impl ClusterView {
    /// A view that needs no sync (offline `check`, tests).
    pub fn synced() -> Self {
        Self {
            synced: true,
            ..Self::default()
        }
    }

    pub fn is_synced(&self) -> bool {
        self.synced
    }

    pub fn set_synced(&mut self, synced: bool) {
        self.synced = synced;
    }

    pub fn namespace(&self, name: &str) -> Option<&NamespaceFacts> {
        self.namespaces.get(name)
    }

    pub fn upsert_namespace(&mut self, name: String, facts: NamespaceFacts) {
        self.namespaces.insert(name, facts);
    }

    pub fn remove_namespace(&mut self, name: &str) {
        self.namespaces.remove(name);
    }

    pub fn upsert_grant(&mut self, namespace: String, grant: Grant) {
        self.grants
            .entry(namespace)
            .or_default()
            .insert(grant.name.clone(), grant);
    }

    pub fn remove_grant(&mut self, namespace: &str, name: &str) {
        if let Some(grants) = self.grants.get_mut(namespace) {
            grants.remove(name);
            if grants.is_empty() {
                self.grants.remove(namespace);
            }
        }
    }

    pub fn grants_in(&self, namespace: &str) -> impl Iterator<Item = &Grant> {
        self.grants
            .get(namespace)
            .into_iter()
            .flat_map(|g| g.values())
    }

    pub fn upsert_scale_parent(&mut self, key: ScaleKey, meta: ParentMeta) {
        self.scale_parents.insert(key, meta);
    }

    pub fn remove_scale_parent(&mut self, key: &ScaleKey) {
        self.scale_parents.remove(key);
    }

    pub fn scale_parent(
        &self,
        group: &str,
        resource: &str,
        ns: &str,
        name: &str,
    ) -> Option<&ParentMeta> {
        // Owned keys in the map; a borrowed lookup would need a custom Borrow impl.
        let key = (
            group.to_owned(),
            resource.to_owned(),
            ns.to_owned(),
            name.to_owned(),
        );
        self.scale_parents.get(&key)
    }

    pub fn upsert_flux(
        &mut self,
        kind: OwnerKind,
        namespace: String,
        name: String,
        object: FluxObject,
    ) {
        self.flux.insert((kind, namespace, name), object);
    }

    pub fn remove_flux(&mut self, kind: OwnerKind, namespace: &str, name: &str) {
        self.flux
            .remove(&(kind, namespace.to_owned(), name.to_owned()));
    }

    pub fn flux_object(&self, owner: &Owner) -> Option<&FluxObject> {
        self.flux
            .get(&(owner.kind, owner.namespace.clone(), owner.name.clone()))
    }

    /// Forgets one category before a relist re-fills it.
    pub fn clear(&mut self, category: Category<'_>) {
        match category {
            Category::Namespaces => self.namespaces.clear(),
            Category::Grants => self.grants.clear(),
            Category::ScaleParents(resource) => self.scale_parents.retain(|k, _| k.1 != resource),
            Category::Flux(kind) => self.flux.retain(|k, _| k.0 != kind),
        }
    }

    pub fn sizes(&self) -> ViewSizes {
        ViewSizes {
            namespaces: self.namespaces.len(),
            grants: self.grants.values().map(BTreeMap::len).sum(),
            scale_parents: self.scale_parents.len(),
            flux_objects: self.flux.len(),
        }
    }
}
