//! Operator actions outside the state machine: a manual rollback within the keep-warm window,
//! releasing a service whose last deployment ended needing attention, and aborting a
//! deployment before its switch.
//!
//! After a deployment succeeds, its old slot can be kept running for
//! `finish.keep_warm_seconds`. Inside that window an operator can send production back to it
//! with `bluegreen rollback <service>`. The rollback takes the service's lock (so no deployment
//! reads the routing mid-change), refuses unless the old slot is actually running, verifies
//! the routing it wrote, records who did it on the deployment, and notifies.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::autoscaling;
use crate::config::ServiceConfig;
use crate::config_store::ConfigStore;
use crate::context::Context;
use crate::ecs;
use crate::error::{StepError, StepResult};
use crate::executions;
use crate::fence;
use crate::identity;
use crate::lock::{Acquire, Locks, Released};
use crate::notify::{self, Notice};
use crate::ports::compute::ServiceState;
use crate::record::StepOutcome;
use crate::record::{Change, Deployment, Records, ResumedEnding, Status, TaskState};
use crate::retirement;
use crate::routing;
use crate::slot::Slot;
use crate::steps::reconcile;
use crate::steps::registry::{ABORT, BAKE, FINISH, ROLLBACK};
use crate::steps::{CaughtError, FailureInput};

const STEP: &str = retirement::MANUAL_ROLLBACK_STEP;

/// How long a manual rollback holds the service's lock at most: if the CLI is interrupted,
/// the reconciler frees the lock after this (the rollback itself takes seconds, a DNS one up
/// to two minutes).
const MANUAL_ROLLBACK_LEASE_SECONDS: i64 = 900;
/// Longest an operator waits for a Route 53 change to reach every name server.
const DNS_SYNC_ATTEMPTS: u32 = 60;
/// Seconds between two looks at the Route 53 change (GetChange is cheap; a person waits).
const DNS_SYNC_POLL_SECONDS: u64 = 2;

/// What a manual rollback did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManualRollback {
    /// The deployment that was rolled back (now `rolled_back`).
    pub deployment_id: String,
    /// The service.
    pub service: String,
    /// The slot that serves production again.
    pub live_slot: Slot,
    /// The slot traffic left (retired: scaled to zero, or in DNS mode left to teardown after
    /// one TTL).
    pub from_slot: Slot,
    /// Who asked for it.
    pub operator: String,
    /// What was done.
    pub detail: String,
    /// A push queued meanwhile that now holds the service's lock; its execution must be
    /// started (the CLI prints how).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_deployment: Option<String>,
}

/// Refuses (`NotAnOperator`) `who` unless the service's operators admit them
/// ([`identity::ensure_operator`]). The service's current config decides — an operator taken
/// off the list loses access at once; when it is gone or unreadable, the deployment's own
/// snapshot (`snapshot`), so a broken config never locks its operators out.
pub async fn authorize(
    ctx: &Context,
    service: &str,
    snapshot: Option<&ServiceConfig>,
    who: &str,
) -> StepResult<()> {
    match ConfigStore::new(ctx).load(service).await {
        Ok(config) => identity::ensure_operator(&config, who),
        Err(StepError::ServiceNotFound(_) | StepError::ConfigInvalid(_)) => match snapshot {
            Some(config) => identity::ensure_operator(config, who),
            // Nothing says who the operators are: refused rather than open to everyone.
            None => Err(StepError::NotAnOperator(format!(
                "{service} has no readable config and no deployment record naming its \
                 operators; fix its config first"
            ))),
        },
        Err(e) => Err(e),
    }
}

/// Sends production traffic of `service` back to the slot its last successful deployment
/// replaced. Refuses ([`StepError::RollbackRefused`]) when a deployment is in progress, the
/// last deployment that moved traffic is not a success, the keep-warm window has passed, the
/// old slot has no running task, or the service has no old slot (ECS's own blue/green: ECS
/// scales the old revision in after its bake).
pub async fn manual_rollback(
    ctx: &Context,
    service: &str,
    operator: &str,
) -> StepResult<ManualRollback> {
    // An unknown service is ServiceNotFound, not a refusal.
    let config = ConfigStore::new(ctx).load(service).await?;
    identity::ensure_operator(&config, operator)?;
    refuse_without_idle_slot(&config)?;
    // A deployment in progress holds the service's lock (read, not searched for in history).
    if let Some(lock) = Locks::new(ctx).read(service).await? {
        let status = match Records::new(ctx).get(&lock.holder).await {
            Ok(d) => d.status.to_string(),
            Err(_) => "no record".into(),
        };
        return Err(StepError::RollbackRefused(format!(
            "deployment {} is in progress ({status}); reject or let it finish first",
            lock.holder
        )));
    }
    let last = Records::new(ctx)
        .newest_for_service(service, |d| {
            matches!(d.status, Status::Succeeded | Status::RolledBack)
        })
        .await?
        .ok_or_else(|| {
            StepError::RollbackRefused(format!("{service} has no successful deployment"))
        })?;
    let last = &last;
    // The last deployment ran on ECS's engine, whatever the config says now.
    refuse_without_idle_slot(&last.config)?;
    // A manual rollback that did not finish is finished by running it again.
    let finishing = retirement::pending(last);
    if last.status == Status::RolledBack && !finishing {
        return Err(StepError::RollbackRefused(format!(
            "the last deployment that moved traffic ({}) was already rolled back",
            last.deployment_id
        )));
    }
    let warm_until =
        finished_at(last) + Duration::seconds(last.config.finish.keep_warm_seconds as i64);
    if !finishing && ctx.now() > warm_until {
        return Err(StepError::RollbackRefused(format!(
            "the keep-warm window of {} ended at {} (finish.keep_warm_seconds = {}); deploy an \
             earlier deployment again through the full flow: bluegreen rollback {service} --to \
             <deployment-id> (bluegreen history {service} lists them)",
            last.deployment_id,
            warm_until.to_rfc3339(),
            last.config.finish.keep_warm_seconds
        )));
    }
    let lock_id = format!("{}-manual-rollback", last.deployment_id);
    let locks = Locks::new(ctx);
    let lease_until = ctx.now() + Duration::seconds(MANUAL_ROLLBACK_LEASE_SECONDS);
    if let Acquire::HeldBy(holder) = locks.hold(service, &lock_id, lease_until).await? {
        return Err(StepError::RollbackRefused(format!(
            "deployment {holder} holds the lock of {service}"
        )));
    }
    let result = roll_back(ctx, last, operator).await;
    // Whatever happened, the lock goes back (to a push queued meanwhile, if any).
    let next = locks.release(service, &lock_id).await?;
    let next = start_next_if_known(ctx, next).await;
    let (detail, live_slot, from_slot) = result?;
    Ok(ManualRollback {
        deployment_id: last.deployment_id.clone(),
        service: service.to_owned(),
        live_slot,
        from_slot,
        operator: operator.to_owned(),
        detail,
        next_deployment: next,
    })
}

/// Refuses a manual rollback of a service with no idle slot (ECS's own blue/green): the old
/// revision's tasks are gone once ECS cleaned up, and production would be sent to an empty
/// target group.
fn refuse_without_idle_slot(config: &ServiceConfig) -> StepResult<()> {
    if crate::engine::of(config).has_idle_slot() {
        return Ok(());
    }
    let service = &config.name;
    Err(StepError::RollbackRefused(format!(
        "{service} deploys with ECS's own blue/green (traffic.engine = \"ecs\"): ECS scaled the \
         old revision in after its bake, so there is no warm side to send production back to; \
         deploy an earlier deployment again through the full flow: bluegreen rollback {service} \
         --to <deployment-id> (bluegreen history {service} lists them)"
    )))
}

/// When the deployment finished (its `finish` entry), or its last update.
fn finished_at(deployment: &Deployment) -> DateTime<Utc> {
    deployment
        .timeline
        .iter()
        .rev()
        .find(|e| e.step == FINISH.name)
        .map(|e| e.at)
        .unwrap_or(deployment.updated_at)
}

/// Sends production back to the good slot, records the rollback, retires the bad slot. A
/// rollback a person started before (its intent is on the record) whose traffic is already
/// back, or that is recorded as back, is only finished.
async fn roll_back(
    ctx: &Context,
    deployment: &Deployment,
    operator: &str,
) -> StepResult<(String, Slot, Slot)> {
    let config = &deployment.config;
    let (good, bad, state) = retirement::traffic_of(ctx, deployment).await?;
    let traffic_back = state.percent(good) == 100 || deployment.status == Status::RolledBack;
    if retirement::pending(deployment) && traffic_back {
        // `finish` refuses a route changed since the rollback.
        let (done, ..) = retirement::finish(ctx, deployment, operator).await?;
        info!(deployment_id = %deployment.deployment_id, %operator, "manual rollback finished");
        let id = &deployment.deployment_id;
        let detail = format!("manual rollback of {id} finished by {operator}: {done}");
        return Ok((detail, good, bad));
    }
    if state.percent(bad) != 100 {
        return Err(StepError::RollbackRefused(format!(
            "production sends {}% to {bad}, not 100%: routing changed outside bluegreen",
            state.percent(bad)
        )));
    }
    let good_service = warm_slot(ctx, config, good).await?;
    note_intent(ctx, deployment, operator, good).await?;
    give_production_capacity(ctx, deployment, &good_service).await?;
    let moved = routing::set_production_verified(ctx, config, good, 100, routing::Move::Back)
        .await
        .and_then(|read_back| read_back.map_err(StepError::RollbackFailed));
    let change = match moved {
        Ok(change) => change,
        Err(e) => {
            rest_unless_moved(ctx, deployment, good).await;
            return Err(e);
        }
    };
    let moved = format!(
        "manual rollback by {operator}: production traffic back on {good} ({})",
        config.slots.get(good).service
    );
    retirement::record_rolled_back(ctx, deployment, operator, &moved).await?;
    let retired = async {
        // The bad slot keeps its tasks until every Route 53 name server answers `good`.
        if let Some(change) = change {
            wait_in_sync(ctx, &change).await?;
        }
        retirement::retire_and_log(ctx, deployment).await
    }
    .await;
    let detail = match &retired {
        Ok(done) => format!("{moved}; {done}"),
        Err(e) => format!("{moved}; {}", retirement::unfinished(deployment, bad, e)),
    };
    if let Err(e) = notify::outcome(ctx, deployment, Notice::RolledBack, &detail).await {
        warn!(error = %e, "could not publish the manual rollback");
    }
    info!(deployment_id = %deployment.deployment_id, %operator, "manual rollback done");
    match retired {
        Ok(_) => Ok((detail, good, bad)),
        Err(_) => Err(StepError::RollbackFailed(detail)),
    }
}

/// The slot production goes back to, refused unless it still runs tasks.
async fn warm_slot(
    ctx: &Context,
    config: &crate::config::ServiceConfig,
    good: Slot,
) -> StepResult<ServiceState> {
    let name = &config.slots.get(good).service;
    let service = ecs::describe_service(ctx, &config.cluster, name).await?;
    if service.running_count < 1 || service.desired_count < 1 {
        return Err(StepError::RollbackRefused(format!(
            "{name} runs {} of {} tasks: the old slot is no longer warm",
            service.running_count, service.desired_count
        )));
    }
    Ok(service)
}

/// Writes the rollback's intent on the record before traffic moves: if what follows stops or
/// its answer is lost after it took effect, running the command again (or the guard) finds
/// the rollback and finishes it (found by the simulator, seed 5626).
async fn note_intent(
    ctx: &Context,
    deployment: &Deployment,
    operator: &str,
    good: Slot,
) -> StepResult<()> {
    let intent = format!("manual rollback by {operator}: sending production back to {good}");
    let noted = Records::new(ctx)
        .update_while(
            &deployment.deployment_id,
            Status::Succeeded,
            Change::new().log(STEP, StepOutcome::Started, intent, ctx.now()),
        )
        .await?;
    if !noted {
        return Err(StepError::RollbackRefused(format!(
            "{} is no longer the succeeded deployment (rolled back meanwhile?)",
            deployment.deployment_id
        )));
    }
    Ok(())
}

/// Gives the slot taking traffic back production's autoscaling and task count first, so it
/// can carry production.
async fn give_production_capacity(
    ctx: &Context,
    deployment: &Deployment,
    good: &ServiceState,
) -> StepResult<()> {
    let config = &deployment.config;
    let bad = deployment.target_slot()?;
    let good_name = &config.slots.get(bad.other()).service;
    let bad_name = &config.slots.get(bad).service;
    let bad_service = ecs::describe_service(ctx, &config.cluster, bad_name).await?;
    if let Some(target) = autoscaling::taken_back(ctx, deployment, bad).await? {
        autoscaling::restore(ctx, &config.cluster, good_name, &target).await?;
    }
    // Found again through service discovery (Cloud Map) before production's traffic arrives:
    // finish took the warm slot's registries away.
    ecs::ensure_registries(ctx, &config.cluster, good_name, &bad_service.registries).await?;
    let need = crate::capacity::needed(bad_service.desired_count, bad_service.running_count);
    if let Some(count) = crate::capacity::scale_to(good.desired_count, need) {
        ecs::update_service(ctx, &config.cluster, good_name, None, count).await?;
    }
    Ok(())
}

/// A manual rollback whose traffic move failed before any of production reached `good`: the
/// warm slot goes back to rest (its autoscaling, which [`give_production_capacity`] gave
/// production's minimum), so a rollback nobody runs again leaves no idle slot a policy keeps
/// up. Best effort: what cannot be read or written is logged, and running the rollback again
/// gives the capacity back.
async fn rest_unless_moved(ctx: &Context, deployment: &Deployment, good: Slot) {
    let config = &deployment.config;
    match routing::read_production(ctx, config).await {
        Ok(state) if state.weight(good) == 0 => {
            let service = &config.slots.get(good).service;
            if let Err(e) = autoscaling::rest(ctx, &config.cluster, service).await {
                warn!(error = %e, %service, "the warm slot's autoscaling was left as given");
            }
        }
        Ok(_) => {}
        Err(e) => {
            warn!(error = %e, "production unreadable: the warm slot's autoscaling was left as given")
        }
    }
}

async fn wait_in_sync(ctx: &Context, change: &str) -> StepResult<()> {
    for _ in 0..DNS_SYNC_ATTEMPTS {
        if routing::change_in_sync(ctx, change).await? {
            return Ok(());
        }
        // An operator command, not a Lambda step: waiting in-process is what the user expects.
        tokio::time::sleep(std::time::Duration::from_secs(DNS_SYNC_POLL_SECONDS)).await;
    }
    Err(StepError::RollbackFailed(format!(
        "Route 53 change {change} was not INSYNC after {} s",
        u64::from(DNS_SYNC_ATTEMPTS) * DNS_SYNC_POLL_SECONDS
    )))
}

/// What `bluegreen unlock` did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unlocked {
    /// The service.
    pub service: String,
    /// The ended deployment that held the lock.
    pub released_from: String,
    /// Who asked for it.
    pub operator: String,
    /// A push queued meanwhile that now holds the service's lock; its execution must be
    /// started (the CLI prints how).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_deployment: Option<String>,
}

/// Releases `service`'s lock held by a deployment that has ended — typically one that ended
/// needing attention (a failed rollback migration, a clone a running slot uses), once a person
/// has looked. Refuses ([`StepError::UnlockRefused`]) while the holder is still in progress
/// (its execution releases the lock itself), one of its migration tasks still runs, or — a
/// holder with no record yet — a push is being admitted. The release is recorded on the
/// holder's timeline.
pub async fn unlock(ctx: &Context, service: &str, operator: &str) -> StepResult<Unlocked> {
    let locks = Locks::new(ctx);
    let lock = locks
        .read(service)
        .await?
        .ok_or_else(|| StepError::UnlockRefused(format!("{service} is not locked")))?;
    // The holder's record says who operated the service when its config cannot be read.
    let holder = Records::new(ctx).get(&lock.holder).await.ok();
    authorize(ctx, service, holder.as_ref().map(|d| &d.config), operator).await?;
    if ctx.settings.deployment_machine_arn.is_some()
        && executions::status(ctx, &lock.holder).await?.is_running()
    {
        return Err(StepError::UnlockRefused(format!(
            "the execution of {} is running; it releases the lock when it ends (or use \
             bluegreen abort {})",
            lock.holder, lock.holder
        )));
    }
    let holder_log = holder_released_log(ctx, &lock, operator).await?;
    let released = locks
        .release_with(service, &lock.holder, |_| Ok(holder_log.clone()))
        .await;
    let next = match released {
        Ok(Released::Released { next }) => next,
        Ok(Released::NotHolder) => {
            return Err(StepError::UnlockRefused(format!(
                "the lock of {service} changed meanwhile (no longer held by {}); look again",
                lock.holder
            )));
        }
        Err(e) if holder_log.is_some() => {
            let now = Records::new(ctx).get(&lock.holder).await?;
            if !now.status.is_terminal() {
                return Err(StepError::UnlockRefused(format!(
                    "{} is {} again (retried meanwhile); it releases the lock when it ends",
                    lock.holder, now.status
                )));
            }
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    info!(%service, holder = %lock.holder, %operator, "lock released by an operator");
    let next = start_next_if_known(ctx, next).await;
    Ok(Unlocked {
        service: service.to_owned(),
        released_from: lock.holder,
        operator: operator.to_owned(),
        next_deployment: next,
    })
}

/// The checks `unlock` makes on the lock's holder before releasing, and the record write that
/// rides the release: refused while the holder is in progress or one of its migrations runs;
/// what its migrations did is settled first; `None` for a holder without a record that is not
/// a push being admitted ([`crate::lock::LockItem::admission_until`]).
async fn holder_released_log(
    ctx: &Context,
    lock: &crate::lock::LockItem,
    operator: &str,
) -> StepResult<Option<crate::ports::tables::Write>> {
    Ok(match Records::new(ctx).get(&lock.holder).await {
        Ok(holder) if !holder.status.is_terminal() => {
            return Err(StepError::UnlockRefused(format!(
                "deployment {} is in progress ({}); it releases the lock when it ends",
                holder.deployment_id, holder.status
            )));
        }
        Ok(holder) => {
            // The next deployment would migrate the same database while this one's migration
            // (its rollback, typically) still runs. Found by the simulator (seed 2532).
            let running = crate::migration::still_running(ctx, &holder).await?;
            if !running.is_empty() {
                return Err(StepError::UnlockRefused(format!(
                    "{} of {} still runs; wait until it has stopped (or stop it), then unlock",
                    running.join(" and "),
                    holder.deployment_id
                )));
            }
            // ECS would move (or roll back) production on its own with no lock held, and the
            // next push's launch would find its deployment going on.
            if let Some(going) = crate::engine::of(&holder.config)
                .still_going(ctx, &holder)
                .await?
            {
                return Err(StepError::UnlockRefused(format!("{going}; then unlock")));
            }
            // What its migrations did is on the record before anything else deploys.
            crate::migration::settle_tracked(ctx, &holder).await?;
            let reason = lock
                .needs_attention
                .as_deref()
                .unwrap_or("no reason recorded");
            // Logged in the lock's own transaction, which holds only while the holder has
            // still ended: a `retry` that re-opened it meanwhile makes the unlock change nothing.
            Some(Records::new(ctx).update_in_transaction_while(
                &holder.deployment_id,
                &ENDED,
                Change::new().log(
                    "unlock",
                    StepOutcome::Succeeded,
                    format!("lock released by {operator} (it was kept because: {reason})"),
                    ctx.now(),
                ),
            ))
        }
        // A holder without a record is an operator action's hold (a manual rollback's, which
        // a person may release: an interrupted `rollback` is run again after `unlock`) or a
        // push being admitted: prepare takes the lock, then writes the record. Released in
        // between, the deployment would run without the lock (found by the simulator: "shared
        // unlock @2"); it is refused until the admission's grace has run out.
        Err(StepError::DeploymentNotFound(_)) => {
            if let Some(until) = lock.admission_until().filter(|t| *t > ctx.now()) {
                return Err(StepError::UnlockRefused(format!(
                    "{} holds the lock and has no deployment record yet (a push being \
                     admitted); it keeps the lock until {}, then unlock (or the reconciler) \
                     frees it",
                    lock.holder,
                    until.to_rfc3339()
                )));
            }
            None
        }
        Err(e) => return Err(e),
    })
}

/// Starts the queued deployment a released lock passed to, when the deployment machine is
/// known (in the stack); elsewhere the caller is told to start it. A failed start is not the
/// operator action's failure — what the person asked for is done, and saying otherwise would
/// make them do it again: the next deployment holds the lock, and the reconciler's sweep
/// starts an execution that never started.
async fn start_next_if_known(ctx: &Context, next: Option<String>) -> Option<String> {
    if let Some(next) = &next {
        executions::start_in_stack(ctx, next).await;
    }
    next
}

/// The statuses of a deployment that has ended, needing attention included.
const ENDED: [Status; 5] = [
    Status::Superseded,
    Status::Succeeded,
    Status::Aborted,
    Status::RolledBack,
    Status::NeedsAttention,
];

/// What `bluegreen abort` did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Aborted {
    /// The deployment.
    pub deployment_id: String,
    /// How it ended: `aborted`, or `needs_attention` when the abort itself could not finish.
    pub status: Status,
    /// What was done.
    pub detail: String,
    /// Who asked for it.
    pub operator: String,
    /// A queued deployment that now holds the lock (its execution has been started when the
    /// deployment machine is known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_deployment: Option<String>,
}

/// Aborts a deployment that has not moved traffic: stops its execution (so no later step runs),
/// then runs the same abort the state machine would — pre-prod restored, clones removed, lock
/// released or handed over — with the operator named as the cause. Refuses
/// ([`StepError::AbortRefused`]) once traffic may have moved (switching, baking: the flow
/// rolls back itself, or use `bluegreen rollback` after it), for a queued deployment, and for
/// one that has ended.
pub async fn abort(ctx: &Context, deployment_id: &str, operator: &str) -> StepResult<Aborted> {
    let deployment = Records::new(ctx).get(deployment_id).await?;
    authorize(ctx, &deployment.service, Some(&deployment.config), operator).await?;
    let refuse = |why: String| Err(StepError::AbortRefused(why));
    match deployment.status {
        s if s.is_terminal() => return refuse(format!("{deployment_id} has ended ({s:?})")),
        Status::Queued => {
            return refuse(format!(
                "{deployment_id} is queued and has touched nothing; a newer push supersedes it"
            ));
        }
        Status::Switching | Status::Baking => {
            return refuse(format!(
                "{deployment_id} is {}: traffic may have moved, so ending it is a rollback \
                 (it rolls back on its own when bake fails; after it ends, bluegreen rollback {})",
                deployment.status, deployment.service
            ));
        }
        _ => {}
    }
    // The request is one conditional write: either a step moved the deployment to switching
    // first (then this is refused: it is a rollback now), or no step moves its status or acts
    // on AWS after it (see `fence`).
    match fence::request_abort(
        ctx,
        deployment_id,
        operator,
        &[Status::Queued, Status::Switching, Status::Baking],
    )
    .await?
    {
        fence::AbortMark::Requested => {}
        fence::AbortMark::AlreadyRequested(earlier) => {
            return refuse(format!(
                "{deployment_id} is already being aborted (asked by {} at {}); the abort \
                 finishes on its own (the reconciler's sweep completes one that stopped)",
                earlier.by, earlier.at
            ));
        }
        fence::AbortMark::Refused(current) => {
            return refuse(format!(
                "{deployment_id} is {} now: traffic may have moved, so ending it is a \
                 rollback (after it ends, bluegreen rollback {})",
                current.status, current.service
            ));
        }
    }
    if ctx.settings.deployment_machine_arn.is_some() {
        executions::stop(ctx, deployment_id, &format!("aborted by {operator}")).await?;
    }
    let cause = CaughtError {
        error: "AbortedByOperator".into(),
        cause: format!("aborted by {operator}"),
    };
    let ended = reconcile::abort_or_attention(ctx, &deployment, cause).await?;
    let next = start_next_if_known(ctx, ended.next_deployment.clone()).await;
    info!(%deployment_id, %operator, status = ?ended.status, "aborted by an operator");
    Ok(Aborted {
        deployment_id: deployment_id.to_owned(),
        status: ended.status,
        detail: ended.detail,
        operator: operator.to_owned(),
        next_deployment: next,
    })
}

/// How long `bluegreen retry` waits, at most, for a rollback migration the ending runs when
/// run by the CLI itself (on an emulator: a person at a terminal can wait for a long one).
pub const RETRY_WAIT_LIMIT: std::time::Duration = std::time::Duration::from_secs(3 * 60 * 60);

/// Added to a retry's wait limit for the bound on its process: one pass of the ending may
/// begin just before the limit (the operator API's 12 minutes + this = its function's 15).
const RETRY_PASS_MARGIN_SECONDS: i64 = 3 * 60;

/// What `bluegreen retry` did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retried {
    /// The deployment.
    pub deployment_id: String,
    /// The ending that was run again: `abort`, `rollback` or `finish`.
    pub ending: String,
    /// How it ended this time (`needs_attention` again if what stopped it is still there).
    pub status: Status,
    /// What was done.
    pub detail: String,
    /// Who asked for it.
    pub operator: String,
    /// A queued deployment that now holds the lock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_deployment: Option<String>,
}

/// Which ending a retry re-runs, and the status it resumes from: finish after a good bake,
/// rollback once traffic moved, abort before.
fn ending_to_retry(deployment: &Deployment) -> (&'static str, Status) {
    // A deployment retried before re-runs the ending chosen then: a step of its dead
    // execution may have logged an outcome since (a bake check "succeeded" after the sweep
    // marked it), and the ending, once begun, is not swapped for another.
    match deployment.resumed.as_ref().map(|r| r.ending.as_str()) {
        Some(e) if e == FINISH.name => return (FINISH.name, Status::Baking),
        Some(e) if e == ROLLBACK.name => return (ROLLBACK.name, Status::Baking),
        Some(e) if e == ABORT.name => return (ABORT.name, Status::Preprod),
        _ => {}
    }
    if deployment.has_outcome(BAKE.name, StepOutcome::Succeeded) {
        (FINISH.name, Status::Baking)
    } else if deployment.switched_at.is_some() {
        (ROLLBACK.name, Status::Baking)
    } else {
        (ABORT.name, Status::Preprod)
    }
}

/// Runs `ending` until it has ended, waiting in-process (as the state machine would) while it
/// asks to, up to `wait_limit` (by the context's clock, as the sweep reads `resumed.until`);
/// an ending that fails for good leaves the deployment needing attention with the cause. An
/// ending still waiting at the limit, or this process failing, hands it to the reconciler's
/// sweep (`resumed.until` brought forward to now), which continues it from then on; a pass
/// that finds the ending no longer this retry's (handed over, or re-run by another retry)
/// stops.
async fn run_ending_to_its_end(
    ctx: &Context,
    ending: &str,
    input: &FailureInput,
    mine: &ResumedEnding,
    wait_limit: std::time::Duration,
) -> StepResult<crate::steps::Ended> {
    let limit = mine.at + Duration::from_std(wait_limit).unwrap_or(Duration::days(1));
    loop {
        let ended = match crate::steps::registry::run_ending_once(ctx, ending, input).await {
            Ok(ended) => ended,
            Err(e) => {
                hand_over_to_the_sweep(ctx, &input.deployment_id, mine).await;
                return Err(e);
            }
        };
        let Some(wait) = &ended.wait else {
            return Ok(ended);
        };
        let seconds = Duration::seconds(wait.seconds as i64);
        if ctx.now() + seconds > limit {
            hand_over_to_the_sweep(ctx, &input.deployment_id, mine).await;
            return Ok(ended);
        }
        tokio::time::sleep(std::time::Duration::from_secs(wait.seconds)).await;
        let current = Records::new(ctx).get(&input.deployment_id).await?;
        if current.resumed.as_ref() != Some(mine) {
            return Ok(crate::steps::Ended {
                detail: format!(
                    "{}; the ending was handed to the reconciler's sweep meanwhile",
                    ended.detail
                ),
                ..ended
            });
        }
    }
}

/// Tells the reconciler's sweep that no retry process carries the deployment's ending on any
/// more — if the ending is still `mine` (another retry's is left alone). A failure is only
/// logged: the sweep then waits for the retry's recorded bound.
async fn hand_over_to_the_sweep(ctx: &Context, deployment_id: &str, mine: &ResumedEnding) {
    let records = Records::new(ctx);
    let handed = async {
        let current = records.get(deployment_id).await?;
        if current.resumed.as_ref() != Some(mine) {
            return Ok(());
        }
        let handed = ResumedEnding {
            until: ctx.now(),
            ..mine.clone()
        };
        records
            .update_ending(deployment_id, Change::new().resumed(&handed))
            .await
    };
    match handed.await {
        Ok(()) | Err(StepError::DeploymentEnded { .. }) => {}
        Err(e) => {
            warn!(%deployment_id, error = %e, "could not hand the retried ending to the sweep")
        }
    }
}

/// A failed rollback migration is run again only once its task has stopped: one stopped at
/// its deadline may still be running through its stop timeout, and two rollback migrations
/// must never write to production's database at once.
async fn earlier_rollback_stopped(ctx: &Context, deployment: &Deployment) -> StepResult<()> {
    let Some(failed) = deployment
        .rollback_migration
        .as_ref()
        .filter(|t| t.state == TaskState::Failed && !t.task_arn.is_empty())
    else {
        return Ok(());
    };
    let cluster = &deployment.config.cluster;
    match ctx
        .ports
        .compute
        .describe_task(cluster, &failed.task_arn)
        .await?
    {
        Some(task) if task.last_status != "STOPPED" => Err(StepError::RetryRefused(format!(
            "{}'s rollback migration {} is still stopping (ECS reports it {}): retry once it \
             has stopped, so that two rollback migrations never run at once",
            deployment.deployment_id, failed.task_arn, task.last_status
        ))),
        _ => Ok(()),
    }
}

/// The change a retry re-opens the ending with: its status back, who re-runs it until when,
/// and — when the rollback migration failed — that migration set aside to run again as a new
/// task (the person retrying has fixed its cause; finding the failed task again would only
/// repeat the failure).
fn reopening(
    deployment: &Deployment,
    operator: &str,
    ending: &str,
    resume: Status,
    resumed: &ResumedEnding,
) -> Change {
    let mut change = Change::new().status(resume).resumed(resumed);
    let mut what = format!("{operator} re-runs {ending}");
    if let Some(failed) = deployment
        .rollback_migration
        .as_ref()
        .filter(|t| matches!(t.state, TaskState::Failed | TaskState::NeverRan))
    {
        let mut earlier = deployment.failed_rollback_migrations.clone();
        earlier.push(failed.clone());
        change = change.rollback_migration_again(&earlier);
        what.push_str(&format!(
            ", running the rollback migration again (attempt {}; the failed one: {})",
            earlier.len() + 1,
            failed.detail
        ));
    }
    change.log("retry", StepOutcome::Started, what, resumed.at)
}

/// Runs the ending of a deployment that needs attention once more, after a person fixed what
/// stopped it (pointed a slot back at production's database, restored a permission, …): finish
/// if its bake succeeded, rollback if traffic moved, else abort. The ending decides from AWS
/// as always, so it ends needing attention again if the cause is still there. Refuses
/// ([`StepError::RetryRefused`]) unless the deployment needs attention and still holds its
/// service's lock (after `unlock`, another deployment may be running). Recorded on the
/// timeline with the operator.
///
/// `wait_limit` bounds the in-process wait for a rollback migration: [`RETRY_WAIT_LIMIT`] from
/// the CLI on an emulator, less than the Lambda timeout from the operator API. Past it, the
/// deployment is left as the ending left it and the answer says so.
pub async fn retry(
    ctx: &Context,
    deployment_id: &str,
    operator: &str,
    wait_limit: std::time::Duration,
) -> StepResult<Retried> {
    let records = Records::new(ctx);
    let deployment = records.get(deployment_id).await?;
    authorize(ctx, &deployment.service, Some(&deployment.config), operator).await?;
    if deployment.status != Status::NeedsAttention {
        return Err(StepError::RetryRefused(format!(
            "{deployment_id} is {}; only a deployment that needs attention is retried",
            deployment.status
        )));
    }
    let holder = Locks::new(ctx).holder(&deployment.service).await?;
    if holder.as_deref() != Some(deployment_id) {
        return Err(StepError::RetryRefused(format!(
            "{deployment_id} no longer holds the lock of {} (held by {}); its slots may belong \
             to another deployment now",
            deployment.service,
            holder.as_deref().unwrap_or("nobody")
        )));
    }
    earlier_rollback_stopped(ctx, &deployment).await?;
    let (ending, resume) = ending_to_retry(&deployment);
    let now = ctx.now();
    // While this process may still run the ending, the reconciler's sweep leaves it alone
    // (two runs of one ending at once would race each other); past it, the sweep continues it.
    let resumed = ResumedEnding {
        ending: ending.to_owned(),
        by: operator.to_owned(),
        at: now,
        until: now
            + Duration::from_std(wait_limit).unwrap_or(Duration::days(1))
            + Duration::seconds(RETRY_PASS_MARGIN_SECONDS),
    };
    // The operator re-opens an ending: one transaction, only while the deployment still
    // needs attention and holds the lock — a second retry, or an `unlock` that handed the lock
    // on, between the reads above and this write makes it change nothing.
    let reopen = records.update_in_transaction_while(
        deployment_id,
        &[Status::NeedsAttention],
        reopening(&deployment, operator, ending, resume, &resumed),
    );
    if !Locks::new(ctx)
        .reopen(&deployment.service, deployment_id, reopen)
        .await?
    {
        return Err(StepError::RetryRefused(format!(
            "{deployment_id} changed while the retry started (another retry, or an unlock, \
             came first); look at it again"
        )));
    }
    let input = FailureInput {
        deployment_id: deployment_id.to_owned(),
        error: Some(CaughtError {
            error: "RetriedByOperator".into(),
            cause: format!("{ending} retried by {operator}"),
        }),
    };
    let ended = run_ending_to_its_end(ctx, ending, &input, &resumed, wait_limit).await?;
    let next = start_next_if_known(ctx, ended.next_deployment.clone()).await;
    info!(%deployment_id, %operator, ending, status = ?ended.status, "ending retried");
    Ok(Retried {
        deployment_id: deployment_id.to_owned(),
        ending: ending.to_owned(),
        status: ended.status,
        detail: ended.detail,
        operator: operator.to_owned(),
        next_deployment: next,
    })
}
