//! Pull secrets: formats, matching, and errors that lose nothing.

use rstest::rstest;

use super::*;

fn basic(user: &str) -> Credential {
    Credential::Basic {
        username: user.into(),
        password: "pw".into(),
    }
}

fn keyring(auths: &[(&str, &str)]) -> Keyring {
    let auths: serde_json::Map<String, serde_json::Value> = auths
        .iter()
        .map(|(key, user)| {
            let auth = BASE64.encode(format!("{user}:pw"));
            ((*key).to_owned(), serde_json::json!({ "auth": auth }))
        })
        .collect();
    let json = serde_json::json!({ "auths": auths }).to_string();
    Keyring::from_dockerconfigjson(json.as_bytes()).expect("parses")
}

#[test]
fn every_docker_hub_alias_matches_an_image_on_docker_hub() {
    for key in [
        "docker.io",
        "index.docker.io",
        "registry-1.docker.io",
        "https://index.docker.io/v1/",
    ] {
        let ring = keyring(&[(key, "hub")]);
        assert_eq!(
            ring.lookup("docker.io", "library/nginx"),
            Some(&basic("hub")),
            "{key}"
        );
    }
}

#[test]
fn a_path_prefix_matches_whole_components_only() {
    let ring = keyring(&[("registry.example/team", "team")]);
    assert_eq!(
        ring.lookup("registry.example", "team/app"),
        Some(&basic("team"))
    );
    assert_eq!(ring.lookup("registry.example", "teamx/app"), None);
}

#[test]
fn the_port_must_agree() {
    let ring = keyring(&[("127.0.0.1:5000", "local")]);
    assert_eq!(ring.lookup("127.0.0.1:5000", "app"), Some(&basic("local")));
    assert_eq!(ring.lookup("127.0.0.1:5001", "app"), None);
    assert_eq!(ring.lookup("127.0.0.1", "app"), None);
}

#[rstest]
#[case::a_star_label_matches_one_label("*.example.com", "eu.example.com", true)]
#[case::a_star_label_does_not_match_two_labels("*.example.com", "a.eu.example.com", false)]
#[case::a_star_label_does_not_match_the_bare_domain("*.example.com", "example.com", false)]
#[case::a_star_inside_a_label_matches_a_run(
    "registry-*.example.com",
    "registry-eu.example.com",
    true
)]
#[case::a_star_inside_a_label_stays_inside_it(
    "registry-*.example.com",
    "registry-a.b.example.com",
    false
)]
#[case::a_question_mark_matches_one_character("r?.example.com", "r1.example.com", true)]
#[case::a_question_mark_needs_a_character("r?.example.com", "r.example.com", false)]
#[case::hosts_compare_without_case("Registry.Example.com", "registry.example.com", true)]
fn a_glob_in_the_host_matches_within_dns_labels(
    #[case] key: &str,
    #[case] host: &str,
    #[case] matches: bool,
) {
    let ring = keyring(&[(key, "glob")]);
    assert_eq!(
        ring.lookup(host, "app").is_some(),
        matches,
        "{key} vs {host}"
    );
}

#[test]
fn a_glob_with_many_stars_is_answered_quickly() {
    let key = format!("{}x.io", "*".repeat(60));
    let ring = keyring(&[(key.as_str(), "glob")]);
    assert_eq!(ring.lookup(&format!("{}.io", "a".repeat(63)), "app"), None);
}

#[rstest]
#[case::an_https_scheme_is_ignored("https://r.example")]
#[case::an_http_scheme_is_ignored("http://r.example")]
#[case::a_trailing_slash_is_ignored("https://r.example/")]
#[case::a_scheme_with_a_path_prefix_is_read("https://r.example/team")]
fn a_key_may_be_written_as_a_url(#[case] key: &str) {
    let ring = keyring(&[(key, "url")]);
    assert_eq!(ring.lookup("r.example", "team/app"), Some(&basic("url")));
    assert_eq!(ring.lookup("other.example", "team/app"), None);
}

#[test]
fn a_port_and_a_path_prefix_are_both_checked() {
    let ring = keyring(&[("localhost:5000/team", "local")]);
    assert_eq!(
        ring.lookup("localhost:5000", "team/app"),
        Some(&basic("local"))
    );
    assert_eq!(ring.lookup("localhost:5000", "other/app"), None);
    assert_eq!(ring.lookup("localhost", "team/app"), None);
}

#[test]
fn docker_hub_keys_do_not_match_other_registries() {
    let ring = keyring(&[("https://index.docker.io/v1/", "hub")]);
    assert_eq!(ring.lookup("ghcr.io", "library/nginx"), None);
}

#[test]
fn a_docker_hub_key_with_a_path_prefix_scopes_to_that_namespace() {
    let ring = keyring(&[("docker.io/bitnami", "bitnami"), ("docker.io", "hub")]);
    assert_eq!(
        ring.lookup("docker.io", "bitnami/redis"),
        Some(&basic("bitnami"))
    );
    assert_eq!(
        ring.lookup("docker.io", "library/nginx"),
        Some(&basic("hub"))
    );
}

#[test]
fn an_exact_host_beats_a_glob() {
    let ring = keyring(&[("*.example.com", "glob"), ("eu.example.com", "exact")]);
    assert_eq!(ring.lookup("eu.example.com", "app"), Some(&basic("exact")));
    assert_eq!(ring.lookup("us.example.com", "app"), Some(&basic("glob")));
}

#[test]
fn the_spelling_of_a_docker_hub_alias_does_not_beat_an_earlier_source() {
    let mut ring = keyring(&[("docker.io", "pod")]);
    ring.extend(keyring(&[("https://index.docker.io/v1/", "account")]));
    assert_eq!(
        ring.lookup("docker.io", "library/nginx"),
        Some(&basic("pod"))
    );
}

#[test]
fn the_most_specific_entry_wins() {
    let ring = keyring(&[("ghcr.io", "org"), ("ghcr.io/team/app", "app")]);
    assert_eq!(ring.lookup("ghcr.io", "team/app"), Some(&basic("app")));
    assert_eq!(ring.lookup("ghcr.io", "team/other"), Some(&basic("org")));
}

#[test]
fn earlier_sources_win_ties_when_keyrings_are_joined() {
    let mut ring = keyring(&[("ghcr.io", "pod")]);
    ring.extend(keyring(&[("ghcr.io", "account")]));
    assert_eq!(ring.lookup("ghcr.io", "x"), Some(&basic("pod")));
}

#[test]
fn username_and_password_fields_and_identity_tokens_are_read() {
    let json = r#"{"auths":{"a.io":{"username":"u","password":"p"},"b.io":{"identitytoken":"t","username":"00000000-0000-0000-0000-000000000000"}}}"#;
    let ring = Keyring::from_dockerconfigjson(json.as_bytes()).expect("parses");
    assert!(
        matches!(ring.lookup("a.io", "x"), Some(Credential::Basic { username, .. }) if username == "u")
    );
    assert!(
        matches!(ring.lookup("b.io", "x"), Some(Credential::IdentityToken { token, .. }) if token == "t")
    );
}

#[test]
fn the_legacy_dockercfg_format_is_read() {
    let auth = BASE64.encode("old:pw");
    let json = format!(r#"{{"https://old.io":{{"auth":"{auth}"}}}}"#);
    let ring = Keyring::from_dockercfg(json.as_bytes()).expect("parses");
    assert_eq!(ring.lookup("old.io", "x"), Some(&basic("old")));
}

fn auth_entry(auth: &str) -> String {
    format!(r#"{{"auths":{{"r.io":{{"auth":"{auth}"}}}}}}"#)
}

#[rstest]
#[case::truncated_json_is_not_json(b"{".to_vec(), "is not valid JSON")]
#[case::a_number_password_is_not_echoed(br#"{"auths":{"r.io":{"password":12345678}}}"#.to_vec(), "expected shape")]
#[case::auths_as_a_string_is_not_echoed(br#"{"auths":"sup3rs3cret"}"#.to_vec(), "expected shape")]
#[case::bad_base64_names_the_entry(auth_entry("%%%sup3rs3cret").into_bytes(), r#"entry "r.io": `auth` is not base64"#)]
#[case::auth_without_a_colon_names_the_entry(auth_entry(&BASE64.encode("sup3rs3cret")).into_bytes(), r#"entry "r.io": `auth` is not user:password"#)]
#[case::auth_that_is_not_text_names_the_entry(auth_entry(&BASE64.encode([0xff, 0xfe, b':'])).into_bytes(), r#"entry "r.io": `auth` does not decode"#)]
fn a_bad_dockerconfigjson_names_the_problem_and_never_the_secret(
    #[case] json: Vec<u8>,
    #[case] expected: &str,
) {
    let e = Keyring::from_dockerconfigjson(&json).expect_err("rejected");
    let message = e.to_string();
    assert!(message.contains(expected), "{message}");
    assert!(
        message.starts_with(".docker") || message.contains("r.io"),
        "{message}"
    );
    for secret in ["sup3rs3cret", "12345678"] {
        assert!(
            !message.contains(secret) && !format!("{e:?}").contains(secret),
            "{e:?}"
        );
    }
}

#[test]
fn a_bad_dockercfg_says_which_format_it_was() {
    let e = Keyring::from_dockercfg(b"[]").expect_err("rejected");
    assert!(e.to_string().starts_with(".dockercfg is not"), "{e}");
}

#[test]
fn unpadded_base64_is_read_too() {
    let auth = BASE64.encode("u:p").trim_end_matches('=').to_owned();
    let ring = Keyring::from_dockerconfigjson(auth_entry(&auth).as_bytes()).expect("parses");
    let expected = Credential::Basic {
        username: "u".into(),
        password: "p".into(),
    };
    assert_eq!(ring.lookup("r.io", "x"), Some(&expected));
}

#[test]
fn a_password_may_hold_colons() {
    let ring = Keyring::from_dockerconfigjson(auth_entry(&BASE64.encode("u:a:b")).as_bytes())
        .expect("parses");
    assert!(
        matches!(ring.lookup("r.io", "x"), Some(Credential::Basic { password, .. }) if password == "a:b")
    );
}

#[test]
fn an_entry_without_a_secret_is_skipped_and_no_auths_is_empty() {
    let ring =
        Keyring::from_dockerconfigjson(br#"{"auths":{"r.io":{"username":"u"}}}"#).expect("parses");
    assert!(ring.is_empty());
    assert!(
        Keyring::from_dockerconfigjson(b"{}")
            .expect("parses")
            .is_empty()
    );
    assert!(Keyring::default().is_empty());
}

#[test]
fn debug_output_never_shows_the_secret() {
    let c = Credential::Basic {
        username: "u".into(),
        password: "hunter2".into(),
    };
    assert_eq!(
        format!("{c:?}"),
        r#"Basic { username: "u", password: <redacted> }"#
    );
    let t = Credential::IdentityToken {
        username: "u".into(),
        token: "tok-secret".into(),
    };
    assert_eq!(
        format!("{t:?}"),
        r#"IdentityToken { username: "u", token: <redacted> }"#
    );
    let ring = keyring(&[("r.io", "u")]);
    assert!(!format!("{ring:?}").contains("pw"));
    assert!(!format!("{c:#?}").contains("hunter2"));
}

#[test]
fn the_identity_is_stable_short_and_tells_credentials_apart() {
    let basic = |password: &str| Credential::Basic {
        username: "u".into(),
        password: password.into(),
    };
    let id = basic("hunter2").identity();
    assert_eq!(id, basic("hunter2").identity());
    assert_eq!(id.len(), "sha256:".len() + 16);
    assert!(id.starts_with("sha256:") && !id.contains("hunter2"));
    assert_ne!(id, basic("hunter3").identity());
    let token = Credential::IdentityToken {
        username: "u".into(),
        token: "hunter2".into(),
    };
    assert_ne!(id, token.identity());
}
