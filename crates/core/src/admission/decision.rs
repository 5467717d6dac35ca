//! The outcome of a review: what the pure core hands back to the shell.
//!
//! A decision keeps apart which rule fired ([`Reason`]) and what happened
//! ([`Outcome`]): a namespace's mode changes only the outcome, and only of
//! the rules about manual changes ([`Reason::follows_mode`]).

/// Which rule decided. `as_str()` feeds logs, metric labels and tests, so
/// the set is closed and small.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Nothing marks the object as GitOps-owned.
    Unowned,
    /// The owner's reconciler identity wrote it.
    Reconciler,
    /// A system actor (garbage collector, namespace controller, autoscaler).
    SystemActor,
    /// A status subresource write.
    StatusWrite,
    /// A delete inside a namespace being deleted.
    TerminatingNamespace,
    /// A service account wrote an object whose controller is a parent in the
    /// view with the same owner (an EndpointSlice of an owned Service).
    DerivedObject,
    /// A service account wrote an owned-marked object whose controller
    /// reference names a parent the view does not have (forged, stale, or
    /// not seen yet: the shell waits for the view once).
    UnknownParent,
    /// A break-glass grant covers the change.
    BreakGlass,
    /// A manual change: someone other than the reconciler changed an owned object.
    NotReconciler,
    /// A non-reconciler created an object carrying ownership markers.
    SpoofedOwnership,
    /// A non-reconciler added, changed or removed an ownership marker or an
    /// escape-hatch label/annotation.
    EscapeHatch,
    /// The request names a reconciler's field manager but comes from someone else.
    ForgedFieldManager,
    /// The cluster view is still loading.
    ViewNotSynced,
    /// An image without a digest in a namespace that requires pinning.
    UnpinnedImage,
    /// A controller identity without a token bound to one of its Pods.
    ControllerToken,
    /// A tenant's reconciler writing outside its tenant or cluster-wide.
    TenantEscape,
    /// A tenant Flux object breaking the tenant rules (field named).
    TenantSpec,
    /// Changing the tenant of a namespace a tenant uses.
    TenantRelabel,
    /// The controller serving a GitOps kind wrote its finalizers or status.
    KindController,
    /// A controller wrote an object it generates for its owner (HelmChart).
    GeneratedObject,
    /// Only a reconciliation request annotation changed (`flux reconcile`).
    ReconcileRequest,
    /// A policy allowance covers the identity, the kind and every changed path.
    Allowance,
    /// A policy-named operator suspended or resumed a Flux object.
    Operator,
    /// `flux suspend` / `resume` by someone who is not an operator.
    Suspend,
    /// An UPDATE or DELETE review without `oldObject`: not judged.
    IncompleteReview,
}

impl Reason {
    pub const ALL: [Reason; 25] = [
        Reason::Unowned,
        Reason::Reconciler,
        Reason::SystemActor,
        Reason::StatusWrite,
        Reason::TerminatingNamespace,
        Reason::DerivedObject,
        Reason::UnknownParent,
        Reason::BreakGlass,
        Reason::NotReconciler,
        Reason::SpoofedOwnership,
        Reason::EscapeHatch,
        Reason::ForgedFieldManager,
        Reason::ViewNotSynced,
        Reason::UnpinnedImage,
        Reason::ControllerToken,
        Reason::TenantEscape,
        Reason::TenantSpec,
        Reason::TenantRelabel,
        Reason::KindController,
        Reason::GeneratedObject,
        Reason::ReconcileRequest,
        Reason::Allowance,
        Reason::Operator,
        Reason::Suspend,
        Reason::IncompleteReview,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Unowned => "unowned",
            Reason::Reconciler => "reconciler",
            Reason::SystemActor => "system-actor",
            Reason::StatusWrite => "status-write",
            Reason::TerminatingNamespace => "terminating-namespace",
            Reason::DerivedObject => "derived-object",
            Reason::UnknownParent => "unknown-parent",
            Reason::BreakGlass => "break-glass",
            Reason::NotReconciler => "not-reconciler",
            Reason::SpoofedOwnership => "spoofed-ownership",
            Reason::EscapeHatch => "escape-hatch",
            Reason::ForgedFieldManager => "forged-field-manager",
            Reason::ViewNotSynced => "view-not-synced",
            Reason::UnpinnedImage => "unpinned-image",
            Reason::ControllerToken => "controller-token",
            Reason::TenantEscape => "tenant-escape",
            Reason::TenantSpec => "tenant-spec",
            Reason::TenantRelabel => "tenant-relabel",
            Reason::KindController => "kind-controller",
            Reason::GeneratedObject => "generated-object",
            Reason::ReconcileRequest => "reconcile-request",
            Reason::Allowance => "allowance",
            Reason::Operator => "operator",
            Reason::Suspend => "suspend",
            Reason::IncompleteReview => "incomplete-review",
        }
    }
}

impl Reason {
    /// The rules about manual changes, whose outcome the namespace's mode
    /// decides (enforce denies, warn warns, audit records). Every other rule
    /// that denies, denies in every mode: deception (forged field manager,
    /// ownership markers, escape hatches), controller tokens, tenancy.
    pub fn follows_mode(self) -> bool {
        matches!(
            self,
            Reason::NotReconciler
                | Reason::SpoofedOwnership
                | Reason::UnknownParent
                | Reason::Suspend
        )
    }
}

/// What happened to the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Allowed,
    /// Allowed with an admission warning (a warn-mode namespace).
    Warned,
    /// Allowed silently and recorded (an audit-mode namespace).
    Audited,
    Denied,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [
        Outcome::Allowed,
        Outcome::Warned,
        Outcome::Audited,
        Outcome::Denied,
    ];

    /// The `decision` label of metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allow",
            Outcome::Warned => "warn",
            Outcome::Audited => "audit",
            Outcome::Denied => "deny",
        }
    }
}

/// What the guard answers: the rule and the outcome, the message a denied
/// person reads at a terminal, and the warnings kubectl prints.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub rule: Reason,
    pub outcome: Outcome,
    /// Empty unless denied.
    pub message: String,
    pub warnings: Vec<String>,
}

impl Decision {
    pub fn allow(rule: Reason) -> Self {
        Self::new(rule, Outcome::Allowed)
    }

    pub fn deny(rule: Reason, message: String) -> Self {
        Decision {
            message,
            ..Self::new(rule, Outcome::Denied)
        }
    }

    pub fn new(rule: Reason, outcome: Outcome) -> Self {
        Decision {
            rule,
            outcome,
            message: String::new(),
            warnings: Vec::new(),
        }
    }

    pub fn with_warning(mut self, warning: String) -> Self {
        self.warnings.push(warning);
        self
    }

    pub fn reason(&self) -> Reason {
        self.rule
    }

    pub fn is_allowed(&self) -> bool {
        self.outcome != Outcome::Denied
    }

    /// `allow`, `warn`, `audit` or `deny`, for logs and the metric label.
    pub fn verdict(&self) -> &'static str {
        self.outcome.as_str()
    }
}
