//! Bake: alarms and live target health during the bake time.

use bluegreen::Slot;
use bluegreen::poll::Poll;
use bluegreen::steps::bake;
use bluegreen_tests::World;

use crate::common::*;

#[tokio::test]
async fn a_quiet_bake_is_done_after_the_bake_time() {
    let world = World::build().await;
    let id = deploy_to_switch(&world).await;
    let started = bake_start(&world, &id).await;
    assert_eq!(
        bake_start(&world, &id).await,
        started,
        "same window on a rerun"
    );
    assert!(matches!(
        bake::check(&world.ctx, &check_of(&started)).await.unwrap(),
        Poll::Pending { .. }
    ));
    world.advance(chrono::Duration::seconds(61));
    assert!(matches!(
        bake::check(&world.ctx, &check_of(&started)).await.unwrap(),
        Poll::Done { .. }
    ));
}

#[tokio::test]
async fn an_alarm_in_alarm_fails_the_bake_naming_it() {
    let world = World::build().await;
    let id = deploy_to_switch(&world).await;
    let started = bake_start(&world, &id).await;
    world.raise_alarm("shop-5xx", "5xx spike").await;
    let err = bake::check(&world.ctx, &check_of(&started))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "BakeFailed");
    assert!(
        err.to_string().contains("shop-5xx") && err.to_string().contains("5xx spike"),
        "{err}"
    );
}

#[tokio::test]
async fn an_unhealthy_live_target_fails_the_bake() {
    let world = World::build().await;
    let id = deploy_to_switch(&world).await;
    let started = bake_start(&world, &id).await;
    world.set_target_health(Slot::Green, 0, "unhealthy").await;
    let err = bake::check(&world.ctx, &check_of(&started))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("172.31.2.10"), "{err}");
}

/// Issue 22: a composite alarm in `bake.alarms` (AWS answers composites only when
/// `AlarmTypes` asks for them; the harness answers the same) is watched like a metric alarm:
/// doctor finds it, and its ALARM fails the bake.
#[tokio::test]
async fn a_composite_alarm_fails_the_bake_like_a_metric_alarm() {
    let world = World::build().await;
    world
        .aws
        .cloudwatch
        .put_composite_alarm()
        .alarm_name("shop-health")
        .alarm_rule("ALARM(shop-5xx)")
        .send()
        .await
        .expect("composite alarm");
    let mut config = world.config();
    config.bake.alarms = vec!["shop-health".into()];
    world.put_config(&config).await;
    let names = vec!["shop-health".to_owned()];
    assert_eq!(
        bluegreen::alarms::missing(&world.ctx, &names)
            .await
            .unwrap(),
        Vec::<String>::new(),
        "it exists"
    );
    let id = deploy_to_switch(&world).await;
    let started = bake_start(&world, &id).await;
    world
        .raise_alarm("shop-health", "5xx above threshold")
        .await;
    let err = bake::check(&world.ctx, &check_of(&started))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "BakeFailed");
    assert!(err.to_string().contains("shop-health"), "{err}");
}

/// A service watching more alarms than one `DescribeAlarms` answers (AWS: 50 a page, at most
/// 100 names a request; the harness answers the same): the one in ALARM far down the list
/// fails the bake, and none of them is reported missing (issue 22).
#[tokio::test]
async fn an_alarm_past_the_first_page_and_the_first_hundred_names_fails_the_bake() {
    let world = World::build().await;
    let names: Vec<String> = (0..130).map(|n| format!("shop-p{n:03}")).collect();
    for name in &names {
        world
            .aws
            .cloudwatch
            .put_metric_alarm()
            .alarm_name(name)
            .namespace("AWS/ApplicationELB")
            .metric_name("TargetResponseTime")
            .statistic(aws_sdk_cloudwatch::types::Statistic::Average)
            .period(60)
            .evaluation_periods(1)
            .threshold(1.0)
            .comparison_operator(
                aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold,
            )
            .send()
            .await
            .unwrap();
    }
    let mut config = world.config();
    config.bake.alarms = names.clone();
    world.put_config(&config).await;
    assert_eq!(
        bluegreen::alarms::missing(&world.ctx, &names)
            .await
            .unwrap(),
        Vec::<String>::new()
    );
    let id = deploy_to_switch(&world).await;
    let started = bake_start(&world, &id).await;
    world.raise_alarm("shop-p121", "p99 above 1 s").await;
    let err = bake::check(&world.ctx, &check_of(&started))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "BakeFailed");
    assert!(err.to_string().contains("shop-p121"), "{err}");
}
