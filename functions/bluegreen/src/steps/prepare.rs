//! Prepare: turn an ECR push into deployments — match service configs, take each service's
//! lock (or queue behind the running deployment), read which slot is live from AWS, and create
//! the deployment record.

use chrono::Duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::config::{ApprovalPolicy, ServiceConfig, StackRegistry};
use crate::config_store::{ConfigStore, InvalidConfig};
use crate::context::Context;
use crate::error::{StepError, StepResult};
use crate::event::{self, Intake, Push};
use crate::lock::{Acquire, Locks, PushOrder};
use crate::naming;
use crate::notify;
use crate::queue::{self, Placed};
use crate::record::StepOutcome;
use crate::record::{Change, Deployment, Records, Status};
use crate::routing;
use crate::slot::Slot;

const STEP: &str = super::registry::PREPARE.name;

/// What prepare made of one event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Prepared {
    /// Nothing to do, and why.
    Ignored {
        /// Why the event starts nothing.
        reason: String,
    },
    /// One entry per matching service.
    Deployments {
        /// The deployments this push created or found.
        deployments: Vec<Prepared1>,
    },
}

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
    fn failed(deployment_id: String, service: String, error: &StepError) -> Self {
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

/// Handles an EventBridge event, or `{"resume": "<deployment id>"}` for a queued deployment
/// that has been handed the lock by the deployment before it.
pub async fn run(ctx: &Context, input: &serde_json::Value) -> StepResult<Prepared> {
    if let Some(resume) = input.get("resume") {
        let id = resume
            .as_str()
            .ok_or_else(|| StepError::EventMalformed("resume must be a deployment id".into()))?;
        let one = resume_queued(ctx, id).await?;
        return Ok(Prepared::Deployments {
            deployments: vec![one],
        });
    }
    let push = match event::parse(input)? {
        Intake::Ignored(reason) => {
            info!(%reason, "event ignored");
            return Ok(Prepared::Ignored { reason });
        }
        Intake::Push(push) => push,
    };
    let Watchers {
        matching,
        invalid,
        elsewhere,
    } = watchers(ctx, &push).await?;
    if matching.is_empty() && invalid.is_empty() {
        let reason = unwatched(&push, &elsewhere);
        info!(%reason, "event ignored");
        return Ok(Prepared::Ignored { reason });
    }
    let mut deployments = Vec::new();
    for bad in invalid {
        warn!(service = %bad.service, error = %bad.error(), "push for an invalid config");
        let id = naming::deployment_id(&bad.service, &push.event_id, push.time);
        report_invalid_config(ctx, &bad, &id).await?;
        deployments.push(Prepared1::failed(id, bad.service.clone(), &bad.error()));
    }
    match prepare_watchers(ctx, &push, matching, &mut deployments).await {
        Some(e) => Err(e),
        None => Ok(Prepared::Deployments { deployments }),
    }
}

/// Why a push no service takes is ignored: nobody watches it, or only in other registries.
fn unwatched(push: &Push, elsewhere: &[String]) -> String {
    if elsewhere.is_empty() {
        format!(
            "no service watches {}:{}",
            push.image.repository, push.image.tag
        )
    } else {
        format!(
            "{}:{} from {} in {}: {}",
            push.image.repository,
            push.image.tag,
            push.image.account,
            push.image.region,
            elsewhere.join("; ")
        )
    }
}

/// Prepares each watching service on its own, adding its answer to `deployments`; returns
/// the first retryable error (after every service was tried), for Step Functions to retry the
/// whole intake.
async fn prepare_watchers(
    ctx: &Context,
    push: &Push,
    matching: Vec<ServiceConfig>,
    deployments: &mut Vec<Prepared1>,
) -> Option<StepError> {
    let mut retry = None;
    for config in matching {
        let service = config.name.clone();
        let id = naming::deployment_id(&service, &push.event_id, push.time);
        // Refused before anything is looked up or parked: a parked record would carry the
        // config past this check (the reconciler puts it through the queue as it stands).
        if let Err(e) = auto_approval_allowed(ctx, &config) {
            deployments.push(Prepared1::failed(id, service, &e));
            continue;
        }
        // A push the missed-push sweep deployed before its event arrived: the same deployment.
        // When that cannot be told, nothing is parked (a parked record could deploy the same
        // image a second time); the retry asks again.
        match swept(ctx, &service, push).await {
            Ok(Some(swept)) => {
                info!(%service, deployment_id = %swept.deployment_id, "push already deployed by the sweep");
                deployments.push(summary(&swept));
                continue;
            }
            Ok(None) => {}
            Err(e) if e.is_retryable() => {
                warn!(%service, error = %e, "could not tell whether the sweep deployed this push; retried");
                retry.get_or_insert(e);
                continue;
            }
            Err(e) => {
                deployments.push(Prepared1::failed(id, service, &e));
                continue;
            }
        }
        match prepare_service(ctx, push, config.clone(), WhenLocked::Queue).await {
            Ok(one) => deployments.push(one),
            // A retryable error stops only this service: the services after it are prepared
            // now, and this one's push is parked (see `park`). Step Functions then retries the
            // whole intake; every service's prepare is idempotent (the record it wrote is found
            // again), so a retry repeats nothing and goes through the queue with the parked one.
            Err(e) if e.is_retryable() => {
                warn!(%service, deployment_id = %id, error = %e, "service not prepared yet; parked for a retry");
                if let Err(parking) = park(ctx, push, &id, config, &e).await {
                    warn!(%service, error = %parking, "could not park the push");
                }
                retry.get_or_insert(e);
            }
            // One service's failure stops only that service (what it took was given back).
            Err(e) => deployments.push(Prepared1::failed(id, service, &e)),
        }
    }
    retry
}

/// `approval.policy = "auto"` only where the stack allows it (`AutoApproveServices`): writing
/// a config does not approve deployments.
fn auto_approval_allowed(ctx: &Context, config: &ServiceConfig) -> StepResult<()> {
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

/// Parks a push whose prepare failed with a retryable error: a `queued` record that the lock
/// does not name, with the error on its timeline (a record already written is left as it is).
/// The intake's retry finds it and puts it through the queue; if every retry fails too (the
/// intake ends `Rejected`), the reconciler's sweep of unqueued records does, after its grace.
/// Without it, a push whose prepare kept failing left nothing behind and never deployed.
async fn park(
    ctx: &Context,
    push: &Push,
    id: &str,
    config: ServiceConfig,
    error: &StepError,
) -> StepResult<()> {
    let mut deployment = new_record(ctx, id, push, config, Status::Queued, None);
    deployment.timeline = vec![crate::record::TimelineEntry {
        step: STEP.into(),
        at: ctx.now(),
        outcome: StepOutcome::Failed,
        detail: format!(
            "not prepared: {}: {error}; parked as queued (the intake's retry, or the \
             reconciler's sweep after every retry failed, puts it through the queue)",
            error.name()
        ),
    }];
    Records::new(ctx).create(&deployment).await.map(drop)
}

/// How far before a push's event time intake looks for the missed-push sweep's deployment of
/// its image (the sweep records ECR's push time, the event has whole seconds; clocks differ).
const SWEPT_SEARCH_SLACK_SECONDS: i64 = 3600;

/// The deployment the missed-push sweep ([`crate::missed_pushes`]) started for this push's
/// image, if any: intake answers it instead of deploying the image a second time when the
/// event arrives late.
async fn swept(ctx: &Context, service: &str, push: &Push) -> StepResult<Option<Deployment>> {
    let event_id = naming::missed_push_event_id(&push.image.digest);
    let since = push.time - Duration::seconds(SWEPT_SEARCH_SLACK_SECONDS);
    Records::new(ctx)
        .newest_for_service_since(service, since, |d| d.event_id == event_id)
        .await
}

/// The services a push concerns, from the configs indexed under its repository.
struct Watchers {
    /// Valid configs that take it.
    matching: Vec<ServiceConfig>,
    /// Invalid configs of its repository (reported, never deployed).
    invalid: Vec<InvalidConfig>,
    /// Why services watching the same repository name and tag did not take it (another
    /// registry, region or pull source).
    elsewhere: Vec<String>,
}

/// Reads the configs watching the push's repository and sorts them. Only the configs indexed
/// under the pushed repository are read: a push costs the same however many services the
/// account has.
async fn watchers(ctx: &Context, push: &Push) -> StepResult<Watchers> {
    let mut matching = Vec::new();
    let mut invalid = Vec::new();
    let mut elsewhere = Vec::new();
    let stack = StackRegistry {
        account: ctx.settings.account_id.clone(),
        region: ctx.region.clone(),
    };
    for stored in ConfigStore::new(ctx)
        .watching(&push.image.repository)
        .await?
    {
        match stored {
            Ok(c)
                if c.source.repository == push.image.repository
                    && c.matches_tag(&push.image.tag) =>
            {
                // Same repository name, another registry (a forwarded event of another
                // account, another region, a replica the service does not pull from).
                match c.takes_from(push, &stack) {
                    Ok(()) => matching.push(c),
                    Err(why) => elsewhere.push(why),
                }
            }
            Ok(_) => {}
            // A broken config is only this service's problem; it is reported when a push for
            // its repository arrives, and otherwise left to `bluegreen config validate`.
            Err(bad) if bad.repository.as_deref() == Some(push.image.repository.as_str()) => {
                invalid.push(bad)
            }
            Err(bad) => warn!(parameter = %bad.parameter, "invalid service config skipped"),
        }
    }
    Ok(Watchers {
        matching,
        invalid,
        elsewhere,
    })
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

/// Tells people once per config version that pushes for its service deploy nothing. A lost
/// message is logged, not retried (the marker is written first, so a retry cannot repeat it).
async fn report_invalid_config(ctx: &Context, bad: &InvalidConfig, id: &str) -> StepResult<()> {
    if Locks::new(ctx)
        .first_report_of_invalid_config(&bad.service, bad.version)
        .await?
        && let Err(e) = notify::config_invalid(ctx, &bad.service, id, &bad.problems).await
    {
        warn!(error = %e, "could not publish the invalid-config notice");
    }
    Ok(())
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

async fn resume_queued(ctx: &Context, id: &str) -> StepResult<Prepared1> {
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

fn new_record(
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
        None => format!("{status:?}"),
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
        production_migration: None,
        rollback_migration: None,
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
