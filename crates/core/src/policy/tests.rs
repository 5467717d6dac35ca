//! The policy file: defaults, partial files, and errors that name the field.
use super::*;

#[test]
fn the_documented_default_file_equals_the_embedded_defaults() {
    let parsed = Policy::from_yaml(DEFAULT_POLICY_YAML, "default.yaml").expect("parses");
    assert_eq!(parsed, Policy::default());
}

#[test]
fn an_empty_file_means_the_defaults() {
    assert_eq!(
        Policy::from_yaml("", "empty").expect("parses"),
        Policy::default()
    );
}

#[test]
fn a_section_given_replaces_only_that_section() {
    let p = Policy::from_yaml("defaultMode: warn\n", "p").expect("parses");
    assert_eq!(p.default_mode, Mode::Warn);
    assert_eq!(p.owners, Owners::default());
}

#[test]
fn an_unknown_field_is_rejected_with_its_path() {
    let err = Policy::from_yaml("owners:\n  kustomization:\n    reconcilerz: []\n", "p.yaml")
        .expect_err("unknown field");
    let text = err.to_string();
    assert!(text.contains("owners.kustomization"), "{text}");
    assert!(text.contains("reconcilerz"), "{text}");
}

#[test]
fn a_bad_mode_is_rejected_with_its_path() {
    let err = Policy::from_yaml("defaultMode: block\n", "p.yaml").expect_err("bad mode");
    assert!(err.to_string().contains("defaultMode"), "{err}");
}

#[test]
fn a_custom_marker_needs_exactly_one_of_label_or_annotation() {
    let yaml = "owners:\n  custom:\n  - name: x\n    reconcilers: [a]\n";
    let err = Policy::from_yaml(yaml, "p.yaml").expect_err("neither set");
    assert!(err.to_string().contains("owners.custom[0]"), "{err}");
}
