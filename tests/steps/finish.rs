//! Finish: the old slot to zero (or warm), clones gone, lock released, outcome notified.

use bluegreen::Slot;
use bluegreen::record::Status;
use bluegreen::steps::finish;
use bluegreen_tests::World;

use crate::common::*;

#[tokio::test]
async fn finish_scales_the_old_slot_to_zero_releases_the_lock_and_is_idempotent() {
    let world = World::build().await.with_topic();
    let id = deploy_to_switch(&world).await;
    let first = finish::run(&world.ctx, &id_ref(&id)).await.unwrap();
    assert_eq!(first.status, Status::Succeeded);
    assert_eq!(world.service(Slot::Blue).await.1, 0);
    let (_, green_count, green_tags) = world.service(Slot::Green).await;
    assert_eq!(green_count, 2);
    assert!(
        !green_tags.iter().any(|(k, _)| k == "bluegreen:role"),
        "the live slot is no longer pre-prod: {green_tags:?}"
    );
    assert_eq!(world.lock_holder().await, None);
    let again = finish::run(&world.ctx, &id_ref(&id)).await.unwrap();
    assert_eq!(again, first);
    let subjects = world.published_subjects().await;
    assert_eq!(
        subjects,
        vec![
            "bluegreen: shop awaits approval".to_owned(),
            "bluegreen: shop awaits approval".to_owned(),
            "bluegreen: shop awaits approval".to_owned(),
            "bluegreen: shop succeeded".to_owned()
        ],
        "one approval request per approver (three), then the outcome"
    );
}

#[tokio::test]
async fn keep_warm_leaves_the_old_slot_running_and_tagged_with_its_expiry() {
    let world = World::build().await;
    let mut config = world.config();
    config.finish.keep_warm_seconds = 3600;
    world.put_config(&config).await;
    let id = deploy_to_switch(&world).await;
    finish::run(&world.ctx, &id_ref(&id)).await.unwrap();
    let (_, blue_count, blue_tags) = world.service(Slot::Blue).await;
    assert_eq!(blue_count, 2);
    assert!(
        blue_tags.contains(&("bluegreen:role".into(), "warm".into())),
        "{blue_tags:?}"
    );
}

#[tokio::test]
async fn finish_refuses_when_production_is_not_on_the_new_slot() {
    let world = World::build().await;
    let id = deploy_to_switch(&world).await;
    bluegreen::routing::set_production(&world.ctx, &world.config(), Slot::Blue, 100)
        .await
        .unwrap();
    let err = finish::run(&world.ctx, &id_ref(&id)).await.unwrap_err();
    assert_eq!(err.name(), "UnexpectedRouting");
    assert_eq!(
        world.service(Slot::Blue).await.1,
        2,
        "the slot serving production kept its tasks"
    );
}
