//! The Step Functions adapter: executions of the deployment machine (is one running, start
//! one, stop one; executions are named after their deployment, so a deployment id is all it
//! takes) and task tokens (delivering an approval decision to a waiting execution).

use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde_json::json;

use crate::context::Context;
use crate::error::{StepError, StepResult};

/// What Step Functions says about a deployment's execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Execution {
    /// Running (or waiting to be redriven by a person): its own flow will end it.
    Running,
    /// Ended with this status (`SUCCEEDED`, `FAILED`, `TIMED_OUT`, `ABORTED`).
    Ended(String),
    /// There is none (never started: a hand-over or intake start that failed).
    Missing,
}

impl Execution {
    /// Whether the deployment's flow is still in charge of it.
    pub fn is_running(&self) -> bool {
        matches!(self, Execution::Running)
    }
}

fn machine(ctx: &Context) -> StepResult<&str> {
    ctx.settings
        .deployment_machine_arn
        .as_deref()
        .ok_or_else(|| {
            StepError::Internal(
                "BLUEGREEN_DEPLOYMENT_MACHINE_ARN is not set: executions cannot be looked at"
                    .into(),
            )
        })
}

fn arn(ctx: &Context, deployment_id: &str) -> StepResult<String> {
    machine(ctx)?;
    Ok(ctx
        .settings
        .execution_arn(deployment_id)
        .unwrap_or_default())
}

/// Where `deployment_id`'s execution stands.
pub async fn status(ctx: &Context, deployment_id: &str) -> StepResult<Execution> {
    let result = ctx
        .sfn
        .describe_execution()
        .execution_arn(arn(ctx, deployment_id)?)
        .send()
        .await;
    match result {
        Ok(out) => Ok(match out.status.as_str() {
            "RUNNING" | "PENDING_REDRIVE" => Execution::Running,
            other => Execution::Ended(other.to_owned()),
        }),
        Err(e) if e.code() == Some("ExecutionDoesNotExist") => Ok(Execution::Missing),
        Err(e) => Err(StepError::from_sdk("states:DescribeExecution", e)),
    }
}

/// Starts `deployment_id`'s execution with the input every deployment execution gets. Starting
/// one that is already running with that input is accepted by Step Functions as the same call.
pub async fn start(ctx: &Context, deployment_id: &str) -> StepResult<()> {
    ctx.sfn
        .start_execution()
        .state_machine_arn(machine(ctx)?)
        .name(deployment_id)
        .input(json!({"deployment_id": deployment_id}).to_string())
        .send()
        .await
        .map_err(|e| StepError::from_sdk("states:StartExecution", e))?;
    Ok(())
}

/// Stops `deployment_id`'s execution, saying who and why. Stopping one that has ended changes
/// nothing.
pub async fn stop(ctx: &Context, deployment_id: &str, cause: &str) -> StepResult<()> {
    let result = ctx
        .sfn
        .stop_execution()
        .execution_arn(arn(ctx, deployment_id)?)
        .error("StoppedByOperator")
        .cause(cause)
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("ExecutionDoesNotExist") => Ok(()),
        Err(e) => Err(StepError::from_sdk("states:StopExecution", e)),
    }
}

/// Completes the task waiting on `token` with `output` (JSON). An execution that no longer
/// waits (timed out, stopped, already answered) is [`StepError::DecisionNotDelivered`].
pub async fn send_task_success(ctx: &Context, token: &str, output: &str) -> StepResult<()> {
    ctx.sfn
        .send_task_success()
        .task_token(token)
        .output(output)
        .send()
        .await
        .map_err(|e| undeliverable("states:SendTaskSuccess", e))?;
    Ok(())
}

/// Fails the task waiting on `token` with `error` and `cause`; see [`send_task_success`].
pub async fn send_task_failure(
    ctx: &Context,
    token: &str,
    error: &str,
    cause: &str,
) -> StepResult<()> {
    ctx.sfn
        .send_task_failure()
        .task_token(token)
        .error(error)
        .cause(cause)
        .send()
        .await
        .map_err(|e| undeliverable("states:SendTaskFailure", e))?;
    Ok(())
}

/// Step Functions' "that task is gone" answers become [`StepError::DecisionNotDelivered`];
/// anything else keeps its usual mapping (retryable or not).
fn undeliverable<E>(
    operation: &'static str,
    err: aws_smithy_runtime_api::client::result::SdkError<
        E,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
) -> StepError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata
        + std::error::Error
        + Send
        + Sync
        + 'static,
{
    let error = StepError::from_sdk(operation, err);
    match error.aws_code() {
        Some("TaskTimedOut" | "TaskDoesNotExist" | "InvalidToken") => {
            StepError::DecisionNotDelivered(format!(
                "the execution no longer waits for this decision: it timed out, was stopped, or \
                 already received it ({error})"
            ))
        }
        _ => error,
    }
}

/// Whether the deployment state machine the settings name exists.
pub async fn machine_exists(ctx: &Context) -> StepResult<bool> {
    match ctx
        .sfn
        .describe_state_machine()
        .state_machine_arn(machine(ctx)?)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some("StateMachineDoesNotExist") => Ok(false),
        Err(e) => Err(StepError::from_sdk("states:DescribeStateMachine", e)),
    }
}
