use super::*;

#[tokio::test]
async fn a_tag_is_pinned_to_the_digest_the_registry_serves() {
    init();
    let registry = Registry::start(None).expect("registry");
    let digest = registry.push("team/web", "1.0", "a").expect("push");
    let (app, _) = app(
        &[registry.addr()],
        Keyring::default(),
        Duration::from_secs(3),
    );
    let image = format!("{}/team/web:1.0", registry.addr());
    let (status, answer) = post(&app, "/mutate", deployment_review("pin", &[&image])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["response"]["allowed"], true);
    assert_eq!(answer["response"]["patchType"], "JSONPatch");
    assert_eq!(
        patch_of(&answer),
        [
            json!({"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": format!("{image}@{digest}")})
        ]
    );
}

#[tokio::test]
async fn the_htpasswd_registry_resolves_with_the_right_pull_secret_and_fails_clearly_with_a_wrong_one()
 {
    init();
    let registry = Registry::start(Some(("puller", "s3cret"))).expect("registry");
    let digest = registry.push("private/app", "v1", "p").expect("push");
    let image = format!("{}/private/app:v1", registry.addr());
    let secret = |password: &str| {
        let auth = STANDARD.encode(format!("puller:{password}"));
        let json = json!({"auths": {registry.addr(): {"auth": auth}}}).to_string();
        Keyring::from_dockerconfigjson(json.as_bytes()).expect("keyring")
    };
    let (right, _) = app(&[registry.addr()], secret("s3cret"), Duration::from_secs(3));
    let (_, answer) = post(&right, "/mutate", deployment_review("require", &[&image])).await;
    assert_eq!(patch_of(&answer)[0]["value"], format!("{image}@{digest}"));

    let (wrong, _) = app(&[registry.addr()], secret("nope"), Duration::from_secs(3));
    let (_, denied) = post(&wrong, "/mutate", deployment_review("require", &[&image])).await;
    assert_eq!(denied["response"]["allowed"], false);
    let message = denied["response"]["status"]["message"]
        .as_str()
        .unwrap_or("");
    assert!(message.contains(&image), "{message}");
    assert!(
        message.contains("credentials for user \"puller\" were refused"),
        "{message}"
    );

    let (anonymous, _) = app(
        &[registry.addr()],
        Keyring::default(),
        Duration::from_secs(3),
    );
    let (_, warned) = post(&anonymous, "/mutate", deployment_review("pin", &[&image])).await;
    assert_eq!(warned["response"]["allowed"], true);
    let warning = warned["response"]["warnings"][0].as_str().unwrap_or("");
    assert!(
        warning.contains("no pull secret has credentials"),
        "{warning}"
    );
}

#[tokio::test]
async fn an_unknown_tag_is_a_warning_in_pin_and_a_denial_in_require() {
    init();
    let registry = Registry::start(None).expect("registry");
    registry.push("app", "1", "a").expect("push");
    let (app, _) = app(
        &[registry.addr()],
        Keyring::default(),
        Duration::from_secs(3),
    );
    let image = format!("{}/app:nope", registry.addr());
    let (_, pin) = post(&app, "/mutate", deployment_review("pin", &[&image])).await;
    assert_eq!(pin["response"]["allowed"], true);
    assert!(pin["response"]["patch"].is_null(), "nothing to patch");
    let warning = pin["response"]["warnings"][0].as_str().unwrap_or("");
    assert!(
        warning.contains("has no manifest for app:nope"),
        "{warning}"
    );
    let (_, require) = post(&app, "/mutate", deployment_review("require", &[&image])).await;
    assert_eq!(require["response"]["allowed"], false);
}

#[tokio::test]
async fn a_registry_that_is_down_or_hangs_gets_its_documented_answer_within_the_deadline() {
    init();
    let mut registry = Registry::start(None).expect("registry");
    registry.push("app", "1", "a").expect("push");
    let image = format!("{}/app:1", registry.addr());
    registry.stop();
    let (down_app, _) = app(
        &[registry.addr()],
        Keyring::default(),
        Duration::from_millis(500),
    );
    let (_, down) = post(
        &down_app,
        "/mutate",
        deployment_review("require", &[&image]),
    )
    .await;
    let message = down["response"]["status"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains(&format!("cannot reach {}", registry.addr())),
        "{message}"
    );

    registry.restart().expect("restart");
    registry.pause().expect("pause");
    let (app, _) = app(
        &[registry.addr()],
        Keyring::default(),
        Duration::from_millis(500),
    );
    let started = Instant::now();
    let (_, hung) = post(&app, "/mutate", deployment_review("pin", &[&image])).await;
    let took = started.elapsed();
    registry.resume().expect("resume");
    assert_eq!(hung["response"]["allowed"], true);
    let warning = hung["response"]["warnings"][0].as_str().unwrap_or("");
    assert!(warning.contains("did not answer within 500ms"), "{warning}");
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
}

#[tokio::test]
async fn a_malformed_reference_is_named_in_the_denial() {
    init();
    let (app, _) = app(&[], Keyring::default(), Duration::from_secs(1));
    let (_, answer) = post(
        &app,
        "/mutate",
        deployment_review("require", &["Bad::Image"]),
    )
    .await;
    assert_eq!(answer["response"]["allowed"], false);
    let message = answer["response"]["status"]["message"]
        .as_str()
        .unwrap_or("");
    assert!(message.contains("Bad::Image"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_reviews_of_one_uncached_image_make_one_registry_request() {
    init();
    let registry = Registry::start(None).expect("registry");
    registry.push("burst", "1", "a").expect("push");
    let (app, metrics) = app(
        &[registry.addr()],
        Keyring::default(),
        Duration::from_secs(5),
    );
    let image = format!("{}/burst:1", registry.addr());
    let reviews = (0..1000).map(|_| {
        let (app, body) = (app.clone(), deployment_review("pin", &[&image]));
        tokio::spawn(async move { post(&app, "/mutate", body).await })
    });
    for answer in futures::future::join_all(reviews).await {
        let (_, answer) = answer.expect("task");
        assert_eq!(patch_of(&answer).len(), 1, "{answer}");
    }
    assert_eq!(registry.manifest_requests_settled("burst"), 1);
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&metrics.gather())
        .expect("encodes");
    assert!(
        text.contains("gitops_guard_image_cache_entries 1"),
        "{text}"
    );
}

#[tokio::test]
async fn four_hundred_containers_with_one_image_make_one_registry_request() {
    init();
    let registry = Registry::start(None).expect("registry");
    registry.push("many", "1", "a").expect("push");
    let (app, _) = app(
        &[registry.addr()],
        Keyring::default(),
        Duration::from_secs(3),
    );
    let image = format!("{}/many:1", registry.addr());
    let images = vec![image.as_str(); 400];
    let (_, answer) = post(&app, "/mutate", deployment_review("pin", &images)).await;
    assert_eq!(patch_of(&answer).len(), 400);
    assert_eq!(registry.manifest_requests_settled("many"), 1);
}

#[tokio::test]
async fn the_validating_side_denies_unpinned_images_only_in_require_namespaces() {
    init();
    let (app, _) = app(&[], Keyring::default(), Duration::from_secs(1));
    let (_, require) = post(
        &app,
        "/validate-images",
        deployment_review("require", &["nginx:1.27"]),
    )
    .await;
    assert_eq!(require["response"]["allowed"], false);
    let (_, pin) = post(
        &app,
        "/validate-images",
        deployment_review("pin", &["nginx:1.27"]),
    )
    .await;
    assert_eq!(pin["response"]["allowed"], true);
}

#[tokio::test]
async fn malformed_mutate_reviews_are_clear_errors_never_allows() {
    init();
    let (app, _) = app(&[], Keyring::default(), Duration::from_secs(1));
    let cases: [(&[u8], StatusCode); 4] = [
        (b"", StatusCode::BAD_REQUEST),
        (b"{not json", StatusCode::BAD_REQUEST),
        (
            br#"{"apiVersion":"admission.k8s.io/v1","request":{"operation":"CREATE"}}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            br#"{"apiVersion":"admission.k8s.io/v1beta1","request":{}}"#,
            StatusCode::BAD_REQUEST,
        ),
    ];
    for path in ["/mutate", "/validate-images"] {
        for (body, expected) in &cases {
            let (status, answer) = post(&app, path, body.to_vec()).await;
            assert_eq!(
                status,
                *expected,
                "{path} {:?}",
                String::from_utf8_lossy(body)
            );
            assert_ne!(answer["response"]["allowed"], true, "{path}");
        }
    }
    let request = Request::post("/mutate")
        .header("content-type", "text/plain")
        .body(Body::from(deployment_review("pin", &["nginx:1"])))
        .expect("request");
    let response = app
        .clone()
        .oneshot(request)
        .await
        .unwrap_or_else(|e| match e {});
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

fn dry_run(review: Vec<u8>) -> Vec<u8> {
    let mut value: Value = serde_json::from_slice(&review).expect("json");
    value["request"]["dryRun"] = json!(true);
    serde_json::to_vec(&value).expect("serializes")
}

#[tokio::test]
async fn a_dry_run_asks_no_registry_and_gets_what_the_cache_holds() {
    init();
    let registry = Registry::start(None).expect("registry");
    let digest = registry.push("dry", "1", "a").expect("push");
    let (app, _) = app(
        &[registry.addr()],
        Keyring::default(),
        Duration::from_secs(3),
    );
    let image = format!("{}/dry:1", registry.addr());
    let review = || deployment_review("pin", &[&image]);

    let (_, cold) = post(&app, "/mutate", dry_run(review())).await;
    assert_eq!(cold["response"]["allowed"], true);
    assert!(
        cold["response"]["patch"].is_null(),
        "nothing pinned from a cold cache"
    );
    let warning = cold["response"]["warnings"][0].as_str().unwrap_or("");
    assert!(
        warning.contains("a dry run never asks the registry"),
        "{warning}"
    );
    let (_, require) = post(
        &app,
        "/mutate",
        dry_run(deployment_review("require", &[&image])),
    )
    .await;
    assert_eq!(require["response"]["allowed"], false);
    assert_eq!(
        registry.manifest_requests_settled("dry"),
        0,
        "a dry run asked the registry"
    );

    let (_, real) = post(&app, "/mutate", review()).await;
    let (_, warm) = post(&app, "/mutate", dry_run(review())).await;
    let pinned = json!({"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": format!("{image}@{digest}")});
    assert_eq!(patch_of(&real), std::slice::from_ref(&pinned));
    assert_eq!(
        patch_of(&warm),
        [pinned],
        "the dry run sees the apply's digest"
    );
    assert_eq!(
        registry.manifest_requests_settled("dry"),
        1,
        "only the real review asked"
    );
}
