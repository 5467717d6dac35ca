//! The labels and annotations of a drift alert.

use super::*;

fn severity(mode: Mode) -> &'static str {
    match mode {
        // Drift despite enforce: break-glass, an exempt user or an outage.
        Mode::Enforce => "critical",
        Mode::Warn => "warning",
        Mode::Audit => "info",
    }
}

fn rfc3339(seconds: Option<i64>) -> String {
    seconds
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map_or_else(|| "unknown".to_owned(), |t| t.to_string())
}

impl DriftWatch {
    pub(super) fn describe(
        &self,
        kind: &WatchedKind,
        ns: &str,
        name: &str,
        r: &Record,
        d: &Drift,
    ) -> (Labels, Labels) {
        let view = self.view.read();
        let mode = mode_of(&self.policy, &view, ns);
        let tenant = view
            .namespace(ns)
            .and_then(|n| n.labels.get(&self.policy.tenancy.tenant_label))
            .cloned()
            .unwrap_or_default();
        let source = where_in_git(&self.policy, &view, &r.owner);
        drop(view);
        // The person, when the webhook let the change through and
        // remembers it; otherwise the field manager is all there is.
        let journal_key = crate::object_ref::ObjectRef::new(&kind.group, &kind.plural, ns, name);
        let person = self
            .journal
            .get(&journal_key)
            .filter(|e| crate::drift::journal::names_change(e, d.at))
            .map(|e| e.user);
        let changed_by = person.unwrap_or_else(|| format!("field manager {}", d.manager));
        let owner = format!("{}/{}", r.owner.namespace, r.owner.name);
        let object = if ns.is_empty() {
            name.to_owned()
        } else {
            format!("{ns}/{name}")
        };
        let pairs = |items: &[(&str, String)]| -> Labels {
            items
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect()
        };
        let labels = pairs(&[
            ("alertname", "GitOpsDrift".to_owned()),
            ("severity", severity(mode).to_owned()),
            ("namespace", ns.to_owned()),
            ("kind", kind.kind.clone()),
            ("name", name.to_owned()),
            ("owner_kind", r.owner.kind.object_kind().to_owned()),
            ("owner", owner),
            ("tenant", tenant),
            ("cluster", self.cluster.clone()),
        ]);
        let fields = if d.fields.is_empty() {
            "unknown".to_owned()
        } else {
            d.fields.join(", ")
        };
        let annotations = pairs(&[
            (
                "summary",
                format!(
                    "{} {object} was changed outside Git by {changed_by}; it is owned by {}.",
                    kind.kind,
                    r.owner.display(&self.policy)
                ),
            ),
            ("changed_by", changed_by.clone()),
            ("field_manager", d.manager.clone()),
            ("operation", d.operation.clone()),
            ("changed_at", rfc3339(d.at)),
            ("fields", fields),
            ("source", source),
        ]);
        (labels, annotations)
    }
}
