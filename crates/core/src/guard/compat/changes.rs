//! What an UPDATE changes: the JSON pointers at which the old and the new
//! object differ, read from the review body only when a compatibility rule
//! needs it (a non-reconciler writing an owned object: rare, human-rate or a
//! controller's one-off finalizer).

use serde::Deserialize;
use serde_json::{Map, Value};

/// Fields the apiserver maintains on every write: never a change of intent.
const BOOKKEEPING: [&str; 4] = [
    "/metadata/managedFields",
    "/metadata/resourceVersion",
    "/metadata/generation",
    "/metadata/creationTimestamp",
];

/// The changed paths of an UPDATE, as JSON pointers (`~1` for `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes(Vec<String>);

impl Changes {
    /// The paths at which `oldObject` and `object` differ. `None` when the
    /// body has not both objects (CREATE, DELETE, or a review without body).
    pub fn of_review(body: &[u8]) -> Option<Self> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Objects {
            object: Option<Value>,
            old_object: Option<Value>,
        }
        #[derive(Deserialize)]
        struct Envelope {
            request: Objects,
        }
        let envelope: Envelope = serde_json::from_slice(body).ok()?;
        let Objects { object, old_object } = envelope.request;
        Some(Self::between(&old_object?, &object?))
    }

    pub fn between(old: &Value, new: &Value) -> Self {
        let mut paths = Vec::new();
        diff(&mut String::new(), old, new, &mut paths);
        paths.retain(|p| !BOOKKEEPING.iter().any(|b| under(p, b)));
        Changes(paths)
    }

    pub fn paths(&self) -> &[String] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every changed path lies under one of `patterns` (JSON pointers whose
    /// segments may be `*`, one segment each).
    pub fn all_under<S: AsRef<str>>(&self, patterns: &[S]) -> bool {
        self.0
            .iter()
            .all(|p| patterns.iter().any(|pat| under(p, pat.as_ref())))
    }
}

/// Objects are walked key by key (a missing or null side counts as an empty
/// object), arrays of equal length index by index; anything else that
/// differs is one changed leaf.
fn diff(at: &mut String, old: &Value, new: &Value, out: &mut Vec<String>) {
    let empty = Map::new();
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => walk(at, o, n, out),
        (Value::Object(o), Value::Null) => walk(at, o, &empty, out),
        (Value::Null, Value::Object(n)) => walk(at, &empty, n, out),
        (Value::Array(o), Value::Array(n)) if o.len() == n.len() => {
            for (i, (o, n)) in o.iter().zip(n).enumerate() {
                let len = at.len();
                at.push('/');
                at.push_str(&i.to_string());
                diff(at, o, n, out);
                at.truncate(len);
            }
        }
        _ if old != new => out.push(if at.is_empty() {
            "/".into()
        } else {
            at.clone()
        }),
        _ => {}
    }
}

fn walk(
    at: &mut String,
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    out: &mut Vec<String>,
) {
    let keys = old
        .keys()
        .chain(new.keys().filter(|k| !old.contains_key(*k)));
    for key in keys {
        let len = at.len();
        at.push('/');
        at.push_str(&key.replace('~', "~0").replace('/', "~1"));
        let null = Value::Null;
        diff(
            at,
            old.get(key).unwrap_or(&null),
            new.get(key).unwrap_or(&null),
            out,
        );
        at.truncate(len);
    }
}

/// `path` equals `pattern` or lies below it, segment by segment.
fn under(path: &str, pattern: &str) -> bool {
    if pattern == "/" {
        return true;
    }
    let mut segments = path.split('/').skip(1);
    pattern.split('/').skip(1).all(|want| {
        segments
            .next()
            .is_some_and(|got| want == "*" || want == got)
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_finalizer_added_is_one_change_and_bookkeeping_is_ignored() {
        let old = json!({"metadata": {"name": "a", "resourceVersion": "1", "managedFields": []}, "spec": {"x": 1}});
        let new = json!({"metadata": {"name": "a", "resourceVersion": "2", "managedFields": [{}],
                         "finalizers": ["finalizers.fluxcd.io"]}, "spec": {"x": 1}});
        let changes = Changes::between(&old, &new);
        assert_eq!(changes.paths(), ["/metadata/finalizers"]);
        assert!(changes.all_under(&["/metadata/finalizers", "/status"]));
    }

    #[test]
    fn an_annotation_added_where_there_were_none_is_that_annotation() {
        let old = json!({"metadata": {"name": "a"}});
        let new = json!({"metadata": {"name": "a", "annotations": {"reconcile.fluxcd.io/requestedAt": "now"}}});
        let changes = Changes::between(&old, &new);
        assert_eq!(
            changes.paths(),
            ["/metadata/annotations/reconcile.fluxcd.io~1requestedAt"]
        );
        assert!(changes.all_under(&["/metadata/annotations/reconcile.fluxcd.io~1requestedAt"]));
        assert!(!changes.all_under(&["/metadata/annotations/other"]));
    }

    #[test]
    fn a_spec_change_beside_an_allowed_one_is_not_covered() {
        let old = json!({"metadata": {}, "spec": {"suspend": false, "path": "./a"}});
        let new = json!({"metadata": {}, "spec": {"suspend": true, "path": "./b"}});
        let changes = Changes::between(&old, &new);
        assert_eq!(changes.paths(), ["/spec/path", "/spec/suspend"]);
        assert!(!changes.all_under(&["/spec/suspend"]));
    }

    #[test]
    fn wildcards_match_one_segment_and_arrays_of_another_length_are_leaves() {
        let old = json!({"webhooks": [{"clientConfig": {"caBundle": "a"}}]});
        let new = json!({"webhooks": [{"clientConfig": {"caBundle": "b"}}]});
        let changes = Changes::between(&old, &new);
        assert_eq!(changes.paths(), ["/webhooks/0/clientConfig/caBundle"]);
        assert!(changes.all_under(&["/webhooks/*/clientConfig/caBundle"]));
        let grown = json!({"webhooks": [{}, {}]});
        assert_eq!(Changes::between(&old, &grown).paths(), ["/webhooks"]);
        assert!(!under(
            "/webhooks/0/clientConfig/url",
            "/webhooks/*/clientConfig/caBundle"
        ));
        assert!(!under("/spec", "/spec/suspend"));
    }

    #[test]
    fn a_review_without_both_objects_has_no_changes_to_judge() {
        let body = br#"{"request": {"object": {"metadata": {}}}}"#;
        assert_eq!(Changes::of_review(body), None);
        assert_eq!(Changes::of_review(b"not json"), None);
    }
}
