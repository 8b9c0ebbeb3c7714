//! Migrate: a one-off ECS task running the configured command with the new task definition;
//! its exit code gates the pipeline.
//!
//! A task is found by its `startedBy` value (derived from the deployment) before one is
//! started, so a retry never launches a second migration. With a rehearsal configured, the
//! migration first runs against the rehearsal clone, then against production.

use aws_sdk_ecs::types::{ContainerOverride, DesiredStatus, Task, TaskOverride};

use crate::config::ServiceConfig;
use crate::context::Context;
use crate::ecs;
use crate::error::{StepError, StepResult};
use crate::naming;
use crate::poll::{CheckInput, Poll, Started, pending};
use crate::record::{Change, Deployment, LogLocation};

use super::launch_preprod::{describe_task_definition, set_env};
use super::{DeploymentRef, load_active, record_done, record_failed, start_once};

const STEP: &str = "migrate";

/// A migration phase: the rehearsal on the clone, then the real one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Rehearsal,
    Production,
}

impl Phase {
    fn kind(self) -> &'static str {
        match self {
            Phase::Rehearsal => "rehearsal",
            Phase::Production => "migrate",
        }
    }
}

/// Starts the migration (the rehearsal first, when configured).
pub async fn start(ctx: &Context, input: &DeploymentRef) -> StepResult<Started> {
    let deployment = load_active(ctx, &input.deployment_id).await?;
    let Some(migration) = deployment.config.migration.clone() else {
        return start_once(ctx, &deployment, STEP, 60, 0, Change::new()).await;
    };
    let first = if rehearsal_endpoint(&deployment).is_some() {
        Phase::Rehearsal
    } else {
        Phase::Production
    };
    ensure_task(ctx, &deployment, first, &migration.command).await?;
    start_once(
        ctx,
        &deployment,
        STEP,
        migration.timeout_seconds,
        15,
        Change::new(),
    )
    .await
}

/// Checks the migration task; starts the production run after a successful rehearsal.
pub async fn check(ctx: &Context, input: &CheckInput) -> StepResult<Poll> {
    let deployment = load_active(ctx, &input.deployment_id).await?;
    let Some(migration) = deployment.config.migration.clone() else {
        let detail = "no migration configured".to_owned();
        record_done(ctx, &deployment, STEP, &detail, Change::new()).await?;
        return Ok(Poll::Done { detail });
    };
    let now = ctx.now();
    let rehearsal = rehearsal_endpoint(&deployment).is_some();
    let phases: &[Phase] = if rehearsal {
        &[Phase::Rehearsal, Phase::Production]
    } else {
        &[Phase::Production]
    };
    let mut log = None;
    for &phase in phases {
        let task = ensure_task(ctx, &deployment, phase, &migration.command).await?;
        let task_arn = task.task_arn.clone().unwrap_or_default();
        if task.last_status.as_deref() != Some("STOPPED") {
            if now >= input.deadline {
                stop_task(
                    ctx,
                    &deployment.config,
                    &task_arn,
                    "bluegreen: migration deadline passed",
                )
                .await?;
                let err = StepError::MigrationTimedOut { task_arn };
                return Err(record_failed(ctx, &deployment, STEP, err, Change::new()).await);
            }
            let status = task.last_status.unwrap_or_default();
            return Ok(pending(
                input,
                now,
                format!("{} task {task_arn} is {status}", phase.kind()),
            ));
        }
        if let Err(err) = outcome(ctx, &deployment, &task).await {
            let err = match (phase, err) {
                (
                    Phase::Rehearsal,
                    StepError::MigrationFailed {
                        exit_code,
                        reason,
                        log_location,
                    },
                ) => StepError::MigrationFailed {
                    exit_code,
                    reason: format!("rehearsal on the clone failed: {reason}"),
                    log_location,
                },
                (_, other) => other,
            };
            return Err(record_failed(ctx, &deployment, STEP, err, Change::new()).await);
        }
        log = task_log(ctx, &deployment, &task).await;
    }
    let detail = if rehearsal {
        "rehearsal and production migration exited 0".to_owned()
    } else {
        "migration exited 0".to_owned()
    };
    // The console links the approver to this log as the migration's evidence.
    let change = match &log {
        Some(log) => Change::new().set("migration_log", log),
        None => Change::new(),
    };
    record_done(ctx, &deployment, STEP, &detail, change).await?;
    Ok(Poll::Done { detail })
}

/// Where the task's migration container logged, if it uses awslogs.
async fn task_log(ctx: &Context, deployment: &Deployment, task: &Task) -> Option<LogLocation> {
    let task_id = task.task_arn.as_deref()?.rsplit('/').next()?;
    task_log_of(ctx, task, &deployment.config.container, task_id).await
}

fn rehearsal_endpoint(deployment: &Deployment) -> Option<String> {
    deployment
        .clones
        .iter()
        .find(|c| c.purpose == "rehearsal")
        .and_then(|c| c.endpoint.clone())
}

/// Finds the phase's task by `startedBy`, or starts it; records its ARN.
async fn ensure_task(
    ctx: &Context,
    deployment: &Deployment,
    phase: Phase,
    command: &[String],
) -> StepResult<Task> {
    let started_by = naming::started_by(&deployment.deployment_id, phase.kind());
    if let Some(task) = find_task(ctx, &deployment.config, &started_by).await? {
        return Ok(task);
    }
    let env_override = match phase {
        Phase::Rehearsal => rehearsal_endpoint(deployment)
            .map(|endpoint| (deployment.config.database.endpoint_env.clone(), endpoint)),
        Phase::Production => None,
    };
    let task = run_task(ctx, deployment, &started_by, command, env_override).await?;
    let field = match phase {
        Phase::Rehearsal => "rehearsal_task_arn",
        Phase::Production => "migration_task_arn",
    };
    crate::record::Records::new(ctx)
        .update(
            &deployment.deployment_id,
            Change::new().set(field, &task.task_arn),
        )
        .await?;
    Ok(task)
}

/// Runs a one-off task of the deployment's pre-prod task definition with the service's
/// network configuration and a command override. Used by migrate and rollback.
pub(crate) async fn run_task(
    ctx: &Context,
    deployment: &Deployment,
    started_by: &str,
    command: &[String],
    env_override: Option<(String, String)>,
) -> StepResult<Task> {
    let config = &deployment.config;
    let preprod = deployment
        .preprod
        .as_ref()
        .ok_or_else(|| StepError::EventMalformed("migration before pre-prod launch".into()))?;
    let service = ecs::describe_service(ctx, &config.cluster, &preprod.service).await?;
    let mut environment = None;
    if let Some((name, value)) = env_override {
        set_env(&mut environment, &name, &value);
    }
    let overrides = TaskOverride::builder()
        .container_overrides(
            ContainerOverride::builder()
                .name(&config.container)
                .set_command(Some(command.to_vec()))
                .set_environment(environment)
                .build(),
        )
        .build();
    let out = ctx
        .ecs
        .run_task()
        .cluster(&config.cluster)
        .task_definition(&preprod.task_definition_arn)
        .count(1)
        .started_by(started_by)
        .overrides(overrides)
        .set_network_configuration(service.network_configuration)
        .set_launch_type(service.launch_type)
        .set_capacity_provider_strategy(
            service.capacity_provider_strategy.filter(|s| !s.is_empty()),
        )
        .set_platform_version(service.platform_version)
        .tags(ecs::tag(naming::TAG_DEPLOYMENT, &deployment.deployment_id))
        .send()
        .await
        .map_err(|e| StepError::from_sdk("ecs:RunTask", e))?;
    if let Some(failure) = out.failures.unwrap_or_default().into_iter().next() {
        return Err(StepError::MigrationFailed {
            exit_code: None,
            reason: format!(
                "RunTask failed: {} {}",
                failure.reason.unwrap_or_default(),
                failure.detail.unwrap_or_default()
            ),
            log_location: None,
        });
    }
    out.tasks
        .unwrap_or_default()
        .into_iter()
        .next()
        .ok_or_else(|| StepError::AwsTransient {
            operation: "ecs:RunTask",
            message: "no task and no failure in the response".into(),
        })
}

/// The task started with `started_by`, running or stopped, described.
pub(crate) async fn find_task(
    ctx: &Context,
    config: &ServiceConfig,
    started_by: &str,
) -> StepResult<Option<Task>> {
    let mut arns = Vec::new();
    for status in [DesiredStatus::Running, DesiredStatus::Stopped] {
        let out = ctx
            .ecs
            .list_tasks()
            .cluster(&config.cluster)
            .started_by(started_by)
            .desired_status(status)
            .send()
            .await
            .map_err(|e| StepError::from_sdk("ecs:ListTasks", e))?;
        arns.extend(out.task_arns.unwrap_or_default());
    }
    let Some(arn) = arns.into_iter().next() else {
        return Ok(None);
    };
    let out = ctx
        .ecs
        .describe_tasks()
        .cluster(&config.cluster)
        .tasks(arn)
        .send()
        .await
        .map_err(|e| StepError::from_sdk("ecs:DescribeTasks", e))?;
    Ok(out.tasks.unwrap_or_default().into_iter().next())
}

async fn stop_task(
    ctx: &Context,
    config: &ServiceConfig,
    task_arn: &str,
    reason: &str,
) -> StepResult<()> {
    ctx.ecs
        .stop_task()
        .cluster(&config.cluster)
        .task(task_arn)
        .reason(reason)
        .send()
        .await
        .map_err(|e| StepError::from_sdk("ecs:StopTask", e))?;
    Ok(())
}

/// Stops the deployment's migration tasks that are still running (abort uses this).
pub(crate) async fn stop_running(ctx: &Context, deployment: &Deployment) -> StepResult<()> {
    for kind in ["rehearsal", "migrate"] {
        let started_by = naming::started_by(&deployment.deployment_id, kind);
        if let Some(task) = find_task(ctx, &deployment.config, &started_by).await?
            && task.last_status.as_deref() != Some("STOPPED")
        {
            let arn = task.task_arn.unwrap_or_default();
            stop_task(
                ctx,
                &deployment.config,
                &arn,
                "bluegreen: deployment aborted",
            )
            .await?;
        }
    }
    Ok(())
}

/// Success means: stopped because the essential container exited, with exit code 0.
async fn outcome(ctx: &Context, deployment: &Deployment, task: &Task) -> StepResult<()> {
    let container_name = &deployment.config.container;
    let container = task
        .containers
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|c| c.name.as_deref() == Some(container_name.as_str()));
    let exit_code = container.and_then(|c| c.exit_code);
    let stop_code = task
        .stop_code
        .as_ref()
        .map(|c| c.as_str().to_owned())
        .unwrap_or_default();
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
    let task_id = task
        .task_arn
        .as_deref()
        .and_then(|a| a.rsplit('/').next())
        .unwrap_or_default();
    let log_location = log_location(ctx, task, container_name, task_id).await;
    Err(StepError::MigrationFailed {
        exit_code,
        reason,
        log_location,
    })
}

/// `group/stream` from the task definition's awslogs configuration, for error messages.
async fn log_location(
    ctx: &Context,
    task: &Task,
    container: &str,
    task_id: &str,
) -> Option<String> {
    let log = task_log_of(ctx, task, container, task_id).await?;
    Some(match log.stream {
        Some(stream) => format!("{}/{stream}", log.group),
        None => log.group,
    })
}

/// The task's awslogs group and stream (`<prefix>/<container>/<task id>`).
async fn task_log_of(
    ctx: &Context,
    task: &Task,
    container: &str,
    task_id: &str,
) -> Option<LogLocation> {
    let td = task.task_definition_arn.as_deref()?;
    let (definition, _) = describe_task_definition(ctx, td).await.ok()?;
    let log = definition
        .container_definitions?
        .into_iter()
        .find(|c| c.name.as_deref() == Some(container))?
        .log_configuration?;
    if log.log_driver.as_str() != "awslogs" {
        return None;
    }
    let options = log.options.unwrap_or_default();
    let group = options.get("awslogs-group")?.clone();
    let stream = options
        .get("awslogs-stream-prefix")
        .map(|prefix| format!("{prefix}/{container}/{task_id}"));
    Some(LogLocation { group, stream })
}
