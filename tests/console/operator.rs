//! The manual rollback: inside the keep-warm window, with the old slot running, traffic goes
//! back and the deployment is recorded as rolled back by the operator; otherwise it is refused
//! and production stays where it is.

use bluegreen::Slot;
use bluegreen::operator::manual_rollback;
use bluegreen::record::Status;
use bluegreen::steps::finish;

use crate::*;

const OPERATOR: &str = "arn:aws:iam::123456789012:user/oncall";

/// Deploys v2 to green and finishes with blue kept warm for an hour, blue's tasks running.
async fn finished_with_warm_blue(world: &World) -> String {
    let mut config = world.config();
    config.finish.keep_warm_seconds = 3600;
    world.put_config(&config).await;
    let id = deploy_to_switch(world).await;
    finish::run(&world.ctx, &id_ref(&id)).await.expect("finish");
    world.settle(Slot::Blue, "COMPLETED").await;
    id
}

#[tokio::test]
async fn a_rollback_in_the_keep_warm_window_sends_traffic_back_once() {
    let world = World::build().await.with_topic();
    let id = finished_with_warm_blue(&world).await;
    let done = manual_rollback(&world.ctx, "shop", OPERATOR).await.unwrap();
    assert_eq!((done.live_slot, done.from_slot), (Slot::Blue, Slot::Green));
    assert_eq!(done.deployment_id, id);
    let production = world.production().await;
    assert_eq!(production.percent(Slot::Blue), 100, "{production:?}");
    assert_eq!(world.test_slot().await, Some(Slot::Green));
    assert_eq!(
        world.service(Slot::Green).await.1,
        0,
        "the bad slot is scaled down"
    );
    let blue_tags = world.service(Slot::Blue).await.2;
    assert!(
        !blue_tags.iter().any(|(k, _)| k == "bluegreen:expires-at"),
        "teardown would scale the live slot down: {blue_tags:?}"
    );
    let d = stored(&world, &id).await;
    assert_eq!(d.status, Status::RolledBack);
    let entry = d.timeline.last().unwrap();
    assert_eq!(entry.step, "manual_rollback");
    assert!(entry.detail.contains(OPERATOR), "{entry:?}");
    assert_eq!(world.lock_holder().await, None, "the lock is released");
    let kinds: Vec<String> = world
        .published()
        .await
        .iter()
        .map(|m| m["attributes"]["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds.last().map(String::as_str), Some("rolled_back"));

    let again = manual_rollback(&world.ctx, "shop", OPERATOR)
        .await
        .unwrap_err();
    assert_eq!(again.name(), "RollbackRefused");
    assert!(again.to_string().contains("already rolled back"), "{again}");
}

#[tokio::test]
async fn a_rollback_after_the_window_or_during_a_deployment_is_refused() {
    let world = World::build().await;
    finished_with_warm_blue(&world).await;
    world.advance(chrono::Duration::seconds(3700));
    let late = manual_rollback(&world.ctx, "shop", OPERATOR)
        .await
        .unwrap_err();
    assert_eq!(late.name(), "RollbackRefused");
    assert!(late.to_string().contains("keep-warm window"), "{late}");
    assert_eq!(world.production().await.live().unwrap(), Slot::Green);

    let busy = prepare_push(&world, "v3", "event-9").await;
    let refused = manual_rollback(&world.ctx, "shop", OPERATOR)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains(&busy), "{refused}");
    assert_eq!(world.production().await.live().unwrap(), Slot::Green);
    assert_eq!(world.lock_holder().await.as_deref(), Some(busy.as_str()));
}

#[tokio::test]
async fn a_rollback_refuses_when_the_old_slot_no_longer_runs() {
    let world = World::build().await;
    finished_with_warm_blue(&world).await;
    // Someone scaled the warm slot down by hand.
    world
        .aws
        .ecs
        .update_service()
        .cluster("shop-cluster")
        .service("shop-blue")
        .desired_count(0)
        .send()
        .await
        .unwrap();
    let refused = manual_rollback(&world.ctx, "shop", OPERATOR)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("no longer warm"), "{refused}");
    assert_eq!(world.production().await.live().unwrap(), Slot::Green);
    assert_eq!(world.lock_holder().await, None);
}

#[tokio::test]
async fn a_service_without_deployments_is_unknown() {
    let world = World::build().await;
    let e = manual_rollback(&world.ctx, "nope", OPERATOR)
        .await
        .unwrap_err();
    assert_eq!(e.name(), "ServiceNotFound");
}
