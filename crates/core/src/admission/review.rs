//! Decoding an AdmissionReview into a typed, borrowed view.
//!
//! Only what the decision needs is decoded; everything else in `object` and
//! `oldObject` (spec, status, managedFields) is skipped by the parser without
//! being built, and strings borrow from the request body where they can.
//! The nesting bound for the skipped parts is checked first (`super::depth`).

use std::borrow::Cow;

use serde::Deserialize;

use super::depth;
pub use super::object::{Metadata, ObjectView, OwnerReference, StrMap};

const API_VERSION: &str = "admission.k8s.io/v1";

/// Why a body is not a usable AdmissionReview. Each is counted by `cause()`.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("empty request body")]
    Empty,
    #[error("request body is not a valid AdmissionReview: {0}")]
    Json(#[from] serde_json::Error),
    #[error("request body is not a valid AdmissionReview: JSON nested deeper than {0} levels")]
    TooDeep(usize),
    #[error("unsupported apiVersion {0:?}: only admission.k8s.io/v1 is served")]
    ApiVersion(String),
    #[error("AdmissionReview has no request")]
    NoRequest,
    #[error("AdmissionReview request has no uid")]
    NoUid,
}

impl DecodeError {
    /// A bounded label for metrics.
    pub fn cause(&self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::Json(_) | Self::TooDeep(_) => "json",
            Self::ApiVersion(_) => "api-version",
            Self::NoRequest => "no-request",
            Self::NoUid => "no-uid",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a, R> {
    #[serde(borrow, default)]
    api_version: Option<Cow<'a, str>>,
    #[serde(default = "Option::default")]
    request: Option<R>,
}

/// A request view decoded from a review: each webhook reads its own.
pub trait ReviewRequest<'a> {
    fn uid(&self) -> &str;
    /// Keeps the whole review body, for rules that compare the full old and
    /// new objects (`guard::compat`), which parse it only when they run.
    fn keep_body(&mut self, _body: &'a [u8]) {}
}

impl<'a> ReviewRequest<'a> for Request<'a> {
    fn uid(&self) -> &str {
        &self.uid
    }

    fn keep_body(&mut self, body: &'a [u8]) {
        self.body = Body(body);
    }
}

/// Decodes a review body (JSON). YAML input is converted by the caller.
pub fn decode(body: &[u8]) -> Result<Request<'_>, DecodeError> {
    decode_as(body)
}

/// Decodes a review body into the request view `R`, with the same checks.
pub fn decode_as<'a, R>(body: &'a [u8]) -> Result<R, DecodeError>
where
    R: Deserialize<'a> + ReviewRequest<'a>,
{
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(DecodeError::Empty);
    }
    if depth::exceeds(body, depth::MAX_DEPTH) {
        return Err(DecodeError::TooDeep(depth::MAX_DEPTH));
    }
    let envelope: Envelope<'a, R> = match serde_json::from_slice(body) {
        Ok(envelope) => envelope,
        // A review of another version fails to parse for that reason: say so.
        Err(e) => return Err(version_error(body).unwrap_or(DecodeError::Json(e))),
    };
    check_version(envelope.api_version.as_deref())?;
    let mut request = envelope.request.ok_or(DecodeError::NoRequest)?;
    if request.uid().is_empty() {
        return Err(DecodeError::NoUid);
    }
    request.keep_body(body);
    Ok(request)
}

fn check_version(version: Option<&str>) -> Result<(), DecodeError> {
    match version {
        Some(API_VERSION) => Ok(()),
        other => Err(DecodeError::ApiVersion(other.unwrap_or("").to_owned())),
    }
}

/// Only on the error path: reads just `apiVersion`, skipping the rest.
fn version_error(body: &[u8]) -> Option<DecodeError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct VersionOnly {
        #[serde(default)]
        api_version: Option<String>,
    }
    let only: VersionOnly = serde_json::from_slice(body).ok()?;
    check_version(only.api_version.as_deref()).err()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Operation {
    Create,
    Update,
    Delete,
    Connect,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "CREATE",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
            Self::Connect => "CONNECT",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct GroupVersionKind<'a> {
    #[serde(borrow, default)]
    pub group: Cow<'a, str>,
    #[serde(borrow, default)]
    pub version: Cow<'a, str>,
    #[serde(borrow, default)]
    pub kind: Cow<'a, str>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct GroupVersionResource<'a> {
    #[serde(borrow, default)]
    pub group: Cow<'a, str>,
    #[serde(borrow, default)]
    pub version: Cow<'a, str>,
    #[serde(borrow, default)]
    pub resource: Cow<'a, str>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct UserInfo<'a> {
    #[serde(borrow, default)]
    pub username: Cow<'a, str>,
    #[serde(borrow, default)]
    pub groups: Vec<Cow<'a, str>>,
    /// Set by the authenticator: bound service-account tokens carry
    /// `authentication.kubernetes.io/pod-name` and `pod-uid`.
    #[serde(borrow, default, deserialize_with = "super::object::nullable_extra")]
    pub extra: super::object::ExtraMap<'a>,
}

impl UserInfo<'_> {
    /// The first value of an `extra` key.
    pub fn extra_value(&self, key: &str) -> Option<&str> {
        self.extra.get(key)?.first().map(|v| v.as_ref())
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Options<'a> {
    #[serde(borrow, default)]
    pub field_manager: Option<Cow<'a, str>>,
}

/// The part of an AdmissionRequest the guard reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request<'a> {
    #[serde(borrow, default)]
    pub uid: Cow<'a, str>,
    #[serde(borrow, default)]
    pub kind: GroupVersionKind<'a>,
    #[serde(borrow, default)]
    pub resource: GroupVersionResource<'a>,
    #[serde(borrow, default)]
    pub sub_resource: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub name: Cow<'a, str>,
    #[serde(borrow, default)]
    pub namespace: Option<Cow<'a, str>>,
    pub operation: Operation,
    #[serde(borrow, default)]
    pub user_info: UserInfo<'a>,
    #[serde(borrow, default)]
    pub object: Option<ObjectView<'a>>,
    #[serde(borrow, default)]
    pub old_object: Option<ObjectView<'a>>,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(borrow, default)]
    pub options: Option<Options<'a>>,
    /// The review as received: read again only by rules that compare whole
    /// objects (`guard::compat`), never on the common path.
    #[serde(skip)]
    pub body: Body<'a>,
}

/// The raw review body. Its `Debug` prints only the length: objects (Secrets
/// among them) never reach a log.
#[derive(Clone, Copy, Default)]
pub struct Body<'a>(pub &'a [u8]);

impl std::fmt::Debug for Body<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Body({} bytes)", self.0.len())
    }
}

impl Request<'_> {
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or("")
    }

    pub fn sub_resource(&self) -> &str {
        self.sub_resource.as_deref().unwrap_or("")
    }

    pub fn field_manager(&self) -> Option<&str> {
        self.options.as_ref()?.field_manager.as_deref()
    }

    /// The object's name. A DeleteCollection reaches admission one item at
    /// a time with an empty `name` (the e2e suite saw it): the item's name
    /// is then read from `oldObject`.
    pub fn object_name(&self) -> &str {
        if !self.name.is_empty() {
            return &self.name;
        }
        let old = self.old_object.as_ref().map(|o| o.metadata.name.as_ref());
        let new = self.object.as_ref().map(|o| o.metadata.name.as_ref());
        old.filter(|n: &&str| !n.is_empty()).or(new).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(request: &str) -> String {
        format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{request}}}"#
        )
    }

    #[test]
    fn a_review_decodes_metadata_and_skips_the_rest() {
        let body = review(
            r#"{"uid":"u1","kind":{"group":"apps","version":"v1","kind":"Deployment"},
            "resource":{"group":"apps","version":"v1","resource":"deployments"},
            "name":"web","namespace":"prod","operation":"UPDATE",
            "userInfo":{"username":"alice","groups":["developers"],"extra":{"x":["y"]}},
            "object":{"metadata":{"name":"web","labels":{"a":"b"},"annotations":null},"spec":{"replicas":3}},
            "oldObject":{"metadata":{"name":"web","ownerReferences":[{"kind":"X","controller":true}]}},
            "dryRun":true,"options":{"kind":"UpdateOptions","fieldManager":"kubectl-edit"}}"#,
        );
        let req = decode(body.as_bytes()).expect("decodes");
        assert_eq!(req.uid, "u1");
        assert_eq!(req.operation, Operation::Update);
        assert_eq!(req.namespace(), "prod");
        assert_eq!(req.field_manager(), Some("kubectl-edit"));
        assert!(req.dry_run);
        let object = req.object.as_ref().expect("object");
        assert_eq!(
            object.metadata.labels.get("a").map(|v| v.as_ref()),
            Some("b")
        );
        assert!(object.metadata.annotations.is_empty());
        assert!(
            req.old_object
                .as_ref()
                .expect("old")
                .metadata
                .has_controller()
        );
    }

    #[test]
    fn strings_without_escapes_borrow_from_the_body() {
        let body = review(r#"{"uid":"u1","operation":"CREATE","name":"web"}"#);
        let req = decode(body.as_bytes()).expect("decodes");
        assert!(matches!(req.name, Cow::Borrowed(_)));
    }

    #[test]
    fn each_malformed_body_gets_its_own_cause() {
        let cases: [(&str, &str); 6] = [
            ("", "empty"),
            ("{not json", "json"),
            (
                r#"{"apiVersion":"admission.k8s.io/v1beta1","request":{}}"#,
                "api-version",
            ),
            (r#"{"apiVersion":"admission.k8s.io/v1"}"#, "no-request"),
            (
                r#"{"apiVersion":"admission.k8s.io/v1","request":{"operation":"CREATE"}}"#,
                "no-uid",
            ),
            (
                r#"{"apiVersion":"admission.k8s.io/v1","request":{"uid":"u"}}"#,
                "json",
            ),
        ];
        for (body, cause) in cases {
            let err = decode(body.as_bytes()).expect_err(body);
            assert_eq!(err.cause(), cause, "{body}");
        }
    }

    #[test]
    fn deeply_nested_json_is_an_error_not_a_crash() {
        let depth = 100_000;
        let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let body = review(&format!(
            r#"{{"uid":"u","operation":"CREATE","object":{{"spec":{nested}}}}}"#
        ));
        assert_eq!(
            decode(body.as_bytes()).expect_err("too deep").cause(),
            "json"
        );
    }
}
