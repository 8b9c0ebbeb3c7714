//! Database safety, step by step: the guard that keeps production off clones, cleanup that
//! never deletes a clone a running slot uses, the post-approval re-point, rollback migrations
//! waited for before the lock is released, the maintenance page while production migrates, and
//! what approvers are told.

use bluegreen::Slot;
use bluegreen::config::{DbStrategy, MigrationRun};
use bluegreen::lock::Locks;
use bluegreen::operator;
use bluegreen::poll::Poll;
use bluegreen::record::{Status, TaskState};
use bluegreen::steps::{abort, approval, migrate, promote, rollback, switch};
use bluegreen_tests::World;

use crate::common::*;

const PRODUCTION_DB: &str = "shop-db.prod.internal";

async fn database_of(world: &World, task_definition: &str) -> String {
    let td = bluegreen::ecs::describe_task_definition(&world.ctx, task_definition)
        .await
        .unwrap();
    td.env_value("web", "DATABASE_HOST").unwrap()
}

/// An isolated deployment, synced, migrated on its clone, launched on it and healthy.
async fn isolated_to_health(world: &World) -> String {
    world.use_isolated_db().await;
    let id = prepare_push(world, "v2", "event-1").await;
    sync(world, &id).await;
    let migrated = migrate_with(world, &id, Some(0)).await.expect("migrate");
    assert!(matches!(migrated, Poll::Done { .. }), "{migrated:?}");
    launch(world, &id).await;
    let healthy = health(world, &id).await.expect("health");
    assert!(matches!(healthy, Poll::Done { .. }), "{healthy:?}");
    id
}

#[tokio::test]
async fn a_switch_to_a_slot_on_a_clone_is_refused_and_production_stays_where_it_is() {
    let world = World::build().await;
    let id = isolated_to_health(&world).await;
    approve(&world, &id).await;
    // The promote step is skipped (a bug, a hand-edited definition): green still runs on the
    // clone. The guard in the switch refuses before any traffic moves.
    let green_db = database_of(&world, &world.service(Slot::Green).await.0).await;
    assert!(green_db.starts_with("bg-shop-"), "{green_db}");
    let err = switch::start(&world.ctx, &id_ref(&id)).await.unwrap_err();
    assert_eq!(err.name(), "ProductionOnClone", "{err}");
    assert!(err.to_string().contains(&green_db), "{err}");
    let production = world.production().await;
    assert_eq!((production.blue, production.green), (1, 0));
    assert!(
        record(&world, &id)
            .await
            .has_outcome("switch", bluegreen::record::StepOutcome::Failed)
    );
}

#[tokio::test]
async fn promote_repoints_the_isolated_slot_to_production_migrates_it_and_only_then_is_ready() {
    let world = World::build().await;
    let id = isolated_to_health(&world).await;
    approve(&world, &id).await;
    let started = promote::start(&world.ctx, &id_ref(&id)).await.unwrap();
    let deployment = record(&world, &id).await;
    assert_eq!(deployment.status, Status::Promoting);
    let production_td = deployment.task_definitions.production.clone().unwrap();
    assert_eq!(database_of(&world, &production_td).await, PRODUCTION_DB);
    assert_ne!(
        Some(&production_td),
        deployment.task_definitions.preprod.as_ref()
    );
    // The production migration runs with the production revision, no override.
    let migration = deployment.migration_task_arn.clone().unwrap();
    let task = world.task(&migration).await;
    assert_eq!(
        task.task_definition_arn.as_deref(),
        Some(production_td.as_str())
    );
    assert_eq!(
        deployment.production_migration.as_ref().map(|m| m.state),
        Some(TaskState::Running)
    );
    // Nothing moved while it runs.
    let check = check_of(&started);
    assert!(matches!(
        promote::check(&world.ctx, &check).await.unwrap(),
        Poll::Pending { .. }
    ));
    assert_eq!(world.production().await.live().unwrap(), Slot::Blue);
    world
        .stop_task(&migration, Some(0), "EssentialContainerExited")
        .await;
    // The slot rolls out on the production revision; until ECS completes it, not ready.
    let rolling = promote::check(&world.ctx, &check).await.unwrap();
    assert!(matches!(rolling, Poll::Pending { .. }), "{rolling:?}");
    assert_eq!(world.service(Slot::Green).await.0, production_td);
    world.settle(Slot::Green, "COMPLETED").await;
    let ready = promote::check(&world.ctx, &check).await.unwrap();
    assert!(matches!(ready, Poll::Done { .. }), "{ready:?}");
    assert_eq!(world.production().await.live().unwrap(), Slot::Blue);
    switch_all(&world, &id).await;
    let serving = world.service(Slot::Green).await.0;
    assert_eq!(database_of(&world, &serving).await, PRODUCTION_DB);
}

#[tokio::test]
async fn an_isolated_service_whose_live_task_definition_lacks_the_database_setting_is_refused() {
    let world = World::build().await;
    let mut config = world.config();
    config.database.strategy = DbStrategy::Isolated;
    config.database.source = Some(bluegreen::config::DbSource::RdsInstance {
        identifier: "shop-db".into(),
    });
    config.database.endpoint_env = "DATABASE_URL".into();
    world.put_config(&config).await;
    let id = prepare_push(&world, "v2", "event-1").await;
    sync(&world, &id).await;
    let err = migrate::start(&world.ctx, &id_ref(&id)).await.unwrap_err();
    assert_eq!(err.name(), "ConfigInvalid");
    assert!(err.to_string().contains("DATABASE_URL"), "{err}");
    assert_eq!(world.service(Slot::Green).await.1, 0, "nothing launched");
    assert!(
        world
            .tasks_started_by(&bluegreen::naming::started_by(&id, "rehearsal"))
            .await
            .is_empty()
    );
}

const DATABASE_URL_SECRET: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:shop/database-url-AbCdEf";

/// A world with `shared` + `rehearsal` whose live revision's `web` container has exactly
/// `environment` and `secrets`, and a push prepared and synced: `(world, deployment id)`.
async fn rehearsal_with(environment: &[(&str, &str)], secrets: &[(&str, &str)]) -> (World, String) {
    let world = World::build().await;
    let mut config = world.config();
    config.database.rehearsal = true;
    config.database.source = Some(bluegreen::config::DbSource::RdsInstance {
        identifier: "shop-db".into(),
    });
    world.put_config(&config).await;
    world.live_revision_with(environment, secrets).await;
    let id = prepare_push(&world, "v2", "event-1").await;
    sync(&world, &id).await;
    (world, id)
}

/// Issue 24 item 3: `shared` + `rehearsal` for an app that reads `DATABASE_URL` from a secret.
/// The rehearsal only overrides `endpoint_env` (`DATABASE_HOST`), which this app never reads:
/// it would have migrated production before approval and reported it as "on the clone". The
/// revision is refused before any task runs, naming what the task definition really uses.
#[tokio::test]
async fn a_rehearsal_for_an_app_reading_its_database_url_from_a_secret_is_refused_before_anything_runs()
 {
    let (world, id) = rehearsal_with(
        &[("DB_POOL", "5")],
        &[("DATABASE_URL", DATABASE_URL_SECRET)],
    )
    .await;
    let err = migrate::start(&world.ctx, &id_ref(&id)).await.unwrap_err();
    assert_eq!(err.name(), "ConfigInvalid", "{err}");
    let text = err.to_string();
    assert!(
        text.contains("sets no DATABASE_HOST; it has secret DATABASE_URL")
            && text.contains("the rehearsal would run on production's database"),
        "{text}"
    );
    for kind in ["rehearsal", "migrate"] {
        assert!(
            world
                .tasks_started_by(&bluegreen::naming::started_by(&id, kind))
                .await
                .is_empty(),
            "no {kind} task"
        );
    }
}

/// A plain `DATABASE_HOST` beside a `DATABASE_URL` secret: the app may read either, so the
/// rehearsal is refused too; beside a password secret (`DB_PASSWORD`, the usual split) it runs
/// on the clone.
#[tokio::test]
async fn a_rehearsal_runs_only_when_the_host_variable_is_the_apps_only_database_address() {
    let (world, id) = rehearsal_with(
        &[("DATABASE_HOST", PRODUCTION_DB)],
        &[("DATABASE_URL", DATABASE_URL_SECRET)],
    )
    .await;
    let err = migrate::start(&world.ctx, &id_ref(&id)).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("sets DATABASE_HOST, but also secret DATABASE_URL"),
        "{err}"
    );

    let (world, id) = rehearsal_with(
        &[("DATABASE_HOST", PRODUCTION_DB)],
        &[("DB_PASSWORD", DATABASE_URL_SECRET)],
    )
    .await;
    migrate::start(&world.ctx, &id_ref(&id)).await.unwrap();
    let rehearsal = world
        .tasks_started_by(&bluegreen::naming::started_by(&id, "rehearsal"))
        .await;
    assert_eq!(rehearsal.len(), 1, "the rehearsal runs on the clone");
}

#[tokio::test]
async fn cleanup_keeps_a_clone_that_a_running_slot_uses_and_the_deployment_needs_attention() {
    let world = World::build().await.with_topic();
    let (id, ended) = aborted_with_the_clone_in_use(&world).await;
    assert_eq!(ended.status, Status::NeedsAttention);
    let clone = record(&world, &id).await.clones[0].identifier.clone();
    assert!(
        world.db_instances().await.contains(&clone),
        "the clone production uses was deleted"
    );
    let lock = Locks::new(&world.ctx).read("shop").await.unwrap().unwrap();
    assert_eq!(lock.holder, id, "the lock stays with the deployment");
    assert!(
        lock.needs_attention.unwrap().contains(&clone),
        "the lock says why"
    );
    let last = world.published().await.pop().unwrap();
    assert_eq!(last["subject"], "bluegreen: shop needs attention");
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("bluegreen unlock shop"),
        "{last}"
    );
}

async fn with_rollback_command(world: &World) {
    let mut config = world.config();
    config.migration.as_mut().unwrap().rollback_command =
        Some(vec!["bin/migrate".into(), "down".into()]);
    world.put_config(&config).await;
}

/// Rolls a switched deployment back with a rollback command whose task exits with
/// `exit_code`; returns the deployment and the ending's final answer.
async fn rolled_back_with(world: &World, exit_code: i32) -> (String, bluegreen::steps::Ended) {
    with_rollback_command(world).await;
    let id = deploy_to_switch(world).await;
    roll_back(world, &id).await;
    let task = record(world, &id)
        .await
        .rollback_migration
        .unwrap()
        .task_arn;
    world
        .stop_task(&task, Some(exit_code), "EssentialContainerExited")
        .await;
    let ended = roll_back(world, &id).await;
    (id, ended)
}

#[tokio::test]
async fn rollback_waits_for_the_rollback_migration_before_it_releases_the_lock() {
    let world = World::build().await.with_topic();
    with_rollback_command(&world).await;
    let id = deploy_to_switch(&world).await;
    let waiting = roll_back(&world, &id).await;
    let wait = waiting.wait.clone().expect("the ending waits");
    assert!(wait.seconds > 0);
    // Traffic is back at once; the lock is not released while the schema is being reverted.
    assert_eq!(world.production().await.live().unwrap(), Slot::Blue);
    assert_eq!(world.lock_holder().await, Some(id.clone()));
    let deployment = record(&world, &id).await;
    assert!(!deployment.status.is_terminal(), "{:?}", deployment.status);
    let task = deployment.rollback_migration.unwrap().task_arn;
    assert_eq!(
        world.task_override(&task).await.command,
        Some(vec!["bin/migrate".to_owned(), "down".to_owned()])
    );
    world
        .stop_task(&task, Some(0), "EssentialContainerExited")
        .await;
    let ended = roll_back(&world, &id).await;
    assert_eq!(ended.status, Status::RolledBack);
    assert!(ended.wait.is_none());
    assert_eq!(world.lock_holder().await, None);
    let deployment = record(&world, &id).await;
    assert_eq!(
        deployment.rollback_migration.map(|t| t.state),
        Some(TaskState::Succeeded)
    );
    assert!(
        deployment
            .timeline
            .last()
            .unwrap()
            .detail
            .contains("rollback migration `bin/migrate down` exited 0")
    );
    let rollbacks = world
        .tasks_started_by(&bluegreen::naming::started_by(&id, "rollback"))
        .await;
    assert_eq!(rollbacks.len(), 1, "started once");
}

/// Issue 21, item 7: a rollback retried through the operator API, whose wait limit ends
/// while the rollback migration still runs, is carried on by the reconciler's sweep — left
/// alone while the retry's process may still run it, then waited for, then ended rolled back
/// — never marked needs-attention (nor its lock handed on) while its migration runs.
#[tokio::test]
async fn a_retried_rollback_left_waiting_is_continued_by_the_sweep_never_marked() {
    use bluegreen::record::{Change, Records};
    use bluegreen::steps::reconcile::{self, Action, EndingFailure};
    let world = World::build().await.with_topic();
    with_rollback_command(&world).await;
    let id = deploy_to_switch(&world).await;
    // The rollback failed inside the execution (its listener write was denied): a person.
    let failed = reconcile::ending_failed(
        &world.ctx,
        &EndingFailure {
            deployment_id: id.clone(),
            error: Some(bluegreen::steps::CaughtError {
                error: "AwsAccessDenied".into(),
                cause: "elasticloadbalancing:ModifyListener was denied".into(),
            }),
            state: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(failed.status, Status::NeedsAttention);
    let notices_before = world.published().await.len();

    // The person fixed the permission and retries through the API, whose wait is cut short.
    let retried = operator::retry(&world.ctx, &id, "oncall", std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        (retried.ending.as_str(), retried.status),
        ("rollback", Status::Baking)
    );
    assert_eq!(world.production().await.live().unwrap(), Slot::Blue);
    let task = record(&world, &id)
        .await
        .rollback_migration
        .expect("the rollback migration started")
        .task_arn;

    // While the retry's process may still run the ending, the sweep leaves it alone.
    let mut resumed = record(&world, &id)
        .await
        .resumed
        .expect("the retry is recorded");
    assert!(
        resumed.until <= world.now(),
        "the retry handed the ending over"
    );
    resumed.until = world.now() + chrono::Duration::minutes(5);
    Records::new(&world.ctx)
        .update_ending(&id, Change::new().resumed(&resumed))
        .await
        .unwrap();
    let left = reconcile::service(&world.ctx, "shop").await.unwrap();
    assert_eq!(left.action, Action::Nothing, "{left:?}");

    // Past that bound the sweep continues the rollback: it waits for the migration.
    world.advance(chrono::Duration::minutes(6));
    let waiting = reconcile::service(&world.ctx, "shop").await.unwrap();
    assert_eq!(waiting.action, Action::Waiting, "{waiting:?}");
    let lock = Locks::new(&world.ctx).read("shop").await.unwrap().unwrap();
    assert_eq!(
        lock.holder, id,
        "the lock stays while the schema is reverted"
    );
    assert!(lock.needs_attention.is_none(), "not marked: {lock:?}");
    assert_eq!(record(&world, &id).await.status, Status::Baking);
    assert_eq!(
        world.published().await.len(),
        notices_before,
        "nobody told to unlock"
    );

    // The rollback migration exits 0: the next sweep ends it rolled back, the service free.
    world
        .stop_task(&task, Some(0), "EssentialContainerExited")
        .await;
    let ended = reconcile::service(&world.ctx, "shop").await.unwrap();
    assert_eq!(ended.action, Action::Ended, "{ended:?}");
    let deployment = record(&world, &id).await;
    assert_eq!(deployment.status, Status::RolledBack);
    assert_eq!(
        deployment.rollback_migration.map(|t| t.state),
        Some(TaskState::Succeeded)
    );
    assert_eq!(world.lock_holder().await, None);
    assert_eq!(world.production().await.live().unwrap(), Slot::Blue);
    let (_, green_count, _) = world.service(Slot::Green).await;
    assert_eq!(green_count, 0, "the failed slot is scaled down");
    let rollbacks = world
        .tasks_started_by(&bluegreen::naming::started_by(&id, "rollback"))
        .await;
    assert_eq!(rollbacks.len(), 1, "the rollback migration ran once");
    let subjects = world.published_subjects().await;
    let since_the_retry = &subjects[notices_before..];
    assert!(
        since_the_retry.len() == 1 && since_the_retry[0].contains("rolled back"),
        "{since_the_retry:?}"
    );
}

/// A rollback whose execution died while it waited for its rollback migration (stopped,
/// timed out) is continued by the sweep — it had chosen its ending — not handed to a person
/// while the migration still reverts the schema.
#[tokio::test]
async fn a_rollback_whose_execution_died_while_its_migration_ran_is_continued_by_the_sweep() {
    use bluegreen::steps::reconcile::{self, Action};
    let world = World::build().await.with_topic();
    with_rollback_command(&world).await;
    let id = deploy_to_switch(&world).await;
    let waiting = roll_back(&world, &id).await;
    assert!(waiting.wait.is_some());
    // No execution runs any more (this world has no deployment machine: `Missing`).
    let swept = reconcile::service(&world.ctx, "shop").await.unwrap();
    assert_eq!(swept.action, Action::Waiting, "{swept:?}");
    let lock = Locks::new(&world.ctx).read("shop").await.unwrap().unwrap();
    assert!(lock.needs_attention.is_none(), "{lock:?}");
    let task = record(&world, &id)
        .await
        .rollback_migration
        .unwrap()
        .task_arn;
    world
        .stop_task(&task, Some(0), "EssentialContainerExited")
        .await;
    let ended = reconcile::service(&world.ctx, "shop").await.unwrap();
    assert_eq!(ended.action, Action::Ended, "{ended:?}");
    assert_eq!(record(&world, &id).await.status, Status::RolledBack);
    assert_eq!(world.lock_holder().await, None);
    assert_eq!(world.production().await.live().unwrap(), Slot::Blue);
}

#[tokio::test]
async fn a_failed_rollback_migration_needs_attention_and_keeps_the_lock() {
    let world = World::build().await.with_topic();
    let (id, ended) = rolled_back_with(&world, 4).await;
    assert_eq!(ended.status, Status::NeedsAttention, "never 'rolled back'");
    assert!(ended.detail.contains("exit code 4,"), "{}", ended.detail);
    assert_eq!(
        world.production().await.live().unwrap(),
        Slot::Blue,
        "traffic stays on the old slot"
    );
    let lock = Locks::new(&world.ctx).read("shop").await.unwrap().unwrap();
    assert_eq!(lock.holder, id);
    assert!(lock.needs_attention.is_some());
    let message = world.published().await.pop().unwrap();
    assert_eq!(message["subject"], "bluegreen: shop needs attention");
    let text = message["message"].as_str().unwrap();
    assert!(text.contains("Production traffic is on: blue"), "{text}");
    assert!(text.contains("bluegreen unlock shop"), "{text}");

    // The command the message names releases it, and says who did.
    let unlocked = operator::unlock(&world.ctx, "shop", "arn:aws:iam::1:user/oncall")
        .await
        .unwrap();
    assert_eq!(unlocked.released_from, id);
    assert_eq!(world.lock_holder().await, None);
    let last = record(&world, &id).await.timeline.pop().unwrap();
    assert_eq!(
        (last.step.as_str(), last.outcome.as_str()),
        ("unlock", "succeeded")
    );
    assert!(
        last.detail.contains("arn:aws:iam::1:user/oncall"),
        "{}",
        last.detail
    );
    let again = operator::unlock(&world.ctx, "shop", "x").await.unwrap_err();
    assert_eq!(again.name(), "UnlockRefused");
}

/// Issue 29 item 13: a retry after the failed rollback migration's cause was fixed runs the
/// rollback migration again — a new task under its own `startedBy` (the failed one would be
/// found, or answered again for the same client token) — and the deployment ends rolled back
/// once it exits 0. The failed attempt stays on the record and the first cause stays the
/// deployment's failure.
#[tokio::test]
async fn a_retry_after_a_failed_rollback_migration_runs_it_again_as_a_new_task() {
    use bluegreen::steps::reconcile::{self, Action};
    let world = World::build().await.with_topic();
    let (id, ended) = rolled_back_with(&world, 4).await;
    assert_eq!(ended.status, Status::NeedsAttention);
    let before = record(&world, &id).await;
    assert_eq!(
        before.rollback_migration.as_ref().map(|t| t.state),
        Some(TaskState::Failed)
    );

    // A rollback migration stopped at its deadline may still run through its stop timeout:
    // the retry waits for its task to stop (two would write to production at once).
    let blue = world
        .aws
        .ecs
        .describe_services()
        .cluster(bluegreen_tests::CLUSTER)
        .services("shop-blue")
        .send()
        .await
        .unwrap()
        .services
        .unwrap()
        .remove(0);
    let stopping = world
        .aws
        .ecs
        .run_task()
        .cluster(bluegreen_tests::CLUSTER)
        .task_definition(blue.task_definition.unwrap())
        .launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
        .set_network_configuration(blue.network_configuration)
        .send()
        .await
        .unwrap()
        .tasks
        .unwrap()
        .remove(0)
        .task_arn
        .unwrap();
    let mut first = before.rollback_migration.clone().unwrap();
    first.task_arn = stopping.clone();
    bluegreen::record::Records::new(&world.ctx)
        .update(
            &id,
            bluegreen::record::Change::new().rollback_migration(&first),
        )
        .await
        .unwrap();
    let refused = operator::retry(&world.ctx, &id, "oncall", std::time::Duration::ZERO)
        .await
        .unwrap_err();
    assert_eq!(refused.name(), "RetryRefused", "{refused}");
    assert!(refused.to_string().contains("still stopping"), "{refused}");
    assert_eq!(record(&world, &id).await.status, Status::NeedsAttention);
    world.stop_task(&stopping, None, "TaskFailedToStop").await;

    let retried = operator::retry(&world.ctx, &id, "oncall", std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_ne!(retried.status, Status::NeedsAttention, "{retried:?}");
    let again = record(&world, &id).await;
    assert_eq!(again.failed_rollback_migrations, vec![first.clone()]);
    let second = again.rollback_migration.clone().expect("started again");
    assert_ne!(second.task_arn, first.task_arn, "a new task");
    assert_eq!(second.state, TaskState::Running);
    let attempt = bluegreen::naming::started_by(&id, "rollback2");
    assert_eq!(world.tasks_started_by(&attempt).await.len(), 1);
    assert!(
        again
            .timeline
            .iter()
            .any(|e| e.step == "retry" && e.detail.contains("rollback migration again")),
        "the retry says what it re-runs"
    );

    world
        .stop_task(&second.task_arn, Some(0), "EssentialContainerExited")
        .await;
    let ended = reconcile::service(&world.ctx, "shop").await.unwrap();
    assert_eq!(ended.action, Action::Ended, "{ended:?}");
    let done = record(&world, &id).await;
    assert_eq!(done.status, Status::RolledBack);
    assert_eq!(done.failure, before.failure, "the first cause stays");
    assert_eq!(world.lock_holder().await, None);
    assert_eq!(world.production().await.live().unwrap(), Slot::Blue);
}

/// A rollback migration that never started (ECS refused its task: a missing permission, say)
/// is run again by a retry too, once the cause is fixed — not answered "already failed".
#[tokio::test]
async fn a_retry_after_a_rollback_migration_that_never_started_runs_it() {
    let world = World::build().await.with_topic();
    let (id, ended) = rolled_back_with(&world, 4).await;
    assert_eq!(ended.status, Status::NeedsAttention);
    let mut never = record(&world, &id).await.rollback_migration.unwrap();
    never.state = TaskState::NeverRan;
    never.detail = "TaskFailedToStart: not allowed to pull the image".into();
    bluegreen::record::Records::new(&world.ctx)
        .update(
            &id,
            bluegreen::record::Change::new().rollback_migration(&never),
        )
        .await
        .unwrap();
    let retried = operator::retry(&world.ctx, &id, "oncall", std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_ne!(retried.status, Status::NeedsAttention, "{retried:?}");
    let again = record(&world, &id).await;
    assert_eq!(again.failed_rollback_migrations, vec![never]);
    let attempt = bluegreen::naming::started_by(&id, "rollback2");
    assert_eq!(world.tasks_started_by(&attempt).await.len(), 1);
}

#[tokio::test]
async fn unlock_is_refused_while_the_holder_is_in_progress() {
    let world = World::build().await;
    let id = prepare_push(&world, "v2", "event-1").await;
    let err = operator::unlock(&world.ctx, "shop", "x").await.unwrap_err();
    assert_eq!(err.name(), "UnlockRefused", "{err}");
    assert!(err.to_string().contains(&id), "{err}");
    assert_eq!(world.lock_holder().await, Some(id));
}

#[tokio::test]
async fn the_maintenance_page_is_up_exactly_while_the_production_migration_runs() {
    let world = World::build().await;
    let mut config = world.config();
    let migration = config.migration.as_mut().unwrap();
    migration.run = Some(MigrationRun::AfterApproval);
    migration.maintenance = true;
    world.put_config(&config).await;
    let id = deploy_to_approval(&world).await;
    assert!(
        world
            .tasks_started_by(&bluegreen::naming::started_by(&id, "migrate"))
            .await
            .is_empty(),
        "nothing ran on production before approval"
    );
    approval::decide(&world.ctx, &id, &decision(true))
        .await
        .unwrap();
    assert!(world.listener_rules().await.is_empty());
    let started = promote::start(&world.ctx, &id_ref(&id)).await.unwrap();
    let rules = world.listener_rules().await;
    assert_eq!(rules.len(), 1, "{rules:?}");
    let rule = world
        .aws
        .elb
        .describe_rules()
        .rule_arns(&rules[0].1)
        .send()
        .await
        .unwrap()
        .rules
        .unwrap()
        .remove(0);
    let action = &rule.actions.unwrap()[0];
    assert_eq!(
        action
            .fixed_response_config
            .as_ref()
            .and_then(|f| f.status_code.as_deref()),
        Some("503")
    );
    // A retried start adds no second page.
    promote::start(&world.ctx, &id_ref(&id)).await.unwrap();
    assert_eq!(world.listener_rules().await.len(), 1);
    let task = record(&world, &id).await.migration_task_arn.unwrap();
    world
        .stop_task(&task, Some(0), "EssentialContainerExited")
        .await;
    let done = promote::check(&world.ctx, &check_of(&started))
        .await
        .unwrap();
    assert!(matches!(done, Poll::Done { .. }), "{done:?}");
    assert!(world.listener_rules().await.is_empty(), "the page is down");
    assert!(record(&world, &id).await.production_migrated());
}

/// Another team's host on the shared production listener: a fixed 200 for `api.example.com`
/// at `priority`. Returns its ARN.
pub(crate) async fn other_teams_rule(world: &World, priority: i32) -> String {
    use aws_sdk_elasticloadbalancingv2::types::{
        Action, ActionTypeEnum, FixedResponseActionConfig, HostHeaderConditionConfig, RuleCondition,
    };
    world
        .aws
        .elb
        .create_rule()
        .listener_arn(&world.production_listener)
        .priority(priority)
        .conditions(
            RuleCondition::builder()
                .field("host-header")
                .host_header_config(
                    HostHeaderConditionConfig::builder()
                        .values("api.example.com")
                        .build(),
                )
                .build(),
        )
        .actions(
            Action::builder()
                .r#type(ActionTypeEnum::FixedResponse)
                .fixed_response_config(
                    FixedResponseActionConfig::builder()
                        .status_code("200")
                        .content_type("text/plain")
                        .message_body("api")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("create rule")
        .rules
        .unwrap_or_default()
        .remove(0)
        .rule_arn
        .expect("rule arn")
}

/// A rule's priority and host-header values.
async fn rule_of(world: &World, arn: &str) -> (String, Vec<String>) {
    let rule = world
        .aws
        .elb
        .describe_rules()
        .rule_arns(arn)
        .send()
        .await
        .unwrap()
        .rules
        .unwrap()
        .remove(0);
    let hosts = rule
        .conditions
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| c.host_header_config.and_then(|h| h.values))
        .flatten()
        .collect();
    (rule.priority.unwrap_or_default(), hosts)
}

/// On a shared listener in rule mode the page answers only the service's own host, directly
/// above its rule: another team's host is served throughout (issue 21, item 3).
#[tokio::test]
async fn in_rule_mode_the_maintenance_page_answers_only_the_services_own_traffic() {
    let world = World::build().await;
    let config = world.use_rule_mode().await;
    // A shared listener: what no rule matches is answered 404, not by this service.
    world.default_action_not_found().await;
    let other = other_teams_rule(&world, 5).await;
    let id = approved_with_maintenance(&world, config).await;
    let before: Vec<(String, String)> = world.listener_rules().await;
    let started = promote::start(&world.ctx, &id_ref(&id)).await.unwrap();
    let page: Vec<String> = world
        .listener_rules()
        .await
        .into_iter()
        .filter(|r| !before.contains(r))
        .map(|(_, arn)| arn)
        .collect();
    assert_eq!(page.len(), 1, "one page");
    assert_eq!(
        rule_of(&world, &page[0]).await,
        ("9".to_owned(), vec!["shop.example.com".to_owned()]),
        "directly above the production rule (10), for its host only"
    );
    assert_eq!(
        rule_of(&world, &other).await,
        ("5".to_owned(), vec!["api.example.com".to_owned()]),
        "the other team's rule is untouched"
    );
    migration_exits_zero(&world, &id, &started).await;
    assert_eq!(world.listener_rules().await, before, "the page is gone");
}

/// The production migration exits 0 and the next check sees it.
async fn migration_exits_zero(world: &World, id: &str, started: &bluegreen::poll::Started) {
    let task = record(world, id).await.migration_task_arn.unwrap();
    world
        .stop_task(&task, Some(0), "EssentialContainerExited")
        .await;
    let _ = promote::check(&world.ctx, &check_of(started))
        .await
        .unwrap();
}

/// In rule mode with the listener's default action forwarding to the service too (bluegreen
/// keeps it following the rule), what no rule matches is the service's traffic as well: a
/// second page answers it, below every rule, and both come down after the migration.
#[tokio::test]
async fn in_rule_mode_a_default_action_to_the_service_gets_its_own_page_below_every_rule() {
    let world = World::build().await;
    let config = world.use_rule_mode().await;
    let other = other_teams_rule(&world, 5).await;
    let id = approved_with_maintenance(&world, config).await;
    let before: Vec<(String, String)> = world.listener_rules().await;
    let started = promote::start(&world.ctx, &id_ref(&id)).await.unwrap();
    // A retried start adds nothing.
    promote::start(&world.ctx, &id_ref(&id)).await.unwrap();
    let mut pages = Vec::new();
    for (_, arn) in world.listener_rules().await {
        if !before.iter().any(|(_, b)| *b == arn) {
            pages.push(rule_of(&world, &arn).await);
        }
    }
    pages.sort();
    assert_eq!(
        pages,
        vec![
            ("11".to_owned(), Vec::<String>::new()),
            ("9".to_owned(), vec!["shop.example.com".to_owned()]),
        ],
        "the rule's host above it; every path below the last rule"
    );
    assert_eq!(rule_of(&world, &other).await.0, "5");
    migration_exits_zero(&world, &id, &started).await;
    assert_eq!(world.listener_rules().await, before, "both pages are gone");
}

/// With the listener's default action as the route, a page for every path would answer 503
/// for another team's host too: refused before anything runs on production.
#[tokio::test]
async fn in_listener_mode_a_shared_listener_refuses_the_maintenance_page_and_changes_nothing() {
    let world = World::build().await;
    let config = world.config();
    let other = other_teams_rule(&world, 5).await;
    let id = approved_with_maintenance(&world, config).await;
    let err = promote::start(&world.ctx, &id_ref(&id)).await.unwrap_err();
    assert_eq!(err.name(), "ConfigInvalid", "{err}");
    assert!(err.to_string().contains(&other), "{err}");
    assert_eq!(world.listener_rules().await.len(), 1, "no page added");
    assert!(
        world
            .tasks_started_by(&bluegreen::naming::started_by(&id, "migrate"))
            .await
            .is_empty(),
        "production never migrated"
    );
}

#[tokio::test]
async fn a_failed_production_migration_takes_the_maintenance_page_down_too() {
    let world = World::build().await;
    let mut config = world.config();
    config.migration.as_mut().unwrap().maintenance = true;
    world.put_config(&config).await;
    let id = prepare_push(&world, "v2", "event-1").await;
    sync(&world, &id).await;
    let err = migrate_with(&world, &id, Some(5)).await.unwrap_err();
    assert_eq!(err.name(), "MigrationFailed");
    assert!(world.listener_rules().await.is_empty());
    let ended = abort::run(&world.ctx, &failure(&id, "MigrationFailed"))
        .await
        .unwrap();
    // The schema may be half-migrated: a person must look before anything else deploys.
    assert_eq!(ended.status, Status::NeedsAttention);
    assert!(
        ended.detail.contains("may have partly applied"),
        "{}",
        ended.detail
    );
    assert_eq!(world.lock_holder().await.as_deref(), Some(id.as_str()));
    assert!(world.listener_rules().await.is_empty(), "no page is left");
}

#[tokio::test]
async fn maintenance_mode_in_dns_mode_is_a_config_error() {
    let world = World::build().await;
    let mut config = world.dns_config();
    config.migration.as_mut().unwrap().maintenance = true;
    let problems = config.problems();
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("migration.maintenance")),
        "{problems:?}"
    );
    config.database.strategy = DbStrategy::Isolated;
    config.migration.as_mut().unwrap().run = Some(MigrationRun::BeforeLaunch);
    assert!(
        config
            .problems()
            .iter()
            .any(|p| p.starts_with("migration.run"))
    );
}

/// The approval message tells the truth about production's schema, for both shared settings.
#[tokio::test]
async fn approvers_are_told_whether_the_production_migration_already_ran() {
    for (run, says, rejecting) in [
        (
            MigrationRun::BeforeLaunch,
            "The production migration has already run on production's database; rejecting \
             will not revert it",
            "bluegreen will run the rollback command `bin/migrate down`",
        ),
        (
            MigrationRun::AfterApproval,
            "The production database is untouched: the production migration runs only after \
             approval",
            "After approval and before any traffic moves, the new slot is migrated on \
             production, health-checked again.",
        ),
    ] {
        let world = World::build().await.with_topic();
        let mut config = world.config();
        let migration = config.migration.as_mut().unwrap();
        migration.run = Some(run);
        migration.rollback_command = Some(vec!["bin/migrate".into(), "down".into()]);
        world.put_config(&config).await;
        let id = prepare_push(&world, "v2", "event-1").await;
        sync(&world, &id).await;
        let migrated = migrate::start(&world.ctx, &id_ref(&id)).await.unwrap();
        if let Some(task) = record(&world, &id).await.migration_task_arn {
            world
                .stop_task(&task, Some(0), "EssentialContainerExited")
                .await;
        }
        migrate::check(&world.ctx, &check_of(&migrated))
            .await
            .unwrap();
        launch(&world, &id).await;
        health(&world, &id).await.unwrap();
        request_approval(&world, &id).await;
        let message = world.published().await.pop().unwrap();
        let text = message["message"].as_str().unwrap();
        assert!(text.contains(says), "{run:?}: {text}");
        assert!(text.contains(rejecting), "{run:?}: {text}");
    }
}

/// An ending retried after it recorded the rollback migration's success but before it ended
/// (its last write was lost), at a time ECS no longer lists the stopped task: the rollback
/// migration is not run a second time.
#[tokio::test]
async fn a_retried_ending_never_runs_the_rollback_migration_twice() {
    use aws_smithy_mocks::{MockResponseInterceptor, RuleMode, mock};
    let world = World::build().await;
    let (id, _) = rolled_back_with(&world, 0).await;
    // The final status write "was lost": the record still says baking.
    // (`update` refuses ended records, so the test rewinds it while it is rolled back.)
    assert!(
        bluegreen::record::Records::new(&world.ctx)
            .update_while(
                &id,
                Status::RolledBack,
                bluegreen::record::Change::new().status(Status::Baking),
            )
            .await
            .unwrap()
    );
    let forgotten = mock!(aws_sdk_ecs::Client::list_tasks)
        .then_output(|| aws_sdk_ecs::operation::list_tasks::ListTasksOutput::builder().build());
    let ctx = bluegreen_tests::with_client(&world.ctx, |c| {
        c.ecs = aws_sdk_ecs::Client::from_conf(
            aws_sdk_ecs::config::Builder::from(&world.sdk)
                .interceptor(
                    MockResponseInterceptor::new()
                        .rule_mode(RuleMode::MatchAny)
                        .with_rule(&forgotten)
                        .allow_passthrough(),
                )
                .build(),
        )
    });
    let ended = rollback::run(&ctx, &failure(&id, "BakeFailed"))
        .await
        .unwrap();
    assert_eq!(ended.status, Status::RolledBack);
    let rollbacks = world
        .tasks_started_by(&bluegreen::naming::started_by(&id, "rollback"))
        .await;
    assert_eq!(rollbacks.len(), 1, "the rollback migration ran twice");
}

/// After approval the production migration ran, but the re-check on production's database
/// fails: abort, traffic never moved, and the rollback command reverts what ran on production
/// (waited for) before the lock is released.
#[tokio::test]
async fn a_failed_recheck_after_the_production_migration_aborts_and_reverts_the_schema() {
    let world = World::build().await;
    let mut config = world.config();
    let migration = config.migration.as_mut().unwrap();
    migration.run = Some(MigrationRun::AfterApproval);
    migration.rollback_command = Some(vec!["bin/migrate".into(), "down".into()]);
    world.put_config(&config).await;
    let id = deploy_to_approval(&world).await;
    approval::decide(&world.ctx, &id, &decision(true))
        .await
        .unwrap();
    let started = promote::start(&world.ctx, &id_ref(&id)).await.unwrap();
    let task = record(&world, &id).await.migration_task_arn.unwrap();
    world
        .stop_task(&task, Some(0), "EssentialContainerExited")
        .await;
    world.smoke.answer("health", 500, "new schema, old bug");
    let err = promote::check(&world.ctx, &check_of(&started))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "HealthCheckFailed", "{err}");
    assert!(err.to_string().contains("after approval"), "{err}");
    assert_eq!(world.production().await.live().unwrap(), Slot::Blue);
    let waiting = abort::run(&world.ctx, &failure(&id, "HealthCheckFailed"))
        .await
        .unwrap();
    assert!(waiting.wait.is_some(), "the abort waits for the rollback");
    assert_eq!(world.lock_holder().await, Some(id.clone()));
    let rollback = record(&world, &id)
        .await
        .rollback_migration
        .unwrap()
        .task_arn;
    world
        .stop_task(&rollback, Some(0), "EssentialContainerExited")
        .await;
    let ended = abort::run(&world.ctx, &failure(&id, "HealthCheckFailed"))
        .await
        .unwrap();
    assert_eq!(ended.status, Status::Aborted);
    assert!(
        ended.detail.contains("rollback migration"),
        "{}",
        ended.detail
    );
    assert_eq!(world.lock_holder().await, None);
    assert_eq!(world.production().await.live().unwrap(), Slot::Blue);
}

/// One call of the rollback ending after a failed bake, as the state machine makes it.
async fn roll_back(world: &World, id: &str) -> bluegreen::steps::Ended {
    rollback::run(&world.ctx, &failure(id, "BakeFailed"))
        .await
        .expect("rollback")
}
