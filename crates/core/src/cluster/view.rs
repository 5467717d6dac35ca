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

use super::{
    breakglass::{BreakGlassSpec, SubjectKind},
    by_namespace::ByNamespace,
    identities::Identities,
};
use crate::{
    admission::review::OwnerReference,
    guard::ownership::{Owner, OwnerKind},
};

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
    /// `spec.sourceRef` (Kustomization), `spec.chart.spec.sourceRef` or
    /// `spec.chartRef` (HelmRelease).
    pub source: Option<SourceRef>,
    /// `spec.path` of a Kustomization, or the chart of a HelmRelease.
    pub path: Option<String>,
    /// `spec.targetNamespace` and `spec.storageNamespace`: namespaces it
    /// writes into besides its own.
    pub targets: Vec<String>,
}

/// A Flux source an object applies from: `GitRepository flux-system/fleet`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRef {
    pub kind: String,
    /// Absent: the referring object's own namespace.
    pub namespace: Option<String>,
    pub name: String,
}

impl std::fmt::Display for SourceRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// A set of view entries fed by one watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Category {
    Namespaces,
    Grants,
    /// The parents of one resource (`deployments`, `services`, ...).
    Parents(String),
    Flux(OwnerKind),
    ServiceAccounts,
    /// The Pods of one controller namespace.
    ControllerPods(String),
}

/// A kind of parent: an object that others are derived from (their
/// ownerReference with `controller: true` names it), or whose `/scale` is
/// written. The view keeps the ownership metadata of every object of these
/// kinds (`policy.derived`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParentKind {
    /// `""` for the core group.
    #[serde(default)]
    pub group: String,
    pub version: String,
    pub kind: String,
    /// The plural resource name (`deployments`).
    pub resource: String,
}

impl ParentKind {
    pub fn new(group: &str, version: &str, kind: &str, resource: &str) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            resource: resource.into(),
        }
    }
}

/// The objects of one parent kind.
#[derive(Debug)]
struct ParentIndex {
    kind: ParentKind,
    objects: ByNamespace<ParentMeta>,
}

/// What the view knows of the parent a controller reference names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParentLookup<'v> {
    /// That very object (same uid).
    Found(&'v ParentMeta),
    /// A kind the view keeps, but no object of that name and uid: not yet
    /// seen, gone, or never there.
    Missing,
    /// A kind the view does not keep.
    Unwatched,
}

#[derive(Debug, Default)]
pub struct ClusterView {
    namespaces: HashMap<String, NamespaceFacts>,
    grants: ByNamespace<Grant>,
    /// One index per parent kind; there are only a handful.
    parents: Vec<ParentIndex>,
    flux: HashMap<OwnerKind, ByNamespace<FluxObject>>,
    /// Service accounts and controller Pods, for the tenant rules.
    pub identities: Identities,
    synced: bool,
}

/// The ownership-relevant metadata of a parent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParentMeta {
    pub uid: String,
    pub labels: Labels,
    pub annotations: Labels,
}

/// Sizes for the scrape-time gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewSizes {
    pub namespaces: usize,
    pub grants: usize,
    pub parents: usize,
    pub flux_objects: usize,
    pub service_accounts: usize,
    pub controller_pods: usize,
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
        self.grants.insert(namespace, grant.name.clone(), grant);
    }

    pub fn remove_grant(&mut self, namespace: &str, name: &str) {
        self.grants.remove(namespace, name);
    }

    pub fn grants_in(&self, namespace: &str) -> impl Iterator<Item = &Grant> {
        self.grants.in_namespace(namespace)
    }

    pub fn upsert_parent(&mut self, kind: &ParentKind, ns: String, name: String, meta: ParentMeta) {
        let found = self.parents.iter_mut().find(|p| p.kind == *kind);
        let index = match found {
            Some(index) => index,
            None => {
                self.parents.push(ParentIndex {
                    kind: kind.clone(),
                    objects: ByNamespace::default(),
                });
                let last = self.parents.len() - 1;
                &mut self.parents[last]
            }
        };
        index.objects.insert(ns, name, meta);
    }

    pub fn remove_parent(&mut self, kind: &ParentKind, ns: &str, name: &str) {
        if let Some(index) = self.parents.iter_mut().find(|p| p.kind == *kind) {
            index.objects.remove(ns, name);
        }
    }

    /// The parent whose `/scale` a request writes, by resource.
    pub fn parent(&self, group: &str, resource: &str, ns: &str, name: &str) -> Option<&ParentMeta> {
        let index = self
            .parents
            .iter()
            .find(|p| p.kind.group == group && p.kind.resource == resource)?;
        index.objects.get(ns, name)
    }

    /// The parent a controller reference in namespace `ns` names. Only that
    /// very object counts: a parent recreated under the same name has
    /// another uid, and a reference to it is stale or forged.
    pub fn referenced_parent(&self, ns: &str, reference: &OwnerReference<'_>) -> ParentLookup<'_> {
        let group = reference
            .api_version
            .rsplit_once('/')
            .map_or("", |(group, _)| group);
        let index = self
            .parents
            .iter()
            .find(|p| p.kind.group == group && p.kind.kind == reference.kind);
        let Some(index) = index else {
            return ParentLookup::Unwatched;
        };
        match index.objects.get(ns, &reference.name) {
            Some(meta) if meta.uid == reference.uid => ParentLookup::Found(meta),
            _ => ParentLookup::Missing,
        }
    }

    pub fn upsert_flux(
        &mut self,
        kind: OwnerKind,
        namespace: String,
        name: String,
        object: FluxObject,
    ) {
        self.flux
            .entry(kind)
            .or_default()
            .insert(namespace, name, object);
    }

    pub fn remove_flux(&mut self, kind: OwnerKind, namespace: &str, name: &str) {
        if let Some(index) = self.flux.get_mut(&kind) {
            index.remove(namespace, name);
        }
    }

    /// The Kustomizations and HelmReleases of one namespace.
    pub fn flux_in(&self, namespace: &str) -> impl Iterator<Item = (OwnerKind, &str, &FluxObject)> {
        self.flux.iter().flat_map(move |(kind, index)| {
            let names = index.entries(namespace);
            names.map(move |(name, object)| (*kind, name.as_str(), object))
        })
    }

    /// The Flux objects that live in `namespace` or write into it
    /// (`targetNamespace`, `storageNamespace`): (kind, their namespace, name).
    /// Scans every Flux object: asked only when a namespace changes tenant.
    pub fn flux_using<'v>(
        &'v self,
        namespace: &'v str,
    ) -> impl Iterator<Item = (OwnerKind, &'v str, &'v str)> + 'v {
        let living = self
            .flux_in(namespace)
            .map(move |(k, n, _)| (k, namespace, n));
        let targeting = self.flux.iter().flat_map(move |(kind, index)| {
            index
                .all()
                .filter(move |(_, _, o)| o.targets.iter().any(|t| t == namespace))
                .map(move |(ns, name, _)| (*kind, ns, name))
        });
        living.chain(targeting)
    }

    /// Every namespace's name, sorted.
    pub fn namespace_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.namespaces.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// The tenant a namespace belongs to: the value of its `label`.
    pub fn tenant_of(&self, label: &str, namespace: &str) -> Option<&str> {
        let value = self.namespaces.get(namespace)?.labels.get(label)?;
        Some(value.as_str()).filter(|v| !v.is_empty())
    }

    pub fn flux_object(&self, owner: &Owner) -> Option<&FluxObject> {
        self.flux
            .get(&owner.kind)?
            .get(&owner.namespace, &owner.name)
    }

    /// Forgets one category before a relist re-fills it.
    pub fn clear(&mut self, category: Category) {
        match category {
            Category::Namespaces => self.namespaces.clear(),
            Category::Grants => self.grants = ByNamespace::default(),
            Category::Parents(resource) => self.parents.retain(|p| p.kind.resource != *resource),
            Category::Flux(kind) => {
                self.flux.remove(&kind);
            }
            Category::ServiceAccounts => self.identities.clear_service_accounts(),
            Category::ControllerPods(namespace) => self.identities.clear_pods(&namespace),
        }
    }

    pub fn sizes(&self) -> ViewSizes {
        ViewSizes {
            namespaces: self.namespaces.len(),
            grants: self.grants.len(),
            parents: self.parents.iter().map(|p| p.objects.len()).sum(),
            flux_objects: self.flux.values().map(ByNamespace::len).sum(),
            service_accounts: self.identities.sizes().0,
            controller_pods: self.identities.sizes().1,
        }
    }
}
