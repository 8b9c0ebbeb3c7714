//! The service index: a push reads only the configs of the services watching its repository,
//! the index follows configs however they are written, and a push costs the same number of
//! AWS requests however many services the account has.

use bluegreen::config_store::ConfigStore;
use bluegreen::service_index::ServiceIndex;
use bluegreen::steps::index_config;
use bluegreen::steps::prepare::{self, Prepared, PreparedOutcome};
use bluegreen::steps::teardown;
use bluegreen_tests::serving::count_all;
use bluegreen_tests::{World, push_event};

use crate::common::*;

/// What prepare answered for each service, by name.
async fn prepared(world: &World, event: &serde_json::Value) -> Vec<(String, PreparedOutcome)> {
    match prepare::run(&world.ctx, event).await.expect("prepare") {
        Prepared::Deployments { deployments } => {
            let mut answers: Vec<_> = deployments
                .into_iter()
                .map(|d| (d.service, d.outcome))
                .collect();
            answers.sort_by(|a, b| a.0.cmp(&b.0));
            answers
        }
        Prepared::Ignored { .. } => Vec::new(),
    }
}

/// The services the index lists under `repository`.
async fn watching(world: &World, repository: &str) -> Vec<String> {
    ServiceIndex::new(&world.ctx)
        .watching(repository)
        .await
        .unwrap()
}

/// Registers `n` services named `<prefix>-<i>` watching `repository` (their slots are the
/// world's: only their configs matter here).
async fn register(world: &World, prefix: &str, repository: &str, n: usize) {
    for i in 0..n {
        let mut config = world.config();
        config.name = format!("{prefix}-{i}");
        config.source.repository = repository.into();
        world.put_config(&config).await;
    }
}

async fn write_raw(world: &World, service: &str, config: &bluegreen::config::ServiceConfig) {
    world
        .aws
        .ssm
        .put_parameter()
        .name(format!("/bluegreen/services/{service}"))
        .value(config.to_json())
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_push_makes_the_same_requests_with_one_service_or_with_forty_on_other_repositories() {
    let world = World::build().await;
    let event = |n: u32| {
        push_event(
            "v2",
            'a',
            &format!("event-{n}"),
            &pushed_at(&format!("event-{n}")),
        )
    };
    // Prepared and then ended, so each measured push finds the same free lock.
    let measure = |n: u32| {
        let world = &world;
        async move {
            let (counted, requests) = count_all(&world.ctx);
            let out = prepare::run(&counted, &event(n)).await.unwrap();
            let Prepared::Deployments { deployments } = out else {
                panic!("{out:?}")
            };
            let calls = requests.calls();
            bluegreen::steps::abort::run(
                &world.ctx,
                &failure(&deployments[0].deployment_id, "HealthCheckFailed"),
            )
            .await
            .unwrap();
            calls
        }
    };
    let alone = measure(1).await;
    register(&world, "other", "billing/api", 40).await;
    let among_many = measure(2).await;
    assert_eq!(among_many, alone);
    assert!(
        !alone
            .iter()
            .any(|c| c.ends_with(":Scan") || c.ends_with("GetParametersByPath")),
        "{alone:?}"
    );
    assert!(alone.contains(&"DynamoDB:Query".to_owned()), "{alone:?}");
}

/// The intake rule takes pushes of every repository of the account (no per-service stack
/// parameter, issue 27 item 4): a push nobody watches costs one intake execution whose prepare
/// makes a single DynamoDB query (the index) and writes nothing, however many services the
/// account has (the cost per push is in README, "Scale and cold start").
#[tokio::test]
async fn a_push_to_an_unwatched_repository_costs_one_index_query_and_writes_nothing() {
    let world = World::build().await;
    register(&world, "other", "billing/api", 40).await;
    let mut event = push_event("v2", 'a', "event-1", &pushed_at("event-1"));
    event["detail"]["repository-name"] = serde_json::json!("tools/ci-runner");
    let (counted, requests) = count_all(&world.ctx);
    let out = prepare::run(&counted, &event).await.unwrap();
    match out {
        Prepared::Ignored { reason } => {
            assert!(
                reason.contains("no service watches tools/ci-runner:v2"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(requests.calls(), vec!["DynamoDB:Query".to_owned()]);
}

#[tokio::test]
async fn a_config_written_straight_into_ssm_is_found_once_its_change_event_is_handled() {
    let world = World::build().await;
    let mut config = world.config();
    config.name = "admin".into();
    write_raw(&world, "admin", &config).await;
    let event = push_event("v2", 'a', "event-1", PUSHED_AT);
    // SSM's event has not been handled yet: the index does not know admin.
    assert_eq!(watching(&world, "shop/web").await, ["shop"]);
    let report = index_config::run(&world.ctx, &parameter_changed("admin"))
        .await
        .unwrap();
    assert_eq!(report.indexed, ["admin -> shop/web"]);
    // Delivered twice (EventBridge delivers at least once): nothing more is written.
    let again = index_config::run(&world.ctx, &parameter_changed("admin"))
        .await
        .unwrap();
    assert!(
        again.indexed.is_empty() && again.removed.is_empty(),
        "{again:?}"
    );
    assert_eq!(
        prepared(&world, &event).await,
        [
            ("admin".to_owned(), PreparedOutcome::Started),
            ("shop".to_owned(), PreparedOutcome::Started)
        ]
    );
}

#[tokio::test]
async fn a_service_moved_to_another_repository_stops_getting_the_old_repositorys_pushes() {
    let world = World::build().await;
    let mut config = world.config();
    config.source.repository = "shop/web-v2".into();
    world.put_config(&config).await;
    let index = ServiceIndex::new(&world.ctx);
    assert!(index.watching("shop/web").await.unwrap().is_empty());
    assert_eq!(index.watching("shop/web-v2").await.unwrap(), ["shop"]);
    assert!(
        prepared(&world, &push_event("v2", 'a', "event-1", PUSHED_AT))
            .await
            .is_empty()
    );
    let mut moved = push_event("v2", 'a', "event-2", &pushed_at("event-2"));
    moved["detail"]["repository-name"] = "shop/web-v2".into();
    assert_eq!(
        prepared(&world, &moved).await,
        [("shop".to_owned(), PreparedOutcome::Started)]
    );
    // Deleted after the move (its old entry's removal is remembered on the service's item,
    // its new one is current): nothing is left under either repository.
    ConfigStore::new(&world.ctx).delete("shop").await.unwrap();
    assert!(watching(&world, "shop/web").await.is_empty());
    assert!(watching(&world, "shop/web-v2").await.is_empty());
    assert!(index.service("shop").await.unwrap().is_none());
}

#[tokio::test]
async fn an_index_entry_whose_config_went_is_skipped_and_reindex_removes_it() {
    let world = World::build().await;
    // The parameter is deleted behind bluegreen's back, its change event lost.
    world
        .aws
        .ssm
        .delete_parameter()
        .name("/bluegreen/services/shop")
        .send()
        .await
        .unwrap();
    // And a config written by another tool whose event was lost too.
    let mut admin = world.config();
    admin.name = "admin".into();
    write_raw(&world, "admin", &admin).await;
    let event = push_event("v2", 'a', "event-1", PUSHED_AT);
    assert!(
        prepared(&world, &event).await.is_empty(),
        "shop is gone, admin unseen"
    );

    let report = ConfigStore::new(&world.ctx).reindex().await.unwrap();
    assert_eq!(report.indexed, ["admin -> shop/web"]);
    assert_eq!(report.removed, ["shop (no config)"]);
    let index = ServiceIndex::new(&world.ctx);
    assert_eq!(index.watching("shop/web").await.unwrap(), ["admin"]);
    assert!(index.service("shop").await.unwrap().is_none());
    assert_eq!(
        prepared(&world, &event).await,
        [("admin".to_owned(), PreparedOutcome::Started)]
    );
    // A second reindex finds nothing to do.
    let again = ConfigStore::new(&world.ctx).reindex().await.unwrap();
    assert!(
        again.indexed.is_empty() && again.removed.is_empty(),
        "{again:?}"
    );
}

#[tokio::test]
async fn a_deleted_config_leaves_no_index_entry_and_its_pushes_are_ignored() {
    let world = World::build().await;
    let store = ConfigStore::new(&world.ctx);
    store.delete("shop").await.unwrap();
    assert!(watching(&world, "shop/web").await.is_empty());
    assert!(
        prepared(&world, &push_event("v2", 'a', "event-1", PUSHED_AT))
            .await
            .is_empty()
    );
    let err = store.delete("shop").await.unwrap_err();
    assert_eq!(err.name(), "ServiceNotFound", "{err}");
    // SSM's event for the deletion changes nothing more.
    let report = index_config::run(&world.ctx, &parameter_changed("shop"))
        .await
        .unwrap();
    assert!(report.indexed.is_empty(), "{report:?}");
}

#[tokio::test]
async fn a_parameter_change_event_outside_the_config_path_or_of_another_kind_changes_nothing() {
    let world = World::build().await;
    let mut outside = parameter_changed("shop");
    outside["detail"]["name"] = "/other-team/services/shop".into();
    let report = index_config::run(&world.ctx, &outside).await.unwrap();
    assert_eq!(report, Default::default());
    let mut wrong = parameter_changed("shop");
    wrong["detail-type"] = "Scheduled Event".into();
    let err = index_config::run(&world.ctx, &wrong).await.unwrap_err();
    assert_eq!(err.name(), "EventMalformed", "{err}");
    assert_eq!(watching(&world, "shop/web").await, ["shop"]);
}

#[tokio::test]
async fn teardown_looks_at_a_bounded_page_of_services_per_run_and_continues_where_it_stopped() {
    let world = World::build().await;
    register(&world, "svc", "billing/api", 30).await;
    // 31 services in name order: shop, svc-0 … svc-29 ("shop" < "svc-").
    let first = teardown::run(&world.ctx).await.unwrap();
    assert_eq!(first.services.len(), 25);
    assert_eq!(first.services[0], "shop");
    let second = teardown::run(&world.ctx).await.unwrap();
    assert_eq!(second.services.len(), 6);
    assert!(
        second.services.iter().all(|s| !first.services.contains(s)),
        "{second:?}"
    );
    assert_eq!(second.continues_after, None, "the end: start over");
    let third = teardown::run(&world.ctx).await.unwrap();
    assert_eq!(third.services, first.services);
}
