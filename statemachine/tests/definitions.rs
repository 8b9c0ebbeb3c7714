//! The committed definitions load and validate; the loader and validator reject what they
//! must; the runner follows every path of the deployment definition with scripted steps.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use bluegreen_statemachine::runner::BoxFuture;
use bluegreen_statemachine::validate::validate;
use bluegreen_statemachine::{
    DEPLOYMENT_ASL, Definition, EventKind, Failure, INTAKE_ASL, Outcome, Runner, ScaledClock,
    TaskCall, TaskHandler,
};
use serde_json::{Value, json};

#[test]
fn the_committed_definitions_load_and_pass_every_rule() {
    for (name, text) in [("deployment", DEPLOYMENT_ASL), ("intake", INTAKE_ASL)] {
        let definition = Definition::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(validate(&definition), Vec::<String>::new(), "{name}");
    }
}

fn deployment() -> Value {
    serde_json::from_str(DEPLOYMENT_ASL).unwrap()
}

fn load_error(definition: Value) -> String {
    Definition::from_value(&definition).unwrap_err().to_string()
}

#[test]
fn anything_outside_the_subset_is_a_load_error_naming_the_state_and_field() {
    let mut parallel = deployment();
    parallel["States"]["Succeeded"] = json!({"Type": "Parallel", "Branches": [], "End": true});
    assert!(load_error(parallel).contains("\"Succeeded\""));

    let mut unknown_field = deployment();
    unknown_field["States"]["Finish"]["Arguments"] = json!({});
    let message = load_error(unknown_field);
    assert!(
        message.contains("\"Finish\"") && message.contains("Arguments"),
        "{message}"
    );

    let mut numeric = deployment();
    numeric["States"]["Started?"]["Choices"][0] =
        json!({"Variable": "$.x", "NumericEquals": 1, "Next": "SyncDb"});
    assert!(load_error(numeric).contains("Started?"));

    let mut jsonata = deployment();
    jsonata["QueryLanguage"] = json!("JSONata");
    assert!(load_error(jsonata).contains("JSONata"));
}

fn problems(definition: Value) -> Vec<String> {
    validate(&Definition::from_value(&definition).expect("loads"))
}

#[test]
fn validation_finds_broken_structure_and_broken_bluegreen_rules() {
    let mut missing_next = deployment();
    missing_next["States"]["SyncDbWait"]["Next"] = json!("Nowhere");
    assert!(
        problems(missing_next)
            .iter()
            .any(|p| p.contains("\"Nowhere\" does not exist"))
    );

    let mut unreachable = deployment();
    unreachable["States"]["Orphan"] = json!({"Type": "Succeed"});
    assert!(
        problems(unreachable)
            .iter()
            .any(|p| p.starts_with("Orphan: is unreachable"))
    );

    let mut no_catch = deployment();
    no_catch["States"]["MigrateCheck"]["Catch"] = json!([]);
    assert!(
        problems(no_catch)
            .iter()
            .any(|p| p.starts_with("MigrateCheck: has no Catch"))
    );

    let mut abort_after_switch = deployment();
    abort_after_switch["States"]["BakeCheck"]["Catch"][0]["Next"] = json!("Abort");
    assert!(
        problems(abort_after_switch)
            .iter()
            .any(|p| p.contains("must roll back"))
    );

    let mut endless = deployment();
    endless["States"]["BakeDone?"]["Choices"]
        .as_array_mut()
        .unwrap()
        .remove(1);
    assert!(
        problems(endless)
            .iter()
            .any(|p| p.contains("without a deadline exit"))
    );

    let mut unknown_resource = deployment();
    unknown_resource["States"]["Finish"]["Resource"] = json!("${DeleteEverythingFunctionArn}");
    assert!(
        problems(unknown_resource)
            .iter()
            .any(|p| p.contains("not a known bluegreen step"))
    );

    let mut bad_path = deployment();
    bad_path["States"]["Finish"]["Parameters"]["deployment_id.$"] = json!("$.[[oops");
    assert!(
        problems(bad_path)
            .iter()
            .any(|p| p.starts_with("Finish: invalid JSONPath"))
    );

    let mut intrinsic = deployment();
    intrinsic["States"]["SyncDbAgain"]["Parameters"]["attempt.$"] =
        json!("States.MathAdd($.check.attempt, 1)");
    assert!(
        problems(intrinsic)
            .iter()
            .any(|p| p.contains("intrinsic function"))
    );
}

/// Answers each step like the real Lambda would, with scripted overrides per state.
#[derive(Default)]
struct Scripted {
    overrides: Mutex<HashMap<String, VecDeque<Result<Value, Failure>>>>,
    calls: Mutex<Vec<(String, Value)>>,
}

impl Scripted {
    fn on(self, state: &str, answers: Vec<Result<Value, Failure>>) -> Self {
        self.overrides
            .lock()
            .unwrap()
            .insert(state.to_owned(), answers.into());
        self
    }

    fn calls_to(&self, state: &str) -> Vec<Value> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(s, _)| s == state)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

fn started() -> Value {
    json!({"deployment_id": "shop-1", "deadline": "2099-01-01T00:00:00Z",
           "backstop": "2099-01-01T00:05:00Z", "wait_seconds": 5, "attempt": 0})
}

impl TaskHandler for Scripted {
    fn invoke(&self, call: TaskCall) -> BoxFuture<'_, Result<Value, Failure>> {
        self.calls
            .lock()
            .unwrap()
            .push((call.state.clone(), call.input.clone()));
        let scripted = self
            .overrides
            .lock()
            .unwrap()
            .get_mut(&call.state)
            .and_then(VecDeque::pop_front);
        let answer = scripted.unwrap_or_else(|| {
            Ok(match call.state.as_str() {
                "Resume" => json!({"outcome": "deployments", "deployments": [{
                    "deployment_id": "shop-1", "service": "shop", "outcome": "started",
                    "approval_required": true, "approval_timeout_seconds": 3600}]}),
                _ if call.input["action"] == "check" => json!({"status": "done", "detail": "ok"}),
                "Approval" => json!({"approved_by": "alice"}),
                s if s.ends_with("StartNext") => json!({"ExecutionArn": "arn:next"}),
                "Finish" | "Abort" | "Rollback" => {
                    json!({"deployment_id": "shop-1", "status": "x", "detail": ""})
                }
                _ => started(),
            })
        });
        Box::pin(async move { answer })
    }
}

async fn run(tasks: Arc<Scripted>) -> bluegreen_statemachine::Finished {
    let definition = Definition::parse(DEPLOYMENT_ASL).unwrap();
    let runner = Runner::new(
        definition,
        "arn:local:deployment",
        tasks,
        Arc::new(ScaledClock::new(0.0)),
    );
    runner
        .run("exec-1", json!({"deployment_id": "shop-1"}))
        .await
}

fn failed_with(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Failed(f) => &f.error,
        Outcome::Succeeded(v) => panic!("succeeded: {v}"),
    }
}

#[tokio::test]
async fn the_happy_path_visits_every_step_in_order_and_succeeds() {
    let tasks = Arc::new(Scripted::default());
    let finished = run(tasks.clone()).await;
    assert!(
        matches!(finished.outcome, Outcome::Succeeded(_)),
        "{:?}",
        finished.outcome
    );
    let tasks_run: Vec<String> = finished
        .history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::TaskScheduled { state, .. } => Some(state.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        tasks_run,
        [
            "Resume",
            "SyncDb",
            "SyncDbCheck",
            "Migrate",
            "MigrateCheck",
            "LaunchPreprod",
            "LaunchPreprodCheck",
            "HealthCheck",
            "HealthCheckCheck",
            "Approval",
            "Promote",
            "PromoteCheck",
            "Switch",
            "SwitchCheck",
            "Bake",
            "BakeCheck",
            "Finish"
        ]
    );
    let approval = &tasks.calls_to("Approval")[0];
    assert_eq!(approval["FunctionName"], "${RequestApprovalFunctionArn}");
    assert!(
        approval["Payload"]["task_token"]
            .as_str()
            .is_some_and(|t| t.starts_with("bluegreen-local:exec-1:Approval:"))
    );
}

#[tokio::test]
async fn a_pending_check_waits_the_seconds_it_returned_and_checks_again() {
    let tasks = Arc::new(Scripted::default().on(
        "LaunchPreprodCheck",
        vec![Ok(
            json!({"status": "pending", "wait_seconds": 20, "attempt": 1, "detail": "rolling out"}),
        )],
    ));
    let finished = run(tasks.clone()).await;
    assert!(matches!(finished.outcome, Outcome::Succeeded(_)));
    let waits: Vec<f64> = finished
        .history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Waiting { state, seconds } if state == "LaunchPreprodWait" => Some(*seconds),
            _ => None,
        })
        .collect();
    assert_eq!(waits, vec![5.0, 20.0]);
    assert_eq!(tasks.calls_to("LaunchPreprodCheck")[1]["attempt"], 1);
}

/// A health check whose deadline passed while its last check ran (it answered "pending"
/// after the deadline), then whose next check gives the step's verdict.
fn checked_past_the_deadline(backstop: &str) -> Arc<Scripted> {
    let started = json!({"deployment_id": "shop-1", "deadline": "2000-01-01T00:00:00Z",
                         "backstop": backstop, "wait_seconds": 5, "attempt": 0});
    Arc::new(Scripted::default().on("HealthCheck", vec![Ok(started)]).on(
        "HealthCheckCheck",
        vec![
            Ok(json!({"status": "pending", "wait_seconds": 1, "attempt": 1,
                              "detail": "smoke check failed"})),
            Err(Failure::new("HealthCheckFailed", "/health answered 503")),
        ],
    ))
}

#[tokio::test]
async fn a_check_past_its_deadline_looks_once_more_and_the_step_gives_the_verdict() {
    // Before the backstop the loop goes on: the step's own error, with its evidence, ends the
    // deployment — not a bare States.Timeout that depends on how long the check took.
    let tasks = checked_past_the_deadline("2099-01-01T00:00:00Z");
    let finished = run(tasks.clone()).await;
    assert_eq!(failed_with(&finished.outcome), "HealthCheckFailed");
    assert_eq!(tasks.calls_to("HealthCheckCheck").len(), 2);
    let second = &tasks.calls_to("HealthCheckCheck")[1];
    assert_eq!(second["deadline"], "2000-01-01T00:00:00Z");
    assert_eq!(second["attempt"], 1);

    // Past the backstop the definition gives up on the step.
    let tasks = checked_past_the_deadline("2000-01-01T00:05:00Z");
    let finished = run(tasks.clone()).await;
    assert_eq!(failed_with(&finished.outcome), "States.Timeout");
    assert_eq!(tasks.calls_to("HealthCheckCheck").len(), 1);
}

#[tokio::test]
async fn a_retryable_error_is_retried_with_backoff_then_succeeds() {
    let tasks = Arc::new(Scripted::default().on(
        "Migrate",
        vec![
            Err(Failure::new("Throttled", "slow down")),
            Err(Failure::new("AwsTransient", "503")),
        ],
    ));
    let finished = run(tasks.clone()).await;
    assert!(matches!(finished.outcome, Outcome::Succeeded(_)));
    let retries = finished
        .history
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::Retrying { state, .. } if state == "Migrate"))
        .count();
    assert_eq!(retries, 2);
    assert_eq!(tasks.calls_to("Migrate").len(), 3);
}

#[tokio::test]
async fn a_failed_migration_is_never_retried_and_aborts_naming_the_cause() {
    let tasks = Arc::new(Scripted::default().on(
        "MigrateCheck",
        vec![Err(Failure::new("MigrationFailed", "exit 3"))],
    ));
    let finished = run(tasks.clone()).await;
    assert_eq!(failed_with(&finished.outcome), "MigrationFailed");
    assert_eq!(tasks.calls_to("MigrateCheck").len(), 1);
    let abort = &tasks.calls_to("Abort")[0];
    assert_eq!(
        abort["error"],
        json!({"Error": "MigrationFailed", "Cause": "exit 3"})
    );
    assert!(tasks.calls_to("Switch").is_empty());
}

#[tokio::test]
async fn a_rejected_approval_aborts() {
    let tasks = Arc::new(Scripted::default().on(
        "Approval",
        vec![Err(Failure::new("ApprovalRejected", "not today"))],
    ));
    let finished = run(tasks.clone()).await;
    assert_eq!(failed_with(&finished.outcome), "ApprovalRejected");
    assert_eq!(tasks.calls_to("Abort").len(), 1);
}

/// Tasks whose approval wait times out and whose timeout path answers `settled`.
fn timing_out(settled: Result<Value, Failure>) -> Arc<Scripted> {
    Arc::new(
        Scripted::default()
            .on(
                "Approval",
                vec![Err(Failure::new("States.Timeout", "no decision"))],
            )
            .on("ApprovalTimedOut", vec![settled]),
    )
}

#[tokio::test]
async fn an_approval_timeout_settles_from_the_record_and_aborts_without_a_decision() {
    let tasks = timing_out(Err(Failure::new("ApprovalTimedOut", "approval timed out")));
    let finished = run(tasks.clone()).await;
    assert_eq!(failed_with(&finished.outcome), "ApprovalTimedOut");
    assert_eq!(
        tasks.calls_to("ApprovalTimedOut")[0],
        json!({"deployment_id": "shop-1", "timed_out": true})
    );
    assert_eq!(
        tasks.calls_to("Abort")[0]["error"]["Error"],
        "ApprovalTimedOut"
    );
    assert!(tasks.calls_to("Switch").is_empty());
}

#[tokio::test]
async fn an_approval_recorded_in_time_but_never_delivered_goes_on_at_the_timeout() {
    let tasks = timing_out(Ok(
        json!({"decision": "approved", "approver": "alice@example.com"}),
    ));
    let finished = run(tasks.clone()).await;
    assert!(
        matches!(finished.outcome, Outcome::Succeeded(_)),
        "{:?}",
        finished.outcome
    );
    assert!(tasks.calls_to("Abort").is_empty());
    assert!(!tasks.calls_to("Switch").is_empty(), "the switch ran");
    assert!(!tasks.calls_to("Promote").is_empty(), "promote ran first");
}

#[tokio::test]
async fn a_bake_failure_rolls_back_and_never_aborts() {
    let tasks = Arc::new(
        Scripted::default().on("BakeCheck", vec![Err(Failure::new("BakeFailed", "alarm"))]),
    );
    let finished = run(tasks.clone()).await;
    assert_eq!(failed_with(&finished.outcome), "BakeFailed");
    assert_eq!(tasks.calls_to("Rollback").len(), 1);
    assert!(tasks.calls_to("Abort").is_empty());
}

#[tokio::test]
async fn a_queued_deployment_is_started_when_the_lock_is_handed_over() {
    let tasks = Arc::new(Scripted::default().on(
        "Finish",
        vec![Ok(json!({"deployment_id": "shop-1", "status": "succeeded", "detail": "", "next_deployment": "shop-2"}))],
    ));
    let finished = run(tasks.clone()).await;
    assert!(matches!(finished.outcome, Outcome::Succeeded(_)));
    let start = &tasks.calls_to("FinishStartNext")[0];
    assert_eq!(
        start,
        &json!({"StateMachineArn": "arn:local:deployment", "Name": "shop-2", "Input": {"deployment_id": "shop-2"}})
    );
}

#[tokio::test]
async fn auto_approval_skips_the_approval_task() {
    let tasks = Arc::new(Scripted::default().on(
        "Resume",
        vec![Ok(json!({"outcome": "deployments", "deployments": [{
            "deployment_id": "shop-1", "service": "shop", "outcome": "started",
            "approval_required": false, "approval_timeout_seconds": 3600}]}))],
    ));
    let finished = run(tasks.clone()).await;
    assert!(matches!(finished.outcome, Outcome::Succeeded(_)));
    assert!(tasks.calls_to("Approval").is_empty());
}

/// The committed definition's wait for an ECS event (`bluegreen::wakes`): a check that names
/// a wake key is followed by the step's `await` task; woken, timed out (the slow path) or
/// `Woken` (the event came first) goes to the check at once; any other failure of the await
/// falls back to a plain Wait of the check's seconds, so a failing await cannot spin the loop.
#[tokio::test]
async fn a_wait_for_an_event_goes_to_the_check_when_woken_and_to_a_plain_wait_when_the_await_fails()
{
    let pending = || {
        Ok(
            json!({"status": "pending", "wait_seconds": 30, "attempt": 1,
            "detail": "task RUNNING", "wake_on": "ecs-task:bg-1-migrate"}),
        )
    };
    let tasks = Arc::new(
        Scripted::default()
            .on(
                "MigrateCheck",
                vec![pending(), pending(), pending(), pending()],
            )
            .on(
                "MigrateWaitForEvent",
                vec![
                    Ok(json!({"woken_by": "ecs-task:bg-1-migrate"})),
                    Err(Failure::new("States.Timeout", "slow path")),
                    Err(Failure::new("Woken", "came first")),
                    Err(Failure::new("Throttled", "slow down")),
                ],
            ),
    );
    let finished = run(tasks.clone()).await;
    assert!(
        matches!(finished.outcome, Outcome::Succeeded(_)),
        "{:?}",
        finished.outcome
    );
    let migrate: Vec<String> = finished
        .history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::TaskScheduled { state, .. } if state.starts_with("Migrate") => {
                Some(state.clone())
            }
            EventKind::Waiting { state, seconds } if state == "MigrateWait" => {
                Some(format!("{state} {seconds}"))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        migrate,
        [
            "Migrate",
            "MigrateWait 5",
            "MigrateCheck",
            "MigrateWaitForEvent",
            "MigrateCheck",
            "MigrateWaitForEvent",
            "MigrateCheck",
            "MigrateWaitForEvent",
            "MigrateCheck",
            "MigrateWaitForEvent",
            // Throttled: not the check at once, the check's own wait first.
            "MigrateWait 30",
            "MigrateCheck",
        ]
    );
    let awaited = &tasks.calls_to("MigrateWaitForEvent")[0];
    assert_eq!(awaited["FunctionName"], "${MigrateFunctionArn}");
    assert_eq!(awaited["Payload"]["action"], "await");
    assert_eq!(awaited["Payload"]["wake_on"], "ecs-task:bg-1-migrate");
    assert!(
        awaited["Payload"]["task_token"]
            .as_str()
            .is_some_and(|t| t.starts_with("bluegreen-local:exec-1:MigrateWaitForEvent:"))
    );
}

/// A check that names no wake key waits as before: no await task.
#[tokio::test]
async fn a_check_without_a_wake_key_never_waits_for_an_event() {
    let tasks = Arc::new(Scripted::default().on(
        "MigrateCheck",
        vec![Ok(
            json!({"status": "pending", "wait_seconds": 7, "attempt": 1, "detail": "running"}),
        )],
    ));
    let finished = run(tasks.clone()).await;
    assert!(matches!(finished.outcome, Outcome::Succeeded(_)));
    assert!(tasks.calls_to("MigrateWaitForEvent").is_empty());
    assert_eq!(tasks.calls_to("MigrateCheck").len(), 2);
}
