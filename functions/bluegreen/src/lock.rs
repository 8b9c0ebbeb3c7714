//! One deployment per service at a time: a lock item per service in DynamoDB, taken and released
//! with conditional writes, with a one-slot queue where the newest push wins.
//!
//! The item outlives its holders: `started_order` remembers the newest push that ever took the
//! lock, so a push older than it — delivered late, out of order, as EventBridge may — is
//! superseded instead of deploying an older image after a newer one. The holder's execution
//! ARN is recorded so the reconciler can tell a holder whose execution has ended.
//!
//! Attributes: `service` (key); while held: `deployment_id`, `execution_arn` (when the
//! deployment machine is known), `acquired_at`, `lease_until` (operator holds only),
//! `needs_attention`; `queued_id`, `queued_order`; always: `started_order`.

use chrono::{DateTime, Utc};
use serde_dynamo::{AttributeValue, Item};

use crate::context::Context;
use crate::error::{StepError, StepResult};
use crate::ports::tables::{Cond, Path, Returns, Update, Write, WriteOp, Written};

/// The outcome of trying to take a service's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquire {
    /// The caller holds the lock (newly, or already from an earlier attempt).
    Held,
    /// Another deployment holds it.
    HeldBy(String),
    /// The lock is free, but a newer push than this one has already been deployed (or is
    /// deploying): this push must not deploy after it.
    Stale {
        /// The newer deployment.
        newer: String,
    },
}

/// The outcome of queueing behind a running deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueue {
    /// Queued; `superseded` is the previously queued deployment this one replaced.
    Queued {
        /// The older queued deployment, now superseded.
        superseded: Option<String>,
    },
    /// A newer push is already queued or running; this one is superseded.
    Superseded {
        /// The newer deployment.
        by: String,
    },
    /// The running deployment ended meanwhile; take the lock instead.
    LockFree,
}

/// The outcome of [`Locks::release_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Released {
    /// The caller did not hold the lock: nothing was written, not even the other item.
    NotHolder,
    /// Released (`next` is `None`) or handed to the queued deployment `next`; the other item
    /// was written in the same transaction.
    Released {
        /// The queued deployment that holds the lock now.
        next: Option<String>,
    },
}

/// Where a push stands among the service's pushes: push time, then deployment id. ECR's
/// events carry whole seconds, so pushes in the same second are ordered by deployment id (a
/// hash of the EventBridge event id): arbitrary, but the same answer in every process and on
/// every retry, which is what a lock needs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PushOrder(String);

impl PushOrder {
    /// The order of deployment `deployment_id`, pushed at `pushed_at`. Zero-padded
    /// milliseconds, so DynamoDB's string comparison agrees with time order.
    pub fn new(pushed_at: DateTime<Utc>, deployment_id: &str) -> Self {
        PushOrder(format!(
            "{:015}#{deployment_id}",
            pushed_at.timestamp_millis().max(0)
        ))
    }

    /// The push time this order carries.
    pub fn pushed_at(&self) -> Option<DateTime<Utc>> {
        let millis = self.0.split_once('#')?.0.parse::<i64>().ok()?;
        DateTime::from_timestamp_millis(millis)
    }

    /// The deployment this order belongs to.
    pub fn deployment_id(&self) -> &str {
        self.0.split_once('#').map(|(_, id)| id).unwrap_or_default()
    }

    fn value(&self) -> AttributeValue {
        s(&self.0)
    }
}

/// The per-service lock table.
pub struct Locks<'a> {
    ctx: &'a Context,
}

fn key(service: &str) -> Item {
    let mut key = Item::default();
    key.insert("service".into(), s(service));
    key
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn set(field: &str, value: AttributeValue) -> Update {
    Update::Set(Path::of(field), value)
}

/// `field = "value"`.
fn is(field: &str, value: &str) -> Cond {
    Cond::Eq(Path::of(field), s(value))
}

/// What ends when a holder lets go: everything about the holding, nothing about the order.
const HOLDING: [&str; 5] = [
    "deployment_id",
    "execution_arn",
    "acquired_at",
    "lease_until",
    "needs_attention",
];

impl<'a> Locks<'a> {
    /// The locks table of the context.
    pub fn new(ctx: &'a Context) -> Self {
        Locks { ctx }
    }

    fn table(&self) -> &str {
        &self.ctx.settings.locks_table
    }

    fn execution_arn(&self, deployment_id: &str) -> AttributeValue {
        s(&self
            .ctx
            .settings
            .execution_arn(deployment_id)
            .unwrap_or_default())
    }

    /// Takes the lock for the push `order`, or reports who holds it, or that a newer push has
    /// already taken it. Taking a lock one already holds succeeds and changes nothing (Step
    /// Functions retries).
    pub async fn acquire(&self, service: &str, order: &PushOrder) -> StepResult<Acquire> {
        let id = order.deployment_id();
        let written = self
            .update_if(
                service,
                vec![
                    set("deployment_id", s(id)),
                    set("started_order", order.value()),
                    set("execution_arn", self.execution_arn(id)),
                    Update::SetIfAbsent(Path::of("acquired_at"), s(&self.ctx.now().to_rfc3339())),
                ],
                // `<=`: the same push may take the lock again — its prepare gave it back
                // after a transient failure and Step Functions retries.
                Cond::Or(vec![
                    is("deployment_id", id),
                    Cond::And(vec![
                        Cond::absent("deployment_id"),
                        Cond::Or(vec![
                            Cond::absent("started_order"),
                            Cond::Le(Path::of("started_order"), order.value()),
                        ]),
                    ]),
                ]),
            )
            .await?;
        match written {
            Written::Applied(_) => Ok(Acquire::Held),
            Written::ConditionFailed => match self.read(service).await? {
                Some(lock) if lock.holder == id => Ok(Acquire::Held),
                Some(lock) => Ok(Acquire::HeldBy(lock.holder)),
                None => match self.started_order(service).await? {
                    Some(newer) if newer > *order => Ok(Acquire::Stale {
                        newer: newer.deployment_id().to_owned(),
                    }),
                    // Released between our write and our read: try once more.
                    _ => Box::pin(self.acquire(service, order)).await,
                },
            },
        }
    }

    /// Takes a free lock for an operator action that is not a deployment (a manual rollback),
    /// until `lease_until`: a CLI interrupted mid-way leaves a lock the reconciler frees once
    /// the lease has passed. Does not change the push order.
    pub async fn hold(
        &self,
        service: &str,
        holder: &str,
        lease_until: DateTime<Utc>,
    ) -> StepResult<Acquire> {
        let written = self
            .update_if(
                service,
                vec![
                    set("deployment_id", s(holder)),
                    set("lease_until", s(&lease_until.to_rfc3339())),
                    set("acquired_at", s(&self.ctx.now().to_rfc3339())),
                ],
                Cond::absent("deployment_id"),
            )
            .await?;
        match written {
            Written::Applied(_) => Ok(Acquire::Held),
            Written::ConditionFailed => Ok(Acquire::HeldBy(
                self.holder(service).await?.unwrap_or_default(),
            )),
        }
    }

    /// One conditional write to `service`'s lock item; the item as it was before is returned
    /// with a successful write (enqueue reports whom it superseded from it).
    async fn update_if(
        &self,
        service: &str,
        updates: Vec<Update>,
        condition: Cond,
    ) -> StepResult<Written> {
        self.ctx
            .ports
            .tables
            .write(
                Write {
                    table: self.table().to_owned(),
                    key: key(service),
                    op: WriteOp::Update(updates),
                    condition: Some(condition),
                },
                Returns::Old,
            )
            .await
    }

    /// Records that people were told about version `version` of the service's invalid config;
    /// `true` the first time for that version (so a push storm sends one message, and a new
    /// broken version sends another). Does not touch the holding.
    pub async fn first_report_of_invalid_config(
        &self,
        service: &str,
        version: i64,
    ) -> StepResult<bool> {
        let version = AttributeValue::N(version.to_string());
        let written = self
            .update_if(
                service,
                vec![set("invalid_config_reported", version.clone())],
                Cond::Or(vec![
                    Cond::absent("invalid_config_reported"),
                    Cond::Ne(Path::of("invalid_config_reported"), version),
                ]),
            )
            .await?;
        Ok(matches!(written, Written::Applied(_)))
    }

    /// Records that people were told about the live-slot guard's violations `fingerprint`
    /// (see `guard`); `true` the first time for that set (one notice per distinct violation,
    /// however many sweeps see it). Does not touch the holding.
    pub async fn first_report_of_guard(
        &self,
        service: &str,
        fingerprint: &str,
    ) -> StepResult<bool> {
        let written = self
            .update_if(
                service,
                vec![set("guard_reported", s(fingerprint))],
                Cond::Or(vec![
                    Cond::absent("guard_reported"),
                    Cond::Ne(Path::of("guard_reported"), s(fingerprint)),
                ]),
            )
            .await?;
        Ok(matches!(written, Written::Applied(_)))
    }

    /// Forgets the guard's last report once the service is healthy again, so a recurrence is
    /// told again. Writes only when there is something to forget.
    pub async fn guard_cleared(&self, service: &str) -> StepResult<()> {
        self.update_if(
            service,
            vec![Update::Remove(Path::of("guard_reported"))],
            Cond::exists("guard_reported"),
        )
        .await?;
        Ok(())
    }

    /// Who holds the lock, if anyone.
    pub async fn holder(&self, service: &str) -> StepResult<Option<String>> {
        Ok(self.read(service).await?.map(|l| l.holder))
    }

    /// Reads the lock; `None` when nobody holds it.
    pub async fn read(&self, service: &str) -> StepResult<Option<LockItem>> {
        Ok(self
            .read_item(service)
            .await?
            .and_then(|item| LockItem::from_item(&item)))
    }

    /// The newest push that has taken the lock, held or not.
    /// The order of the newest push that ever took the service's lock, if any.
    pub async fn started_order(&self, service: &str) -> StepResult<Option<PushOrder>> {
        Ok(self
            .read_item(service)
            .await?
            .and_then(|item| match item.get("started_order") {
                Some(AttributeValue::S(order)) => Some(PushOrder(order.clone())),
                _ => None,
            }))
    }

    /// The newest push order the service's lock holds: the queued push's when one waits
    /// (it is newer than the running one, or it could not have queued), else the running
    /// one's.
    pub async fn newest_order(&self, service: &str) -> StepResult<Option<PushOrder>> {
        let Some(item) = self.read_item(service).await? else {
            return Ok(None);
        };
        let order = |name: &str| match item.get(name) {
            Some(AttributeValue::S(order)) => Some(PushOrder(order.clone())),
            _ => None,
        };
        Ok([order("started_order"), order("queued_order")]
            .into_iter()
            .flatten()
            .max_by_key(PushOrder::pushed_at))
    }

    async fn read_item(&self, service: &str) -> StepResult<Option<Item>> {
        self.ctx
            .ports
            .tables
            .get(self.table(), &key(service), None)
            .await
    }

    /// Every service whose lock is held (the reconciler's sweep). The table has one small item
    /// per service, so this is a scan of the service count, not of history.
    pub async fn held(&self) -> StepResult<Vec<(String, LockItem)>> {
        let mut held = Vec::new();
        let mut start = None;
        let filter = Cond::exists("deployment_id");
        loop {
            let page = self
                .ctx
                .ports
                .tables
                .scan(self.table(), Some(&filter), start)
                .await?;
            for item in page.items {
                let service = match item.get("service") {
                    Some(AttributeValue::S(service)) => Some(service.clone()),
                    _ => None,
                };
                if let (Some(service), Some(lock)) = (service, LockItem::from_item(&item)) {
                    held.push((service, lock));
                }
            }
            start = page.last_key;
            if start.is_none() {
                return Ok(held);
            }
        }
    }

    /// Queues the push `order` behind the running deployment. The newest push wins: an older
    /// queued deployment is returned as superseded; a push older than the queued one or than
    /// the running one is itself superseded. Queueing the same deployment twice changes nothing.
    pub async fn enqueue(&self, service: &str, order: &PushOrder) -> StepResult<Enqueue> {
        let id = order.deployment_id();
        let written = self
            .update_if(
                service,
                vec![set("queued_id", s(id)), set("queued_order", order.value())],
                Cond::And(vec![
                    Cond::exists("deployment_id"),
                    Cond::Ne(Path::of("deployment_id"), s(id)),
                    Cond::Or(vec![
                        Cond::absent("started_order"),
                        Cond::Lt(Path::of("started_order"), order.value()),
                    ]),
                    Cond::Or(vec![
                        Cond::absent("queued_id"),
                        is("queued_id", id),
                        Cond::absent("queued_order"),
                        Cond::Lt(Path::of("queued_order"), order.value()),
                    ]),
                ]),
            )
            .await?;
        match written {
            Written::Applied(previous) => {
                let superseded = match previous.as_ref().and_then(|p| p.get("queued_id")) {
                    Some(AttributeValue::S(queued)) if queued != id => Some(queued.clone()),
                    _ => None,
                };
                Ok(Enqueue::Queued { superseded })
            }
            Written::ConditionFailed => {
                let started = self.started_order(service).await?;
                match self.read(service).await? {
                    None => Ok(Enqueue::LockFree),
                    Some(lock) if lock.holder == id => Ok(Enqueue::LockFree),
                    Some(_) if started.as_ref().is_some_and(|s| s >= order) => {
                        Ok(Enqueue::Superseded {
                            by: started
                                .map(|s| s.deployment_id().to_owned())
                                .unwrap_or_default(),
                        })
                    }
                    Some(lock) => match lock.queued {
                        Some(newer) => Ok(Enqueue::Superseded { by: newer }),
                        // The queue emptied between write and read: try again.
                        None => Box::pin(self.enqueue(service, order)).await,
                    },
                }
            }
        }
    }

    /// Marks the lock held by `deployment_id` as needing a person: it stays held (no other
    /// deployment of the service starts on a production a person must look at first), and
    /// `needs_attention` says why. Marking a lock one does not hold changes nothing.
    pub async fn mark_needs_attention(
        &self,
        service: &str,
        deployment_id: &str,
        reason: &str,
    ) -> StepResult<bool> {
        let written = self
            .update_if(
                service,
                vec![set("needs_attention", s(reason))],
                is("deployment_id", deployment_id),
            )
            .await?;
        Ok(matches!(written, Written::Applied(_)))
    }

    /// Re-opens the deployment holding the lock for an operator's `retry`, in one transaction:
    /// the lock's needs-attention mark is cleared (it is in progress again; its ending marks
    /// it anew if it needs a person again) and `record` — the record's write, conditional on
    /// it still needing attention — is applied, only while `deployment_id` holds the lock.
    /// `Ok(false)` when either condition failed (nothing written): another retry, or an
    /// `unlock` that handed the lock on, came first.
    pub async fn reopen(
        &self,
        service: &str,
        deployment_id: &str,
        record: Write,
    ) -> StepResult<bool> {
        let lock = Write {
            table: self.table().to_owned(),
            key: key(service),
            op: WriteOp::Update(vec![Update::Remove(Path::of("needs_attention"))]),
            condition: Some(is("deployment_id", deployment_id)),
        };
        Ok(self
            .ctx
            .ports
            .tables
            .transact(vec![lock, record])
            .await?
            .is_ok())
    }

    /// Releases the lock held by `holder`. If a deployment is queued, the lock passes to it
    /// instead and its id is returned, so no other push can slip in between. Releasing a lock
    /// one no longer holds changes nothing and returns `None`.
    pub async fn release(&self, service: &str, holder: &str) -> StepResult<Option<String>> {
        Ok(
            match self.release_with(service, holder, |_| Ok(None)).await? {
                Released::NotHolder => None,
                Released::Released { next } => next,
            },
        )
    }

    /// [`Locks::release`], and in the same DynamoDB transaction the write `also(next)` returns
    /// (the holder's final record, naming the deployment that takes over). Either both happen
    /// or neither: a retried ending never finds the lock handed over but its own record
    /// unwritten. A failed condition on either item (the queue changed, the record is gone) is
    /// read again, up to three times.
    pub async fn release_with(
        &self,
        service: &str,
        holder: &str,
        also: impl Fn(Option<&str>) -> StepResult<Option<Write>>,
    ) -> StepResult<Released> {
        for _ in 0..3 {
            let Some(lock) = self.read(service).await? else {
                return Ok(Released::NotHolder);
            };
            if lock.holder != holder {
                return Ok(Released::NotHolder);
            }
            let (updates, condition) = match &lock.queued {
                Some(next) => {
                    let mut updates = vec![
                        set("deployment_id", s(next)),
                        Update::Copy {
                            to: Path::of("started_order"),
                            from: Path::of("queued_order"),
                        },
                        set("execution_arn", self.execution_arn(next)),
                        set("acquired_at", s(&self.ctx.now().to_rfc3339())),
                    ];
                    for field in [
                        "queued_id",
                        "queued_order",
                        "lease_until",
                        "needs_attention",
                    ] {
                        updates.push(Update::Remove(Path::of(field)));
                    }
                    let condition =
                        Cond::And(vec![is("deployment_id", holder), is("queued_id", next)]);
                    (updates, condition)
                }
                None => (
                    HOLDING
                        .iter()
                        .map(|field| Update::Remove(Path::of(field)))
                        .collect(),
                    Cond::And(vec![is("deployment_id", holder), Cond::absent("queued_id")]),
                ),
            };
            let mut writes = vec![Write {
                table: self.table().to_owned(),
                key: key(service),
                op: WriteOp::Update(updates),
                condition: Some(condition),
            }];
            writes.extend(also(lock.queued.as_deref())?);
            let cancelled = match self.ctx.ports.tables.transact(writes).await? {
                Ok(()) => return Ok(Released::Released { next: lock.queued }),
                Err(cancelled) => cancelled,
            };
            // Failures come in write order: [lock, other item]. A failed condition on the lock
            // means someone queued (or the queue changed) between our read and our write: read
            // again. On the other item it will not change by reading again: say which.
            let failed = |i: usize| cancelled.failed.get(i).copied().unwrap_or(false);
            if failed(1) {
                return Err(StepError::Internal(format!(
                    "releasing {service}'s lock: the write made with it was refused (its \
                     record is missing?); nothing was written"
                )));
            }
            if !failed(0) {
                return Err(StepError::AwsTransient {
                    operation: "dynamodb:TransactWriteItems",
                    message: format!("transaction cancelled: {:?}", cancelled.failed),
                });
            }
        }
        Err(StepError::AwsTransient {
            operation: "dynamodb:TransactWriteItems",
            message: "the lock item kept changing; retry".into(),
        })
    }
}

/// A held lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockItem {
    /// The deployment (or operator action) holding the lock.
    pub holder: String,
    /// The holder's Step Functions execution, when it is a deployment and the deployment
    /// machine is known.
    pub execution_arn: Option<String>,
    /// When the holder took it.
    pub acquired_at: Option<DateTime<Utc>>,
    /// Operator holds only: after this the reconciler may free the lock.
    pub lease_until: Option<DateTime<Utc>>,
    /// The deployment queued behind it.
    pub queued: Option<String>,
    /// Why a person must look before the lock is released, when the holder ended that way.
    pub needs_attention: Option<String>,
}

/// How long a lock may be held by a deployment with no record (a prepare that took the lock
/// and failed before writing it) before it may be freed. Prepare writes the record within
/// seconds of taking the lock; its retries take at most a few minutes.
pub const UNRECORDED_HOLD_GRACE_SECONDS: i64 = 900;

impl LockItem {
    /// Until when a holder without a deployment record keeps the lock: an operator action's
    /// hold until its lease ends, a push being admitted (prepare took the lock and has not
    /// written the record yet) until [`UNRECORDED_HOLD_GRACE_SECONDS`] after it took it.
    /// Neither the reconciler nor `unlock` frees such a lock before then: freed in between, the
    /// admitted deployment would run without it. `None`: no time recorded, free now.
    pub fn unrecorded_hold_until(&self) -> Option<DateTime<Utc>> {
        self.lease_until.or_else(|| {
            self.acquired_at
                .map(|t| t + chrono::Duration::seconds(UNRECORDED_HOLD_GRACE_SECONDS))
        })
    }

    /// Until when a push being admitted keeps the lock although its record is not written
    /// yet (prepare takes the lock, then writes the record): [`UNRECORDED_HOLD_GRACE_SECONDS`]
    /// after it took it. `None` for an operator action's hold (it has a lease) or a lock with
    /// no time recorded.
    pub fn admission_until(&self) -> Option<DateTime<Utc>> {
        match self.lease_until {
            Some(_) => None,
            None => self.unrecorded_hold_until(),
        }
    }

    /// The lock in `item`; `None` when nobody holds it.
    fn from_item(item: &Item) -> Option<Self> {
        let text = |name: &str| match item.get(name) {
            Some(AttributeValue::S(value)) if !value.is_empty() => Some(value.clone()),
            _ => None,
        };
        let time = |name: &str| {
            text(name)
                .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        Some(LockItem {
            holder: text("deployment_id")?,
            execution_arn: text("execution_arn"),
            acquired_at: time("acquired_at"),
            lease_until: time("lease_until"),
            queued: text("queued_id"),
            needs_attention: text("needs_attention"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_order_sorts_by_time_then_id_as_strings_do() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let early = PushOrder::new(t("2026-01-01T00:00:09Z"), "shop-b");
        let late = PushOrder::new(t("2026-01-01T00:00:10Z"), "shop-a");
        let same_second = PushOrder::new(t("2026-01-01T00:00:10Z"), "shop-c");
        assert!(early < late && late < same_second);
        assert!(
            early.0 < late.0,
            "string order is time order across digit counts"
        );
        assert_eq!(same_second.deployment_id(), "shop-c");
    }
}
