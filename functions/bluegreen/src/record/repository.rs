//! The deployment records table: create, read, conditional updates (fenced by the abort mark
//! and the record's status), the approval decision, and the index queries.

use chrono::{DateTime, Utc};
use serde_dynamo::{AttributeValue, Item};

use super::change::{ABORT_REQUESTED, Change, RESUMED, TASK_TOKEN};
use super::model::*;
use crate::context::Context;
use crate::error::{StepError, StepResult};
use crate::ports::tables::{Cond, Path, Query, Returns, Update, Write, WriteOp, Written};
use crate::tables::{self, Index};

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

    /// Every record of `service` (of every service with `None`) created at or after `since`,
    /// newest first, reading no further back (the `by_service` or the `recent` index).
    pub async fn created_since(
        &self,
        service: Option<&str>,
        since: DateTime<Utc>,
    ) -> StepResult<Vec<Deployment>> {
        let all = serde_json::to_value(Listed::All).expect("listed serialises");
        let (index, value) = match service {
            Some(service) => (&tables::BY_SERVICE, service),
            None => (&tables::RECENT, all.as_str().unwrap_or_default()),
        };
        let read = self
            .query(index, value, |found| {
                found.last().is_some_and(|d| d.created_at < since)
            })
            .await?;
        Ok(read.into_iter().filter(|d| d.created_at >= since).collect())
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
