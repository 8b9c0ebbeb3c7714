//! Generates `deployment.asl.json` from the step registry
//! ([`bluegreen::steps::registry::STEPS`]).
//!
//! The definition is committed (reviewers read it, SAM deploys it, asl-validator checks it)
//! and a test fails when the committed file differs from [`deployment_definition`]'s output.
//! Regenerate it with `cargo run -p bluegreen-statemachine --example generate`.
//!
//! Each shape of step is written once here: the poll loop (start, wait, check, done?, past
//! the deadline, again), the approval wait and its timeout settlement, and the ending (call,
//! wait while it asks to, hand the service over to the next queued deployment, end). The
//! Retry blocks are two constants. States keep a fixed key order (`Type` first) so the
//! committed file reads like hand-written ASL.

use bluegreen::steps::looks_of;
use bluegreen::steps::registry::{
    ABORT, FINISH, OnFailure, PREPARE, RECONCILE, ROLLBACK, STEPS, Shape, Step,
};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Value, json};

use crate::validate::{START_EXECUTION, WAIT_FOR_TOKEN};

/// A JSON object whose keys keep the order they were added in.
#[derive(Debug, Clone, Default)]
struct Object(Vec<(String, Node)>);

/// A value of the generated document: an ordered object, a list, or plain JSON.
#[derive(Debug, Clone)]
enum Node {
    Object(Object),
    List(Vec<Node>),
    Json(Value),
}

impl From<Object> for Node {
    fn from(object: Object) -> Self {
        Node::Object(object)
    }
}
impl From<Vec<Object>> for Node {
    fn from(list: Vec<Object>) -> Self {
        Node::List(list.into_iter().map(Node::Object).collect())
    }
}
impl From<Value> for Node {
    fn from(value: Value) -> Self {
        Node::Json(value)
    }
}
impl From<&str> for Node {
    fn from(value: &str) -> Self {
        Node::Json(json!(value))
    }
}
impl From<String> for Node {
    fn from(value: String) -> Self {
        Node::Json(json!(value))
    }
}
impl From<&String> for Node {
    fn from(value: &String) -> Self {
        Node::Json(json!(value))
    }
}

/// An ordered object: `obj! {"Type": "Task", "Next": next}`; values are anything a [`Node`]
/// is made from.
macro_rules! obj {
    ($($key:literal : $value:expr),* $(,)?) => {
        Object(vec![$(($key.to_owned(), Node::from($value))),*])
    };
}

impl Object {
    fn new() -> Self {
        Object::default()
    }

    /// Adds `key: value`.
    fn with(mut self, key: &str, value: impl Into<Node>) -> Self {
        self.0.push((key.to_owned(), value.into()));
        self
    }
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Object(object) => object.serialize(serializer),
            Node::List(list) => list.serialize(serializer),
            Node::Json(json) => json.serialize(serializer),
        }
    }
}

impl Serialize for Object {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// Retries of every Lambda step: bluegreen's own retryable errors (throttling, AWS 5xx) and
/// Lambda's transient invoke failures. Everything else is a decision for the Catch.
fn step_retry() -> Vec<Object> {
    retry(
        &[
            "Throttled",
            "AwsTransient",
            "Lambda.ServiceException",
            "Lambda.TooManyRequestsException",
            "Lambda.SdkClientException",
        ],
        (2, 5, 60),
    )
}

/// Retries of a hand-over's `states:startExecution`: the account's execution limit and
/// throttling pass; longer spacing than a step's, since they clear slowly.
fn start_retry() -> Vec<Object> {
    retry(
        &[
            "StepFunctions.ExecutionLimitExceededException",
            "StepFunctions.ThrottlingException",
            "States.TaskFailed",
        ],
        (5, 6, 120),
    )
}

/// One Retry rule: `(first interval, attempts, longest delay)` in seconds, doubling with
/// full jitter.
fn retry(errors: &[&str], (interval, attempts, max_delay): (u32, u32, u32)) -> Vec<Object> {
    vec![obj! {
        "ErrorEquals": json!(errors),
        "IntervalSeconds": json!(interval),
        "MaxAttempts": json!(attempts),
        "BackoffRate": json!(2.0),
        "MaxDelaySeconds": json!(max_delay),
        "JitterStrategy": "FULL",
    }]
}

fn catch(errors: &str, result_path: &str, next: &str) -> Object {
    obj! {"ErrorEquals": json!([errors]), "ResultPath": result_path, "Next": next}
}

fn catch_all(result_path: &str, next: &str) -> Vec<Object> {
    vec![catch("States.ALL", result_path, next)]
}

/// The state a step's failure goes to.
fn failure_state(step: &Step) -> &'static str {
    match step.on_failure {
        OnFailure::Abort => ABORT.state,
        OnFailure::Rollback => ROLLBACK.state,
        OnFailure::EndingFailed => RECONCILE.state,
        OnFailure::Nowhere => NEEDS_ATTENTION,
    }
}

const NOT_STARTED: &str = "NotStarted";
const SUCCEEDED: &str = "Succeeded";
const NEEDS_ATTENTION: &str = "NeedsAttention";

/// A Lambda step's Task state: the registry's function, the step retry, failures caught
/// into the step's failure state with the error at `$.error`.
fn task(step: &Step, parameters: Object, result_path: &str, next: &str) -> Object {
    obj! {
        "Type": "Task",
        "Resource": step.placeholder(),
        "Parameters": parameters,
        "ResultPath": result_path,
        "Retry": step_retry(),
        "Catch": catch_all("$.error", failure_state(step)),
        "Next": next,
    }
}

fn choice(choices: Vec<Object>, default: &str) -> Object {
    obj! {"Type": "Choice", "Choices": choices, "Default": default}
}

/// A Choice rule comparing `variable` with `operator: value`.
fn rule(variable: &str, operator: &str, value: Value, next: &str) -> Object {
    Object::new()
        .with("Variable", variable)
        .with(operator, value)
        .with("Next", next)
}

/// The rule that leaves a loop once its deadline (at `deadline_path`) has passed.
fn past(deadline_path: &str, next: &str) -> Object {
    rule(
        "$$.State.EnteredTime",
        "TimestampGreaterThanEqualsPath",
        json!(deadline_path),
        next,
    )
}

/// The states of the deployment definition, in order.
fn states() -> Vec<(String, Object)> {
    let pipeline: Vec<&Step> = STEPS
        .iter()
        .filter(|s| matches!(s.shape, Shape::Polling | Shape::Approval))
        .collect();
    // Where the deployment goes to run a pipeline step (the approval starts with its
    // is-it-required choice), and after the last one.
    let entry = |i: usize| -> String {
        match pipeline.get(i) {
            Some(step) if step.shape == Shape::Approval => format!("{}Required?", step.state),
            Some(step) => step.state.to_owned(),
            None => FINISH.state.to_owned(),
        }
    };

    let mut states = resume(&entry(0));
    for (i, step) in pipeline.iter().enumerate() {
        let next = entry(i + 1);
        match step.shape {
            Shape::Approval => states.extend(approval(step, &next)),
            _ => states.extend(poll_loop(step, &next)),
        }
    }
    for ending in STEPS.iter().filter(|s| s.shape == Shape::Ending) {
        states.extend(ending_states(ending));
    }
    states.extend(ending_failed());
    states
}

/// `Resume`: prepare resumes the deployment this execution is named after; a deployment
/// that was not started (queued, superseded) ends the execution here.
fn resume(first: &str) -> Vec<(String, Object)> {
    let resume = obj! {
        "Type": "Task",
        "Resource": PREPARE.placeholder(),
        "Parameters": obj! {"resume.$": "$.deployment_id"},
        // prepare answers for a list of deployments; a resume is one.
        "ResultSelector": obj! {"deployment.$": "$.deployments[0]"},
        "ResultPath": "$.prepared",
        "Retry": step_retry(),
        "Catch": catch_all("$.error", failure_state(&PREPARE)),
        "Next": "Started?",
    };
    vec![
        (PREPARE.state.into(), resume),
        (
            "Started?".into(),
            choice(
                vec![rule(
                    "$.prepared.deployment.outcome",
                    "StringEquals",
                    json!("started"),
                    first,
                )],
                NOT_STARTED,
            ),
        ),
        (
            NOT_STARTED.into(),
            obj! {
                "Type": "Succeed",
                "Comment": "queued or superseded: nothing to do in this execution",
            },
        ),
    ]
}

/// The poll loop of a start/check step: start once, then wait and check until the check
/// answers done (go on to `next`) or the start's backstop has passed (fail with
/// States.Timeout). The backstop lies a grace after the step's deadline, so a step that gives
/// its own verdict at the deadline always does, however long its last check took
/// (`bluegreen::poll::Started::backstop`).
fn poll_loop(step: &Step, next: &str) -> Vec<(String, Object)> {
    let name = |suffix: &str| format!("{}{suffix}", step.state);
    let mut states = vec![
        (
            name(""),
            task(
                step,
                obj! {"action": "start", "deployment_id.$": "$.deployment_id"},
                "$.poll",
                &name("Wait"),
            ),
        ),
        (
            name("Wait"),
            obj! {"Type": "Wait", "SecondsPath": "$.poll.wait_seconds", "Next": name("Check")},
        ),
        (
            name("Check"),
            task(
                step,
                obj! {
                    "action": "check",
                    "deployment_id.$": "$.deployment_id",
                    "deadline.$": "$.poll.deadline",
                    "attempt.$": "$.poll.attempt",
                },
                "$.check",
                &name("Done?"),
            ),
        ),
        (
            name("Done?"),
            choice(
                vec![
                    rule("$.check.status", "StringEquals", json!("done"), next),
                    past("$.poll.backstop", &name("PastDeadline")),
                ],
                &name("Again"),
            ),
        ),
        (
            name("PastDeadline"),
            obj! {
                "Type": "Pass",
                "Parameters": obj! {
                    "Error": "States.Timeout",
                    "Cause": format!("{} did not finish before its deadline", step.state),
                },
                "ResultPath": "$.error",
                "Next": failure_state(step),
            },
        ),
    ];
    if woken_by_events(step) {
        states.push((name("Again"), again(&name("Woken?"))));
        states.extend(wait_for_event(step));
    } else {
        states.push((name("Again"), again(&name("Wait"))));
    }
    states
}

/// Whether the step's waits may end by an ECS event (its `LOOKS.woken_by`).
fn woken_by_events(step: &Step) -> bool {
    looks_of(step.name).is_some_and(|looks| !looks.woken_by.is_empty())
}

/// The poll loop's `Again`: the check's wait and attempt become the loop's.
fn again(next: &str) -> Object {
    obj! {
        "Type": "Pass",
        "Parameters": obj! {
            "deadline.$": "$.poll.deadline",
            "backstop.$": "$.poll.backstop",
            "wait_seconds.$": "$.check.wait_seconds",
            "attempt.$": "$.check.attempt",
        },
        "ResultPath": "$.poll",
        "Next": next,
    }
}

/// A step whose check may answer pending with `wake_on` (see `bluegreen::wakes`): the wait
/// is then a task token stored by the step's `await` action, completed by the wake function
/// when ECS's event comes, and timing out after the check's wait (the slow path). Woken,
/// timed out, or woken before the wait began (`Woken`), the check looks next: an event only
/// wakes. An await that fails otherwise falls back to the Wait state.
fn wait_for_event(step: &Step) -> Vec<(String, Object)> {
    let name = |suffix: &str| format!("{}{suffix}", step.state);
    let wait = obj! {
        "Type": "Task",
        "Comment": "Waits for the ECS event the check named (the wake function completes the \
                    token); the timeout is the slow path when the event is lost.",
        "Resource": WAIT_FOR_TOKEN,
        "Parameters": obj! {
            "FunctionName": step.placeholder(),
            "Payload": obj! {
                "action": "await",
                "deployment_id.$": "$.deployment_id",
                "wake_on.$": "$.check.wake_on",
                "task_token.$": "$$.Task.Token",
            },
        },
        "TimeoutSecondsPath": "$.poll.wait_seconds",
        "ResultPath": Value::Null,
        // Timed out (the slow path) or woken before the wait began: the check, now. Any other
        // failure of the await (throttled, a broken item) waits as a Wait state would, so a
        // failing await cannot spin the loop.
        "Catch": vec![
            obj! {"ErrorEquals": json!(["States.Timeout", "Woken"]), "ResultPath": Value::Null, "Next": name("Check")},
            obj! {"ErrorEquals": json!(["States.ALL"]), "ResultPath": Value::Null, "Next": name("Wait")},
        ],
        "Next": name("Check"),
    };
    vec![
        (
            name("Woken?"),
            choice(
                vec![rule(
                    "$.check.wake_on",
                    "IsPresent",
                    json!(true),
                    &name("WaitForEvent"),
                )],
                &name("Wait"),
            ),
        ),
        (name("WaitForEvent"), wait),
    ]
}

/// The approval: skipped when the config needs none; otherwise the step stores the task
/// token and notifies, and the execution waits for a decision up to the config's timeout.
fn approval(step: &Step, next: &str) -> Vec<(String, Object)> {
    let failure = failure_state(step);
    let timed_out = format!("{}TimedOut", step.state);
    let wait = obj! {
        "Type": "Task",
        "Resource": WAIT_FOR_TOKEN,
        "Parameters": obj! {
            "FunctionName": step.placeholder(),
            "Payload": obj! {"deployment_id.$": "$.deployment_id", "task_token.$": "$$.Task.Token"},
        },
        "TimeoutSecondsPath": "$.prepared.deployment.approval_timeout_seconds",
        "ResultPath": "$.approval",
        "Retry": step_retry(),
        "Catch": vec![
            catch("States.Timeout", "$.error", &timed_out),
            catch("States.ALL", "$.error", failure),
        ],
        "Next": next,
    };
    let settle = obj! {
        "Type": "Task",
        "Comment": "The wait timed out. A decision recorded in time whose delivery failed still \
                    counts (settled from the record: approved goes on, rejected aborts); \
                    otherwise the window is closed on the record and the deployment aborts \
                    with ApprovalTimedOut.",
        "Resource": step.placeholder(),
        "Parameters": obj! {"deployment_id.$": "$.deployment_id", "timed_out": json!(true)},
        "ResultPath": "$.approval",
        "Retry": step_retry(),
        "Catch": catch_all("$.error", failure),
        "Next": next,
    };
    vec![
        (
            format!("{}Required?", step.state),
            choice(
                vec![rule(
                    "$.prepared.deployment.approval_required",
                    "BooleanEquals",
                    json!(false),
                    next,
                )],
                step.state,
            ),
        ),
        (step.state.into(), wait),
        (timed_out, settle),
    ]
}

/// The end state of an ending: finish succeeds; abort and rollback fail with the error that
/// led there.
fn end_state(ending: &Step) -> (&'static str, Object) {
    if ending.name == FINISH.name {
        return (SUCCEEDED, obj! {"Type": "Succeed"});
    }
    let name = if ending.name == ABORT.name {
        "Aborted"
    } else {
        "RolledBack"
    };
    let fail = obj! {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"};
    (name, fail)
}

/// An ending: call it (again after `ended.wait.seconds` while it asks to wait, until its
/// wait deadline), then hand the service over to the next queued deployment if it names one
/// (a failed start is left to the reconciler), then end.
fn ending_states(ending: &Step) -> Vec<(String, Object)> {
    let name = |suffix: &str| format!("{}{suffix}", ending.state);
    let (end, end_object) = end_state(ending);
    let mut parameters = obj! {"deployment_id.$": "$.deployment_id"};
    if ending.name != FINISH.name {
        // Abort and rollback say why they ran.
        parameters = parameters.with("error.$", "$.error");
    }
    let call = obj! {
        "Type": "Task",
        "Resource": ending.placeholder(),
        "Parameters": parameters,
        "ResultPath": "$.ended",
        "Retry": step_retry(),
        "Catch": catch_all("$.ending_error", failure_state(ending)),
        "Next": name("Done?"),
    };
    let (start_next, start_next_later) = hand_over_states(ending, end);
    vec![
        (name(""), call),
        (
            name("Done?"),
            choice(
                vec![
                    rule("$.ended.wait", "IsPresent", json!(true), &name("Waiting?")),
                    rule(
                        "$.ended.status",
                        "StringEquals",
                        json!("needs_attention"),
                        NEEDS_ATTENTION,
                    ),
                ],
                &name("HandOver?"),
            ),
        ),
        (
            name("Waiting?"),
            choice(
                vec![past("$.ended.wait.deadline", NEEDS_ATTENTION)],
                &name("Wait"),
            ),
        ),
        (
            name("Wait"),
            obj! {"Type": "Wait", "SecondsPath": "$.ended.wait.seconds", "Next": ending.state},
        ),
        (
            name("HandOver?"),
            choice(
                vec![rule(
                    "$.ended.next_deployment",
                    "IsPresent",
                    json!(true),
                    &name("StartNext"),
                )],
                end,
            ),
        ),
        (name("StartNext"), start_next),
        (name("StartNextLater"), start_next_later),
        (end.into(), end_object),
    ]
}

/// The hand-over after an ending: start the next queued deployment's execution (named by
/// its deployment id, so a repeated start is refused by Step Functions), or, when that start
/// fails, ask the reconciler to; either way the execution then goes to `end`.
fn hand_over_states(ending: &Step, end: &str) -> (Object, Object) {
    let name = |suffix: &str| format!("{}{suffix}", ending.state);
    let start_next = obj! {
        "Type": "Task",
        "Resource": START_EXECUTION,
        "Parameters": obj! {
            "StateMachineArn.$": "$$.StateMachine.Id",
            "Name.$": "$.ended.next_deployment",
            "Input": obj! {"deployment_id.$": "$.ended.next_deployment"},
        },
        "ResultPath": Value::Null,
        "Retry": start_retry(),
        "Catch": catch_all("$.handover_error", &name("StartNextLater")),
        "Next": end,
    };
    let start_next_later = obj! {
        "Type": "Task",
        "Comment": "the hand-over start failed: the reconciler starts the next deployment (and \
                    its scheduled sweep does if this fails too)",
        "Resource": RECONCILE.placeholder(),
        "Parameters": obj! {"start.$": "$.ended.next_deployment"},
        "ResultPath": Value::Null,
        "Retry": step_retry(),
        "Catch": catch_all("$.handover_error", end),
        "Next": end,
    };
    (start_next, start_next_later)
}

/// An ending failed after its retries: the reconciler records needs-attention, and the
/// execution fails as `NeedsAttention` either way.
fn ending_failed() -> Vec<(String, Object)> {
    let record = obj! {
        "Type": "Task",
        "Comment": "an ending failed after its retries: record needs-attention (lock kept and \
                    marked, people notified with the command that resolves it)",
        "Resource": RECONCILE.placeholder(),
        "Parameters": obj! {
            "ending_failed": obj! {
                "deployment_id.$": "$.deployment_id",
                "error.$": "$.ending_error",
                "state.$": "$",
            },
        },
        "ResultPath": "$.reconciled",
        "Retry": step_retry(),
        "Catch": catch_all("$.reconcile_error", NEEDS_ATTENTION),
        "Next": NEEDS_ATTENTION,
    };
    let needs_attention = obj! {
        "Type": "Fail",
        "Error": "NeedsAttention",
        "Cause": "The deployment ended in a state a person must resolve; its record and \
                  notification say what and how (if recording failed, the reconciler records it \
                  from this execution's FAILED event). The service stays locked until then.",
    };
    vec![
        (RECONCILE.state.into(), record),
        (NEEDS_ATTENTION.into(), needs_attention),
    ]
}

/// The deployment definition, as committed: pretty JSON with a final newline.
pub fn deployment_definition() -> String {
    let mut all = Object::new();
    for (name, state) in states() {
        all = all.with(&name, state);
    }
    let definition = obj! {
        "Comment": "bluegreen: one deployment of one service, from a prepared deployment to \
                    succeeded, aborted or rolled back. Generated from the step registry by \
                    statemachine/src/generate.rs: edit that, then run `cargo run -p \
                    bluegreen-statemachine --example generate`.",
        "QueryLanguage": "JSONPath",
        "StartAt": PREPARE.state,
        "TimeoutSeconds": json!(bluegreen::config::EXECUTION_TIMEOUT_SECONDS),
        "States": all,
    };
    let mut text = serde_json::to_string_pretty(&definition).expect("definitions serialise");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed file is what the generator writes: edit the generator (or the registry),
    /// never the JSON.
    #[test]
    fn the_committed_deployment_definition_is_the_generated_one() {
        let generated = deployment_definition();
        if generated != crate::DEPLOYMENT_ASL {
            let first = generated
                .lines()
                .zip(crate::DEPLOYMENT_ASL.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            panic!(
                "statemachine/deployment.asl.json differs from the generator's output (first at \
                 line {}); run `cargo run -p bluegreen-statemachine --example generate`",
                first + 1
            );
        }
    }

    #[test]
    fn every_pipeline_step_has_its_loop_and_fails_where_the_registry_says() {
        let definition: Value = serde_json::from_str(&deployment_definition()).unwrap();
        let states = definition["States"].as_object().unwrap();
        for step in STEPS.iter().filter(|s| s.shape == Shape::Polling) {
            for suffix in ["", "Wait", "Check", "Done?", "PastDeadline", "Again"] {
                assert!(
                    states.contains_key(&format!("{}{suffix}", step.state)),
                    "{}{suffix}",
                    step.state
                );
            }
            assert_eq!(
                states[step.state]["Catch"][0]["Next"],
                failure_state(step),
                "{}",
                step.name
            );
            assert_eq!(states[step.state]["Resource"], step.placeholder());
        }
    }

    /// Every error name a Retry or Catch matches is a state-machine error bluegreen raises
    /// (or one of Step Functions' and Lambda's own), and every error a step lists is caught
    /// by each of its Task states.
    #[test]
    fn retries_and_catches_name_real_errors_and_catch_every_listed_one() {
        use bluegreen::StepError;
        for text in [crate::DEPLOYMENT_ASL, crate::INTAKE_ASL] {
            let definition: Value = serde_json::from_str(text).unwrap();
            let mut tasks = Vec::new();
            collect_tasks(&definition, &mut tasks);
            for task in &tasks {
                for clause in ["Retry", "Catch"] {
                    for handler in task[clause].as_array().into_iter().flatten() {
                        for name in handler["ErrorEquals"].as_array().unwrap() {
                            let name = name.as_str().unwrap();
                            // `Sandbox.Timedout`: Lambda's runtime reports a function's
                            // own timeout under it.
                            let foreign = ["States.", "Lambda.", "StepFunctions.", "Sandbox."]
                                .iter()
                                .any(|p| name.starts_with(p));
                            assert!(
                                foreign || StepError::CONTRACT.contains(&name),
                                "{clause} names {name}, which is no state-machine error"
                            );
                        }
                    }
                }
                let resource = task["Parameters"]["FunctionName"]
                    .as_str()
                    .or(task["Resource"].as_str())
                    .unwrap();
                let Some(step) = bluegreen::steps::registry::by_placeholder(resource) else {
                    continue;
                };
                let caught: Vec<&str> = task["Catch"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|c| c["ErrorEquals"].as_array().unwrap())
                    .filter_map(Value::as_str)
                    .collect();
                for error in step.errors() {
                    assert!(
                        caught.contains(&"States.ALL") || caught.contains(&error),
                        "a {} task does not catch {error}",
                        step.name
                    );
                }
            }
        }
    }

    fn collect_tasks<'a>(value: &'a Value, tasks: &mut Vec<&'a Value>) {
        match value {
            Value::Object(map) => {
                if map.get("Type").and_then(Value::as_str) == Some("Task") {
                    tasks.push(value);
                }
                map.values().for_each(|v| collect_tasks(v, tasks));
            }
            Value::Array(items) => items.iter().for_each(|v| collect_tasks(v, tasks)),
            _ => {}
        }
    }
}
