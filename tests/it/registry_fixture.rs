//! The test registry fixture itself: a real registry, real pushes.

use gitops_guard_testkit::registry;

use registry::Registry;

fn curl_code(args: &[&str]) -> String {
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(args)
        .output()
        .expect("curl runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_push_returns_the_digest_the_registry_serves_and_another_seed_moves_the_tag() {
    let registry = Registry::start(None).expect("registry starts");
    let first = registry.push("app", "1.0", "one").expect("push");
    assert_eq!(registry.served_digest("app", "1.0").expect("served"), first);
    let second = registry.push("app", "1.0", "two").expect("push again");
    assert_ne!(first, second);
    assert_eq!(
        registry.served_digest("app", "1.0").expect("served"),
        second
    );
}

#[test]
fn the_htpasswd_registry_refuses_anonymous_reads_and_accepts_the_right_user() {
    let registry = Registry::start(Some(("puller", "s3cret"))).expect("registry starts");
    registry
        .push("private", "v1", "x")
        .expect("authenticated push");
    let url = format!("http://{}/v2/private/manifests/v1", registry.addr());
    let accept = "Accept: application/vnd.oci.image.manifest.v1+json";
    assert_eq!(curl_code(&["-I", "-H", accept, &url]), "401");
    assert_eq!(
        curl_code(&["-I", "-u", "puller:wrong", "-H", accept, &url]),
        "401"
    );
    assert_eq!(
        curl_code(&["-I", "-u", "puller:s3cret", "-H", accept, &url]),
        "200"
    );
}

#[test]
fn manifest_requests_are_counted_from_the_registry_log() {
    let registry = Registry::start(None).expect("registry starts");
    registry.push("counted", "1", "x").expect("push");
    assert_eq!(
        registry.manifest_requests_settled("counted"),
        0,
        "pushes do not count"
    );
    let url = format!("http://{}/v2/counted/manifests/1", registry.addr());
    for _ in 0..3 {
        curl_code(&[
            "-I",
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json",
            &url,
        ]);
    }
    assert_eq!(registry.manifest_requests_settled("counted"), 3);
}
