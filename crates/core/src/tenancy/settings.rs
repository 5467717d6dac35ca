//! The `tenancy` section of the policy file.

use std::time::Duration;

use serde::Deserialize;

use crate::policy::de_duration;

/// What a broken rule does where the rule is a matter of policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnViolation {
    /// Denied (in enforce namespaces; warn/audit namespaces warn/record).
    Deny,
    /// Allowed with a `Warning:`, counted.
    Warn,
    /// Not checked.
    Off,
}

/// What a tenant rule does while the cluster view is still loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WhenNotSynced {
    /// Wait for the view within the review's deadline, then deny "not ready".
    Wait,
    /// Deny "not ready" at once.
    Deny,
}

/// Identities allowed to impersonate reconcilers (the controllers that do).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Impersonators {
    /// Usernames, service accounts as `system:serviceaccount:<ns>:<name>`.
    pub users: Vec<String>,
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TenancyPolicy {
    /// Namespace label naming a namespace's tenant (`flux create tenant` sets it).
    pub tenant_label: String,
    /// Namespaces every tenant may read sources from (`sourceRef.namespace`).
    pub shared_namespaces: Vec<String>,
    /// Like kustomize-controller's `--default-service-account`: the service
    /// account Flux impersonates when a Kustomization/HelmRelease names none.
    pub default_service_account: Option<String>,
    /// A tenant Kustomization/HelmRelease naming a service account that does
    /// not exist (yet): `warn` (GitOps may create both in one apply) or `deny`.
    pub missing_service_account: OnViolation,
    /// A controller identity (the owners' reconcilers) whose token is not
    /// bound to a Pod of its namespace: someone impersonating it, or a token
    /// used outside its Pod.
    pub controller_tokens: OnViolation,
    pub when_not_synced: WhenNotSynced,
    /// Subjects that may impersonate reconcilers without being reported.
    pub impersonators: Impersonators,
    /// How often the leader re-runs the impersonation and escalation audit.
    #[serde(deserialize_with = "de_duration")]
    pub audit_interval: Duration,
}

impl Default for Impersonators {
    fn default() -> Self {
        let owned = |s: &[&str]| s.iter().map(|s| (*s).to_owned()).collect();
        Self {
            users: owned(&[
                "system:serviceaccount:flux-system:kustomize-controller",
                "system:serviceaccount:flux-system:helm-controller",
                "system:serviceaccount:argocd:argocd-application-controller",
            ]),
            groups: owned(&["system:masters"]),
        }
    }
}

impl Default for TenancyPolicy {
    fn default() -> Self {
        Self {
            tenant_label: "toolkit.fluxcd.io/tenant".to_owned(),
            shared_namespaces: vec!["flux-system".to_owned()],
            default_service_account: None,
            missing_service_account: OnViolation::Warn,
            controller_tokens: OnViolation::Deny,
            when_not_synced: WhenNotSynced::Wait,
            impersonators: Impersonators::default(),
            audit_interval: Duration::from_secs(300),
        }
    }
}

impl TenancyPolicy {
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.tenant_label.is_empty() {
            return Err(("tenancy.tenantLabel".into(), "must not be empty".into()));
        }
        if self.audit_interval < Duration::from_secs(10) {
            return Err((
                "tenancy.auditInterval".into(),
                "must be at least 10s".into(),
            ));
        }
        Ok(())
    }
}
