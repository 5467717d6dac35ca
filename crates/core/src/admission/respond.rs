//! Turning a decision into the AdmissionReview the apiserver reads, through
//! kube's builders only (they copy the uid and set the types).

use kube::core::{
    DynamicObject, GroupVersionKind, GroupVersionResource, TypeMeta,
    admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation},
};

use super::decision::Decision;

/// The minimal request header kube's `AdmissionResponse::from` needs: the uid
/// and the review's types. Nothing else is read from it.
fn header(uid: &str) -> AdmissionRequest<DynamicObject> {
    AdmissionRequest {
        types: TypeMeta {
            api_version: "admission.k8s.io/v1".into(),
            kind: "AdmissionReview".into(),
        },
        uid: uid.to_owned(),
        kind: GroupVersionKind::gvk("", "", ""),
        resource: GroupVersionResource::gvr("", "", ""),
        sub_resource: None,
        request_kind: None,
        request_resource: None,
        request_sub_resource: None,
        name: String::new(),
        namespace: None,
        operation: Operation::Create,
        user_info: Default::default(),
        object: None,
        old_object: None,
        dry_run: false,
        options: None,
    }
}

/// The response review for a decision on the request with `uid`.
pub fn review(uid: &str, decision: &Decision) -> AdmissionReview<DynamicObject> {
    let base = AdmissionResponse::from(&header(uid));
    let mut response = match decision.is_allowed() {
        false => base.deny(&decision.message),
        true => base,
    };
    if decision.is_allowed() && !decision.warnings.is_empty() {
        response.warnings = Some(decision.warnings.clone());
    }
    // The apiserver prefixes the key with the webhook name in the audit log.
    response
        .audit_annotations
        .insert("reason".into(), decision.reason().as_str().into());
    response.into_review()
}

/// The mutating webhook's answer: a denial, or an allow carrying the JSON
/// Patch (when there is one) and warnings.
pub fn pin_review(
    uid: &str,
    plan: &crate::pin::plan::Plan,
) -> Result<AdmissionReview<DynamicObject>, String> {
    let base = AdmissionResponse::from(&header(uid));
    let mut response = match &plan.denial {
        Some(message) => base.deny(message),
        None if plan.replacements.is_empty() => base,
        None => base.with_patch(plan.patch()?).map_err(|e| e.to_string())?,
    };
    if !plan.warnings.is_empty() {
        response.warnings = Some(plan.warnings.clone());
    }
    response
        .audit_annotations
        .insert("reason".into(), plan.reason.as_str().into());
    Ok(response.into_review())
}

/// The response for a body that could not be read as a review: never an allow.
pub fn invalid(reason: &impl ToString) -> AdmissionReview<DynamicObject> {
    AdmissionResponse::invalid(reason.to_string()).into_review()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::decision::{Outcome, Reason};

    #[test]
    fn a_denial_carries_the_uid_and_message_and_is_not_allowed() {
        let decision = Decision::deny(Reason::NotReconciler, "no".into());
        let json = serde_json::to_value(review("abc", &decision)).expect("serializes");
        assert_eq!(json["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(json["response"]["uid"], "abc");
        assert_eq!(json["response"]["allowed"], false);
        assert_eq!(json["response"]["status"]["message"], "no");
    }

    #[test]
    fn warnings_travel_with_an_allow() {
        let decision =
            Decision::new(Reason::NotReconciler, Outcome::Warned).with_warning("careful".into());
        let json = serde_json::to_value(review("abc", &decision)).expect("serializes");
        assert_eq!(json["response"]["allowed"], true);
        assert_eq!(json["response"]["warnings"][0], "careful");
    }
}
