//! What a deployment record holds: its status, timeline, slots, clones, migrations, approval
//! and the marks the fence reads. Plain data (serde), read and written by
//! [`super::Records`] and changed only through [`super::Change`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::ServiceConfig;
use crate::error::{StepError, StepResult};
use crate::event::Image;
use crate::slot::Slot;

/// Where a deployment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for the service's running deployment to finish.
    Queued,
    /// A newer push replaced this queued one.
    Superseded,
    /// Syncing the database, launching pre-prod, migrating.
    Preparing,
    /// Pre-prod is up; health checks run.
    Preprod,
    /// Waiting for a person.
    AwaitingApproval,
    /// Approved; the slot is being made ready on production's database (migration, rollout,
    /// health re-check) before any traffic moves.
    Promoting,
    /// Moving traffic.
    Switching,
    /// Watching the new slot.
    Baking,
    /// The new slot serves production.
    Succeeded,
    /// Failed before the switch; production untouched.
    Aborted,
    /// Failed after the switch; traffic is back on the old slot.
    RolledBack,
    /// The deployment ended in a state a person must look at (a failed rollback migration, a
    /// clone that a slot still references); the service's lock stays held until then.
    NeedsAttention,
}

impl Status {
    /// Whether the deployment has ended.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Status::Superseded
                | Status::Succeeded
                | Status::Aborted
                | Status::RolledBack
                | Status::NeedsAttention
        )
    }
}

impl std::fmt::Display for Status {
    /// The stored name (`awaiting_approval`), as people read it in messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::String(name)) => f.write_str(&name),
            _ => write!(f, "{self:?}"),
        }
    }
}

/// What happened to a step, as its timeline entry says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    /// The step began (its deadline counts from here).
    Started,
    /// The step did its work.
    Succeeded,
    /// The step failed; the detail says why.
    Failed,
    /// A newer push replaced this one before it started.
    Superseded,
    /// The switch began moving production traffic.
    TrafficMoving,
    /// A slot's task count or autoscaling was changed to follow production (the new slot
    /// scaled to production's count, production's autoscaling carried to it).
    Scaled,
    /// Approval was requested.
    Requested,
    /// Approvers were notified.
    Notified,
    /// The policy approved without a person.
    AutoApproved,
    /// A decision reached the waiting execution.
    Delivered,
    /// A person approved.
    Approved,
    /// A person rejected.
    Rejected,
    /// Nobody decided in time.
    TimedOut,
    /// An outcome this version does not know (written by a newer one); shown as `other`.
    #[serde(other)]
    Other,
}

impl StepOutcome {
    /// The stored (snake case) name.
    pub fn as_str(self) -> &'static str {
        match self {
            StepOutcome::Started => "started",
            StepOutcome::Succeeded => "succeeded",
            StepOutcome::Failed => "failed",
            StepOutcome::Superseded => "superseded",
            StepOutcome::TrafficMoving => "traffic_moving",
            StepOutcome::Scaled => "scaled",
            StepOutcome::Requested => "requested",
            StepOutcome::Notified => "notified",
            StepOutcome::AutoApproved => "auto_approved",
            StepOutcome::Delivered => "delivered",
            StepOutcome::Approved => "approved",
            StepOutcome::Rejected => "rejected",
            StepOutcome::TimedOut => "timed_out",
            StepOutcome::Other => "other",
        }
    }
}

impl StepOutcome {
    /// The outcome in words, for people (`moving traffic`, not `traffic_moving`).
    pub fn words(self) -> &'static str {
        match self {
            StepOutcome::TrafficMoving => "moving traffic",
            StepOutcome::AutoApproved => "auto-approved",
            StepOutcome::TimedOut => "timed out",
            other => other.as_str(),
        }
    }
}

impl std::fmt::Display for StepOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A recorded approval decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// A person approved.
    Approved,
    /// A person rejected.
    Rejected,
    /// Nobody decided before the approval timeout (written by the state machine's timeout
    /// settlement).
    TimedOut,
}

impl Verdict {
    /// A person's verdict: approved or rejected.
    pub fn of(approve: bool) -> Self {
        if approve {
            Verdict::Approved
        } else {
            Verdict::Rejected
        }
    }

    /// The timeline outcome that records it.
    pub fn outcome(self) -> StepOutcome {
        match self {
            Verdict::Approved => StepOutcome::Approved,
            Verdict::Rejected => StepOutcome::Rejected,
            Verdict::TimedOut => StepOutcome::TimedOut,
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.outcome().fmt(f)
    }
}

/// One line of a deployment's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TimelineEntry {
    /// Step name, for example `launch_preprod`.
    pub step: String,
    /// When it was recorded.
    pub at: DateTime<Utc>,
    /// What happened.
    pub outcome: StepOutcome,
    /// Human-readable detail.
    #[serde(default)]
    pub detail: String,
}

/// A CloudWatch Logs location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LogLocation {
    /// Log group.
    pub group: String,
    /// Log stream, when the stream name is known.
    pub stream: Option<String>,
}

/// What launch changed on the idle slot, so abort can put it back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PreprodState {
    /// The ECS service used as pre-prod.
    pub service: String,
    /// The task definition registered for this deployment.
    pub task_definition_arn: String,
    /// The service's task definition before launch.
    pub previous_task_definition: String,
    /// The service's desired count before launch.
    pub previous_desired_count: i32,
    /// The desired count launch set.
    pub desired_count: i32,
    /// The service's slot marks before launch re-marked it as pre-prod (`bluegreen:role`,
    /// `bluegreen:expires-at`, `bluegreen:deployment-id` — a warm slot's): an abort puts them back,
    /// so the scheduled teardown still scales a warm slot down when its time is up.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub previous_marks: BTreeMap<String, String>,
    /// The service's registries (Cloud Map) before launch took them away — pre-prod must not
    /// be found by production's callers before approval: an abort puts them back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous_registries: Vec<crate::ports::compute::ServiceRegistry>,
    /// `traffic.engine = "ecs"`: the ECS service deployment that rolls this deployment's
    /// revision out, once launch identified it. ECS's lifecycle hook gates that deployment
    /// only: any other ECS deployment of the same revision is failed (someone else's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecs_deployment: Option<String>,
    /// `traffic.engine = "ecs"` with `isolated`: the service bluegreen created to run pre-prod
    /// on the clone (ECS's deployment of the one service cannot run the clone's revision
    /// beside production). Set from the launch until promote deleted it and its tasks left
    /// the alternate target group; an abort deletes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_service: Option<String>,
}

/// A database clone made for this deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DbClone {
    /// What was cloned.
    pub kind: CloneKind,
    /// The clone's identifier (the cluster's, for Aurora).
    pub identifier: String,
    /// What the clone is for.
    pub purpose: ClonePurpose,
    /// The endpoint address once available.
    pub endpoint: Option<String>,
}

impl DbClone {
    /// The DB instance that serves the clone (Aurora: the one writer bluegreen adds).
    pub fn instance_identifier(&self) -> String {
        match self.kind {
            CloneKind::RdsInstance => self.identifier.clone(),
            CloneKind::AuroraCluster => format!("{}-1", self.identifier),
        }
    }
}

/// What a clone was made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CloneKind {
    /// An RDS instance restored from a snapshot.
    RdsInstance,
    /// An Aurora copy-on-write cluster clone.
    AuroraCluster,
}

/// What a clone is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClonePurpose {
    /// `isolated`: pre-prod and its migration run against it.
    Preprod,
    /// `shared` with a rehearsal: the migration is tried on it before production.
    Rehearsal,
}

impl ClonePurpose {
    /// The word used in clone names and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ClonePurpose::Preprod => "preprod",
            ClonePurpose::Rehearsal => "rehearsal",
        }
    }
}

impl std::fmt::Display for ClonePurpose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Task definition revisions registered for this deployment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TaskDefinitions {
    /// The pushed image on pre-prod's database (a clone in `isolated` mode).
    pub preprod: Option<String>,
    /// `isolated` only: the pushed image on production's database, registered after approval.
    pub production: Option<String>,
    /// `shared` + `rehearsal` with `database.secret`: pre-prod's revision reading the
    /// rehearsal clone's secret (ECS cannot override a secret for one task).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rehearsal: Option<String>,
    /// The revision both were made from (`task_definition.source`: the live slot's, or the
    /// family's newest one bluegreen did not register), chosen once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// The base was given, not chosen (`rollback --to`: the revision that deployment started
    /// from). Both revisions are made from it, and they do not name it as the family's base
    /// for the next deployment (`bluegreen:base`): the family walk steps past them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pinned_base: bool,
}

/// How a tracked one-off task (the production or rollback migration) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Started, not seen stopped yet.
    Running,
    /// Its essential container exited 0.
    Succeeded,
    /// It stopped any other way, or was stopped at its deadline: it may have partly applied.
    Failed,
    /// ECS stopped it before its container started (`TaskFailedToStart`: placement, image
    /// pull, secrets): nothing of it ran.
    NeverRan,
}

/// A tracked one-off task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TrackedTask {
    /// The ECS task.
    pub task_arn: String,
    /// When bluegreen started it.
    pub started_at: DateTime<Utc>,
    /// How it stands.
    pub state: TaskState,
    /// Exit code and reason once stopped.
    #[serde(default)]
    pub detail: String,
}

/// The approval request and decision.
#[derive(Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ApprovalState {
    /// When approval was requested.
    pub requested_at: DateTime<Utc>,
    /// Latest time a decision is accepted.
    pub expires_at: DateTime<Utc>,
    /// The verdict, once decided. Absent (not null) until then, so the decision write can be
    /// conditional on `attribute_not_exists(approval.decision)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Verdict>,
    /// Who decided.
    pub approver: Option<String>,
    /// When.
    pub decided_at: Option<DateTime<Utc>>,
    /// Reason given with a rejection.
    pub reason: Option<String>,
    /// `console` or `cli`.
    pub channel: Option<String>,
    /// The nonce of the signed link that decided, so that link cannot be used again.
    pub link_nonce: Option<String>,
    /// When Step Functions accepted the decision (`SendTaskSuccess`/`SendTaskFailure`).
    pub delivered_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for ApprovalState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApprovalState")
            .field("requested_at", &self.requested_at)
            .field("decision", &self.decision)
            .field("approver", &self.approver)
            .finish_non_exhaustive()
    }
}

/// One deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Deployment {
    /// `<service>-<yyyymmddThhmmss>-<hash>`, derived from the push event.
    pub deployment_id: String,
    /// Service name.
    pub service: String,
    /// Current status.
    pub status: Status,
    /// The image being deployed.
    pub image: Image,
    /// The EventBridge event that started it.
    pub event_id: String,
    /// When the image was pushed.
    pub pushed_at: DateTime<Utc>,
    /// The service config as it was when the deployment started.
    pub config: ServiceConfig,
    /// The slot that was live when the deployment started (read from AWS).
    pub live_slot: Option<Slot>,
    /// Created (the sort key of every index; written with a fixed number of digits, so
    /// DynamoDB's string order is time order).
    #[serde(with = "sortable_time")]
    #[schemars(with = "DateTime<Utc>")]
    pub created_at: DateTime<Utc>,
    /// The partition of the `recent` index (the same for every record).
    #[serde(default)]
    pub listed: Listed,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// What happened, in order.
    #[serde(default)]
    pub timeline: Vec<TimelineEntry>,
    /// What launch changed.
    pub preprod: Option<PreprodState>,
    /// Clones made for this deployment.
    #[serde(default)]
    pub clones: Vec<DbClone>,
    /// Task definitions registered for this deployment.
    #[serde(default)]
    pub task_definitions: TaskDefinitions,
    /// The production migration task's ARN.
    pub migration_task_arn: Option<String>,
    /// The ARN of the migration run against a clone (rehearsal, or `isolated` pre-prod).
    pub rehearsal_task_arn: Option<String>,
    /// When that task was started (older records do not have it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rehearsal_started_at: Option<DateTime<Utc>>,
    /// The last migration task about to be started, written before its `RunTask`: a start
    /// whose ARN never reached the record (the write after `RunTask` failed, and `ListTasks`
    /// did not list the task yet) is still known, so an ending waits for it to show instead of
    /// releasing the lock while it runs (found by the simulator, seed 3014).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration_starting: Option<MigrationStarting>,
    /// The production migration, once started: whether production's schema has changed.
    pub production_migration: Option<TrackedTask>,
    /// The rollback migration, once started by abort or rollback.
    pub rollback_migration: Option<TrackedTask>,
    /// Rollback migrations that failed before an operator's `retry` ran it again, oldest
    /// first (the count names the next attempt's `startedBy`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_rollback_migrations: Vec<TrackedTask>,
    /// Where the production migration logged, once it succeeded.
    pub migration_log: Option<LogLocation>,
    /// Health-check evidence shown to approvers.
    pub health_evidence: Option<String>,
    /// The approval.
    pub approval: Option<ApprovalState>,
    /// When traffic started to move to the new slot.
    pub switched_at: Option<DateTime<Utc>>,
    /// When pre-prod resources of this deployment may be torn down.
    pub expires_at: DateTime<Utc>,
    /// Why the deployment failed, for aborted and rolled-back deployments.
    pub failure: Option<String>,
    /// DNS mode: the TTL before bluegreen lowered it, and when.
    pub dns_ttl: Option<DnsTtl>,
    /// The queued deployment that received the lock when this one ended.
    pub handed_over_to: Option<String>,
    /// The Route 53 change the switch made last (DNS mode), until it is INSYNC.
    pub dns_change_id: Option<String>,
    /// Set once, when an abort is requested (by an operator, or by the ending that runs the
    /// abort): from then on no step changes the status or acts on AWS (see `fence`).
    /// Absent, not null, until then: the fence's conditions test its absence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_requested: Option<AbortRequest>,
    /// The step invocation in flight, and until when it can still act: an abort observes AWS
    /// only after it (see `fence`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inflight: Option<Inflight>,
    /// DNS mode: the rollback's write of the weights back to the old slot, once made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_back: Option<DnsBack>,
    /// The ending an operator re-ran with `retry` (see `operator::retry`), once one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed: Option<ResumedEnding>,
    /// Production's scalable target as it was before the switch froze its scale-in (see
    /// `autoscaling`), written once: finish hands it to the new slot, a rollback or an abort
    /// gives it back to the old one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub production_scaling: Option<crate::ports::scaling::ScalableTarget>,
}

/// An ending an operator re-ran with `retry`. The retry carries it on in its own process
/// until `until`; after that the reconciler's sweep continues it (it never guesses another
/// ending for it, and never marks it needing attention while it is merely waiting).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ResumedEnding {
    /// `abort`, `rollback` or `finish`.
    pub ending: String,
    /// The operator.
    pub by: String,
    /// When the retry started.
    pub at: DateTime<Utc>,
    /// Until when the retry's own process may still run the ending: its wait limit plus a
    /// margin, brought forward to the moment it hands a waiting ending over.
    pub until: DateTime<Utc>,
}

/// Who asked for an abort, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AbortRequest {
    /// The operator, or the ending that aborts (`abort` after a failure or a dead execution).
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// A migration task about to be started (see [`Deployment::migration_starting`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MigrationStarting {
    /// The task's `startedBy` (and client token).
    pub started_by: String,
    /// When its `RunTask` was about to be made.
    pub at: DateTime<Utc>,
}

/// A step invocation's lease on its deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Inflight {
    /// The invocation's token (only it releases the lease).
    pub token: String,
    /// The step.
    pub step: String,
    /// The invocation's start plus its function's timeout and a margin: Lambda ends every
    /// invocation by its timeout, so nothing it does can land after this.
    pub until: DateTime<Utc>,
    /// When this invocation took over the live lease of an earlier one (a retry while the
    /// earlier attempt may still run), that lease's end: releasing keeps the deployment leased
    /// until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub earlier_until: Option<DateTime<Utc>>,
}

/// The one partition of the `recent` index: every record is listed in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Listed {
    /// Listed with every other record.
    #[default]
    All,
}

/// RFC 3339 with microseconds always written (`2026-11-21T10:00:00.000000Z`): chrono's own
/// form drops zero fractions, and `10:00:00Z` sorts after `10:00:00.5Z` as a string. Any
/// RFC 3339 time is read.
mod sortable_time {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Micros, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// DNS mode: the record TTL lowered ahead of the switch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DnsTtl {
    /// The TTL before it was lowered (restored when the deployment ends).
    pub previous: i64,
    /// When it was lowered; the switch waits until `previous` seconds have passed.
    pub lowered_at: DateTime<Utc>,
}

/// DNS mode: production's weights written back to the old slot by a rollback. Resolvers may
/// answer with the failed slot until the switch TTL has passed since Route 53 served the new
/// weights everywhere, so the failed slot keeps its tasks until `in_sync_at` + that TTL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DnsBack {
    /// The Route 53 change, when this rollback wrote one (a retry that found the weights
    /// already back knows none: it counts from when it first looked).
    pub change_id: Option<String>,
    /// When the weights were written (or found) back.
    pub written_at: DateTime<Utc>,
    /// When the change was first seen INSYNC (or the wait for it gave up).
    pub in_sync_at: Option<DateTime<Utc>>,
}

impl Deployment {
    /// The slot being deployed to (the idle one at the start).
    pub fn target_slot(&self) -> StepResult<Slot> {
        self.live_slot.map(Slot::other).ok_or_else(|| {
            StepError::Internal(format!(
                "deployment {} has not read its live slot yet",
                self.deployment_id
            ))
        })
    }

    /// The slot that was live at the start.
    pub fn old_slot(&self) -> StepResult<Slot> {
        self.target_slot().map(Slot::other)
    }

    /// Refuses unless a person approved (or the policy is `auto`). Steps after the approval
    /// re-check the recorded decision rather than trusting that they were reached.
    pub fn ensure_approved(&self) -> StepResult<()> {
        if self.config.approval.policy == crate::config::ApprovalPolicy::Auto {
            return Ok(());
        }
        match self.approval.as_ref().and_then(|a| a.decision) {
            Some(Verdict::Approved) => Ok(()),
            Some(other) => Err(StepError::ApprovalRejected(format!("decision was {other}"))),
            None => Err(StepError::SwitchFailed(
                "refusing to switch: no approval recorded".into(),
            )),
        }
    }

    /// The clone made for `purpose`, if any.
    pub fn clone_for(&self, purpose: ClonePurpose) -> Option<&DbClone> {
        self.clones.iter().find(|c| c.purpose == purpose)
    }

    /// Whether the production migration ran to a successful end (production's schema changed).
    pub fn production_migrated(&self) -> bool {
        self.production_migration
            .as_ref()
            .is_some_and(|m| m.state == TaskState::Succeeded)
    }

    /// Whether the timeline already has `outcome` for `step`.
    pub fn has_outcome(&self, step: &str, outcome: StepOutcome) -> bool {
        self.timeline
            .iter()
            .any(|e| e.step == step && e.outcome == outcome)
    }
}
