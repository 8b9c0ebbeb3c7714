//! Promote: after approval and before any production traffic moves, make the approved slot
//! ready for production, as the database plan says:
//!
//! - `isolated`: register the slot's production revision (the live slot's task definition with
//!   the pushed image: production's database setting, copied from AWS), run the production
//!   migration with it, roll the slot out on it, health-check it again through the test
//!   listener, and verify it no longer references a clone;
//! - `shared`/`none` with `migration.run = "after_approval"`: run the production migration
//!   (behind the maintenance page when configured) and health-check again;
//! - otherwise nothing.
//!
//! A failure here aborts: production traffic never moved. Each check walks the phases from the
//! start and asks AWS where each stands (the migration task by `startedBy`, the service's
//! primary deployment), so a retry or a lost response repeats nothing.

use crate::looks::Looks;
use crate::alarms;
use crate::context::Context;
use crate::db_guard;
use crate::db_plan::{self, AfterApproval};
use crate::engine;
use crate::ecs::Rollout;
use crate::error::{StepError, StepResult};
use crate::health::{self, Assessment};
use crate::migration::{self, Progress};
use crate::poll::{CheckInput, Poll, Started, pending};
use crate::record::{Change, Deployment, Status};
use crate::revisions::{self, Purpose};

use crate::step_table::{OnFailure, Shape, Step};
use super::{
    DeploymentRef, load_active, record_done, record_failed, record_healthy, start_once,
    start_with_nothing_to_do,
};

/// This step's row in the step registry (see [`crate::step_table::Step`]).
pub const STEP: Step = Step {
    name: "promote",
    state: "Promote",
    function: "Promote",
    timeout_seconds: 150,
    label: "Promote",
    shape: Shape::Polling,
    on_failure: OnFailure::Abort,
    raises: &[
        "MigrationFailed",
        "MigrationTimedOut",
        "LaunchFailed",
        "HealthCheckFailed",
        "ProductionOnClone",
        "MaintenanceFailed",
        "ApprovalRejected",
        "AlarmFiring",
        "ConfigInvalid",
        "ResourceNotFound",
    ],
};
const NAME: &str = STEP.name;

/// How this step's check looks (see [`crate::looks`]). Every second; a look may run the production migration's checks and a round of smoke
/// checks (up to [`crate::config::SMOKE_BUDGET_SECONDS`]), so the window is short.
pub const LOOKS: Looks = Looks {
    every_seconds: 1,
    window_seconds: 10,
    look_bound_seconds: crate::config::SMOKE_BUDGET_SECONDS + 10,
    woken_by: &[],
};

/// Seconds before the first look.
const FIRST_LOOK_SECONDS: u64 = 10;

/// Re-checks the approval, registers the production revision (isolated) and starts the
/// production migration.
pub async fn start(ctx: &Context, input: &DeploymentRef) -> StepResult<Started> {
    let deployment = load_active(ctx, &input.deployment_id).await?;
    deployment.ensure_approved()?;
    let Some(after) = db_plan::plan(&deployment.config).after_approval else {
        return start_with_nothing_to_do(ctx, &deployment, NAME).await;
    };
    let started = start_once(
        ctx,
        &deployment,
        NAME,
        timeout_seconds(&deployment),
        FIRST_LOOK_SECONDS,
        Change::new().status(Status::Promoting),
    )
    .await?;
    if let Err(err) = advance(ctx, &deployment, after).await {
        return Err(record_failed(ctx, &deployment, NAME, err, Change::new()).await);
    }
    Ok(started)
}

/// Walks the phases; done when the slot is migrated, rolled out and healthy on production's
/// database.
pub async fn check(ctx: &Context, input: &CheckInput) -> StepResult<Poll> {
    let deployment = load_active(ctx, &input.deployment_id).await?;
    let Some(after) = db_plan::plan(&deployment.config).after_approval else {
        if let Err(err) = ensure_no_alarm(ctx, &deployment).await {
            return Err(record_failed(ctx, &deployment, NAME, err, Change::new()).await);
        }
        let detail = "nothing to do after approval; no alarm firing".to_owned();
        record_done(ctx, &deployment, NAME, &detail, Change::new()).await?;
        return Ok(Poll::Done { detail });
    };
    let now = ctx.now();
    match advance(ctx, &deployment, after).await {
        Ok(Phase::Waiting(detail)) if now >= input.deadline => {
            let err = StepError::HealthCheckFailed(format!(
                "not ready for production by the deadline: {detail}"
            ));
            Err(record_failed(ctx, &deployment, NAME, err, Change::new()).await)
        }
        Ok(Phase::Waiting(detail)) => Ok(pending(input, now, detail)),
        Ok(Phase::Ready(detail)) => {
            if let Err(err) = ensure_no_alarm(ctx, &deployment).await {
                return Err(record_failed(ctx, &deployment, NAME, err, Change::new()).await);
            }
            record_healthy(ctx, &deployment, NAME, &detail).await?;
            Ok(Poll::Done { detail })
        }
        Err(err) => Err(record_failed(ctx, &deployment, NAME, err, Change::new()).await),
    }
}

/// Promote is the last step before the switch: a service whose alarms already fire must not
/// get traffic (the bake would only roll it back after users met it). Refused with
/// [`StepError::AlarmFiring`]; the deployment aborts with production untouched.
async fn ensure_no_alarm(ctx: &Context, deployment: &Deployment) -> StepResult<()> {
    let firing = alarms::firing(ctx, &deployment.config.bake.alarms).await?;
    if firing.is_empty() {
        Ok(())
    } else {
        Err(StepError::AlarmFiring(format!(
            "{}; nothing was switched",
            firing.join("; ")
        )))
    }
}

enum Phase {
    Waiting(String),
    Ready(String),
}

async fn advance(
    ctx: &Context,
    deployment: &Deployment,
    after: AfterApproval,
) -> StepResult<Phase> {
    let config = &deployment.config;
    let target = deployment.target_slot()?;
    let mut done = Vec::new();
    let task_definition = if after.repoint {
        let td = revisions::ensure(ctx, deployment, Purpose::Production).await?;
        let what = if config.database.strategy == crate::config::DbStrategy::Isolated {
            format!(
                "re-pointed to production's database ({})",
                config.database.setting()
            )
        } else {
            "given production's environment (without preprod.environment)".to_owned()
        };
        done.push(format!("{} {what}", config.slots.get(target).service));
        td
    } else {
        revisions::ensure(ctx, deployment, Purpose::Preprod).await?
    };
    if after.migrate {
        db_guard::ensure_before_production_migration(ctx, deployment, &task_definition).await?;
        let started_at = deployment
            .production_migration
            .as_ref()
            .map(|m| m.started_at)
            .unwrap_or_else(|| ctx.now());
        let deadline = migration::deadline_of(deployment, started_at);
        match migration::advance_production(ctx, deployment, &task_definition, deadline).await? {
            Progress::Running(detail) => return Ok(Phase::Waiting(detail)),
            Progress::Succeeded(_) => done.push("production migration exited 0".into()),
        }
    }
    let desired = deployment
        .preprod
        .as_ref()
        .map(|p| p.desired_count)
        .ok_or_else(|| StepError::Internal("promote before pre-prod launched".into()))?;
    let engine = engine::of(config);
    if after.repoint {
        match engine.repoint(ctx, deployment, &task_definition).await? {
            Rollout::InProgress(progress) => return Ok(Phase::Waiting(progress)),
            Rollout::Failed(reason) => return Err(StepError::LaunchFailed(reason)),
            Rollout::Completed(detail) => done.push(detail),
        }
    }
    let assessment = match engine.preprod_route(ctx, deployment).await? {
        Ok(route) => health::assess(ctx, config, &route, desired).await?,
        Err(missing) => Assessment::Waiting(missing),
    };
    match assessment {
        Assessment::Waiting(evidence) => return Ok(Phase::Waiting(evidence)),
        Assessment::Failed(evidence) => {
            return Err(StepError::HealthCheckFailed(format!(
                "after approval, on production's database: {evidence}"
            )));
        }
        Assessment::Passed(report) => done.push(format!("health re-checked: {report}")),
    }
    db_guard::ensure_production_database(ctx, deployment, target).await?;
    Ok(Phase::Ready(done.join("; ")))
}

/// The migration, the rollout and the health re-check, one after the other.
fn timeout_seconds(deployment: &Deployment) -> u64 {
    let config = &deployment.config;
    config
        .migration
        .as_ref()
        .map(|m| m.timeout_seconds)
        .unwrap_or_default()
        + config.preprod.launch_timeout_seconds
        + config.health.timeout_seconds
}
