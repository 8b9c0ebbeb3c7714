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

/// The delivery metrics of a deployment are emitted once, by the ending that ended it: as EMF
/// lines, which the harness hands to the emulator's CloudWatch as Lambda's log pipeline would,
/// per service and over every service.
#[tokio::test]
async fn a_finished_deployment_emits_its_delivery_metrics_once() {
    let mut world = World::build().await;
    let lines = bluegreen::context::MetricLines::default();
    world.ctx = world.ctx.clone().collect_metrics(lines.clone());
    let id = deploy_to_switch(&world).await;
    finish::run(&world.ctx, &id_ref(&id)).await.unwrap();
    finish::run(&world.ctx, &id_ref(&id)).await.unwrap();
    let emitted = lines.lock().unwrap().clone();
    assert_eq!(
        emitted.len(),
        1,
        "one line, from the ending that ended it: {emitted:?}"
    );
    let put = bluegreen_tests::emf::deliver(&world.sdk, &emitted)
        .await
        .unwrap();
    // Five metrics (no time to restore: nothing failed), with and without the service.
    assert_eq!(put, 10);

    let d = record(&world, &id).await;
    let lead = (d.switched_at.unwrap() - d.pushed_at).num_seconds() as f64;
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&world.sdk);
    let sum = |metric: &'static str, service: Option<&'static str>| {
        let cloudwatch = cloudwatch.clone();
        async move {
            let now = chrono::Utc::now().timestamp();
            let answer = cloudwatch
                .get_metric_statistics()
                .namespace(bluegreen::metrics::NAMESPACE)
                .metric_name(metric)
                .set_dimensions(service.map(|s| {
                    vec![
                        aws_sdk_cloudwatch::types::Dimension::builder()
                            .name("Service")
                            .value(s)
                            .build(),
                    ]
                }))
                .start_time(aws_sdk_cloudwatch::primitives::DateTime::from_secs(
                    now - 3600,
                ))
                .end_time(aws_sdk_cloudwatch::primitives::DateTime::from_secs(
                    now + 3600,
                ))
                .period(60)
                .statistics(aws_sdk_cloudwatch::types::Statistic::Sum)
                .send()
                .await
                .unwrap();
            answer
                .datapoints()
                .iter()
                .filter_map(|p| p.sum())
                .sum::<f64>()
        }
    };
    use bluegreen::metrics::{CHANGE_FAILURES, LEAD_TIME, REACHED_PRODUCTION, SUCCEEDED};
    assert_eq!(sum(SUCCEEDED, Some("shop")).await, 1.0);
    // The total over every service is its own metric, without dimensions. (Asked for no
    // dimensions, moto sums every series of the name; CloudWatch keeps them apart.)
    let listed = cloudwatch
        .list_metrics()
        .namespace(bluegreen::metrics::NAMESPACE)
        .metric_name(SUCCEEDED)
        .send()
        .await
        .unwrap();
    let mut series: Vec<Vec<(String, String)>> = listed
        .metrics()
        .iter()
        .map(|m| {
            m.dimensions()
                .iter()
                .map(|d| (d.name().unwrap().to_owned(), d.value().unwrap().to_owned()))
                .collect()
        })
        .collect();
    series.sort();
    assert_eq!(
        series,
        vec![vec![], vec![("Service".into(), "shop".into())]]
    );
    assert_eq!(sum(REACHED_PRODUCTION, Some("shop")).await, 1.0);
    assert_eq!(sum(CHANGE_FAILURES, Some("shop")).await, 0.0);
    assert_eq!(sum(LEAD_TIME, Some("shop")).await, lead);
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
