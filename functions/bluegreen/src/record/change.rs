//! Changes to a deployment record: typed setters, one per field bluegreen writes, and a
//! timeline entry, turned into DynamoDB updates by the repository ([`super::Records`]).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_dynamo::AttributeValue;

use super::model::*;
use crate::ports::tables::{Path, Update};
use crate::slot::Slot;

/// The attribute that holds the approval wait's task token (outside [`Deployment`]).
pub(crate) const TASK_TOKEN: &str = "task_token";
/// The record's attribute an abort request sets.
pub(crate) const ABORT_REQUESTED: &str = "abort_requested";
/// The attribute [`Deployment::resumed`] is stored in.
pub(crate) const RESUMED: &str = "resumed";

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
    /// Not public: callers use the typed setters below, so every attribute bluegreen writes is
    /// a field of [`Deployment`] (or the task token, kept out of it on purpose); the repository
    /// uses it for the approval fields it writes under its own condition.
    pub(super) fn set<T: Serialize>(mut self, field: &str, value: &T) -> Self {
        let value = serde_dynamo::to_attribute_value(value).expect("record fields serialise");
        self.sets.push((field.to_owned(), value));
        self
    }

    /// Whether the change moves [`Deployment::status`].
    pub(super) fn sets_status(&self) -> bool {
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

    /// Sets [`Deployment::migration_starting`].
    pub fn migration_starting(self, starting: &MigrationStarting) -> Self {
        self.set("migration_starting", starting)
    }

    /// Removes [`Deployment::migration_starting`]: the start it announced did not happen.
    pub fn no_migration_starting(mut self) -> Self {
        self.removes.push("migration_starting".to_owned());
        self
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

    /// Sets the rollback migration aside as failed, so that the next ending starts it again
    /// as a new task (an operator's `retry` after fixing its cause): `failed` becomes
    /// [`Deployment::failed_rollback_migrations`] and the current one is removed.
    pub fn rollback_migration_again(mut self, failed: &[TrackedTask]) -> Self {
        self.removes.push("rollback_migration".to_owned());
        self.set("failed_rollback_migrations", &failed)
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
    pub(super) fn into_updates(self, now: DateTime<Utc>) -> Vec<Update> {
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
