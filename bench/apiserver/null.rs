//! A null webhook for the apiserver: the guard's TLS stack (`tls::server`)
//! answering allow to every review, echoing only the uid (the apiserver
//! rejects an answer for another uid). Registered like the guard's
//! Flux-label entry, it is the floor of what any webhook costs here.

use axum::{Router, body::Bytes, http::header::CONTENT_TYPE, routing::post};
use gitops_guard::cert;

async fn allow(body: Bytes) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    let text = std::str::from_utf8(&body).unwrap_or_default();
    let uid = text
        .split_once("\"uid\":\"")
        .and_then(|(_, rest)| rest.split('"').next())
        .unwrap_or_default();
    let answer = format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{{"uid":"{uid}","allowed":true}}}}"#
    );
    ([(CONTENT_TYPE, "application/json")], answer)
}

/// Starts the null webhook; returns its ValidatingWebhookConfiguration.
pub async fn start(dir: &std::path::Path) -> Result<String, String> {
    let bundle = super::tls_server::certificate(dir)?;
    let app = Router::new().route("/validate", post(allow));
    let port = super::tls_server::serve(app, dir).await?.port();
    Ok(format!(
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\n\
         metadata: {{name: bench-null}}\nwebhooks:\n- name: null.bench.gitops-guard.io\n  \
         admissionReviewVersions: [v1]\n  sideEffects: None\n  timeoutSeconds: 5\n  failurePolicy: Fail\n  \
         matchPolicy: Equivalent\n  clientConfig: {{url: \"https://127.0.0.1:{port}/validate\", caBundle: {}}}\n  \
         objectSelector: {{matchExpressions: [{{key: kustomize.toolkit.fluxcd.io/name, operator: Exists}}]}}\n  \
         rules: [{{apiGroups: [\"*\"], apiVersions: [\"*\"], resources: [\"*\"], operations: [CREATE, UPDATE, DELETE], scope: \"*\"}}]\n",
        cert::ca_bundle_base64(&bundle)
    ))
}
