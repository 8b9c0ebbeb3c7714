//! Step Functions in memory: executions by name with their status, and task tokens. Running an
//! execution is the simulator's ([`Starter`]); this keeps what Step Functions would answer.

use std::collections::BTreeMap;
use std::sync::Arc;

use bluegreen::StepError;
use bluegreen::ports::Workflow;
use bluegreen::ports::workflow::Execution;

use super::{MemoryAws, refused};

/// Runs the executions Step Functions starts (the simulator); nothing runs without one.
pub trait Starter: Send + Sync + std::fmt::Debug {
    /// Execution `name` of `machine` was started with `input`.
    fn started(&self, machine: &str, name: &str, input: &str);
    /// Execution `name` was stopped: its interpreter ends, step invocations in flight do not.
    fn stopped(&self, name: &str);
}

/// One execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionModel {
    /// The state machine.
    pub machine: String,
    /// `RUNNING`, `SUCCEEDED`, `FAILED`, `TIMED_OUT`, `ABORTED`.
    pub status: String,
    /// Its input.
    pub input: String,
}

/// What a waiting task was sent: `Ok(output)` or `Err((error, cause))`.
pub type TokenAnswer = Result<String, (String, String)>;

/// Step Functions' state.
#[derive(Debug, Clone, Default)]
pub struct WorkflowState {
    /// Executions by name.
    pub executions: BTreeMap<String, ExecutionModel>,
    /// State machines that exist.
    pub machines: Vec<String>,
    /// Task tokens an execution waits on, with the answer once sent: `Ok(output)` or
    /// `Err((error, cause))`.
    pub tokens: BTreeMap<String, Option<TokenAnswer>>,
    /// Who runs executions.
    pub starter: Option<Arc<dyn Starter>>,
}

#[async_trait::async_trait]
impl Workflow for MemoryAws {
    async fn status(&self, _machine: &str, name: &str) -> Result<Execution, StepError> {
        self.call("states:DescribeExecution", |s| {
            Ok(match s.workflow.executions.get(name) {
                Some(e) if e.status == "RUNNING" => Execution::Running,
                Some(e) => Execution::Ended(e.status.clone()),
                None => Execution::Missing,
            })
        })
        .await
    }

    async fn start(&self, machine: &str, name: &str, input: &str) -> Result<(), StepError> {
        self.call("states:StartExecution", |s| {
            if let Some(existing) = s.workflow.executions.get(name) {
                // The same running execution again is accepted; anything else is refused.
                if existing.status == "RUNNING" && existing.input == input {
                    return Ok(());
                }
                return Err(refused(
                    "states:StartExecution",
                    "ExecutionAlreadyExists",
                    format!("Execution Already Exists: '{name}'"),
                ));
            }
            s.workflow.executions.insert(
                name.to_owned(),
                ExecutionModel {
                    machine: machine.to_owned(),
                    status: "RUNNING".into(),
                    input: input.to_owned(),
                },
            );
            if let Some(starter) = &s.workflow.starter {
                starter.started(machine, name, input);
            }
            Ok(())
        })
        .await
    }

    async fn stop(
        &self,
        _machine: &str,
        name: &str,
        _error: &str,
        _cause: &str,
    ) -> Result<(), StepError> {
        self.call("states:StopExecution", |s| {
            if let Some(execution) = s.workflow.executions.get_mut(name)
                && execution.status == "RUNNING"
            {
                execution.status = "ABORTED".into();
                if let Some(starter) = &s.workflow.starter {
                    starter.stopped(name);
                }
            }
            Ok(())
        })
        .await
    }

    async fn send_task_success(&self, token: &str, output: &str) -> Result<(), StepError> {
        self.call("states:SendTaskSuccess", |s| {
            deliver(s, token, Ok(output.to_owned()))
        })
        .await
    }

    async fn send_task_failure(
        &self,
        token: &str,
        error: &str,
        cause: &str,
    ) -> Result<(), StepError> {
        self.call("states:SendTaskFailure", |s| {
            deliver(s, token, Err((error.to_owned(), cause.to_owned())))
        })
        .await
    }

    async fn machine_exists(&self, machine: &str) -> Result<bool, StepError> {
        self.call("states:DescribeStateMachine", |s| {
            Ok(s.workflow.machines.iter().any(|m| m == machine))
        })
        .await
    }
}

/// Answers a waiting task once; a token nobody waits on (answered, timed out, stopped) is
/// Step Functions' "TaskTimedOut".
fn deliver(s: &mut super::State, token: &str, answer: TokenAnswer) -> Result<(), StepError> {
    match s.workflow.tokens.get_mut(token) {
        Some(slot @ None) => {
            *slot = Some(answer);
            Ok(())
        }
        _ => Err(StepError::DecisionNotDelivered(
            "the execution no longer waits for this decision: it timed out, was stopped, or \
             already received it (simulated TaskTimedOut)"
                .into(),
        )),
    }
}
