//! Deployment records in DynamoDB: one item per deployment, read by `status`, `history` and the
//! approval console, and written by every step.
//!
//! Steps change a record with targeted `UpdateItem` expressions (never a whole-item put), so a
//! step and the console writing an approval decision cannot overwrite each other.
//!
//! Readers go through the table's indexes ([`crate::tables::DEPLOYMENTS`]): by service, by
//! status, and all records newest first. Nothing here scans, so `history`, `status` and the
//! console cost the same with ten records or ten million.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_dynamo::{AttributeValue, Item};

use crate::config::ServiceConfig;
use crate::context::Context;
use crate::error::{StepError, StepResult};
use crate::event::Image;
use crate::ports::tables::{Cond, Path, Query, Returns, Update, Write, WriteOp, Written};
use crate::slot::Slot;
use crate::tables::{self, Index};

/// The attribute that holds the approval wait's task token (outside [`Deployment`]).
const TASK_TOKEN: &str = "task_token";

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
    /// The production migration, once started: whether production's schema has changed.
    pub production_migration: Option<TrackedTask>,
    /// The rollback migration, once started by abort or rollback.
    pub rollback_migration: Option<TrackedTask>,
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

/// A change to a deployment record: attributes to set, and optionally a timeline entry.
#[derive(Debug, Default)]
pub struct Change {
    sets: Vec<(String, AttributeValue)>,
    removes: Vec<String>,
    entry: Option<TimelineEntry>,
}

impl Change {
    /// An empty change.
    pub fn new() -> Self {
        Change::default()
    }

    /// Sets an attribute to a serialisable value (`a.b` sets a nested one; `a` must exist).
    /// Private: callers use the typed setters below, so every attribute bluegreen writes is a
    /// field of [`Deployment`] (or the task token, kept out of it on purpose).
    fn set<T: Serialize>(mut self, field: &str, value: &T) -> Self {
        let value = serde_dynamo::to_attribute_value(value).expect("record fields serialise");
        self.sets.push((field.to_owned(), value));
        self
    }

    /// Whether the change moves [`Deployment::status`].
    fn sets_status(&self) -> bool {
        self.sets.iter().any(|(field, _)| field == "status")
    }

    /// Sets [`Deployment::abort_requested`].
    pub fn abort_requested(self, request: &AbortRequest) -> Self {
        self.set(ABORT_REQUESTED, request)
    }

    /// Sets [`Deployment::resumed`].
    pub fn resumed(self, resumed: &ResumedEnding) -> Self {
        self.set(RESUMED, resumed)
    }

    /// Sets [`Deployment::inflight`].
    pub fn inflight(self, inflight: &Inflight) -> Self {
        self.set("inflight", inflight)
    }

    /// Removes [`Deployment::inflight`].
    pub fn no_inflight(mut self) -> Self {
        self.removes.push("inflight".to_owned());
        self
    }

    /// Sets [`Deployment::status`].
    pub fn status(self, status: Status) -> Self {
        self.set("status", &status)
    }

    /// Sets [`Deployment::failure`].
    pub fn failure(self, failure: &str) -> Self {
        self.set("failure", &failure)
    }

    /// Sets [`Deployment::handed_over_to`].
    pub fn handed_over_to(self, next: &str) -> Self {
        self.set("handed_over_to", &next)
    }

    /// Sets [`Deployment::live_slot`].
    pub fn live_slot(self, slot: Slot) -> Self {
        self.set("live_slot", &slot)
    }

    /// Sets [`Deployment::task_definitions`].
    pub fn task_definitions(self, registered: &TaskDefinitions) -> Self {
        self.set("task_definitions", registered)
    }

    /// Sets [`Deployment::clones`].
    pub fn clones(self, clones: &[DbClone]) -> Self {
        self.set("clones", &clones)
    }

    /// Sets [`Deployment::preprod`].
    pub fn preprod(self, preprod: &PreprodState) -> Self {
        self.set("preprod", preprod)
    }

    /// Sets [`Deployment::migration_log`].
    pub fn migration_log(self, log: &LogLocation) -> Self {
        self.set("migration_log", log)
    }

    /// Sets [`Deployment::health_evidence`].
    pub fn health_evidence(self, evidence: &str) -> Self {
        self.set("health_evidence", &evidence)
    }

    /// Sets [`Deployment::switched_at`].
    pub fn switched_at(self, at: DateTime<Utc>) -> Self {
        self.set("switched_at", &at)
    }

    /// Sets [`Deployment::dns_ttl`].
    pub fn dns_ttl(self, ttl: &DnsTtl) -> Self {
        self.set("dns_ttl", ttl)
    }

    /// Sets [`Deployment::production_scaling`].
    pub fn production_scaling(self, target: &crate::ports::scaling::ScalableTarget) -> Self {
        self.set("production_scaling", target)
    }

    /// Sets [`Deployment::dns_back`].
    pub fn dns_back(self, back: &DnsBack) -> Self {
        self.set("dns_back", back)
    }

    /// Sets [`Deployment::dns_change_id`].
    pub fn dns_change_id(self, change_id: &str) -> Self {
        self.set("dns_change_id", &change_id)
    }

    /// Sets [`Deployment::rehearsal_task_arn`] and [`Deployment::rehearsal_started_at`].
    pub fn rehearsal_task(self, arn: &str, started_at: DateTime<Utc>) -> Self {
        self.set("rehearsal_task_arn", &arn)
            .set("rehearsal_started_at", &started_at)
    }

    /// Sets [`Deployment::production_migration`] (and [`Deployment::migration_task_arn`]
    /// when the task is first started).
    pub fn production_migration(self, task: &TrackedTask) -> Self {
        self.set("migration_task_arn", &task.task_arn)
            .set("production_migration", task)
    }

    /// Sets [`Deployment::rollback_migration`].
    pub fn rollback_migration(self, task: &TrackedTask) -> Self {
        self.set("rollback_migration", task)
    }

    /// Sets [`Deployment::approval`] (a new request; any earlier decision is replaced).
    pub fn approval(self, approval: &ApprovalState) -> Self {
        self.set("approval", approval)
    }

    /// Sets [`ApprovalState::delivered_at`] (`approval` must exist).
    pub fn approval_delivered_at(self, at: DateTime<Utc>) -> Self {
        self.set("approval.delivered_at", &at)
    }

    /// Stores the approval wait's task token: its own attribute, outside [`Deployment`], so it
    /// never travels with a record that is shown or logged (read it with
    /// [`Records::task_token`]).
    pub fn task_token(self, token: &str) -> Self {
        self.set(TASK_TOKEN, &token)
    }

    /// Appends a timeline entry.
    pub fn log(
        mut self,
        step: &str,
        outcome: StepOutcome,
        detail: impl Into<String>,
        at: DateTime<Utc>,
    ) -> Self {
        self.entry = Some(TimelineEntry {
            step: step.to_owned(),
            at,
            outcome,
            detail: detail.into(),
        });
        self
    }
}

impl Change {
    /// The change as typed updates, bumping `updated_at` to `now`.
    fn into_updates(self, now: DateTime<Utc>) -> Vec<Update> {
        let mut updates = vec![Update::Set(
            Path::of("updated_at"),
            serde_dynamo::to_attribute_value(now).expect("time serialises"),
        )];
        for (field, value) in self.sets {
            updates.push(Update::Set(Path::of(&field), value));
        }
        for field in self.removes {
            updates.push(Update::Remove(Path::of(&field)));
        }
        if let Some(entry) = self.entry {
            updates.push(Update::Append(
                Path::of("timeline"),
                vec![serde_dynamo::to_attribute_value(entry).expect("entry serialises")],
            ));
        }
        updates
    }
}

/// A person's decision as [`Records::record_decision`] writes it.
#[derive(Debug, Clone, Copy)]
pub struct RecordedDecision<'a> {
    /// Approved or rejected.
    pub verdict: Verdict,
    /// Who decided.
    pub approver: &'a str,
    /// The reason given (required for a rejection by the caller).
    pub reason: Option<&'a str>,
    /// `console`, `cli`, `api`.
    pub channel: &'a str,
    /// The signed link's nonce, when a link decided.
    pub link_nonce: Option<&'a str>,
}

pub(crate) fn status_value(status: Status) -> AttributeValue {
    serde_dynamo::to_attribute_value(status).expect("status serialises")
}

/// Reads and writes deployment records.
pub struct Records<'a> {
    ctx: &'a Context,
}

/// The record's key.
fn key(deployment_id: &str) -> Item {
    let mut key = Item::default();
    key.insert(
        "deployment_id".into(),
        AttributeValue::S(deployment_id.to_owned()),
    );
    key
}

impl<'a> Records<'a> {
    /// Records in the context's deployments table.
    pub fn new(ctx: &'a Context) -> Self {
        Records { ctx }
    }

    fn table(&self) -> &str {
        &self.ctx.settings.deployments_table
    }

    /// Creates the record unless one with the same id exists; returns the stored record either
    /// way, so a retried prepare sees what the first attempt wrote.
    pub async fn create(&self, deployment: &Deployment) -> StepResult<Deployment> {
        let item: Item = serde_dynamo::to_item(deployment).expect("deployment serialises");
        let written = self
            .ctx
            .ports
            .tables
            .write(
                Write {
                    table: self.table().to_owned(),
                    key: key(&deployment.deployment_id),
                    op: WriteOp::Put(item),
                    condition: Some(Cond::absent("deployment_id")),
                },
                Returns::Nothing,
            )
            .await?;
        match written {
            Written::Applied(_) => Ok(deployment.clone()),
            Written::ConditionFailed => self.get(&deployment.deployment_id).await,
        }
    }

    /// The task token the approval wait stored (`None` when there is none). Read on its own,
    /// so it never travels inside a [`Deployment`].
    pub async fn task_token(&self, deployment_id: &str) -> StepResult<Option<String>> {
        Ok(self
            .ctx
            .ports
            .tables
            .get(self.table(), &key(deployment_id), Some(&[TASK_TOKEN]))
            .await?
            .and_then(|item| match item.get(TASK_TOKEN) {
                Some(AttributeValue::S(token)) => Some(token.clone()),
                _ => None,
            }))
    }

    /// Reads a record; [`StepError::DeploymentNotFound`] if there is none.
    pub async fn get(&self, deployment_id: &str) -> StepResult<Deployment> {
        let item = self
            .ctx
            .ports
            .tables
            .get(self.table(), &key(deployment_id), None)
            .await?
            .ok_or_else(|| StepError::DeploymentNotFound(deployment_id.to_owned()))?;
        serde_dynamo::from_item(item).map_err(|e| {
            StepError::RecordInvalid(format!(
                "deployment record {deployment_id} is unreadable: {e}"
            ))
        })
    }

    /// Applies a change to an existing record that has not ended, and bumps `updated_at`. An
    /// ended record (superseded, succeeded, aborted, rolled back) is never changed by it: a step
    /// still in flight when an abort ended its deployment gets [`StepError::DeploymentEnded`]
    /// instead of writing over the ending. A record that needs attention can still be changed
    /// (an operator's retry resumes it). Found by the simulator (seed 1169): a launch in flight
    /// wrote `preparing` over an operator's abort.
    ///
    /// A change of status is also fenced: once an abort was requested only the ending moves
    /// the record ([`Records::update_ending`]), and a step's status write answers
    /// [`StepError::Fenced`] (the write and the abort request are ordered by the table, so a
    /// step either moved the status first — and the abort sees it — or changes nothing).
    /// Facts a step records about what it did (a task started, a slot scaled) are written
    /// either way: the ending needs them to undo it.
    pub async fn update(&self, deployment_id: &str, change: Change) -> StepResult<()> {
        let mut condition = vec![not_ended()];
        if change.sets_status() {
            // A step never moves a deployment that needs a person, is being aborted, or whose
            // ending an operator re-ran: a step invocation still in flight then would revive
            // it or write over the ending.
            condition.push(Cond::absent(ABORT_REQUESTED));
            condition.push(Cond::absent(RESUMED));
            condition.push(Cond::Ne(
                Path::of("status"),
                status_value(Status::NeedsAttention),
            ));
        }
        if self
            .update_if(deployment_id, change, Some(Cond::And(condition)))
            .await?
        {
            return Ok(());
        }
        let current = self.get(deployment_id).await?;
        Err(refusal(&current))
    }

    /// Opens the approval window: applies `change` (which records the approval and the
    /// status) only while no approval is recorded, the record has not ended and no abort was
    /// requested. `Ok(false)` when an approval is already there: a concurrent request wrote it
    /// first, and writing it again could erase a decision recorded since.
    pub async fn open_approval(&self, deployment_id: &str, change: Change) -> StepResult<bool> {
        let condition = Cond::And(vec![
            not_ended(),
            Cond::absent(ABORT_REQUESTED),
            // Not `approval` itself: a record stores an absent approval as NULL.
            Cond::absent("approval.requested_at"),
        ]);
        if self
            .update_if(deployment_id, change, Some(condition))
            .await?
        {
            return Ok(true);
        }
        let current = self.get(deployment_id).await?;
        if current.approval.is_some()
            && !current.status.is_terminal()
            && current.abort_requested.is_none()
        {
            return Ok(false);
        }
        Err(refusal(&current))
    }

    /// [`Records::update`] for an ending (abort, rollback, finish, needs-attention): applies
    /// while the record has not ended, whether or not an abort was requested.
    pub async fn update_ending(&self, deployment_id: &str, change: Change) -> StepResult<()> {
        if self
            .update_if(deployment_id, change, Some(not_ended()))
            .await?
        {
            return Ok(());
        }
        let current = self.get(deployment_id).await?;
        Err(StepError::DeploymentEnded {
            id: deployment_id.to_owned(),
            status: current.status.to_string(),
        })
    }

    /// Applies `change` only while `condition` holds and the record has not ended; `Ok(false)`
    /// when either does not (nothing written). The fence's writes.
    pub(crate) async fn update_unless_ended(
        &self,
        deployment_id: &str,
        change: Change,
        condition: Cond,
    ) -> StepResult<bool> {
        self.update_if(
            deployment_id,
            change,
            Some(Cond::And(vec![not_ended(), condition])),
        )
        .await
    }

    /// Applies `change` only while the record's status is `status`. `Ok(false)` when it is
    /// not, or there is no record: nothing was written (two writers racing to move a record
    /// out of one status, like two pushes superseding the same queued one, write it once).
    pub async fn update_while(
        &self,
        deployment_id: &str,
        status: Status,
        change: Change,
    ) -> StepResult<bool> {
        self.update_if(deployment_id, change, Some(status_is(status)))
            .await
    }

    /// The write that applies `change` to an existing record, only if `condition` holds too.
    fn write_of(&self, deployment_id: &str, change: Change, condition: Option<Cond>) -> Write {
        let exists = Cond::exists("deployment_id");
        Write {
            table: self.table().to_owned(),
            key: key(deployment_id),
            op: WriteOp::Update(change.into_updates(self.ctx.now())),
            condition: Some(match condition {
                Some(condition) => Cond::And(vec![exists, condition]),
                None => exists,
            }),
        }
    }

    /// Applies `change` only while `condition` holds. `Ok(false)` when it did not (nothing
    /// written).
    async fn update_if(
        &self,
        deployment_id: &str,
        change: Change,
        condition: Option<Cond>,
    ) -> StepResult<bool> {
        let write = self.write_of(deployment_id, change, condition);
        Ok(matches!(
            self.ctx.ports.tables.write(write, Returns::Nothing).await?,
            Written::Applied(_)
        ))
    }

    /// Records a person's decision once: only while the deployment awaits approval and nothing
    /// is decided yet. Returns the stored task token to deliver it with, or `None` when the
    /// condition did not hold (decided already, or no longer waiting): nothing was written.
    pub async fn record_decision(
        &self,
        deployment_id: &str,
        decision: &RecordedDecision<'_>,
        entry: TimelineEntry,
    ) -> StepResult<Option<String>> {
        let optional = |value: Option<&str>| {
            value
                .map(|v| AttributeValue::S(v.to_owned()))
                .unwrap_or(AttributeValue::Null(true))
        };
        let at: AttributeValue =
            serde_dynamo::to_attribute_value(entry.at).expect("time serialises");
        let set = |field: &str, value: AttributeValue| Update::Set(Path::of(field), value);
        let updates = vec![
            set(
                "approval.decision",
                serde_dynamo::to_attribute_value(decision.verdict).expect("verdict serialises"),
            ),
            set(
                "approval.approver",
                AttributeValue::S(decision.approver.to_owned()),
            ),
            set("approval.decided_at", at.clone()),
            set("approval.reason", optional(decision.reason)),
            set(
                "approval.channel",
                AttributeValue::S(decision.channel.to_owned()),
            ),
            set("approval.link_nonce", optional(decision.link_nonce)),
            set("updated_at", at),
            Update::Append(
                Path::of("timeline"),
                vec![serde_dynamo::to_attribute_value(entry).expect("entry serialises")],
            ),
        ];
        let write = Write {
            table: self.table().to_owned(),
            key: key(deployment_id),
            op: WriteOp::Update(updates),
            // An abort requested in the meantime wins: no decision lands after it.
            condition: Some(Cond::And(vec![
                status_is(Status::AwaitingApproval),
                Cond::absent("approval.decision"),
                Cond::absent(ABORT_REQUESTED),
            ])),
        };
        match self.ctx.ports.tables.write(write, Returns::New).await? {
            Written::Applied(item) => Ok(Some(
                item.and_then(|a| match a.get(TASK_TOKEN) {
                    Some(AttributeValue::S(token)) => Some(token.clone()),
                    _ => None,
                })
                .ok_or_else(|| {
                    StepError::NotAwaitingApproval(
                        "no task token stored for this deployment".into(),
                    )
                })?,
            )),
            Written::ConditionFailed => Ok(None),
        }
    }

    /// Closes the approval window: records `timed_out` only while the deployment awaits
    /// approval and nothing is decided (a racing decision lands first or is refused after).
    /// `Ok(false)` when the condition did not hold.
    pub async fn close_approval_window(
        &self,
        deployment_id: &str,
        step: &str,
        at: DateTime<Utc>,
    ) -> StepResult<bool> {
        let change = Change::new()
            .set("approval.decision", &Verdict::TimedOut)
            .set("approval.decided_at", &at)
            .log(
                step,
                StepOutcome::TimedOut,
                "nobody decided before the approval timeout",
                at,
            );
        self.update_if(
            deployment_id,
            change,
            Some(Cond::And(vec![
                status_is(Status::AwaitingApproval),
                Cond::exists("approval"),
                Cond::absent("approval.decision"),
            ])),
        )
        .await
    }

    /// The write [`Records::update`] makes, to go in one transaction with another (the lock
    /// release that ends a deployment writes its record in the same transaction).
    pub fn update_in_transaction(&self, deployment_id: &str, change: Change) -> Write {
        self.write_of(deployment_id, change, None)
    }

    /// [`Records::update_in_transaction`], applied only while the record's status is one of
    /// `statuses` (the transaction is cancelled otherwise).
    pub fn update_in_transaction_while(
        &self,
        deployment_id: &str,
        statuses: &[Status],
        change: Change,
    ) -> Write {
        let condition = Cond::Or(statuses.iter().map(|s| status_is(*s)).collect());
        self.write_of(deployment_id, change, Some(condition))
    }

    /// Up to `limit` records of `service`, newest first (the `by_service` index).
    pub async fn for_service(&self, service: &str, limit: usize) -> StepResult<Vec<Deployment>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.query(&tables::BY_SERVICE, service, |found| found.len() >= limit)
            .await
    }

    /// The newest record of `service` that `wanted` accepts, reading newest first and only as
    /// far back as it takes.
    pub async fn newest_for_service(
        &self,
        service: &str,
        wanted: impl Fn(&Deployment) -> bool,
    ) -> StepResult<Option<Deployment>> {
        let read = self
            .query(&tables::BY_SERVICE, service, |found| {
                found.last().is_some_and(&wanted)
            })
            .await?;
        Ok(read.into_iter().find(|d| wanted(d)))
    }

    /// The newest record of `service` created at or after `since` that `wanted` accepts,
    /// reading newest first and no further back than `since`.
    pub async fn newest_for_service_since(
        &self,
        service: &str,
        since: DateTime<Utc>,
        wanted: impl Fn(&Deployment) -> bool,
    ) -> StepResult<Option<Deployment>> {
        let read = self
            .query(&tables::BY_SERVICE, service, |found| {
                found
                    .last()
                    .is_some_and(|d| d.created_at < since || wanted(d))
            })
            .await?;
        Ok(read
            .into_iter()
            .find(|d| d.created_at >= since && wanted(d)))
    }

    /// Every record with `status`, newest first (the `by_status` index: as many records as
    /// are in that status, e.g. awaiting approval, not the table's history).
    pub async fn with_status(&self, status: Status) -> StepResult<Vec<Deployment>> {
        let value = serde_json::to_value(status).expect("status serialises");
        self.query(
            &tables::BY_STATUS,
            value.as_str().unwrap_or_default(),
            |_| false,
        )
        .await
    }

    /// The `limit` newest records of every service (the `recent` index).
    pub async fn recent(&self, limit: usize) -> StepResult<Vec<Deployment>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let partition = serde_json::to_value(Listed::All).expect("listed serialises");
        self.query(
            &tables::RECENT,
            partition.as_str().unwrap_or_default(),
            |found| found.len() >= limit,
        )
        .await
    }

    /// Records whose `index` key is `value`, newest first, page by page until `enough` says
    /// so (checked after each record) or the index has no more.
    async fn query(
        &self,
        index: &Index,
        value: &str,
        enough: impl Fn(&[Deployment]) -> bool,
    ) -> StepResult<Vec<Deployment>> {
        let mut found = Vec::new();
        let mut query = Query {
            table: self.table().to_owned(),
            index: Some(index.name.to_owned()),
            partition: (index.hash.to_owned(), AttributeValue::S(value.to_owned())),
            descending: true,
            limit: Some(QUERY_PAGE),
            start_after: None,
            consistent: false,
        };
        loop {
            let page = self.ctx.ports.tables.query(&query).await?;
            for item in page.items {
                found.push(serde_dynamo::from_item(item).map_err(|e| {
                    StepError::RecordInvalid(format!("unreadable deployment record: {e}"))
                })?);
                if enough(&found) {
                    return Ok(found);
                }
            }
            query.start_after = page.last_key;
            if query.start_after.is_none() {
                return Ok(found);
            }
        }
    }
}

/// `status = <status>`, as stored.
/// The record's attribute an abort request sets.
pub(crate) const ABORT_REQUESTED: &str = "abort_requested";
/// The attribute [`Deployment::resumed`] is stored in.
pub(crate) const RESUMED: &str = "resumed";

/// Why a conditional write to `current` was refused: fenced by an abort request, or ended.
fn refusal(current: &Deployment) -> StepError {
    match (&current.abort_requested, &current.resumed) {
        (Some(request), _) if !current.status.is_terminal() => StepError::Fenced {
            id: current.deployment_id.clone(),
            why: format!("an abort was requested by {} at {}", request.by, request.at),
        },
        (None, Some(resumed)) if !current.status.is_terminal() => StepError::Fenced {
            id: current.deployment_id.clone(),
            why: format!(
                "{} re-ran its {} at {}",
                resumed.by, resumed.ending, resumed.at
            ),
        },
        _ => StepError::DeploymentEnded {
            id: current.deployment_id.clone(),
            status: current.status.to_string(),
        },
    }
}

/// The record has not ended (needs-attention has not: an operator's retry resumes it).
fn not_ended() -> Cond {
    Cond::And(
        [
            Status::Superseded,
            Status::Succeeded,
            Status::Aborted,
            Status::RolledBack,
        ]
        .into_iter()
        .map(|s| Cond::Ne(Path::of("status"), status_value(s)))
        .collect(),
    )
}

fn status_is(status: Status) -> Cond {
    Cond::Eq(Path::of("status"), status_value(status))
}

/// Records a Query page asks for: a `history` screen, or the console's list, in one request.
const QUERY_PAGE: usize = 25;

/// The task token of a deployment awaiting approval. Kept apart from [`Deployment`] so it is
/// never printed, logged or shown by anything that reads records.
pub async fn store_task_token(ctx: &Context, deployment_id: &str, token: &str) -> StepResult<()> {
    Records::new(ctx)
        .update(deployment_id, Change::new().task_token(token))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_and_verdicts_are_stored_by_their_snake_names() {
        assert_eq!(
            serde_json::to_value(StepOutcome::TrafficMoving).unwrap(),
            "traffic_moving"
        );
        assert_eq!(StepOutcome::AutoApproved.to_string(), "auto_approved");
        assert_eq!(
            serde_json::to_value(Verdict::TimedOut).unwrap(),
            "timed_out"
        );
        assert_eq!(Verdict::of(false).outcome(), StepOutcome::Rejected);
    }

    #[test]
    fn statuses_read_in_messages_as_they_are_stored() {
        assert_eq!(Status::AwaitingApproval.to_string(), "awaiting_approval");
        assert_eq!(Status::Queued.to_string(), "queued");
    }

    #[test]
    fn an_outcome_a_newer_version_wrote_still_reads() {
        let entry: TimelineEntry = serde_json::from_value(serde_json::json!({
            "step": "switch", "at": "2026-11-23T10:00:00Z", "outcome": "paused_by_newer_version"
        }))
        .unwrap();
        assert_eq!(entry.outcome, StepOutcome::Other);
    }
}
