//! Abort: pre-prod back to how it was, production untouched, lock released or handed over.

use bluegreen::Slot;
use bluegreen::naming;
use bluegreen::record::Status;
use bluegreen::steps::abort;
use bluegreen::steps::prepare::{self, Prepared};
use bluegreen_tests::{World, push_event};

use crate::common::*;

#[tokio::test]
async fn abort_restores_pre_prod_stops_the_migration_and_a_rerun_answers_the_same() {
    let world = World::build().await;
    let (blue_td, _, _) = world.service(Slot::Blue).await;
    let id = prepare_push(&world, "v2", "event-1").await;
    launch(&world, &id).await;
    bluegreen::steps::migrate::start(&world.ctx, &id_ref(&id))
        .await
        .unwrap();
    let first = abort::run(&world.ctx, &failure(&id, "HealthCheckFailed"))
        .await
        .unwrap();
    assert_eq!(first.status, Status::Aborted);
    assert_untouched(&world, &blue_td).await;
    let migration = world
        .tasks_started_by(&naming::started_by(&id, "migrate"))
        .await;
    assert_eq!(
        world.task(&migration[0]).await.desired_status.as_deref(),
        Some("STOPPED"),
        "the migration was stopped"
    );
    assert_eq!(world.lock_holder().await, None, "lock released");
    let stored = record(&world, &id).await;
    assert_eq!(
        stored.failure.as_deref(),
        Some("HealthCheckFailed: caught by the test")
    );

    let again = abort::run(&world.ctx, &failure(&id, "HealthCheckFailed"))
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(
        record(&world, &id).await.updated_at,
        stored.updated_at,
        "nothing written twice"
    );
}

#[tokio::test]
async fn abort_refuses_when_production_already_sends_traffic_to_pre_prod() {
    let world = World::build().await;
    let id = prepare_push(&world, "v2", "event-1").await;
    launch(&world, &id).await;
    bluegreen::routing::set_production(&world.ctx, &world.config(), Slot::Green, 100)
        .await
        .unwrap();
    let err = abort::run(&world.ctx, &failure(&id, "States.Timeout"))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "UnexpectedRouting", "{err}");
    assert_eq!(
        world.service(Slot::Green).await.1,
        2,
        "the slot serving production was not scaled down"
    );
}

#[tokio::test]
async fn abort_hands_the_lock_to_the_queued_push() {
    let world = World::build().await;
    let id = prepare_push(&world, "v2", "event-1").await;
    let queued = match prepare::run(
        &world.ctx,
        &push_event("v3", 'b', "event-2", "2026-11-21T10:05:00Z"),
    )
    .await
    .unwrap()
    {
        Prepared::Deployments { deployments } => deployments[0].deployment_id.clone(),
        other => panic!("{other:?}"),
    };
    let ended = abort::run(&world.ctx, &failure(&id, "LaunchFailed"))
        .await
        .unwrap();
    assert_eq!(ended.next_deployment.as_deref(), Some(queued.as_str()));
    assert_eq!(world.lock_holder().await.as_deref(), Some(queued.as_str()));
    // The queued deployment resumes with the lock it was handed.
    let resumed = prepare::run(&world.ctx, &serde_json::json!({"resume": queued}))
        .await
        .unwrap();
    let Prepared::Deployments { deployments } = resumed else {
        panic!()
    };
    assert_eq!(deployments[0].target_slot, Some(Slot::Green));
    assert_eq!(record(&world, &queued).await.status, Status::Preparing);
}
