//! The `ecs` engine: one service on ECS's own blue/green (`traffic.engine = "ecs"`,
//! DESIGN 28). The launch is one `UpdateService` of the service to the deployment's revision
//! (its desired count left to its autoscaling): ECS starts a service deployment that brings the
//! revision up on the alternate target group, moves its test rule to it, and waits at
//! `POST_TEST_TRAFFIC_SHIFT` for bluegreen's lifecycle hook (`crate::ecs_hook`), which holds it
//! until the deployment is approved. The launch records that ECS deployment's ARN: the hook
//! lets only it through, never another ECS deployment of the same revision.
//!
//! An abort puts the service back through ECS: `StopServiceDeployment` with rollback, then
//! waits until ECS reports the rollback ended. The service is production here — the slots'
//! restore of an idle service would start another ECS deployment. What comes after the
//! launch (the health check's route, the switch, the bake, the finish, the rollback) is in
//! [`super::ecs_production`].

use async_trait::async_trait;

use chrono::{DateTime, Utc};

use super::{DeploymentEngine, Phase, PreprodRoute, PutBack, ecs_preprod};
use crate::context::Context;
use crate::ecs::{self, Rollout};
use crate::ecs_hook::{GATED_STAGES, POST_TEST_TRAFFIC_SHIFT};
use crate::error::{StepError, StepResult};
use crate::poll::Poll;
use crate::ports::compute::{DeploymentSetup, ServiceState};
use crate::ports::service_deployments::EcsDeployment;
use crate::record::{Change, Deployment, PreprodState, Records, Status, StepOutcome};
use crate::revisions::{self, Purpose};
use crate::slot::Slot;

/// One service on ECS's own blue/green.
pub struct EcsBlueGreen;

/// How many of the service's newest ECS deployments are read to find the deployment's own
/// (one `DescribeServiceRevisions` each): its own is the newest unless someone deployed
/// after it.
const LOOK_BACK: usize = 5;

/// Timeline step: an abort found ECS had moved production without the approval.
const MOVED_UNAPPROVED: &str = "ecs_moved_unapproved";

/// The stages after the approval gate: ECS there is moving (or has moved) production.
const PAST_THE_GATE: [&str; 4] = [
    "PRODUCTION_TRAFFIC_SHIFT",
    "POST_PRODUCTION_TRAFFIC_SHIFT",
    "BAKE_TIME",
    "CLEAN_UP",
];

#[async_trait]
impl DeploymentEngine for EcsBlueGreen {
    /// No: ECS scales the old revision in itself after its bake (`CLEAN_UP`).
    fn has_idle_slot(&self) -> bool {
        false
    }

    /// Pre-prod's own service while ECS still lists it (`isolated`, before the hand-over); else
    /// the recorded ECS deployment while ECS reports it pending, in progress, stopping or
    /// rolling back.
    async fn still_going(
        &self,
        ctx: &Context,
        deployment: &Deployment,
    ) -> StepResult<Option<String>> {
        if let Some(name) = own_service(deployment) {
            let cluster = &deployment.config.cluster;
            return match ecs::describe_service(ctx, cluster, name).await {
                Ok(_) => Ok(Some(format!(
                    "pre-prod's own service {name} of {} still runs (on its clone, in the \
                     alternate target group): `bluegreen retry {}` runs its abort, which \
                     deletes it (or delete it by hand)",
                    deployment.deployment_id, deployment.deployment_id
                ))),
                Err(StepError::ResourceNotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            };
        }
        let Some(arn) = deployment
            .preprod
            .as_ref()
            .and_then(|p| p.ecs_deployment.as_ref())
        else {
            return Ok(None);
        };
        let described = ctx
            .ports
            .service_deployments
            .service_deployment(arn)
            .await?;
        Ok(described.filter(EcsDeployment::is_ongoing).map(|d| {
            let stage = d.lifecycle_stage.as_deref().unwrap_or("no stage");
            format!(
                "ECS's deployment {arn} of {} is still going on ({}, at {stage}): {}",
                deployment.deployment_id,
                d.status,
                still_going_advice(&d.status, stage, &deployment.deployment_id)
            )
        }))
    }

    /// Records what the service runs, then deploys the revision once: a retry finds the ECS
    /// deployment of its revision and never starts a second (which would supersede the
    /// first). Refuses a service that is not on ECS's blue/green or whose gates are not
    /// bluegreen's hook (ECS would move production unapproved) — before anything is recorded,
    /// and again right before the update — and one that another ECS deployment is rolling
    /// out (bluegreen does not supersede it).
    async fn launch(&self, ctx: &Context, deployment: &Deployment, _step: &str) -> StepResult<()> {
        let preprod = match &deployment.preprod {
            Some(p) => p.clone(),
            None => record_preprod(ctx, deployment).await?,
        };
        if preprod.ecs_deployment.is_some() {
            return Ok(());
        }
        if let Some(name) = &preprod.ephemeral_service {
            // Pre-prod's service registers where another ECS deployment would bring its
            // revision up: not beside one.
            let ongoing = ctx
                .ports
                .service_deployments
                .ongoing_service_deployments(&deployment.config.cluster, &preprod.service)
                .await?;
            refuse_foreign(&ongoing, &preprod.service)?;
            return ecs_preprod::launch(ctx, deployment, &preprod, name).await;
        }
        start_deployment(ctx, deployment, &preprod).await
    }

    /// Pre-prod's own service (`isolated`) hands over to ECS's deployment of the production
    /// revision ([`ecs_preprod::hand_over`]), which then runs as the launch's does: done once
    /// ECS holds it at the approval gate — which the hook keeps holding until the switch.
    async fn repoint(
        &self,
        ctx: &Context,
        deployment: &Deployment,
        task_definition: &str,
    ) -> StepResult<Rollout> {
        let mut preprod = super::recorded_preprod(deployment)?.clone();
        let mut handed_over = false;
        if let Some(name) = preprod.ephemeral_service.clone() {
            preprod =
                match ecs_preprod::hand_over(ctx, deployment, &preprod, &name, task_definition)
                    .await?
                {
                    Ok(state) => state,
                    Err(waiting) => return Ok(Rollout::InProgress(waiting)),
                };
            handed_over = true;
        }
        if preprod.task_definition_arn != task_definition {
            return Err(StepError::Internal(format!(
                "promote asked ECS's engine for {task_definition}, but ECS's deployment is of {}",
                preprod.task_definition_arn
            )));
        }
        if preprod.ecs_deployment.is_none() {
            start_deployment(ctx, deployment, &preprod).await?;
        }
        // The caller's record still names pre-prod's service: it looks again with the new one.
        if handed_over {
            return Ok(Rollout::InProgress(format!(
                "pre-prod handed over to ECS's deployment of {task_definition}"
            )));
        }
        Ok(match identified(ctx, deployment, &preprod).await? {
            Some(own) => launch_stands(&own),
            None => Rollout::InProgress(format!(
                "waiting for ECS to list its deployment of {task_definition}"
            )),
        })
    }

    /// Completed once ECS holds its deployment at the approval gate (the new revision takes
    /// the test route, production stays on the old one).
    async fn launched(&self, ctx: &Context, deployment: &Deployment) -> StepResult<Rollout> {
        let preprod = super::recorded_preprod(deployment)?;
        if let Some(name) = &preprod.ephemeral_service {
            return ecs_preprod::launched(ctx, deployment, preprod, name).await;
        }
        let Some(own) = identified(ctx, deployment, preprod).await? else {
            return Ok(match &preprod.ecs_deployment {
                Some(arn) => Rollout::Failed(format!("ECS describes no deployment {arn}")),
                None => Rollout::InProgress(format!(
                    "waiting for ECS to list its deployment of {}",
                    preprod.task_definition_arn
                )),
            });
        };
        Ok(launch_stands(&own))
    }

    /// Refuses (`UnexpectedRouting`) once ECS is moving production, or has moved it, for an
    /// approved deployment: that is a rollback's job. An unapproved one past the gate (a hook
    /// taken off after the launch) is rolled back by the abort, which says so: noted on the
    /// timeline the first time it is seen, so every later call of the abort (ECS's rollback
    /// no longer shows where it had been) still says it.
    async fn before_abort(
        &self,
        ctx: &Context,
        deployment: &Deployment,
    ) -> StepResult<Option<String>> {
        if let Some(seen) = deployment
            .timeline
            .iter()
            .find(|e| e.step == MOVED_UNAPPROVED)
        {
            return Ok(Some(seen.detail.clone()));
        }
        let Some(preprod) = &deployment.preprod else {
            return Ok(None);
        };
        // Pre-prod's own service: ECS has not deployed anything of the deployment's yet.
        if preprod.ephemeral_service.is_some() {
            return Ok(None);
        }
        let Some(own) = identified(ctx, deployment, preprod).await? else {
            return Ok(None);
        };
        let stage = own.lifecycle_stage.as_deref().unwrap_or_default();
        let moving = !own.status.starts_with("ROLLBACK")
            && (own.status == "SUCCESSFUL" || (own.is_ongoing() && PAST_THE_GATE.contains(&stage)));
        if !moving {
            return Ok(None);
        }
        // The hook lets ECS past the test gate only while the deployment is switching.
        if matches!(deployment.status, Status::Switching | Status::Baking) {
            return Err(StepError::UnexpectedRouting(format!(
                "abort refused: ECS deployment {} is {} at {stage}, production moves to the \
                 approved revision; use rollback",
                own.arn, own.status
            )));
        }
        let note = format!(
            "ECS had moved production without the approval ({}, {stage}: is bluegreen's hook \
             still registered at both gates?); the abort rolls it back",
            own.status
        );
        let log = Change::new().log(
            MOVED_UNAPPROVED,
            StepOutcome::Failed,
            note.clone(),
            ctx.now(),
        );
        Records::new(ctx)
            .update(&deployment.deployment_id, log)
            .await?;
        Ok(Some(note))
    }

    /// Stops ECS's deployment with rollback (every time it is still pending or in progress),
    /// then waits — bounded by the launch timeout from the abort request — until ECS reports
    /// it ended.
    async fn put_back(
        &self,
        ctx: &Context,
        deployment: &Deployment,
        preprod: &PreprodState,
    ) -> StepResult<PutBack> {
        let overdue = ctx.now() >= super::abort_bound(ctx, deployment);
        if let Some(name) = &preprod.ephemeral_service {
            return Ok(match ecs_preprod::remove(ctx, deployment, name).await? {
                Ok(done) => PutBack::Done(done),
                Err(waiting) if overdue => PutBack::Stuck(format!(
                    "{waiting}, past the launch timeout: look at the group before the next \
                     deployment"
                )),
                Err(waiting) => PutBack::Waiting(waiting),
            });
        }
        let Some(own) = identified(ctx, deployment, preprod).await? else {
            return Ok(match &preprod.ecs_deployment {
                Some(arn) => PutBack::Stuck(format!(
                    "ECS describes no deployment {arn}: look at the service's deployments \
                     before the next deployment"
                )),
                // An ECS deployment of it that ECS lists only later is failed at the test gate
                // (the record has ended).
                None => PutBack::Done(format!(
                    "ECS started no deployment of {}",
                    preprod.task_definition_arn
                )),
            });
        };
        if matches!(own.status.as_str(), "PENDING" | "IN_PROGRESS") {
            stop(ctx, &own).await?;
        }
        Ok(abort_stands(&own, overdue))
    }

    /// Pre-prod's own service: bluegreen's header rule to it. Else nothing: ECS moved its test
    /// rule to the new revision before it held at the gate.
    async fn open_test_route(&self, ctx: &Context, deployment: &Deployment) -> StepResult<()> {
        match own_service(deployment) {
            Some(_) => ecs_preprod::open_route(ctx, deployment).await,
            None => Ok(()),
        }
    }

    async fn preprod_route(
        &self,
        ctx: &Context,
        deployment: &Deployment,
    ) -> StepResult<Result<PreprodRoute, String>> {
        if own_service(deployment).is_some() {
            return ecs_preprod::route(deployment).map(Ok);
        }
        super::ecs_production::preprod_route(ctx, deployment).await
    }

    async fn switch(
        &self,
        ctx: &Context,
        deployment: &Deployment,
        deadline: DateTime<Utc>,
    ) -> StepResult<Poll> {
        super::ecs_production::switch(ctx, deployment, deadline).await
    }

    async fn baking(
        &self,
        ctx: &Context,
        deployment: &Deployment,
    ) -> StepResult<Result<Slot, String>> {
        super::ecs_production::baking(ctx, deployment).await
    }

    async fn retire_old(&self, ctx: &Context, deployment: &Deployment) -> StepResult<Phase> {
        super::ecs_production::retire_old(ctx, deployment).await
    }

    async fn roll_back(&self, ctx: &Context, deployment: &Deployment) -> StepResult<Phase> {
        super::ecs_production::roll_back(ctx, deployment).await
    }
}

/// Starts ECS's deployment of `preprod`'s revision once: a retry finds the ECS deployment of
/// its revision and never starts a second (which would supersede the first). Refuses a
/// service whose gates are not bluegreen's hook (ECS would move production unapproved) and
/// one that another ECS deployment is rolling out (bluegreen does not supersede it).
async fn start_deployment(
    ctx: &Context,
    deployment: &Deployment,
    preprod: &PreprodState,
) -> StepResult<()> {
    let cluster = &deployment.config.cluster;
    let deployments = &ctx.ports.service_deployments;
    let ongoing = deployments
        .ongoing_service_deployments(cluster, &preprod.service)
        .await?;
    if let Some(own) = own_deployment(ctx, &ongoing, preprod).await? {
        return record_ecs_deployment(ctx, deployment, preprod, &own.arn).await;
    }
    // Its own that already ended (ECS rolled it back before a crashed launch recorded
    // it): recorded, and the check reports how it ended; never deployed again.
    let listed = deployments
        .service_deployments(cluster, &preprod.service)
        .await?;
    if let Some(own) = own_deployment(ctx, &listed, preprod).await? {
        return record_ecs_deployment(ctx, deployment, preprod, &own.arn).await;
    }
    refuse_foreign(&ongoing, &preprod.service)?;
    let group = &deployment
        .config
        .slots
        .get(deployment.target_slot()?)
        .target_group_arn;
    ecs_preprod::refuse_occupied(ctx, group, "ECS's deployment").await?;
    // The hooks as they are now: someone may have changed them since pre-prod was recorded.
    let service = ecs::describe_service(ctx, cluster, &preprod.service).await?;
    if let Some(why) = not_gated(&service, hook_arn(ctx)?) {
        return Err(StepError::LaunchFailed(why));
    }
    crate::fence::guard(ctx, &deployment.deployment_id, "starting ECS's deployment").await?;
    ctx.ports
        .compute
        .deploy_revision(cluster, &preprod.service, &preprod.task_definition_arn)
        .await?;
    let ongoing = deployments
        .ongoing_service_deployments(cluster, &preprod.service)
        .await?;
    match own_deployment(ctx, &ongoing, preprod).await? {
        Some(own) => record_ecs_deployment(ctx, deployment, preprod, &own.arn).await,
        // ECS lists a new deployment a moment later at times: the check records it.
        None => Ok(()),
    }
}

/// What a person does about an ECS deployment still going on under a lock they want released.
/// Pure.
pub fn still_going_advice(status: &str, stage: &str, deployment_id: &str) -> String {
    match (status, stage) {
        (s, _) if s.starts_with("ROLLBACK") || s.starts_with("STOP") => {
            "ECS is rolling it back; wait until it has".to_owned()
        }
        // Past bluegreen's bake: ECS scales the old revision in by itself (stopping it now
        // would roll a baked release back).
        (_, "BAKE_TIME" | "CLEAN_UP") => {
            "ECS completes it on its own; wait until it has".to_owned()
        }
        _ => format!(
            "`bluegreen retry {deployment_id}` runs its ending (the finish once its bake \
             passed, else the rollback), or stop it in ECS, which rolls production back"
        ),
    }
}

/// Asks ECS to stop `own` with rollback. A `ConflictException` (it ended, or began stopping,
/// since it was read) is no error: the next call reads it again.
pub(super) async fn stop(ctx: &Context, own: &EcsDeployment) -> StepResult<()> {
    match ctx
        .ports
        .service_deployments
        .stop_service_deployment(&own.arn)
        .await
    {
        Err(StepError::Aws { code, .. }) if code == "ConflictException" => Ok(()),
        other => other,
    }
}

/// Where ECS's deployment of the revision stands, for the launch: completed once held at the
/// approval gate; failed once it ended, is being stopped or rolled back — or went past the
/// gate, which only a missing hook allows (production moved unapproved). Pure.
pub fn launch_stands(own: &EcsDeployment) -> Rollout {
    let stage = own.lifecycle_stage.as_deref().unwrap_or("PENDING");
    let (arn, status) = (&own.arn, own.status.as_str());
    let ongoing = matches!(status, "PENDING" | "IN_PROGRESS");
    if status == "SUCCESSFUL" || (ongoing && PAST_THE_GATE.contains(&stage)) {
        return Rollout::Failed(format!(
            "ECS deployment {arn} went past {POST_TEST_TRAFFIC_SHIFT} without the approval \
             ({status}, {stage}): is bluegreen's lifecycle hook registered at that stage?"
        ));
    }
    if !ongoing {
        let reason = own.status_reason.as_deref().unwrap_or("no reason given");
        return Rollout::Failed(format!("ECS deployment {arn} is {status}: {reason}"));
    }
    if stage == POST_TEST_TRAFFIC_SHIFT {
        return Rollout::Completed(format!(
            "ECS deployment {arn} holds at {stage}: the new revision takes the test route, \
             production stays on the old one until the approval"
        ));
    }
    Rollout::InProgress(format!("ECS deployment {arn}: {stage}"))
}

/// Where an abort's put-back stands, from ECS's deployment (`overdue`: past the wait's
/// bound): done once ECS rolled it back or stopped it; a person's once its rollback failed,
/// it completed (production runs the aborted revision), or it is still going past the bound.
pub fn abort_stands(own: &EcsDeployment, overdue: bool) -> PutBack {
    let arn = &own.arn;
    let reason = own
        .status_reason
        .as_deref()
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    match own.status.as_str() {
        "ROLLBACK_SUCCESSFUL" => PutBack::Done(format!(
            "ECS rolled deployment {arn} back: the service runs its previous revision"
        )),
        // Superseded by a newer UpdateService: that deployment is someone else's to finish.
        "STOPPED" => PutBack::Done(format!("ECS stopped deployment {arn}{reason}")),
        "ROLLBACK_FAILED" => PutBack::Stuck(format!(
            "ECS could not roll deployment {arn} back{reason}: look at the service's \
             deployments and traffic before the next deployment"
        )),
        "SUCCESSFUL" => PutBack::Stuck(format!(
            "ECS completed deployment {arn}: production runs the aborted revision; roll back \
             by deploying the previous one"
        )),
        status if overdue => PutBack::Stuck(format!(
            "ECS deployment {arn} is still {status} after the launch timeout: look at it before \
             the next deployment"
        )),
        status => PutBack::Waiting(format!(
            "waiting for ECS to roll deployment {arn} back ({status}, {})",
            own.lifecycle_stage.as_deref().unwrap_or("no stage")
        )),
    }
}

/// What the service runs before the launch, recorded before anything changes; refuses a
/// service ECS would deploy without bluegreen's gates.
async fn record_preprod(ctx: &Context, deployment: &Deployment) -> StepResult<PreprodState> {
    let config = &deployment.config;
    let name = &config.slots.blue.service;
    let service = ecs::describe_service(ctx, &config.cluster, name).await?;
    if let Some(why) = not_gated(&service, hook_arn(ctx)?) {
        return Err(StepError::LaunchFailed(why));
    }
    let task_definition_arn = revisions::ensure(ctx, deployment, Purpose::Preprod).await?;
    let own = ecs_preprod::has_own_service(config);
    let state = PreprodState {
        service: name.clone(),
        task_definition_arn,
        previous_task_definition: service.task_definition.clone().unwrap_or_default(),
        previous_desired_count: service.desired_count,
        // ECS runs the new revision at the service's count (its autoscaling keeps owning it);
        // pre-prod's own service at pre-prod's.
        desired_count: match own {
            true => ecs_preprod::desired_count(config, service.desired_count),
            false => service.desired_count,
        },
        previous_marks: Default::default(),
        previous_registries: Vec::new(),
        ecs_deployment: None,
        ephemeral_service: own
            .then(|| crate::naming::preprod_service_name(name, &deployment.deployment_id)),
    };
    super::save_preprod(ctx, deployment, state).await
}

/// The pre-prod service the deployment runs (`isolated`, until promote handed over).
fn own_service(deployment: &Deployment) -> Option<&str> {
    deployment
        .preprod
        .as_ref()
        .and_then(|p| p.ephemeral_service.as_deref())
}

/// The stack's hook function; `LaunchFailed` when unknown (fail closed: any Lambda would
/// then pass for bluegreen's hook).
fn hook_arn(ctx: &Context) -> StepResult<&str> {
    ctx.settings.ecs_hook_arn.as_deref().ok_or_else(|| {
        StepError::LaunchFailed(
            "BLUEGREEN_ECS_HOOK_ARN is not set: bluegreen's lifecycle hook cannot be told from \
             another function (the stack sets it to EcsHookFunction's ARN)"
                .into(),
        )
    })
}

/// Why ECS would deploy `service` without bluegreen's gates, if it would: it is not on ECS's
/// blue/green, or a gated stage does not invoke bluegreen's hook — `hook_arn` (the stack's
/// function, optionally qualified) — with a timeout that rolls back. A pause hook or another
/// team's function answers for itself, and a timeout that continues would move production
/// unapproved once it passed. Other hooks beside bluegreen's
/// only add gates (ECS goes on once every hook of a stage did). Pure.
pub fn not_gated(service: &ServiceState, hook_arn: &str) -> Option<String> {
    not_gated_setup(&service.name, &service.setup, hook_arn)
}

/// [`not_gated`] for service `name` deployed as `setup` (what `doctor` reads from ECS). Pure.
pub fn not_gated_setup(name: &str, setup: &DeploymentSetup, hook_arn: &str) -> Option<String> {
    if !setup.is_ecs_blue_green() {
        return Some(format!(
            "service {name} is not on ECS's blue/green (controller {}, strategy {}): \
             traffic.engine = \"ecs\" needs deploymentConfiguration.strategy = BLUE_GREEN",
            setup.controller.as_deref().unwrap_or("ECS"),
            setup.strategy.as_deref().unwrap_or("ROLLING")
        ));
    }
    let ours = |target: Option<&str>| {
        target.is_some_and(|target| {
            target == hook_arn
                || target
                    .strip_prefix(hook_arn)
                    .is_some_and(|q| q.starts_with(':'))
        })
    };
    for stage in GATED_STAGES {
        let gated = setup.hooks.iter().any(|h| {
            h.stages.iter().any(|s| s == stage)
                && h.target_type == "AWS_LAMBDA"
                && ours(h.target_arn.as_deref())
                && h.timeout_action.as_deref() != Some("CONTINUE")
        });
        if !gated {
            return Some(format!(
                "service {} has no lifecycle hook at {stage} that invokes bluegreen's hook ({}) \
                 with a timeout that rolls back: ECS would move traffic without bluegreen's \
                 approval (register the stack's EcsHookFunctionArn at both stages with \
                 timeoutConfiguration action ROLLBACK; README \"Which engine\")",
                name, hook_arn
            ));
        }
    }
    None
}

/// Refuses to supersede another ECS deployment still going on: ECS would stop it midway
/// (someone's deployment, or a rollback).
fn refuse_foreign(listed: &[EcsDeployment], service: &str) -> StepResult<()> {
    match listed.iter().find(|d| d.is_ongoing()) {
        Some(other) => Err(StepError::LaunchFailed(format!(
            "ECS deployment {} ({}, {}) is going on on {service}: bluegreen does not supersede \
             it; push again once it ended",
            other.arn,
            other.status,
            other.lifecycle_stage.as_deref().unwrap_or("no stage")
        ))),
        None => Ok(()),
    }
}

/// The newest of the service's deployments that rolls out this deployment's revision.
async fn own_deployment(
    ctx: &Context,
    listed: &[EcsDeployment],
    preprod: &PreprodState,
) -> StepResult<Option<EcsDeployment>> {
    for candidate in listed.iter().take(LOOK_BACK) {
        let Some(revision) = &candidate.target_revision else {
            continue;
        };
        let revision = ctx
            .ports
            .service_deployments
            .service_revision(revision)
            .await?;
        if revision.task_definition == preprod.task_definition_arn {
            return Ok(Some(candidate.clone()));
        }
    }
    Ok(None)
}

/// The deployment's ECS deployment as ECS describes it now: the recorded one, else the one
/// found by its revision — among those going on, then the newest listed — and then recorded.
async fn identified(
    ctx: &Context,
    deployment: &Deployment,
    preprod: &PreprodState,
) -> StepResult<Option<EcsDeployment>> {
    let deployments = &ctx.ports.service_deployments;
    if let Some(arn) = &preprod.ecs_deployment {
        return deployments.service_deployment(arn).await;
    }
    let cluster = &deployment.config.cluster;
    let mut own = None;
    for listed in [
        deployments
            .ongoing_service_deployments(cluster, &preprod.service)
            .await?,
        deployments
            .service_deployments(cluster, &preprod.service)
            .await?,
    ] {
        own = own_deployment(ctx, &listed, preprod).await?;
        if own.is_some() {
            break;
        }
    }
    if let Some(own) = &own {
        record_ecs_deployment(ctx, deployment, preprod, &own.arn).await?;
    }
    Ok(own)
}

async fn record_ecs_deployment(
    ctx: &Context,
    deployment: &Deployment,
    preprod: &PreprodState,
    arn: &str,
) -> StepResult<()> {
    let state = PreprodState {
        ecs_deployment: Some(arn.to_owned()),
        ..preprod.clone()
    };
    Records::new(ctx)
        .update(&deployment.deployment_id, Change::new().preprod(&state))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::compute::LifecycleHook;

    fn at(status: &str, stage: &str) -> EcsDeployment {
        EcsDeployment {
            arn: "arn:aws:ecs:us-east-1:1:service-deployment/c/s/1".into(),
            status: status.into(),
            status_reason: Some("because".into()),
            lifecycle_stage: Some(stage.into()),
            target_revision: None,
        }
    }

    fn kind(rollout: Rollout) -> &'static str {
        match rollout {
            Rollout::InProgress(_) => "wait",
            Rollout::Completed(_) => "done",
            Rollout::Failed(_) => "failed",
        }
    }

    #[test]
    fn the_launch_is_done_only_while_ecs_holds_at_the_approval_gate() {
        for (status, stage, expected) in [
            ("PENDING", "RECONCILE_SERVICE", "wait"),
            ("IN_PROGRESS", "PRE_SCALE_UP", "wait"),
            ("IN_PROGRESS", "TEST_TRAFFIC_SHIFT", "wait"),
            ("IN_PROGRESS", "POST_TEST_TRAFFIC_SHIFT", "done"),
            // Past the gate: only a missing hook lets ECS there before the approval.
            ("IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", "failed"),
            ("IN_PROGRESS", "BAKE_TIME", "failed"),
            ("SUCCESSFUL", "CLEAN_UP", "failed"),
            ("ROLLBACK_IN_PROGRESS", "POST_TEST_TRAFFIC_SHIFT", "failed"),
            ("ROLLBACK_SUCCESSFUL", "TEST_TRAFFIC_SHIFT", "failed"),
            ("STOP_REQUESTED", "POST_TEST_TRAFFIC_SHIFT", "failed"),
            ("STOPPED", "POST_TEST_TRAFFIC_SHIFT", "failed"),
        ] {
            assert_eq!(
                kind(launch_stands(&at(status, stage))),
                expected,
                "{status} {stage}"
            );
        }
    }

    /// An unlock refused while ECS goes on says what actually ends it: waiting while ECS rolls
    /// back or completes past the bake (a stop then would roll a baked release back), the
    /// deployment's ending (or a stop in ECS) while it holds at a gate.
    #[test]
    fn the_advice_for_an_ecs_deployment_still_going_depends_on_where_it_is() {
        let advice = |status, stage| still_going_advice(status, stage, "shop-v2");
        assert!(advice("ROLLBACK_IN_PROGRESS", "TEST_TRAFFIC_SHIFT").contains("wait"));
        for stage in ["BAKE_TIME", "CLEAN_UP"] {
            let said = advice("IN_PROGRESS", stage);
            assert!(said.contains("completes it on its own"), "{said}");
            assert!(!said.contains("stop it"), "{said}");
        }
        for stage in ["POST_TEST_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT"] {
            let said = advice("IN_PROGRESS", stage);
            assert!(said.contains("bluegreen retry shop-v2"), "{said}");
        }
    }

    #[test]
    fn an_abort_ends_once_ecs_rolled_back_and_needs_a_person_otherwise() {
        let verdict = |status: &str, overdue: bool| match abort_stands(&at(status, "X"), overdue) {
            PutBack::Done(_) => "done",
            PutBack::Waiting(_) => "wait",
            PutBack::Stuck(_) => "stuck",
        };
        for (status, in_time, overdue) in [
            ("IN_PROGRESS", "wait", "stuck"),
            ("ROLLBACK_REQUESTED", "wait", "stuck"),
            ("ROLLBACK_IN_PROGRESS", "wait", "stuck"),
            ("STOP_REQUESTED", "wait", "stuck"),
            ("ROLLBACK_SUCCESSFUL", "done", "done"),
            ("STOPPED", "done", "done"),
            ("ROLLBACK_FAILED", "stuck", "stuck"),
            // Production runs the aborted revision.
            ("SUCCESSFUL", "stuck", "stuck"),
        ] {
            assert_eq!(
                (verdict(status, false), verdict(status, true)),
                (in_time, overdue),
                "{status}"
            );
        }
    }

    #[test]
    fn only_bluegreen_s_hook_rolling_back_on_timeout_gates_a_stage() {
        let hook = "arn:aws:lambda:us-east-1:1:function:bg-ecs-hook";
        let service = |hooks: Vec<LifecycleHook>| ServiceState {
            arn: String::new(),
            name: "web".into(),
            task_definition: None,
            desired_count: 1,
            running_count: 1,
            deployments: Vec::new(),
            registries: Vec::new(),
            setup: DeploymentSetup {
                strategy: Some("BLUE_GREEN".into()),
                hooks,
                ..DeploymentSetup::default()
            },
        };
        let lambda = |arn: &str, stages: &[&str], action: Option<&str>| LifecycleHook {
            target_type: "AWS_LAMBDA".into(),
            target_arn: Some(arn.into()),
            stages: stages.iter().map(|s| (*s).to_owned()).collect(),
            timeout_minutes: None,
            timeout_action: action.map(str::to_owned),
        };
        let both = GATED_STAGES;
        let gated = |hooks, arn: Option<&str>| not_gated(&service(hooks), arn.unwrap()).is_none();
        assert!(gated(vec![lambda(hook, &both, None)], Some(hook)));
        assert!(gated(
            vec![lambda(hook, &both, Some("ROLLBACK"))],
            Some(hook)
        ));
        assert!(gated(
            vec![lambda(&format!("{hook}:live"), &both, None)],
            Some(hook)
        ));
        // One hook per stage, and another team's beside them, gate too.
        assert!(gated(
            vec![
                lambda(hook, &both[..1], None),
                lambda("arn:other", &both, None),
                lambda(hook, &both[1..], None),
            ],
            Some(hook)
        ));
        assert!(!gated(
            vec![lambda(&format!("{hook}x"), &both, None)],
            Some(hook)
        ));
        assert!(!gated(
            vec![lambda(hook, &both, Some("CONTINUE"))],
            Some(hook)
        ));
        assert!(!gated(vec![lambda(hook, &both[..1], None)], Some(hook)));
        assert!(!gated(vec![], Some(hook)));
    }
}
