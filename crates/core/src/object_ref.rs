//! One object, named the way the API serves it: group, plural resource,
//! namespace (empty for cluster-scoped objects) and name. The journal of
//! admitted changes and the drift watcher key objects by it, so the two
//! agree on which object is which without formatting strings.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    /// `""` for the core group.
    pub group: String,
    /// The plural resource (`deployments`).
    pub resource: String,
    /// `""` for a cluster-scoped object.
    pub namespace: String,
    pub name: String,
}

impl ObjectRef {
    pub fn new(group: &str, resource: &str, namespace: &str, name: &str) -> Self {
        Self {
            group: group.to_owned(),
            resource: resource.to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }
}

impl ObjectRef {
    /// `deployments.apps`, or `configmaps` for the core group: how kubectl
    /// and alerts name the resource.
    pub fn resource_label(&self) -> String {
        match self.group.as_str() {
            "" => self.resource.clone(),
            group => format!("{}.{group}", self.resource),
        }
    }
}

/// `group/resource/namespace/name`: the key of the object's alerts.
impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            group,
            resource,
            namespace,
            name,
        } = self;
        write!(f, "{group}/{resource}/{namespace}/{name}")
    }
}

/// Reads back what `Display` wrote (`group/resource/namespace/name`; no part
/// of a Kubernetes object's coordinates holds a `/`).
impl std::str::FromStr for ObjectRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.splitn(4, '/');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(group), Some(resource), Some(namespace), Some(name))
                if !resource.is_empty() && !name.is_empty() && !name.contains('/') =>
            {
                Ok(Self::new(group, resource, namespace, name))
            }
            _ => Err(format!(
                "{s:?} is not group/resource/namespace/name with a resource and a name"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ObjectRef;

    #[test]
    fn an_object_ref_reads_back_what_it_wrote() {
        for object in [
            ObjectRef::new("", "configmaps", "shop", "web-config"),
            ObjectRef::new("apps", "deployments", "prod", "web"),
            ObjectRef::new("", "namespaces", "", "prod"),
        ] {
            assert_eq!(object.to_string().parse::<ObjectRef>(), Ok(object));
        }
        for bad in [
            "",
            "apps/deployments/prod",
            "apps//prod/web",
            "apps/deployments/prod/",
        ] {
            assert!(bad.parse::<ObjectRef>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_core_group_object_keys_its_alerts_with_an_empty_group() {
        let cm = ObjectRef::new("", "configmaps", "shop", "web-config");
        assert_eq!(cm.to_string(), "/configmaps/shop/web-config");
    }

    #[test]
    fn the_same_name_in_two_namespaces_is_two_objects() {
        let a = ObjectRef::new("apps", "deployments", "a", "web");
        let b = ObjectRef::new("apps", "deployments", "b", "web");
        assert_ne!(a, b);
    }
}
