//! Issue 24 item 1: `database.url_env` — the app reads its database from a URL
//! (`DATABASE_URL=postgres://user:password@host:5432/db`). bluegreen rewrites only the host:
//! isolated pre-prod gets production's URL with the clone's host, the rehearsal's task too,
//! production keeps its own URL, and the guard's evidence never shows the password.

use bluegreen::Slot;
use bluegreen::config::{DbSource, DbStrategy, ServiceConfig};
use bluegreen::poll::Poll;
use bluegreen::record::ClonePurpose;
use bluegreen::steps::{migrate, promote, switch};
use bluegreen_tests::World;

use crate::common::*;

const PRODUCTION_URL: &str =
    "postgres://shop:s3cret@shop-db.prod.internal:5432/shop?sslmode=require";

/// A world whose live revision reads `DATABASE_URL` = `url`, with `strategy` (and a rehearsal
/// for `shared`) and `url_env` set.
async fn url_world(url: &str, strategy: DbStrategy) -> (World, ServiceConfig) {
    let world = World::build().await;
    world
        .live_revision_with(&[("DATABASE_URL", url)], &[])
        .await;
    let mut config = world.config();
    config.database.strategy = strategy;
    config.database.rehearsal = strategy == DbStrategy::Shared;
    config.database.source = Some(DbSource::RdsInstance {
        identifier: "shop-db".into(),
    });
    config.database.url_env = Some("DATABASE_URL".into());
    world.put_config(&config).await;
    (world, config)
}

async fn url_of(world: &World, task_definition: &str) -> Option<String> {
    bluegreen::ecs::describe_task_definition(&world.ctx, task_definition)
        .await
        .unwrap()
        .env_value("web", "DATABASE_URL")
}

fn with_host(host: &str) -> String {
    format!("postgres://shop:s3cret@{host}:5432/shop?sslmode=require")
}

#[tokio::test]
async fn isolated_pre_prod_gets_productions_url_on_the_clones_host_and_production_keeps_its_own() {
    let (world, _) = url_world(PRODUCTION_URL, DbStrategy::Isolated).await;
    let id = prepare_push(&world, "v2", "event-1").await;
    sync(&world, &id).await;
    let migrated = migrate_with(&world, &id, Some(0)).await.expect("migrate");
    assert!(matches!(migrated, Poll::Done { .. }), "{migrated:?}");
    launch(&world, &id).await;
    let deployment = record(&world, &id).await;
    let clone = deployment
        .clone_for(ClonePurpose::Preprod)
        .and_then(|c| c.endpoint.clone())
        .expect("the clone's endpoint");
    let preprod = deployment.task_definitions.preprod.clone().unwrap();
    assert_eq!(url_of(&world, &preprod).await, Some(with_host(&clone)));
    assert_eq!(world.service(Slot::Green).await.0, preprod);

    // Promote skipped (a bug, a hand-edited definition): the switch refuses, and its evidence
    // names the clone but not the password.
    let healthy = health(&world, &id).await.expect("health");
    assert!(matches!(healthy, Poll::Done { .. }));
    approve(&world, &id).await;
    let err = switch::start(&world.ctx, &id_ref(&id)).await.unwrap_err();
    assert_eq!(err.name(), "ProductionOnClone", "{err}");
    let text = err.to_string();
    assert!(text.contains(&clone), "{text}");
    assert!(!text.contains("s3cret"), "the password is shown: {text}");

    promote::start(&world.ctx, &id_ref(&id)).await.unwrap();
    let production = record(&world, &id)
        .await
        .task_definitions
        .production
        .expect("a production revision");
    assert_eq!(
        url_of(&world, &production).await.as_deref(),
        Some(PRODUCTION_URL)
    );
}

/// `shared` + `rehearsal`: the rehearsal task's override is production's URL with the clone's
/// host; the pre-prod revision itself keeps production's URL (shared).
#[tokio::test]
async fn a_rehearsal_runs_with_productions_url_on_the_clones_host() {
    let (world, _) = url_world(PRODUCTION_URL, DbStrategy::Shared).await;
    let id = prepare_push(&world, "v2", "event-1").await;
    sync(&world, &id).await;
    migrate::start(&world.ctx, &id_ref(&id)).await.unwrap();
    let deployment = record(&world, &id).await;
    let clone = deployment
        .clone_for(ClonePurpose::Rehearsal)
        .and_then(|c| c.endpoint.clone())
        .expect("the rehearsal clone's endpoint");
    let task = world
        .task(
            deployment
                .rehearsal_task_arn
                .as_deref()
                .expect("a rehearsal"),
        )
        .await;
    let overrides = task.overrides.expect("overrides");
    let web = overrides
        .container_overrides()
        .iter()
        .find(|o| o.name.as_deref() == Some("web"))
        .expect("the web container's override");
    let env: Vec<(String, String)> = web
        .environment()
        .iter()
        .map(|kv| (kv.name.clone().unwrap(), kv.value.clone().unwrap()))
        .collect();
    assert_eq!(env, [("DATABASE_URL".to_owned(), with_host(&clone))]);
    let preprod = deployment.task_definitions.preprod.unwrap();
    assert_eq!(
        url_of(&world, &preprod).await.as_deref(),
        Some(PRODUCTION_URL)
    );
}

/// A `url_env` whose value is no URL with a host is refused before any task runs, naming the
/// setting and not the value.
#[tokio::test]
async fn a_url_setting_that_holds_no_url_is_refused_before_anything_runs() {
    let (world, _) = url_world("shop-db.prod.internal", DbStrategy::Isolated).await;
    let err = refused_before_anything_runs(&world).await;
    assert_eq!(err.name(), "ConfigInvalid", "{err}");
    assert!(
        err.to_string().contains("database.url_env: DATABASE_URL")
            && err.to_string().contains("not a URL"),
        "{err}"
    );
}
