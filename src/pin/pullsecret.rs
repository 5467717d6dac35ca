//! Registry credentials from Kubernetes pull secrets (`.dockerconfigjson`
//! and legacy `.dockercfg`), matched to an image like the kubelet's keyring:
//! scheme ignored, optional port and path prefix, `*` for one DNS label in
//! the host, Docker Hub's aliases, the most specific entry first.

use std::{collections::BTreeMap, fmt};

use base64::{Engine, engine::general_purpose::STANDARD};
use serde::Deserialize;
use sha2::{Digest, Sha256};

#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    Basic {
        username: String,
        password: String,
    },
    /// An OAuth2 refresh token for the registry's token service.
    IdentityToken {
        username: String,
        token: String,
    },
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, username) = match self {
            Self::Basic { username, .. } => ("Basic", username),
            Self::IdentityToken { username, .. } => ("IdentityToken", username),
        };
        write!(f, "{kind} {{ username: {username:?}, secret: <redacted> }}")
    }
}

impl Credential {
    /// Stable and not reversible: tells credentials apart in cache keys.
    pub fn identity(&self) -> String {
        let (kind, user, secret) = match self {
            Self::Basic { username, password } => ("basic", username, password),
            Self::IdentityToken { username, token } => ("token", username, token),
        };
        let hash = Sha256::digest(format!("{kind}\0{user}\0{secret}").as_bytes());
        let hex: String = hash.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PullSecretError {
    #[error("{format} is not valid JSON: {source}")]
    Json {
        format: &'static str,
        source: serde_json::Error,
    },
    #[error("entry {key:?}: `auth` is not base64")]
    Base64 { key: String },
    #[error("entry {key:?}: `auth` is not user:password")]
    NoColon { key: String },
}

#[derive(Deserialize)]
struct ConfigJson {
    #[serde(default)]
    auths: BTreeMap<String, Entry>,
}

#[derive(Deserialize, Default)]
struct Entry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// A matcher of one keyring entry: host (maybe with `*` labels), port, path.
#[derive(Debug, Clone)]
struct Pattern {
    host: String,
    port: Option<String>,
    path: String,
}

#[derive(Debug, Clone, Default)]
pub struct Keyring {
    entries: Vec<(Pattern, Credential)>,
}

impl Keyring {
    pub fn from_dockerconfigjson(bytes: &[u8]) -> Result<Self, PullSecretError> {
        let config: ConfigJson =
            serde_json::from_slice(bytes).map_err(|source| PullSecretError::Json {
                format: ".dockerconfigjson",
                source,
            })?;
        Self::from_entries(config.auths)
    }

    pub fn from_dockercfg(bytes: &[u8]) -> Result<Self, PullSecretError> {
        let entries: BTreeMap<String, Entry> =
            serde_json::from_slice(bytes).map_err(|source| PullSecretError::Json {
                format: ".dockercfg",
                source,
            })?;
        Self::from_entries(entries)
    }

    fn from_entries(entries: BTreeMap<String, Entry>) -> Result<Self, PullSecretError> {
        let mut keyring = Self::default();
        for (key, entry) in entries {
            if let Some(credential) = credential(&key, entry)? {
                keyring.entries.push((pattern(&key), credential));
            }
        }
        Ok(keyring)
    }

    /// Appends `other`'s entries: on equal specificity the earlier wins.
    pub fn extend(&mut self, other: Keyring) {
        self.entries.extend(other.entries);
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The credential for an image of `registry` (as in a reference:
    /// `docker.io`, `ghcr.io`, `127.0.0.1:5000`) and `repository`.
    pub fn lookup(&self, registry: &str, repository: &str) -> Option<&Credential> {
        let (host, port) = split_port(registry);
        let hub = is_docker_hub(host);
        let mut best: Option<(usize, &Credential)> = None;
        for (p, credential) in &self.entries {
            let host_ok = if hub {
                is_docker_hub(&p.host)
            } else {
                glob_host(&p.host, host)
            };
            let path_ok = p.path.is_empty()
                || repository == p.path
                || repository
                    .strip_prefix(p.path.as_str())
                    .is_some_and(|rest| rest.starts_with('/'));
            if host_ok && p.port.as_deref() == port && path_ok {
                let score = p.host.len() + p.path.len() + usize::from(p.port.is_some());
                if best.is_none_or(|(s, _)| score > s) {
                    best = Some((score, credential));
                }
            }
        }
        best.map(|(_, c)| c)
    }
}

fn credential(key: &str, entry: Entry) -> Result<Option<Credential>, PullSecretError> {
    let (mut username, mut password) = (entry.username, entry.password);
    if let Some(auth) = entry.auth.filter(|a| !a.is_empty()) {
        let decoded = STANDARD
            .decode(auth.trim())
            .map_err(|_| PullSecretError::Base64 { key: key.into() })?;
        let text =
            String::from_utf8(decoded).map_err(|_| PullSecretError::Base64 { key: key.into() })?;
        let (u, p) = text
            .split_once(':')
            .ok_or_else(|| PullSecretError::NoColon { key: key.into() })?;
        username = Some(u.to_owned());
        password = Some(p.to_owned());
    }
    let username = username.unwrap_or_default();
    Ok(
        match (entry.identitytoken.filter(|t| !t.is_empty()), password) {
            (Some(token), _) => Some(Credential::IdentityToken { username, token }),
            (None, Some(password)) => Some(Credential::Basic { username, password }),
            (None, None) => None,
        },
    )
}

fn pattern(key: &str) -> Pattern {
    let key = key
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let (authority, path) = key.split_once('/').unwrap_or((key, ""));
    let (host, port) = split_port(authority);
    // The legacy Docker Hub key names the API version, not a repository path.
    let path = if is_docker_hub(host) && (path == "v1" || path == "v2") {
        ""
    } else {
        path
    };
    Pattern {
        host: host.to_ascii_lowercase(),
        port: port.map(str::to_owned),
        path: path.to_owned(),
    }
}

fn split_port(authority: &str) -> (&str, Option<&str>) {
    match authority.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            (host, Some(port))
        }
        _ => (authority, None),
    }
}

fn is_docker_hub(host: &str) -> bool {
    matches!(
        host,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    )
}

/// `*` matches exactly one DNS label; label counts must agree.
fn glob_host(pattern: &str, host: &str) -> bool {
    let (p, h): (Vec<&str>, Vec<&str>) = (pattern.split('.').collect(), host.split('.').collect());
    p.len() == h.len()
        && p.iter()
            .zip(&h)
            .all(|(p, h)| *p == "*" || p.eq_ignore_ascii_case(h))
}

#[cfg(test)]
#[path = "pullsecret_tests.rs"]
mod tests;
