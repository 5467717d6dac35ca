//! The `images` section of the policy file: where and how tags are pinned.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use serde::Deserialize;

use crate::policy::de_duration;

/// Per namespace, by the label `gitops-guard.io/pin-images`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PinMode {
    /// Images are left as they are.
    Off,
    /// Fail-open: an image that cannot be resolved stays as it is, with a warning.
    Pin,
    /// Fail-closed: an image that cannot be resolved is denied, and the
    /// validating webhook denies unpinned images.
    Require,
}

impl PinMode {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "off" => Some(Self::Off),
            "pin" => Some(Self::Pin),
            "require" => Some(Self::Require),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Pin => "pin",
            Self::Require => "require",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ImagePolicy {
    /// Mode of namespaces without the label.
    pub default_mode: PinMode,
    /// Namespace label choosing the mode (`off`, `pin`, `require`).
    pub mode_label: String,
    /// Never pinned: registry hosts (`registry.k8s.io`) or prefixes of the
    /// normalised `registry/repository` (`docker.io/library/busybox`).
    pub skip: Vec<String>,
    /// `namespace/name` of dockerconfigjson Secrets tried after the Pod's own
    /// and its service account's pull secrets.
    pub pull_secrets: Vec<String>,
    /// Settings by registry host[:port] as written in image references.
    pub registries: BTreeMap<String, RegistrySettings>,
    /// Longest time one registry request (token included) may take.
    #[serde(deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// Upper bound on the whole mutation, kept below the webhook's
    /// `timeoutSeconds` (the apiserver's `?timeout=` lowers it further).
    #[serde(deserialize_with = "de_duration")]
    pub deadline: Duration,
    pub cache: CacheSettings,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RegistrySettings {
    /// Talk plain HTTP to this registry (local registries only).
    pub plain_http: bool,
    /// PEM bundle of extra CA certificates trusted for this registry.
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct CacheSettings {
    /// Entries kept at most (least recently used go first).
    pub size: usize,
    /// How long a resolved digest is served without asking the registry.
    #[serde(deserialize_with = "de_duration")]
    pub ttl: Duration,
    /// How long a failure is served before the registry is asked again.
    #[serde(deserialize_with = "de_duration")]
    pub negative_ttl: Duration,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            size: 10_000,
            ttl: Duration::from_secs(300),
            negative_ttl: Duration::from_secs(10),
        }
    }
}

impl Default for ImagePolicy {
    fn default() -> Self {
        Self {
            default_mode: PinMode::Off,
            mode_label: "gitops-guard.io/pin-images".to_owned(),
            skip: Vec::new(),
            pull_secrets: Vec::new(),
            registries: BTreeMap::new(),
            timeout: Duration::from_secs(3),
            deadline: Duration::from_secs(8),
            cache: CacheSettings::default(),
        }
    }
}

impl ImagePolicy {
    /// The namespace's label, else the default; an unknown value pins (fail-open).
    pub fn mode(&self, labels: Option<&BTreeMap<String, String>>) -> PinMode {
        match labels.and_then(|l| l.get(&self.mode_label)) {
            Some(value) => PinMode::parse(value).unwrap_or(PinMode::Pin),
            None => self.default_mode,
        }
    }

    /// True when `registry/repository` is on the skip list.
    pub fn skips(&self, registry: &str, repository: &str) -> bool {
        self.skip.iter().any(|entry| {
            let entry = entry.trim_end_matches('/');
            match entry.split_once('/') {
                None => entry == registry,
                Some((host, prefix)) => {
                    host == registry
                        && (repository == prefix
                            || repository
                                .strip_prefix(prefix)
                                .is_some_and(|rest| rest.starts_with('/')))
                }
            }
        })
    }

    pub(crate) fn validate(&self) -> Result<(), (String, String)> {
        if self.mode_label.is_empty() {
            return Err(("images.modeLabel".into(), "must not be empty".into()));
        }
        if self.cache.size == 0 {
            return Err(("images.cache.size".into(), "must be at least 1".into()));
        }
        if self.timeout.is_zero() || self.timeout > self.deadline {
            return Err((
                "images.timeout".into(),
                "must be above zero and at most images.deadline".into(),
            ));
        }
        if self.deadline > Duration::from_secs(29) {
            return Err((
                "images.deadline".into(),
                "must be below 30s (webhooks time out at 30s at most)".into(),
            ));
        }
        for (i, entry) in self.pull_secrets.iter().enumerate() {
            if entry
                .split_once('/')
                .is_none_or(|(ns, n)| ns.is_empty() || n.is_empty())
            {
                let path = format!("images.pullSecrets[{i}]");
                return Err((path, format!("{entry:?} is not namespace/name")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skip_entry_matches_a_whole_registry_or_a_path_prefix() {
        let policy = ImagePolicy {
            skip: vec!["registry.k8s.io".into(), "docker.io/library/busybox".into()],
            ..ImagePolicy::default()
        };
        assert!(policy.skips("registry.k8s.io", "pause"));
        assert!(policy.skips("docker.io", "library/busybox"));
        assert!(!policy.skips("docker.io", "library/busyboxer"));
        assert!(!policy.skips("docker.io", "library/nginx"));
        assert!(!policy.skips("registry.k8s.io.evil", "pause"));
    }

    #[test]
    fn an_unknown_label_value_pins_rather_than_switching_pinning_off() {
        let policy = ImagePolicy::default();
        let labels = [("gitops-guard.io/pin-images".to_owned(), "yes".to_owned())]
            .into_iter()
            .collect();
        assert_eq!(policy.mode(Some(&labels)), PinMode::Pin);
        assert_eq!(policy.mode(None), PinMode::Off);
    }
}
