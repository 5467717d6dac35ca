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
            let auth = STANDARD.encode(format!("{user}:pw"));
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

#[test]
fn a_glob_matches_one_dns_label() {
    let ring = keyring(&[("*.example.com", "glob")]);
    assert_eq!(ring.lookup("eu.example.com", "app"), Some(&basic("glob")));
    assert_eq!(ring.lookup("a.eu.example.com", "app"), None);
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
    let auth = STANDARD.encode("old:pw");
    let json = format!(r#"{{"https://old.io":{{"auth":"{auth}"}}}}"#);
    let ring = Keyring::from_dockercfg(json.as_bytes()).expect("parses");
    assert_eq!(ring.lookup("old.io", "x"), Some(&basic("old")));
}

#[test]
fn bad_secrets_are_errors_that_name_the_entry_and_not_the_secret() {
    let not_json = Keyring::from_dockerconfigjson(b"{").expect_err("invalid");
    assert!(not_json.to_string().contains(".dockerconfigjson"));
    let bad64 =
        Keyring::from_dockerconfigjson(br#"{"auths":{"r.io":{"auth":"%%%"}}}"#).expect_err("bad");
    assert!(bad64.to_string().contains("r.io"));
    let no_colon = STANDARD.encode("secretvalue");
    let json = format!(r#"{{"auths":{{"r.io":{{"auth":"{no_colon}"}}}}}}"#);
    let e = Keyring::from_dockerconfigjson(json.as_bytes()).expect_err("no colon");
    assert!(e.to_string().contains("r.io") && !e.to_string().contains("secretvalue"));
}

#[test]
fn debug_output_never_shows_the_secret() {
    let c = Credential::Basic {
        username: "u".into(),
        password: "hunter2".into(),
    };
    assert!(!format!("{c:?}").contains("hunter2"));
    let t = Credential::IdentityToken {
        username: "u".into(),
        token: "tok-secret".into(),
    };
    assert!(!format!("{t:?}").contains("tok-secret"));
    assert_ne!(c.identity(), t.identity());
    assert!(c.identity().starts_with("sha256:"));
}
