//! Task handler for local runs: each `${…FunctionArn}` resource calls the same step function
//! the Lambda handler calls, in-process; `.waitForTaskToken` approval waits on the deployment
//! record that the console and CLI write; `states:startExecution` is recorded for the caller
//! to run next.

use std::sync::{Arc, Mutex};

use bluegreen::Context;
use bluegreen::StepError;
use bluegreen::lambda::StartOrCheck;
use bluegreen::record::Records;
use bluegreen::steps::approval::{self, RequestInput, Requested};
use bluegreen::steps::{
    DeploymentRef, FailureInput, abort, bake, finish, health_check, launch_preprod, migrate,
    prepare, promote, reconcile, rollback, switch, sync_db,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::runner::{BoxFuture, Clock, Failure, TaskCall, TaskHandler};
use crate::validate::{START_EXECUTION, STEP_RESOURCES, WAIT_FOR_TOKEN};

/// An execution a task asked to start.
#[derive(Debug, Clone, PartialEq)]
pub struct StartRequest {
    /// `StateMachineArn` as given.
    pub state_machine: String,
    /// `Name`.
    pub name: String,
    /// `Input`.
    pub input: Value,
}

/// Runs tasks in-process against whatever AWS the context points at.
pub struct LocalTasks {
    ctx: Context,
    clock: Arc<dyn Clock>,
    approval_poll_seconds: f64,
    started: Mutex<Vec<StartRequest>>,
}

/// Runs a start/check step on `{"action": …}` input.
macro_rules! start_or_check {
    ($step:ident, $ctx:expr, $input:expr) => {
        match parse::<StartOrCheck>($input)? {
            StartOrCheck::Start(i) => answer($step::start($ctx, &i).await),
            StartOrCheck::Check(i) => answer($step::check($ctx, &i).await),
        }
    };
}

impl LocalTasks {
    /// Tasks over `ctx`; approval decisions are looked for every `approval_poll_seconds` of
    /// the clock's time.
    pub fn new(ctx: Context, clock: Arc<dyn Clock>, approval_poll_seconds: f64) -> Self {
        LocalTasks {
            ctx,
            clock,
            approval_poll_seconds,
            started: Mutex::new(Vec::new()),
        }
    }

    /// The executions tasks asked to start since the last call, oldest first.
    pub fn take_started(&self) -> Vec<StartRequest> {
        std::mem::take(&mut *self.started.lock().expect("started lock"))
    }

    async fn step(&self, step: &str, input: Value) -> Result<Value, Failure> {
        let ctx = &self.ctx;
        match step {
            "prepare" => answer(prepare::run(ctx, &input).await),
            "sync_db" => start_or_check!(sync_db, ctx, input),
            "launch_preprod" => {
                start_or_check!(launch_preprod, ctx, input)
            }
            "migrate" => start_or_check!(migrate, ctx, input),
            "health_check" => start_or_check!(health_check, ctx, input),
            "promote" => start_or_check!(promote, ctx, input),
            "switch" => start_or_check!(switch, ctx, input),
            "bake" => start_or_check!(bake, ctx, input),
            "abort" => answer(abort::run(ctx, &parse::<FailureInput>(input)?).await),
            "rollback" => answer(rollback::run(ctx, &parse::<FailureInput>(input)?).await),
            "finish" => answer(finish::run(ctx, &parse::<DeploymentRef>(input)?).await),
            // The approval wait's timeout path (the wait itself is `WAIT_FOR_TOKEN`).
            "request_approval" => answer(
                approval::settle_timeout(ctx, &parse::<approval::TimedOutInput>(input)?).await,
            ),
            "reconcile" => {
                let request = reconcile::Request::parse(&input).map_err(failure)?;
                answer(reconcile::run(ctx, &request).await)
            }
            other => Err(Failure::new(
                "States.TaskFailed",
                format!("no local handler for step {other}"),
            )),
        }
    }

    /// Requests approval, then waits until the record holds a decision (the task's timeout,
    /// enforced by the runner, ends the wait with `States.Timeout`).
    async fn approval(&self, input: Value) -> Result<Value, Failure> {
        let request: RequestInput = parse(input.get("Payload").cloned().unwrap_or(Value::Null))?;
        if let Requested::Automatic = approval::request(&self.ctx, &request)
            .await
            .map_err(failure)?
        {
            return Ok(json!({"decision": "automatic"}));
        }
        loop {
            let deployment = Records::new(&self.ctx)
                .get(&request.deployment_id)
                .await
                .map_err(failure)?;
            let decided = deployment
                .approval
                .as_ref()
                .and_then(|a| a.decision.clone());
            match decided.as_deref() {
                Some("approved") => {
                    let approver = deployment
                        .approval
                        .and_then(|a| a.approver)
                        .unwrap_or_default();
                    return Ok(json!({"decision": "approved", "approver": approver}));
                }
                Some(_) => {
                    let approval = deployment
                        .approval
                        .unwrap_or_else(|| unreachable!("decided implies approval"));
                    return Err(Failure::new(
                        "ApprovalRejected",
                        approval::rejection_cause(
                            &approval.approver.unwrap_or_default(),
                            &approval.reason.unwrap_or_default(),
                        ),
                    ));
                }
                None => self.clock.sleep(self.approval_poll_seconds).await,
            }
        }
    }
}

impl TaskHandler for LocalTasks {
    fn invoke(&self, call: TaskCall) -> BoxFuture<'_, Result<Value, Failure>> {
        Box::pin(async move {
            match call.resource.as_str() {
                WAIT_FOR_TOKEN => self.approval(call.input).await,
                START_EXECUTION => {
                    let request = StartRequest {
                        state_machine: call.input["StateMachineArn"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                        name: call.input["Name"].as_str().unwrap_or_default().to_owned(),
                        input: call.input["Input"].clone(),
                    };
                    let arn = format!("{}:{}", request.state_machine, request.name);
                    self.started.lock().expect("started lock").push(request);
                    Ok(json!({"ExecutionArn": arn, "StartDate": self.clock.now().to_rfc3339()}))
                }
                resource => {
                    let step = STEP_RESOURCES
                        .iter()
                        .find(|(r, _)| *r == resource)
                        .map(|(_, s)| *s)
                        .ok_or_else(|| {
                            Failure::new(
                                "States.TaskFailed",
                                format!("unknown resource {resource}"),
                            )
                        })?;
                    self.step(step, call.input).await
                }
            }
        })
    }
}

/// A step error as Step Functions reports a Lambda error: its stable name and message.
fn failure(err: StepError) -> Failure {
    Failure::new(err.name(), err.to_string())
}

fn answer<T: Serialize>(result: Result<T, StepError>) -> Result<Value, Failure> {
    result
        .map(|v| serde_json::to_value(v).expect("step outputs serialise"))
        .map_err(failure)
}

fn parse<T: DeserializeOwned>(input: Value) -> Result<T, Failure> {
    serde_json::from_value(input).map_err(|e| failure(StepError::EventMalformed(e.to_string())))
}
