//! Bake: watch the new slot for the bake time. Any configured CloudWatch alarm in `ALARM`, or
//! an unhealthy target of the new live slot, fails the bake (and the state machine rolls back).
//!
//! The bake lasts at least as long as the DNS TTL in DNS mode, so the old slot stays up until
//! no resolver can still send clients to it.

use crate::looks::Looks;
use crate::alarms;
use crate::context::Context;
use crate::db_guard;
use crate::engine;
use crate::error::{StepError, StepResult};
use crate::health::target_health;
use crate::poll::{CheckInput, Poll, Started};
use crate::record::{Change, Status};
use crate::traffic_mode;

use crate::step_table::{OnFailure, Shape, Step};
use super::{DeploymentRef, load_active, record_done, record_failed, start_once};

/// This step's row in the step registry (see [`crate::step_table::Step`]).
pub const STEP: Step = Step {
    name: "bake",
    state: "Bake",
    function: "Bake",
    timeout_seconds: 30,
    label: "Bake",
    shape: Shape::Polling,
    on_failure: OnFailure::Rollback,
    raises: &[
        "BakeFailed",
        "ProductionOnClone",
        "ResourceNotFound",
        "UnexpectedRouting",
    ],
};
const NAME: &str = STEP.name;

/// How this step's check looks (see [`crate::looks`]). The bake ends at a known time (the check's wait lands on it), and alarms are read every
/// [`LOOK_EVERY_SECONDS`]: one look per invocation.
pub const LOOKS: Looks = Looks {
    every_seconds: LOOK_EVERY_SECONDS,
    window_seconds: 0,
    look_bound_seconds: 20,
    woken_by: &[],
};

/// How often the bake looks at alarms, targets and the database guard.
const LOOK_EVERY_SECONDS: u64 = 30;

/// How far the poll's deadline lies past the end of the bake. A check that finds a few
/// seconds of bake left answers "pending"; the definition's `Done?` then compares the clock
/// with the deadline after the invocation has ended (its lease released, see `fence`), which
/// may be past the bake's end by then. Without this slack a quiet bake could time out and roll
/// back a good deployment (seen in the state-machine suite, where a real millisecond is a
/// virtual second).
const DEADLINE_SLACK_SECONDS: u64 = 300;

/// Starts the bake window; the returned deadline is when the bake succeeds.
pub async fn start(ctx: &Context, input: &DeploymentRef) -> StepResult<Started> {
    let deployment = load_active(ctx, &input.deployment_id).await?;
    let mut seconds = deployment.config.bake.seconds;
    // At least as long as resolvers may keep the answers from before the switch.
    if let Some(answers) = traffic_mode::of(&deployment.config).cached_answers() {
        seconds = seconds.max(answers.switch_ttl_seconds);
    }
    let change = Change::new().status(Status::Baking);
    let started = start_once(
        ctx,
        &deployment,
        NAME,
        seconds + DEADLINE_SLACK_SECONDS,
        0,
        change,
    )
    .await?;
    Ok(Started {
        wait_seconds: seconds.min(LOOK_EVERY_SECONDS),
        ..started
    })
}

/// Looks at alarms and live targets; done once the bake time has passed cleanly.
pub async fn check(ctx: &Context, input: &CheckInput) -> StepResult<Poll> {
    let deployment = load_active(ctx, &input.deployment_id).await?;
    let config = &deployment.config;
    let live = match engine::of(config).baking(ctx, &deployment).await? {
        Ok(live) => live,
        Err(why) => {
            let err = StepError::BakeFailed(why);
            return Err(record_failed(ctx, &deployment, NAME, err, Change::new()).await);
        }
    };
    let mut problems = alarms::firing(ctx, &config.bake.alarms).await?;
    for target in target_health(ctx, config, live).await? {
        if target.state == "unhealthy" {
            problems.push(format!(
                "live target {} is unhealthy ({})",
                target.id, target.reason
            ));
        }
    }
    if let Err(err) = db_guard::ensure_production_database(ctx, &deployment, live).await {
        return Err(record_failed(ctx, &deployment, NAME, err, Change::new()).await);
    }
    if !problems.is_empty() {
        let err = StepError::BakeFailed(problems.join("; "));
        return Err(record_failed(ctx, &deployment, NAME, err, Change::new()).await);
    }
    let now = ctx.now();
    let bake_ends = input.deadline - chrono::Duration::seconds(DEADLINE_SLACK_SECONDS as i64);
    if now >= bake_ends {
        let detail = format!("no alarm and no unhealthy target on {live} during the bake");
        record_done(ctx, &deployment, NAME, &detail, Change::new()).await?;
        return Ok(Poll::Done { detail });
    }
    // Rounded up: rounded down, the last look landed just before the bake's end and the
    // deployment waited another look (up to a second) for nothing.
    let remaining = ((bake_ends - now).num_milliseconds().max(1) as u64).div_ceil(1000);
    Ok(Poll::Pending {
        wait_seconds: remaining.min(LOOK_EVERY_SECONDS),
        attempt: input.attempt + 1,
        detail: format!("baking, {remaining}s left"),
        scheduled: true,
        wake_on: None,
    })
}
