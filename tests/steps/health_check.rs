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
