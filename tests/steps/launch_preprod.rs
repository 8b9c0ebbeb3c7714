//! Launch pre-prod: a digest-pinned revision on the idle slot at the live slot's count.

use bluegreen::Slot;
use bluegreen::poll::Poll;
use bluegreen::steps::launch_preprod;
use bluegreen_tests::World;

use crate::common::*;

#[tokio::test]
async fn launch_pins_the_image_by_digest_on_the_idle_slot_and_a_rerun_changes_nothing() {
    let world = World::build().await;
    let (blue_td, _, _) = world.service(Slot::Blue).await;
    let id = prepare_push(&world, "v2", "event-1").await;
    let first = launch_preprod::start(&world.ctx, &id_ref(&id))
        .await
        .unwrap();
    let (green_td, green_count, tags) = world.service(Slot::Green).await;
    assert_ne!(green_td, blue_td);
    assert_eq!(
        green_count, 2,
        "pre-prod runs at the live slot's desired count"
    );
    assert!(
        tags.contains(&("bluegreen:deployment-id".into(), id.clone())),
        "{tags:?}"
    );
    assert!(tags.iter().any(|(k, _)| k == "bluegreen:expires-at"));
    let td = world
        .aws
        .ecs
        .describe_task_definition()
        .task_definition(&green_td)
        .send()
        .await
        .unwrap();
    let container = &td.task_definition.unwrap().container_definitions.unwrap()[0];
    assert_eq!(
        container.image.as_deref(),
        Some(
            format!(
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/web@sha256:{}",
                "a".repeat(64)
            )
            .as_str()
        )
    );
    assert_eq!(
        container.memory,
        Some(512),
        "everything but the image is kept"
    );
    assert_eq!(
        container.environment.as_ref().unwrap()[0].value.as_deref(),
        Some("shop-db.prod.internal")
    );

    let second = launch_preprod::start(&world.ctx, &id_ref(&id))
        .await
        .unwrap();
    assert_eq!(second, first, "same answer, same deadline");
    assert_eq!(
        world.service(Slot::Green).await.0,
        green_td,
        "no second revision"
    );
    assert_eq!(
        world.revisions().await,
        2,
        "one original + one pre-prod revision"
    );

    // Not done until ECS reports the rollout complete.
    let pending = launch_preprod::check(&world.ctx, &check_of(&first))
        .await
        .unwrap();
    // The state machine waits for ECS's deployment event on the pre-prod service (the slow
    // path after 30 s), as `bluegreen::wakes` says.
    let Poll::Pending {
        wait_seconds,
        attempt: 1,
        wake_on: Some(key),
        ..
    } = &pending
    else {
        panic!("{pending:?}")
    };
    assert_eq!(*wait_seconds, bluegreen::wakes::SLOW_PATH_SECONDS);
    let preprod = record(&world, &first.deployment_id).await.preprod.unwrap();
    let key_of_green = bluegreen::wakes::service_key("shop-cluster", "shop-green");
    assert_eq!(preprod.service, "shop-green");
    assert_eq!(key, &key_of_green);
    world.settle(Slot::Green, "COMPLETED").await;
    let done = launch_preprod::check(&world.ctx, &check_of(&first))
        .await
        .unwrap();
    assert!(matches!(done, Poll::Done { .. }), "{done:?}");
}

#[tokio::test]
async fn a_failed_rollout_is_launch_failed() {
    let world = World::build().await;
    let id = prepare_push(&world, "v2", "event-1").await;
    let err = failed_launch(&world, &id).await;
    assert_eq!(err.name(), "LaunchFailed", "{err}");
    assert!(err.to_string().contains("shop-green"), "{err}");
}

#[tokio::test]
async fn a_rollout_still_in_progress_at_the_deadline_is_launch_failed() {
    let world = World::build().await;
    let id = prepare_push(&world, "v2", "event-1").await;
    let mut check = check_of(
        &launch_preprod::start(&world.ctx, &id_ref(&id))
            .await
            .unwrap(),
    );
    check.deadline = world.now() - chrono::Duration::seconds(1);
    let err = launch_preprod::check(&world.ctx, &check).await.unwrap_err();
    assert_eq!(err.name(), "LaunchFailed");
    assert!(err.to_string().contains("deadline"), "{err}");
}

#[tokio::test]
async fn a_missing_container_or_unknown_deployment_is_a_typed_error_that_changes_nothing() {
    let world = World::build().await;
    let mut config = world.config();
    config.container = "api".into();
    world.put_config(&config).await;
    let id = prepare_push(&world, "v2", "event-1").await;
    let err = launch_preprod::start(&world.ctx, &id_ref(&id))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "ConfigInvalid", "{err}");
    assert_eq!(
        world.service(Slot::Green).await.1,
        0,
        "the idle slot was not touched"
    );
    let err = launch_preprod::start(&world.ctx, &id_ref("shop-nope"))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "DeploymentNotFound");
}

/// Issue 22: ECS's deployment circuit breaker gives up on pre-prod's revision and rolls the
/// service back to its previous one (PRIMARY on the old revision, ours draining as FAILED).
/// The launch fails at the next look with the breaker's reason — not after waiting out its
/// whole timeout with "not stable by the deadline".
#[tokio::test]
async fn a_circuit_breaker_rollback_fails_the_launch_with_its_reason() {
    let world = World::build().await;
    let (previous, _, _) = world.service(Slot::Green).await;
    let id = prepare_push(&world, "v2", "event-1").await;
    let started = launch_preprod::start(&world.ctx, &id_ref(&id))
        .await
        .unwrap();
    world
        .emulator
        .control(
            "POST",
            "/_bluegreen/ecs/circuit-breaker",
            serde_json::json!({
                "cluster": "shop-cluster",
                "service": "shop-green",
                "previous": previous,
                "reason": "ECS deployment circuit breaker: tasks failed to start.",
            }),
        )
        .await;
    let err = launch_preprod::check(&world.ctx, &check_of(&started))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "LaunchFailed");
    assert!(err.to_string().contains("tasks failed to start"), "{err}");
    assert!(err.to_string().contains("rolled it back"), "{err}");
}
