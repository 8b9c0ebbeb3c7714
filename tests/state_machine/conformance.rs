//! Conformance: the committed deployment definition, run by moto's own Step Functions
//! interpreter (a port of LocalStack's) and by our local runner with the same scripted step
//! answers and the same approval decision, enters the same states in the same order.
//!
//! moto runs the Lambda tasks with its "simple" Lambda, which returns queued answers in
//! invocation order; the harness marks `{"errorType", "errorMessage"}` answers as function
//! errors, as real Lambda does. Approval goes through `SendTaskSuccess`/`SendTaskFailure` with
//! the token read from the execution history.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bluegreen_statemachine::runner::BoxFuture;
use bluegreen_statemachine::{
    DEPLOYMENT_ASL, Definition, Failure, Outcome, Runner, ScaledClock, TaskCall, TaskHandler,
};
use bluegreen_tests::Emulator;
use bluegreen_tests::stepfunctions::{
    interpret_state_machines, scheduled_task_token, start_execution,
};
use serde_json::{Value, json};

const FUNCTION: &str = "arn:aws:lambda:us-east-1:123456789012:function:bluegreen-step";

/// One path: the answers of the Lambda tasks in invocation order, and the approval decision.
struct Path {
    answers: Vec<Result<Value, Failure>>,
    approve: bool,
}

fn started() -> Result<Value, Failure> {
    Ok(
        json!({"deployment_id": "shop-1", "deadline": "2099-01-01T00:00:00Z",
               "backstop": "2099-01-01T00:05:00Z", "wait_seconds": 0, "attempt": 0}),
    )
}

fn done() -> Result<Value, Failure> {
    Ok(json!({"status": "done", "detail": "ok"}))
}

fn ended() -> Result<Value, Failure> {
    Ok(json!({"deployment_id": "shop-1", "status": "aborted", "detail": "done"}))
}

fn resumed() -> Result<Value, Failure> {
    Ok(
        json!({"outcome": "deployments", "deployments": [{"deployment_id": "shop-1", "service": "shop",
        "outcome": "started", "approval_required": true, "approval_timeout_seconds": 3600}]}),
    )
}

/// Resume and the four pre-approval steps, each started then done.
fn to_health(health: Result<Value, Failure>) -> Vec<Result<Value, Failure>> {
    vec![
        resumed(),
        started(),
        done(),
        started(),
        done(),
        started(),
        done(),
        started(),
        health,
    ]
}

fn success() -> Path {
    let mut answers = to_health(done());
    // The approval task's own invocation, then Switch, Bake and Finish.
    answers.extend([Ok(json!({})), started(), done(), started(), done(), ended()]);
    Path {
        answers,
        approve: true,
    }
}

fn health_failure() -> Path {
    let mut answers = to_health(Err(Failure::new(
        "HealthCheckFailed",
        "GET /health returned 503",
    )));
    answers.push(ended());
    Path {
        answers,
        approve: true,
    }
}

/// The health check's deadline passed while a check ran ("pending" after it): before the
/// backstop the loop looks once more and the step's own failure ends the deployment.
fn health_failure_after_the_deadline() -> Path {
    let mut answers = to_health(Ok(
        json!({"status": "pending", "wait_seconds": 0, "attempt": 1, "detail": "503"}),
    ));
    answers[7] = Ok(
        json!({"deployment_id": "shop-1", "deadline": "2000-01-01T00:00:00Z",
               "backstop": "2099-01-01T00:00:00Z", "wait_seconds": 0, "attempt": 0}),
    );
    answers.extend([
        Err(Failure::new(
            "HealthCheckFailed",
            "GET /health returned 503",
        )),
        ended(),
    ]);
    Path {
        answers,
        approve: true,
    }
}

fn approval_rejected() -> Path {
    let mut answers = to_health(done());
    answers.extend([Ok(json!({})), ended()]);
    Path {
        answers,
        approve: false,
    }
}

/// The local runner's side: answers in order; the approval task answers with the decision.
struct Scripted {
    answers: Mutex<VecDeque<Result<Value, Failure>>>,
    approve: bool,
}

impl TaskHandler for Scripted {
    fn invoke(&self, call: TaskCall) -> BoxFuture<'_, Result<Value, Failure>> {
        let answer = self
            .answers
            .lock()
            .unwrap()
            .pop_front()
            .expect("a scripted answer for every task");
        let answer = if call.task_token.is_some() {
            if self.approve {
                Ok(json!({}))
            } else {
                Err(Failure::new("ApprovalRejected", "not today"))
            }
        } else {
            answer
        };
        Box::pin(async move { answer })
    }
}

async fn local_states(path: Path) -> (Vec<String>, Option<String>) {
    let tasks = Arc::new(Scripted {
        answers: Mutex::new(path.answers.into()),
        approve: path.approve,
    });
    let runner = Runner::new(
        Definition::parse(DEPLOYMENT_ASL).unwrap(),
        "arn:local:deployment",
        tasks,
        Arc::new(ScaledClock::new(0.0)),
    );
    let finished = runner
        .run("local", json!({"deployment_id": "shop-1"}))
        .await;
    let error = match &finished.outcome {
        Outcome::Failed(f) => Some(f.error.clone()),
        Outcome::Succeeded(_) => None,
    };
    (finished.states_entered(), error)
}

async fn moto_states(path: Path, name: &str) -> (Vec<String>, Option<String>) {
    let emulator = Emulator::start().await;
    interpret_state_machines(&emulator).await;
    let results: Vec<String> = path
        .answers
        .iter()
        .map(|a| match a {
            Ok(v) => v.to_string(),
            Err(f) => json!({"errorType": f.error, "errorMessage": f.cause}).to_string(),
        })
        .collect();
    emulator
        .control(
            "POST",
            "/moto-api/static/lambda-simple/response",
            json!({"account_id": "123456789012", "region": "us-east-1", "results": results}),
        )
        .await;
    let mut definition = DEPLOYMENT_ASL.to_owned();
    for step in bluegreen::steps::registry::STEPS {
        definition = definition.replace(&step.placeholder(), FUNCTION);
    }
    let (sfn, execution) = start_execution(
        &emulator,
        "bluegreen-deployment",
        &definition,
        name,
        &json!({"deployment_id": "shop-1"}),
    )
    .await;
    let mut decided = false;
    // Bounded: the interpreter finishes these paths in well under a second.
    for _ in 0..300 {
        let history = history_of(&sfn, &execution).await;
        if !decided && let Some(token) = scheduled_task_token(&history) {
            if path.approve {
                sfn.send_task_success()
                    .task_token(token)
                    .output("{}")
                    .send()
                    .await
                    .expect("send task success");
            } else {
                sfn.send_task_failure()
                    .task_token(token)
                    .error("ApprovalRejected")
                    .cause("not today")
                    .send()
                    .await
                    .expect("send task failure");
            }
            decided = true;
        }
        let described = sfn
            .describe_execution()
            .execution_arn(&execution)
            .send()
            .await
            .expect("describe");
        if described.status.as_str() != "RUNNING" {
            // Read the history again: the one above may predate the end.
            let history = history_of(&sfn, &execution).await;
            let states = history
                .events
                .iter()
                .filter_map(|e| {
                    e.state_entered_event_details
                        .as_ref()
                        .map(|d| d.name.clone())
                })
                .collect();
            return (states, described.error);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("moto's execution did not finish");
}

async fn history_of(
    sfn: &aws_sdk_sfn::Client,
    execution: &str,
) -> aws_sdk_sfn::operation::get_execution_history::GetExecutionHistoryOutput {
    sfn.get_execution_history()
        .execution_arn(execution)
        .max_results(1000)
        .send()
        .await
        .expect("history")
}

async fn assert_conforms(path: fn() -> Path, name: &str) {
    let (moto, moto_error) = moto_states(path(), name).await;
    let (local, local_error) = local_states(path()).await;
    assert_eq!(
        local, moto,
        "{name}: local runner and moto's interpreter entered different states"
    );
    assert_eq!(local_error, moto_error, "{name}: different outcome");
}

#[tokio::test]
async fn success_follows_the_same_states_as_moto() {
    assert_conforms(success, "success").await;
}

#[tokio::test]
async fn a_health_check_failure_follows_the_same_states_as_moto() {
    assert_conforms(health_failure, "health-failure").await;
}

#[tokio::test]
async fn a_health_check_past_its_deadline_follows_the_same_states_as_moto() {
    assert_conforms(health_failure_after_the_deadline, "health-past-deadline").await;
    let (states, error) = local_states(health_failure_after_the_deadline()).await;
    assert_eq!(error.as_deref(), Some("HealthCheckFailed"));
    assert!(states.iter().any(|s| s == "HealthCheckAgain"), "{states:?}");
}

#[tokio::test]
async fn an_approval_rejection_follows_the_same_states_as_moto() {
    assert_conforms(approval_rejected, "approval-rejected").await;
}
