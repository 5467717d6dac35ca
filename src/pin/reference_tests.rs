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
#[case::nested_paths(
    "ghcr.io/org/group/app:1.0.0-rc.1",
    "ghcr.io",
    "org/group/app",
    Some("1.0.0-rc.1")
)]
#[case::separators_in_components(
    "quay.io/a_b/c__d/e--f.g:x",
    "quay.io",
    "a_b/c__d/e--f.g",
    Some("x")
)]
#[case::an_ipv6_registry("[::1]:5000/app:1", "[::1]:5000", "app", Some("1"))]
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
}

#[rstest]
#[case::empty("", "empty")]
#[case::uppercase_repository("NGINX", "uppercase")]
#[case::double_colon("nginx::1", "must start and end")]
#[case::tag_starting_with_a_dot("nginx:.1", "invalid tag")]
#[case::tag_too_long(&format!("nginx:{}", "a".repeat(129)), "invalid tag")]
#[case::short_digest("nginx@sha256:abc", "invalid digest")]
#[case::unknown_algorithm("nginx@md5:abc", "unsupported digest algorithm")]
#[case::trailing_slash("ghcr.io/app/", "is empty")]
#[case::bad_separator("ghcr.io/a.-b", "invalid separator")]
#[case::bad_port("host:port/app", "invalid port")]
#[case::spaces("ngi nx", "invalid separator")]
#[case::only_a_registry("ghcr.io/", "no repository")]
fn a_bad_reference_is_a_clear_error(#[case] text: &str, #[case] expected: &str) {
    let e = Reference::parse(text).expect_err("rejected");
    assert!(e.to_string().contains(expected), "{text:?}: {e}");
}

#[test]
fn the_docker_hub_api_answers_at_registry_1() {
    let r = Reference::parse("nginx").expect("parses");
    assert_eq!(r.api_host(), "registry-1.docker.io");
    let local = Reference::parse("127.0.0.1:5000/app").expect("parses");
    assert_eq!(local.api_host(), "127.0.0.1:5000");
}

#[test]
fn a_name_longer_than_255_characters_is_rejected() {
    let text = format!("ghcr.io/{}", "a".repeat(260));
    let e = Reference::parse(&text).expect_err("too long");
    assert!(e.to_string().contains("longer than 255"), "{e}");
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
}

#[test]
fn a_reference_with_tag_and_digest_is_pinned() {
    let text = format!("nginx:1.27@sha256:{HEX}");
    let r = Reference::parse(&text).expect("parses");
    assert!(r.is_pinned());
    assert_eq!(r.tag(), Some("1.27"));
    assert_eq!(r.digest(), Some(format!("sha256:{HEX}").as_str()));
}
