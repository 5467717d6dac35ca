//! Image references by the distribution grammar.

use rstest::rstest;

use super::*;

const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[rstest]
#[case::a_docker_hub_short_name_gets_the_library_prefix(
    "nginx",
    "docker.io",
    "library/nginx",
    None
)]
#[case::a_docker_hub_user_image_keeps_its_path(
    "bitnami/redis:7",
    "docker.io",
    "bitnami/redis",
    Some("7")
)]
#[case::docker_io_is_the_same_hub(
    "docker.io/nginx:1.27",
    "docker.io",
    "library/nginx",
    Some("1.27")
)]
#[case::index_docker_io_is_the_same_hub(
    "index.docker.io/library/nginx",
    "docker.io",
    "library/nginx",
    None
)]
#[case::a_registry_with_a_port(
    "127.0.0.1:5000/team/app:v1",
    "127.0.0.1:5000",
    "team/app",
    Some("v1")
)]
#[case::localhost_is_a_registry("localhost/app", "localhost", "app", None)]
#[case::localhost_with_a_port_is_a_registry("localhost:5000/x", "localhost:5000", "x", None)]
#[case::a_bare_localhost_with_a_port_is_a_hub_image_with_a_tag(
    "localhost:5000",
    "docker.io",
    "library/localhost",
    Some("5000")
)]
#[case::nested_paths_are_kept(
    "ghcr.io/org/group/app:1.0.0-rc.1",
    "ghcr.io",
    "org/group/app",
    Some("1.0.0-rc.1")
)]
#[case::every_kind_of_separator_is_allowed(
    "quay.io/a_b/c__d/e--f.g:x",
    "quay.io",
    "a_b/c__d/e--f.g",
    Some("x")
)]
#[case::an_uppercase_registry_host_is_allowed(
    "Registry.Example/app",
    "Registry.Example",
    "app",
    None
)]
#[case::a_tag_may_start_with_an_underscore_and_hold_uppercase(
    "app:_Build.1-x",
    "docker.io",
    "library/app",
    Some("_Build.1-x")
)]
#[case::an_ipv6_registry_in_brackets("[::1]:5000/app:1", "[::1]:5000", "app", Some("1"))]
fn a_good_reference_parses(
    #[case] text: &str,
    #[case] registry: &str,
    #[case] repository: &str,
    #[case] tag: Option<&str>,
) {
    let r = Reference::parse(text).expect("parses");
    assert_eq!(
        (r.registry(), r.repository(), r.tag()),
        (registry, repository, tag)
    );
    assert_eq!(r.to_string(), text);
    assert!(!r.is_pinned());
}

fn invalid_component(text: &str, component: &str, problem: &'static str) -> ReferenceError {
    ReferenceError::InvalidComponent {
        reference: text.into(),
        component: component.into(),
        problem,
    }
}

const SEPARATORS: &str = "separators are '.', '_', '__' or dashes, between letters or digits";
const EDGES: &str = "it must start and end with a letter or digit";

#[rstest]
#[case::an_empty_reference_is_refused("", ReferenceError::Empty)]
#[case::uppercase_in_the_repository_is_refused("NGINX", ReferenceError::Uppercase { reference: "NGINX".into(), component: "NGINX".into() })]
#[case::a_double_colon_leaves_a_bad_component(
    "nginx::1",
    invalid_component("nginx::1", "nginx:", EDGES)
)]
#[case::a_tag_starting_with_a_dot_is_refused("nginx:.1", ReferenceError::InvalidTag { reference: "nginx:.1".into(), tag: ".1".into() })]
#[case::an_empty_tag_is_refused("nginx:", ReferenceError::InvalidTag { reference: "nginx:".into(), tag: "".into() })]
#[case::a_tag_with_a_plus_is_refused("nginx:1+2", ReferenceError::InvalidTag { reference: "nginx:1+2".into(), tag: "1+2".into() })]
#[case::a_trailing_slash_leaves_an_empty_component(
    "ghcr.io/app/",
    invalid_component("ghcr.io/app/", "", "it is empty")
)]
#[case::a_leading_slash_leaves_an_empty_component(
    "/app",
    invalid_component("/app", "", "it is empty")
)]
#[case::a_dot_next_to_a_dash_is_refused(
    "ghcr.io/a.-b",
    invalid_component("ghcr.io/a.-b", "a.-b", SEPARATORS)
)]
#[case::three_underscores_are_refused(
    "ghcr.io/a___b",
    invalid_component("ghcr.io/a___b", "a___b", SEPARATORS)
)]
#[case::a_space_is_refused("ngi nx", invalid_component("ngi nx", "ngi nx", SEPARATORS))]
#[case::a_registry_alone_has_no_repository("ghcr.io/", ReferenceError::NoRepository { reference: "ghcr.io/".into() })]
#[case::a_digest_alone_has_no_repository(&format!("@sha256:{HEX}"), ReferenceError::NoRepository { reference: format!("@sha256:{HEX}") })]
#[case::a_port_must_be_digits("host:port/app", ReferenceError::InvalidPort { reference: "host:port/app".into(), host: "host:port".into() })]
#[case::a_host_label_cannot_end_with_a_dash("bad-.io/app", ReferenceError::InvalidRegistry { reference: "bad-.io/app".into(), host: "bad-.io".into() })]
#[case::text_after_an_ipv6_bracket_must_be_a_port("[::1]x/app", ReferenceError::InvalidRegistry { reference: "[::1]x/app".into(), host: "[::1]x".into() })]
#[case::an_unknown_digest_algorithm_is_refused("nginx@md5:abc", ReferenceError::UnsupportedAlgorithm { reference: "nginx@md5:abc".into(), algorithm: "md5".into() })]
fn a_bad_reference_is_a_precise_error(#[case] text: &str, #[case] expected: ReferenceError) {
    assert_eq!(Reference::parse(text), Err(expected));
}

#[rstest]
#[case::a_short_sha256_digest_is_refused("nginx@sha256:abc")]
#[case::an_uppercase_hex_digest_is_refused(&format!("nginx@sha256:{}", HEX.to_uppercase()))]
#[case::a_sha512_digest_of_sha256_length_is_refused(&format!("nginx@sha512:{HEX}"))]
#[case::a_digest_without_an_algorithm_is_refused(&format!("nginx@{HEX}"))]
#[case::a_second_at_sign_is_refused(&format!("nginx@sha256:{HEX}@sha256:{HEX}"))]
fn a_bad_digest_names_the_reference_and_what_was_expected(#[case] text: &str) {
    let e = Reference::parse(text).expect_err("rejected");
    assert!(matches!(e, ReferenceError::InvalidDigest { .. }), "{e:?}");
    let message = e.to_string();
    assert!(
        message.contains(text) && message.contains("expected"),
        "{message}"
    );
}

#[test]
fn the_docker_hub_api_answers_at_registry_1() {
    for text in ["nginx", "docker.io/library/nginx", "index.docker.io/nginx"] {
        let r = Reference::parse(text).expect("parses");
        assert_eq!(
            (r.registry(), r.api_host()),
            ("docker.io", "registry-1.docker.io")
        );
    }
    let local = Reference::parse("127.0.0.1:5000/app").expect("parses");
    assert_eq!(local.api_host(), "127.0.0.1:5000");
}

#[test]
fn a_name_longer_than_255_characters_is_rejected() {
    let text = format!("ghcr.io/{}", "a".repeat(260));
    let e = Reference::parse(&text).expect_err("too long");
    assert!(
        matches!(e, ReferenceError::NameTooLong { length: 268, .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("longer than 255"), "{e}");
    let just_fits = format!("ghcr.io/{}", "a".repeat(247));
    assert!(Reference::parse(&just_fits).is_ok());
}

#[test]
fn pinning_keeps_the_text_as_written_and_makes_latest_explicit() {
    let digest = format!("sha256:{HEX}");
    let tagged = Reference::parse("nginx:1.27").expect("parses");
    assert_eq!(tagged.pinned(&digest), format!("nginx:1.27@{digest}"));
    let untagged = Reference::parse("ghcr.io/a/b").expect("parses");
    assert_eq!(
        untagged.pinned(&digest),
        format!("ghcr.io/a/b:latest@{digest}")
    );
    assert_eq!(untagged.tag_or_latest(), "latest");
    let local = Reference::parse("localhost:5000/x").expect("parses");
    assert_eq!(
        local.pinned(&digest),
        format!("localhost:5000/x:latest@{digest}")
    );
}

#[test]
fn pinning_again_replaces_the_old_digest() {
    let old = Reference::parse(&format!("app:1@sha256:{HEX}")).expect("parses");
    assert_eq!(old.pinned("sha256:new"), "app:1@sha256:new");
}

#[test]
fn a_reference_with_tag_and_digest_is_pinned() {
    let text = format!("nginx:1.27@sha256:{HEX}");
    let r = Reference::parse(&text).expect("parses");
    assert!(r.is_pinned());
    assert_eq!(r.tag(), Some("1.27"));
    assert_eq!(r.digest(), Some(format!("sha256:{HEX}").as_str()));
    assert_eq!(r.to_string(), text);
}

#[test]
fn a_digest_only_reference_is_pinned_without_a_tag() {
    let text = format!("127.0.0.1:5000/a/b@sha256:{HEX}");
    let r = Reference::parse(&text).expect("parses");
    assert_eq!((r.registry(), r.repository()), ("127.0.0.1:5000", "a/b"));
    assert_eq!((r.tag(), r.tag_or_latest()), (None, "latest"));
    assert_eq!(r.digest(), Some(format!("sha256:{HEX}").as_str()));
    assert!(r.is_pinned());
}

#[test]
fn a_sha512_digest_is_accepted() {
    let digest = format!("sha512:{HEX}{HEX}");
    let r = Reference::parse(&format!("ghcr.io/a@{digest}")).expect("parses");
    assert_eq!(r.digest(), Some(digest.as_str()));
}
