//! The outcome of a review: what the pure core hands back to the shell.

/// Why a decision was made. `as_str()` feeds logs, metric labels and tests,
/// so the set is closed and small.
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
    /// The object has a controller owner reference: it is derived, not from Git.
    DerivedObject,
    /// A break-glass grant covers the change.
    BreakGlass,
    /// A manual change in a warn-mode namespace.
    Warned,
    /// A manual change in an audit-mode namespace.
    Audited,
    /// A manual change in an enforce-mode namespace.
    NotReconciler,
    /// A non-reconciler created an object carrying ownership markers.
    SpoofedOwnership,
    /// A non-reconciler added, changed or removed an ownership marker or an
    /// escape-hatch label/annotation.
    EscapeHatch,
    /// The request names a reconciler's field manager but comes from someone else.
    ForgedFieldManager,
    /// `/scale` of a parent the cluster view does not know yet.
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
}

impl Reason {
    pub const ALL: [Reason; 25] = [
        Reason::Unowned,
        Reason::Reconciler,
        Reason::SystemActor,
        Reason::StatusWrite,
        Reason::TerminatingNamespace,
        Reason::DerivedObject,
        Reason::BreakGlass,
        Reason::Warned,
        Reason::Audited,
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
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Unowned => "unowned",
            Reason::Reconciler => "reconciler",
            Reason::SystemActor => "system-actor",
            Reason::StatusWrite => "status-write",
            Reason::TerminatingNamespace => "terminating-namespace",
            Reason::DerivedObject => "derived-object",
            Reason::BreakGlass => "break-glass",
            Reason::Warned => "warned",
            Reason::Audited => "audited",
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
        }
    }
}

/// What the guard answers. Deny carries the message a person at a terminal reads.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow {
        reason: Reason,
        warnings: Vec<String>,
    },
    Deny {
        reason: Reason,
        message: String,
    },
}

impl Decision {
    pub fn allow(reason: Reason) -> Self {
        Decision::Allow {
            reason,
            warnings: Vec::new(),
        }
    }

    pub fn reason(&self) -> Reason {
        match self {
            Decision::Allow { reason, .. } | Decision::Deny { reason, .. } => *reason,
        }
    }

    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }

    /// `allow` or `deny`, for logs and the metric label.
    pub fn verdict(&self) -> &'static str {
        if self.is_allowed() { "allow" } else { "deny" }
    }
}
