//! Issue 24 item 1, the `secret` form: the app reads its database from a Secrets Manager
//! secret (`secrets: [{name: DB_SECRET, valueFrom: <ARN>}]`). bluegreen writes the clone's own
//! secret (`bluegreen/clone/<clone>`: production's JSON with only the host changed), points
//! the revision that runs on the clone at it, keeps production's revisions on production's
//! secret, deletes it with the clone, and never shows the password.

use bluegreen::Slot;
use bluegreen::config::{DbSource, DbStrategy, ServiceConfig};
use bluegreen::naming::{TAG_DEPLOYMENT, TAG_EXPIRES, TAG_MANAGED};
use bluegreen::record::{ClonePurpose, Deployment};
use bluegreen::secret_reference::{SecretReference, clone_secret_name};
use bluegreen::steps::{abort, migrate, promote, switch, teardown};
use bluegreen_tests::World;

use crate::common::*;

/// RDS's own secret format.
const PRODUCTION_SECRET: &str = r#"{"username":"shop","password":"s3cret","engine":"postgres","host":"shop-db.prod.internal","port":5432,"dbname":"shop"}"#;
const PRODUCTION_HOST: &str = "shop-db.prod.internal";

/// A world whose live revision reads `DB_SECRET` from a production secret holding `value`
/// (through `json_key` when given), with `strategy` (a rehearsal for `shared`) and
/// `database.secret` set. Returns the production `valueFrom`.
async fn secret_world(
    value: &str,
    json_key: Option<&str>,
    strategy: DbStrategy,
) -> (World, ServiceConfig, String) {
    let world = World::build().await;
    let arn = world
        .ctx
        .ports
        .secrets
        .create_secret(
            "shop/db",
            value,
            None,
            &[("bluegreen:database-source".into(), "true".into())],
        )
        .await
        .expect("the production secret");
    let value_from = match json_key {
        Some(key) => format!("{arn}:{key}::"),
        None => arn,
    };
    world
        .live_revision_with(&[], &[("DB_SECRET", &value_from)])
        .await;
    let mut config = world.config();
    config.database.strategy = strategy;
    config.database.rehearsal = strategy == DbStrategy::Shared;
    config.database.source = Some(DbSource::RdsInstance {
        identifier: "shop-db".into(),
    });
    config.database.secret = Some("DB_SECRET".into());
    world.put_config(&config).await;
    (world, config, value_from)
}

/// Where `web` of `task_definition` reads `DB_SECRET` from.
async fn secret_of(world: &World, task_definition: &str) -> String {
    bluegreen::ecs::describe_task_definition(&world.ctx, task_definition)
        .await
        .unwrap()
        .secret_from("web", "DB_SECRET")
        .expect("web reads DB_SECRET")
}

/// The JSON the secret behind `value_from` holds now.
async fn json_behind(world: &World, value_from: &str) -> serde_json::Value {
    let reference = SecretReference::parse(value_from).unwrap();
    let text = world
        .ctx
        .ports
        .secrets
        .secret_string(&reference.secret_id)
        .await
        .unwrap()
        .expect("a text secret");
    serde_json::from_str(&text).unwrap()
}

fn clone_of(deployment: &Deployment, purpose: ClonePurpose) -> (String, String) {
    let clone = deployment.clone_for(purpose).expect("a clone");
    (
        clone.identifier.clone(),
        clone.endpoint.clone().expect("its endpoint"),
    )
}

async fn secret_exists(world: &World, name: &str) -> bool {
    world
        .ctx
        .ports
        .secrets
        .describe_secret(name)
        .await
        .unwrap()
        .is_some()
}

#[tokio::test]
async fn isolated_pre_prod_reads_the_clones_secret_and_production_keeps_its_own() {
    let (world, _, production) = secret_world(PRODUCTION_SECRET, None, DbStrategy::Isolated).await;
    let id = prepare_push(&world, "v2", "event-1").await;
    sync(&world, &id).await;
    let migrated = migrate_with(&world, &id, Some(0)).await.expect("migrate");
    assert!(matches!(migrated, bluegreen::poll::Poll::Done { .. }));
    launch(&world, &id).await;
    let deployment = record(&world, &id).await;
    let (clone, host) = clone_of(&deployment, ClonePurpose::Preprod);

    // Pre-prod's revision reads the clone's own secret: production's JSON, only the host moved.
    let preprod = deployment.task_definitions.preprod.clone().unwrap();
    assert_eq!(world.service(Slot::Green).await.0, preprod);
    let preprod_secret = secret_of(&world, &preprod).await;
    assert!(
        preprod_secret.contains(&clone_secret_name("shop", &clone)),
        "{preprod_secret}"
    );
    let json = json_behind(&world, &preprod_secret).await;
    assert_eq!(json["host"], host.as_str());
    assert_eq!(json["password"], "s3cret");
    assert_eq!(json["port"], 5432);
    let info = world
        .ctx
        .ports
        .secrets
        .describe_secret(&clone_secret_name("shop", &clone))
        .await
        .unwrap()
        .expect("the clone's secret");
    assert!(
        info.tags.contains(&(TAG_DEPLOYMENT.to_owned(), id.clone())),
        "{:?}",
        info.tags
    );
    // The migration on the clone ran on that revision, with no override (ECS cannot override
    // a secret).
    let rehearsal = world
        .task(
            deployment
                .rehearsal_task_arn
                .as_deref()
                .expect("the clone migration"),
        )
        .await;
    assert_eq!(
        rehearsal.task_definition_arn.as_deref(),
        Some(preprod.as_str())
    );
    assert!(
        rehearsal
            .overrides
            .unwrap()
            .container_overrides()
            .iter()
            .all(|o| o.environment().is_empty()),
        "no environment override"
    );
    // Production's secret is untouched.
    assert_eq!(
        json_behind(&world, &production).await["host"],
        PRODUCTION_HOST
    );

    // Promote skipped: the switch refuses; its evidence names the clone, never the password.
    assert!(matches!(
        health(&world, &id).await.expect("health"),
        bluegreen::poll::Poll::Done { .. }
    ));
    approve(&world, &id).await;
    let err = switch::start(&world.ctx, &id_ref(&id)).await.unwrap_err();
    assert_eq!(err.name(), "ProductionOnClone", "{err}");
    assert!(err.to_string().contains(&clone), "{err}");
    assert!(!err.to_string().contains("s3cret"), "{err}");

    // After approval the slot reads production's own secret, exactly as the live slot does.
    promote::start(&world.ctx, &id_ref(&id)).await.unwrap();
    let production_td = record(&world, &id)
        .await
        .task_definitions
        .production
        .expect("a production revision");
    assert_eq!(secret_of(&world, &production_td).await, production);
}

/// A `valueFrom` with a JSON key (`…:host::`): the clone's secret is the whole JSON with the
/// host moved, and pre-prod reads the same key of it.
#[tokio::test]
async fn a_json_key_reference_keeps_its_key() {
    let (world, _, production) =
        secret_world(PRODUCTION_SECRET, Some("host"), DbStrategy::Isolated).await;
    let id = prepare_push(&world, "v2", "event-1").await;
    sync(&world, &id).await;
    migrate_with(&world, &id, Some(0)).await.expect("migrate");
    let deployment = record(&world, &id).await;
    let (clone, host) = clone_of(&deployment, ClonePurpose::Preprod);
    let preprod = secret_of(
        &world,
        deployment.task_definitions.preprod.as_deref().unwrap(),
    )
    .await;
    assert!(
        preprod.contains(&clone_secret_name("shop", &clone)) && preprod.ends_with(":host::"),
        "{preprod}"
    );
    assert_eq!(json_behind(&world, &preprod).await["host"], host.as_str());
    assert_eq!(
        json_behind(&world, &production).await["host"],
        PRODUCTION_HOST
    );
}

/// `shared` + `rehearsal`: the rehearsal runs on its own revision reading the rehearsal
/// clone's secret; pre-prod's revision — which production's migration runs on — keeps
/// production's secret.
#[tokio::test]
async fn a_rehearsal_runs_on_the_rehearsal_clones_secret_and_production_migrates_on_its_own() {
    let (world, _, production) = secret_world(PRODUCTION_SECRET, None, DbStrategy::Shared).await;
    let id = prepare_push(&world, "v2", "event-1").await;
    sync(&world, &id).await;
    let running = migrate_with(&world, &id, Some(0)).await.expect("migrate");
    assert!(
        matches!(running, bluegreen::poll::Poll::Pending { .. }),
        "the production migration runs after the rehearsal: {running:?}"
    );
    let deployment = record(&world, &id).await;
    let (clone, host) = clone_of(&deployment, ClonePurpose::Rehearsal);
    let rehearsal_td = deployment
        .task_definitions
        .rehearsal
        .clone()
        .expect("a rehearsal revision");
    let rehearsal = world
        .task(deployment.rehearsal_task_arn.as_deref().unwrap())
        .await;
    assert_eq!(
        rehearsal.task_definition_arn.as_deref(),
        Some(rehearsal_td.as_str())
    );
    let rehearsal_secret = secret_of(&world, &rehearsal_td).await;
    assert!(rehearsal_secret.contains(&clone_secret_name("shop", &clone)));
    assert_eq!(
        json_behind(&world, &rehearsal_secret).await["host"],
        host.as_str()
    );

    let preprod = deployment.task_definitions.preprod.clone().unwrap();
    assert_eq!(secret_of(&world, &preprod).await, production);
    // The family's newest revision (what `run-task --task-definition shop` starts) is
    // pre-prod's, never the rehearsal's, whose secret goes with the deployment.
    let newest = bluegreen::ecs::describe_task_definition(&world.ctx, "shop")
        .await
        .unwrap();
    assert_eq!(newest.arn, preprod);
    let production_migration = world
        .task(
            deployment
                .migration_task_arn
                .as_deref()
                .expect("production's migration"),
        )
        .await;
    assert_eq!(
        production_migration.task_definition_arn.as_deref(),
        Some(preprod.as_str()),
        "production's migration reads production's secret"
    );
}

/// Every entry that read production's secret reads the clone's copy: the app's setting, its
/// other keys of the same secret (`DATABASE_URL` from `…:url::`), a worker reading the whole
/// JSON under another name, one naming it by its partial ARN; both address fields of the copy
/// are moved.
#[tokio::test]
async fn every_reader_of_the_production_secret_reads_the_clones_copy() {
    use aws_sdk_ecs::types::{ContainerDefinition, Secret};
    let (world, _, production) = secret_world(
        r#"{"host":"shop-db.prod.internal","url":"postgres://shop:s3cret@shop-db.prod.internal:5432/shop","password":"s3cret"}"#,
        None,
        DbStrategy::Isolated,
    )
    .await;
    let image = world.service(Slot::Blue).await.0;
    let image = bluegreen::ecs::describe_task_definition(&world.ctx, &image)
        .await
        .unwrap()
        .containers[0]
        .image
        .clone();
    let container = |name: &str, secrets: &[(&str, String)]| {
        let mut c = ContainerDefinition::builder()
            .name(name)
            .image(&image)
            .memory(128)
            .essential(true);
        for (n, from) in secrets {
            c = c.secrets(Secret::builder().name(*n).value_from(from).build().unwrap());
        }
        c.build()
    };
    world
        .live_revision_of(vec![
            container(
                "web",
                &[
                    ("DB_SECRET", format!("{production}:host::")),
                    ("DATABASE_URL", format!("{production}:url::")),
                ],
            ),
            container("worker", &[("DB_CREDENTIALS", production.clone())]),
            // The same secret by its partial ARN (without Secrets Manager's random suffix).
            container(
                "reporter",
                &[("DB_PARTIAL", production[..production.len() - 7].to_owned())],
            ),
        ])
        .await;
    let id = prepare_push(&world, "v2", "event-1").await;
    sync(&world, &id).await;
    migrate_with(&world, &id, Some(0)).await.expect("migrate");
    let deployment = record(&world, &id).await;
    let (clone, host) = clone_of(&deployment, ClonePurpose::Preprod);
    let preprod = bluegreen::ecs::describe_task_definition(
        &world.ctx,
        deployment.task_definitions.preprod.as_deref().unwrap(),
    )
    .await
    .unwrap();
    let copy = world
        .ctx
        .ports
        .secrets
        .describe_secret(&clone_secret_name("shop", &clone))
        .await
        .unwrap()
        .expect("the clone's secret")
        .arn;
    for (container, name, expected) in [
        ("web", "DB_SECRET", format!("{copy}:host::")),
        ("web", "DATABASE_URL", format!("{copy}:url::")),
        ("worker", "DB_CREDENTIALS", copy.clone()),
        ("reporter", "DB_PARTIAL", copy.clone()),
    ] {
        assert_eq!(
            preprod.secret_from(container, name),
            Some(expected),
            "{container} {name}"
        );
    }
    let json = json_behind(&world, &copy).await;
    assert_eq!(json["host"], host.as_str());
    assert_eq!(
        json["url"],
        format!("postgres://shop:s3cret@{host}:5432/shop").as_str()
    );
}

/// Every ending deletes the clone's secret with the clone.
#[tokio::test]
async fn an_abort_deletes_the_clones_secret_with_the_clone() {
    let (world, _, production) = secret_world(PRODUCTION_SECRET, None, DbStrategy::Isolated).await;
    let id = prepare_push(&world, "v2", "event-1").await;
    sync(&world, &id).await;
    migrate_with(&world, &id, Some(0)).await.expect("migrate");
    launch(&world, &id).await;
    let (clone, _) = clone_of(&record(&world, &id).await, ClonePurpose::Preprod);
    assert!(secret_exists(&world, &clone_secret_name("shop", &clone)).await);
    let ended = abort::run(&world.ctx, &failure(&id, "HealthCheckFailed"))
        .await
        .unwrap();
    assert!(
        !secret_exists(&world, &clone_secret_name("shop", &clone)).await,
        "{ended:?}"
    );
    assert!(!world.db_instances().await.contains(&clone));
    assert_eq!(
        json_behind(&world, &production).await["host"],
        PRODUCTION_HOST
    );
    assert_eq!(
        secret_of(&world, &world.service(Slot::Blue).await.0).await,
        production
    );
}

/// A secret bluegreen cannot re-point is refused before any task runs or any secret is
/// written, naming why and never the value.
#[tokio::test]
async fn a_secret_that_cannot_be_re_pointed_is_refused_before_anything_runs() {
    for (value, json_key, says) in [
        (
            r#"{"username":"shop","password":"s3cret"}"#,
            None,
            "keys: password, username",
        ),
        (
            PRODUCTION_SECRET,
            Some("password"),
            "neither a host nor a URL",
        ),
        ("s3cret", None, "neither a JSON object nor a URL"),
    ] {
        let (world, _, _) = secret_world(value, json_key, DbStrategy::Isolated).await;
        let err = refused_before_anything_runs(&world).await;
        assert_eq!(err.name(), "ConfigInvalid", "{err}");
        let text = err.to_string();
        assert!(
            text.contains("database.secret: DB_SECRET") && text.contains(says),
            "{text}"
        );
        assert!(!text.contains("s3cret"), "the value is shown: {text}");
        let written = world
            .ctx
            .ports
            .secrets
            .secrets_named(bluegreen::secret_reference::CLONE_SECRET_PREFIX)
            .await
            .unwrap();
        assert!(written.is_empty(), "{written:?}");
    }
}

/// An SSM parameter cannot be re-pointed: refused, naming it.
#[tokio::test]
async fn a_database_setting_from_an_ssm_parameter_is_refused_naming_it() {
    let world = World::build().await;
    world
        .live_revision_with(
            &[],
            &[(
                "DB_SECRET",
                "arn:aws:ssm:us-east-1:123456789012:parameter/shop/db",
            )],
        )
        .await;
    let mut config = world.config();
    config.database.strategy = DbStrategy::Isolated;
    config.database.source = Some(DbSource::RdsInstance {
        identifier: "shop-db".into(),
    });
    config.database.secret = Some("DB_SECRET".into());
    world.put_config(&config).await;
    let err = refused_before_anything_runs(&world).await;
    assert_eq!(err.name(), "ConfigInvalid", "{err}");
    assert!(err.to_string().contains("SSM parameter"), "{err}");
}

/// The issue's hazard: `shared` + `rehearsal`, the app reads `DATABASE_URL` from a secret and
/// the config names a plain variable. The rehearsal would run on production; it is refused
/// before any task runs, pointing at `database.secret`.
#[tokio::test]
async fn a_rehearsal_whose_app_reads_its_url_from_a_secret_the_config_does_not_name_is_refused() {
    let world = World::build().await;
    world
        .live_revision_with(
            &[],
            &[(
                "DATABASE_URL",
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:shop/url-AbCdEf",
            )],
        )
        .await;
    let mut config = world.config();
    config.database.rehearsal = true;
    config.database.source = Some(DbSource::RdsInstance {
        identifier: "shop-db".into(),
    });
    config.database.url_env = Some("DATABASE_URL".into());
    world.put_config(&config).await;
    let id = prepare_push(&world, "v2", "event-1").await;
    sync(&world, &id).await;
    let err = migrate::start(&world.ctx, &id_ref(&id))
        .await
        .expect_err("refused");
    assert_eq!(err.name(), "ConfigInvalid", "{err}");
    assert!(
        err.to_string().contains("from a secret") && err.to_string().contains("database.secret"),
        "{err}"
    );
    for kind in ["rehearsal", "migrate"] {
        assert!(
            world
                .tasks_started_by(&bluegreen::naming::started_by(&id, kind))
                .await
                .is_empty(),
            "no {kind} task ran"
        );
    }
}

/// A clone's secret an ending missed goes with scheduled teardown once expired and its
/// deployment ended; one of a running deployment stays.
#[tokio::test]
async fn teardown_deletes_an_orphaned_clone_secret_and_keeps_a_running_deployments() {
    let (world, _, _) = secret_world(PRODUCTION_SECRET, None, DbStrategy::Isolated).await;
    let ended = prepare_push(&world, "v2", "event-1").await;
    abort::run(&world.ctx, &failure(&ended, "SyncFailed"))
        .await
        .unwrap();
    let running = prepare_push(&world, "v3", "event-2").await;
    let secrets = &world.ctx.ports.secrets;
    for (name, owner) in [
        ("bg-shop-orphan-preprod", &ended),
        ("bg-shop-live-preprod", &running),
    ] {
        secrets
            .create_secret(
                &clone_secret_name("shop", name),
                "{}",
                None,
                &[
                    (TAG_MANAGED.into(), "true".into()),
                    (TAG_DEPLOYMENT.into(), owner.clone()),
                    (TAG_EXPIRES.into(), "2000-01-01T00:00:00Z".into()),
                ],
            )
            .await
            .unwrap();
    }
    let report = teardown::run(&world.ctx).await.unwrap();
    assert!(
        !secret_exists(&world, &clone_secret_name("shop", "bg-shop-orphan-preprod")).await,
        "{report:?}"
    );
    assert!(
        secret_exists(&world, &clone_secret_name("shop", "bg-shop-live-preprod")).await,
        "{report:?}"
    );
    assert!(
        report
            .kept
            .iter()
            .any(|k| k.contains("bg-shop-live-preprod") && k.contains("still running")),
        "{report:?}"
    );
}
