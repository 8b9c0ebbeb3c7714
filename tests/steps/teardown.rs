//! Scheduled teardown: expired pre-prod and clones go; live slots and running deployments stay.

use bluegreen::Slot;
use bluegreen::steps::{abort, teardown};
use bluegreen_tests::World;

use crate::common::*;

#[tokio::test]
async fn expired_resources_of_running_deployments_are_kept_and_nothing_live_is_touched() {
    let world = World::build().await;
    let id = prepare_push(&world, "v2", "event-1").await;
    launch(&world, &id).await;
    world.advance(chrono::Duration::hours(25));
    let report = teardown::run(&world.ctx).await.unwrap();
    assert!(report.removed.is_empty(), "{report:?}");
    assert!(report.kept.iter().any(|k| k.contains(&id)), "{report:?}");
    assert_eq!(world.service(Slot::Green).await.1, 2);
    assert_eq!(world.service(Slot::Blue).await.1, 2);
}

#[tokio::test]
async fn an_expired_warm_slot_is_scaled_down_but_never_the_live_one() {
    let world = World::build().await;
    let mut config = world.config();
    config.finish.keep_warm_seconds = 600;
    world.put_config(&config).await;
    let id = deploy_to_switch(&world).await;
    bluegreen::steps::finish::run(&world.ctx, &id_ref(&id))
        .await
        .unwrap();
    assert!(
        teardown::run(&world.ctx).await.unwrap().removed.is_empty(),
        "not expired yet"
    );
    world.advance(chrono::Duration::seconds(601));
    let report = teardown::run(&world.ctx).await.unwrap();
    assert_eq!(
        report.removed,
        vec!["ECS service shop-cluster/shop-blue scaled to 0".to_owned()]
    );
    assert_eq!(world.service(Slot::Blue).await.1, 0);
    assert_eq!(
        world.service(Slot::Green).await.1,
        2,
        "the live slot is untouched"
    );
    assert!(
        teardown::run(&world.ctx).await.unwrap().removed.is_empty(),
        "a second pass removes nothing"
    );
}

#[tokio::test]
async fn an_orphaned_clone_past_its_expiry_is_deleted() {
    let world = World::build().await;
    world.use_isolated_db().await;
    let id = prepare_push(&world, "v2", "event-1").await;
    bluegreen::steps::sync_db::start(&world.ctx, &id_ref(&id))
        .await
        .unwrap();
    // The deployment ended without its clone being removed (say, abort crashed half-way).
    world
        .aws
        .dynamodb
        .update_item()
        .table_name("bluegreen-deployments")
        .key(
            "deployment_id",
            aws_sdk_dynamodb::types::AttributeValue::S(id.clone()),
        )
        .update_expression("SET clones = :none")
        .expression_attribute_values(":none", aws_sdk_dynamodb::types::AttributeValue::L(vec![]))
        .send()
        .await
        .unwrap();
    abort::run(&world.ctx, &failure(&id, "SyncFailed"))
        .await
        .unwrap();
    assert_eq!(
        world.db_instances().await.len(),
        2,
        "the orphan is still there"
    );
    world.advance(chrono::Duration::hours(25));
    let report = teardown::run(&world.ctx).await.unwrap();
    assert_eq!(report.removed.len(), 1, "{report:?}");
    assert_eq!(world.db_instances().await, vec!["shop-db".to_owned()]);
}

#[tokio::test]
async fn teardown_keeps_an_expired_clone_a_running_slot_uses_and_removes_a_stale_maintenance_page()
{
    let world = World::build().await;
    let (id, ended) = aborted_with_the_clone_in_use(&world).await;
    assert_eq!(ended.status, bluegreen::record::Status::NeedsAttention);
    // A maintenance page the ended deployment left behind (its ending crashed, say).
    bluegreen::maintenance::switch_on(&world.ctx, &record(&world, &id).await)
        .await
        .unwrap();
    assert_eq!(world.listener_rules().await.len(), 1);
    world.advance(chrono::Duration::hours(25));
    let report = teardown::run(&world.ctx).await.unwrap();
    let clone = record(&world, &id).await.clones[0].identifier.clone();
    assert!(world.db_instances().await.contains(&clone), "{report:?}");
    assert!(
        report
            .kept
            .iter()
            .any(|k| k.contains(&clone) && k.contains("running slot")),
        "{report:?}"
    );
    assert!(world.listener_rules().await.is_empty(), "{report:?}");
    assert!(
        report
            .removed
            .iter()
            .any(|r| r.contains("maintenance rule")),
        "{report:?}"
    );
}

#[tokio::test]
async fn teardown_goes_on_past_a_service_it_cannot_read_and_leaves_locked_slots_alone() {
    let world = World::build().await;
    // `gone`: a registered service whose slot services were deleted by hand.
    let mut gone = world.config();
    gone.name = "gone".into();
    gone.cluster = "deleted-cluster".into();
    world.put_config(&gone).await;
    // `shop`: an expired pre-prod, but the service is locked (an operator's manual rollback).
    let id = launched(&world).await;
    // Its deployment ended without cleaning up (so teardown would scale it down) and the lock
    // went to an operator.
    bluegreen::record::Records::new(&world.ctx)
        .update(
            &id,
            bluegreen::record::Change::new().status(bluegreen::record::Status::Aborted),
        )
        .await
        .unwrap();
    bluegreen::lock::Locks::new(&world.ctx)
        .release("shop", &id)
        .await
        .unwrap();
    bluegreen::lock::Locks::new(&world.ctx)
        .hold(
            "shop",
            "shop-x-manual-rollback",
            world.now() + chrono::Duration::hours(48),
        )
        .await
        .unwrap();
    world.advance(chrono::Duration::hours(25));
    let report = teardown::run(&world.ctx).await.unwrap();
    assert!(
        report.kept.iter().any(|k| k.starts_with("gone:")),
        "the unreadable service is reported: {report:?}"
    );
    assert!(
        report
            .kept
            .iter()
            .any(|k| k.contains("locked by shop-x-manual-rollback")),
        "{report:?}"
    );
    assert_eq!(
        world.service(Slot::Green).await.1,
        2,
        "locked slot left running"
    );
}
