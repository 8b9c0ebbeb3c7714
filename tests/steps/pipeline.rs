//! The deployment as a whole: every failure before the switch ends in abort with production
//! untouched and no pre-prod resource or clone left; a failure after it returns traffic.

use bluegreen::Slot;
use bluegreen::poll::Poll;
use bluegreen::record::Status;
use bluegreen::steps::{abort, approval, bake, finish, promote, rollback, sync_db};
use bluegreen_tests::World;

use crate::common::*;

/// A world whose pre-prod gets an isolated clone, so aborts must also remove a clone.
async fn isolated_world() -> (World, String) {
    let world = World::build().await;
    world.use_isolated_db().await;
    let blue_td = world.service(Slot::Blue).await.0;
    (world, blue_td)
}

async fn abort_and_check(world: &World, id: &str, error: &str, blue_td: &str) {
    let ended = abort::run(&world.ctx, &failure(id, error)).await.unwrap();
    assert_eq!(ended.status, Status::Aborted);
    assert_untouched(world, blue_td).await;
    assert_eq!(world.lock_holder().await, None);
    assert!(record(world, id).await.failure.unwrap().starts_with(error));
}

#[tokio::test]
async fn a_failed_launch_aborts_with_production_untouched() {
    let (world, blue_td) = isolated_world().await;
    let id = prepare_push(&world, "v2", "event-1").await;
    sync(&world, &id).await;
    let err = failed_launch(&world, &id).await;
    abort_and_check(&world, &id, err.name(), &blue_td).await;
}

#[tokio::test]
async fn a_failed_sync_aborts_with_production_untouched() {
    let (world, blue_td) = isolated_world().await;
    let id = prepare_push(&world, "v2", "event-1").await;
    let mut late = check_of(&sync_db::start(&world.ctx, &id_ref(&id)).await.unwrap());
    // The clone is gone before it became available (deleted by hand, say).
    let clone = record(&world, &id).await.clones[0].identifier.clone();
    world
        .aws
        .rds
        .delete_db_instance()
        .db_instance_identifier(&clone)
        .skip_final_snapshot(true)
        .send()
        .await
        .unwrap();
    late.deadline = world.now();
    let err = sync_db::check(&world.ctx, &late).await.unwrap_err();
    assert_eq!(err.name(), "SyncFailed", "{err}");
    abort_and_check(&world, &id, err.name(), &blue_td).await;
}

#[tokio::test]
async fn a_failed_migration_aborts_with_production_untouched() {
    let (world, blue_td) = isolated_world().await;
    let id = prepare_push(&world, "v2", "event-1").await;
    sync(&world, &id).await;
    launch(&world, &id).await;
    let err = migrate_with(&world, &id, Some(2)).await.unwrap_err();
    abort_and_check(&world, &id, err.name(), &blue_td).await;
}

#[tokio::test]
async fn a_failed_health_check_aborts_with_production_untouched() {
    let (world, blue_td) = isolated_world().await;
    let id = prepare_push(&world, "v2", "event-1").await;
    sync(&world, &id).await;
    launch(&world, &id).await;
    migrate_with(&world, &id, Some(0)).await.unwrap();
    world.smoke.answer("health", 500, "boom");
    let err = health_past_deadline(&world, &id).await.unwrap_err();
    abort_and_check(&world, &id, err.name(), &blue_td).await;
}

#[tokio::test]
async fn an_alarm_firing_before_the_switch_fails_promote_and_aborts_with_production_untouched() {
    let world = World::build().await;
    let blue_td = world.service(Slot::Blue).await.0;
    let id = deploy_to_approval(&world).await;
    approval::decide(&world.ctx, &id, &decision(true))
        .await
        .unwrap();
    world.raise_alarm("shop-5xx", "5xx above threshold").await;
    let started = promote::start(&world.ctx, &id_ref(&id)).await.unwrap();
    let err = promote::check(&world.ctx, &check_of(&started))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "AlarmFiring", "{err}");
    assert!(err.to_string().contains("shop-5xx"), "{err}");
    assert!(record(&world, &id).await.switched_at.is_none());
    abort_and_check(&world, &id, err.name(), &blue_td).await;
}

#[tokio::test]
async fn a_rejected_approval_aborts_with_production_untouched() {
    let (world, blue_td) = isolated_world().await;
    let id = deploy_to_approval(&world).await;
    approval::decide(&world.ctx, &id, &decision(false))
        .await
        .unwrap();
    abort_and_check(&world, &id, "ApprovalRejected", &blue_td).await;
    let approval = record(&world, &id).await.approval.unwrap();
    assert_eq!(
        (approval.decision, approval.reason.as_deref()),
        (
            Some(bluegreen::record::Verdict::Rejected),
            Some("not today")
        )
    );
}

#[tokio::test]
async fn an_approval_timeout_aborts_with_production_untouched() {
    let (world, blue_td) = isolated_world().await;
    let id = deploy_to_approval(&world).await;
    // The state machine's task timeout fires: States.Timeout, mapped to ApprovalTimedOut.
    abort_and_check(&world, &id, "ApprovalTimedOut", &blue_td).await;
}

#[tokio::test]
async fn a_bake_alarm_rolls_back_to_the_old_slot() {
    let world = World::build().await;
    let id = deploy_to_switch(&world).await;
    let started = bake_start(&world, &id).await;
    world.raise_alarm("shop-5xx", "errors").await;
    let err = bake::check(&world.ctx, &check_of(&started))
        .await
        .unwrap_err();
    let ended = rollback::run(&world.ctx, &failure(&id, err.name()))
        .await
        .unwrap();
    assert_eq!(ended.status, Status::RolledBack);
    assert_eq!(world.production().await.live().unwrap(), Slot::Blue);
    assert_eq!(
        world.service(Slot::Blue).await.1,
        2,
        "the old slot served throughout"
    );
}

#[tokio::test]
async fn a_full_deployment_then_a_second_one_deploys_back_to_blue() {
    let world = World::build().await;
    let id = deploy_to_switch(&world).await;
    let started = bake_start(&world, &id).await;
    world.advance(chrono::Duration::seconds(61));
    assert!(matches!(
        bake::check(&world.ctx, &check_of(&started)).await.unwrap(),
        Poll::Done { .. }
    ));
    finish::run(&world.ctx, &id_ref(&id)).await.unwrap();
    assert_eq!(record(&world, &id).await.status, Status::Succeeded);
    // A replayed push event finds the finished deployment and starts nothing.
    let replay = bluegreen::steps::prepare::run(
        &world.ctx,
        &bluegreen_tests::push_event("v2", 'a', "event-1", &pushed_at("event-1")),
    )
    .await
    .unwrap();
    let bluegreen::steps::prepare::Prepared::Deployments { deployments } = replay else {
        panic!("{replay:?}")
    };
    assert_eq!(
        deployments[0].outcome,
        bluegreen::steps::prepare::PreparedOutcome::Ended
    );
    assert_eq!(world.lock_holder().await, None);

    let second = prepare_push(&world, "v3", "event-2").await;
    assert_eq!(
        record(&world, &second).await.target_slot().unwrap(),
        Slot::Blue
    );
    launch(&world, &second).await;
    migrate_with(&world, &second, Some(0)).await.unwrap();
    health(&world, &second).await.unwrap();
    approve(&world, &second).await;
    switch_all(&world, &second).await;
    assert_eq!(world.production().await.live().unwrap(), Slot::Blue);
    let timeline: Vec<String> = record(&world, &second)
        .await
        .timeline
        .iter()
        .map(|e| format!("{}:{}", e.step, e.outcome))
        .collect();
    assert!(
        timeline.contains(&"switch:succeeded".to_owned()),
        "{timeline:?}"
    );
}
