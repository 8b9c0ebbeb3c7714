//! Health check: every target of pre-prod's target group healthy (at least the desired count),
//! then HTTP smoke checks through the test endpoint, `consecutive_passes` rounds in a row.
//!
//! Within the window (`health.timeout_seconds`) nothing fails for good: targets that are still
//! starting are waited for, and a smoke round that fails is tried again at the next look (a
//! new run of `consecutive_passes` rounds, so the passes counted are always in a row). At the
//! deadline the step fails with the last evidence: which target, or which path and what came
//! back.

use crate::looks::Looks;
use crate::context::Context;
use crate::error::{StepError, StepResult};
use crate::health::{self, Assessment};
use crate::poll::{CheckInput, Poll, Started, backoff, pending};
use crate::record::{Change, Deployment, Records, StepOutcome};
use crate::engine;
use chrono::{DateTime, Duration, Utc};

use crate::step_table::{OnFailure, Shape, Step};
use super::{DeploymentRef, load_active, record_failed, record_healthy, start_once};

/// This step's row in the step registry (see [`crate::step_table::Step`]).
pub const STEP: Step = Step {
    name: "health_check",
    state: "HealthCheck",
    function: "HealthCheck",
    timeout_seconds: 150,
    label: "Health check",
    shape: Shape::Polling,
    on_failure: OnFailure::Abort,
    raises: &["HealthCheckFailed", "ResourceNotFound"],
};
const NAME: &str = STEP.name;

/// How this step's check looks (see [`crate::looks`]). Targets are looked at every second; a look may run a whole round of smoke checks (up to
/// [`crate::config::SMOKE_BUDGET_SECONDS`]), so the window is short.
pub const LOOKS: Looks = Looks {
    every_seconds: 1,
    window_seconds: 10,
    look_bound_seconds: crate::config::SMOKE_BUDGET_SECONDS + 10,
    woken_by: &[],
};

/// Timeline step: behind an NLB, the health check waits for the test listener's weights.
const TEST_LISTENER_MOVED: &str = "test_listener_settling";

/// The first look after launch: targets take a few seconds to register and start checks.
const FIRST_LOOK_SECONDS: u64 = 5;

/// Points the test route at pre-prod (the test listener, or the deployment's test rule on
/// the production listener) and starts the health-check window.
pub async fn start(ctx: &Context, input: &DeploymentRef) -> StepResult<Started> {
    let deployment = load_active(ctx, &input.deployment_id).await?;
    let settles_at = test_listener_settles(ctx, &deployment).await?;
    engine::of(&deployment.config)
        .open_test_route(ctx, &deployment)
        .await?;
    let mut timeout = deployment.config.health.timeout_seconds;
    let mut first_look = FIRST_LOOK_SECONDS;
    if let Some(at) = settles_at {
        // The window starts when the smoke checks can count.
        let wait = (at - ctx.now()).num_seconds().max(0) as u64;
        timeout += wait;
        first_look = first_look.max(wait);
    }
    start_once(ctx, &deployment, NAME, timeout, first_look, Change::new()).await
}

/// The longest a failed round of smoke checks waits for the next: a paced check's attempt
/// count grows with each invocation, so its backoff alone would soon wait a minute.
const SMOKE_RETRY_SECONDS: u64 = 10;

/// Behind an NLB the test listener's weights reach new connections only up to
/// [`crate::config::NLB_WEIGHTS_SETTLE_SECONDS`] after they change — whoever changed them (this
/// health check, or an earlier deployment's rollback or abort): until then a smoke check may be
/// answered by the other slot and pass for the wrong release. So, as ECS's own blue/green
/// does at each shift on an NLB, the checks count only that long after the health check began:
/// the moment is written on the timeline before the listener moves (a retry keeps the clock).
/// Returns when the checks may count; `None` behind an ALB.
async fn test_listener_settles(
    ctx: &Context,
    deployment: &Deployment,
) -> StepResult<Option<DateTime<Utc>>> {
    let settle = deployment.config.traffic.settle_seconds();
    if settle == 0 {
        return Ok(None);
    }
    let moved_at = match moved_at(deployment) {
        Some(at) => at,
        None => {
            let now = ctx.now();
            let detail = format!(
                "smoke checks count once the NLB's test listener weights settle ({settle} s)"
            );
            Records::new(ctx)
                .update(
                    &deployment.deployment_id,
                    Change::new().log(TEST_LISTENER_MOVED, StepOutcome::Succeeded, detail, now),
                )
                .await?;
            now
        }
    };
    Ok(Some(moved_at + Duration::seconds(settle as i64)))
}

/// When the health check began waiting for the NLB's test listener weights, from the timeline.
fn moved_at(deployment: &Deployment) -> Option<DateTime<Utc>> {
    deployment
        .timeline
        .iter()
        .find(|e| e.step == TEST_LISTENER_MOVED)
        .map(|e| e.at)
}

/// Looks at target health, then runs the smoke checks.
pub async fn check(ctx: &Context, input: &CheckInput) -> StepResult<Poll> {
    let deployment = load_active(ctx, &input.deployment_id).await?;
    let desired = deployment
        .preprod
        .as_ref()
        .map(|p| p.desired_count)
        .unwrap_or(1);
    let now = ctx.now();
    let settle = Duration::seconds(deployment.config.traffic.settle_seconds() as i64);
    if let Some(settles_at) = moved_at(&deployment).map(|at| at + settle)
        && now < settles_at
    {
        return Ok(Poll::Pending {
            // Rounded up: rounded down, the wait ended just before the settle time.
            wait_seconds: ((settles_at - now).num_milliseconds().max(1) as u64).div_ceil(1000),
            attempt: input.attempt,
            detail: format!(
                "the NLB's test listener weights for {} settle at {}",
                deployment.target_slot()?,
                settles_at.to_rfc3339()
            ),
            scheduled: true,
            wake_on: None,
        });
    }
    let assessment = match engine::of(&deployment.config)
        .preprod_route(ctx, &deployment)
        .await?
    {
        Ok(route) => health::assess(ctx, &deployment.config, &route, desired).await?,
        Err(missing) => Assessment::Waiting(missing),
    };
    match assessment {
        Assessment::Waiting(evidence) | Assessment::Failed(evidence) if now >= input.deadline => {
            Err(fail(ctx, &deployment, evidence).await)
        }
        Assessment::Waiting(evidence) => Ok(pending(input, now, evidence)),
        // One bad answer from a service that is still warming up is not a verdict: look again
        // until the deadline, and say what failed meanwhile — on the backoff, not every
        // second: a round of smoke checks is requests to the service (a paced check looks
        // every second only while it waits for target health).
        Assessment::Failed(evidence) => Ok(Poll::Pending {
            wait_seconds: backoff(input.attempt, now, input.deadline).min(SMOKE_RETRY_SECONDS),
            attempt: input.attempt + 1,
            detail: format!("smoke check failed, trying again until the deadline: {evidence}"),
            scheduled: true,
            wake_on: None,
        }),
        Assessment::Passed(detail) => {
            record_healthy(ctx, &deployment, NAME, &detail).await?;
            Ok(Poll::Done { detail })
        }
    }
}

async fn fail(ctx: &Context, deployment: &Deployment, evidence: String) -> StepError {
    let change = Change::new().health_evidence(&evidence);
    record_failed(
        ctx,
        deployment,
        NAME,
        StepError::HealthCheckFailed(evidence),
        change,
    )
    .await
}
