//! Finish: after a clean bake, the engine retires the old release (`crate::engine`; the slots:
//! the old slot scaled to zero or kept warm, the new slot plain live with production's
//! autoscaling; ECS: its own bake time and clean-up waited for), then the shared ending: maintenance off, clones deleted (never one a running slot uses),
//! DNS TTL restored, lock released and handed to a queued push.

use crate::context::Context;
use crate::engine::{self, Phase};
use crate::error::StepResult;
use crate::record::{Records, Status};

use super::DeploymentRef;
use crate::ending::{self, Ended};

const STEP: &str = super::registry::FINISH.name;

/// Finishes a successful deployment.
pub async fn run(ctx: &Context, input: &DeploymentRef) -> StepResult<Ended> {
    let deployment = Records::new(ctx).get(&input.deployment_id).await?;
    if deployment.status.is_terminal() {
        return Ok(Ended::of(&deployment));
    }
    match engine::of(&deployment.config)
        .retire_old(ctx, &deployment)
        .await?
    {
        Phase::Done(done) => {
            ending::close(ctx, &deployment, Status::Succeeded, STEP, done, None).await
        }
        Phase::Waiting { detail, until } => Ok(Ended::waiting(&deployment, detail, until)),
        Phase::Stuck(why) => {
            ending::close(
                ctx,
                &deployment,
                Status::NeedsAttention,
                STEP,
                vec![why.clone()],
                Some(why),
            )
            .await
        }
    }
}
