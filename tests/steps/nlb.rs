//! Issue 25 item 4: services behind a Network Load Balancer. ELB takes up to ten minutes to
//! bring an NLB's data plane to new forward weights, so a test listener that moved is not
//! trusted before then, and the slot a rollback leaves keeps its tasks until then (teardown
//! scales it down). What an NLB cannot do (rules, a maintenance page, short shift steps) is
//! refused by validation (`config.rs` unit tests); here the emulator's NLB (its ARNs say
//! `net/`, as AWS's do) runs a deployment end to end.

use bluegreen::Slot;
use bluegreen::config::{NLB_WEIGHTS_SETTLE_SECONDS, ServiceConfig, TestRule, Traffic};
use bluegreen::poll::Poll;
use bluegreen::record::Status;
use bluegreen::routing::{self, RouteState};
use bluegreen::steps::{health_check, rollback, teardown};
use bluegreen_tests::World;
use chrono::Duration;

use crate::common::*;

async fn production(world: &World, config: &ServiceConfig) -> RouteState {
    routing::read_production(&world.ctx, config).await.unwrap()
}

/// Push, sync, launch, migrate and health-check on the NLB world; the health check passes at
/// its first look (the test listener already forwards to green).
async fn healthy(world: &World) -> String {
    let id = prepare_push(world, "v2", "event-1").await;
    sync(world, &id).await;
    launch(world, &id).await;
    let migrated = migrate_with(world, &id, Some(0)).await.expect("migrate");
    assert!(matches!(migrated, Poll::Done { .. }), "{migrated:?}");
    let healthy = health(world, &id).await.expect("health");
    assert!(matches!(healthy, Poll::Done { .. }), "{healthy:?}");
    id
}

#[tokio::test]
async fn behind_an_nlb_the_slot_a_rollback_leaves_keeps_its_tasks_until_the_weights_settle() {
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

    let ended = rollback::run(&world.ctx, &failure(&id, "BakeFailed"))
        .await
        .expect("rollback");
    assert_eq!(ended.status, Status::RolledBack);
    assert_eq!(
        production(&world, &config).await.live().unwrap(),
        Slot::Blue
    );
    let (_, green_count, green_tags) = world.service(Slot::Green).await;
    assert_eq!(
        green_count, 2,
        "new connections may still reach green: it keeps its tasks"
    );
    let expires = green_tags
        .iter()
        .find(|(k, _)| k == bluegreen::naming::TAG_EXPIRES)
        .map(|(_, v)| v.clone())
        .expect("tagged to expire");
    let expires = chrono::DateTime::parse_from_rfc3339(&expires).unwrap();
    let settle = Duration::seconds(NLB_WEIGHTS_SETTLE_SECONDS as i64);
    assert!(
        (expires.to_utc() - (world.now() + settle))
            .num_seconds()
            .abs()
            < 60,
        "expires when the weights settle: {expires}"
    );

    let early = teardown::run(&world.ctx).await.unwrap();
    assert_eq!(world.service(Slot::Green).await.1, 2, "{early:?}");
    world.advance(settle + Duration::seconds(1));
    let report = teardown::run(&world.ctx).await.unwrap();
    assert_eq!(world.service(Slot::Green).await.1, 0, "{report:?}");
}

/// The test listener forwarded to blue: the health check moves it to green and does not judge
/// pre-prod until the NLB's weights settle — the move is on the record before it is made, so a
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
