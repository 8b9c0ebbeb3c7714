//! Rollback: after the switch, traffic back to the old slot, verified; the failed slot to zero.

use bluegreen::Slot;
use bluegreen::record::Status;
use bluegreen::steps::rollback;
use bluegreen_tests::World;

use crate::common::*;

#[tokio::test]
async fn rollback_returns_traffic_to_blue_scales_green_to_zero_and_is_idempotent() {
    let world = World::build().await.with_topic();
    let id = deploy_to_switch(&world).await;
    let first = rollback::run(&world.ctx, &failure(&id, "BakeFailed"))
        .await
        .unwrap();
    assert_eq!(first.status, Status::RolledBack);
    let production = world.production().await;
    assert_eq!(
        (
            production.percent(Slot::Blue),
            production.percent(Slot::Green)
        ),
        (100, 0)
    );
    assert_eq!(world.test_slot().await, Some(Slot::Green));
    assert_eq!(world.service(Slot::Green).await.1, 0);
    assert_eq!(
        world.service(Slot::Blue).await.1,
        2,
        "the old slot kept serving"
    );
    assert_eq!(world.lock_holder().await, None);
    let subjects = world.published_subjects().await;
    assert_eq!(
        subjects.last().map(String::as_str),
        Some("bluegreen: shop was rolled back"),
        "{subjects:?}"
    );

    let again = rollback::run(&world.ctx, &failure(&id, "BakeFailed"))
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(
        world.published().await.len(),
        subjects.len(),
        "no second notification"
    );
}

#[tokio::test]
async fn rollback_in_the_middle_of_a_canary_restores_all_traffic() {
    let world = World::build().await;
    let mut config = world.config();
    if let bluegreen::config::Traffic::Listener { shift, .. } = &mut config.traffic {
        *shift = Some(bluegreen::config::Shift::Linear {
            step_percent: 20,
            interval_seconds: 60,
        });
    }
    world.put_config(&config).await;
    let id = prepare_push(&world, "v2", "event-1").await;
    launch(&world, &id).await;
    health(&world, &id).await.unwrap();
    approve(&world, &id).await;
    bluegreen::steps::switch::start(&world.ctx, &id_ref(&id))
        .await
        .unwrap();
    assert_eq!(world.production().await.percent(Slot::Green), 20);
    rollback::run(&world.ctx, &failure(&id, "States.Timeout"))
        .await
        .unwrap();
    assert_eq!(world.production().await.percent(Slot::Blue), 100);
}

#[tokio::test]
async fn rollback_of_an_unknown_deployment_is_a_typed_error() {
    let world = World::build().await;
    let err = rollback::run(&world.ctx, &failure("shop-missing", "BakeFailed"))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "DeploymentNotFound");
    assert_eq!(world.production().await.live().unwrap(), Slot::Blue);
}
