//! Reconcile: nothing is left locked by a deployment whose execution is no longer running.
//!
//! Runs on Step Functions status changes of the deployment machine (FAILED, TIMED_OUT,
//! ABORTED), on a schedule (the sweep over every held lock), when an ending fails inside an
//! execution (the state machine's Catch), and when starting a queued deployment failed. For
//! each service whose lock holder has no running execution it decides from the record:
//!
//! | holder's record                          | action                                          |
//! |------------------------------------------|-------------------------------------------------|
//! | before the switch (preparing … promoting)| abort (pre-prod restored, clones removed)       |
//! | an ending already chosen (an operator's  | continue it, once a retry's own process is past |
//! | `retry`, a rollback under way)           | its bound (waits, ends, or needs attention)     |
//! | switching or baking (traffic may move)   | needs attention (a person decides)              |
//! | queued or preparing, never started       | start its execution                             |
//! | ended, lock not released                 | release / hand over, start the next             |
//! | needs attention                          | nothing: `bluegreen unlock` once checked        |
//! | no record (operator hold, lost prepare)  | release once the lease / grace has passed       |
//!
//! The sweep also looks at every `queued` record the lock does not name (an intake that wrote
//! the record and then gave up before queueing it): after a grace it is put through the queue
//! as its prepare would have been — queued, started if the service is free, or superseded.
//!
//! Every action is the same the flow itself would take, so running it twice, or concurrently
//! with the execution's own ending, converges: endings are idempotent and the lock release is
//! conditional on the holder.

use chrono::Duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::context::Context;
use crate::error::{StepError, StepResult};
use crate::executions::{self, Execution};
use crate::guard;
use crate::lock::{LockItem, Locks, PushOrder};
use crate::queue::{self, Placed};
use crate::record::{Deployment, Records, Status};

use super::{CaughtError, FailureInput};
use crate::ending::{self, Ended};

use super::registry::{ABORT, FINISH, ROLLBACK};

const STEP: &str = super::registry::RECONCILE.name;

/// How long a `queued` record may go unnamed by its service's lock before the sweep queues it.
/// Prepare queues it within a second of writing it; the intake's retries of prepare (five, at
/// most a minute apart) are over within minutes, after which nothing else would.
const UNQUEUED_RECORD_GRACE_SECONDS: i64 = 900;

/// What the reconciler did about one service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Reconciled {
    /// The service.
    pub service: String,
    /// The lock holder looked at, if the service was locked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    /// What was done.
    pub action: Action,
    /// Why, for logs and people.
    pub detail: String,
    /// A deployment whose execution was started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
}

/// The reconciler's decision for one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Nothing to do: not locked, or the holder's execution is running.
    Nothing,
    /// The holder was aborted (production untouched).
    Aborted,
    /// The holder's ending is waiting (for a step in flight, a migration, cached DNS
    /// answers); the next sweep continues it.
    Waiting,
    /// The holder's ending already chosen (an operator's retry, a rollback under way) was
    /// continued and has ended: rolled back or succeeded (`detail` says how).
    Ended,
    /// The holder ended needing a person; the lock stays held and marked.
    NeedsAttention,
    /// The lock was released (or handed to the queued deployment).
    Released,
    /// A queued deployment the lock had lost track of was queued again behind the holder.
    Requeued,
    /// A queued deployment the lock had lost track of was found superseded by a newer push.
    Superseded,
    /// The holder's execution was started.
    Started,
    /// This service could not be reconciled now; `detail` says why (the sweep tries again).
    Failed,
    /// The live-slot guard found the service's slots out of shape (`detail`: what, and the
    /// repair); reported, and repaired when `guard.repair` allows.
    GuardViolation,
}

/// What the reconcile Lambda is asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// Every held lock (the scheduled sweep).
    Sweep,
    /// The service of this deployment (its execution changed status).
    Deployment(String),
    /// An ending (abort, rollback, finish) failed inside the execution: record needs-attention.
    EndingFailed(EndingFailure),
    /// Starting this deployment's execution failed after it was handed the lock: try again.
    Start(String),
}

impl Request {
    /// Reads the Lambda input: an EventBridge "Step Functions Execution Status Change" event,
    /// a scheduled event, or the state machine's `{"ending_failed": …}` / `{"start": …}`.
    pub fn parse(input: &serde_json::Value) -> StepResult<Request> {
        match input["detail-type"].as_str() {
            Some("Scheduled Event") => return Ok(Request::Sweep),
            Some("Step Functions Execution Status Change") => {
                let name = input["detail"]["name"].as_str().ok_or_else(|| {
                    StepError::EventMalformed("status change without detail.name".into())
                })?;
                return Ok(Request::Deployment(name.to_owned()));
            }
            Some(other) => {
                return Err(StepError::EventMalformed(format!(
                    "reconcile does not handle {other:?} events"
                )));
            }
            None => {}
        }
        serde_json::from_value(input.clone())
            .map_err(|e| StepError::EventMalformed(format!("reconcile input: {e}")))
    }
}

/// An ending that failed inside the execution, as the state machine's `EndingFailed` state
/// passes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EndingFailure {
    /// The deployment.
    pub deployment_id: String,
    /// The ending's own error.
    #[serde(default)]
    pub error: Option<CaughtError>,
    /// The execution's state when the ending failed; its `error`, when present, is the failure
    /// the ending was handling (absent for finish).
    #[serde(default)]
    pub state: Option<serde_json::Value>,
}

impl EndingFailure {
    /// The failure the ending was handling, if it was handling one.
    fn original(&self) -> Option<CaughtError> {
        let error = self.state.as_ref()?.get("error")?;
        serde_json::from_value(error.clone()).ok()
    }
}

/// Carries out `request`; one answer per service looked at.
pub async fn run(ctx: &Context, request: &Request) -> StepResult<Vec<Reconciled>> {
    match request {
        Request::Sweep => sweep(ctx).await,
        Request::Deployment(id) => {
            let deployment = match Records::new(ctx).get(id).await {
                Ok(d) => d,
                // An execution of no deployment of ours (or a record since deleted).
                Err(StepError::DeploymentNotFound(_)) => return Ok(Vec::new()),
                Err(e) => return Err(e),
            };
            Ok(vec![service(ctx, &deployment.service).await?])
        }
        Request::EndingFailed(input) => {
            let ended = ending_failed(ctx, input).await?;
            let deployment = Records::new(ctx).get(&ended.deployment_id).await?;
            Ok(vec![Reconciled {
                service: deployment.service,
                holder: Some(ended.deployment_id),
                action: Action::NeedsAttention,
                detail: ended.detail,
                started: None,
            }])
        }
        Request::Start(id) => {
            let deployment = Records::new(ctx).get(id).await?;
            Ok(vec![service(ctx, &deployment.service).await?])
        }
    }
}

/// Reconciles every service whose lock is held. One service's failure is reported in its
/// answer and does not stop the others.
pub async fn sweep(ctx: &Context) -> StepResult<Vec<Reconciled>> {
    let mut answers = Vec::new();
    for (name, _) in Locks::new(ctx).held().await? {
        answers.push(match service(ctx, &name).await {
            Ok(answer) => answer,
            Err(e) => {
                warn!(service = %name, error = %e, "could not reconcile");
                Reconciled {
                    service: name,
                    holder: None,
                    action: Action::Failed,
                    detail: format!("{}: {e}", e.name()),
                    started: None,
                }
            }
        });
    }
    answers.extend(sweep_unqueued(ctx).await?);
    answers.extend(guard_pass(ctx).await);
    Ok(answers)
}

/// The live-slot guard over the next page of managed services (see [`guard`]): a line for
/// each service out of shape, or whose check failed. A push queued behind a repair's hold is
/// started.
async fn guard_pass(ctx: &Context) -> Vec<Reconciled> {
    let checked = match guard::sweep(ctx).await {
        Ok(checked) => checked,
        Err(e) => {
            warn!(error = %e, "live-slot guard skipped this sweep");
            return Vec::new();
        }
    };
    let mut answers = Vec::new();
    for (service, result) in checked {
        let (action, detail, started) = match result {
            Ok(g) if g.violations.as_ref().is_some_and(|v| !v.is_empty()) => {
                let started = match start_next(ctx, g.handed_over.clone()).await {
                    Ok(started) => started,
                    Err(e) => {
                        warn!(%service, error = %e, "could not start the push the repair held");
                        None
                    }
                };
                let mut lines = g.lines;
                lines.extend(g.repaired);
                (Action::GuardViolation, lines.join("; "), started)
            }
            Ok(_) => continue,
            Err(e) => (
                Action::Failed,
                format!("live-slot guard: {}: {e}", e.name()),
                None,
            ),
        };
        answers.push(Reconciled {
            service,
            holder: None,
            action,
            detail,
            started,
        });
    }
    answers
}

/// Puts every `queued` record that its service's lock does not name, and that is older than
/// the grace, through the queue (see [`queue::place`]): queued behind the holder, started when
/// the service is free, or superseded by a newer push. Without this a push whose intake failed
/// between writing its record and queueing it would show "queued" forever and never deploy.
async fn sweep_unqueued(ctx: &Context) -> StepResult<Vec<Reconciled>> {
    let oldest = ctx.now() - Duration::seconds(UNQUEUED_RECORD_GRACE_SECONDS);
    let mut answers = Vec::new();
    for deployment in Records::new(ctx).with_status(Status::Queued).await? {
        if deployment.created_at > oldest {
            continue;
        }
        let id = deployment.deployment_id.clone();
        let answer = match requeue(ctx, &deployment).await {
            Ok(answer) => answer,
            Err(e) => {
                warn!(deployment_id = %id, error = %e, "could not requeue");
                Some(Reconciled {
                    service: deployment.service.clone(),
                    holder: Some(id),
                    action: Action::Failed,
                    detail: format!("{}: {e}", e.name()),
                    started: None,
                })
            }
        };
        answers.extend(answer);
    }
    Ok(answers)
}

/// One unqueued record: `None` when the lock names it after all (nothing to do).
async fn requeue(ctx: &Context, deployment: &Deployment) -> StepResult<Option<Reconciled>> {
    let id = deployment.deployment_id.as_str();
    let service = deployment.service.as_str();
    let lock = Locks::new(ctx).read(service).await?;
    if lock.is_some_and(|l| l.holder == id || l.queued.as_deref() == Some(id)) {
        return Ok(None);
    }
    let order = PushOrder::new(deployment.pushed_at, id);
    let answer = |action, detail: String| Reconciled {
        service: service.to_owned(),
        holder: Some(id.to_owned()),
        action,
        detail,
        started: None,
    };
    let done = match queue::place(ctx, service, &order, STEP).await? {
        // It holds the lock with no execution: the module's "never started" row starts it.
        Placed::Holds => self::service(ctx, service).await?,
        Placed::Queued { holder } => answer(
            Action::Requeued,
            format!("queued record the lock had lost; queued again behind {holder}"),
        ),
        Placed::Superseded { by } => answer(
            Action::Superseded,
            format!("queued record the lock had lost; superseded by newer push {by}"),
        ),
    };
    warn!(deployment_id = %id, action = ?done.action, "put a queued record the lock did not name through the queue");
    Ok(Some(done))
}

/// Reconciles one service (see the module table).
pub async fn service(ctx: &Context, service: &str) -> StepResult<Reconciled> {
    let answer = |holder: Option<&str>, action, detail| answer(service, holder, action, detail);
    let Some(lock) = Locks::new(ctx).read(service).await? else {
        return Ok(answer(None, Action::Nothing, "not locked".into()));
    };
    let holder = lock.holder.clone();
    let deployment = match Records::new(ctx).get(&holder).await {
        Ok(d) => d,
        Err(StepError::DeploymentNotFound(_)) => {
            return unrecorded_holder(ctx, service, &lock).await;
        }
        Err(e) => return Err(e),
    };
    if deployment.status == Status::NeedsAttention {
        mark_if_unmarked(ctx, &lock, &deployment).await?;
        return Ok(answer(
            Some(&holder),
            Action::NeedsAttention,
            format!("waits for a person: bluegreen unlock {service}"),
        ));
    }
    let execution = executions::status(ctx, &holder).await?;
    if execution.is_running() {
        return Ok(answer(
            Some(&holder),
            Action::Nothing,
            "its execution is running".into(),
        ));
    }
    after_execution(ctx, service, &deployment, &execution).await
}

/// Reconciles a service whose lock holder's execution is not running: releases the lock of an
/// ended deployment, starts one that never started, leaves one an operator re-runs, and ends
/// an orphan (its ending run here, then the next queued deployment started).
async fn after_execution(
    ctx: &Context,
    service: &str,
    deployment: &Deployment,
    execution: &Execution,
) -> StepResult<Reconciled> {
    let holder = deployment.deployment_id.clone();
    let answer = |holder: Option<&str>, action, detail| answer(service, holder, action, detail);
    let ended_how = execution_ended_how(execution);
    if deployment.status.is_terminal() {
        let next = Locks::new(ctx).release(service, &holder).await?;
        let mut done = answer(
            Some(&holder),
            Action::Released,
            format!(
                "{holder} had ended ({}) without releasing the lock",
                deployment.status
            ),
        );
        done.started = start_next(ctx, next).await?;
        return Ok(done);
    }
    // Never started: handed the lock from the queue, or prepared by an intake whose
    // StartExecution failed. Nothing after prepare has run, so it is started, not aborted.
    if matches!(deployment.status, Status::Queued | Status::Preparing)
        && *execution == Execution::Missing
    {
        executions::start(ctx, &holder).await?;
        info!(deployment_id = %holder, "started a deployment that held the lock without an execution");
        let mut done = answer(
            Some(&holder),
            Action::Started,
            format!("{ended_how}; started"),
        );
        done.started = Some(holder);
        return Ok(done);
    }
    if let Some(resumed) = deployment.resumed.as_ref().filter(|r| r.until > ctx.now()) {
        return Ok(answer(
            Some(&holder),
            Action::Nothing,
            format!(
                "{} re-runs its {} (retry at {}); the sweep continues it after {}",
                resumed.by, resumed.ending, resumed.at, resumed.until
            ),
        ));
    }
    let ended = end_orphaned(ctx, deployment, &ended_how).await?;
    let action = match (&ended.wait, ended.status) {
        (Some(_), _) => Action::Waiting,
        (None, Status::NeedsAttention) => Action::NeedsAttention,
        (None, Status::Aborted) => Action::Aborted,
        (None, _) => Action::Ended,
    };
    let mut done = answer(Some(&holder), action, ended.detail.clone());
    done.started = start_next(ctx, ended.next_deployment).await?;
    info!(%service, deployment_id = %holder, ?action, "reconciled");
    Ok(done)
}

/// What the reconciler did for `service`, as it answers.
fn answer(service: &str, holder: Option<&str>, action: Action, detail: String) -> Reconciled {
    Reconciled {
        service: service.to_owned(),
        holder: holder.map(str::to_owned),
        action,
        detail,
        started: None,
    }
}

/// Marks a lock whose holder needs attention (an ending that crashed before marking it), so
/// `status` and `unlock` show why it is held.
async fn mark_if_unmarked(
    ctx: &Context,
    lock: &LockItem,
    deployment: &Deployment,
) -> StepResult<()> {
    if lock.needs_attention.is_none() {
        let reason = deployment.failure.clone().unwrap_or_default();
        Locks::new(ctx)
            .mark_needs_attention(&deployment.service, &lock.holder, &reason)
            .await?;
    }
    Ok(())
}

/// How a holder's execution is gone, for the record and the answer.
fn execution_ended_how(execution: &Execution) -> String {
    match execution {
        Execution::Ended(status) => format!("its execution ended {status}"),
        Execution::Missing => "it has no execution".into(),
        Execution::Running => "its execution is running".into(),
    }
}

/// Ends (or carries on ending) a deployment whose execution is gone, as the execution would
/// have: the ending already chosen (see [`chosen_ending`]), a person once traffic may have
/// moved, else an abort.
async fn end_orphaned(
    ctx: &Context,
    deployment: &Deployment,
    ended_how: &str,
) -> StepResult<Ended> {
    let cause = CaughtError {
        error: "ExecutionEnded".into(),
        cause: format!(
            "{ended_how} while the deployment was {:?}",
            deployment.status
        ),
    };
    Ok(match chosen_ending(deployment) {
        Some(ending) => {
            // A retried ending goes on with the retry's cause, as the retry ran it.
            let cause = match &deployment.resumed {
                Some(resumed) => CaughtError {
                    error: "RetriedByOperator".into(),
                    cause: format!("{} retried by {}", resumed.ending, resumed.by),
                },
                None => cause,
            };
            let input = FailureInput {
                deployment_id: deployment.deployment_id.clone(),
                error: Some(cause),
            };
            super::registry::run_ending_once(ctx, ending, &input).await?
        }
        None if traffic_may_have_moved(deployment) => {
            needs_attention(ctx, deployment, &cause).await?
        }
        None => abort_or_attention(ctx, deployment, cause).await?,
    })
}

/// Whether production traffic may have moved: a person must decide between finishing and
/// rolling back, the reconciler will not guess.
fn traffic_may_have_moved(deployment: &Deployment) -> bool {
    matches!(deployment.status, Status::Switching | Status::Baking)
}

/// The ending already chosen for a deployment whose execution is gone, which the reconciler
/// continues rather than guessing: the one an operator re-ran with `retry`, or a rollback that
/// had begun (traffic going back, its rollback migration started). Continuing it is what the
/// execution would have done; marking it needs-attention while it merely waits (for cached
/// DNS answers, for its rollback migration) would hand a person a deployment still changing.
fn chosen_ending(deployment: &Deployment) -> Option<&str> {
    if let Some(resumed) = &deployment.resumed {
        return Some(match resumed.ending.as_str() {
            e if e == FINISH.name => FINISH.name,
            e if e == ROLLBACK.name => ROLLBACK.name,
            _ => ABORT.name,
        });
    }
    let rolling_back = deployment.rollback_migration.is_some()
        || super::started_at(deployment, ROLLBACK.name).is_some();
    (traffic_may_have_moved(deployment) && rolling_back).then_some(ROLLBACK.name)
}

/// Aborts as the execution's Catch would have; an abort that cannot finish makes the
/// deployment need attention (never a retry loop: the sweep would repeat it forever).
pub(crate) async fn abort_or_attention(
    ctx: &Context,
    deployment: &Deployment,
    cause: CaughtError,
) -> StepResult<Ended> {
    let input = FailureInput {
        deployment_id: deployment.deployment_id.clone(),
        error: Some(cause),
    };
    match ending::abort(ctx, &input).await {
        Ok(ended) => Ok(ended),
        Err(e) if e.is_retryable() => Err(e),
        Err(e) => {
            let cause = CaughtError {
                error: e.name().into(),
                cause: format!("abort after {}: {e}", input.describe()),
            };
            needs_attention(ctx, deployment, &cause).await
        }
    }
}

/// An ending (abort, rollback, finish) failed inside the execution: the deployment needs a
/// person, with the cause. Idempotent: a deployment that has ended answers how it ended.
pub async fn ending_failed(ctx: &Context, input: &EndingFailure) -> StepResult<Ended> {
    let mut deployment = Records::new(ctx).get(&input.deployment_id).await?;
    if deployment.status.is_terminal() {
        return Ok(Ended::of(&deployment));
    }
    let cause = input.error.clone().unwrap_or(CaughtError {
        error: "Unknown".into(),
        cause: "the ending failed without a cause".into(),
    });
    // The failure the ending was handling is why the deployment failed; keep it as such.
    if deployment.failure.is_none() {
        deployment.failure = input
            .original()
            .map(|o| format!("{}: {}", o.error, o.cause));
    }
    needs_attention(ctx, &deployment, &cause).await
}

pub(crate) async fn needs_attention(
    ctx: &Context,
    deployment: &Deployment,
    cause: &CaughtError,
) -> StepResult<Ended> {
    let mut detail = format!(
        "{}: {}; pre-prod, clones and routing were left as they are for a person to check",
        cause.error, cause.cause
    );
    // What its migrations did goes on the record now if ECS can tell (best effort: `unlock`
    // settles it again before anything else deploys).
    if let Err(e) = crate::migration::settle_tracked(ctx, deployment).await {
        detail.push_str(&format!(
            "; its migrations' outcomes could not be read ({e})"
        ));
    }
    let page = maintenance_page_down(ctx, deployment).await;
    if !page.is_empty() {
        detail.push_str(&format!("; {page}"));
    }
    // Never fails the ending either: teardown removes a test rule left behind.
    match crate::test_rule::remove(ctx, deployment).await {
        Ok(true) => detail.push_str("; test rule removed"),
        Ok(false) => {}
        Err(e) => detail.push_str(&format!(
            "; the test rule could not be removed ({e}); teardown removes it"
        )),
    }
    // The original failure (why it was ending) stays the record's failure when there is one.
    let failure = deployment
        .failure
        .clone()
        .unwrap_or_else(|| format!("{}: {}", cause.error, cause.cause));
    ending::end(
        ctx,
        deployment,
        Status::NeedsAttention,
        STEP,
        detail,
        Some(failure),
    )
    .await
}

/// Production answers 503 while a maintenance page is up, and a person may take hours to
/// come: a deployment that needs one takes its page down — unless one of its migration tasks
/// still runs (then the page protects production's schema, and the person decides). Never
/// fails the ending: what happened is said in the detail (teardown removes a page left up).
async fn maintenance_page_down(ctx: &Context, deployment: &Deployment) -> String {
    let running = match crate::migration::still_running(ctx, deployment).await {
        Ok(running) => running,
        Err(e) => {
            return format!(
                "the maintenance page, if any, was left up: could not look for running migrations ({e})"
            );
        }
    };
    if !running.is_empty() {
        return format!(
            "the maintenance page, if any, stays up while {} runs",
            running.join(" and ")
        );
    }
    match crate::maintenance::switch_off(ctx, deployment).await {
        Ok(true) => "maintenance page removed".into(),
        Ok(false) => String::new(),
        Err(e) => format!("the maintenance page could not be removed ({e}); teardown removes it"),
    }
}

/// A lock whose holder has no record: an operator action's hold (released after its lease)
/// or a prepare that took the lock and failed before writing the record (after a grace).
async fn unrecorded_holder(
    ctx: &Context,
    service: &str,
    lock: &LockItem,
) -> StepResult<Reconciled> {
    let now = ctx.now();
    let free_after = lock.unrecorded_hold_until();
    let mut answer = Reconciled {
        service: service.to_owned(),
        holder: Some(lock.holder.clone()),
        action: Action::Nothing,
        detail: String::new(),
        started: None,
    };
    if let Some(until) = free_after.filter(|t| *t > now) {
        answer.detail = format!(
            "held without a deployment record until {}",
            until.to_rfc3339()
        );
        return Ok(answer);
    }
    let next = Locks::new(ctx).release(service, &lock.holder).await?;
    warn!(%service, holder = %lock.holder, "freed a lock held without a deployment record");
    answer.action = Action::Released;
    answer.detail = "held without a deployment record past its lease; released".into();
    answer.started = start_next(ctx, next).await?;
    Ok(answer)
}

/// Starts the queued deployment that was handed the lock.
pub(crate) async fn start_next(ctx: &Context, next: Option<String>) -> StepResult<Option<String>> {
    let Some(next) = next else { return Ok(None) };
    executions::start(ctx, &next).await?;
    Ok(Some(next))
}
