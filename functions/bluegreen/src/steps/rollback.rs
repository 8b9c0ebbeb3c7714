//! Rollback: the failure path after the switch. Sends all production traffic back to the old
//! slot and verifies it, points the test listener at the failed slot, scales the failed slot to
//! zero, runs the optional rollback migration and waits for it, then the shared ending.
//!
//! Schema is never reverted silently: without an explicit `rollback_command`, the schema stays
//! as the migration left it (migrations must be backward compatible). A rollback migration
//! that fails leaves the deployment needing a person, never "rolled back".

use crate::context::Context;
use crate::engine::{self, Phase};
use crate::error::StepResult;
use crate::record::{Records, Status};

use super::FailureInput;
use crate::ending::{self, Ended};

const STEP: &str = super::registry::ROLLBACK.name;

/// Rolls the deployment back.
pub async fn run(ctx: &Context, input: &FailureInput) -> StepResult<Ended> {
    let deployment = Records::new(ctx).get(&input.deployment_id).await?;
    if deployment.status.is_terminal() {
        return Ok(Ended::of(&deployment));
    }
    let (mut done, status) = match engine::of(&deployment.config)
        .roll_back(ctx, &deployment)
        .await?
    {
        Phase::Done(done) => (done, Status::RolledBack),
        Phase::Waiting { detail, until } => {
            return Ok(Ended::waiting(&deployment, detail, until));
        }
        Phase::Stuck(why) => (vec![why], Status::NeedsAttention),
    };
    let status = if status == Status::RolledBack {
        match ending::settle_rollback_migration(ctx, &deployment, status, &mut done).await? {
            Ok(status) => status,
            Err(waiting) => return Ok(waiting),
        }
    } else {
        status
    };
    ending::close(
        ctx,
        &deployment,
        status,
        STEP,
        done.into_iter().filter(|d| !d.is_empty()).collect(),
        Some(input.describe()),
    )
    .await
}
