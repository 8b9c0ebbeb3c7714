//! The `slots` engine's launch: the pushed revision on the idle slot's ECS service, beside
//! production on the live slot's, out of production's routes and service discovery.

use async_trait::async_trait;

use chrono::{DateTime, Utc};

use super::{DeploymentEngine, Phase, PreprodRoute, PutBack};
use crate::autoscaling::{self, Stance};
use crate::context::Context;
use crate::ecs::{self, Rollout};
use crate::error::{StepError, StepResult};
use crate::naming::ROLE_PREPROD;
use crate::poll::Poll;
use crate::ports::compute::ServiceState;
use crate::record::{Change, Deployment, PreprodState, Records, StepOutcome};
use crate::revisions::{self, Purpose};
use crate::routing;
use crate::slot::Slot;
use crate::test_rule;
use crate::traffic_mode;

/// Two ECS services, the slots (`traffic.engine = "slots"`).
pub struct Slots;

#[async_trait]
impl DeploymentEngine for Slots {
    fn has_idle_slot(&self) -> bool {
        true
    }

    /// Nothing: the slots' services settle where bluegreen set them.
    async fn still_going(
        &self,
        _ctx: &Context,
        _deployment: &Deployment,
    ) -> StepResult<Option<String>> {
        Ok(None)
    }

    /// Sets the idle slot's service to the production revision (once: a retry finds it set)
    /// and waits for its rollout.
    async fn repoint(
        &self,
        ctx: &Context,
        deployment: &Deployment,
        task_definition: &str,
    ) -> StepResult<Rollout> {
        let config = &deployment.config;
        let service = &config.slots.get(deployment.target_slot()?).service;
        let desired = super::recorded_preprod(deployment)?.desired_count;
        let current = ecs::describe_service(ctx, &config.cluster, service).await?;
        if current.task_definition.as_deref() != Some(task_definition) {
            crate::fence::guard(ctx, &deployment.deployment_id, "re-pointing the new slot").await?;
            ecs::update_service(
                ctx,
                &config.cluster,
                service,
                Some(task_definition),
                desired,
            )
            .await?;
        }
        ecs::rollout(ctx, &config.cluster, service, task_definition, desired).await
    }

    /// Uses the deployment's pre-prod task definition revision (see [`crate::revisions`]: the
    /// live slot's with the image replaced and, in isolated DB mode, the clone's endpoint),
    /// records what the idle service looked like, and updates the idle service.
    async fn launch(&self, ctx: &Context, deployment: &Deployment, step: &str) -> StepResult<()> {
        let config = &deployment.config;
        let target = deployment.target_slot()?;
        let idle_name = &config.slots.get(target).service;
        let preprod = match &deployment.preprod {
            Some(p) => p.clone(),
            None => record_preprod(ctx, deployment, target).await?,
        };
        crate::fence::guard(ctx, &deployment.deployment_id, "scaling pre-prod up").await?;
        // First: a policy that cannot follow production refuses the launch before pre-prod runs.
        carry_autoscaling(ctx, deployment, target, preprod.desired_count, step).await?;
        // Out of production's service discovery until the switch: callers that find the service
        // through Cloud Map must not reach an unapproved release.
        ecs::ensure_registries(ctx, &config.cluster, idle_name, &[]).await?;
        // With a test rule, the rule is pre-prod's way in and what puts its target group behind
        // the load balancer: ELB reports the targets of a group no rule forwards to as `unused`,
        // never healthy. Only requests with the deployment's preview header match it.
        test_rule::ensure(ctx, deployment, target).await?;
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
            .prepare_switch(ctx, deployment)
            .await
    }

    /// Whether the idle service's primary deployment runs the new revision at the count.
    async fn launched(&self, ctx: &Context, deployment: &Deployment) -> StepResult<Rollout> {
        let preprod = super::recorded_preprod(deployment)?;
        ecs::rollout(
            ctx,
            &deployment.config.cluster,
            &preprod.service,
            &preprod.task_definition_arn,
            preprod.desired_count,
        )
        .await
    }

    /// Production stays where it is: refused once any of it goes to the pre-prod slot (that
    /// is a rollback's job); the test listener back on pre-prod's slot, and production's own
    /// autoscaling back (a switch that began froze its scale-in).
    async fn before_abort(
        &self,
        ctx: &Context,
        deployment: &Deployment,
    ) -> StepResult<Option<String>> {
        let Some(old) = deployment.live_slot else {
            return Ok(None);
        };
        let config = &deployment.config;
        let state = routing::read_production(ctx, config).await?;
        if state.weight(old.other()) > 0 {
            return Err(StepError::UnexpectedRouting(format!(
                "abort refused: production sends {}% to {} (the pre-prod slot); use rollback",
                state.percent(old.other()),
                old.other()
            )));
        }
        routing::point_test_listener(ctx, config, old.other()).await?;
        autoscaling::give_back(ctx, deployment, old).await?;
        Ok(None)
    }

    /// The idle service back to its revision, count, marks and registries; a warm slot's
    /// pre-prod tasks drained before the clone they read goes.
    async fn put_back(
        &self,
        ctx: &Context,
        deployment: &Deployment,
        preprod: &PreprodState,
    ) -> StepResult<PutBack> {
        let config = &deployment.config;
        let previous = (!preprod.previous_task_definition.is_empty())
            .then_some(preprod.previous_task_definition.as_str());
        // At rest first: a switch that began gave it production's minimum.
        autoscaling::rest(ctx, &config.cluster, &preprod.service).await?;
        ecs::update_service(
            ctx,
            &config.cluster,
            &preprod.service,
            previous,
            preprod.previous_desired_count,
        )
        .await?;
        // A warm slot stays warm, with its own expiry: teardown scales it down in time.
        ecs::restore_slot_marks(
            ctx,
            &config.cluster,
            &preprod.service,
            &preprod.previous_marks,
        )
        .await?;
        ecs::ensure_registries(
            ctx,
            &config.cluster,
            &preprod.service,
            &preprod.previous_registries,
        )
        .await?;
        if let Some(waiting) = preprod_draining(ctx, deployment, preprod).await? {
            return Ok(PutBack::Waiting(waiting));
        }
        Ok(PutBack::Done(format!(
            "{} back to {} task(s) of its previous revision",
            preprod.service, preprod.previous_desired_count
        )))
    }

    /// The test listener (or the deployment's test rule) on the new slot.
    async fn open_test_route(&self, ctx: &Context, deployment: &Deployment) -> StepResult<()> {
        let target = deployment.target_slot()?;
        routing::point_test_listener(ctx, &deployment.config, target).await?;
        test_rule::ensure(ctx, deployment, target).await
    }

    /// The new slot, reached through the test listener or, with a test rule, by the
    /// deployment's preview header after its probe.
    async fn preprod_route(
        &self,
        _ctx: &Context,
        deployment: &Deployment,
    ) -> StepResult<Result<PreprodRoute, String>> {
        let (config, id) = (&deployment.config, &deployment.deployment_id);
        Ok(Ok(PreprodRoute {
            slot: deployment.target_slot()?,
            preview: test_rule::header(config, id),
            probe: test_rule::probe(config, id),
        }))
    }

    async fn switch(
        &self,
        ctx: &Context,
        deployment: &Deployment,
        deadline: DateTime<Utc>,
    ) -> StepResult<Poll> {
        super::slots_switch::on_slots(ctx, deployment, deadline).await
    }

    /// The new slot: bluegreen moved production to it, and only bluegreen moves it back.
    async fn baking(
        &self,
        _ctx: &Context,
        deployment: &Deployment,
    ) -> StepResult<Result<Slot, String>> {
        Ok(Ok(deployment.target_slot()?))
    }

    async fn retire_old(&self, ctx: &Context, deployment: &Deployment) -> StepResult<Phase> {
        super::slots_finish::retire_old_slot(ctx, deployment).await
    }

    async fn roll_back(&self, ctx: &Context, deployment: &Deployment) -> StepResult<Phase> {
        super::slots_rollback::on_slots(ctx, deployment).await
    }
}

/// A pre-prod slot put back to a running count (a warm slot) keeps its pre-prod tasks until
/// ECS has replaced them: their deployment drains, still naming the pre-prod revision (in
/// isolated mode, the clone). The clone is deleted only after that, or the guard that keeps
/// running slots' databases would (rightly) see it in use and make the abort need a person.
/// `Some` says what is awaited; the wait is bounded ([`super::abort_bound`]), after which the
/// ending goes on (and the guard decides).
async fn preprod_draining(
    ctx: &Context,
    deployment: &Deployment,
    preprod: &PreprodState,
) -> StepResult<Option<String>> {
    if preprod.previous_desired_count == 0 || deployment.clones.is_empty() {
        return Ok(None);
    }
    let config = &deployment.config;
    let service = ecs::describe_service(ctx, &config.cluster, &preprod.service).await?;
    let draining = service
        .deployments
        .iter()
        .any(|d| d.task_definition.as_deref() == Some(&preprod.task_definition_arn));
    if !draining || ctx.now() >= super::abort_bound(ctx, deployment) {
        return Ok(None);
    }
    Ok(Some(format!(
        "waiting for {} to replace its pre-prod tasks before the clone is deleted",
        preprod.service
    )))
}

/// What pre-prod will be, recorded before the idle service changes, so abort can always put
/// it back: the revision, the count, and the idle service as it was.
async fn record_preprod(
    ctx: &Context,
    deployment: &Deployment,
    target: Slot,
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
        ephemeral_service: None,
        ecs_deployment: None,
    };
    super::save_preprod(ctx, deployment, state).await
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
    target: Slot,
    preprod_count: i32,
    step: &str,
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
            Change::new().log(step, StepOutcome::Scaled, carry.describe(), ctx.now()),
        )
        .await
}
