//! Decoding an AdmissionReview into a typed, borrowed view.
//!
//! Only what the decision needs is decoded; everything else in `object` and
//! `oldObject` (spec, status, managedFields) is set aside without being
//! built, and strings borrow from the request body where they can.
//!
//! A view that names what it reads (`ReviewRequest::READS`, the validating
//! webhook's) is decoded from one pass (`super::skim`) that bounds nesting
//! and leaves the unread parts unparsed. Any other view, and any body that
//! pass does not expect, is decoded whole: the nesting bound is checked
//! first (`super::depth`), then serde_json skips the unread parts.

use std::borrow::Cow;

use serde::Deserialize;

pub use super::object::{Metadata, ObjectView, OwnerReference, StrMap};
use super::{depth, skim};

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
    /// The members of `object` and `oldObject` this view reads, when it
    /// reads no others: the one-pass decoder (`super::skim`) sets the rest
    /// aside. `None` decodes the whole body.
    const READS: Option<skim::Reads> = None;

    fn uid(&self) -> &str;
    /// Keeps the whole review body, for rules that compare the full old and
    /// new objects (`guard::compat`), which parse it only when they run.
    fn keep_body(&mut self, _body: &'a [u8]) {}
}

impl<'a> ReviewRequest<'a> for Request<'a> {
    const READS: Option<skim::Reads> = Some(skim::Reads {
        metadata: super::object::METADATA_READS,
        spec: super::spec::READS,
    });

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

/// Decodes a review body the way [`decode`] did before the one-pass
/// decoder: the depth scan, then serde_json over the whole body. Kept for
/// the review bench and the fuzz target, which compare the two.
pub fn decode_whole(body: &[u8]) -> Result<Request<'_>, DecodeError> {
    decode_with(body, None)
}

/// Decodes a review body into the request view `R`, with the same checks.
pub fn decode_as<'a, R>(body: &'a [u8]) -> Result<R, DecodeError>
where
    R: Deserialize<'a> + ReviewRequest<'a>,
{
    decode_with(body, R::READS)
}

fn decode_with<'a, R>(body: &'a [u8], reads: Option<skim::Reads>) -> Result<R, DecodeError>
where
    R: Deserialize<'a> + ReviewRequest<'a>,
{
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(DecodeError::Empty);
    }
    let outline = match reads.map(|reads| skim::outline(body, &reads)) {
        Some(Err(skim::TooDeep)) => return Err(DecodeError::TooDeep(depth::MAX_DEPTH)),
        Some(Ok(outline)) => outline,
        None => None,
    };
    let parsed = match outline {
        Some(outline) => Envelope::<'a, R>::deserialize(outline),
        None => {
            if depth::exceeds(body, depth::MAX_DEPTH) {
                return Err(DecodeError::TooDeep(depth::MAX_DEPTH));
            }
            serde_json::from_slice(body)
        }
    };
    let envelope = match parsed {
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

    /// Every field a view reads, in objects of the kinds that carry them,
    /// with escapes, nulls and the unread parts around them.
    fn objects_with_every_field() -> Vec<serde_json::Value> {
        use serde_json::json;
        let metadata = json!({"name": "app\"s", "namespace": "team-a", "uid": "u-1",
            "labels": {"kustomize.toolkit.fluxcd.io/name": "apps", "k": "v\u{e9}\t"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"a\":[1,{\"b\":\"}\"}]}"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "r-1", "controller": true}],
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:metadata": {"f:labels": {".": {}}}}}]});
        vec![
            json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization", "metadata": metadata,
                "spec": {"interval": "5m", "path": "./apps", "serviceAccountName": "flux", "targetNamespace": "team-a",
                         "sourceRef": {"kind": "GitRepository", "name": "repo", "namespace": "flux-system"},
                         "kubeConfig": {"secretRef": {"name": "kc"}}, "postBuild": {"substitute": {"a": "b"}}},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
            json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease", "metadata": {"name": "db", "labels": null},
                "spec": {"chart": {"spec": {"chart": "pg", "sourceRef": {"kind": "HelmRepository", "name": "charts"}}},
                         "chartRef": {"kind": "OCIRepository", "name": "pg"}, "storageNamespace": "team-a",
                         "values": {"deep": [[[{"x": 1}]]]}}}),
            json!({"apiVersion": "image.toolkit.fluxcd.io/v1beta2", "kind": "ImagePolicy", "metadata": {"name": "p", "annotations": null},
                "spec": {"imageRepositoryRef": {"name": "r", "namespace": "flux-system"}, "policy": {"semver": {"range": "1.x"}}}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "ownerReferences": null},
                "data": {"big": "x".repeat(2000)}, "spec": [1, 2]}),
            json!({"kind": "Weird", "metadata": null, "spec": "text"}),
        ]
    }

    #[test]
    fn one_pass_and_the_whole_body_decode_every_field_the_same() {
        use serde_json::json;
        let objects = objects_with_every_field();
        for object in &objects {
            for old in [serde_json::Value::Null, object.clone(), objects[0].clone()] {
                let body = serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                    "request": {"uid": "u1", "kind": {"group": "g", "version": "v1", "kind": "K"},
                        "resource": {"group": "g", "version": "v1", "resource": "ks"}, "subResource": "status",
                        "name": "n", "namespace": "team-a", "operation": "UPDATE",
                        "userInfo": {"username": "system:serviceaccount:team-a:flux", "groups": ["g"],
                                     "extra": {"authentication.kubernetes.io/pod-name": ["p"]}},
                        "object": object, "oldObject": old, "dryRun": true,
                        "options": {"kind": "UpdateOptions", "fieldManager": "m"}}}))
                .expect("serialises");
                let reads = <Request<'_> as ReviewRequest<'_>>::READS
                    .expect("the webhook's view names its reads");
                assert!(
                    matches!(skim::outline(&body, &reads), Ok(Some(_))),
                    "one pass taken"
                );
                let one_pass = format!("{:?}", decode(&body).expect("one pass decodes"));
                let whole = format!("{:?}", decode_whole(&body).expect("whole body decodes"));
                assert_eq!(one_pass, whole, "{}", String::from_utf8_lossy(&body));
                // What the one pass keeps is what the decision reads.
                for read in [
                    "app\\\"s",
                    "ReplicaSet",
                    "GitRepository",
                    "HelmRepository",
                    "OCIRepository",
                    "flux",
                ] {
                    if whole.contains(read) {
                        assert!(one_pass.contains(read), "{read}");
                    }
                }
            }
        }
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
