//! Migrate: one task per deployment, found by startedBy; its exit code gates the pipeline.

use bluegreen::naming;
use bluegreen::poll::Poll;
use bluegreen::steps::migrate;
use bluegreen_tests::World;

use crate::common::*;

#[tokio::test]
async fn the_migration_runs_once_with_the_command_override_and_exit_zero_passes() {
    let world = World::build().await;
    let id = launched(&world).await;
    let first = migrate::start(&world.ctx, &id_ref(&id)).await.unwrap();
    let again = migrate::start(&world.ctx, &id_ref(&id)).await.unwrap();
    assert_eq!(again, first);
    let tasks = world
        .tasks_started_by(&naming::started_by(&id, "migrate"))
        .await;
    assert_eq!(tasks.len(), 1, "a retry never starts a second migration");
    let task = world.task(&tasks[0]).await;
    let preprod_td = record(&world, &id)
        .await
        .preprod
        .unwrap()
        .task_definition_arn;
    assert_eq!(
        task.task_definition_arn.as_deref(),
        Some(preprod_td.as_str())
    );
    let command = world.task_override(&tasks[0]).await.command;
    assert_eq!(
        command,
        Some(vec!["bin/migrate".to_owned(), "up".to_owned()])
    );

    world
        .stop_task(&tasks[0], Some(0), "EssentialContainerExited")
        .await;
    let done = migrate::check(&world.ctx, &check_of(&first)).await.unwrap();
    assert!(matches!(done, Poll::Done { .. }), "{done:?}");
    let again = migrate::check(&world.ctx, &check_of(&first)).await.unwrap();
    assert_eq!(again, done);
    assert_eq!(migrations(&world, &id).await, 1, "one migration task");
}

/// The harness's guard: moto would advance a task one state per DescribeTasks and "succeed" it
/// with exit code 0 after four looks, so a migration's outcome would depend on how often it is
/// polled. In the harness only a test (or its simulator) ends a task.
#[tokio::test]
async fn a_task_nobody_stops_stays_running_however_often_it_is_described() {
    let world = World::build().await;
    let id = launched(&world).await;
    let started = migrate::start(&world.ctx, &id_ref(&id)).await.unwrap();
    let task = record(&world, &id).await.migration_task_arn.unwrap();
    for look in 1..=10 {
        let described = world.task(&task).await;
        assert_eq!(
            (
                described.last_status.as_deref(),
                described.desired_status.as_deref()
            ),
            (Some("RUNNING"), Some("RUNNING")),
            "look {look}"
        );
    }
    for look in 1..=10 {
        let poll = migrate::check(&world.ctx, &check_of(&started))
            .await
            .unwrap();
        assert!(
            matches!(poll, Poll::Pending { .. }),
            "check {look}: {poll:?}"
        );
    }
    world
        .stop_task(&task, Some(0), "EssentialContainerExited")
        .await;
    let done = migrate::check(&world.ctx, &check_of(&started))
        .await
        .unwrap();
    assert!(matches!(done, Poll::Done { .. }), "{done:?}");
}

#[tokio::test]
async fn a_non_zero_exit_is_migration_failed_with_the_exit_code_and_log_stream() {
    let world = World::build().await;
    let id = launched(&world).await;
    let err = migrate_with(&world, &id, Some(3)).await.unwrap_err();
    let bluegreen::StepError::MigrationFailed {
        exit_code,
        log_location,
        ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(*exit_code, Some(3));
    let task_id = record(&world, &id)
        .await
        .migration_task_arn
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        log_location.as_deref(),
        Some(format!("log group /ecs/shop, stream shop/web/{task_id}").as_str())
    );
    assert_eq!(err.name(), "MigrationFailed");
}

#[tokio::test]
async fn a_missing_exit_code_or_a_task_that_never_ran_is_migration_failed() {
    let world = World::build().await;
    let id = launched(&world).await;
    let started = migrate::start(&world.ctx, &id_ref(&id)).await.unwrap();
    let task = record(&world, &id).await.migration_task_arn.unwrap();
    world.stop_task(&task, None, "TaskFailedToStart").await;
    let err = migrate::check(&world.ctx, &check_of(&started))
        .await
        .unwrap_err();
    let bluegreen::StepError::MigrationFailed {
        exit_code, reason, ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(*exit_code, None);
    assert!(
        reason.contains("TaskFailedToStart") && reason.contains("no exit code"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_migration_past_its_deadline_is_stopped_and_timed_out() {
    let world = World::build().await;
    let id = launched(&world).await;
    let check = check_of(&migrate::start(&world.ctx, &id_ref(&id)).await.unwrap());
    // The deadline is the task's own: `timeout_seconds` from its recorded start.
    let timeout = world.config().migration.unwrap().timeout_seconds as i64;
    world.advance(chrono::Duration::seconds(timeout + 1));
    let err = migrate::check(&world.ctx, &check).await.unwrap_err();
    assert_eq!(err.name(), "MigrationTimedOut", "{err}");
    let task = record(&world, &id).await.migration_task_arn.unwrap();
    assert_eq!(
        world.task(&task).await.desired_status.as_deref(),
        Some("STOPPED")
    );
}

#[tokio::test]
async fn without_a_migration_the_step_is_done_at_once() {
    let world = World::build().await;
    let mut config = world.config();
    config.migration = None;
    world.put_config(&config).await;
    let id = launched(&world).await;
    let started = migrate::start(&world.ctx, &id_ref(&id)).await.unwrap();
    assert!(matches!(
        migrate::check(&world.ctx, &check_of(&started))
            .await
            .unwrap(),
        Poll::Done { .. }
    ));
    assert!(
        world
            .tasks_started_by(&naming::started_by(&id, "migrate"))
            .await
            .is_empty()
    );
}

/// A world with `database.rehearsal = true`, a push synced and launched, the Migrate step
/// started: `(world, deployment id, the step's start, the rehearsal tasks)`.
async fn rehearsal_started() -> (World, String, bluegreen::poll::Started, Vec<String>) {
    let world = World::build().await;
    let mut config = world.config();
    config.database.rehearsal = true;
    config.database.source = Some(bluegreen::config::DbSource::RdsInstance {
        identifier: "shop-db".into(),
    });
    world.put_config(&config).await;
    let id = prepare_push(&world, "v2", "event-1").await;
    sync(&world, &id).await;
    launch(&world, &id).await;
    let started = migrate::start(&world.ctx, &id_ref(&id)).await.unwrap();
    let rehearsal = world
        .tasks_started_by(&naming::started_by(&id, "rehearsal"))
        .await;
    (world, id, started, rehearsal)
}

#[tokio::test]
async fn a_rehearsal_runs_on_the_clone_first_and_its_failure_stops_production_migration() {
    let (world, id, started, rehearsal) = rehearsal_started().await;
    assert_eq!(rehearsal.len(), 1);
    assert!(
        world
            .tasks_started_by(&naming::started_by(&id, "migrate"))
            .await
            .is_empty(),
        "production waits"
    );
    let env = world
        .task_override(&rehearsal[0])
        .await
        .environment
        .unwrap();
    let clone_endpoint = record(&world, &id).await.clones[0].endpoint.clone();
    assert_eq!(
        env[0].value, clone_endpoint,
        "the rehearsal talks to the clone"
    );
    world
        .stop_task(&rehearsal[0], Some(1), "EssentialContainerExited")
        .await;
    let err = migrate::check(&world.ctx, &check_of(&started))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("rehearsal"), "{err}");
    assert!(
        world
            .tasks_started_by(&naming::started_by(&id, "migrate"))
            .await
            .is_empty(),
        "production never migrated"
    );
}

/// A rehearsal that takes most of `migration.timeout_seconds` leaves the production migration
/// its whole timeout, counted from its own start (issue 21, item 4).
#[tokio::test]
async fn a_slow_rehearsal_leaves_the_production_migration_its_whole_timeout() {
    let (world, id, started, rehearsal) = rehearsal_started().await;
    let timeout = world.config().migration.unwrap().timeout_seconds as i64;
    // The rehearsal exits 0 just before the timeout; the production migration starts then.
    world.advance(chrono::Duration::seconds(timeout - 10));
    world
        .stop_task(&rehearsal[0], Some(0), "EssentialContainerExited")
        .await;
    let running = migrate::check(&world.ctx, &check_of(&started))
        .await
        .unwrap();
    assert!(matches!(running, Poll::Pending { .. }), "{running:?}");
    let production = record(&world, &id).await.migration_task_arn.unwrap();
    // Past the rehearsal's start + timeout, well within the production migration's own.
    world.advance(chrono::Duration::seconds(timeout / 2));
    let still = migrate::check(&world.ctx, &check_of(&started))
        .await
        .unwrap();
    assert!(matches!(still, Poll::Pending { .. }), "{still:?}");
    assert_eq!(
        world.task(&production).await.desired_status.as_deref(),
        Some("RUNNING"),
        "not asked to stop"
    );
    // Past its own deadline, it is stopped.
    world.advance(chrono::Duration::seconds(timeout));
    let err = migrate::check(&world.ctx, &check_of(&started))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "MigrationTimedOut", "{err}");
}

#[tokio::test]
async fn exit_zero_with_a_stop_code_other_than_an_essential_exit_is_migration_failed() {
    let world = World::build().await;
    let id = launched(&world).await;
    let started = migrate::start(&world.ctx, &id_ref(&id)).await.unwrap();
    let task = record(&world, &id).await.migration_task_arn.unwrap();
    world.stop_task(&task, Some(0), "SpotInterruption").await;
    let err = migrate::check(&world.ctx, &check_of(&started))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "MigrationFailed");
    assert!(err.to_string().contains("SpotInterruption"), "{err}");
}

/// Issue 24 item 5: a service weighted to Fargate Spot runs its migration on on-demand Fargate
/// by default (a Spot interruption would stop the migration part-way), and on its own strategy
/// with `migration.capacity = "service"`. ECS's placement is the harness's (moto ignores
/// capacity providers): the base first, else the heaviest provider.
#[tokio::test]
async fn a_spot_weighted_service_migrates_on_on_demand_capacity_unless_told_otherwise() {
    use bluegreen::config::MigrationCapacity;
    for (capacity, expected) in [
        (MigrationCapacity::OnDemand, "FARGATE"),
        (MigrationCapacity::Service, "FARGATE_SPOT"),
    ] {
        let world = World::build().await;
        let mut config = world.config();
        config.migration.as_mut().unwrap().capacity = capacity;
        world.put_config(&config).await;
        for slot in [bluegreen::Slot::Blue, bluegreen::Slot::Green] {
            world
                .capacity_strategy(slot, &[("FARGATE_SPOT", 0, 4), ("FARGATE", 0, 1)])
                .await;
        }
        let id = prepare_push(&world, "v2", "event-1").await;
        migrate::start(&world.ctx, &id_ref(&id)).await.unwrap();
        let tasks = world
            .tasks_started_by(&naming::started_by(&id, "migrate"))
            .await;
        assert_eq!(tasks.len(), 1, "{capacity:?}");
        assert_eq!(
            world.capacity_provider_of(&tasks[0]).await.as_deref(),
            Some(expected),
            "{capacity:?}"
        );
    }
}
