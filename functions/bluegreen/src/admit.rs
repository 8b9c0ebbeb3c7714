//! Admitting one push for one service: the lock taken (or the queue joined, or the push
//! superseded), the live slot read, the record written. The prepare step runs it for each
//! service a push matches; the missed-push sweep and the release verbs (redeploy, rollback to
//! an earlier deployment) run it for the push they make. It sits below the steps so that those
//! callers do not import the prepare step.

use chrono::Duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::config::{ApprovalPolicy, ServiceConfig};
use crate::context::Context;
use crate::error::{StepError, StepResult};
use crate::event::Push;
use crate::lock::{Acquire, Locks, PushOrder};
use crate::naming;
use crate::queue::{self, Placed};
use crate::record::StepOutcome;
use crate::record::{Change, Deployment, Records, Status};
use crate::routing;
use crate::slot::Slot;

/// The timeline step admission writes as (the prepare step's name).
const STEP: &str = crate::step_table::PREPARE.name;

/// One service's deployment as prepare left it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Prepared1 {
    /// The deployment.
    pub deployment_id: String,
    /// The service.
    pub service: String,
    /// `started`, `queued` or `superseded`.
    pub outcome: PreparedOutcome,
    /// The live slot (started deployments only).
    #[serde(default)]
    pub live_slot: Option<Slot>,
    /// The slot being deployed to (started deployments only).
    #[serde(default)]
    pub target_slot: Option<Slot>,
    /// Whether a person must approve (the state machine skips approval when false).
    pub approval_required: bool,
    /// How long the approval may wait, for the state machine's task timeout.
    pub approval_timeout_seconds: u64,
    /// `Failed` only: the error's stable name and message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Prepared1 {
    /// The answer for a service that could not be prepared, with the error's name.
    pub(crate) fn failed(deployment_id: String, service: String, error: &StepError) -> Self {
        Prepared1 {
            deployment_id,
            service,
            outcome: PreparedOutcome::Failed,
            live_slot: None,
            target_slot: None,
            approval_required: false,
            approval_timeout_seconds: 0,
            error: Some(format!("{}: {error}", error.name())),
        }
    }
}

/// Where one service's deployment stands after prepare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PreparedOutcome {
    /// Holds the lock; the pipeline continues.
    Started,
    /// Waiting behind the running deployment.
    Queued,
    /// A newer push replaced it.
    Superseded,
    /// It already ran to its end (a replayed event): nothing more to do.
    Ended,
    /// This service could not be prepared (its config is invalid, its routing unreadable, …);
    /// `error` says why. Nothing of it was left behind, and other services went on.
    Failed,
}

/// `approval.policy = "auto"` only where the stack allows it (`AutoApproveServices`): writing
/// a config does not approve deployments.
pub fn auto_approval_allowed(ctx: &Context, config: &ServiceConfig) -> StepResult<()> {
    if config.approval.policy == ApprovalPolicy::Auto
        && !ctx.settings.auto_approve.allows(&config.name)
    {
        return Err(StepError::ConfigInvalid(vec![format!(
            "approval.policy: \"auto\" is not allowed for {} by the stack \
             (AutoApproveServices): writing a config does not approve deployments",
            config.name
        )]));
    }
    Ok(())
}

/// What [`prepare_service`] does when another deployment holds the service's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenLocked {
    /// Join the queue (a push: the newest queued push deploys next).
    Queue,
    /// Refuse with [`StepError::ReleaseRefused`], writing nothing: a redeploy names the image
    /// live *now*, which the running deployment is about to replace.
    Refuse,
}

/// Prepares `push` for one service — a push's, or one a person asked for (see
/// [`crate::release`]): the lock taken (or, as `when_locked` says, the queue joined), the live
/// slot read, the record written; its deployment id is [`naming::deployment_id`] of the push.
/// On an error a retry will not pass, what it took is given back before the error is returned.
pub async fn prepare_service(
    ctx: &Context,
    push: &Push,
    config: ServiceConfig,
    when_locked: WhenLocked,
) -> StepResult<Prepared1> {
    let service = config.name.clone();
    let id = naming::deployment_id(&service, &push.event_id, push.time);
    // Checked before anything is taken: nothing to give back.
    auto_approval_allowed(ctx, &config)?;
    match prepare_one(ctx, push, &id, config, when_locked).await {
        Err(e) if !e.is_retryable() => {
            warn!(%service, deployment_id = %id, error = %e, "service not prepared");
            give_back(ctx, &service, &id, &e).await?;
            Err(e)
        }
        prepared => prepared,
    }
}

/// Gives back what a failed prepare of `id` took. With no record written, the lock it may
/// hold is released. A record, once written, is ended by its own flow or by the reconciler
/// (which sweeps held locks) — except a queued record the lock does not name: nothing would
/// ever end it, so it is ended here as aborted (it touched nothing) with the error that
/// stopped it, rather than left showing "queued" for a push that will never deploy.
async fn give_back(ctx: &Context, service: &str, id: &str, error: &StepError) -> StepResult<()> {
    let records = Records::new(ctx);
    let locks = Locks::new(ctx);
    match records.get(id).await {
        Err(StepError::DeploymentNotFound(_)) => {
            locks.release(service, id).await?;
            Ok(())
        }
        Err(e) => Err(e),
        Ok(d) if d.status == Status::Queued => {
            let lock = locks.read(service).await?;
            let named = lock.is_some_and(|l| l.holder == id || l.queued.as_deref() == Some(id));
            if !named {
                let why = format!("not queued: {}: {error}", error.name());
                records
                    .update_while(
                        id,
                        Status::Queued,
                        Change::new().status(Status::Aborted).failure(&why).log(
                            STEP,
                            StepOutcome::Failed,
                            why.clone(),
                            ctx.now(),
                        ),
                    )
                    .await?;
            }
            Ok(())
        }
        Ok(_) => Ok(()),
    }
}

/// Prepares one service's deployment of the push.
///
/// A queued deployment's record is written *before* the lock's queue names it, so the lock
/// never names a deployment without a record: the push that supersedes it in the queue, and
/// the ending that hands it the lock, always find its record. A record already queued (this is
/// a retry, or the first attempt stopped right after writing it) goes through the queue again
/// instead of being answered as it stands, so a push is never left recorded as queued while
/// the lock knows nothing of it.
async fn prepare_one(
    ctx: &Context,
    push: &Push,
    id: &str,
    config: ServiceConfig,
    when_locked: WhenLocked,
) -> StepResult<Prepared1> {
    let records = Records::new(ctx);
    let recorded_queued = match records.get(id).await {
        Ok(existing) if existing.status == Status::Queued => true,
        // A retried prepare finds the record the first attempt wrote and answers the same.
        Ok(existing) => return Ok(summary(&existing)),
        Err(StepError::DeploymentNotFound(_)) => false,
        Err(e) => return Err(e),
    };
    let order = PushOrder::new(push.time, id);
    if recorded_queued && when_locked == WhenLocked::Refuse {
        return Err(StepError::ReleaseRefused(format!(
            "{id} is queued; a person's request never queues"
        )));
    }
    let placed = if recorded_queued {
        queue::place(ctx, &config.name, &order, STEP).await?
    } else {
        match Locks::new(ctx).acquire(&config.name, &order).await? {
            Acquire::Held => return start_new(ctx, push, id, config).await,
            Acquire::Stale { newer } => {
                return superseded_record(ctx, id, push, config, &newer).await;
            }
            Acquire::HeldBy(holder) if when_locked == WhenLocked::Refuse => {
                return Err(StepError::ReleaseRefused(format!(
                    "deployment {holder} is in progress; ask again once it has ended"
                )));
            }
            // Written before the lock's queue names it (see above).
            Acquire::HeldBy(holder) => {
                let deployment = new_record(ctx, id, push, config.clone(), Status::Queued, None);
                records.create(&deployment).await?;
                queue::queue_behind(ctx, &config.name, &order, &holder, STEP).await?
            }
        }
    };
    match placed {
        // The lock came free while this push queued, or an ending handed it over: the record
        // exists, so it is resumed (and, if that fails, left holding the lock for its
        // execution or the reconciler to end, never dropped here).
        Placed::Holds => resume_queued(ctx, id).await,
        Placed::Queued { holder } => {
            info!(deployment_id = %id, running = %holder, "queued behind running deployment");
            summary_of(ctx, id).await
        }
        Placed::Superseded { .. } => summary_of(ctx, id).await,
    }
}

/// Starts a deployment that has just taken a free lock: reads the live slot, writes the
/// record. The lock goes back if the live slot cannot be read, since nothing else was touched.
async fn start_new(
    ctx: &Context,
    push: &Push,
    id: &str,
    config: ServiceConfig,
) -> StepResult<Prepared1> {
    let live = match read_live(ctx, &config).await {
        Ok(live) => live,
        Err(e) => {
            // No record was written: give the lock back so the service is not blocked by a
            // deployment that never started.
            Locks::new(ctx).release(&config.name, id).await?;
            return Err(e);
        }
    };
    let deployment = new_record(ctx, id, push, config, Status::Preparing, Some(live));
    let stored = Records::new(ctx).create(&deployment).await?;
    info!(deployment_id = %id, live_slot = %live, "deployment started");
    Ok(summary(&stored))
}

/// Records a push that arrived after a newer one (queued, running or already deployed): it
/// never deploys.
async fn superseded_record(
    ctx: &Context,
    id: &str,
    push: &Push,
    config: ServiceConfig,
    by: &str,
) -> StepResult<Prepared1> {
    let mut deployment = new_record(ctx, id, push, config, Status::Superseded, None);
    deployment.failure = Some(format!("superseded by newer push {by}"));
    let stored = Records::new(ctx).create(&deployment).await?;
    queue::notify_superseded(ctx, &stored, by).await;
    Ok(summary(&stored))
}

/// Resumes a queued deployment the lock has been handed to: reads the live slot and moves its
/// record to preparing (a deployment no longer queued is answered as it stands).
pub async fn resume_queued(ctx: &Context, id: &str) -> StepResult<Prepared1> {
    let records = Records::new(ctx);
    let deployment = records.get(id).await?;
    if deployment.status != Status::Queued {
        return Ok(summary(&deployment));
    }
    let holder = Locks::new(ctx).holder(&deployment.service).await?;
    if holder.as_deref() != Some(id) {
        return Err(StepError::LockLost {
            service: deployment.service.clone(),
            holder: holder.unwrap_or_else(|| "nobody".into()),
        });
    }
    let live = read_live(ctx, &deployment.config).await?;
    records
        .update(
            id,
            Change::new().status(Status::Preparing).live_slot(live).log(
                STEP,
                StepOutcome::Succeeded,
                format!("resumed from the queue; live slot {live}"),
                ctx.now(),
            ),
        )
        .await?;
    summary_of(ctx, id).await
}

async fn summary_of(ctx: &Context, id: &str) -> StepResult<Prepared1> {
    Ok(summary(&Records::new(ctx).get(id).await?))
}

async fn read_live(ctx: &Context, config: &ServiceConfig) -> StepResult<Slot> {
    routing::read_production(ctx, config).await?.live()
}

/// A new deployment record of `push` for `config`, as admission writes it (`live`: the slot
/// serving production, for a deployment that starts now).
pub fn new_record(
    ctx: &Context,
    id: &str,
    push: &Push,
    config: ServiceConfig,
    status: Status,
    live: Option<Slot>,
) -> Deployment {
    let now = ctx.now();
    let mut detail = match live {
        Some(live) => format!("live slot {live}; deploying to {}", live.other()),
        None => match status {
            Status::Queued => "queued: another deployment of the service holds its lock".into(),
            Status::Superseded => {
                "superseded: a newer push of the service is queued or has run".into()
            }
            other => format!("{other:?}"),
        },
    };
    if let Some(request) = &push.requested {
        detail.push_str(&format!(
            "; {} requested by {}, without a push",
            request.what, request.by
        ));
    }
    Deployment {
        deployment_id: id.to_owned(),
        service: config.name.clone(),
        status,
        image: push.image.clone(),
        event_id: push.event_id.clone(),
        pushed_at: push.time,
        expires_at: now + Duration::hours(config.preprod.ttl_hours as i64),
        config,
        live_slot: live,
        created_at: now,
        listed: Default::default(),
        updated_at: now,
        timeline: vec![crate::record::TimelineEntry {
            step: STEP.into(),
            at: now,
            outcome: StepOutcome::Succeeded,
            detail,
        }],
        preprod: None,
        clones: Vec::new(),
        // A rollback to an older deployment starts from the revision that one started from.
        task_definitions: {
            let base = push
                .requested
                .as_ref()
                .and_then(|r| r.base_task_definition.clone());
            crate::record::TaskDefinitions {
                pinned_base: base.is_some(),
                base,
                ..Default::default()
            }
        },
        migration_task_arn: None,
        rehearsal_task_arn: None,
        rehearsal_started_at: None,
        migration_starting: None,
        production_migration: None,
        rollback_migration: None,
        failed_rollback_migrations: Vec::new(),
        migration_log: None,
        health_evidence: None,
        approval: None,
        switched_at: None,
        failure: None,
        dns_ttl: None,
        handed_over_to: None,
        dns_change_id: None,
        abort_requested: None,
        inflight: None,
        dns_back: None,
        resumed: None,
        production_scaling: None,
    }
}

/// What prepare answers for the deployment `d` as it stands.
pub fn summary(d: &Deployment) -> Prepared1 {
    let outcome = match d.status {
        Status::Queued => PreparedOutcome::Queued,
        Status::Superseded => PreparedOutcome::Superseded,
        status if status.is_terminal() => PreparedOutcome::Ended,
        _ => PreparedOutcome::Started,
    };
    let started = outcome == PreparedOutcome::Started;
    Prepared1 {
        deployment_id: d.deployment_id.clone(),
        service: d.service.clone(),
        outcome,
        live_slot: d.live_slot.filter(|_| started),
        target_slot: d.live_slot.map(Slot::other).filter(|_| started),
        approval_required: d.config.approval.policy == ApprovalPolicy::Required,
        approval_timeout_seconds: d.config.approval.timeout_seconds,
        error: None,
    }
}
