//! Migration tasks: the one-off ECS tasks that run the configured migration (against a clone or
//! production) and the rollback migration. A task is found by its recorded ARN or its
//! `startedBy` value (derived from the deployment and the task's kind) before one is started,
//! and started with that value as its client token, so a retry never launches a second one.
//! The production and rollback migrations are tracked on the record, because whether
//! production's schema changed decides what abort and rollback must do — and ECS forgets
//! stopped tasks after an hour, the record does not.

use chrono::{DateTime, Duration, Utc};

use crate::config::MigrationCapacity;
use crate::context::Context;
use crate::db_plan::MigrationTask;
use crate::ecs;
use crate::error::{StepError, StepResult};
use crate::maintenance;
use crate::naming;
use crate::ports::compute::{OneOff, TaskState as Task};
use crate::record::{
    Change, Deployment, LogLocation, MigrationStarting, Records, TaskState, TrackedTask,
};

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
    /// Other containers' overrides (see [`OneOff::env_of_others`]).
    pub env_of_others: Vec<(String, Vec<(String, String)>)>,
}

/// The `startedBy` value of a deployment's migration task (also its `RunTask` client token).
/// A rollback migration run again after a retry (see
/// [`Deployment::failed_rollback_migrations`]) has its own — `rollback2`, `rollback3` — or
/// ECS would answer the failed task again for the same token, and the lookup would find it.
pub fn started_by(deployment: &Deployment, task: MigrationTask) -> String {
    let earlier = deployment.failed_rollback_migrations.len();
    if task == MigrationTask::Rollback && earlier > 0 {
        let kind = format!("{}{}", task.kind(), earlier + 1);
        return naming::started_by(&deployment.deployment_id, &kind);
    }
    naming::started_by(&deployment.deployment_id, task.kind())
}

/// Looks once at the migration task (starting it if it is not there yet): running, succeeded,
/// or an error (`MigrationFailed`, or `MigrationTimedOut` after stopping it at its deadline).
/// A task whose start is recorded has its own deadline, `migration.timeout_seconds` from that
/// start (a slow rehearsal must not eat the production migration's time); `deadline` is for a
/// task whose start is not recorded yet.
pub async fn advance(
    ctx: &Context,
    deployment: &Deployment,
    run: &Run<'_>,
    deadline: DateTime<Utc>,
) -> StepResult<Progress> {
    let deadline = task_deadline(deployment, run.task, deadline);
    // A tracked migration that already ended is never looked up or started again: ECS forgets
    // stopped tasks after about an hour, and a second `down 1` would revert a good migration.
    match tracked(deployment, run.task).map(|t| (t.state, t.detail.clone())) {
        Some((TaskState::Succeeded, _)) => {
            return Ok(Progress::Succeeded(deployment.migration_log.clone()));
        }
        Some((TaskState::Failed | TaskState::NeverRan, detail)) => {
            return Err(StepError::MigrationFailed {
                exit_code: None,
                reason: format!("the {} already failed: {detail}", run.task.words()),
                log_location: None,
            });
        }
        Some((TaskState::Running, _)) | None => {}
    }
    let Some(task) = ensure(ctx, deployment, run).await? else {
        return Ok(Progress::Running(format!(
            "{} task started; ECS does not show it yet",
            run.task.words()
        )));
    };
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
    let (state, detail) = judged(&task, &result);
    track(ctx, deployment, run.task, &task, state, &detail).await?;
    result?;
    Ok(Progress::Succeeded(task_log(ctx, deployment, &task).await))
}

/// How a stopped task's outcome is recorded.
fn judged(task: &Task, outcome: &StepResult<()>) -> (TaskState, String) {
    match outcome {
        Ok(()) => (TaskState::Succeeded, "exit code 0".to_owned()),
        // ECS never started the task's containers: nothing of the migration ran. (A container
        // with an exit code ran, whatever the task's stop code says.)
        Err(
            err @ StepError::MigrationFailed {
                exit_code: None, ..
            },
        ) if task.stop_code.as_deref() == Some("TaskFailedToStart")
            && task.containers.iter().all(|c| c.exit_code.is_none()) =>
        {
            (TaskState::NeverRan, err.to_string())
        }
        Err(err) => (TaskState::Failed, err.to_string()),
    }
}

/// The production migration as an ending must judge it ([`settle`]): its task may have exited
/// 0 since the last check (then production's schema changed and the rollback command must
/// run), been stopped by the abort (then it may have partly applied), or have started with its
/// start never recorded (the answer lost, the invocation dead).
pub async fn settled_production(
    ctx: &Context,
    deployment: &Deployment,
) -> StepResult<Option<TrackedTask>> {
    settle(ctx, deployment, MigrationTask::Production).await
}

/// [`settle`] for the production and the rollback migration: what a deployment that needs a
/// person, or is unlocked, records so its record says what production's schema went through.
pub async fn settle_tracked(ctx: &Context, deployment: &Deployment) -> StepResult<()> {
    for kind in [MigrationTask::Production, MigrationTask::Rollback] {
        settle(ctx, deployment, kind).await?;
    }
    Ok(())
}

/// Brings the record's migration of `kind` up to what ECS says, and answers it: a task ECS
/// shows that the record does not name is recorded; one the record calls `running` that ECS
/// reports stopped is judged from how it stopped, and one ECS no longer knows is recorded as
/// failed with an unknown end. A task still running stays `running`: nothing is concluded.
async fn settle(
    ctx: &Context,
    deployment: &Deployment,
    kind: MigrationTask,
) -> StepResult<Option<TrackedTask>> {
    let recorded = tracked(deployment, kind).cloned();
    if recorded
        .as_ref()
        .is_some_and(|t| t.state != TaskState::Running)
    {
        return Ok(recorded);
    }
    let settled = match locate(ctx, deployment, kind).await? {
        Located::Seen(task) => {
            let (state, detail) = if task.is_stopped() {
                judged(&task, &outcome(ctx, deployment, &task).await)
            } else {
                (TaskState::Running, String::new())
            };
            if recorded.is_some() && state == TaskState::Running {
                return Ok(recorded);
            }
            TrackedTask {
                task_arn: task.arn.clone(),
                started_at: recorded
                    .as_ref()
                    .map_or_else(|| ctx.now(), |t| t.started_at),
                state,
                detail,
            }
        }
        Located::Forgotten => match recorded.clone() {
            Some(recorded) => TrackedTask {
                state: TaskState::Failed,
                detail: "ECS no longer knows its task: how it ended is unknown".to_owned(),
                ..recorded
            },
            None => return Ok(None),
        },
        Located::NotYetShown(_) | Located::MaybeStarted(_) | Located::NotStarted => {
            return Ok(recorded);
        }
    };
    let change = match kind {
        MigrationTask::Rollback => Change::new().rollback_migration(&settled),
        _ => Change::new().production_migration(&settled),
    };
    Records::new(ctx)
        .update(&deployment.deployment_id, change)
        .await?;
    Ok(Some(settled))
}

/// The production migration, behind the maintenance page when configured: switched on before
/// the task starts and off exactly when the task is known stopped (or never started) — never
/// while it may still run, and on every path that learns it stopped, including a retry of a
/// step whose first attempt recorded the outcome but could not take the page down.
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
        if migration.maintenance {
            maintenance::switch_off(ctx, deployment).await?;
        }
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
        env_of_others: Vec::new(),
    };
    let progress = advance(ctx, deployment, &run, deadline).await;
    // `MigrationTimedOut` asked ECS to stop a task that may still be writing (its stop
    // timeout): the page stays, and the ending removes it once the task stopped. A transient
    // error says nothing about the task: the page stays for the retry.
    let stopped = matches!(
        progress,
        Ok(Progress::Succeeded(_)) | Err(StepError::MigrationFailed { .. })
    );
    if stopped && migration.maintenance {
        maintenance::switch_off(ctx, deployment).await?;
    }
    progress
}

/// How long after a task was started ECS may still not show it. AWS documents its reads
/// (`ListTasks` and `DescribeTasks`) as eventually consistent and suggests backing off for up
/// to five minutes; past that, a recorded task ECS does not show is taken as forgotten.
const VISIBILITY_SECONDS: i64 = 300;

/// Where one of a deployment's migration tasks stands, as far as ECS shows it.
enum Located {
    /// ECS shows it.
    Seen(Task),
    /// Recorded as started less than [`VISIBILITY_SECONDS`] ago; ECS does not show it yet.
    NotYetShown(String),
    /// Its `RunTask` was about to be made less than [`VISIBILITY_SECONDS`] ago (the record
    /// says so, no ARN reached it) and ECS does not show a task: it may run. Its `startedBy`.
    MaybeStarted(String),
    /// Recorded as started, but ECS does not know it (any more).
    Forgotten,
    /// Never started: nothing recorded, nothing listed.
    NotStarted,
}

/// When the migration task of `kind` must have ended: `migration.timeout_seconds` from its
/// recorded start, or `fallback` (the step's deadline) while no start is recorded.
pub fn task_deadline(
    deployment: &Deployment,
    kind: MigrationTask,
    fallback: DateTime<Utc>,
) -> DateTime<Utc> {
    recorded(deployment, kind)
        .and_then(|(_, started_at)| started_at)
        .map(|at| deadline_of(deployment, at))
        .unwrap_or(fallback)
}

/// The recorded ARN of a deployment's migration task of `kind`, and when it was started.
fn recorded(deployment: &Deployment, kind: MigrationTask) -> Option<(&str, Option<DateTime<Utc>>)> {
    match kind {
        MigrationTask::OnClone => deployment
            .rehearsal_task_arn
            .as_deref()
            .map(|arn| (arn, deployment.rehearsal_started_at)),
        _ => tracked(deployment, kind).map(|t| (t.task_arn.as_str(), Some(t.started_at))),
    }
}

/// Looks the task up by its recorded ARN first and by `startedBy` second. The recorded ARN
/// matters most right after the start: `ListTasks` may not list a task for a few seconds, and
/// an abort that trusted it stopped nothing while the migration ran on (simulator, seed 2390).
async fn locate(
    ctx: &Context,
    deployment: &Deployment,
    kind: MigrationTask,
) -> StepResult<Located> {
    let cluster = &deployment.config.cluster;
    let compute = &ctx.ports.compute;
    let recorded = recorded(deployment, kind);
    if let Some((arn, _)) = recorded
        && let Some(task) = compute.describe_task(cluster, arn).await?
    {
        return Ok(Located::Seen(task));
    }
    if let Some(task) = compute
        .find_task(cluster, &started_by(deployment, kind))
        .await?
    {
        return Ok(Located::Seen(task));
    }
    let visible_by = |at: DateTime<Utc>| at + Duration::seconds(VISIBILITY_SECONDS);
    let starting = deployment
        .migration_starting
        .as_ref()
        .filter(|s| s.started_by == started_by(deployment, kind) && ctx.now() < visible_by(s.at));
    Ok(match recorded {
        None if starting.is_some() => Located::MaybeStarted(started_by(deployment, kind)),
        None => Located::NotStarted,
        Some((arn, Some(at))) if ctx.now() < visible_by(at) => Located::NotYetShown(arn.into()),
        Some(_) => Located::Forgotten,
    })
}

/// Finds the task (by its recorded ARN or `startedBy`), or starts it; records its ARN (and,
/// for the production and rollback migrations, that it runs). `None` while ECS does not show a
/// task just started.
async fn ensure(ctx: &Context, deployment: &Deployment, run: &Run<'_>) -> StepResult<Option<Task>> {
    let task = match locate(ctx, deployment, run.task).await? {
        Located::Seen(task) => task,
        Located::NotYetShown(_) => return Ok(None),
        Located::Forgotten => {
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
        // The start may not have taken effect: starting it (again) with the same client
        // token answers the task it started, if it did.
        Located::MaybeStarted(_) => start(ctx, deployment, run, Announced::Before).await?,
        Located::NotStarted => start(ctx, deployment, run, Announced::Now).await?,
    };
    let arn = task.arn.clone();
    let change = match run.task {
        MigrationTask::OnClone if deployment.rehearsal_task_arn.as_deref() != Some(&arn) => {
            Some(Change::new().rehearsal_task(&arn, ctx.now()))
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
    Ok(Some(task))
}

/// Whether a start of this task was already announced on the record before this call.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Announced {
    /// By an earlier attempt, whose `RunTask` may have taken effect (its answer lost): that
    /// announcement stands whatever this attempt's `RunTask` answers.
    Before,
    /// By this call: taken back if its `RunTask` starts nothing.
    Now,
}

/// Starts the migration task of `run` (fenced, but for the ending's own rollback migration),
/// its start written on the record ahead of `RunTask`.
async fn start(
    ctx: &Context,
    deployment: &Deployment,
    run: &Run<'_>,
    announced: Announced,
) -> StepResult<Task> {
    let config = &deployment.config;
    let started_by = started_by(deployment, run.task);
    // A step starting a migration stops here once an abort was requested; the rollback
    // migration is the ending's own and is not fenced.
    if run.task != MigrationTask::Rollback {
        crate::fence::guard(
            ctx,
            &deployment.deployment_id,
            &format!("starting the {}", run.task.words()),
        )
        .await?;
    }
    let target = deployment.target_slot()?;
    // Written ahead: if the ARN never reaches the record, an ending still knows a task may
    // run and waits for it to show.
    if announced == Announced::Now {
        let starting = MigrationStarting {
            started_by: started_by.clone(),
            at: ctx.now(),
        };
        let change = Change::new().migration_starting(&starting);
        Records::new(ctx)
            .update(&deployment.deployment_id, change)
            .await?;
    }
    let started = ctx
        .ports
        .compute
        .run_task(&OneOff {
            cluster: config.cluster.clone(),
            network_of: config.slots.get(target).service.clone(),
            on_demand: config
                .migration
                .as_ref()
                .is_none_or(|m| m.capacity == MigrationCapacity::OnDemand),
            task_definition: run.task_definition.to_owned(),
            container: config.container.clone(),
            command: run.command.to_vec(),
            env: run.env.clone(),
            env_of_others: run.env_of_others.clone(),
            // One task per deployment and kind, whatever happens to the answer (the lookup
            // cannot see a task ECS has not listed yet).
            client_token: started_by.clone(),
            started_by,
            tags: vec![ecs::tag(naming::TAG_DEPLOYMENT, &deployment.deployment_id)],
        })
        .await;
    // This call's RunTask started nothing (ECS answered why it placed none, or refused the
    // call before acting on it, throttled) and no earlier attempt may have: said on the
    // record, so no ending waits for a task to show.
    let take_back = announced == Announced::Now;
    match started {
        Ok(Ok(task)) => Ok(task),
        Ok(Err(reason)) => {
            if take_back {
                no_start(ctx, deployment).await?;
            }
            Err(StepError::MigrationFailed {
                exit_code: None,
                reason: format!("{}: {reason}", run.task.words()),
                log_location: None,
            })
        }
        Err(e @ StepError::Throttled { .. }) => {
            if take_back {
                no_start(ctx, deployment).await?;
            }
            Err(e)
        }
        // Anything else may have started it (a lost answer): the announced start stands.
        Err(e) => Err(e),
    }
}

/// Takes back [`Deployment::migration_starting`] after a `RunTask` that started nothing.
async fn no_start(ctx: &Context, deployment: &Deployment) -> StepResult<()> {
    Records::new(ctx)
        .update(
            &deployment.deployment_id,
            Change::new().no_migration_starting(),
        )
        .await
        .map(|_| ())
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
        match locate(ctx, deployment, kind).await? {
            Located::Seen(task) if !task.is_stopped() => {
                running.push(format!("the {} {}", kind.words(), task.arn));
            }
            Located::NotYetShown(arn) => running.push(format!(
                "the {} {arn} (started; ECS does not show it yet)",
                kind.words()
            )),
            Located::MaybeStarted(started_by) => running.push(format!(
                "the {} started by {started_by} (being started; ECS does not show it yet)",
                kind.words()
            )),
            _ => {}
        }
    }
    Ok(running)
}

/// The deployment's migration tasks that [`stop_running`] stops (on the clone, on production)
/// and that ECS does not report stopped yet (or does not show yet), as `the <kind> <task ARN>`.
pub async fn stopping(ctx: &Context, deployment: &Deployment) -> StepResult<Vec<String>> {
    running_of(
        ctx,
        deployment,
        &[MigrationTask::OnClone, MigrationTask::Production],
    )
    .await
}

/// Stops the deployment's migration tasks that still run (abort). The production migration
/// stays recorded `running` until ECS reports it stopped: [`settled_production`] then judges
/// it from how it stopped (it may have exited 0 on its own just before the stop). A task ECS
/// does not show yet is left to the next call: [`stopping`] counts it, so the abort waits and
/// comes back.
pub async fn stop_running(ctx: &Context, deployment: &Deployment) -> StepResult<Vec<String>> {
    let mut stopped = Vec::new();
    for kind in [MigrationTask::OnClone, MigrationTask::Production] {
        let Located::Seen(task) = locate(ctx, deployment, kind).await? else {
            continue;
        };
        if task.is_stopped() {
            continue;
        }
        let arn = task.arn.clone();
        ctx.ports
            .compute
            .stop_task(
                &deployment.config.cluster,
                &arn,
                "bluegreen: deployment aborted",
            )
            .await?;
        stopped.push(format!("stopped the {} {arn}", kind.words()));
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
