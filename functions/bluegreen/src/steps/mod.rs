//! One module per deployment step, and the step registry: the ordered list of every step.
//! Each step is idempotent: calling it again with the same input makes no further change and
//! returns the same answer.

pub mod abort;
pub mod approval;
pub mod finish;
pub mod index_config;
pub mod prepare;
pub mod reconcile;
#[macro_use]
pub mod registry;
pub mod rollback;
pub mod teardown;

// The step registry, in the order a deployment runs the steps (endings, the reconciler and the
// standalone functions last); the generator chains the polling steps and the approval in this
// order between `Resume` and `Finish`. `polling(<module>)` declares the module
// `steps/<module>.rs`, takes its row (`pub const STEP`) and dispatches its `start` and `check`:
// a new polling step is that module and one line here. `row(<ROW>)` is a step whose row is in
// `crate::step_table` (modules below the steps name it) and whose dispatch is written out in
// `registry::invoke`.
steps! {
    row(PREPARE),
    polling(sync_db),
    polling(migrate),
    polling(launch_preprod),
    polling(health_check),
    row(APPROVAL),
    polling(promote),
    polling(switch),
    polling(bake),
    row(FINISH),
    row(ABORT),
    row(ROLLBACK),
    row(RECONCILE),
    row(TEARDOWN),
    row(MISSED_PUSHES),
    row(INDEX_CONFIG),
    row(WAKE),
    row(ECS_HOOK),
}

pub use crate::ending::{Ended, EndingWait};
pub use crate::step_input::{CaughtError, DeploymentRef, FailureInput};

use chrono::{DateTime, Duration, Utc};

use crate::context::Context;
use crate::error::{StepError, StepResult};
use crate::poll::Started;
use crate::record::StepOutcome;
use crate::record::{Change, Deployment, Records};
pub(crate) use crate::step_log::{record_done, record_failed, record_healthy};

/// Loads a deployment that has not ended.
pub(crate) async fn load_active(ctx: &Context, deployment_id: &str) -> StepResult<Deployment> {
    let deployment = Records::new(ctx).get(deployment_id).await?;
    if deployment.status.is_terminal() {
        return Err(StepError::DeploymentEnded {
            id: deployment_id.to_owned(),
            status: deployment.status.to_string(),
        });
    }
    Ok(deployment)
}

/// Starts a step once: the first call records `started` in the timeline (with `change`
/// applied); later calls find that entry and return the same deadline.
pub(crate) async fn start_once(
    ctx: &Context,
    deployment: &Deployment,
    step: &str,
    timeout_seconds: u64,
    wait_seconds: u64,
    change: Change,
) -> StepResult<Started> {
    let started_at = match started_at(deployment, step) {
        Some(at) => at,
        None => {
            let now = ctx.now();
            Records::new(ctx)
                .update(
                    &deployment.deployment_id,
                    change.log(step, StepOutcome::Started, "", now),
                )
                .await?;
            now
        }
    };
    let deadline = started_at + Duration::seconds(timeout_seconds as i64);
    Ok(Started {
        deployment_id: deployment.deployment_id.clone(),
        deadline,
        backstop: deadline + Duration::seconds(crate::poll::BACKSTOP_GRACE_SECONDS),
        wait_seconds,
        attempt: 0,
    })
}

/// When `step` was first started, from the timeline.
pub(crate) fn started_at(deployment: &Deployment, step: &str) -> Option<DateTime<Utc>> {
    deployment
        .timeline
        .iter()
        .find(|e| e.step == step && e.outcome == StepOutcome::Started)
        .map(|e| e.at)
}

/// The first check comes at once: the step knows already (nothing to do, or the check itself
/// makes the first move).
pub(crate) const CHECK_AT_ONCE: u64 = 0;

/// Deadline of a step that has nothing to do for this deployment: its first check, at once,
/// answers done.
const NOTHING_TO_DO_SECONDS: u64 = 60;

/// Starts a step that has nothing to do for this deployment (checked at once, done then).
pub(crate) async fn start_with_nothing_to_do(
    ctx: &Context,
    deployment: &Deployment,
    step: &str,
) -> StepResult<Started> {
    start_once(
        ctx,
        deployment,
        step,
        NOTHING_TO_DO_SECONDS,
        CHECK_AT_ONCE,
        Change::new(),
    )
    .await
}
