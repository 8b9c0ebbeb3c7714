//! Health check: every target of pre-prod's target group healthy (at least the desired count),
//! then HTTP smoke checks through the test endpoint, N consecutive rounds.
//!
//! Targets that are still starting are waited for until the deadline. A smoke check that
//! fails once the targets are healthy fails the step at once, with the evidence: which path,
//! what came back.

use crate::context::Context;
use crate::error::{StepError, StepResult};
use crate::health::{self, Assessment};
use crate::poll::{CheckInput, Poll, Started, pending};
use crate::record::{Change, Deployment};
use crate::routing;

use super::{DeploymentRef, load_active, record_failed, record_healthy, start_once};

const STEP: &str = super::registry::HEALTH_CHECK.name;

/// The first look after launch: targets take a few seconds to register and start checks.
const FIRST_LOOK_SECONDS: u64 = 5;

/// Points the test listener at pre-prod and starts the health-check window.
pub async fn start(ctx: &Context, input: &DeploymentRef) -> StepResult<Started> {
    let deployment = load_active(ctx, &input.deployment_id).await?;
    routing::point_test_listener(ctx, &deployment.config, deployment.target_slot()?).await?;
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
    match health::assess(ctx, &deployment.config, target, desired).await? {
        Assessment::Waiting(evidence) if now >= input.deadline => {
            Err(fail(ctx, &deployment, evidence).await)
        }
        Assessment::Waiting(evidence) => Ok(pending(input, now, evidence)),
        Assessment::Failed(evidence) => Err(fail(ctx, &deployment, evidence).await),
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
