//! Registry credentials from Kubernetes pull secrets (`.dockerconfigjson`
//! and legacy `.dockercfg`), matched to an image like the kubelet's keyring:
//! scheme ignored, optional port and path prefix, `*` for one DNS label in
//! the host, Docker Hub's aliases, the most specific entry first.

use std::{collections::BTreeMap, fmt};

use base64::{
    Engine, alphabet,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
};
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

/// Stands in for a secret in `Debug` output.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, username, secret) = match self {
            Self::Basic { username, .. } => ("Basic", username, "password"),
            Self::IdentityToken { username, .. } => ("IdentityToken", username, "token"),
        };
        f.debug_struct(kind)
            .field("username", username)
            .field(secret, &Redacted)
            .finish()
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

/// Errors name the format and the registry key, never a value: serde_json's
/// own messages quote the offending value, which may be a password.
#[derive(Debug, thiserror::Error)]
pub enum PullSecretError {
    #[error("{format} is not {problem} (line {line}, column {column})")]
    Json {
        format: &'static str,
        problem: &'static str,
        line: usize,
        column: usize,
    },
    #[error("entry {key:?}: `auth` is not base64")]
    Base64 { key: String },
    #[error("entry {key:?}: `auth` does not decode to UTF-8 text")]
    NotText { key: String },
    #[error("entry {key:?}: `auth` is not user:password (no ':')")]
    NoColon { key: String },
}

impl PullSecretError {
    fn json(format: &'static str, e: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        let problem = match e.classify() {
            Category::Io | Category::Syntax | Category::Eof => "valid JSON",
            Category::Data => "in the expected shape (a map of registry to auth entry)",
        };
        Self::Json {
            format,
            problem,
            line: e.line(),
            column: e.column(),
        }
    }
}

/// Standard base64, padded or not.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[derive(Deserialize)]
struct ConfigJson {
    #[serde(default)]
    auths: BTreeMap<String, Entry>,
}

/// One entry; a missing field is `None`, unknown fields are ignored.
#[derive(Deserialize)]
struct Entry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

/// A matcher of one keyring entry: host (with `*`/`?` wildcards), port, path.
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
        let config: ConfigJson = serde_json::from_slice(bytes)
            .map_err(|e| PullSecretError::json(".dockerconfigjson", &e))?;
        Self::from_entries(config.auths)
    }

    pub fn from_dockercfg(bytes: &[u8]) -> Result<Self, PullSecretError> {
        let entries: BTreeMap<String, Entry> =
            serde_json::from_slice(bytes).map_err(|e| PullSecretError::json(".dockercfg", &e))?;
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
        let mut best: Option<(usize, &Credential)> = None;
        for (pattern, credential) in &self.entries {
            if pattern.matches(host, port, repository) {
                let score = pattern.specificity();
                if best.is_none_or(|(s, _)| score > s) {
                    best = Some((score, credential));
                }
            }
        }
        best.map(|(_, c)| c)
    }
}

impl Pattern {
    fn matches(&self, host: &str, port: Option<&str>, repository: &str) -> bool {
        let host_ok = if is_docker_hub(host) {
            is_docker_hub(&self.host)
        } else {
            glob_host(&self.host, host)
        };
        let path_ok = self.path.is_empty()
            || repository == self.path
            || repository
                .strip_prefix(self.path.as_str())
                .is_some_and(|rest| rest.starts_with('/'));
        host_ok && self.port.as_deref() == port && path_ok
    }

    /// Literal characters: wildcards count for nothing, and Docker Hub's
    /// aliases count the same, so spelling does not decide between sources.
    fn specificity(&self) -> usize {
        let host = if is_docker_hub(&self.host) {
            "docker.io".len()
        } else {
            self.host
                .bytes()
                .filter(|b| !matches!(b, b'*' | b'?'))
                .count()
        };
        host + self.path.len() + usize::from(self.port.is_some())
    }
}

fn credential(key: &str, entry: Entry) -> Result<Option<Credential>, PullSecretError> {
    let (mut username, mut password) = (entry.username, entry.password);
    if let Some(auth) = entry.auth.filter(|a| !a.is_empty()) {
        let decoded = BASE64
            .decode(auth.trim())
            .map_err(|_| PullSecretError::Base64 { key: key.into() })?;
        let text =
            String::from_utf8(decoded).map_err(|_| PullSecretError::NotText { key: key.into() })?;
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

/// Label by label, as the kubelet does: label counts must agree, and in a
/// label `*` matches any run of characters and `?` one character.
fn glob_host(pattern: &str, host: &str) -> bool {
    pattern.split('.').count() == host.split('.').count()
        && pattern
            .split('.')
            .zip(host.split('.'))
            .all(|(p, h)| glob_label(p.as_bytes(), h.as_bytes()))
}

/// Wildcard match in linear time (a pull secret is user input): on a
/// mismatch, let the last `*` swallow one more character and retry.
fn glob_label(pattern: &[u8], label: &[u8]) -> bool {
    let (mut p, mut l) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while let Some(&c) = label.get(l) {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p + 1, l));
                p += 1;
            }
            Some(&x) if x == b'?' || x.eq_ignore_ascii_case(&c) => {
                p += 1;
                l += 1;
            }
            _ => match star {
                Some((after, from)) => {
                    star = Some((after, from + 1));
                    (p, l) = (after, from + 1);
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|&b| b == b'*'))
}

#[cfg(test)]
mod tests;
