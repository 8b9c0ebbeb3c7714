//! How a step's outcome goes on the deployment's record: once per step, with its evidence.
//! Shared by the steps and the engines (`crate::engine`), which carry out parts of the steps.

use crate::context::Context;
use crate::error::{StepError, StepResult};
use crate::record::{Change, Deployment, Records, StepOutcome};

/// Records a health-checked step's success with its evidence, which approvers and operators
/// read on the record.
pub(crate) async fn record_healthy(
    ctx: &Context,
    deployment: &Deployment,
    step: &str,
    detail: &str,
) -> StepResult<()> {
    let change = Change::new().health_evidence(detail);
    record_done(ctx, deployment, step, detail, change).await
}

/// Records a step's success once (a repeated check does not add a second entry).
pub(crate) async fn record_done(
    ctx: &Context,
    deployment: &Deployment,
    step: &str,
    detail: &str,
    change: Change,
) -> StepResult<()> {
    if deployment.has_outcome(step, StepOutcome::Succeeded) {
        return Ok(());
    }
    Records::new(ctx)
        .update(
            &deployment.deployment_id,
            change.log(step, StepOutcome::Succeeded, detail, ctx.now()),
        )
        .await
}

/// Records a step's failure (with its evidence) and returns the error to raise. A retryable
/// error (throttling, a 5xx) is returned unrecorded: the state machine retries the step, so it
/// has not failed.
pub(crate) async fn record_failed(
    ctx: &Context,
    deployment: &Deployment,
    step: &str,
    err: StepError,
    change: Change,
) -> StepError {
    if !err.is_retryable() && !deployment.has_outcome(step, StepOutcome::Failed) {
        let logged = Records::new(ctx)
            .update(
                &deployment.deployment_id,
                change.log(step, StepOutcome::Failed, err.to_string(), ctx.now()),
            )
            .await;
        if let Err(write_error) = logged {
            // The step's own error matters more; the record write is best effort here.
            tracing::warn!(error = %write_error, "could not record the failure");
        }
    }
    err
}
