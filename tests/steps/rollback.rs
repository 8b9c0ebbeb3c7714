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
    let first = roll_back(&world, &id).await;
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

    let again = roll_back(&world, &id).await;
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

/// A DNS-mode deployment switched to green; returns its id and green's task count.
async fn switched_by_dns(world: &World) -> (String, i32) {
    world.put_config(&world.dns_config()).await;
    let id = prepare_push(world, "v2", "event-1").await;
    launch(world, &id).await;
    health(world, &id).await.unwrap();
    approve(world, &id).await;
    let started = bluegreen::steps::switch::start(&world.ctx, &id_ref(&id))
        .await
        .unwrap();
    world.advance(chrono::Duration::seconds(301));
    bluegreen::steps::switch::check(&world.ctx, &check_of(&started))
        .await
        .unwrap();
    assert_eq!(world.production_dns().await.live().unwrap(), Slot::Green);
    let serving = world.service(Slot::Green).await.1;
    assert!(serving > 0);
    (id, serving)
}

/// DNS mode: the weights go back at once, but resolvers keep the failed slot's answer for up
/// to the switch TTL; the failed slot keeps its tasks until then, and is scaled down after.
#[tokio::test]
async fn a_dns_rollback_keeps_the_failed_slot_until_cached_answers_expire() {
    let world = World::build().await.with_topic();
    let (id, serving) = switched_by_dns(&world).await;

    let first = roll_back(&world, &id).await;
    assert!(first.wait.is_some(), "{}", first.detail);
    let records = world.production_dns().await;
    assert_eq!(
        (records.blue, records.green),
        (100, 0),
        "traffic back at once"
    );
    assert_eq!(
        world.service(Slot::Green).await.1,
        serving,
        "green keeps its tasks"
    );
    assert_eq!(world.lock_holder().await, Some(id.clone()));

    // A retry before the TTL passed waits for the same moment.
    world.advance(chrono::Duration::seconds(10));
    let again = roll_back(&world, &id).await;
    assert_eq!(
        again.wait.as_ref().map(|w| w.deadline),
        first.wait.as_ref().map(|w| w.deadline)
    );
    assert_eq!(world.service(Slot::Green).await.1, serving);

    world.advance(chrono::Duration::seconds(21));
    let done = roll_back(&world, &id).await;
    assert_eq!(done.status, Status::RolledBack, "{}", done.detail);
    assert_eq!(world.service(Slot::Green).await.1, 0);
    assert_eq!(world.lock_holder().await, None);
}

/// DNS mode: the TTL starts to count only once Route 53 serves the weights back everywhere
/// (INSYNC): while the change is PENDING the failed slot keeps its tasks however long that
/// takes, and the switch TTL is counted from the moment it is seen INSYNC.
#[tokio::test]
async fn a_dns_rollback_counts_the_ttl_from_when_route53_is_in_sync() {
    use aws_smithy_mocks::{MockResponseInterceptor, RuleMode, mock};
    let world = World::build().await.with_topic();
    let (id, serving) = switched_by_dns(&world).await;
    let pending = mock!(aws_sdk_route53::Client::get_change)
        .sequence()
        .output(|| {
            aws_sdk_route53::operation::get_change::GetChangeOutput::builder()
                .change_info(
                    aws_sdk_route53::types::ChangeInfo::builder()
                        .id("C-PENDING")
                        .status(aws_sdk_route53::types::ChangeStatus::Pending)
                        .submitted_at(aws_smithy_types::DateTime::from_secs(0))
                        .build()
                        .unwrap(),
                )
                .build()
        })
        .repeatedly()
        .build();
    let propagating = bluegreen_tests::with_client(&world.ctx, |c| {
        c.route53 = aws_sdk_route53::Client::from_conf(
            aws_sdk_route53::config::Builder::from(&world.sdk)
                .interceptor(
                    MockResponseInterceptor::new()
                        .rule_mode(RuleMode::MatchAny)
                        .with_rule(&pending)
                        .allow_passthrough(),
                )
                .build(),
        )
    });
    let first = rollback::run(&propagating, &failure(&id, "BakeFailed"))
        .await
        .unwrap();
    assert!(
        first.detail.contains("waiting for Route 53"),
        "{}",
        first.detail
    );
    let records = world.production_dns().await;
    assert_eq!(
        (records.blue, records.green),
        (100, 0),
        "traffic back at once"
    );
    let back = record(&world, &id)
        .await
        .dns_back
        .expect("the write is recorded");
    assert!(
        back.change_id.is_some() && back.in_sync_at.is_none(),
        "{back:?}"
    );

    // Longer than the TTL, still PENDING: the failed slot keeps its tasks.
    world.advance(chrono::Duration::seconds(120));
    let still = rollback::run(&propagating, &failure(&id, "BakeFailed"))
        .await
        .unwrap();
    assert!(
        still.detail.contains("waiting for Route 53"),
        "{}",
        still.detail
    );
    assert_eq!(world.service(Slot::Green).await.1, serving);

    // INSYNC now: the TTL counts from here.
    let synced = roll_back(&world, &id).await;
    assert!(
        synced.detail.contains("cached answers"),
        "{}",
        synced.detail
    );
    let ttl = match &world.dns_config().traffic {
        bluegreen::config::Traffic::Dns {
            switch_ttl_seconds, ..
        } => *switch_ttl_seconds as i64,
        other => panic!("{other:?}"),
    };
    world.advance(chrono::Duration::seconds(ttl - 1));
    let waiting = roll_back(&world, &id).await;
    assert!(waiting.wait.is_some(), "{}", waiting.detail);
    assert_eq!(world.service(Slot::Green).await.1, serving);
    world.advance(chrono::Duration::seconds(2));
    let done = roll_back(&world, &id).await;
    assert_eq!(done.status, Status::RolledBack, "{}", done.detail);
    assert_eq!(world.service(Slot::Green).await.1, 0);
    assert_eq!(world.lock_holder().await, None);
}

/// One call of the rollback ending after a failed bake, as the state machine makes it.
async fn roll_back(world: &World, id: &str) -> bluegreen::steps::Ended {
    rollback::run(&world.ctx, &failure(id, "BakeFailed"))
        .await
        .expect("rollback")
}
