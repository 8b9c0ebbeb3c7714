//! The reconciler: deployments whose execution failed, timed out, was stopped or never
//! started end in a known state, the lock consistent. Each test stops a real (moto)
//! execution at a stage and asserts what production sees afterwards.

use bluegreen::Slot;
use bluegreen::lock::Locks;
use bluegreen::record::Status;
use bluegreen::steps::prepare::{self, Prepared, PreparedOutcome};
use bluegreen::steps::reconcile::{self, Action, Request};
use bluegreen::steps::{abort, finish};
use bluegreen_tests::{World, push_event};

use crate::common::*;
use crate::prepare::dynamodb_throttling_enqueue;

/// Stages before the switch at which an execution can stop.
#[derive(Debug, Clone, Copy)]
enum Stage {
    Prepared,
    Synced,
    Launched,
    AwaitingApproval,
}

async fn deploy_until(world: &World, stage: Stage) -> String {
    let id = prepare_push(world, "v2", "event-1").await;
    if matches!(stage, Stage::Prepared) {
        return id;
    }
    sync(world, &id).await;
    if matches!(stage, Stage::Synced) {
        return id;
    }
    launch(world, &id).await;
    if matches!(stage, Stage::Launched) {
        return id;
    }
    let migrated = migrate_with(world, &id, Some(0)).await.expect("migrate");
    assert!(format!("{migrated:?}").contains("Done"), "{migrated:?}");
    health(world, &id).await.expect("health");
    request_approval(world, &id).await;
    id
}

async fn reconcile_shop(world: &World) -> reconcile::Reconciled {
    reconcile::service(&world.ctx, "shop")
        .await
        .expect("reconcile")
}

#[tokio::test]
async fn an_execution_stopped_at_any_stage_before_the_switch_is_aborted_leaving_production_as_it_was()
 {
    for stage in [
        Stage::Prepared,
        Stage::Synced,
        Stage::Launched,
        Stage::AwaitingApproval,
    ] {
        let world = World::build().await.with_topic();
        world.use_isolated_db().await;
        world.create_deployment_machine().await;
        let (blue_td, _, _) = world.service(Slot::Blue).await;
        let id = deploy_until(&world, stage).await;
        world.start_execution(&id).await;

        // While the execution runs, the reconciler leaves it alone.
        let running = reconcile_shop(&world).await;
        assert_eq!(running.action, Action::Nothing, "{stage:?}: {running:?}");
        assert!(!record(&world, &id).await.status.is_terminal(), "{stage:?}");

        world.stop_execution(&id).await;
        let done = reconcile_shop(&world).await;
        assert_eq!(done.action, Action::Aborted, "{stage:?}: {done:?}");
        assert_untouched(&world, &blue_td).await;
        let ended = record(&world, &id).await;
        assert_eq!(ended.status, Status::Aborted, "{stage:?}");
        assert!(
            ended
                .failure
                .as_deref()
                .unwrap_or_default()
                .contains("ABORTED"),
            "{stage:?}: the cause names how the execution ended: {:?}",
            ended.failure
        );
        assert_eq!(world.lock("shop").await, None, "{stage:?}: lock released");
        assert!(
            world
                .published_subjects()
                .await
                .iter()
                .any(|s| s.contains("aborted")),
            "{stage:?}: people were told"
        );

        // Running again (the sweep after the status-change event) changes nothing.
        let again = reconcile_shop(&world).await;
        assert_eq!(again.action, Action::Nothing, "{stage:?}");
    }
}

#[tokio::test]
async fn an_execution_stopped_after_the_switch_needs_attention_and_keeps_traffic_and_lock() {
    let world = World::build().await.with_topic();
    world.create_deployment_machine().await;
    let id = deploy_to_switch(&world).await;
    world.start_execution(&id).await;
    world.stop_execution(&id).await;

    let done = reconcile_shop(&world).await;
    assert_eq!(done.action, Action::NeedsAttention, "{done:?}");
    // The reconciler does not guess between finishing and rolling back: traffic stays where
    // the switch put it, both slots keep running, the lock stays held and marked.
    assert_eq!(world.production().await.live().unwrap(), Slot::Green);
    assert_eq!(world.service(Slot::Blue).await.1, 2, "old slot still up");
    assert_eq!(world.service(Slot::Green).await.1, 2, "new slot still up");
    let lock = world.lock("shop").await.expect("still locked");
    assert_eq!(lock.holder, id);
    assert!(lock.needs_attention.is_some(), "{lock:?}");
    assert_eq!(record(&world, &id).await.status, Status::NeedsAttention);
    let messages = world.published().await;
    let notice = messages
        .iter()
        .find(|m| m["subject"].as_str().unwrap_or_default().contains("needs"))
        .expect("a needs-attention notification");
    let body = notice["message"].as_str().unwrap_or_default();
    assert!(body.contains("bluegreen unlock shop"), "{body}");
    assert!(body.contains("Production traffic is on: green"), "{body}");

    // A second pass notifies nobody again and changes nothing.
    let again = reconcile_shop(&world).await;
    assert_eq!(again.action, Action::NeedsAttention);
    assert_eq!(world.published().await.len(), messages.len());
}

#[tokio::test]
async fn a_queued_deployment_handed_the_lock_without_an_execution_is_started_by_the_sweep() {
    let world = World::build().await;
    world.create_deployment_machine().await;
    let first = prepare_push(&world, "v2", "event-1").await;
    let second = queue_push(&world, "v3", "event-2", "2026-11-21T10:05:00Z").await;
    // The first aborts and hands over; the hand-over's StartExecution is lost.
    let ended = abort::run(&world.ctx, &failure(&first, "HealthCheckFailed"))
        .await
        .unwrap();
    assert_eq!(ended.next_deployment.as_deref(), Some(second.as_str()));
    assert_eq!(world.execution_status(&second).await, None);

    let swept = reconcile::run(&world.ctx, &Request::Sweep).await.unwrap();
    assert_eq!(swept.len(), 1, "{swept:?}");
    assert_eq!(swept[0].action, Action::Started, "{swept:?}");
    assert_eq!(
        world.execution_status(&second).await.as_deref(),
        Some("RUNNING")
    );
    assert_eq!(world.lock_holder().await.as_deref(), Some(second.as_str()));
    // The started execution now owns it; another sweep leaves it alone.
    let again = reconcile::run(&world.ctx, &Request::Sweep).await.unwrap();
    assert_eq!(again[0].action, Action::Nothing, "{again:?}");
}

#[tokio::test]
async fn an_ending_that_failed_inside_the_execution_records_needs_attention_with_both_causes() {
    let world = World::build().await.with_topic();
    let id = prepare_push(&world, "v2", "event-1").await;
    let request = Request::parse(&serde_json::json!({
        "ending_failed": {
            "deployment_id": id,
            "error": {"Error": "AwsError", "Cause": "AccessDenied on rds:DeleteDBInstance"}
        }
    }))
    .unwrap();
    let answers = reconcile::run(&world.ctx, &request).await.unwrap();
    assert_eq!(answers[0].action, Action::NeedsAttention);
    let recorded = record(&world, &id).await;
    assert_eq!(recorded.status, Status::NeedsAttention);
    assert!(
        recorded
            .timeline
            .last()
            .unwrap()
            .detail
            .contains("AccessDenied"),
        "{:?}",
        recorded.timeline.last()
    );
    let lock = world.lock("shop").await.expect("kept");
    assert!(lock.needs_attention.unwrap().contains("AccessDenied"));
    // Idempotent under the state machine's retry.
    let again = reconcile::run(&world.ctx, &request).await.unwrap();
    assert_eq!(again[0].action, Action::NeedsAttention);
    assert_eq!(world.published().await.len(), 1, "notified once");
}

/// The reconciler's answer to an ending that failed inside the execution.
fn ending_failed(id: &str) -> Request {
    Request::parse(&serde_json::json!({
        "ending_failed": {
            "deployment_id": id,
            "error": {"Error": "AwsError", "Cause": "AccessDenied on rds:DeleteDBInstance"}
        }
    }))
    .unwrap()
}

/// A world whose service runs its migration behind the maintenance page.
async fn with_maintenance() -> World {
    let world = World::build().await.with_topic();
    let mut config = world.config();
    config.migration.as_mut().unwrap().maintenance = true;
    world.put_config(&config).await;
    world
}

/// A deployment that needs a person takes its maintenance page down: production must not
/// answer 503 for the hours a person may take (issue 21, item 9).
#[tokio::test]
async fn needs_attention_takes_the_maintenance_page_down() {
    let world = with_maintenance().await;
    let id = prepare_push(&world, "v2", "event-1").await;
    bluegreen::maintenance::switch_on(&world.ctx, &record(&world, &id).await)
        .await
        .unwrap();
    assert_eq!(world.listener_rules().await.len(), 1, "the page is up");
    let answers = reconcile::run(&world.ctx, &ending_failed(&id))
        .await
        .unwrap();
    assert_eq!(answers[0].action, Action::NeedsAttention);
    assert!(world.listener_rules().await.is_empty(), "the page is down");
    let detail = record(&world, &id)
        .await
        .timeline
        .last()
        .unwrap()
        .detail
        .clone();
    assert!(detail.contains("maintenance page removed"), "{detail}");
}

/// ... unless its migration still runs: then the page protects production's schema.
#[tokio::test]
async fn needs_attention_keeps_the_maintenance_page_while_the_migration_runs() {
    let world = with_maintenance().await;
    let id = prepare_push(&world, "v2", "event-1").await;
    sync(&world, &id).await;
    bluegreen::steps::migrate::start(&world.ctx, &id_ref(&id))
        .await
        .unwrap();
    assert_eq!(world.listener_rules().await.len(), 1, "the page is up");
    let answers = reconcile::run(&world.ctx, &ending_failed(&id))
        .await
        .unwrap();
    assert_eq!(answers[0].action, Action::NeedsAttention);
    assert_eq!(world.listener_rules().await.len(), 1, "kept while it runs");
    let detail = record(&world, &id)
        .await
        .timeline
        .last()
        .unwrap()
        .detail
        .clone();
    assert!(detail.contains("stays up while"), "{detail}");
}

#[tokio::test]
async fn a_lock_held_past_its_lease_without_a_record_is_freed_and_the_queue_goes_on() {
    let world = World::build().await;
    world.create_deployment_machine().await;
    let locks = Locks::new(&world.ctx);
    // A manual rollback whose CLI was interrupted: a hold with a lease, no deployment record.
    let lease = world.now() + chrono::Duration::minutes(15);
    locks
        .hold("shop", "shop-x-manual-rollback", lease)
        .await
        .unwrap();
    let queued = queue_push(&world, "v3", "event-2", "2026-11-21T10:05:00Z").await;

    let early = reconcile_shop(&world).await;
    assert_eq!(early.action, Action::Nothing, "the lease holds: {early:?}");
    world.advance(chrono::Duration::minutes(16));
    let late = reconcile_shop(&world).await;
    assert_eq!(late.action, Action::Released, "{late:?}");
    assert_eq!(late.started.as_deref(), Some(queued.as_str()));
    assert_eq!(world.lock_holder().await.as_deref(), Some(queued.as_str()));
    assert_eq!(
        world.execution_status(&queued).await.as_deref(),
        Some("RUNNING")
    );
}

#[tokio::test]
async fn the_reconciler_reads_status_change_and_scheduled_events_and_refuses_others() {
    let changed = serde_json::json!({
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "detail": {"name": "shop-20261121T100000-abcdef", "status": "TIMED_OUT"}
    });
    assert_eq!(
        Request::parse(&changed).unwrap(),
        Request::Deployment("shop-20261121T100000-abcdef".into())
    );
    let scheduled =
        serde_json::json!({"detail-type": "Scheduled Event", "source": "aws.scheduler"});
    assert_eq!(Request::parse(&scheduled).unwrap(), Request::Sweep);
    let other = serde_json::json!({"detail-type": "ECR Image Action"});
    assert_eq!(Request::parse(&other).unwrap_err().name(), "EventMalformed");
    assert_eq!(
        Request::parse(&serde_json::json!({"start": 3}))
            .unwrap_err()
            .name(),
        "EventMalformed"
    );
}

#[tokio::test]
async fn a_finish_whose_answer_was_lost_hands_over_once_when_retried() {
    let world = World::build().await;
    let id = deploy_to_switch(&world).await;
    let queued = queue_push(&world, "v3", "event-2", "2026-11-21T10:05:00Z").await;
    let first = finish::run(&world.ctx, &id_ref(&id)).await.unwrap();
    assert_eq!(first.next_deployment.as_deref(), Some(queued.as_str()));
    // Step Functions retries (the Lambda's answer was lost): the same next deployment, and the
    // lock is not handed over a second time.
    let retried = finish::run(&world.ctx, &id_ref(&id)).await.unwrap();
    assert_eq!(retried.next_deployment.as_deref(), Some(queued.as_str()));
    assert_eq!(retried.status, Status::Succeeded);
    assert_eq!(
        record(&world, &id).await.handed_over_to.as_deref(),
        Some(queued.as_str())
    );
    assert_eq!(world.lock_holder().await.as_deref(), Some(queued.as_str()));
}

/// Pushes `tag` at `time` while another deployment holds the lock; returns the queued id.
pub async fn queue_push(world: &World, tag: &str, event_id: &str, time: &str) -> String {
    let event = push_event(tag, 'b', event_id, time);
    match prepare::run(&world.ctx, &event).await.expect("prepare") {
        Prepared::Deployments { deployments } => {
            assert_eq!(
                deployments[0].outcome,
                PreparedOutcome::Queued,
                "{deployments:?}"
            );
            deployments[0].deployment_id.clone()
        }
        other => panic!("not queued: {other:?}"),
    }
}

#[tokio::test]
async fn a_hand_over_whose_record_write_is_refused_hands_nothing_over() {
    let world = World::build().await;
    let id = prepare_push(&world, "v2", "event-1").await;
    let queued = queue_push(&world, "v3", "event-2", "2026-11-21T10:05:00Z").await;
    let records = bluegreen::record::Records::new(&world.ctx);
    // The ending's record write fails its condition (the record is gone): the lock must not
    // move without it.
    let err = Locks::new(&world.ctx)
        .release_with("shop", &id, |_| {
            Ok(Some(records.update_in_transaction(
                "shop-no-such-deployment",
                bluegreen::record::Change::new(),
            )))
        })
        .await
        .unwrap_err();
    assert_eq!(err.name(), "Internal", "{err}");
    let lock = world.lock("shop").await.expect("still held");
    assert_eq!((lock.holder, lock.queued), (id, Some(queued)));
}

const OPERATOR: &str = "arn:aws:iam::123456789012:user/oncall";

#[tokio::test]
async fn an_operator_abort_stops_the_execution_and_leaves_production_as_it_was() {
    let world = World::build().await;
    world.create_deployment_machine().await;
    let (blue_td, _, _) = world.service(Slot::Blue).await;
    let id = deploy_until(&world, Stage::AwaitingApproval).await;
    world.start_execution(&id).await;

    let done = bluegreen::operator::abort(&world.ctx, &id, OPERATOR)
        .await
        .unwrap();
    assert_eq!(done.status, Status::Aborted, "{done:?}");
    assert_eq!(
        world.execution_status(&id).await.as_deref(),
        Some("ABORTED")
    );
    assert_untouched(&world, &blue_td).await;
    assert_eq!(world.lock("shop").await, None);
    let recorded = record(&world, &id).await;
    assert!(
        recorded.failure.unwrap().contains(OPERATOR),
        "the operator is on the record"
    );
    // Twice: refused, nothing changes.
    let again = bluegreen::operator::abort(&world.ctx, &id, OPERATOR)
        .await
        .unwrap_err();
    assert_eq!(again.name(), "AbortRefused");
}

#[tokio::test]
async fn an_operator_abort_after_the_switch_is_refused_and_moves_nothing() {
    let world = World::build().await;
    let id = deploy_to_switch(&world).await;
    let err = bluegreen::operator::abort(&world.ctx, &id, OPERATOR)
        .await
        .unwrap_err();
    assert_eq!(err.name(), "AbortRefused", "{err}");
    assert_eq!(world.production().await.live().unwrap(), Slot::Green);
    assert_eq!(world.lock_holder().await.as_deref(), Some(id.as_str()));
}

#[tokio::test]
async fn a_retry_after_the_cause_is_fixed_ends_the_deployment_and_frees_the_service() {
    let world = World::build().await;
    let (blue_td, _, _) = world.service(Slot::Blue).await;
    let (id, ended) = aborted_with_the_clone_in_use(&world).await;
    assert_eq!(ended.status, Status::NeedsAttention);

    // Nothing fixed yet: the retry runs the abort again and it needs attention again.
    let unchanged = retry(&world, &id).await.unwrap();
    assert_eq!(
        (unchanged.ending, unchanged.status),
        ("abort".to_owned(), Status::NeedsAttention)
    );
    assert_eq!(world.lock_holder().await.as_deref(), Some(id.as_str()));

    // The person points the live slot back at its own revision (production's database).
    world.set_task_definition(Slot::Blue, &blue_td).await;
    let fixed = retry(&world, &id).await.unwrap();
    assert_eq!(
        (fixed.ending, fixed.status),
        ("abort".to_owned(), Status::Aborted)
    );
    assert_untouched(&world, &blue_td).await;
    assert_eq!(world.lock("shop").await, None, "service free again");
    let recorded = record(&world, &id).await;
    assert!(
        recorded
            .timeline
            .iter()
            .any(|e| e.step == "retry" && e.detail.contains(OPERATOR)),
        "the retry is audited"
    );
}

#[tokio::test]
async fn a_retry_is_refused_unless_the_deployment_needs_attention_and_holds_the_lock() {
    let world = World::build().await;
    let running = prepare_push(&world, "v2", "event-1").await;
    let err = retry(&world, &running).await.unwrap_err();
    assert_eq!(err.name(), "RetryRefused", "{err}");

    let world = World::build().await;
    let (id, _) = aborted_with_the_clone_in_use(&world).await;
    bluegreen::operator::unlock(&world.ctx, "shop", OPERATOR)
        .await
        .unwrap();
    let err = retry(&world, &id).await.unwrap_err();
    assert_eq!(err.name(), "RetryRefused", "{err}");
    assert!(err.to_string().contains("no longer holds"), "{err}");
}

#[tokio::test]
async fn a_prepared_deployment_whose_intake_never_started_it_is_started_not_aborted() {
    let world = World::build().await;
    world.create_deployment_machine().await;
    // The intake prepared it (lock, record) but its StartExecution failed for good.
    let id = prepare_push(&world, "v2", "event-1").await;
    let swept = reconcile::run(&world.ctx, &Request::Start(id.clone()))
        .await
        .unwrap();
    assert_eq!(swept[0].action, Action::Started, "{swept:?}");
    assert_eq!(
        world.execution_status(&id).await.as_deref(),
        Some("RUNNING")
    );
    assert_eq!(record(&world, &id).await.status, Status::Preparing);
    assert_eq!(world.lock_holder().await.as_deref(), Some(id.as_str()));
}

/// `bluegreen retry` as the operator, with the CLI's wait limit.
async fn retry(world: &World, id: &str) -> bluegreen::StepResult<bluegreen::operator::Retried> {
    bluegreen::operator::retry(
        &world.ctx,
        id,
        OPERATOR,
        bluegreen::operator::RETRY_WAIT_LIMIT,
    )
    .await
}

/// A push whose intake gave up after writing its queued record and before the lock's queue
/// named it (enqueue throttled past every retry): returns its id. The lock knows nothing of it.
async fn unqueued_push(world: &World, tag: &str, event_id: &str) -> String {
    let event = push_event(tag, 'b', event_id, &pushed_at(event_id));
    let throttled = bluegreen_tests::with_client(&world.ctx, |c| {
        c.dynamodb = dynamodb_throttling_enqueue(world)
    });
    let err = prepare::run(&throttled, &event).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let queued = bluegreen::record::Records::new(&world.ctx)
        .with_status(Status::Queued)
        .await
        .unwrap();
    let [only] = queued.as_slice() else {
        panic!("one queued record: {queued:?}")
    };
    let lock = world.lock("shop").await;
    assert!(
        lock.is_none_or(|l| l.queued.as_deref() != Some(only.deployment_id.as_str())),
        "the lock does not name it"
    );
    only.deployment_id.clone()
}

/// The sweep's answer about `id`.
async fn swept_answer(world: &World, id: &str) -> Option<reconcile::Reconciled> {
    reconcile::run(&world.ctx, &Request::Sweep)
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.holder.as_deref() == Some(id))
}

#[tokio::test]
async fn a_queued_push_the_lock_lost_is_queued_again_by_the_sweep_after_the_grace_and_deploys_next()
{
    let world = World::build().await;
    world.create_deployment_machine().await;
    let running = prepare_push(&world, "v2", "event-1").await;
    let lost = unqueued_push(&world, "v3", "event-2").await;

    // Within the grace the intake may still be retrying: the sweep leaves it alone.
    assert_eq!(swept_answer(&world, &lost).await, None);
    assert_eq!(world.lock("shop").await.unwrap().queued, None);

    world.advance(chrono::Duration::minutes(16));
    // The sweep's own enqueue is throttled: reported failed with the cause, nothing changed.
    let throttled = bluegreen_tests::with_client(&world.ctx, |c| {
        c.dynamodb = dynamodb_throttling_enqueue(&world)
    });
    let failed = reconcile::run(&throttled, &Request::Sweep)
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.holder.as_deref() == Some(lost.as_str()))
        .expect("answered");
    assert_eq!(failed.action, Action::Failed, "{failed:?}");
    assert!(failed.detail.starts_with("Throttled"), "{failed:?}");
    assert_eq!(world.lock("shop").await.unwrap().queued, None);
    assert_eq!(record(&world, &lost).await.status, Status::Queued);

    // The next sweep does it.
    let answer = swept_answer(&world, &lost).await.expect("answered");
    assert_eq!(answer.action, Action::Requeued, "{answer:?}");
    let lock = world.lock("shop").await.unwrap();
    assert_eq!(
        (lock.holder.as_str(), lock.queued.as_deref()),
        (running.as_str(), Some(lost.as_str()))
    );
    assert_eq!(record(&world, &lost).await.status, Status::Queued);
    // A second sweep finds the lock naming it and does nothing more.
    assert_eq!(swept_answer(&world, &lost).await, None);

    // The running deployment ends: the lock goes to the push that had been lost.
    abort::run(&world.ctx, &failure(&running, "HealthCheckFailed"))
        .await
        .unwrap();
    assert_eq!(world.lock_holder().await.as_deref(), Some(lost.as_str()));
}

#[tokio::test]
async fn a_queued_push_the_lock_lost_takes_the_free_service_and_its_execution_is_started() {
    let world = World::build().await;
    world.create_deployment_machine().await;
    let running = prepare_push(&world, "v2", "event-1").await;
    let lost = unqueued_push(&world, "v3", "event-2").await;
    // The running deployment ends with nothing queued: the service is free.
    abort::run(&world.ctx, &failure(&running, "HealthCheckFailed"))
        .await
        .unwrap();
    assert_eq!(world.lock_holder().await, None);

    world.advance(chrono::Duration::minutes(16));
    let answer = swept_answer(&world, &lost).await.expect("answered");
    assert_eq!(answer.action, Action::Started, "{answer:?}");
    assert_eq!(answer.started.as_deref(), Some(lost.as_str()));
    assert_eq!(world.lock_holder().await.as_deref(), Some(lost.as_str()));
    assert_eq!(
        world.execution_status(&lost).await.as_deref(),
        Some("RUNNING")
    );
}

#[tokio::test]
async fn a_queued_push_the_lock_lost_is_superseded_when_a_newer_push_is_queued() {
    let world = World::build().await.with_topic();
    world.create_deployment_machine().await;
    let running = prepare_push(&world, "v2", "event-1").await;
    let lost = unqueued_push(&world, "v3", "event-2").await;
    let newer = queue_push(&world, "v4", "event-3", &pushed_at("event-3")).await;

    world.advance(chrono::Duration::minutes(16));
    let answer = swept_answer(&world, &lost).await.expect("answered");
    assert_eq!(answer.action, Action::Superseded, "{answer:?}");
    let recorded = record(&world, &lost).await;
    assert_eq!(recorded.status, Status::Superseded);
    assert!(
        recorded
            .failure
            .as_deref()
            .unwrap_or_default()
            .contains(&newer),
        "{:?}",
        recorded.failure
    );
    let lock = world.lock("shop").await.unwrap();
    assert_eq!(
        (lock.holder.as_str(), lock.queued.as_deref()),
        (running.as_str(), Some(newer.as_str())),
        "the newer push keeps its place"
    );
    let superseded_notices = world
        .published()
        .await
        .iter()
        .filter(|m| {
            let m = m.to_string();
            m.contains(&lost) && m.contains("newer push")
        })
        .count();
    assert_eq!(superseded_notices, 1, "people are told once");
}
