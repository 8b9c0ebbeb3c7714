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

/// Issue 21, item 9: a push that lands on a warm slot (the previous production, kept running
/// by `keep_warm_seconds`) and is aborted puts the slot back — its own revision, its task
/// count, and its warm mark with its own expiry, so the scheduled teardown still scales it
/// down — and, in isolated mode, waits for ECS to replace the pre-prod tasks before it deletes
/// their clone, instead of ending in a spurious needs-attention.
#[tokio::test]
async fn an_abort_on_a_warm_slot_keeps_it_warm_and_deletes_the_clone_once_drained() {
    let world = World::build().await;
    let mut config = world.config();
    config.finish.keep_warm_seconds = 3600;
    world.put_config(&config).await;
    let first = deploy_to_switch(&world).await;
    bluegreen::steps::finish::run(&world.ctx, &id_ref(&first))
        .await
        .unwrap();
    let (warm_td, warm_count, warm_tags) = world.service(Slot::Blue).await;
    assert_eq!(warm_count, 2);
    let role = |tags: &[(String, String)], key: &str| {
        tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    };
    assert_eq!(role(&warm_tags, "bluegreen:role").as_deref(), Some("warm"));

    world.use_isolated_db().await;
    let id = prepare_push(&world, "v3", "event-2").await;
    sync(&world, &id).await;
    launch(&world, &id).await;
    let preprod_td = record(&world, &id).await.task_definitions.preprod.unwrap();
    assert_eq!(
        world.service(Slot::Blue).await.0,
        preprod_td,
        "launched on the warm slot"
    );
    let clone = record(&world, &id).await.clones[0].identifier.clone();

    // ECS still drains the pre-prod tasks (on the clone) when the abort runs.
    world
        .settle_draining(Slot::Blue, "IN_PROGRESS", &[preprod_td.as_str()])
        .await;
    let waiting = abort::run(&world.ctx, &failure(&id, "HealthCheckFailed"))
        .await
        .unwrap();
    assert!(waiting.wait.is_some(), "{waiting:?}");
    let (td, count, tags) = world.service(Slot::Blue).await;
    assert_eq!((td.as_str(), count), (warm_td.as_str(), 2));
    for key in [
        "bluegreen:role",
        "bluegreen:expires-at",
        "bluegreen:deployment-id",
    ] {
        assert_eq!(role(&tags, key), role(&warm_tags, key), "{key}: {tags:?}");
    }
    assert!(
        world.db_instances().await.contains(&clone),
        "the clone waits"
    );
    assert_eq!(world.lock_holder().await.as_deref(), Some(id.as_str()));

    // ECS has replaced them: the abort ends, the clone is deleted, the service is free.
    world.settle(Slot::Blue, "COMPLETED").await;
    let ended = abort::run(&world.ctx, &failure(&id, "HealthCheckFailed"))
        .await
        .unwrap();
    assert_eq!(ended.status, Status::Aborted, "{}", ended.detail);
    assert_eq!(world.db_instances().await, vec!["shop-db".to_owned()]);
    assert_eq!(world.lock_holder().await, None);
    assert_eq!(world.production().await.live().unwrap(), Slot::Green);

    // The warm slot still expires: teardown scales it down when its time is up.
    world.advance(chrono::Duration::seconds(3601));
    let report = bluegreen::steps::teardown::run(&world.ctx).await.unwrap();
    assert!(
        report
            .removed
            .iter()
            .any(|r| r.contains("shop-blue scaled to 0")),
        "{report:?}"
    );
    assert_eq!(world.service(Slot::Blue).await.1, 0);
    assert_eq!(
        world.service(Slot::Green).await.1,
        2,
        "the live slot is untouched"
    );
}
