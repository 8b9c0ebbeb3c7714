//! Switch: move production to the approved release, as the deployment's engine moves it
//! (`crate::engine`: the slots' routes in `crate::engine::slots_switch`, ECS's own shift in
//! `crate::engine::ecs_production`). Every call asks the engine where production stands and
//! moves it on, so `start` and each `check` are idempotent.

use crate::looks::Looks;

use crate::context::Context;
use crate::engine::{self, slots_switch::{shift_duration, ttl_wait}};
use crate::error::StepResult;
use crate::poll::{CheckInput, Poll, Started};
use crate::record::Change;

use crate::step_table::{OnFailure, Shape, Step};
use super::{CHECK_AT_ONCE, DeploymentRef, load_active, start_once};

/// This step's row in the step registry (see [`crate::step_table::Step`]).
pub const STEP: Step = Step {
    name: "switch",
    state: "Switch",
    function: "Switch",
    timeout_seconds: 60,
    label: "Switch traffic",
    shape: Shape::Polling,
    on_failure: OnFailure::Rollback,
    raises: &[
        "SwitchFailed",
        "ApprovalRejected",
        "ProductionOnClone",
        "UnexpectedRouting",
        "ConfigInvalid",
    ],
};
const NAME: &str = STEP.name;

/// How this step's check looks (see [`crate::looks`]). Every 2 s: in DNS mode a look asks Route 53 whether the change is INSYNC, and Route 53
/// allows five requests a second per account; the new slot's scale-up and canary steps too.
pub const LOOKS: Looks = Looks {
    every_seconds: 2,
    window_seconds: 30,
    look_bound_seconds: 20,
    woken_by: &[],
};

/// The switch's deadline beyond its planned waits (DNS TTL, traffic shift): time for a
/// Route 53 change to reach INSYNC and for throttled checks to be retried.
const SWITCH_MARGIN_SECONDS: u64 = 900;


/// Applies the first traffic step (after the DNS TTL wait, if any).
pub async fn start(ctx: &Context, input: &DeploymentRef) -> StepResult<Started> {
    let deployment = load_active(ctx, &input.deployment_id).await?;
    deployment.ensure_approved()?;
    // The launch timeout: time to scale the new slot to production's count first.
    let timeout = ttl_wait(ctx, &deployment).num_seconds().max(0) as u64
        + shift_duration(&deployment)
        + deployment.config.preprod.launch_timeout_seconds
        + SWITCH_MARGIN_SECONDS;
    let started = start_once(
        ctx,
        &deployment,
        NAME,
        timeout,
        CHECK_AT_ONCE,
        Change::new(),
    )
    .await?;
    // AWS's work (the scale-up, Route 53) is looked at again within `LOOKS.every_seconds`; a
    // schedule (the TTL, a canary step) keeps its wait.
    // Read again: the start's own write is on the record now.
    let deployment = load_active(ctx, &input.deployment_id).await?;
    let wait_seconds = match engine::of(&deployment.config)
        .switch(ctx, &deployment, started.deadline)
        .await?
    {
        Poll::Done { .. } => 0,
        Poll::Pending {
            wait_seconds,
            scheduled: false,
            ..
        } => wait_seconds.min(LOOKS.every_seconds),
        Poll::Pending { wait_seconds, .. } => wait_seconds,
    };
    Ok(Started {
        wait_seconds,
        ..started
    })
}

/// Moves to the next traffic step when its time has come; done at 100 %.
pub async fn check(ctx: &Context, input: &CheckInput) -> StepResult<Poll> {
    let deployment = load_active(ctx, &input.deployment_id).await?;
    match engine::of(&deployment.config)
        .switch(ctx, &deployment, input.deadline)
        .await?
    {
        Poll::Pending {
            wait_seconds,
            detail,
            scheduled,
            ..
        } => Ok(Poll::Pending {
            wait_seconds,
            attempt: input.attempt + 1,
            detail,
            scheduled,
            wake_on: None,
        }),
        done => Ok(done),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_slots_switch_records_under_this_step_s_name() {
        assert_eq!(crate::engine::slots_switch::NAME, super::STEP.name);
    }
}
