//! Issue 25 item 4: services behind a Network Load Balancer. ELB takes up to ten minutes to
//! bring an NLB's data plane to new forward weights, so the health check counts smoke checks
//! only that long after it began (as ECS's own blue/green waits at each shift), and a rollback
//! keeps the failed slot's tasks — holding the service, so no queued deployment takes the slot
//! — until then. What an NLB cannot do (rules, a maintenance page, short shift steps) is
//! refused by validation (`config.rs` unit tests); here the emulator's NLB (its ARNs say
//! `net/`, as AWS's do) runs a deployment end to end.

use bluegreen::Slot;
use bluegreen::config::{NLB_WEIGHTS_SETTLE_SECONDS, ServiceConfig, TestRule, Traffic};
use bluegreen::poll::Poll;
use bluegreen::record::Status;
use bluegreen::routing::{self, RouteState};
use bluegreen::steps::{health_check, rollback};
use bluegreen_tests::World;
use chrono::Duration;

use crate::common::*;

async fn production(world: &World, config: &ServiceConfig) -> RouteState {
    routing::read_production(&world.ctx, config).await.unwrap()
}

/// Push, sync, launch, migrate and health-check on the NLB world: the health check passes
/// once the weights settle.
async fn healthy(world: &World) -> String {
    let id = prepare_push(world, "v2", "event-1").await;
    sync(world, &id).await;
    launch(world, &id).await;
    let migrated = migrate_with(world, &id, Some(0)).await.expect("migrate");
    assert!(matches!(migrated, Poll::Done { .. }), "{migrated:?}");
    let started = health_check::start(&world.ctx, &id_ref(&id)).await.unwrap();
    world.advance(settle() + Duration::seconds(1));
    let healthy = health_check::check(&world.ctx, &check_of(&started))
        .await
        .expect("health");
    assert!(matches!(healthy, Poll::Done { .. }), "{healthy:?}");
    id
}

fn settle() -> Duration {
    Duration::seconds(NLB_WEIGHTS_SETTLE_SECONDS as i64)
}

#[tokio::test]
async fn behind_an_nlb_a_rollback_keeps_the_failed_slot_and_the_service_until_the_weights_settle() {
    let world = World::build().await;
    let config = world.use_nlb().await;
    assert!(
        config.traffic.on_nlb(),
        "the emulator's NLB listener says net/"
    );
    assert_eq!(config.problems(), Vec::<String>::new());
    let id = healthy(&world).await;
    approve(&world, &id).await;
    switch_all(&world, &id).await;
    assert_eq!(
        production(&world, &config).await.live().unwrap(),
        Slot::Green
    );

    let waiting = rollback::run(&world.ctx, &failure(&id, "BakeFailed"))
        .await
        .expect("rollback");
    assert!(waiting.wait.is_some(), "{waiting:?}");
    assert!(waiting.detail.contains("NLB"), "{waiting:?}");
    assert_eq!(
        production(&world, &config).await.live().unwrap(),
        Slot::Blue
    );
    assert_eq!(
        world.service(Slot::Green).await.1,
        2,
        "new connections may still reach green: it keeps its tasks"
    );
    assert_eq!(
        world.lock_holder().await.as_deref(),
        Some(id.as_str()),
        "the service stays held: no queued deployment launches onto green meanwhile"
    );
    let again = rollback::run(&world.ctx, &failure(&id, "BakeFailed"))
        .await
        .unwrap();
    assert!(again.wait.is_some(), "a retry keeps the clock: {again:?}");

    world.advance(settle() + Duration::seconds(1));
    let ended = rollback::run(&world.ctx, &failure(&id, "BakeFailed"))
        .await
        .unwrap();
    assert_eq!(ended.status, Status::RolledBack, "{ended:?}");
    assert_eq!(world.service(Slot::Green).await.1, 0);
    assert_eq!(world.lock_holder().await, None);
}

/// The test listener forwarded to blue: the health check moves it to green and does not judge
/// pre-prod until the NLB's weights settle — the moment is on the record before the move, so a
/// retried start keeps the same clock.
#[tokio::test]
async fn behind_an_nlb_smoke_checks_count_only_once_a_moved_test_listener_settles() {
    let world = World::build().await;
    let config = world.use_nlb().await;
    let Traffic::Listener {
        test_listener_arn: Some(test_listener),
        ..
    } = &config.traffic
    else {
        panic!("a test listener")
    };
    let id = prepare_push(&world, "v2", "event-1").await;
    sync(&world, &id).await;
    launch(&world, &id).await;
    migrate_with(&world, &id, Some(0)).await.expect("migrate");
    world
        .ctx
        .ports
        .load_balancing
        .set_forward(
            &bluegreen::ports::load_balancing::Route::Listener(test_listener.clone()),
            &[(world.tg(Slot::Blue).to_owned(), 100)],
        )
        .await
        .unwrap();

    let started = health_check::start(&world.ctx, &id_ref(&id)).await.unwrap();
    assert_eq!(
        routing::read_test(&world.ctx, &config).await.unwrap(),
        Some(Slot::Green),
        "moved to pre-prod"
    );
    let settle = NLB_WEIGHTS_SETTLE_SECONDS;
    assert!(started.wait_seconds >= settle - 5, "{started:?}");
    let again = health_check::start(&world.ctx, &id_ref(&id)).await.unwrap();
    assert_eq!(again.deadline, started.deadline, "a retry keeps the clock");
    assert!(
        (started.deadline - world.now()).num_seconds() as u64
            >= settle + config.health.timeout_seconds - 5
    );
    let before = world.smoke.seen().len();
    let early = health_check::check(&world.ctx, &check_of(&started))
        .await
        .unwrap();
    assert!(
        matches!(&early, Poll::Pending { detail, .. } if detail.contains("settle")),
        "{early:?}"
    );
    assert_eq!(
        world.smoke.seen().len(),
        before,
        "no smoke check before then"
    );

    world.advance(Duration::seconds(settle as i64 + 1));
    let done = health_check::check(&world.ctx, &check_of(&started))
        .await
        .unwrap();
    assert!(matches!(done, Poll::Done { .. }), "{done:?}");
    assert!(world.smoke.seen().len() > before);
}

/// The harness refuses a rule on an NLB listener as AWS does, and so does validation before
/// anything runs.
#[tokio::test]
async fn an_nlb_has_no_rules_for_a_test_rule() {
    let world = World::build().await;
    let mut config = world.use_nlb().await;
    if let Traffic::Listener {
        test_listener_arn,
        test_rule,
        ..
    } = &mut config.traffic
    {
        *test_listener_arn = None;
        *test_rule = Some(TestRule::default());
    }
    let problems = config.problems();
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("traffic.test_rule") && p.contains("NLB")),
        "{problems:?}"
    );
    let Traffic::Listener {
        production_listener_arn,
        ..
    } = &config.traffic
    else {
        unreachable!()
    };
    let refused = world
        .ctx
        .ports
        .load_balancing
        .create_forward_rule(
            production_listener_arn,
            &bluegreen::ports::load_balancing::ForwardRule {
                priority: 1,
                conditions: bluegreen::test_rule::conditions(&TestRule::default(), "d"),
                target_group_arn: world.tg(Slot::Green).to_owned(),
                tags: Vec::new(),
            },
        )
        .await;
    assert!(refused.is_err(), "{refused:?}");
}
