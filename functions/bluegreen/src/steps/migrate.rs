//! Migrate, before pre-prod launches: the migrations the database plan puts there, in order —
//! on the deployment's clone (`isolated` pre-prod's clone, or a `shared` rehearsal clone), then,
//! for `shared`/`none` with `migration.run = "before_launch"`, on production (behind the
//! maintenance page when configured). Each is a one-off ECS task of the pre-prod task
//! definition; its exit code gates the pipeline. What runs after approval is the promote step's.
//!
//! Tasks are found by `startedBy` before one is started (see [`crate::migration`]), so a retry
//! never launches a second one.

use crate::looks::Looks;
use crate::config::DbSettingForm;
use crate::context::Context;
use crate::db_guard;
use crate::db_plan::{self, MigrationTask};
use crate::ecs;
use crate::error::{StepError, StepResult};
use crate::migration::{self, Progress, Run};
use crate::poll::{CheckInput, Poll, Started};
use crate::wakes;
use crate::ports::compute::TaskDefinitionState;
use crate::record::{Change, ClonePurpose, DbClone, Deployment, LogLocation};
use crate::revisions::{self, Purpose};
use crate::secret_reference::clone_secret_name;

use crate::step_table::{OnFailure, Shape, Step};
use super::{
    DeploymentRef, load_active, record_done, record_failed, start_once, start_with_nothing_to_do,
};

/// This step's row in the step registry (see [`crate::step_table::Step`]).
pub const STEP: Step = Step {
    name: "migrate",
    state: "Migrate",
    function: "Migrate",
    timeout_seconds: 60,
    label: "Migrate",
    shape: Shape::Polling,
    on_failure: OnFailure::Abort,
    raises: &[
        "MigrationFailed",
        "MigrationTimedOut",
        "ConfigInvalid",
        "ResourceNotFound",
        "Woken",
    ],
};
const NAME: &str = STEP.name;

/// How this step's check looks (see [`crate::looks`]). The migration task's stop is an ECS
/// event: between checks the state machine waits for it (`crate::wakes`, the slow path after
/// 30 s), and a woken check looks every second for a few seconds (`DescribeTasks` may lag the
/// event). With `BLUEGREEN_WAKE_ON_EVENTS=off` it looks every second for 30 s per invocation.
pub const LOOKS: Looks = Looks {
    every_seconds: 1,
    window_seconds: 30,
    look_bound_seconds: 20,
    woken_by: &[crate::wakes::TASK_STATE_CHANGE],
};

/// Seconds before the first look at a started migration task.
const FIRST_LOOK_SECONDS: u64 = 15;

/// Where the migrations before launch stand.
enum Stage {
    /// The task started with `startedBy` (the second field) runs, until its deadline (the
    /// third: its own timeout, which no event announces).
    Running(String, String, chrono::DateTime<chrono::Utc>),
    Done {
        detail: String,
        log: Option<LogLocation>,
    },
}

/// Added to each migration's timeout in the step's own deadline: a migration starts after
/// the one before it was seen done (a check's backoff, up to a minute later) and ECS may show
/// it late; its own deadline (`migration::advance`) must come before the step's, so a slow
/// migration is stopped and reported as timed out, never cut off by the state machine.
const MIGRATION_SLACK_SECONDS: u64 = 120;

/// Starts the first migration before launch (if the plan has any).
pub async fn start(ctx: &Context, input: &DeploymentRef) -> StepResult<Started> {
    let deployment = load_active(ctx, &input.deployment_id).await?;
    let plan = db_plan::plan(&deployment.config);
    let Some(migration) = deployment
        .config
        .migration
        .as_ref()
        .filter(|_| !plan.before_launch.is_empty())
    else {
        return start_with_nothing_to_do(ctx, &deployment, NAME).await;
    };
    // Each migration has its own deadline from its own start (see `migration::advance`); the
    // step, which may run two one after the other (rehearsal, then production), looks for as
    // long as both may take.
    let started = start_once(
        ctx,
        &deployment,
        NAME,
        (migration.timeout_seconds + MIGRATION_SLACK_SECONDS) * plan.before_launch.len() as u64,
        FIRST_LOOK_SECONDS,
        Change::new(),
    )
    .await?;
    if let Err(err) = advance(ctx, &deployment, started.deadline).await {
        return Err(record_failed(ctx, &deployment, NAME, err, Change::new()).await);
    }
    Ok(started)
}

/// Looks at the current migration task; starts the next one when it succeeded.
pub async fn check(ctx: &Context, input: &CheckInput) -> StepResult<Poll> {
    let deployment = load_active(ctx, &input.deployment_id).await?;
    match advance(ctx, &deployment, input.deadline).await {
        // The task's stop is an ECS event: the state machine waits for it (`crate::wakes`).
        Ok(Stage::Running(detail, started_by, by)) => Ok(wakes::pending(
            ctx,
            input,
            detail,
            wakes::task_key(&started_by),
            by,
        )),
        Ok(Stage::Done { detail, log }) => {
            // The console links the approver to this log as the migration's evidence.
            let change = match &log {
                Some(log) => Change::new().migration_log(log),
                None => Change::new(),
            };
            record_done(ctx, &deployment, NAME, &detail, change).await?;
            Ok(Poll::Done { detail })
        }
        Err(err) => Err(record_failed(ctx, &deployment, NAME, err, Change::new()).await),
    }
}

async fn advance(
    ctx: &Context,
    deployment: &Deployment,
    deadline: chrono::DateTime<chrono::Utc>,
) -> StepResult<Stage> {
    let config = &deployment.config;
    let plan = db_plan::plan(config);
    let Some(migration) = &config.migration else {
        return Ok(Stage::Done {
            detail: "no migration configured".into(),
            log: None,
        });
    };
    if plan.before_launch.is_empty() {
        return Ok(Stage::Done {
            detail: "nothing to migrate before launch: the production migration runs after \
                     approval"
                .into(),
            log: None,
        });
    }
    let (task_definition, rehearsal_revision) =
        Box::pin(revisions_before_launch(ctx, deployment)).await?;
    let mut done = Vec::new();
    let mut log = None;
    for task in plan.before_launch {
        let (progress, note) = match task {
            // The production migration starts only after the rehearsal exited 0: once it is
            // recorded, the rehearsal is not looked up again (ECS forgets a stopped task after
            // about an hour, and a forgotten rehearsal is no failure).
            MigrationTask::OnClone if deployment.production_migration.is_some() => {
                done.push("migration on the clone exited 0".to_owned());
                continue;
            }
            MigrationTask::OnClone => {
                let clone = plan
                    .clone
                    .and_then(|purpose| deployment.clone_for(purpose))
                    .ok_or_else(|| StepError::Internal("no clone recorded by sync DB".into()))?;
                let progress = on_the_clone(
                    ctx,
                    deployment,
                    clone,
                    &migration.command,
                    rehearsal_revision.as_deref().unwrap_or(&task_definition),
                    deadline,
                )
                .await?;
                (
                    progress,
                    format!("migration on clone {} exited 0", clone.identifier),
                )
            }
            MigrationTask::Production => (
                Box::pin(on_production(ctx, deployment, &task_definition, deadline)).await?,
                "production migration exited 0".to_owned(),
            ),
            MigrationTask::Rollback => continue,
        };
        match progress {
            Progress::Running(detail) => {
                let started_by = migration::started_by(deployment, task);
                let by = migration::task_deadline(deployment, task, deadline);
                return Ok(Stage::Running(detail, started_by, by));
            }
            Progress::Succeeded(task_log) => {
                log = task_log.or(log);
                done.push(note);
            }
        }
    }
    Ok(Stage::Done {
        detail: done.join("; "),
        log,
    })
}

/// Pre-prod's revision and, with `database.secret` and a rehearsal, the rehearsal's own —
/// registered first: the family's newest revision (what `run-task --task-definition
/// <family>` starts) is then pre-prod's, on production's secret in `shared`, never the
/// rehearsal's, whose secret goes with the deployment. (`isolated` pre-prod's own revision
/// reads its clone's until the production revision is registered after approval.)
async fn revisions_before_launch(
    ctx: &Context,
    deployment: &Deployment,
) -> StepResult<(String, Option<String>)> {
    let config = &deployment.config;
    let rehearsal = match db_plan::plan(config).clone {
        Some(ClonePurpose::Rehearsal) if config.database.form() == DbSettingForm::Secret => {
            Some(revisions::ensure(ctx, deployment, Purpose::Rehearsal).await?)
        }
        _ => None,
    };
    let preprod = revisions::ensure(ctx, deployment, Purpose::Preprod).await?;
    Ok((preprod, rehearsal))
}

/// The production migration before launch, on `preprod` — or, with `preprod.environment`,
/// on the production revision (recorded, so the promote's roll-out and a rollback command use
/// the same one): production's migration never runs with pre-prod's own variables.
async fn on_production(
    ctx: &Context,
    deployment: &Deployment,
    preprod: &str,
    deadline: chrono::DateTime<chrono::Utc>,
) -> StepResult<Progress> {
    let task_definition = if deployment.config.preprod.environment.is_empty() {
        preprod.to_owned()
    } else {
        revisions::ensure(ctx, deployment, Purpose::Production).await?
    };
    db_guard::ensure_before_production_migration(ctx, deployment, &task_definition).await?;
    migration::advance_production(ctx, deployment, &task_definition, deadline).await
}

/// The migration run against `clone` (the rehearsal, or `isolated` pre-prod's) on
/// `task_definition`, pointed at the clone: by environment overrides, or — with
/// `database.secret` — by the revision itself reading the clone's secret (ECS cannot override
/// a secret). A failure names the clone.
async fn on_the_clone(
    ctx: &Context,
    deployment: &Deployment,
    clone: &DbClone,
    command: &[String],
    task_definition: &str,
    deadline: chrono::DateTime<chrono::Utc>,
) -> StepResult<Progress> {
    let definition = ecs::describe_task_definition(ctx, task_definition).await?;
    let (env, env_of_others) = if deployment.config.database.form() == DbSettingForm::Secret {
        ensure_reads_the_clones_secret(deployment, clone, &definition)?;
        (Vec::new(), Vec::new())
    } else {
        clone_overrides(deployment, clone, &definition)?
    };
    let run = Run {
        task: MigrationTask::OnClone,
        command,
        task_definition,
        env,
        env_of_others,
    };
    migration::advance(ctx, deployment, &run, deadline)
        .await
        .map_err(|e| on_clone(e, &clone.identifier))
}

/// Overrides of the command container and of every other that reads the database setting,
/// pointed at `clone`: a worker beside the command's container would otherwise rehearse on
/// production. `(env, env_of_others)`, as [`Run`] takes them.
#[allow(clippy::type_complexity)]
fn clone_overrides(
    deployment: &Deployment,
    clone: &DbClone,
    definition: &TaskDefinitionState,
) -> StepResult<(Vec<(String, String)>, Vec<(String, Vec<(String, String)>)>)> {
    let config = &deployment.config;
    let endpoint = clone.endpoint.clone().ok_or_else(|| {
        StepError::Internal(format!("clone {} has no endpoint", clone.identifier))
    })?;
    let (main, others): (Vec<_>, Vec<_>) = revisions::on_the_clone(config, definition, &endpoint)?
        .into_iter()
        .partition(|(container, ..)| *container == config.container);
    if main.is_empty() {
        // Registering the revision refuses this; a migration meant for a clone never runs
        // without its own container pointed at it.
        return Err(StepError::ConfigInvalid(vec![format!(
            "database: container {} of {} sets no {}: the migration would not run on the clone",
            config.container,
            definition.arn,
            config.database.setting()
        )]));
    }
    Ok((
        main.into_iter()
            .map(|(_, name, value)| (name, value))
            .collect(),
        others
            .into_iter()
            .map(|(container, name, value)| (container, vec![(name, value)]))
            .collect(),
    ))
}

/// `database.secret`: the migration runs only when `definition`'s command container reads the
/// clone's own secret (isolated pre-prod's revision; the rehearsal's own for `shared`).
fn ensure_reads_the_clones_secret(
    deployment: &Deployment,
    clone: &DbClone,
    definition: &TaskDefinitionState,
) -> StepResult<()> {
    let config = &deployment.config;
    let setting = config.database.setting();
    let reads_the_clone = definition
        .secret_from(&config.container, setting)
        .is_some_and(|from| {
            from.contains(&clone_secret_name(&deployment.service, &clone.identifier))
        });
    if reads_the_clone {
        return Ok(());
    }
    Err(StepError::ConfigInvalid(vec![format!(
        "database.secret: container {} of {} does not read {setting} from the clone's secret: \
         the migration would not run on the clone",
        config.container, definition.arn
    )]))
}

/// Says that a failure happened on the clone, not on production.
fn on_clone(err: StepError, clone: &str) -> StepError {
    match err {
        StepError::MigrationFailed {
            exit_code,
            reason,
            log_location,
        } => StepError::MigrationFailed {
            exit_code,
            reason: format!("on the clone {clone} (production untouched): {reason}"),
            log_location,
        },
        other => other,
    }
}
