//! Switch: production to the new slot in one call, read back; canary steps; DNS mode.

use bluegreen::Slot;
use bluegreen::config::{Shift, Traffic};
use bluegreen::poll::Poll;
use bluegreen::steps::switch;
use bluegreen_tests::World;

use crate::common::*;

/// The world's service switches by a canary: 10 %, then everything after 300 s.
async fn with_canary(world: &World) {
    let mut config = world.config();
    if let Traffic::Listener { shift, .. } = &mut config.traffic {
        *shift = Some(Shift::Canary {
            percent: 10,
            interval_seconds: 300,
        });
    }
    world.put_config(&config).await;
}

async fn approved(world: &World) -> String {
    let id = prepare_push(world, "v2", "event-1").await;
    launch(world, &id).await;
    health(world, &id).await.unwrap();
    approve(world, &id).await;
    id
}

#[tokio::test]
async fn the_switch_moves_production_to_green_and_the_test_listener_to_blue_once() {
    let world = World::build().await;
    let id = approved(&world).await;
    switch_all(&world, &id).await;
    let production = world.production().await;
    assert_eq!(production.live().unwrap(), Slot::Green);
    assert_eq!(world.test_slot().await, Some(Slot::Blue));
    let switched_at = record(&world, &id).await.switched_at;
    switch_all(&world, &id).await;
    assert_eq!(
        world.production().await,
        production,
        "a rerun changes nothing"
    );
    assert_eq!(record(&world, &id).await.switched_at, switched_at);
}

#[tokio::test]
async fn without_an_approval_the_switch_refuses_and_production_stays() {
    let world = World::build().await;
    let id = prepare_push(&world, "v2", "event-1").await;
    launch(&world, &id).await;
    request_approval(&world, &id).await;
    let err = switch::start(&world.ctx, &id_ref(&id)).await.unwrap_err();
    assert_eq!(err.name(), "SwitchFailed", "{err}");
    assert_eq!(world.production().await.live().unwrap(), Slot::Blue);
}

#[tokio::test]
async fn a_canary_sends_its_share_first_and_everything_after_the_interval() {
    let world = World::build().await;
    with_canary(&world).await;
    let id = approved(&world).await;
    let started = switch::start(&world.ctx, &id_ref(&id)).await.unwrap();
    assert_eq!(started.wait_seconds, 300);
    let production = world.production().await;
    assert_eq!(
        (
            production.percent(Slot::Green),
            production.percent(Slot::Blue)
        ),
        (10, 90)
    );
    assert!(matches!(
        switch::check(&world.ctx, &check_of(&started))
            .await
            .unwrap(),
        Poll::Pending { .. }
    ));
    world.advance(chrono::Duration::seconds(301));
    assert!(matches!(
        switch::check(&world.ctx, &check_of(&started))
            .await
            .unwrap(),
        Poll::Done { .. }
    ));
    assert_eq!(world.production().await.percent(Slot::Green), 100);
}

#[tokio::test]
async fn dns_mode_waits_for_the_old_ttl_then_swaps_weights_in_one_batch() {
    let world = World::build().await;
    world.put_config(&world.dns_config()).await;
    let id = prepare_push(&world, "v2", "event-1").await;
    launch(&world, &id).await;
    assert_eq!(
        world.production_dns().await.ttl,
        Some(30),
        "TTL lowered ahead of the switch"
    );
    health(&world, &id).await.unwrap();
    approve(&world, &id).await;
    let started = switch::start(&world.ctx, &id_ref(&id)).await.unwrap();
    assert!(
        started.wait_seconds > 250,
        "waits out the old 300 s TTL: {started:?}"
    );
    assert_eq!(
        world.production_dns().await.live().unwrap(),
        Slot::Blue,
        "not switched yet"
    );
    world.advance(chrono::Duration::seconds(301));
    let done = switch::check(&world.ctx, &check_of(&started))
        .await
        .unwrap();
    let Poll::Done { detail } = done else {
        panic!("{done:?}")
    };
    assert!(
        !detail.contains("test listener"),
        "DNS mode has no test listener: {detail}"
    );
    let records = world.production_dns().await;
    assert_eq!((records.blue, records.green), (0, 100));
}

#[tokio::test]
async fn in_rule_mode_the_default_action_follows_the_rule_so_nothing_is_left_on_the_scaled_down_slot()
 {
    let world = World::build().await;
    let mut config = world.use_rule_mode().await;
    config.finish.keep_warm_seconds = 0;
    world.put_config(&config).await;
    let id = approved(&world).await;
    switch_all(&world, &id).await;
    let rule = bluegreen::routing::read_production(&world.ctx, &config)
        .await
        .unwrap();
    assert_eq!(rule.live().unwrap(), Slot::Green, "the rule moved");
    // world.production() reads the listener's default action.
    assert_eq!(
        world.production().await.live().unwrap(),
        Slot::Green,
        "the default action follows the rule"
    );
    bluegreen::steps::finish::run(&world.ctx, &id_ref(&id))
        .await
        .unwrap();
    assert_eq!(
        world.service(Slot::Blue).await.1,
        0,
        "the old slot scaled to 0"
    );
    assert_eq!(world.production().await.live().unwrap(), Slot::Green);
}

#[tokio::test]
async fn in_rule_mode_a_default_action_that_is_not_a_slot_is_left_alone() {
    let world = World::build().await;
    world.use_rule_mode().await;
    world.default_action_not_found().await;
    let id = approved(&world).await;
    switch_all(&world, &id).await;
    let defaults = world.default_actions().await;
    assert_eq!(defaults.len(), 1);
    assert_eq!(
        defaults[0]
            .fixed_response_config
            .as_ref()
            .and_then(|f| f.status_code.as_deref()),
        Some("404"),
        "{defaults:?}"
    );
}

/// Issue 23: pre-prod runs one task (`preprod.desired_count = 1`, the cost-saving setting) and
/// production autoscaled from 2 to 4 tasks during the approval wait. The switch scales green
/// to production's current count first (on the timeline), moves no traffic while green has
/// fewer healthy targets than that, and then moves it.
#[tokio::test]
async fn the_switch_first_scales_the_new_slot_to_productions_current_count() {
    let world = World::build().await;
    let mut config = world.config();
    config.preprod.desired_count = Some(1);
    world.put_config(&config).await;
    let id = prepare_push(&world, "v2", "event-1").await;
    let started = bluegreen::steps::launch_preprod::start(&world.ctx, &id_ref(&id))
        .await
        .unwrap();
    world.settle(Slot::Green, "COMPLETED").await;
    world.register_targets(Slot::Green, 1).await;
    let launched = bluegreen::steps::launch_preprod::check(&world.ctx, &check_of(&started))
        .await
        .unwrap();
    assert!(matches!(launched, Poll::Done { .. }), "{launched:?}");
    assert_eq!(world.service(Slot::Green).await.1, 1, "pre-prod is small");
    health(&world, &id).await.unwrap();
    approve(&world, &id).await;
    // Production autoscaled while people decided.
    world.scale(Slot::Blue, 4).await;

    let started = switch::start(&world.ctx, &id_ref(&id)).await.unwrap();
    assert!(started.wait_seconds > 0, "{started:?}");
    assert_eq!(
        world.service(Slot::Green).await.1,
        4,
        "scaled to production's count"
    );
    assert_eq!(
        world.production().await.percent(Slot::Green),
        0,
        "nothing moved yet"
    );
    let deployment = record(&world, &id).await;
    assert!(deployment.switched_at.is_none(), "the switch has not begun");
    let scaled = deployment
        .timeline
        .iter()
        .find(|e| e.outcome == bluegreen::record::StepOutcome::Scaled)
        .expect("the timeline says so");
    assert!(scaled.detail.contains("from 1 to 4"), "{}", scaled.detail);

    // Green runs 4 tasks but only 1 target is healthy yet: still nothing moves.
    let waiting = switch::check(&world.ctx, &check_of(&started))
        .await
        .unwrap();
    assert!(matches!(waiting, Poll::Pending { .. }), "{waiting:?}");
    assert_eq!(world.production().await.percent(Slot::Green), 0);

    world.register_targets(Slot::Green, 4).await;
    let done = switch::check(&world.ctx, &check_of(&started))
        .await
        .unwrap();
    assert!(matches!(done, Poll::Done { .. }), "{done:?}");
    assert_eq!(world.production().await.live().unwrap(), Slot::Green);
    assert_eq!(world.service(Slot::Green).await.1, 4);
}

/// Issue 23: during a canary, production (still mostly on blue) scales out again: the next
/// step waits until green matches blue's new count, then moves.
#[tokio::test]
async fn each_canary_step_waits_for_the_new_slot_to_match_production_again() {
    let world = World::build().await;
    with_canary(&world).await;
    let id = approved(&world).await;
    let started = switch::start(&world.ctx, &id_ref(&id)).await.unwrap();
    assert_eq!(world.production().await.percent(Slot::Green), 10);
    world.scale(Slot::Blue, 3).await;
    world.advance(chrono::Duration::seconds(301));
    let waiting = switch::check(&world.ctx, &check_of(&started))
        .await
        .unwrap();
    assert!(matches!(waiting, Poll::Pending { .. }), "{waiting:?}");
    assert_eq!(
        world.production().await.percent(Slot::Green),
        10,
        "held at the canary"
    );
    assert_eq!(world.service(Slot::Green).await.1, 3);
    world.register_targets(Slot::Green, 3).await;
    let done = switch::check(&world.ctx, &check_of(&started))
        .await
        .unwrap();
    assert!(matches!(done, Poll::Done { .. }), "{done:?}");
    assert_eq!(world.production().await.percent(Slot::Green), 100);
}
