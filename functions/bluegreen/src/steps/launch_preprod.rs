//! Launch pre-prod: run the pushed image, pinned by digest, on the idle slot's ECS service.
//!
//! `start` uses the deployment's pre-prod task definition revision (see [`crate::revisions`]:
//! the live slot's with the image replaced and, in isolated DB mode, the clone's endpoint), records
//! what the idle service looked like, and updates the idle service. `check` waits for the
//! service's primary deployment of that revision to complete.

use crate::looks::Looks;
use crate::autoscaling::{self, Stance};
use crate::context::Context;
use crate::ecs::{self, Rollout};
use crate::error::{StepError, StepResult};
use crate::naming::ROLE_PREPROD;
use crate::poll::{CheckInput, Poll, Started};
use crate::ports::compute::ServiceState;
use crate::wakes;
use crate::record::{Change, Deployment, PreprodState, Records, Status, StepOutcome};
use crate::revisions::{self, Purpose};
use crate::test_rule;
use crate::traffic_mode;

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

/// Starts the pre-prod launch.
pub async fn start(ctx: &Context, input: &DeploymentRef) -> StepResult<Started> {
    let deployment = load_active(ctx, &input.deployment_id).await?;
    let config = &deployment.config;
    let target = deployment.target_slot()?;
    let idle_name = &config.slots.get(target).service;
    let preprod = match &deployment.preprod {
        Some(p) => p.clone(),
        None => record_preprod(ctx, &deployment, target).await?,
    };
    crate::fence::guard(ctx, &deployment.deployment_id, "scaling pre-prod up").await?;
    // First: a policy that cannot follow production refuses the launch before pre-prod runs.
    carry_autoscaling(ctx, &deployment, target, preprod.desired_count).await?;
    // Out of production's service discovery until the switch: callers that find the service
    // through Cloud Map must not reach an unapproved release.
    ecs::ensure_registries(ctx, &config.cluster, idle_name, &[]).await?;
    // With a test rule, the rule is pre-prod's way in and what puts its target group behind
    // the load balancer: ELB reports the targets of a group no rule forwards to as `unused`,
    // never healthy. Only requests with the deployment's preview header match it.
    test_rule::ensure(ctx, &deployment, target).await?;
    ecs::update_service(
        ctx,
        &config.cluster,
        idle_name,
        Some(&preprod.task_definition_arn),
        preprod.desired_count,
    )
    .await?;
    ecs::mark_slot(
        ctx,
        &config.cluster,
        idle_name,
        &deployment.deployment_id,
        ROLE_PREPROD,
        deployment.expires_at,
    )
    .await?;
    // DNS mode lowers the records' TTL (once), so the switch can wait the old one out.
    traffic_mode::of(&deployment.config)
        .prepare_switch(ctx, &deployment)
        .await?;
    start_once(
        ctx,
        &deployment,
        NAME,
        config.preprod.launch_timeout_seconds,
        FIRST_LOOK_SECONDS,
        Change::new(),
    )
    .await
}

/// What pre-prod will be, recorded before the idle service changes, so abort can always put
/// it back: the revision, the count, and the idle service as it was.
async fn record_preprod(
    ctx: &Context,
    deployment: &Deployment,
    target: crate::slot::Slot,
) -> StepResult<PreprodState> {
    let config = &deployment.config;
    let idle_name = &config.slots.get(target).service;
    let live_name = &config.slots.get(target.other()).service;
    let live = ecs::describe_service(ctx, &config.cluster, live_name).await?;
    let idle = ecs::describe_service(ctx, &config.cluster, idle_name).await?;
    refuse_other_deployers(&[&live, &idle])?;
    let task_definition_arn = revisions::ensure(ctx, deployment, Purpose::Preprod).await?;
    let previous_marks = ecs::slot_marks(ctx, &idle).await?;
    let state = PreprodState {
        service: idle_name.clone(),
        task_definition_arn,
        previous_task_definition: idle.task_definition.clone().unwrap_or_default(),
        previous_desired_count: idle.desired_count,
        desired_count: config
            .preprod
            .desired_count
            .unwrap_or(live.desired_count.max(1)),
        previous_marks,
        previous_registries: idle.registries.clone(),
    };
    Records::new(ctx)
        .update(
            &deployment.deployment_id,
            Change::new().preprod(&state).status(Status::Preparing),
        )
        .await?;
    Ok(state)
}

/// Refuses, before anything changes, slots whose traffic something else moves when their
/// task definition changes (ECS's own blue/green or CodeDeploy would deploy against the
/// slots' target groups and rules while bluegreen moves them too).
fn refuse_other_deployers(slots: &[&ServiceState]) -> StepResult<()> {
    for slot in slots {
        if let Some(deployer) = slot.setup.other_deployer() {
            return Err(StepError::LaunchFailed(format!(
                "slot service {} is deployed by {deployer}, which moves its own traffic: \
                 bluegreen's two slots must deploy with ECS's rolling deployments (set the \
                 service's deployment strategy to ROLLING; for a service on ECS's own \
                 blue/green see README \"Which engine\")",
                slot.name
            )));
        }
    }
    Ok(())
}

/// Copies production's autoscaling to pre-prod, held (see [`autoscaling`]). A policy that
/// cannot follow production (and that the team did not give the idle slot itself) fails the
/// launch with `LaunchFailed` naming it, before anyone approves — not at the switch.
async fn carry_autoscaling(
    ctx: &Context,
    deployment: &Deployment,
    target: crate::slot::Slot,
    preprod_count: i32,
) -> StepResult<()> {
    let stance = Stance::Held { preprod_count };
    let Some(carry) = autoscaling::plan_carry(ctx, &deployment.config, target, stance).await?
    else {
        return Ok(());
    };
    carry.refuse_uncarried(StepError::LaunchFailed)?;
    if carry.is_empty() {
        return Ok(());
    }
    autoscaling::carry(ctx, &carry).await?;
    Records::new(ctx)
        .update(
            &deployment.deployment_id,
            Change::new().log(NAME, StepOutcome::Scaled, carry.describe(), ctx.now()),
        )
        .await
}

/// Checks whether the pre-prod service runs the new revision at the desired count.
pub async fn check(ctx: &Context, input: &CheckInput) -> StepResult<Poll> {
    let deployment = load_active(ctx, &input.deployment_id).await?;
    let preprod = deployment
        .preprod
        .clone()
        .ok_or_else(|| StepError::Internal("launch check before launch start".into()))?;
    let now = ctx.now();
    match ecs::rollout(
        ctx,
        &deployment.config.cluster,
        &preprod.service,
        &preprod.task_definition_arn,
        preprod.desired_count,
    )
    .await?
    {
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
            fail_or_wait(ctx, &deployment, input, now, &preprod.service, progress).await
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
