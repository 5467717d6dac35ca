//! The pure core of pinning: which image fields a review asks to pin, and
//! the patch, warnings or denial once their digests are known. No I/O.

use json_patch::{Patch, PatchOperation, ReplaceOperation, jsonptr::PointerBuf};

use super::{
    error::ResolveError,
    locate::{Carrier, Container, PinRequest, container_lists, is_update, pod_spec},
    reference::{Reference, ReferenceError},
    settings::{ImagePolicy, PinMode},
};

/// One image field this review should carry pinned.
#[derive(Debug)]
pub struct Wanted<'r> {
    /// JSON pointer of the `image` field.
    pub pointer: String,
    /// The image as written.
    pub text: &'r str,
    pub reference: Result<Reference, ReferenceError>,
}

/// Why an image field was left alone, counted per field.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Untouched {
    pub already_pinned: usize,
    pub skipped: usize,
    pub unchanged: usize,
}

/// The image fields of `req` to pin, and how many were left alone.
pub fn wanted<'r>(req: &'r PinRequest<'r>, policy: &ImagePolicy) -> (Vec<Wanted<'r>>, Untouched) {
    let mut out = Vec::new();
    let mut untouched = Untouched::default();
    let Some(object) = req.object.as_ref() else {
        return (out, untouched);
    };
    let Some((prefix, carrier, spec)) = pod_spec(&req.kind, object) else {
        return (out, untouched);
    };
    let ephemeral_only = match req.sub_resource() {
        "" => false,
        "ephemeralcontainers" => true,
        _ => return (out, untouched),
    };
    // Running Pods: an unchanged image is never touched (it would restart the
    // container), and existing ephemeral containers are immutable.
    let old = match (carrier, is_update(req)) {
        (Carrier::Pod, true) => req.old_object.as_ref().and_then(|o| pod_spec(&req.kind, o)),
        _ => None,
    };
    for (list, containers) in container_lists(spec) {
        if ephemeral_only && list != "ephemeralContainers" {
            continue;
        }
        let before = old.map(|(_, _, spec)| container_lists(spec));
        for (index, container) in containers.iter().enumerate() {
            let Some(text) = container.image.as_deref().filter(|t| !t.is_empty()) else {
                continue;
            };
            let previous = before
                .as_ref()
                .and_then(|lists| lists.iter().find(|(l, _)| *l == list))
                .and_then(|(_, old)| image_of(old, &container.name));
            if previous.is_some_and(|p| p == text) {
                untouched.unchanged += 1;
                continue;
            }
            let reference = Reference::parse(text);
            match &reference {
                Ok(r) if r.is_pinned() => untouched.already_pinned += 1,
                Ok(r) if policy.skips(r.registry(), r.repository()) => untouched.skipped += 1,
                _ => out.push(Wanted {
                    pointer: format!("{prefix}/{list}/{index}/image"),
                    text,
                    reference,
                }),
            }
        }
    }
    (out, untouched)
}

fn image_of<'c>(containers: &'c [Container<'_>], name: &str) -> Option<&'c str> {
    containers
        .iter()
        .find(|c| c.name == name)
        .and_then(|c| c.image.as_deref())
}

/// The outcome of a mutate review, as a bounded label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinReason {
    /// Pinning is off in this namespace.
    Off,
    /// No image needed a digest.
    NothingToPin,
    /// Every wanted image was pinned.
    Pinned,
    /// `pin` mode: some images could not be resolved and stay as they are.
    Unresolved,
    /// `require` mode: some image could not be resolved.
    Denied,
}

impl PinReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::NothingToPin => "nothing-to-pin",
            Self::Pinned => "pinned",
            Self::Unresolved => "unresolved",
            Self::Denied => "denied",
        }
    }
}

/// What the mutating webhook answers.
#[must_use]
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub reason: PinReason,
    /// `(pointer, pinned image)` replacements, in document order.
    pub replacements: Vec<(String, String)>,
    pub warnings: Vec<String>,
    pub denial: Option<String>,
}

impl Plan {
    pub fn nothing(reason: PinReason) -> Self {
        Self {
            reason,
            replacements: Vec::new(),
            warnings: Vec::new(),
            denial: None,
        }
    }

    /// The JSON Patch: one `replace` per image field, never a whole array.
    pub fn patch(&self) -> Result<Patch, String> {
        let ops = self
            .replacements
            .iter()
            .map(|(pointer, value)| {
                let path = PointerBuf::parse(pointer.as_str()).map_err(|e| e.to_string())?;
                Ok(PatchOperation::Replace(ReplaceOperation {
                    path,
                    value: serde_json::Value::String(value.clone()),
                }))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Patch(ops))
    }
}

/// At most this many images are named in one warning list or denial.
const NAMED: usize = 5;

/// Builds the answer once each wanted image's digest (or error) is known.
/// `digest_of` answers for a reference's text.
pub fn finish<'d>(
    mode: PinMode,
    wanted: &[Wanted<'_>],
    digest_of: impl Fn(&str) -> Option<Result<&'d str, &'d ResolveError>>,
) -> Plan {
    let mut plan = Plan::nothing(PinReason::NothingToPin);
    let mut failures: Vec<String> = Vec::new();
    for item in wanted {
        let failure = match &item.reference {
            Err(e) => format!("{e}"),
            Ok(reference) => match digest_of(item.text) {
                Some(Ok(digest)) => {
                    plan.replacements
                        .push((item.pointer.clone(), reference.pinned(digest)));
                    continue;
                }
                Some(Err(e)) => format!("image {:?}: {e}", item.text),
                None => format!("image {:?}: not resolved before the deadline", item.text),
            },
        };
        if !failures.contains(&failure) {
            failures.push(failure);
        }
    }
    plan.reason = match (failures.is_empty(), plan.replacements.is_empty()) {
        (true, true) => PinReason::NothingToPin,
        (true, false) => PinReason::Pinned,
        (false, _) if mode == PinMode::Require => PinReason::Denied,
        (false, _) => PinReason::Unresolved,
    };
    match plan.reason {
        PinReason::Denied => {
            plan.replacements.clear();
            plan.denial = Some(format!(
                "gitops-guard: this namespace requires images pinned to a digest, and {}",
                listed(&failures)
            ));
        }
        PinReason::Unresolved => {
            plan.warnings = failures
                .iter()
                .take(NAMED)
                .map(|f| format!("gitops-guard: not pinned, left as written: {f}"))
                .collect();
            if failures.len() > NAMED {
                let more = failures.len() - NAMED;
                plan.warnings
                    .push(format!("gitops-guard: {more} more images not pinned"));
            }
        }
        _ => {}
    }
    plan
}

fn listed(failures: &[String]) -> String {
    let mut text = failures
        .iter()
        .take(NAMED)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if failures.len() > NAMED {
        text.push_str(&format!("; and {} more", failures.len() - NAMED));
    }
    text
}

/// For the validating webhook in `require` namespaces: the wanted images
/// (new or changed, not pinned, not skipped) are a denial.
pub fn unpinned_denial(wanted: &[Wanted<'_>]) -> Option<String> {
    if wanted.is_empty() {
        return None;
    }
    let images: Vec<String> = wanted.iter().map(|w| format!("{:?}", w.text)).collect();
    Some(format!(
        "gitops-guard: this namespace requires images pinned to a digest (repo:tag@sha256:…); \
         not pinned: {}. The mutating webhook pins them when it can reach the registry.",
        listed(&images)
    ))
}

#[cfg(test)]
mod tests;
