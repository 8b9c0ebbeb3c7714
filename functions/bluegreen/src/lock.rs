//! One deployment per service at a time: a lock item per service in DynamoDB, taken and released
//! with conditional writes, with a one-slot queue where the newest push wins.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Utc};

use crate::context::Context;
use crate::error::{Conditional, StepError, StepResult, conditional};

/// The outcome of trying to take a service's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquire {
    /// The caller holds the lock (newly, or already from an earlier attempt).
    Held,
    /// Another deployment holds it.
    HeldBy(String),
}

/// The outcome of queueing behind a running deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueue {
    /// Queued; `superseded` is the previously queued deployment this one replaced.
    Queued {
        /// The older queued deployment, now superseded.
        superseded: Option<String>,
    },
    /// A newer push is already queued; this one is superseded.
    Superseded {
        /// The newer queued deployment.
        by: String,
    },
    /// The running deployment ended meanwhile; take the lock instead.
    LockFree,
}

/// The per-service lock table.
pub struct Locks<'a> {
    ctx: &'a Context,
}

fn key(service: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("service".to_owned(), AttributeValue::S(service.to_owned()))])
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

impl<'a> Locks<'a> {
    /// The locks table of the context.
    pub fn new(ctx: &'a Context) -> Self {
        Locks { ctx }
    }

    fn table(&self) -> &str {
        &self.ctx.settings.locks_table
    }

    /// Takes the lock for `deployment_id`, or reports who holds it. Taking a lock one already
    /// holds succeeds and changes nothing (Step Functions retries).
    pub async fn acquire(&self, service: &str, deployment_id: &str) -> StepResult<Acquire> {
        let result = self
            .ctx
            .dynamodb
            .update_item()
            .table_name(self.table())
            .set_key(Some(key(service)))
            .update_expression(
                "SET deployment_id = :id, acquired_at = if_not_exists(acquired_at, :now)",
            )
            .condition_expression("attribute_not_exists(service) OR deployment_id = :id")
            .expression_attribute_values(":id", s(deployment_id))
            .expression_attribute_values(":now", s(&self.ctx.now().to_rfc3339()))
            .send()
            .await;
        match conditional("dynamodb:UpdateItem", result)? {
            Conditional::Written(_) => Ok(Acquire::Held),
            Conditional::ConditionFailed => match self.holder(service).await? {
                Some(holder) if holder == deployment_id => Ok(Acquire::Held),
                Some(holder) => Ok(Acquire::HeldBy(holder)),
                // Released between our write and our read: try once more.
                None => Box::pin(self.acquire(service, deployment_id)).await,
            },
        }
    }

    /// Who holds the lock, if anyone.
    pub async fn holder(&self, service: &str) -> StepResult<Option<String>> {
        Ok(self.read(service).await?.map(|l| l.holder))
    }

    /// Reads the lock item.
    pub async fn read(&self, service: &str) -> StepResult<Option<LockItem>> {
        let out = self
            .ctx
            .dynamodb
            .get_item()
            .table_name(self.table())
            .set_key(Some(key(service)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StepError::from_sdk("dynamodb:GetItem", e))?;
        Ok(out.item.map(|item| LockItem::from_item(&item)))
    }

    /// Queues `deployment_id` (pushed at `pushed_at`) behind the running deployment. The newest
    /// push wins: an older queued deployment is returned as superseded; a push older than the
    /// queued one is itself superseded. Queueing the same deployment twice changes nothing.
    pub async fn enqueue(
        &self,
        service: &str,
        deployment_id: &str,
        pushed_at: DateTime<Utc>,
    ) -> StepResult<Enqueue> {
        let result = self
            .ctx
            .dynamodb
            .update_item()
            .table_name(self.table())
            .set_key(Some(key(service)))
            .update_expression("SET queued_id = :qid, queued_at_ms = :t")
            .condition_expression(
                "attribute_exists(deployment_id) AND deployment_id <> :qid \
                 AND (attribute_not_exists(queued_id) OR queued_id = :qid OR queued_at_ms < :t)",
            )
            .expression_attribute_values(":qid", s(deployment_id))
            .expression_attribute_values(
                ":t",
                AttributeValue::N(pushed_at.timestamp_millis().to_string()),
            )
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match conditional("dynamodb:UpdateItem", result)? {
            Conditional::Written(out) => {
                let previous = out.attributes.map(|a| LockItem::from_item(&a));
                let superseded = previous
                    .and_then(|p| p.queued)
                    .filter(|q| q != deployment_id);
                Ok(Enqueue::Queued { superseded })
            }
            Conditional::ConditionFailed => match self.read(service).await? {
                None => Ok(Enqueue::LockFree),
                Some(lock) if lock.holder == deployment_id => Ok(Enqueue::LockFree),
                Some(lock) => match lock.queued {
                    Some(newer) => Ok(Enqueue::Superseded { by: newer }),
                    // The queue emptied between write and read: try again.
                    None => Box::pin(self.enqueue(service, deployment_id, pushed_at)).await,
                },
            },
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
        let result = self
            .ctx
            .dynamodb
            .update_item()
            .table_name(self.table())
            .set_key(Some(key(service)))
            .update_expression("SET needs_attention = :reason")
            .condition_expression("deployment_id = :me")
            .expression_attribute_values(":me", s(deployment_id))
            .expression_attribute_values(":reason", s(reason))
            .send()
            .await;
        Ok(matches!(
            conditional("dynamodb:UpdateItem", result)?,
            Conditional::Written(_)
        ))
    }

    /// Releases the lock held by `deployment_id`. If a deployment is queued, the lock passes to
    /// it instead and its id is returned, so no other push can slip in between. Releasing a
    /// lock one no longer holds changes nothing and returns `None`.
    pub async fn release(&self, service: &str, deployment_id: &str) -> StepResult<Option<String>> {
        for _ in 0..3 {
            let Some(lock) = self.read(service).await? else {
                return Ok(None);
            };
            if lock.holder != deployment_id {
                return Ok(None);
            }
            let written = match &lock.queued {
                Some(next) => {
                    let result = self
                        .ctx
                        .dynamodb
                        .update_item()
                        .table_name(self.table())
                        .set_key(Some(key(service)))
                        .update_expression(
                            "SET deployment_id = :next, acquired_at = :now REMOVE queued_id, queued_at_ms",
                        )
                        .condition_expression("deployment_id = :me AND queued_id = :next")
                        .expression_attribute_values(":me", s(deployment_id))
                        .expression_attribute_values(":next", s(next))
                        .expression_attribute_values(":now", s(&self.ctx.now().to_rfc3339()))
                        .send()
                        .await;
                    matches!(
                        conditional("dynamodb:UpdateItem", result)?,
                        Conditional::Written(_)
                    )
                }
                None => {
                    let result = self
                        .ctx
                        .dynamodb
                        .delete_item()
                        .table_name(self.table())
                        .set_key(Some(key(service)))
                        .condition_expression(
                            "deployment_id = :me AND attribute_not_exists(queued_id)",
                        )
                        .expression_attribute_values(":me", s(deployment_id))
                        .send()
                        .await;
                    matches!(
                        conditional("dynamodb:DeleteItem", result)?,
                        Conditional::Written(_)
                    )
                }
            };
            // A failed condition means someone queued (or the queue changed) between our read
            // and our write: read again.
            if written {
                return Ok(lock.queued);
            }
        }
        Err(StepError::AwsTransient {
            operation: "dynamodb:ReleaseLock",
            message: "the lock item kept changing; retry".into(),
        })
    }
}

/// The lock item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockItem {
    /// The deployment holding the lock.
    pub holder: String,
    /// The deployment queued behind it.
    pub queued: Option<String>,
    /// Why a person must look before the lock is released, when the holder ended that way.
    pub needs_attention: Option<String>,
}

impl LockItem {
    fn from_item(item: &HashMap<String, AttributeValue>) -> Self {
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        LockItem {
            holder: text("deployment_id").unwrap_or_default(),
            queued: text("queued_id"),
            needs_attention: text("needs_attention"),
        }
    }
}
