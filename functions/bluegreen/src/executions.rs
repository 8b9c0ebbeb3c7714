//! The deployment machine's executions, over the [`Workflow`] port: is one running, start one,
//! stop one (executions are named after their deployment, so a deployment id is all it takes),
//! and task tokens (delivering an approval decision to a waiting execution).
//!
//! [`Workflow`]: crate::ports::Workflow

use serde_json::json;

use crate::context::Context;
use crate::error::{StepError, StepResult};

pub use crate::ports::workflow::Execution;

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

/// Where `deployment_id`'s execution stands.
pub async fn status(ctx: &Context, deployment_id: &str) -> StepResult<Execution> {
    ctx.ports
        .workflow
        .status(machine(ctx)?, deployment_id)
        .await
}

/// Starts `deployment_id`'s execution with the input every deployment execution gets. Starting
/// one that is already running with that input is accepted by Step Functions as the same call.
pub async fn start(ctx: &Context, deployment_id: &str) -> StepResult<()> {
    let input = json!({"deployment_id": deployment_id}).to_string();
    ctx.ports
        .workflow
        .start(machine(ctx)?, deployment_id, &input)
        .await
}

/// Starts the deployment's execution when the deployment machine is known (in the stack;
/// locally the caller runs it) and says whether it did. A failed start is not the caller's
/// failure: the record holds the lock, and the reconciler's sweep starts an execution that
/// never started.
pub async fn start_in_stack(ctx: &Context, deployment_id: &str) -> bool {
    if ctx.settings.deployment_machine_arn.is_none() {
        return false;
    }
    match start(ctx, deployment_id).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(%deployment_id, error = %e, "could not start the execution; the sweep will");
            false
        }
    }
}

/// Stops `deployment_id`'s execution (one that is missing or ended is fine).
pub async fn stop(ctx: &Context, deployment_id: &str, cause: &str) -> StepResult<()> {
    ctx.ports
        .workflow
        .stop(machine(ctx)?, deployment_id, "StoppedByOperator", cause)
        .await
}

/// Delivers an approval to the waiting task; [`StepError::DecisionNotDelivered`] when the
/// execution no longer waits for it.
pub async fn send_task_success(ctx: &Context, token: &str, output: &str) -> StepResult<()> {
    ctx.ports.workflow.send_task_success(token, output).await
}

/// Delivers a rejection to the waiting task, as [`send_task_success`].
pub async fn send_task_failure(
    ctx: &Context,
    token: &str,
    error: &str,
    cause: &str,
) -> StepResult<()> {
    ctx.ports
        .workflow
        .send_task_failure(token, error, cause)
        .await
}

/// Whether the deployment machine exists.
pub async fn machine_exists(ctx: &Context) -> StepResult<bool> {
    ctx.ports.workflow.machine_exists(machine(ctx)?).await
}
