//! Pin planning: which image fields a review pins, and the patch.

use serde_json::{Value, json};

use super::*;
use crate::pin::locate::decode;

const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

fn review(kind: (&str, &str), operation: &str, object: Value, old: Option<Value>) -> Vec<u8> {
    let mut request = json!({
        "uid": "u1",
        "kind": {"group": kind.0, "version": "v1", "kind": kind.1},
        "namespace": "prod",
        "name": "web",
        "operation": operation,
        "object": object,
    });
    if let Some(old) = old {
        request["oldObject"] = old;
    }
    serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "request": request}))
        .expect("serializes")
}

fn with_sub(body: Vec<u8>, sub: &str) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&body).expect("json");
    v["request"]["subResource"] = json!(sub);
    serde_json::to_vec(&v).expect("serializes")
}

fn pod_spec(images: &[(&str, &str)]) -> Value {
    let containers: Vec<Value> = images
        .iter()
        .map(|(name, image)| json!({"name": name, "image": image}))
        .collect();
    json!({"containers": containers, "initContainers": [{"name": "init", "image": "busybox:1.36"}]})
}

fn deployment(image: &str) -> Value {
    json!({"metadata": {"name": "web"}, "spec": {"replicas": 2, "template": {"spec": pod_spec(&[("web", image)])}}})
}

/// Runs `f` on the wanted images of `body` under the default policy.
fn with_wanted<T>(body: &[u8], f: impl FnOnce(&[Wanted<'_>]) -> T) -> T {
    let req = decode(body).expect("decodes");
    let (wanted, _) = wanted(&req, &ImagePolicy::default());
    f(&wanted)
}

fn pointers(body: &[u8], policy: &ImagePolicy) -> (Vec<String>, Untouched) {
    let req = decode(body).expect("decodes");
    let (wanted, untouched) = wanted(&req, policy);
    (wanted.into_iter().map(|w| w.pointer).collect(), untouched)
}

#[test]
fn a_deployment_template_has_its_containers_and_init_containers_wanted_by_pointer() {
    let body = review(
        ("apps", "Deployment"),
        "CREATE",
        deployment("nginx:1.27"),
        None,
    );
    let (wanted, _) = pointers(&body, &ImagePolicy::default());
    assert_eq!(
        wanted,
        [
            "/spec/template/spec/containers/0/image",
            "/spec/template/spec/initContainers/0/image"
        ]
    );
}

#[test]
fn a_cronjob_is_read_through_its_job_template() {
    let object = json!({"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": pod_spec(&[("job", "alpine:3")])}}}}});
    let body = review(("batch", "CronJob"), "CREATE", object, None);
    let (wanted, _) = pointers(&body, &ImagePolicy::default());
    assert_eq!(
        wanted[0],
        "/spec/jobTemplate/spec/template/spec/containers/0/image"
    );
}

#[test]
fn a_pod_template_object_is_read_at_its_top_level_template() {
    let object = json!({"template": {"spec": pod_spec(&[("a", "alpine:3")])}});
    let body = review(("", "PodTemplate"), "CREATE", object, None);
    let (wanted, _) = pointers(&body, &ImagePolicy::default());
    assert_eq!(wanted[0], "/template/spec/containers/0/image");
}

#[test]
fn an_image_with_a_digest_and_a_skipped_registry_are_left_alone() {
    let pinned = format!("nginx:1.27@{DIGEST}");
    let object = json!({"spec": pod_spec(&[("a", &pinned), ("b", "registry.k8s.io/pause:3.10")])});
    let body = review(("", "Pod"), "CREATE", object, None);
    let policy = ImagePolicy {
        skip: vec!["registry.k8s.io".into()],
        ..ImagePolicy::default()
    };
    let (wanted, untouched) = pointers(&body, &policy);
    assert_eq!(wanted, ["/spec/initContainers/0/image"]);
    assert_eq!((untouched.already_pinned, untouched.skipped), (1, 1));
}

#[test]
fn a_pod_update_touches_only_the_images_it_changes() {
    let old = json!({"spec": pod_spec(&[("a", "nginx:1.26"), ("b", "redis:7")])});
    let new = json!({"spec": pod_spec(&[("a", "nginx:1.27"), ("b", "redis:7")])});
    let body = review(("", "Pod"), "UPDATE", new, Some(old));
    let (wanted, untouched) = pointers(&body, &ImagePolicy::default());
    assert_eq!(wanted, ["/spec/containers/0/image"]);
    assert_eq!(untouched.unchanged, 2, "redis and the init container");
}

#[test]
fn kubectl_debug_pins_only_the_new_ephemeral_container() {
    let mut old = json!({"spec": pod_spec(&[("a", "nginx:1.27")])});
    old["spec"]["ephemeralContainers"] = json!([{"name": "debugger-1", "image": "busybox:1.36"}]);
    let mut new = old.clone();
    new["spec"]["ephemeralContainers"]
        .as_array_mut()
        .expect("array")
        .push(json!({"name": "debugger-2", "image": "busybox:1.37"}));
    let body = with_sub(
        review(("", "Pod"), "UPDATE", new, Some(old)),
        "ephemeralcontainers",
    );
    let (wanted, _) = pointers(&body, &ImagePolicy::default());
    assert_eq!(wanted, ["/spec/ephemeralContainers/1/image"]);
}

#[test]
fn status_and_other_subresources_are_never_patched() {
    let body = with_sub(
        review(
            ("", "Pod"),
            "UPDATE",
            json!({"spec": pod_spec(&[("a", "x:1")])}),
            None,
        ),
        "status",
    );
    assert!(pointers(&body, &ImagePolicy::default()).0.is_empty());
}

#[test]
fn resolved_images_become_replace_operations_keeping_the_tag() {
    let body = review(
        ("apps", "Deployment"),
        "CREATE",
        deployment("nginx:1.27"),
        None,
    );
    let plan = with_wanted(&body, |w| finish(PinMode::Pin, w, |_| Some(Ok(DIGEST))));
    assert_eq!(plan.reason, PinReason::Pinned);
    let patch = serde_json::to_value(plan.patch().expect("patch")).expect("json");
    assert_eq!(
        patch[0],
        json!({"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": format!("nginx:1.27@{DIGEST}")})
    );
    assert_eq!(patch.as_array().map(Vec::len), Some(2));
}

fn unreachable_registry() -> ResolveError {
    ResolveError::Unreachable {
        registry: "docker.io".into(),
        detail: "connection refused".into(),
    }
}

#[test]
fn in_pin_mode_an_unresolvable_image_stays_with_a_warning() {
    let body = review(
        ("apps", "Deployment"),
        "CREATE",
        deployment("nginx:1.27"),
        None,
    );
    let error = unreachable_registry();
    let plan = with_wanted(&body, |w| {
        finish(PinMode::Pin, w, |text| {
            Some(if text == "nginx:1.27" {
                Err(&error)
            } else {
                Ok(DIGEST)
            })
        })
    });
    assert_eq!(plan.reason, PinReason::Unresolved);
    assert_eq!(plan.replacements.len(), 1, "busybox is still pinned");
    assert!(plan.denial.is_none());
    assert!(
        plan.warnings[0].contains("nginx:1.27"),
        "{:?}",
        plan.warnings
    );
    assert!(
        plan.warnings[0].contains("connection refused"),
        "{:?}",
        plan.warnings
    );
}

#[test]
fn in_require_mode_an_unresolvable_image_is_denied_naming_image_and_registry_error() {
    let body = review(
        ("apps", "Deployment"),
        "CREATE",
        deployment("nginx:1.27"),
        None,
    );
    let error = unreachable_registry();
    let plan = with_wanted(&body, |w| {
        finish(PinMode::Require, w, |_| Some(Err(&error)))
    });
    let denial = plan.denial.expect("denied");
    assert!(denial.contains("\"nginx:1.27\""), "{denial}");
    assert!(
        denial.contains("cannot reach docker.io: connection refused"),
        "{denial}"
    );
    assert!(plan.replacements.is_empty());
}

#[test]
fn in_require_mode_a_malformed_reference_is_denied_with_the_parse_error() {
    let body = review(
        ("apps", "Deployment"),
        "CREATE",
        deployment("NGINX::bad"),
        None,
    );
    let plan = with_wanted(&body, |w| finish(PinMode::Require, w, |_| Some(Ok(DIGEST))));
    let denial = plan.denial.expect("denied");
    assert!(denial.contains("NGINX::bad"), "{denial}");
}

#[test]
fn an_image_not_resolved_in_time_is_said_so() {
    let body = review(
        ("apps", "Deployment"),
        "CREATE",
        deployment("nginx:1.27"),
        None,
    );
    let plan = with_wanted(&body, |w| finish(PinMode::Pin, w, |_| None));
    assert!(plan.warnings[0].contains("not resolved before the deadline"));
}

#[test]
fn pinning_is_idempotent_so_reinvocation_changes_nothing() {
    let pinned = format!("nginx:1.27@{DIGEST}");
    let body = review(("apps", "Deployment"), "CREATE", deployment(&pinned), None);
    let texts: Vec<String> = with_wanted(&body, |w| w.iter().map(|w| w.text.to_owned()).collect());
    assert_eq!(texts, ["busybox:1.36"], "only the unpinned init container");
}

#[test]
fn the_validating_side_names_every_unpinned_image() {
    let body = review(
        ("apps", "Deployment"),
        "CREATE",
        deployment("nginx:1.27"),
        None,
    );
    let message = with_wanted(&body, unpinned_denial).expect("denied");
    assert!(message.contains("\"nginx:1.27\"") && message.contains("\"busybox:1.36\""));
}
