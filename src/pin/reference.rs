//! Container image references by the distribution grammar:
//! `[registry[:port]/]path[:tag][@algorithm:hex]`, with Docker Hub's
//! normalisation (`nginx` is `docker.io/library/nginx`).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("image reference is empty")]
    Empty,
    #[error("image reference {text:?}: {problem}")]
    Invalid { text: String, problem: String },
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
const DOCKER_HUB_API: &str = "registry-1.docker.io";
const NAME_MAX: usize = 255;

impl Reference {
    pub fn parse(text: &str) -> Result<Self, ReferenceError> {
        if text.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let invalid = |problem: String| ReferenceError::Invalid {
            text: text.to_owned(),
            problem,
        };
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                check_digest(digest).map_err(invalid)?;
                (rest, Some(digest.to_owned()))
            }
            None => (text, None),
        };
        // A tag is after the last ':' that comes after the last '/'.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (&rest[..at], Some(&rest[at + 1..]))
            }
            None => (rest, None),
        };
        if let Some(tag) = tag {
            check_tag(tag).map_err(invalid)?;
        }
        if name.len() > NAME_MAX {
            return Err(invalid(format!("name longer than {NAME_MAX} characters")));
        }
        let (registry, path) = split_registry(name);
        if let Some(registry) = registry {
            check_registry(registry).map_err(invalid)?;
        }
        if path.is_empty() {
            return Err(invalid("no repository name".into()));
        }
        for component in path.split('/') {
            check_component(component).map_err(invalid)?;
        }
        let registry = match registry {
            None | Some("index.docker.io") => DOCKER_HUB,
            Some(r) => r,
        };
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_owned()
        };
        Ok(Self {
            text: text.to_owned(),
            registry: registry.to_owned(),
            repository,
            tag: tag.map(str::to_owned),
            digest,
        })
    }

    /// The registry as written, or `docker.io`.
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

/// The first component is a registry if it has a '.' or ':' or is `localhost`.
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

fn check_registry(host: &str) -> Result<(), String> {
    let bad = || format!("invalid registry host {host:?}");
    let (name, port) = if let Some(v6) = host.strip_prefix('[') {
        let (addr, after) = v6.split_once(']').ok_or_else(bad)?;
        if addr.is_empty() || !addr.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
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
        return Err(format!("invalid port in registry host {host:?}"));
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
fn check_component(component: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("path component {component:?} {why}"));
    if component.is_empty() {
        return bad("is empty");
    }
    if component.bytes().any(|b| b.is_ascii_uppercase()) {
        return bad("has uppercase letters (repository names are lowercase)");
    }
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return bad("must start and end with a letter or digit");
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return bad(&format!("has an invalid separator {sep:?}"));
        }
    }
    Ok(())
}

/// `[\w][\w.-]{0,127}`
fn check_tag(tag: &str) -> Result<(), String> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 128
        && word(bytes[0])
        && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!("invalid tag {tag:?}"))
    }
}

fn check_digest(digest: &str) -> Result<(), String> {
    let bad = || Err(format!("invalid digest {digest:?}"));
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return bad();
    };
    let length = match algorithm {
        "sha256" => 64,
        "sha512" => 128,
        _ => return Err(format!("unsupported digest algorithm {algorithm:?}")),
    };
    let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    if hex.len() == length && hex.bytes().all(lower_hex) {
        Ok(())
    } else {
        bad()
    }
}

#[cfg(test)]
#[path = "reference_tests.rs"]
mod tests;
