//! Health check: every target of pre-prod's target group healthy (at least the desired count),
//! then HTTP smoke checks through the test endpoint, `consecutive_passes` rounds in a row.
//!
//! Within the window (`health.timeout_seconds`) nothing fails for good: targets that are still
//! starting are waited for, and a smoke round that fails is tried again at the next look (a
//! new run of `consecutive_passes` rounds, so the passes counted are always in a row). At the
//! deadline the step fails with the last evidence: which target, or which path and what came
//! back.

use crate::context::Context;
use crate::error::{StepError, StepResult};
use crate::health::{self, Assessment};
use crate::poll::{CheckInput, Poll, Started, pending};
use crate::record::{Change, Deployment};
use crate::routing;
use crate::test_rule;

use super::{DeploymentRef, load_active, record_failed, record_healthy, start_once};

const STEP: &str = super::registry::HEALTH_CHECK.name;

/// The first look after launch: targets take a few seconds to register and start checks.
const FIRST_LOOK_SECONDS: u64 = 5;

/// Points the test route at pre-prod (the test listener, or the deployment's test rule on
/// the production listener) and starts the health-check window.
pub async fn start(ctx: &Context, input: &DeploymentRef) -> StepResult<Started> {
    let deployment = load_active(ctx, &input.deployment_id).await?;
    let target = deployment.target_slot()?;
    routing::point_test_listener(ctx, &deployment.config, target).await?;
    test_rule::ensure(ctx, &deployment, target).await?;
    start_once(
        ctx,
        &deployment,
        STEP,
        deployment.config.health.timeout_seconds,
        FIRST_LOOK_SECONDS,
        Change::new(),
    )
    .await
}

/// Looks at target health, then runs the smoke checks.
pub async fn check(ctx: &Context, input: &CheckInput) -> StepResult<Poll> {
    let deployment = load_active(ctx, &input.deployment_id).await?;
    let target = deployment.target_slot()?;
    let desired = deployment
        .preprod
        .as_ref()
        .map(|p| p.desired_count)
        .unwrap_or(1);
    let now = ctx.now();
    match health::assess(
        ctx,
        &deployment.config,
        &deployment.deployment_id,
        target,
        desired,
    )
    .await?
    {
        Assessment::Waiting(evidence) | Assessment::Failed(evidence) if now >= input.deadline => {
            Err(fail(ctx, &deployment, evidence).await)
        }
        Assessment::Waiting(evidence) => Ok(pending(input, now, evidence)),
        // One bad answer from a service that is still warming up is not a verdict: look again
        // until the deadline, and say what failed meanwhile.
        Assessment::Failed(evidence) => Ok(pending(
            input,
            now,
            format!("smoke check failed, trying again until the deadline: {evidence}"),
        )),
        Assessment::Passed(detail) => {
            record_healthy(ctx, &deployment, STEP, &detail).await?;
            Ok(Poll::Done { detail })
        }
    }
}

async fn fail(ctx: &Context, deployment: &Deployment, evidence: String) -> StepError {
    let change = Change::new().health_evidence(&evidence);
    record_failed(
        ctx,
        deployment,
        STEP,
        StepError::HealthCheckFailed(evidence),
        change,
    )
    .await
}
