//! What every ending (abort, rollback, finish) shares: the rollback migration, waited for;
//! then maintenance mode off, clones deleted (never one a running slot still uses), the DNS
//! TTL restored, and the lock released (handed to a queued deployment) — or, when a person
//! must look, kept and marked — with the final status written and notified. Also the abort
//! sequence itself ([`abort`]), which the abort step and the reconciler both run.

use chrono::{DateTime, Duration, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::clone_secret;
use crate::config::DbSettingForm;
use crate::context::Context;
use crate::db_guard;
use crate::db_plan::MigrationTask;
use crate::engine::{self, PutBack};
use crate::error::{StepError, StepResult};
use crate::fence;
use crate::lock::{Locks, Released};
use crate::maintenance;
use crate::migration::{self, Progress, Run};
use crate::notify;
use crate::record::StepOutcome;
use crate::record::{Change, CloneKind, Deployment, Records, Status, TaskState, TrackedTask};
use crate::routing;
use crate::step_input::FailureInput;
use crate::step_table::ABORT;
use crate::test_rule;
use crate::traffic_mode;

/// How often an ending looks at a running rollback migration.
const ROLLBACK_MIGRATION_POLL_SECONDS: u64 = 15;
/// How long past the rollback migration's own deadline the state machine keeps calling the
/// ending before it gives up on it (the ending stops the task at its deadline itself).
const ENDING_GRACE_SECONDS: i64 = 300;
/// How long after the abort request a migration task it stopped may still be reported
/// running before the abort gives up waiting (needs-attention): ECS's longest `stopTimeout`
/// (120 s) plus the time an agent takes to report, with room to spare.
const TASK_STOP_BOUND_SECONDS: i64 = 600;

/// How a deployment ended; the same answer however often the ending runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Ended {
    /// The deployment.
    pub deployment_id: String,
    /// `succeeded`, `aborted`, `rolled_back` or `needs_attention` — or, while `wait` is
    /// present, the status it has while the ending waits.
    pub status: Status,
    /// A queued deployment that now holds the lock; the state machine starts it with
    /// `{"deployment_id": "<id>"}`. Absent (not null) when there is none: the state machine
    /// tests it with `IsPresent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_deployment: Option<String>,
    /// What was done.
    pub detail: String,
    /// Present while the ending waits for the rollback migration: call it again after
    /// `wait.seconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<EndingWait>,
}

/// An ending that is not finished yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EndingWait {
    /// Seconds until the next call.
    pub seconds: u64,
    /// After this the state machine stops calling (the ending has already given up by then).
    pub deadline: DateTime<Utc>,
}

impl Ended {
    /// The answer for a deployment that has already ended.
    pub(crate) fn of(deployment: &Deployment) -> Self {
        Ended {
            deployment_id: deployment.deployment_id.clone(),
            status: deployment.status,
            next_deployment: deployment.handed_over_to.clone(),
            detail: deployment
                .timeline
                .last()
                .map(|e| e.detail.clone())
                .unwrap_or_default(),
            wait: None,
        }
    }

    pub(crate) fn waiting(
        deployment: &Deployment,
        detail: String,
        deadline: DateTime<Utc>,
    ) -> Self {
        Ended {
            deployment_id: deployment.deployment_id.clone(),
            status: deployment.status,
            next_deployment: None,
            detail,
            wait: Some(EndingWait {
                seconds: ROLLBACK_MIGRATION_POLL_SECONDS,
                deadline: deadline + Duration::seconds(ENDING_GRACE_SECONDS),
            }),
        }
    }
}

/// Runs [`rollback_migration`] for an ending whose status would be `status`: the answer to
/// return at once while it runs (`Err`), or the status to end with (`NeedsAttention` when it
/// failed), with what it did added to `done`.
pub(crate) async fn settle_rollback_migration(
    ctx: &Context,
    deployment: &Deployment,
    status: Status,
    done: &mut Vec<String>,
) -> StepResult<Result<Status, Ended>> {
    Ok(match rollback_migration(ctx, deployment).await? {
        RollbackMigration::Waiting(waiting) => Err(waiting),
        RollbackMigration::Done(note) => {
            done.push(note);
            Ok(status)
        }
        RollbackMigration::Failed(note) => {
            done.push(note);
            Ok(Status::NeedsAttention)
        }
    })
}

/// Where the rollback migration stands for an ending.
enum RollbackMigration {
    /// Finished, or not needed: what to say about the schema.
    Done(String),
    /// Still running: the ending answers [`Ended`] with `wait`.
    Waiting(Ended),
    /// Failed or timed out: the deployment needs a person.
    Failed(String),
}

/// Runs `migration.rollback_command` — only when the production migration succeeded (so
/// production's schema changed) — as a tracked one-off task of the new image on production's
/// database, and reports where it stands. A production migration that failed or was stopped
/// may have partly applied: running a rollback command after it could revert an earlier,
/// good migration, so none is run, and the deployment needs a person (the lock is kept).
async fn rollback_migration(
    ctx: &Context,
    deployment: &Deployment,
) -> StepResult<RollbackMigration> {
    let Some(migration) = &deployment.config.migration else {
        return Ok(RollbackMigration::Done(String::new()));
    };
    let production = migration::settled_production(ctx, deployment).await?;
    if let Some(verdict) = schema_verdict(production.as_ref()) {
        return Ok(verdict);
    }
    let Some(command) = &migration.rollback_command else {
        return Ok(RollbackMigration::Done(
            "the production migration ran; no rollback_command is configured, so the schema \
             stays migrated"
                .into(),
        ));
    };
    run_rollback_command(ctx, deployment, command).await
}

/// What an ending concludes about production's schema before any rollback command, from
/// the settled production migration: `None` when it succeeded (the rollback command decides).
fn schema_verdict(production: Option<&TrackedTask>) -> Option<RollbackMigration> {
    Some(match production.map(|m| (m.state, m.detail.as_str())) {
        None => RollbackMigration::Done(
            "production schema untouched (the production migration never ran)".into(),
        ),
        Some((TaskState::NeverRan, detail)) => RollbackMigration::Done(format!(
            "production schema untouched (the production migration never started: {detail})"
        )),
        // A schema that may be half-migrated is what needs-attention is for: the lock stays,
        // so the next push does not migrate an unknown schema (and a rollback command could
        // revert an earlier, good migration, so none is run).
        Some((TaskState::Failed, detail)) => RollbackMigration::Failed(format!(
            "the production migration did not finish cleanly ({detail}); it may have partly \
             applied — no rollback command was run; check production's schema"
        )),
        Some((TaskState::Running, _)) => RollbackMigration::Failed(
            "the production migration is recorded running and ECS does not report it \
             stopped: production's schema is unknown — no rollback command was run"
                .into(),
        ),
        Some((TaskState::Succeeded, _)) => return None,
    })
}

/// Runs `command` as the tracked rollback migration on production's database (never on a
/// clone), and reports where it stands.
async fn run_rollback_command(
    ctx: &Context,
    deployment: &Deployment,
    command: &[String],
) -> StepResult<RollbackMigration> {
    let task_definition = deployment
        .task_definitions
        .production
        .clone()
        .or_else(|| deployment.task_definitions.preprod.clone())
        .ok_or_else(|| {
            StepError::Internal("production migrated but no task definition recorded".into())
        })?;
    // Never revert a clone's schema thinking it is production's (or the other way round).
    match db_guard::ensure_task_definition_on_production(ctx, deployment, &task_definition).await {
        Err(e @ StepError::ProductionOnClone(_)) => {
            return Ok(RollbackMigration::Failed(format!(
                "rollback migration not run: {e}"
            )));
        }
        // A throttled or failed look is not a verdict: the state machine retries the ending.
        Err(e) => return Err(e),
        Ok(()) => {}
    }
    let started_at = deployment
        .rollback_migration
        .as_ref()
        .map(|t| t.started_at)
        .unwrap_or_else(|| ctx.now());
    let deadline = migration::deadline_of(deployment, started_at);
    let run = Run {
        task: MigrationTask::Rollback,
        command,
        task_definition: &task_definition,
        env: Vec::new(),
        env_of_others: Vec::new(),
    };
    match migration::advance(ctx, deployment, &run, deadline).await {
        Ok(Progress::Running(detail)) => Ok(RollbackMigration::Waiting(Ended::waiting(
            deployment, detail, deadline,
        ))),
        Ok(Progress::Succeeded(_)) => Ok(RollbackMigration::Done(format!(
            "rollback migration `{}` exited 0",
            command.join(" ")
        ))),
        Err(e @ (StepError::MigrationFailed { .. } | StepError::MigrationTimedOut { .. })) => Ok(
            RollbackMigration::Failed(format!("rollback migration failed: {e}")),
        ),
        Err(e) => Err(e),
    }
}

/// The last part of every ending: maintenance off, the test rule removed, clones deleted unless a running slot uses
/// one (then the deployment needs a person), DNS TTL restored, then [`end`].
pub(crate) async fn close(
    ctx: &Context,
    deployment: &Deployment,
    mut status: Status,
    step: &str,
    mut done: Vec<String>,
    failure: Option<String>,
) -> StepResult<Ended> {
    // The page stays while one of the deployment's migrations may still write (an abort that
    // gave up waiting for a stopped task): it protects production's schema until a person acts.
    let running = migration::still_running(ctx, deployment).await?;
    if !running.is_empty() {
        done.push(format!(
            "the maintenance page, if any, stays up while {} runs",
            running.join(" and ")
        ));
    } else if maintenance::switch_off(ctx, deployment).await? {
        done.push("maintenance page removed".into());
    }
    // Pre-prod is no longer this deployment's to show: its test rule goes at every ending.
    if test_rule::remove(ctx, deployment).await? {
        done.push("test rule removed".into());
    }
    let in_use = db_guard::clones_in_use(ctx, &deployment.config, &deployment.clones).await?;
    let mut deleted = Vec::new();
    for clone in &deployment.clones {
        if let Some((_, evidence)) = in_use.iter().find(|(id, _)| *id == clone.identifier) {
            status = Status::NeedsAttention;
            done.push(format!(
                "kept clone {} because a running slot uses it ({evidence})",
                clone.identifier
            ));
            continue;
        }
        let databases = &ctx.ports.databases;
        if clone.kind == CloneKind::AuroraCluster {
            databases
                .delete_instance(&clone.instance_identifier())
                .await?;
            databases.delete_cluster(&clone.identifier).await?;
        } else {
            databases.delete_instance(&clone.identifier).await?;
        }
        // The secret that pointed pre-prod at this clone goes with it (a retry finds it gone).
        if deployment.config.database.form() == DbSettingForm::Secret
            && clone_secret::delete(ctx, &deployment.service, clone).await?
        {
            deleted.push(format!("{} (and its secret)", clone.identifier));
            continue;
        }
        deleted.push(clone.identifier.clone());
    }
    if !deleted.is_empty() {
        done.push(format!("deleted clones {}", deleted.join(", ")));
    }
    traffic_mode::of(&deployment.config)
        .restore(ctx, deployment)
        .await?;
    end(ctx, deployment, status, step, done.join("; "), failure).await
}

/// Writes an ending's final record (without a lock release): `Some(how it ended)` when
/// another ending (a racing abort, the reconciler) ended the deployment first — this one then
/// changes nothing and answers that.
async fn write_final(
    ctx: &Context,
    deployment_id: &str,
    change: Change,
) -> StepResult<Option<Ended>> {
    match Records::new(ctx).update_ending(deployment_id, change).await {
        Ok(()) => Ok(None),
        Err(StepError::DeploymentEnded { id, .. }) => {
            Ok(Some(Ended::of(&Records::new(ctx).get(&id).await?)))
        }
        Err(e) => Err(e),
    }
}

/// Releases the lock, writes the final status and notifies. `failure` is the cause for
/// aborted and rolled-back deployments.
pub(crate) async fn end(
    ctx: &Context,
    deployment: &Deployment,
    status: Status,
    step: &str,
    detail: String,
    failure: Option<String>,
) -> StepResult<Ended> {
    let records = Records::new(ctx);
    // A retried ending whose first attempt took effect (its answer lost) answers what that
    // attempt did: the same status and the same next deployment, never a second hand-over.
    let current = records.get(&deployment.deployment_id).await?;
    if current.status.is_terminal() {
        return Ok(Ended::of(&current));
    }
    let change = |next: Option<&str>| {
        let mut change = Change::new().status(status).log(
            step,
            StepOutcome::Succeeded,
            detail.clone(),
            ctx.now(),
        );
        // The first failure recorded is why the deployment failed: a later one (the retry
        // that re-ran the ending, the execution that died while it waited) does not replace it.
        if let Some(failure) = failure.as_ref().filter(|_| current.failure.is_none()) {
            change = change.failure(failure);
        }
        if let Some(next) = next {
            change = change.handed_over_to(next);
        }
        change
    };
    let locks = Locks::new(ctx);
    let next = if status == Status::NeedsAttention {
        // The lock stays held, marked: nothing else deploys until a person has looked.
        locks
            .mark_needs_attention(&deployment.service, &deployment.deployment_id, &detail)
            .await?;
        if let Some(ended) = write_final(ctx, &deployment.deployment_id, change(None)).await? {
            return Ok(ended);
        }
        None
    } else {
        // Release (or hand over) and the final record in one transaction.
        let released = locks
            .release_with(&deployment.service, &deployment.deployment_id, |next| {
                Ok(Some(records.update_in_transaction(
                    &deployment.deployment_id,
                    change(next),
                )))
            })
            .await?;
        match released {
            Released::Released { next } => next,
            // An operator unlocked it already: only the record is ours to write.
            Released::NotHolder => {
                if let Some(ended) =
                    write_final(ctx, &deployment.deployment_id, change(None)).await?
                {
                    return Ok(ended);
                }
                None
            }
        }
    };
    emit_delivery_metrics(ctx, &current, status);
    notify_ended(ctx, deployment, status, &detail, failure.as_deref()).await;
    info!(deployment_id = %deployment.deployment_id, ?status, next = ?next, "deployment ended");
    Ok(Ended {
        deployment_id: deployment.deployment_id.clone(),
        status,
        next_deployment: next,
        detail,
        wait: None,
    })
}

/// The delivery metrics of `current`, which this ending just ended `status`: once, by the
/// ending whose write ended it (a retried ending answers before). A deployment an operator
/// re-opened (`retry`) was counted when it first ended; the records count how it ended at
/// last (`bluegreen metrics`).
fn emit_delivery_metrics(ctx: &Context, current: &Deployment, status: Status) {
    if current.resumed.is_none() {
        let mut delivered = crate::delivery::Delivered::of(current);
        (delivered.status, delivered.ended_at) = (status, Some(ctx.now()));
        crate::metrics::deployment_ended(ctx, &delivered);
    }
}

/// Tells people how the deployment ended (a needs-attention notice says where production
/// traffic is and the command that releases the service). The deployment has ended either way:
/// a lost notification is logged, never an error.
async fn notify_ended(
    ctx: &Context,
    deployment: &Deployment,
    status: Status,
    detail: &str,
    failure: Option<&str>,
) {
    let notice = match status {
        Status::Succeeded => notify::Notice::Succeeded,
        Status::Aborted => notify::Notice::Aborted,
        Status::NeedsAttention => notify::Notice::NeedsAttention,
        _ => notify::Notice::RolledBack,
    };
    let mut message = match failure {
        Some(f) => format!("{detail}\nCause: {f}"),
        None => detail.to_owned(),
    };
    if status == Status::NeedsAttention {
        crate::metrics::needs_attention(ctx, &deployment.service, &deployment.deployment_id);
        let live = routing::read_production(ctx, &deployment.config)
            .await
            .ok()
            .and_then(|r| r.live().ok())
            .map(|s| s.to_string())
            .unwrap_or_else(|| "unknown (read the production listener)".into());
        message.push_str(&format!(
            "\nProduction traffic is on: {live}. The service stays locked. When the database \
             and slots are checked, release it with: bluegreen unlock {}",
            deployment.service
        ));
    }
    if let Err(e) = notify::outcome(ctx, deployment, notice, &message).await {
        warn!(error = %e, "could not publish the outcome");
    }
}

/// The abort's fence: sets the abort mark if absent and reads the record again. `Err` is the
/// answer to give now: the deployment has ended, or a step invocation may still act (wait to
/// its lease's end).
async fn fence_for_abort(
    ctx: &Context,
    input: &FailureInput,
) -> StepResult<Result<Deployment, Ended>> {
    // Fence first: from this write on no step invocation changes the status or acts on AWS
    // (an operator's abort has set the mark already; a failure's or the reconciler's sets it
    // here). Then wait until no invocation that claimed the deployment before the mark can
    // still act, so what is read from AWS below is what stays.
    let deployment = Records::new(ctx).get(&input.deployment_id).await?;
    if deployment.status.is_terminal() {
        return Ok(Err(Ended::of(&deployment)));
    }
    if deployment.abort_requested.is_none() {
        let by = match &input.error {
            Some(caught) => format!("the abort after {}", caught.error),
            None => "the abort".to_owned(),
        };
        if let fence::AbortMark::Refused(ended) =
            fence::request_abort(ctx, &input.deployment_id, &by, &[]).await?
        {
            return Ok(Err(Ended::of(&ended)));
        }
    }
    // Read again after the mark: a claim that landed between the first read and the mark
    // holds a lease the first read cannot show.
    let deployment = Records::new(ctx).get(&input.deployment_id).await?;
    if deployment.status.is_terminal() {
        return Ok(Err(Ended::of(&deployment)));
    }
    if let Some(lease) = fence::live_lease(&deployment, ctx.now()) {
        let detail = format!(
            "waiting for the {} step in flight (it can act until {}) before reading AWS",
            lease.step, lease.until
        );
        // One wait to the lease's end, not a poll: each call of the ending is one more
        // invocation that can fail.
        let mut waiting = Ended::waiting(&deployment, detail, lease.until);
        if let Some(wait) = &mut waiting.wait {
            wait.seconds = (lease.until - ctx.now()).num_seconds().max(1) as u64 + 1;
        }
        return Ok(Err(waiting));
    }
    Ok(Ok(deployment))
}

/// Whether the migration tasks the abort stopped have stopped: `Ok(None)` yes; `Ok(Some)` one
/// is still reported running past the bound (what to tell people); `Err` the answer to give
/// while waiting.
async fn stopped_tasks_settled(
    ctx: &Context,
    deployment: &Deployment,
) -> StepResult<Result<Option<String>, Ended>> {
    // Only the tasks the abort stops: the rollback migration is the ending's own, tracked to
    // its deadline by `settle_rollback_migration` in `abort`. The wait is bounded from the abort
    // request: a task ECS never reports stopped (a lost agent) ends in needs-attention with
    // the lock kept, not in a wait for ever.
    let stopping = migration::stopping(ctx, deployment).await?;
    if !stopping.is_empty() {
        let asked = deployment
            .abort_requested
            .as_ref()
            .map(|r| r.at)
            .unwrap_or_else(|| ctx.now());
        let bound = asked + Duration::seconds(TASK_STOP_BOUND_SECONDS);
        if ctx.now() < bound {
            let detail = format!(
                "waiting for {} to stop before the lock is released",
                stopping.join(" and ")
            );
            return Ok(Err(Ended::waiting(deployment, detail, bound)));
        }
        return Ok(Ok(Some(format!(
            "{} still running {TASK_STOP_BOUND_SECONDS} s after the abort stopped it: the \
             lock is kept, no rollback migration runs; check the task in ECS",
            stopping.join(" and ")
        ))));
    }
    Ok(Ok(None))
}

/// The abort sequence (see `steps::abort`), shared by the abort step and the reconciler
/// (which aborts a deployment whose execution died before the switch).
/// An abort leaves production where it is (the engine refuses what it must not do:
/// `crate::engine::DeploymentEngine::before_abort`) and puts back what the launch changed.
pub async fn abort(ctx: &Context, input: &FailureInput) -> StepResult<Ended> {
    let deployment = match fence_for_abort(ctx, input).await? {
        Ok(deployment) => deployment,
        Err(answer) => return Ok(answer),
    };
    let config = &deployment.config;
    let mut done = Vec::new();
    let engine = engine::of(config);
    let production = engine.before_abort(ctx, &deployment).await?;
    done.extend(migration::stop_running(ctx, &deployment).await?);
    // A stopped task keeps running through its stop timeout (SIGTERM, then SIGKILL up to two
    // minutes later): its migration may still be writing. The lock is not handed on until ECS
    // reports every one of them stopped, so the next deployment's migration never overlaps it
    // (found by the simulator, seeds 3370 and 4421). The state machine or the next sweep calls
    // the abort again; everything before this point is idempotent.
    let stuck = match stopped_tasks_settled(ctx, &deployment).await? {
        Ok(stuck) => stuck,
        Err(waiting) => return Ok(waiting),
    };
    let mut stuck = stuck;
    if let Some(preprod) = &deployment.preprod {
        match engine.put_back(ctx, &deployment, preprod).await? {
            PutBack::Done(note) => done.push(note),
            PutBack::Waiting(detail) => {
                let bound = engine::abort_bound(ctx, &deployment);
                return Ok(Ended::waiting(&deployment, detail, bound));
            }
            PutBack::Stuck(note) => {
                stuck = Some(stuck.map_or(note.clone(), |s| format!("{s}; {note}")))
            }
        }
    }
    // Stopped tasks are recorded by now; read what the record says about production's schema.
    let deployment = Records::new(ctx).get(&input.deployment_id).await?;
    let status = match stuck {
        Some(note) => {
            done.push(note);
            Status::NeedsAttention
        }
        None => {
            match settle_rollback_migration(ctx, &deployment, Status::Aborted, &mut done).await? {
                Ok(status) => status,
                Err(waiting) => return Ok(waiting),
            }
        }
    };
    done.push(production.unwrap_or_else(|| "production traffic untouched".into()));
    close(
        ctx,
        &deployment,
        status,
        ABORT.name,
        done.into_iter().filter(|d| !d.is_empty()).collect(),
        Some(input.describe()),
    )
    .await
}

/// Runs an ending (`work`) as the state machine calls it, unless an operator has re-run the
/// deployment's ending (`retry`): then the execution calling it is the old one (redriven, or
/// an invocation still in flight), and it does nothing — the retry and the reconciler's sweep
/// carry the ending on — answering the record as it stands, without a wait, so the execution
/// ends.
pub async fn unless_resumed(
    ctx: &Context,
    deployment_id: &str,
    work: impl Future<Output = StepResult<Ended>>,
) -> StepResult<Ended> {
    let current = Records::new(ctx).get(deployment_id).await?;
    match &current.resumed {
        Some(resumed) if !current.status.is_terminal() => Ok(Ended {
            detail: format!(
                "{} re-ran its {} at {}; this execution's ending does nothing",
                resumed.by, resumed.ending, resumed.at
            ),
            ..Ended::of(&current)
        }),
        _ => work.await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracked(state: TaskState, detail: &str) -> TrackedTask {
        TrackedTask {
            task_arn: "arn:aws:ecs:us-east-1:123456789012:task/c/1".into(),
            started_at: chrono::Utc::now(),
            state,
            detail: detail.into(),
        }
    }

    fn words(verdict: Option<RollbackMigration>) -> (&'static str, String) {
        match verdict {
            None => ("run the rollback command", String::new()),
            Some(RollbackMigration::Done(note)) => ("done", note),
            Some(RollbackMigration::Failed(note)) => ("needs a person", note),
            Some(RollbackMigration::Waiting(_)) => ("waiting", String::new()),
        }
    }

    #[test]
    fn only_a_schema_that_may_be_half_migrated_needs_a_person() {
        assert_eq!(words(schema_verdict(None)).0, "done");
        let never = tracked(TaskState::NeverRan, "TaskFailedToStart");
        let (what, note) = words(schema_verdict(Some(&never)));
        assert_eq!(what, "done");
        assert!(note.contains("untouched"), "{note}");
        let failed = tracked(TaskState::Failed, "exit code 3");
        let (what, note) = words(schema_verdict(Some(&failed)));
        assert_eq!(what, "needs a person");
        assert!(
            note.contains("exit code 3") && note.contains("partly"),
            "{note}"
        );
        let running = tracked(TaskState::Running, "");
        assert_eq!(words(schema_verdict(Some(&running))).0, "needs a person");
        let succeeded = tracked(TaskState::Succeeded, "exit code 0");
        assert_eq!(
            words(schema_verdict(Some(&succeeded))).0,
            "run the rollback command"
        );
    }
}
