//! Launch pre-prod: run the pushed image, pinned by digest, on the idle slot's ECS service.
//!
//! The service's engine does the work (`crate::engine`): the slots engine runs the revision on
//! the idle slot's service (`check` waits for its primary deployment of that revision to
//! complete); ECS's own blue/green starts one service deployment (`check` waits until ECS holds
//! it at the approval gate, the new revision behind the test route).

use crate::context::Context;
use crate::ecs::Rollout;
use crate::engine;
use crate::error::{StepError, StepResult};
use crate::looks::Looks;
use crate::poll::{CheckInput, Poll, Started};
use crate::record::{Change, Deployment, Status};
use crate::wakes;

use crate::step_table::{OnFailure, Shape, Step};
use super::{DeploymentRef, load_active, record_done, record_failed, start_once};

/// This step's row in the step registry (see [`crate::step_table::Step`]).
pub const STEP: Step = Step {
    name: "launch_preprod",
    state: "LaunchPreprod",
    function: "LaunchPreprod",
    timeout_seconds: 60,
    label: "Launch pre-prod",
    shape: Shape::Polling,
    on_failure: OnFailure::Abort,
    raises: &[
        "LaunchFailed",
        "ConfigInvalid",
        "ResourceNotFound",
        "UnexpectedRouting",
        "Woken",
    ],
};
const NAME: &str = STEP.name;

/// How this step's check looks (see [`crate::looks`]). The rollout's end is an ECS event
/// (service deployment state change): between checks the state machine waits for it
/// (`crate::wakes`, the slow path after 30 s), and a woken check looks every second for a few
/// seconds (`DescribeServices` may lag the event). With `BLUEGREEN_WAKE_ON_EVENTS=off` it looks
/// every second for 30 s per invocation.
pub const LOOKS: Looks = Looks {
    every_seconds: 1,
    window_seconds: 30,
    look_bound_seconds: 20,
    woken_by: &[crate::wakes::DEPLOYMENT_STATE_CHANGE],
};

/// Seconds before the first look at the rollout (ECS takes at least this long to start tasks).
const FIRST_LOOK_SECONDS: u64 = 10;

/// Starts the pre-prod launch through the service's engine (`crate::engine`).
pub async fn start(ctx: &Context, input: &DeploymentRef) -> StepResult<Started> {
    let deployment = load_active(ctx, &input.deployment_id).await?;
    engine::of(&deployment.config)
        .launch(ctx, &deployment, NAME)
        .await?;
    start_once(
        ctx,
        &deployment,
        NAME,
        deployment.config.preprod.launch_timeout_seconds,
        FIRST_LOOK_SECONDS,
        Change::new(),
    )
    .await
}

/// Checks whether pre-prod runs the new revision where the health check reaches it (the
/// engine decides what that means).
pub async fn check(ctx: &Context, input: &CheckInput) -> StepResult<Poll> {
    let deployment = load_active(ctx, &input.deployment_id).await?;
    let now = ctx.now();
    let rollout = engine::of(&deployment.config)
        .launched(ctx, &deployment)
        .await?;
    let service = engine::recorded_preprod(&deployment)?.service.clone();
    match rollout {
        Rollout::Failed(reason) => {
            let err = StepError::LaunchFailed(reason);
            Err(record_failed(ctx, &deployment, NAME, err, Change::new()).await)
        }
        Rollout::Completed(detail) => {
            record_done(
                ctx,
                &deployment,
                NAME,
                &detail,
                Change::new().status(Status::Preprod),
            )
            .await?;
            Ok(Poll::Done { detail })
        }
        Rollout::InProgress(progress) => {
            fail_or_wait(ctx, &deployment, input, now, &service, progress).await
        }
    }
}

async fn fail_or_wait(
    ctx: &Context,
    deployment: &Deployment,
    input: &CheckInput,
    now: chrono::DateTime<chrono::Utc>,
    service: &str,
    progress: String,
) -> StepResult<Poll> {
    if now >= input.deadline {
        let err = StepError::LaunchFailed(format!("not stable by the deadline: {progress}"));
        return Err(record_failed(ctx, deployment, NAME, err, Change::new()).await);
    }
    let key = wakes::service_key(&deployment.config.cluster, service);
    Ok(wakes::pending(ctx, input, progress, key, input.deadline))
}
