//! Task handler for local runs: each `${…FunctionArn}` resource calls the same step function
//! the Lambda handler calls, in-process; `.waitForTaskToken` approval waits on the deployment
//! record that the console and CLI write; `states:startExecution` is recorded for the caller
//! to run next.

use std::sync::{Arc, Mutex};

use bluegreen::Context;
use bluegreen::StepError;
use bluegreen::record::{Records, Verdict};
use bluegreen::steps::approval::{self, RequestInput, Requested};
use bluegreen::steps::registry;
use bluegreen::wakes::{self, AwaitInput};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::runner::{BoxFuture, Clock, Failure, TaskCall, TaskHandler};
use crate::validate::{START_EXECUTION, WAIT_FOR_TOKEN};

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

    /// Requests approval, then waits until the record holds a decision (the task's timeout,
    /// enforced by the runner, ends the wait with `States.Timeout`), or until the deployment
    /// ended meanwhile (`StoppedByOperator`, which ends the execution as AWS's StopExecution
    /// would: not caught, so its ending does not run a second time).
    async fn approval(&self, input: Value) -> Result<Value, Failure> {
        let request: RequestInput = parse(input.get("Payload").cloned().unwrap_or(Value::Null))?;
        if let Requested::Automatic = approval::request(&self.ctx, &request)
            .await
            .map_err(failure)?
        {
            return Ok(json!({"decision": "automatic"}));
        }
        loop {
            let looked = std::time::Instant::now();
            let deployment = Records::new(&self.ctx)
                .get(&request.deployment_id)
                .await
                .map_err(failure)?;
            // Ended meanwhile (`bluegreen abort` from another terminal): on AWS the abort
            // stops the execution; here nothing would, and the run would wait out the
            // approval window for a deployment that has ended. Only once it has ended: while
            // the abort runs, its ending is the aborting process's (and if that process dies,
            // the window's end runs the ending here, which finishes the abort).
            if deployment.status.is_terminal() {
                let by = deployment
                    .abort_requested
                    .as_ref()
                    .map_or(String::new(), |a| format!(" (abort requested by {})", a.by));
                return Err(Failure::new(
                    crate::runner::STOPPED,
                    format!(
                        "{} is {}{by}: no approval is awaited any more",
                        deployment.deployment_id, deployment.status
                    ),
                ));
            }
            let decided = deployment.approval.as_ref().and_then(|a| a.decision);
            match decided {
                Some(Verdict::Approved) => {
                    let approver = deployment
                        .approval
                        .and_then(|a| a.approver)
                        .unwrap_or_default();
                    return Ok(json!({"decision": Verdict::Approved, "approver": approver}));
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
                // The look's own time counts at the clock's pace (`--time-scale` exact).
                None => {
                    let spent = looked.elapsed();
                    self.clock.pace(self.approval_poll_seconds, spent).await
                }
            }
        }
    }
}

impl LocalTasks {
    /// A wait for an ECS event (`bluegreen::wakes`): the step's `await` action stores the
    /// token, then the wait lasts until the wake took it off its item (looked at every
    /// `approval_poll_seconds`) or the task's timeout — the slow path, which is every wait's end
    /// on the emulator: it sends no ECS events.
    async fn wait_for_event(&self, input: Value) -> Result<Value, Failure> {
        let function = input["FunctionName"].as_str().unwrap_or_default();
        let step = registry::by_placeholder(function).ok_or_else(|| {
            Failure::new("States.TaskFailed", format!("unknown function {function}"))
        })?;
        let payload = input.get("Payload").cloned().unwrap_or(Value::Null);
        let request: AwaitInput = parse(payload.clone())?;
        // An event that came first fails the await with `Woken`: the definition's catch runs
        // the check at once, as on AWS.
        registry::invoke(&self.ctx, step, payload)
            .await
            .map_err(failure)?;
        loop {
            let looked = std::time::Instant::now();
            if !wakes::still_waiting(&self.ctx, &request.wake_on, &request.task_token)
                .await
                .map_err(failure)?
            {
                return Ok(json!({"woken_by": request.wake_on}));
            }
            let spent = looked.elapsed();
            self.clock.pace(self.approval_poll_seconds, spent).await
        }
    }
}

impl TaskHandler for LocalTasks {
    fn invoke(&self, call: TaskCall) -> BoxFuture<'_, Result<Value, Failure>> {
        Box::pin(async move {
            match call.resource.as_str() {
                WAIT_FOR_TOKEN if call.input["Payload"]["action"] == "await" => {
                    self.wait_for_event(call.input).await
                }
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
                    // The same dispatch the Lambda binary uses.
                    let step = registry::by_placeholder(resource).ok_or_else(|| {
                        Failure::new("States.TaskFailed", format!("unknown resource {resource}"))
                    })?;
                    registry::invoke(&self.ctx, step, call.input)
                        .await
                        .map_err(failure)
                }
            }
        })
    }
}

/// A step error as Step Functions reports a Lambda error: its stable name and message.
fn failure(err: StepError) -> Failure {
    Failure::new(err.name(), err.to_string())
}

fn parse<T: DeserializeOwned>(input: Value) -> Result<T, Failure> {
    serde_json::from_value(input).map_err(|e| failure(StepError::EventMalformed(e.to_string())))
}
