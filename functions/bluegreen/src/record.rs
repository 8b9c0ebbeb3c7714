//! Deployment records in DynamoDB: one item per deployment, read by `status`, `history` and the
//! approval console, and written by every step.
//!
//! Steps change a record with targeted `UpdateItem` expressions (never a whole-item put), so a
//! step and the console writing an approval decision cannot overwrite each other.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Update};
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::ServiceConfig;
use crate::context::Context;
use crate::error::{Conditional, StepError, StepResult, conditional};
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

/// One line of a deployment's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TimelineEntry {
    /// Step name, for example `launch_preprod`.
    pub step: String,
    /// When it was recorded.
    pub at: DateTime<Utc>,
    /// `started`, `succeeded`, `failed`, …
    pub outcome: String,
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
    #[serde(default)]
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
    #[serde(default)]
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
    #[serde(default)]
    pub preprod: Option<String>,
    /// `isolated` only: the pushed image on production's database, registered after approval.
    #[serde(default)]
    pub production: Option<String>,
}

/// How a tracked one-off task (the production or rollback migration) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Started, not seen stopped yet.
    Running,
    /// Its essential container exited 0.
    Succeeded,
    /// It stopped any other way, or was stopped at its deadline.
    Failed,
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
    /// `approved` or `rejected`, once decided. Absent (not null) until then, so the decision
    /// write can be conditional on `attribute_not_exists(approval.decision)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    /// Who decided.
    #[serde(default)]
    pub approver: Option<String>,
    /// When.
    #[serde(default)]
    pub decided_at: Option<DateTime<Utc>>,
    /// Reason given with a rejection.
    #[serde(default)]
    pub reason: Option<String>,
    /// `console` or `cli`.
    #[serde(default)]
    pub channel: Option<String>,
    /// The nonce of the signed link that decided, so that link cannot be used again.
    #[serde(default)]
    pub link_nonce: Option<String>,
    /// When Step Functions accepted the decision (`SendTaskSuccess`/`SendTaskFailure`).
    #[serde(default)]
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
    #[serde(default)]
    pub live_slot: Option<Slot>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// What happened, in order.
    #[serde(default)]
    pub timeline: Vec<TimelineEntry>,
    /// What launch changed.
    #[serde(default)]
    pub preprod: Option<PreprodState>,
    /// Clones made for this deployment.
    #[serde(default)]
    pub clones: Vec<DbClone>,
    /// Task definitions registered for this deployment.
    #[serde(default)]
    pub task_definitions: TaskDefinitions,
    /// The production migration task's ARN.
    #[serde(default)]
    pub migration_task_arn: Option<String>,
    /// The ARN of the migration run against a clone (rehearsal, or `isolated` pre-prod).
    #[serde(default)]
    pub rehearsal_task_arn: Option<String>,
    /// The production migration, once started: whether production's schema has changed.
    #[serde(default)]
    pub production_migration: Option<TrackedTask>,
    /// The rollback migration, once started by abort or rollback.
    #[serde(default)]
    pub rollback_migration: Option<TrackedTask>,
    /// Where the production migration logged, once it succeeded.
    #[serde(default)]
    pub migration_log: Option<LogLocation>,
    /// Health-check evidence shown to approvers.
    #[serde(default)]
    pub health_evidence: Option<String>,
    /// The approval.
    #[serde(default)]
    pub approval: Option<ApprovalState>,
    /// When traffic started to move to the new slot.
    #[serde(default)]
    pub switched_at: Option<DateTime<Utc>>,
    /// When pre-prod resources of this deployment may be torn down.
    pub expires_at: DateTime<Utc>,
    /// Why the deployment failed, for aborted and rolled-back deployments.
    #[serde(default)]
    pub failure: Option<String>,
    /// DNS mode: the TTL before bluegreen lowered it, and when.
    #[serde(default)]
    pub dns_ttl: Option<DnsTtl>,
    /// The queued deployment that received the lock when this one ended.
    #[serde(default)]
    pub handed_over_to: Option<String>,
}

/// DNS mode: the record TTL lowered ahead of the switch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DnsTtl {
    /// The TTL before it was lowered (restored when the deployment ends).
    pub previous: i64,
    /// When it was lowered; the switch waits until `previous` seconds have passed.
    pub lowered_at: DateTime<Utc>,
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
        match self.approval.as_ref().and_then(|a| a.decision.as_deref()) {
            Some("approved") => Ok(()),
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
    pub fn has_outcome(&self, step: &str, outcome: &str) -> bool {
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
    pub fn set<T: Serialize>(mut self, field: &str, value: &T) -> Self {
        let value = serde_dynamo::to_attribute_value(value).expect("record fields serialise");
        self.sets.push((field.to_owned(), value));
        self
    }

    /// Removes a top-level attribute.
    pub fn remove(mut self, field: &str) -> Self {
        self.removes.push(field.to_owned());
        self
    }

    /// Appends a timeline entry.
    pub fn log(
        mut self,
        step: &str,
        outcome: &str,
        detail: impl Into<String>,
        at: DateTime<Utc>,
    ) -> Self {
        self.entry = Some(TimelineEntry {
            step: step.to_owned(),
            at,
            outcome: outcome.to_owned(),
            detail: detail.into(),
        });
        self
    }
}

/// A [`Change`] as a DynamoDB update expression with its placeholders.
struct UpdateExpression {
    expression: String,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Change {
    /// The update expression for this change, bumping `updated_at` to `now`. Every name goes
    /// through a placeholder, so no field can collide with a DynamoDB reserved word.
    fn into_expression(self, now: DateTime<Utc>) -> UpdateExpression {
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        let mut sets = vec!["#updated_at = :updated_at".to_owned()];
        names.insert("#updated_at".to_owned(), "updated_at".to_owned());
        values.insert(
            ":updated_at".to_owned(),
            serde_dynamo::to_attribute_value(now).expect("time serialises"),
        );
        for (i, (field, value)) in self.sets.into_iter().enumerate() {
            // `a.b` names a nested attribute: one placeholder per part.
            let path: Vec<String> = field
                .split('.')
                .enumerate()
                .map(|(j, part)| {
                    names.insert(format!("#f{i}_{j}"), part.to_owned());
                    format!("#f{i}_{j}")
                })
                .collect();
            values.insert(format!(":v{i}"), value);
            sets.push(format!("{} = :v{i}", path.join(".")));
        }
        if let Some(entry) = self.entry {
            names.insert("#timeline".to_owned(), "timeline".to_owned());
            values.insert(
                ":entry".to_owned(),
                AttributeValue::L(vec![
                    serde_dynamo::to_attribute_value(entry).expect("entry serialises"),
                ]),
            );
            values.insert(":empty".to_owned(), AttributeValue::L(vec![]));
            sets.push("#timeline = list_append(if_not_exists(#timeline, :empty), :entry)".into());
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if !self.removes.is_empty() {
            let removes: Vec<String> = self
                .removes
                .into_iter()
                .enumerate()
                .map(|(i, field)| {
                    names.insert(format!("#r{i}"), field);
                    format!("#r{i}")
                })
                .collect();
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        UpdateExpression {
            expression,
            names,
            values,
        }
    }
}

/// Reads and writes deployment records.
pub struct Records<'a> {
    ctx: &'a Context,
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
        let item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(deployment).expect("deployment serialises");
        let result = self
            .ctx
            .dynamodb
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(deployment_id)")
            .send()
            .await;
        match conditional("dynamodb:PutItem", result)? {
            Conditional::Written(_) => Ok(deployment.clone()),
            Conditional::ConditionFailed => self.get(&deployment.deployment_id).await,
        }
    }

    /// The task token the approval wait stored (`None` when there is none). Read on its own,
    /// so it never travels inside a [`Deployment`].
    pub async fn task_token(&self, deployment_id: &str) -> StepResult<Option<String>> {
        self.string_attribute(deployment_id, "task_token").await
    }

    /// One string attribute written outside the [`Deployment`] type (the task token, a DNS
    /// change id), read consistently; `None` when absent.
    pub async fn string_attribute(
        &self,
        deployment_id: &str,
        name: &str,
    ) -> StepResult<Option<String>> {
        Ok(self
            .item(deployment_id, Some(name))
            .await?
            .and_then(|item| item.get(name)?.as_s().ok().cloned()))
    }

    /// The record's item (only the attribute `only`, when given), read consistently.
    async fn item(
        &self,
        deployment_id: &str,
        only: Option<&str>,
    ) -> StepResult<Option<HashMap<String, AttributeValue>>> {
        let mut request = self
            .ctx
            .dynamodb
            .get_item()
            .table_name(self.table())
            .key("deployment_id", AttributeValue::S(deployment_id.to_owned()))
            .consistent_read(true);
        if let Some(name) = only {
            request = request
                .projection_expression("#attribute")
                .expression_attribute_names("#attribute", name);
        }
        let out = request
            .send()
            .await
            .map_err(|e| StepError::from_sdk("dynamodb:GetItem", e))?;
        Ok(out.item)
    }

    /// Reads a record; [`StepError::DeploymentNotFound`] if there is none.
    pub async fn get(&self, deployment_id: &str) -> StepResult<Deployment> {
        let item = self
            .item(deployment_id, None)
            .await?
            .ok_or_else(|| StepError::DeploymentNotFound(deployment_id.to_owned()))?;
        serde_dynamo::from_item(item).map_err(|e| {
            StepError::RecordInvalid(format!(
                "deployment record {deployment_id} is unreadable: {e}"
            ))
        })
    }

    /// Applies a change to an existing record and bumps `updated_at`.
    pub async fn update(&self, deployment_id: &str, change: Change) -> StepResult<()> {
        if self
            .update_if(
                deployment_id,
                change,
                "attribute_exists(deployment_id)",
                &[],
                &[],
            )
            .await?
        {
            Ok(())
        } else {
            Err(StepError::DeploymentNotFound(deployment_id.to_owned()))
        }
    }

    /// Applies `change` only while `condition` holds (placeholders in `names` and `values`,
    /// which must not start with `#f`, `#r`, `:v` or name `:updated_at`/`:entry`/`:empty`).
    /// `Ok(false)` when the condition did not hold (nothing written).
    pub async fn update_if(
        &self,
        deployment_id: &str,
        change: Change,
        condition: &str,
        names: &[(&str, &str)],
        values: &[(&str, AttributeValue)],
    ) -> StepResult<bool> {
        let mut written = change.into_expression(self.ctx.now());
        for (placeholder, name) in names {
            written
                .names
                .insert((*placeholder).to_owned(), (*name).to_owned());
        }
        for (placeholder, value) in values {
            written
                .values
                .insert((*placeholder).to_owned(), value.clone());
        }
        let result = self
            .ctx
            .dynamodb
            .update_item()
            .table_name(self.table())
            .key("deployment_id", AttributeValue::S(deployment_id.to_owned()))
            .update_expression(written.expression)
            .condition_expression(format!("attribute_exists(deployment_id) AND ({condition})"))
            .set_expression_attribute_names(Some(written.names))
            .set_expression_attribute_values(Some(written.values))
            .send()
            .await;
        Ok(matches!(
            conditional("dynamodb:UpdateItem", result)?,
            Conditional::Written(_)
        ))
    }

    /// The write [`Records::update`] makes, as one item of a DynamoDB transaction (the lock
    /// release that ends a deployment writes its record in the same transaction).
    pub fn update_in_transaction(&self, deployment_id: &str, change: Change) -> StepResult<Update> {
        let written = change.into_expression(self.ctx.now());
        Update::builder()
            .table_name(self.table())
            .key("deployment_id", AttributeValue::S(deployment_id.to_owned()))
            .update_expression(written.expression)
            .condition_expression("attribute_exists(deployment_id)")
            .set_expression_attribute_names(Some(written.names))
            .set_expression_attribute_values(Some(written.values))
            .build()
            .map_err(|e| StepError::Internal(format!("the record write is incomplete: {e}")))
    }

    /// Every record of `service`, newest first (a scan filtered by service; the stack adds a
    /// `service` index for large histories).
    pub async fn for_service(&self, service: &str) -> StepResult<Vec<Deployment>> {
        self.scan_where("service", service).await
    }

    /// Every record with `status`, newest first.
    pub async fn with_status(&self, status: Status) -> StepResult<Vec<Deployment>> {
        let value = serde_json::to_value(status).expect("status serialises");
        self.scan_where("status", value.as_str().unwrap_or_default())
            .await
    }

    /// The `limit` newest records of every service. A full scan: one table per account holds a
    /// few records per deployment day; an index on `created_at` is the upgrade path.
    pub async fn recent(&self, limit: usize) -> StepResult<Vec<Deployment>> {
        let mut all = self.scan(None).await?;
        all.truncate(limit);
        Ok(all)
    }

    async fn scan_where(&self, field: &str, value: &str) -> StepResult<Vec<Deployment>> {
        self.scan(Some((field, value))).await
    }

    async fn scan(&self, filter: Option<(&str, &str)>) -> StepResult<Vec<Deployment>> {
        let mut all = Vec::new();
        let mut start = None;
        loop {
            let mut request = self
                .ctx
                .dynamodb
                .scan()
                .table_name(self.table())
                .set_exclusive_start_key(start);
            if let Some((field, value)) = filter {
                request = request
                    .filter_expression("#field = :value")
                    .expression_attribute_names("#field", field)
                    .expression_attribute_values(":value", AttributeValue::S(value.to_owned()));
            }
            let out = request
                .send()
                .await
                .map_err(|e| StepError::from_sdk("dynamodb:Scan", e))?;
            for item in out.items.unwrap_or_default() {
                let d: Deployment = serde_dynamo::from_item(item).map_err(|e| {
                    StepError::RecordInvalid(format!("unreadable deployment record: {e}"))
                })?;
                all.push(d);
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        all.sort_by_key(|d| std::cmp::Reverse(d.created_at));
        Ok(all)
    }
}

/// The task token of a deployment awaiting approval. Kept apart from [`Deployment`] so it is
/// never printed, logged or shown by anything that reads records.
pub async fn store_task_token(ctx: &Context, deployment_id: &str, token: &str) -> StepResult<()> {
    Records::new(ctx)
        .update(deployment_id, Change::new().set("task_token", &token))
        .await
}
