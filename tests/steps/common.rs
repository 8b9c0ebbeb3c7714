//! Drives a deployment through its steps the way the state machine does, so each test can
//! start from the stage it is about.

use bluegreen::Slot;
use bluegreen::poll::{CheckInput, Poll, Started};
use bluegreen::record::{Deployment, Records};
use bluegreen::steps::approval::{self, Decision, RequestInput};
use bluegreen::steps::prepare::{self, Prepared, PreparedOutcome};
use bluegreen::steps::{
    DeploymentRef, FailureInput, bake, health_check, launch_preprod, migrate, switch, sync_db,
};
use bluegreen_tests::{World, push_event};

/// A fixed push time so deployment ids are predictable within a test.
pub const PUSHED_AT: &str = "2026-11-21T10:00:00Z";

pub fn id_ref(id: &str) -> DeploymentRef {
    DeploymentRef {
        deployment_id: id.to_owned(),
    }
}

pub fn check_of(started: &Started) -> CheckInput {
    CheckInput {
        deployment_id: started.deployment_id.clone(),
        deadline: started.deadline,
        attempt: 0,
    }
}

pub fn failure(id: &str, error: &str) -> FailureInput {
    serde_json::from_value(serde_json::json!({
        "deployment_id": id,
        "error": {"Error": error, "Cause": "caught by the test"}
    }))
    .unwrap()
}

pub async fn record(world: &World, id: &str) -> Deployment {
    Records::new(&world.ctx).get(id).await.expect("record")
}

/// When the push of `event_id` happened: [`PUSHED_AT`] plus the event's number in seconds
/// (`event-3` is 3 s later than `event-0`), so a test's later events are later pushes, as the
/// lock's push order requires.
pub fn pushed_at(event_id: &str) -> String {
    let n: i64 = event_id
        .rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (chrono::DateTime::parse_from_rfc3339(PUSHED_AT).unwrap() + chrono::Duration::seconds(n))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Prepares a push of `tag` and returns the started deployment's id.
pub async fn prepare_push(world: &World, tag: &str, event_id: &str) -> String {
    let event = push_event(tag, 'a', event_id, &pushed_at(event_id));
    match prepare::run(&world.ctx, &event).await.expect("prepare") {
        Prepared::Deployments { deployments } => {
            // The world's service (others may watch the same repository).
            let shop = deployments
                .iter()
                .find(|d| d.service == "shop")
                .unwrap_or_else(|| panic!("shop not prepared: {deployments:?}"));
            assert_eq!(shop.outcome, PreparedOutcome::Started, "{deployments:?}");
            shop.deployment_id.clone()
        }
        other => panic!("push not prepared: {other:?}"),
    }
}

/// Prepares a push and launches it on green.
pub async fn launched(world: &World) -> String {
    let id = prepare_push(world, "v2", "event-1").await;
    launch(world, &id).await;
    id
}

/// Starts the launch and lets ECS fail the rollout; returns the check's error.
pub async fn failed_launch(world: &World, id: &str) -> bluegreen::StepError {
    let started = launch_preprod::start(&world.ctx, &id_ref(id))
        .await
        .expect("launch start");
    world.settle(Slot::Green, "FAILED").await;
    launch_preprod::check(&world.ctx, &check_of(&started))
        .await
        .expect_err("the launch fails")
}

/// Prepares and syncs a push whose migration start is refused, and asserts that nothing ran:
/// no migration task, pre-prod still at 0. Returns the refusal.
pub async fn refused_before_anything_runs(world: &World) -> bluegreen::StepError {
    let id = prepare_push(world, "v2", "event-1").await;
    sync(world, &id).await;
    let err = migrate::start(&world.ctx, &id_ref(&id))
        .await
        .expect_err("migrate refused");
    assert!(
        world
            .tasks_started_by(&bluegreen::naming::started_by(&id, "migrate"))
            .await
            .is_empty(),
        "no migration task"
    );
    assert_eq!(world.service(Slot::Green).await.1, 0, "nothing launched");
    err
}

/// How many migration tasks the deployment has started.
pub async fn migrations(world: &World, id: &str) -> usize {
    world
        .tasks_started_by(&bluegreen::naming::started_by(id, "migrate"))
        .await
        .len()
}

pub async fn sync(world: &World, id: &str) {
    let started = sync_db::start(&world.ctx, &id_ref(id))
        .await
        .expect("sync start");
    let done = sync_db::check(&world.ctx, &check_of(&started))
        .await
        .expect("sync check");
    assert!(matches!(done, Poll::Done { .. }), "{done:?}");
}

/// Starts the launch; ECS (the control API) completes the rollout and registers targets.
pub async fn launch(world: &World, id: &str) {
    let started = launch_preprod::start(&world.ctx, &id_ref(id))
        .await
        .expect("launch start");
    let target = record(world, id).await.target_slot().unwrap();
    world.settle(target, "COMPLETED").await;
    world.register_targets(target, 2).await;
    let done = launch_preprod::check(&world.ctx, &check_of(&started))
        .await
        .expect("launch check");
    assert!(matches!(done, Poll::Done { .. }), "{done:?}");
}

/// Starts the migration and lets it (if any runs before launch) exit with `exit_code`;
/// returns the check's answer.
pub async fn migrate_with(
    world: &World,
    id: &str,
    exit_code: Option<i32>,
) -> bluegreen::StepResult<Poll> {
    let started = migrate::start(&world.ctx, &id_ref(id))
        .await
        .expect("migrate start");
    // The production migration, or (isolated) the migration on pre-prod's clone; none when
    // the plan runs nothing before launch (`migration.run = "after_approval"`).
    let recorded = record(world, id).await;
    if let Some(task) = recorded.migration_task_arn.or(recorded.rehearsal_task_arn) {
        world
            .stop_task(&task, exit_code, "EssentialContainerExited")
            .await;
    }
    migrate::check(&world.ctx, &check_of(&started)).await
}

pub async fn health(world: &World, id: &str) -> bluegreen::StepResult<Poll> {
    let started = health_check::start(&world.ctx, &id_ref(id))
        .await
        .expect("health start");
    health_check::check(&world.ctx, &check_of(&started)).await
}

/// Starts the health check and looks once with its deadline already passed: the verdict.
pub async fn health_past_deadline(world: &World, id: &str) -> bluegreen::StepResult<Poll> {
    let started = health_check::start(&world.ctx, &id_ref(id)).await.unwrap();
    let mut late = check_of(&started);
    late.deadline = world.now() - chrono::Duration::seconds(1);
    health_check::check(&world.ctx, &late).await
}

pub async fn request_approval(world: &World, id: &str) {
    let input = RequestInput {
        deployment_id: id.to_owned(),
        task_token: format!("token-{id}"),
    };
    approval::request(&world.ctx, &input)
        .await
        .expect("request approval");
}

pub fn decision(approve: bool) -> Decision {
    Decision {
        approve,
        approver: "alice@example.com".into(),
        reason: (!approve).then(|| "not today".to_owned()),
        channel: "cli".into(),
        link_nonce: None,
    }
}

pub async fn approve(world: &World, id: &str) {
    request_approval(world, id).await;
    approval::decide(&world.ctx, id, &decision(true))
        .await
        .expect("approve");
}

pub async fn switch_all(world: &World, id: &str) {
    let started = switch::start(&world.ctx, &id_ref(id))
        .await
        .expect("switch start");
    let done = switch::check(&world.ctx, &check_of(&started))
        .await
        .expect("switch check");
    assert!(matches!(done, Poll::Done { .. }), "{done:?}");
}

pub async fn bake_start(world: &World, id: &str) -> Started {
    bake::start(&world.ctx, &id_ref(id))
        .await
        .expect("bake start")
}

/// Runs a deployment from push to healthy pre-prod (synced, launched, migrated, healthy).
pub async fn deploy_to_health(world: &World) -> String {
    let id = prepare_push(world, "v2", "event-1").await;
    sync(world, &id).await;
    launch(world, &id).await;
    let migrated = migrate_with(world, &id, Some(0)).await.expect("migrate");
    assert!(matches!(migrated, Poll::Done { .. }), "{migrated:?}");
    let healthy = health(world, &id).await.expect("health");
    assert!(matches!(healthy, Poll::Done { .. }), "{healthy:?}");
    id
}

/// Runs a deployment from push to awaiting approval.
pub async fn deploy_to_approval(world: &World) -> String {
    let id = deploy_to_health(world).await;
    request_approval(world, &id).await;
    id
}

/// Runs a deployment from push to the end of the switch (green live).
pub async fn deploy_to_switch(world: &World) -> String {
    let id = deploy_to_approval(world).await;
    approval::decide(&world.ctx, &id, &decision(true))
        .await
        .expect("approve");
    switch_all(world, &id).await;
    assert_eq!(world.production().await.live().unwrap(), Slot::Green);
    id
}

/// Production still routes everything to blue, the test listener to green, green is back at
/// zero tasks of its old revision, and no clone remains: the state before the deployment.
pub async fn assert_untouched(world: &World, blue_td: &str) {
    let production = world.production().await;
    assert_eq!(
        (production.blue, production.green),
        (1, 0),
        "production routing changed"
    );
    let (green_td, green_count, green_tags) = world.service(Slot::Green).await;
    assert_eq!(green_count, 0, "pre-prod still has tasks");
    assert_eq!(green_td, blue_td, "pre-prod still runs the new revision");
    assert!(
        !green_tags.iter().any(|(k, _)| k == "bluegreen:role"),
        "pre-prod still tagged as pre-prod: {green_tags:?}"
    );
    let (live_td, live_count, _) = world.service(Slot::Blue).await;
    assert_eq!(
        (live_td.as_str(), live_count),
        (blue_td, 2),
        "the live slot changed"
    );
    assert_eq!(
        world.db_instances().await,
        vec!["shop-db".to_owned()],
        "a clone remains"
    );
}

/// An isolated deployment launched on its clone, whose live slot someone pointed at
/// pre-prod's revision by hand, then aborted: the ending must keep the clone.
pub async fn aborted_with_the_clone_in_use(world: &World) -> (String, bluegreen::steps::Ended) {
    world.use_isolated_db().await;
    let id = prepare_push(world, "v2", "event-1").await;
    sync(world, &id).await;
    launch(world, &id).await;
    let clone_td = record(world, &id).await.task_definitions.preprod.unwrap();
    world.set_task_definition(Slot::Blue, &clone_td).await;
    let ended = bluegreen::steps::abort::run(&world.ctx, &failure(&id, "HealthCheckFailed"))
        .await
        .unwrap();
    (id, ended)
}

/// The "Parameter Store Change" event SSM sends when the config of `service` is written or
/// deleted (events/ssm-config-change.json, for that parameter).
pub fn parameter_changed(service: &str) -> serde_json::Value {
    let sample = include_str!("../../events/ssm-config-change.json");
    let mut event: serde_json::Value = serde_json::from_str(sample).expect("sample event");
    event["detail"]["name"] = format!("/bluegreen/services/{service}").into();
    event
}

/// `config` with the production migration after approval behind the maintenance page, stored;
/// a push deployed to approval and approved. Returns its deployment id.
pub async fn approved_with_maintenance(
    world: &World,
    mut config: bluegreen::config::ServiceConfig,
) -> String {
    let migration = config.migration.as_mut().expect("a migration");
    migration.run = Some(bluegreen::config::MigrationRun::AfterApproval);
    migration.maintenance = true;
    world.put_config(&config).await;
    let id = deploy_to_approval(world).await;
    approval::decide(&world.ctx, &id, &decision(true))
        .await
        .expect("approve");
    id
}

/// What IaC does when the code's task definition changes: a new revision of the family (here a
/// new setting, `FEATURE_X=on`) made from what `slot` runs, while production keeps running
/// the revision it runs.
pub async fn iac_registers_a_revision_from(world: &World, slot: Slot) -> String {
    let live = world.service(slot).await.0;
    let overlay = bluegreen::ports::compute::RevisionOverlay {
        images: Vec::new(),
        environment: vec![("web".into(), "FEATURE_X".into(), "on".into())],
        ..Default::default()
    };
    world
        .ctx
        .ports
        .compute
        .register_revision(&live, &overlay, &[])
        .await
        .expect("register")
}
