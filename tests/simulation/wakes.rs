//! Waits ECS's events end (`bluegreen::wakes`), on virtual time over the in-memory AWS: the
//! migrate step's check names its task's key, its `await` action stores the waiting task's
//! token, and the wake function — given ECS's events as EventBridge delivers them — completes
//! it. The last test runs whole deployments on the committed definition with the events
//! delivered, lost, and doubled out of order.

use std::sync::Arc;

use bluegreen::record::Records;
use bluegreen::steps::registry::{self, MIGRATE, WAKE};
use bluegreen::wakes;
use bluegreen_tests::memory::{Immediate, MemoryAws, TokenAnswer};
use bluegreen_tests::sim::lead_time::{self, BenchWorld, Events, Mode};
use serde_json::{Value, json};

/// A deployment whose migration task runs: the world, its context, the deployment, the task.
async fn migrating() -> (MemoryAws, bluegreen::Context, String, String) {
    super::migration_running(Arc::new(Immediate)).await
}

/// One check of the migrate step, as the state machine invokes it.
async fn check(ctx: &bluegreen::Context, id: &str) -> Value {
    super::migrate_check(ctx, id).await
}

/// A task Step Functions waits on (`.waitForTaskToken`), with the step's `await` action
/// invoked for it as the definition does: the token, and what the action answered (or the
/// name of the error it failed with).
async fn wait(
    aws: &MemoryAws,
    ctx: &bluegreen::Context,
    id: &str,
    key: &str,
) -> (String, Result<Value, &'static str>) {
    static TOKENS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = TOKENS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let token = format!("token-{n}");
    aws.with(|s| s.workflow.tokens.insert(token.clone(), None));
    let input =
        json!({"action": "await", "deployment_id": id, "wake_on": key, "task_token": token});
    let waited = registry::invoke(ctx, &MIGRATE, input)
        .await
        .map_err(|e| e.name());
    (token, waited)
}

/// What Step Functions was sent for `token` (`None`: it still waits).
fn answer(aws: &MemoryAws, token: &str) -> Option<TokenAnswer> {
    aws.with(|s| s.workflow.tokens.get(token).cloned().flatten())
}

/// ECS's "ECS Task State Change" for `task` as it is now (events/ecs-task-stopped.json's
/// shape).
fn task_event(aws: &MemoryAws, task: &str) -> Value {
    let mut event: Value =
        serde_json::from_str(include_str!("../../events/ecs-task-stopped.json")).unwrap();
    aws.with(|s| {
        let t = &s.ecs.tasks[task].state;
        event["resources"] = json!([task]);
        event["detail"]["taskArn"] = json!(task);
        event["detail"]["lastStatus"] = json!(t.last_status);
        event["detail"]["startedBy"] = json!(t.started_by);
    });
    event
}

/// The wake function on `event`, as EventBridge invokes it.
async fn deliver(ctx: &bluegreen::Context, event: &Value) -> Value {
    registry::invoke(ctx, &WAKE, event.clone()).await.unwrap()
}

/// What production and the deployment look like, without the wait items and tokens: an event
/// must change none of it.
async fn snapshot(aws: &MemoryAws, ctx: &bluegreen::Context, id: &str) -> String {
    let record = Records::new(ctx).get(id).await.unwrap();
    let world = aws.with(|s| format!("{:?}\n{:?}\n{:?}", s.ecs.tasks, s.ecs.services, s.elb));
    format!("{world}\n{record:?}")
}

#[test]
fn a_migrations_stop_event_wakes_its_wait_and_the_check_then_sees_it_done() {
    super::block_on(async {
        let (aws, ctx, id, task) = migrating().await;
        let pending = check(&ctx, &id).await;
        assert_eq!(pending["status"], "pending", "{pending}");
        let key = pending["wake_on"]
            .as_str()
            .expect("the check names its event")
            .to_owned();
        let started_by = aws.with(|s| s.ecs.tasks[&task].state.started_by.clone());
        assert_eq!(key, wakes::task_key(&started_by));
        assert_eq!(
            pending["wait_seconds"],
            wakes::SLOW_PATH_SECONDS,
            "{pending}"
        );

        let (token, waited) = wait(&aws, &ctx, &id, &key).await;
        assert_eq!(waited, Ok(json!({"waiting_on": key})));
        // A change that ends nothing (the task running) wakes nothing.
        let ignored = deliver(&ctx, &task_event(&aws, &task)).await;
        assert_eq!(ignored["outcome"], "ignored", "{ignored}");
        assert_eq!(answer(&aws, &token), None);

        super::stopped(&aws, &task, "EssentialContainerExited", Some(0));
        let woke = deliver(&ctx, &task_event(&aws, &task)).await;
        assert_eq!(woke["outcome"], "woke", "{woke}");
        assert_eq!(woke["deployment_id"], json!(id));
        assert!(
            matches!(answer(&aws, &token), Some(Ok(_))),
            "the wait was completed"
        );
        let done = check(&ctx, &id).await;
        assert_eq!(done["status"], "done", "{done}");
    });
}

/// The event came between the check's look and the wait storing its token: the await action
/// finds the news and fails with `Woken` (the definition's catch runs the check at once), so
/// the wake is not lost to the slow path.
#[test]
fn an_event_that_came_before_the_wait_began_wakes_it_at_once() {
    super::block_on(async {
        let (aws, ctx, id, task) = migrating().await;
        let pending = check(&ctx, &id).await;
        let key = pending["wake_on"].as_str().unwrap().to_owned();
        super::stopped(&aws, &task, "EssentialContainerExited", Some(0));
        let noted = deliver(&ctx, &task_event(&aws, &task)).await;
        assert_eq!(noted["outcome"], "noted", "{noted}");

        let (token, waited) = wait(&aws, &ctx, &id, &key).await;
        assert_eq!(waited, Err("Woken"));
        assert_eq!(
            answer(&aws, &token),
            None,
            "the await completes no task itself"
        );
        let done = check(&ctx, &id).await;
        assert_eq!(done["status"], "done", "{done}");
        // The news was taken, and the token with it: the next wait on the key waits, and a
        // later event wakes it (not the failed await's token).
        let (later, waited) = wait(&aws, &ctx, &id, &key).await;
        assert!(waited.is_ok(), "{waited:?}");
        assert_eq!(answer(&aws, &later), None);
        assert_eq!(
            deliver(&ctx, &task_event(&aws, &task)).await["outcome"],
            "woke"
        );
        assert!(matches!(answer(&aws, &later), Some(Ok(_))));
        assert_eq!(answer(&aws, &token), None);
    });
}

/// A wait that timed out (the slow path ran the check) leaves its token behind. An event then
/// finds only that stale token: Step Functions refuses it, and the news is kept for the wait
/// the check is about to begin.
#[test]
fn an_event_that_finds_a_timed_out_wait_wakes_the_next_one() {
    super::block_on(async {
        let (aws, ctx, id, task) = migrating().await;
        let key = check(&ctx, &id).await["wake_on"]
            .as_str()
            .unwrap()
            .to_owned();
        let (stale, _) = wait(&aws, &ctx, &id, &key).await;
        let timed_out: TokenAnswer = Err(("States.Timeout".into(), "timed out".into()));
        aws.with(|s| {
            s.workflow
                .tokens
                .insert(stale.clone(), Some(timed_out.clone()))
        });

        super::stopped(&aws, &task, "EssentialContainerExited", Some(0));
        let noted = deliver(&ctx, &task_event(&aws, &task)).await;
        assert_eq!(noted["outcome"], "noted", "{noted}");
        assert_eq!(
            answer(&aws, &stale),
            Some(timed_out),
            "the stale wait is left as it was"
        );
        let (_, waited) = wait(&aws, &ctx, &id, &key).await;
        assert_eq!(waited, Err("Woken"), "the next wait ends at once");
    });
}

/// The same stop delivered again, a `RUNNING` change arriving after the stop, and another
/// deployment's task stopping: no second completion, no wait of this deployment woken, and
/// nothing of production or the record changed.
#[test]
fn a_duplicated_late_or_foreign_event_changes_nothing() {
    super::block_on(async {
        let (aws, ctx, id, task) = migrating().await;
        let running = task_event(&aws, &task);
        let key = check(&ctx, &id).await["wake_on"]
            .as_str()
            .unwrap()
            .to_owned();
        let (token, _) = wait(&aws, &ctx, &id, &key).await;
        super::stopped(&aws, &task, "EssentialContainerExited", Some(0));
        let stop = task_event(&aws, &task);
        assert_eq!(deliver(&ctx, &stop).await["outcome"], "woke");
        assert!(matches!(answer(&aws, &token), Some(Ok(_))));

        // The check runs again (pending: ECS's describe lags) and waits anew.
        let (again, _) = wait(&aws, &ctx, &id, &key).await;
        let before = snapshot(&aws, &ctx, &id).await;
        let out_of_order = deliver(&ctx, &running).await;
        assert_eq!(out_of_order["outcome"], "ignored", "{out_of_order}");
        let mut theirs = stop.clone();
        theirs["detail"]["startedBy"] = json!("bg-0000000000000000-migrate");
        assert_eq!(deliver(&ctx, &theirs).await["outcome"], "noted");
        assert_eq!(
            answer(&aws, &again),
            None,
            "nothing of this deployment's was woken"
        );

        // The duplicate wakes the new wait once (a check more, which decides from ECS); a
        // third copy finds nobody waiting.
        assert_eq!(deliver(&ctx, &stop).await["outcome"], "woke");
        assert!(matches!(answer(&aws, &again), Some(Ok(_))));
        assert_eq!(deliver(&ctx, &stop).await["outcome"], "noted");
        assert_eq!(
            snapshot(&aws, &ctx, &id).await,
            before,
            "an event changed AWS or the record"
        );
        let done = check(&ctx, &id).await;
        assert_eq!(done["status"], "done", "{done}");
    });
}

/// Whole deployments on the committed definition (listener mode, isolated database: a
/// rehearsal and a production migration, a pre-prod rollout): with ECS's events delivered,
/// the migration and launch waits move on within two seconds of ECS finishing; with every
/// event lost they still end, by the slow path, later; with every event doubled and the one
/// before it delivered again after it, they end as fast — and production ends the same in all
/// three.
#[test]
fn each_ecs_wait_ends_by_its_event_by_the_slow_path_without_it_and_the_same_when_doubled() {
    let run = |events| {
        let mode = Mode {
            events,
            ..Mode::AFTER
        };
        let run = lead_time::deploy(3, BenchWorld::ListenerIsolated, mode);
        assert_eq!(run.status, "succeeded", "{events:?}: {run:?}");
        run
    };
    let ecs_lags = |run: &lead_time::Deployed| -> Vec<f64> {
        run.waits
            .iter()
            .filter(|w| w.step == "migrate" || w.step == "launch_preprod")
            .map(|w| w.lag)
            .collect()
    };
    let delivered = run(Events::Delivered);
    let lags = ecs_lags(&delivered);
    assert_eq!(lags.len(), 2, "{:?}", delivered.waits);
    assert!(lags.iter().all(|lag| *lag < 2.0), "woken: {lags:?}");

    let dropped = run(Events::Dropped);
    let slow = ecs_lags(&dropped);
    assert!(
        slow.iter()
            .all(|lag| *lag <= wakes::slow_path_seconds(u32::MAX) as f64 + 2.0),
        "the slow path ends every wait within its timeout: {slow:?}"
    );
    assert!(
        slow.iter().sum::<f64>() > lags.iter().sum::<f64>() + 5.0,
        "without events the waits ended later: {slow:?} vs {lags:?}"
    );
    assert_eq!(dropped.production, delivered.production);

    let doubled = run(Events::Doubled);
    let twice = ecs_lags(&doubled);
    assert!(twice.iter().all(|lag| *lag < 2.0), "doubled: {twice:?}");
    assert_eq!(doubled.production, delivered.production);
}

/// A step whose waits no event ends has no await: input naming one is malformed and writes no
/// wait item (its role could not, and its check never names a key).
#[test]
fn a_step_that_waits_for_no_event_refuses_an_await() {
    super::block_on(async {
        let (aws, ctx, id, _task) = migrating().await;
        let input = json!({"action": "await", "deployment_id": id, "wake_on": "ecs-task:x",
            "task_token": "t-1"});
        let err = registry::invoke(&ctx, &registry::SYNC_DB, input)
            .await
            .unwrap_err();
        assert_eq!(err.name(), "EventMalformed", "{err}");
        let items = aws.with(|s| s.tables.items(&ctx.settings.services_table));
        assert!(
            !items.iter().any(|i| format!("{i:?}").contains("wake#")),
            "no wait item written"
        );
    });
}
