//! Container image references by the distribution grammar:
//! `[registry[:port]/]path[:tag][@algorithm:hex]`, with Docker Hub's
//! normalisation (`nginx` is `docker.io/library/nginx`).

use std::fmt;

/// What is wrong with an image reference; every message names the reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("image reference is empty")]
    Empty,
    #[error("image reference {reference:?} has no repository name")]
    NoRepository { reference: String },
    #[error("image reference {reference:?}: name is {length} characters, longer than {NAME_MAX}")]
    NameTooLong { reference: String, length: usize },
    #[error("image reference {reference:?}: invalid registry host {host:?}")]
    InvalidRegistry { reference: String, host: String },
    #[error("image reference {reference:?}: invalid port in registry host {host:?}")]
    InvalidPort { reference: String, host: String },
    #[error("image reference {reference:?}: path component {component:?} is not lowercase")]
    Uppercase {
        reference: String,
        component: String,
    },
    #[error("image reference {reference:?}: invalid path component {component:?}: {problem}")]
    InvalidComponent {
        reference: String,
        component: String,
        problem: &'static str,
    },
    #[error(
        "image reference {reference:?}: invalid tag {tag:?} (want [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})"
    )]
    InvalidTag { reference: String, tag: String },
    #[error(
        "image reference {reference:?}: unsupported digest algorithm {algorithm:?} (want sha256 or sha512)"
    )]
    UnsupportedAlgorithm {
        reference: String,
        algorithm: String,
    },
    #[error("image reference {reference:?}: invalid digest {digest:?}: expected {expected}")]
    InvalidDigest {
        reference: String,
        digest: String,
        expected: &'static str,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    text: String,
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

const DOCKER_HUB: &str = "docker.io";
const LEGACY_DOCKER_HUB: &str = "index.docker.io";
const DOCKER_HUB_API: &str = "registry-1.docker.io";
const NAME_MAX: usize = 255;

impl Reference {
    pub fn parse(text: &str) -> Result<Self, ReferenceError> {
        if text.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                check_digest(text, digest)?;
                (rest, Some(digest.to_owned()))
            }
            None => (text, None),
        };
        let (name, tag) = split_tag(rest);
        if let Some(tag) = tag {
            check_tag(text, tag)?;
        }
        if name.len() > NAME_MAX {
            return Err(ReferenceError::NameTooLong {
                reference: text.to_owned(),
                length: name.len(),
            });
        }
        let (registry, path) = split_registry(name);
        if let Some(host) = registry {
            check_registry(text, host)?;
        }
        if path.is_empty() {
            return Err(ReferenceError::NoRepository {
                reference: text.to_owned(),
            });
        }
        for component in path.split('/') {
            check_component(text, component)?;
        }
        let (registry, repository) = normalise(registry, path);
        Ok(Self {
            text: text.to_owned(),
            registry: registry.to_owned(),
            repository,
            tag: tag.map(str::to_owned),
            digest,
        })
    }

    /// The registry as written (`index.docker.io` read as `docker.io`), or
    /// `docker.io` when there is none.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Where the v2 API of the registry answers.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// The path inside the registry: `library/nginx` for `nginx`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    pub fn is_pinned(&self) -> bool {
        self.digest.is_some()
    }

    pub fn tag_or_latest(&self) -> &str {
        self.tag.as_deref().unwrap_or("latest")
    }

    /// The reference as written, with `:latest` made explicit, and `@digest`.
    pub fn pinned(&self, digest: &str) -> String {
        let base = self.text.split('@').next().unwrap_or(&self.text);
        match self.tag {
            Some(_) => format!("{base}@{digest}"),
            None => format!("{base}:latest@{digest}"),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Docker Hub's defaults: no registry means `docker.io`, and a one-component
/// path there lives under `library/`.
fn normalise<'a>(registry: Option<&'a str>, path: &str) -> (&'a str, String) {
    let registry = match registry {
        None | Some(LEGACY_DOCKER_HUB) => DOCKER_HUB,
        Some(r) => r,
    };
    if registry == DOCKER_HUB && !path.contains('/') {
        (registry, format!("library/{path}"))
    } else {
        (registry, path.to_owned())
    }
}

/// A tag is after the last ':' that comes after the last '/'.
fn split_tag(rest: &str) -> (&str, Option<&str>) {
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], rest.get(last_slash + i + 1..)),
        None => (rest, None),
    }
}

/// The first component is a registry if it has a '.' or ':', is
/// `localhost`, or is a bracketed IPv6 address.
fn split_registry(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':']) || first == "localhost" || first.starts_with('[') =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

/// `host[:port]`: DNS labels of letters, digits and inner '-', or `[ipv6]`.
fn check_registry(reference: &str, host: &str) -> Result<(), ReferenceError> {
    let bad = || ReferenceError::InvalidRegistry {
        reference: reference.to_owned(),
        host: host.to_owned(),
    };
    let (name, port) = if let Some(v6) = host.strip_prefix('[') {
        let (addr, after) = v6.split_once(']').ok_or_else(bad)?;
        if addr.is_empty() || !addr.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return Err(bad());
        }
        if !after.is_empty() && !after.starts_with(':') {
            return Err(bad());
        }
        ("v6", after.strip_prefix(':'))
    } else {
        match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(ReferenceError::InvalidPort {
            reference: reference.to_owned(),
            host: host.to_owned(),
        });
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(bad())
    }
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn check_component(reference: &str, component: &str) -> Result<(), ReferenceError> {
    let bad = |problem| ReferenceError::InvalidComponent {
        reference: reference.to_owned(),
        component: component.to_owned(),
        problem,
    };
    if component.is_empty() {
        return Err(bad("it is empty"));
    }
    if component.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(ReferenceError::Uppercase {
            reference: reference.to_owned(),
            component: component.to_owned(),
        });
    }
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    if !bytes.first().is_some_and(alnum) || !bytes.last().is_some_and(alnum) {
        return Err(bad("it must start and end with a letter or digit"));
    }
    // Between runs of letters and digits: '.', '_', '__' or any run of '-'.
    let separators_ok = component
        .split(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        .filter(|sep| !sep.is_empty())
        .all(|sep| sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-'));
    if separators_ok {
        Ok(())
    } else {
        Err(bad(
            "separators are '.', '_', '__' or dashes, between letters or digits",
        ))
    }
}

/// `[\w][\w.-]{0,127}`
fn check_tag(reference: &str, tag: &str) -> Result<(), ReferenceError> {
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    let bytes = tag.as_bytes();
    let ok = bytes.len() <= 128
        && bytes.first().is_some_and(word)
        && bytes.iter().all(|b| word(b) || *b == b'.' || *b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ReferenceError::InvalidTag {
            reference: reference.to_owned(),
            tag: tag.to_owned(),
        })
    }
}

/// `sha256:` + 64 or `sha512:` + 128 lowercase hex characters.
fn check_digest(reference: &str, digest: &str) -> Result<(), ReferenceError> {
    let bad = |expected| ReferenceError::InvalidDigest {
        reference: reference.to_owned(),
        digest: digest.to_owned(),
        expected,
    };
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(bad("algorithm:hex, e.g. sha256:<64 hex characters>"));
    };
    let (length, expected) = match algorithm {
        "sha256" => (64, "64 lowercase hex characters after sha256:"),
        "sha512" => (128, "128 lowercase hex characters after sha512:"),
        _ => {
            return Err(ReferenceError::UnsupportedAlgorithm {
                reference: reference.to_owned(),
                algorithm: algorithm.to_owned(),
            });
        }
    };
    let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    if hex.len() == length && hex.bytes().all(lower_hex) {
        Ok(())
    } else {
        Err(bad(expected))
    }
}

#[cfg(test)]
mod tests;
