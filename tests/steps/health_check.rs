//! Health check: target health of pre-prod, then smoke checks through the test endpoint.

use bluegreen::Slot;
use bluegreen::poll::Poll;
use bluegreen::steps::health_check;
use bluegreen_tests::World;

use crate::common::*;

#[tokio::test]
async fn healthy_targets_and_passing_smoke_checks_are_done_with_evidence() {
    let world = World::build().await;
    let id = launched(&world).await;
    let done = health(&world, &id).await.unwrap();
    let Poll::Done { detail } = done else {
        panic!("{done:?}")
    };
    assert!(
        detail.contains("2/2 targets healthy") && detail.contains("2 consecutive round"),
        "{detail}"
    );
    assert_eq!(
        record(&world, &id).await.health_evidence.as_deref(),
        Some(detail.as_str())
    );
    assert_eq!(
        world.test_slot().await,
        Some(Slot::Green),
        "the test listener points at pre-prod"
    );
}

#[tokio::test]
async fn a_wrong_status_is_tried_again_and_fails_at_the_deadline_naming_the_path_and_what_came_back()
 {
    let world = World::build().await;
    let id = launched(&world).await;
    world.smoke.answer("health", 503, "database unreachable");
    let Poll::Pending { detail, .. } = health(&world, &id).await.unwrap() else {
        panic!("a failed smoke round inside the window is not a verdict");
    };
    assert!(detail.contains("/health returned 503"), "{detail}");
    let err = health_past_deadline(&world, &id).await.unwrap_err();
    assert_eq!(err.name(), "HealthCheckFailed");
    let text = err.to_string();
    assert!(
        text.contains("/health returned 503") && text.contains("database unreachable"),
        "{text}"
    );
    assert!(
        record(&world, &id)
            .await
            .health_evidence
            .unwrap()
            .contains("503")
    );
}

#[tokio::test]
async fn a_body_without_the_expected_text_fails() {
    let world = World::build().await;
    let id = launched(&world).await;
    world.smoke.answer("health", 200, "maintenance");
    let err = health_past_deadline(&world, &id).await.unwrap_err();
    assert!(err.to_string().contains("lacks \"ok\""), "{err}");
}

#[tokio::test]
async fn unhealthy_targets_are_waited_for_and_fail_at_the_deadline_with_the_target_named() {
    let world = World::build().await;
    let id = launched(&world).await;
    world.set_target_health(Slot::Green, 1, "unhealthy").await;
    let started = health_check::start(&world.ctx, &id_ref(&id)).await.unwrap();
    let pending = health_check::check(&world.ctx, &check_of(&started))
        .await
        .unwrap();
    assert!(matches!(pending, Poll::Pending { .. }), "{pending:?}");
    let mut late = check_of(&started);
    late.deadline = world.now() - chrono::Duration::seconds(1);
    let err = health_check::check(&world.ctx, &late).await.unwrap_err();
    assert_eq!(err.name(), "HealthCheckFailed");
    assert!(err.to_string().contains("172.31.2.11 unhealthy"), "{err}");
}

#[tokio::test]
async fn an_unreachable_test_endpoint_fails_with_the_connection_error() {
    let world = World::build().await;
    let mut config = world.config();
    // A loopback port nothing listens on.
    config.health.test_url = Some("http://127.0.0.1:9".into());
    world.put_config(&config).await;
    let id = launched(&world).await;
    let err = health_past_deadline(&world, &id).await.unwrap_err();
    assert!(
        err.to_string().contains("GET http://127.0.0.1:9/health"),
        "{err}"
    );
    // The cause under reqwest's "error sending request" is kept (issue 29 item 9).
    assert!(err.to_string().contains("Connection refused"), "{err}");
}

#[tokio::test]
async fn a_service_that_fails_its_first_smoke_round_and_then_passes_is_healthy() {
    let world = World::build().await;
    let id = launched(&world).await;
    world.smoke.answer("health", 502, "warming up");
    let started = health_check::start(&world.ctx, &id_ref(&id)).await.unwrap();
    let first = health_check::check(&world.ctx, &check_of(&started))
        .await
        .unwrap();
    let Poll::Pending { attempt, .. } = first else {
        panic!("{first:?}")
    };
    world.smoke.answer("health", 200, "ok");
    let mut next = check_of(&started);
    next.attempt = attempt;
    let done = health_check::check(&world.ctx, &next).await.unwrap();
    let Poll::Done { detail } = done else {
        panic!("{done:?}")
    };
    assert!(detail.contains("2 consecutive round"), "{detail}");
    let stored = record(&world, &id).await;
    assert!(!stored.has_outcome("health_check", bluegreen::record::StepOutcome::Failed));
}

/// Issue 25 item 3: smoke checks that match real apps — a method, headers (one read from
/// Secrets Manager, never shown), a body, a host name, a JSON match — reach pre-prod as
/// written; a JSON value that differs fails the round, naming the pointer.
#[tokio::test]
async fn a_smoke_check_sends_its_method_headers_body_and_host_and_matches_json() {
    use bluegreen::config::{HeaderValue, JsonMatch, SecretHeader, SmokeCheck};
    let world = World::build().await;
    let token = world
        .ctx
        .ports
        .secrets
        .create_secret(
            "shop/smoke-token",
            r#"{"token":"t0ken-s3cret"}"#,
            None,
            &[("bluegreen:smoke-header".into(), "true".into())],
        )
        .await
        .unwrap();
    let mut config = world.config();
    config.health.smoke = vec![
        SmokeCheck {
            json: Some(JsonMatch {
                pointer: "/status".into(),
                equals: "ok".into(),
            }),
            host: Some("shop.example.com".into()),
            ..SmokeCheck::get("/health")
        },
        SmokeCheck {
            method: "POST".into(),
            headers: [
                (
                    "Authorization".to_owned(),
                    HeaderValue::Secret(SecretHeader {
                        secret: token,
                        key: Some("token".into()),
                    }),
                ),
                (
                    "Content-Type".to_owned(),
                    HeaderValue::Text("application/json".into()),
                ),
            ]
            .into(),
            body: Some(r#"{"sku":"smoke-1","quantity":1}"#.into()),
            expect_status: 201,
            ..SmokeCheck::get("/cart")
        },
    ];
    world.put_config(&config).await;
    world
        .smoke
        .answer("health", 200, r#"{"status":"ok","db":true}"#);
    world.smoke.answer("cart", 201, r#"{"id":"c-1"}"#);
    let id = launched(&world).await;
    let done = health(&world, &id).await.unwrap();
    assert!(matches!(done, Poll::Done { .. }), "{done:?}");

    let seen = world.smoke.seen();
    let health_check = seen
        .iter()
        .find(|s| s.path == "health")
        .expect("GET /health");
    assert_eq!(health_check.method, "GET");
    assert!(
        health_check
            .header("host")
            .is_some_and(|h| h.starts_with("shop.example.com")),
        "{health_check:?}"
    );
    let cart = seen.iter().find(|s| s.path == "cart").expect("POST /cart");
    assert_eq!(cart.method, "POST");
    assert_eq!(cart.header("authorization"), Some("t0ken-s3cret"));
    assert_eq!(cart.header("content-type"), Some("application/json"));
    assert_eq!(cart.body, r#"{"sku":"smoke-1","quantity":1}"#);

    // A JSON value that differs fails the round, naming where; the token is never shown.
    world
        .smoke
        .answer("health", 200, r#"{"status":"degraded","db":false}"#);
    let Poll::Pending { detail, .. } = health(&world, &id).await.unwrap() else {
        panic!("a failed round inside the window is not a verdict");
    };
    assert!(
        detail.contains(r#"JSON at "/status" is "degraded", expected "ok""#)
            && detail.contains("(Host shop.example.com)"),
        "{detail}"
    );
    assert!(!detail.contains("t0ken"), "{detail}");
}

/// A header secret the check cannot use (no such key) is the step's error naming the header
/// and the secret — a configuration problem, not a failed smoke round — and shows no value.
#[tokio::test]
async fn a_smoke_header_secret_without_its_key_is_refused_naming_the_header() {
    use bluegreen::config::{HeaderValue, SecretHeader, SmokeCheck};
    let world = World::build().await;
    let token = world
        .ctx
        .ports
        .secrets
        .create_secret("shop/smoke-token", r#"{"other":"t0ken"}"#, None, &[])
        .await
        .unwrap();
    let mut config = world.config();
    config.health.smoke = vec![SmokeCheck {
        headers: [(
            "Authorization".to_owned(),
            HeaderValue::Secret(SecretHeader {
                secret: token,
                key: Some("token".into()),
            }),
        )]
        .into(),
        ..SmokeCheck::get("/health")
    }];
    world.put_config(&config).await;
    let id = launched(&world).await;
    let err = health(&world, &id).await.unwrap_err();
    assert_eq!(err.name(), "ConfigInvalid", "{err}");
    let text = err.to_string();
    assert!(
        text.contains("headers.Authorization") && text.contains("no text field `token`"),
        "{text}"
    );
    assert!(!text.contains("t0ken"), "{text}");
    assert!(world.smoke.seen().is_empty(), "no request was sent");
}
