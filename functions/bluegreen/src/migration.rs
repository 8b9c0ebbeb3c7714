//! Migration tasks: the one-off ECS tasks that run the configured migration (against a clone or
//! production) and the rollback migration. A task is found by its `startedBy` value (derived
//! from the deployment and the task's kind) before one is started, so a retry never launches a
//! second one. The production and rollback migrations are tracked on the record, because
//! whether production's schema changed decides what abort and rollback must do — and ECS
//! forgets stopped tasks after an hour, the record does not.

use chrono::{DateTime, Duration, Utc};

use crate::context::Context;
use crate::db_plan::MigrationTask;
use crate::ecs;
use crate::error::{StepError, StepResult};
use crate::maintenance;
use crate::naming;
use crate::ports::compute::{OneOff, TaskState as Task};
use crate::record::{Change, Deployment, LogLocation, Records, TaskState, TrackedTask};

/// How a migration task stands after one look.
#[derive(Debug)]
pub enum Progress {
    /// Still running: what it is doing.
    Running(String),
    /// Exited 0; where it logged.
    Succeeded(Option<LogLocation>),
}

/// What to run: which migration, which command, on which task definition, with which
/// environment overrides.
pub struct Run<'a> {
    /// Which migration.
    pub task: MigrationTask,
    /// The command.
    pub command: &'a [String],
    /// The task definition (the pushed image; its database setting decides where it runs).
    pub task_definition: &'a str,
    /// Environment overrides, `(name, value)`.
    pub env: Vec<(String, String)>,
}

/// The `startedBy` value of a deployment's migration task.
pub fn started_by(deployment: &Deployment, task: MigrationTask) -> String {
    naming::started_by(&deployment.deployment_id, task.kind())
}

/// Looks once at the migration task (starting it if it is not there yet): running, succeeded,
/// or an error (`MigrationFailed`, or `MigrationTimedOut` after stopping it at `deadline`).
pub async fn advance(
    ctx: &Context,
    deployment: &Deployment,
    run: &Run<'_>,
    deadline: DateTime<Utc>,
) -> StepResult<Progress> {
    // A tracked migration that already ended is never looked up or started again: ECS forgets
    // stopped tasks after about an hour, and a second `down 1` would revert a good migration.
    match tracked(deployment, run.task).map(|t| (t.state, t.detail.clone())) {
        Some((TaskState::Succeeded, _)) => {
            return Ok(Progress::Succeeded(deployment.migration_log.clone()));
        }
        Some((TaskState::Failed, detail)) => {
            return Err(StepError::MigrationFailed {
                exit_code: None,
                reason: format!("the {} already failed: {detail}", run.task.words()),
                log_location: None,
            });
        }
        Some((TaskState::Running, _)) | None => {}
    }
    let task = ensure(ctx, deployment, run).await?;
    let task_arn = task.arn.clone();
    if !task.is_stopped() {
        if ctx.now() >= deadline {
            ctx.ports
                .compute
                .stop_task(
                    &deployment.config.cluster,
                    &task_arn,
                    "bluegreen: migration deadline passed",
                )
                .await?;
            let err = StepError::MigrationTimedOut { task_arn };
            track(
                ctx,
                deployment,
                run.task,
                &task,
                TaskState::Failed,
                &err.to_string(),
            )
            .await?;
            return Err(err);
        }
        let status = &task.last_status;
        return Ok(Progress::Running(format!(
            "{} task {task_arn} is {status}",
            run.task.words()
        )));
    }
    let result = outcome(ctx, deployment, &task).await;
    let (state, detail) = match &result {
        Ok(()) => (TaskState::Succeeded, "exit code 0".to_owned()),
        Err(err) => (TaskState::Failed, err.to_string()),
    };
    track(ctx, deployment, run.task, &task, state, &detail).await?;
    result?;
    Ok(Progress::Succeeded(task_log(ctx, deployment, &task).await))
}

/// The production migration, behind the maintenance page when configured: switched on before
/// the task starts and off as soon as it stopped, whatever its outcome.
pub async fn advance_production(
    ctx: &Context,
    deployment: &Deployment,
    task_definition: &str,
    deadline: DateTime<Utc>,
) -> StepResult<Progress> {
    let Some(migration) = &deployment.config.migration else {
        return Ok(Progress::Succeeded(None));
    };
    if deployment.production_migrated() {
        return Ok(Progress::Succeeded(deployment.migration_log.clone()));
    }
    if migration.maintenance {
        crate::fence::guard(ctx, &deployment.deployment_id, "the maintenance page").await?;
        maintenance::switch_on(ctx, deployment).await?;
    }
    let run = Run {
        task: MigrationTask::Production,
        command: &migration.command,
        task_definition,
        env: Vec::new(),
    };
    let progress = advance(ctx, deployment, &run, deadline).await;
    if !matches!(progress, Ok(Progress::Running(_))) && migration.maintenance {
        maintenance::switch_off(ctx, deployment).await?;
    }
    progress
}

/// Finds the task by `startedBy`, or starts it; records its ARN (and, for the production and
/// rollback migrations, that it runs).
async fn ensure(ctx: &Context, deployment: &Deployment, run: &Run<'_>) -> StepResult<Task> {
    let config = &deployment.config;
    let started_by = started_by(deployment, run.task);
    let task = match ctx
        .ports
        .compute
        .find_task(&config.cluster, &started_by)
        .await?
    {
        Some(task) => task,
        None if tracked(deployment, run.task).is_some() => {
            // Recorded as started, but ECS no longer knows it: starting another could run the
            // migration twice. A person must look.
            return Err(StepError::MigrationFailed {
                exit_code: None,
                reason: format!(
                    "the {} was started but ECS no longer knows its task",
                    run.task.words()
                ),
                log_location: None,
            });
        }
        None => {
            // A step starting a migration stops here once an abort was requested; the
            // rollback migration is the ending's own and is not fenced.
            if run.task != MigrationTask::Rollback {
                crate::fence::guard(
                    ctx,
                    &deployment.deployment_id,
                    &format!("starting the {}", run.task.words()),
                )
                .await?;
            }
            let target = deployment.target_slot()?;
            let started = ctx
                .ports
                .compute
                .run_task(&OneOff {
                    cluster: config.cluster.clone(),
                    network_of: config.slots.get(target).service.clone(),
                    task_definition: run.task_definition.to_owned(),
                    container: config.container.clone(),
                    command: run.command.to_vec(),
                    env: run.env.clone(),
                    // One task per deployment and kind, whatever happens to the answer (the
                    // startedBy lookup above cannot see a task ECS has not listed yet).
                    client_token: started_by.clone(),
                    started_by: started_by.clone(),
                    tags: vec![ecs::tag(naming::TAG_DEPLOYMENT, &deployment.deployment_id)],
                })
                .await?;
            started.map_err(|reason| StepError::MigrationFailed {
                exit_code: None,
                reason: format!("{}: {reason}", run.task.words()),
                log_location: None,
            })?
        }
    };
    let arn = task.arn.clone();
    let change = match run.task {
        MigrationTask::OnClone if deployment.rehearsal_task_arn.as_deref() != Some(&arn) => {
            Some(Change::new().rehearsal_task_arn(&arn))
        }
        MigrationTask::Production if deployment.production_migration.is_none() => {
            Some(Change::new().production_migration(&running(&arn, ctx.now())))
        }
        MigrationTask::Rollback if deployment.rollback_migration.is_none() => {
            Some(Change::new().rollback_migration(&running(&arn, ctx.now())))
        }
        _ => None,
    };
    if let Some(change) = change {
        Records::new(ctx)
            .update(&deployment.deployment_id, change)
            .await?;
    }
    Ok(task)
}

fn running(task_arn: &str, at: DateTime<Utc>) -> TrackedTask {
    TrackedTask {
        task_arn: task_arn.to_owned(),
        started_at: at,
        state: TaskState::Running,
        detail: String::new(),
    }
}

/// The record of a tracked (production or rollback) migration, once started.
fn tracked(deployment: &Deployment, kind: MigrationTask) -> Option<&TrackedTask> {
    match kind {
        MigrationTask::Production => deployment.production_migration.as_ref(),
        MigrationTask::Rollback => deployment.rollback_migration.as_ref(),
        MigrationTask::OnClone => None,
    }
}

/// Records how a tracked (production or rollback) migration ended.
async fn track(
    ctx: &Context,
    deployment: &Deployment,
    kind: MigrationTask,
    task: &Task,
    state: TaskState,
    detail: &str,
) -> StepResult<()> {
    if kind == MigrationTask::OnClone {
        return Ok(());
    }
    let arn = task.arn.clone();
    let started_at = tracked(deployment, kind)
        .map(|t| t.started_at)
        .unwrap_or_else(|| ctx.now());
    let tracked = TrackedTask {
        task_arn: arn,
        started_at,
        state,
        detail: detail.to_owned(),
    };
    Records::new(ctx)
        .update(
            &deployment.deployment_id,
            match kind {
                MigrationTask::Rollback => Change::new().rollback_migration(&tracked),
                _ => Change::new().production_migration(&tracked),
            },
        )
        .await
}

/// When a tracked migration started `at` must have finished.
pub fn deadline_of(deployment: &Deployment, at: DateTime<Utc>) -> DateTime<Utc> {
    let timeout = deployment
        .config
        .migration
        .as_ref()
        .map(|m| m.timeout_seconds)
        .unwrap_or_default();
    at + Duration::seconds(timeout as i64)
}

/// The deployment's migration tasks (on the clone, on production, rollback) that ECS does not
/// report stopped, as `the <kind> <task ARN>`.
pub async fn still_running(ctx: &Context, deployment: &Deployment) -> StepResult<Vec<String>> {
    running_of(
        ctx,
        deployment,
        &[
            MigrationTask::OnClone,
            MigrationTask::Production,
            MigrationTask::Rollback,
        ],
    )
    .await
}

async fn running_of(
    ctx: &Context,
    deployment: &Deployment,
    kinds: &[MigrationTask],
) -> StepResult<Vec<String>> {
    let mut running = Vec::new();
    for &kind in kinds {
        if let Some(task) = ctx
            .ports
            .compute
            .find_task(&deployment.config.cluster, &started_by(deployment, kind))
            .await?
            && !task.is_stopped()
        {
            running.push(format!("the {} {}", kind.words(), task.arn));
        }
    }
    Ok(running)
}

/// The deployment's migration tasks that [`stop_running`] stops (on the clone, on production)
/// and that ECS does not report stopped yet, as `the <kind> <task ARN>`.
pub async fn stopping(ctx: &Context, deployment: &Deployment) -> StepResult<Vec<String>> {
    running_of(
        ctx,
        deployment,
        &[MigrationTask::OnClone, MigrationTask::Production],
    )
    .await
}

/// Stops the deployment's migration tasks that still run (abort). A production migration
/// stopped here is recorded as failed: it may have partly applied.
pub async fn stop_running(ctx: &Context, deployment: &Deployment) -> StepResult<Vec<String>> {
    let mut stopped = Vec::new();
    for kind in [MigrationTask::OnClone, MigrationTask::Production] {
        let started_by = started_by(deployment, kind);
        if let Some(task) = ctx
            .ports
            .compute
            .find_task(&deployment.config.cluster, &started_by)
            .await?
            && !task.is_stopped()
        {
            let arn = task.arn.clone();
            ctx.ports
                .compute
                .stop_task(
                    &deployment.config.cluster,
                    &arn,
                    "bluegreen: deployment aborted",
                )
                .await?;
            track(
                ctx,
                deployment,
                kind,
                &task,
                TaskState::Failed,
                "stopped by abort while it ran",
            )
            .await?;
            stopped.push(format!("stopped the {} {arn}", kind.words()));
        }
    }
    Ok(stopped)
}

/// Where the task's migration container logged, if it uses awslogs.
async fn task_log(ctx: &Context, deployment: &Deployment, task: &Task) -> Option<LogLocation> {
    task_log_of(ctx, task, &deployment.config.container, task.id()).await
}

/// Success means: stopped because the essential container exited, with exit code 0.
async fn outcome(ctx: &Context, deployment: &Deployment, task: &Task) -> StepResult<()> {
    let container_name = &deployment.config.container;
    let container = task.containers.iter().find(|c| c.name == *container_name);
    let exit_code = container.and_then(|c| c.exit_code);
    let stop_code = task.stop_code.clone().unwrap_or_default();
    let essential_exit = stop_code.is_empty() || stop_code == "EssentialContainerExited";
    if essential_exit && exit_code == Some(0) {
        return Ok(());
    }
    let mut reason = match (stop_code.as_str(), task.stopped_reason.as_deref()) {
        ("", None) => "task stopped".to_owned(),
        ("", Some(r)) => r.to_owned(),
        (code, None) => code.to_owned(),
        (code, Some(r)) => format!("{code}: {r}"),
    };
    if let Some(container_reason) = container.and_then(|c| c.reason.as_deref()) {
        reason.push_str(&format!(" ({container_reason})"));
    }
    if exit_code.is_none() {
        reason.push_str(" — the container reported no exit code");
    }
    let log_location = log_location(ctx, task, container_name, task.id()).await;
    Err(StepError::MigrationFailed {
        exit_code,
        reason,
        log_location,
    })
}

/// `log group G, stream S` from the task definition's awslogs configuration, for error
/// messages (a group name may itself contain `/`, so the two are named, not joined).
async fn log_location(
    ctx: &Context,
    task: &Task,
    container: &str,
    task_id: &str,
) -> Option<String> {
    let log = task_log_of(ctx, task, container, task_id).await?;
    Some(match log.stream {
        Some(stream) => format!("log group {}, stream {stream}", log.group),
        None => format!("log group {}", log.group),
    })
}

/// The task's awslogs group and stream (`<prefix>/<container>/<task id>`).
async fn task_log_of(
    ctx: &Context,
    task: &Task,
    container: &str,
    task_id: &str,
) -> Option<LogLocation> {
    let definition = ecs::describe_task_definition(ctx, &task.task_definition)
        .await
        .ok()?;
    let (driver, options) = definition.container(container)?.log.clone()?;
    if driver != "awslogs" {
        return None;
    }
    let option = |name: &str| {
        options
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let group = option("awslogs-group")?;
    let stream =
        option("awslogs-stream-prefix").map(|prefix| format!("{prefix}/{container}/{task_id}"));
    Some(LogLocation { group, stream })
}
