//! A queued push's place in its service's queue: putting a deployment whose `queued` record
//! exists through the lock (take it if free, queue behind the holder, or be superseded), and
//! superseding a queued deployment once.
//!
//! Prepare uses it right after writing a queued record; the reconciler's sweep uses it for a
//! queued record the lock does not name (an intake that wrote the record and then gave up
//! before, or while, queueing it), so no queued push is left waiting for nothing.

use tracing::warn;

use crate::context::Context;
use crate::error::StepResult;
use crate::lock::{Acquire, Enqueue, Locks, PushOrder};
use crate::notify;
use crate::record::{Change, Deployment, Records, Status, StepOutcome};

/// Where a queued deployment stands after [`place`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    /// It holds the lock: the lock was free (or came free meanwhile), so it deploys now.
    Holds,
    /// The lock's queue names it, behind `holder`.
    Queued {
        /// The deployment holding the lock.
        holder: String,
    },
    /// A newer push is queued, running or deployed: its record now says superseded.
    Superseded {
        /// The newer deployment.
        by: String,
    },
}

/// Puts the queued deployment `order.deployment_id()` of `service` through the lock: its
/// record must already exist, so whoever supersedes it or hands it the lock finds it.
/// Idempotent: the lock's writes are conditional on push order, so a retry, or a prepare and a
/// sweep doing it at once, reach the same answer. `step` names who writes the timeline.
pub async fn place(
    ctx: &Context,
    service: &str,
    order: &PushOrder,
    step: &str,
) -> StepResult<Placed> {
    match Locks::new(ctx).acquire(service, order).await? {
        Acquire::Held => Ok(Placed::Holds),
        Acquire::Stale { newer } => {
            supersede(ctx, order.deployment_id(), &newer, step).await?;
            Ok(Placed::Superseded { by: newer })
        }
        Acquire::HeldBy(holder) => queue_behind(ctx, service, order, &holder, step).await,
    }
}

/// [`place`] for a caller that has just seen `holder` holding the lock (prepare, which needed
/// that answer to know it must write a queued record): goes straight to the queue instead of
/// asking for the lock a second time.
pub async fn queue_behind(
    ctx: &Context,
    service: &str,
    order: &PushOrder,
    holder: &str,
    step: &str,
) -> StepResult<Placed> {
    let id = order.deployment_id();
    match Locks::new(ctx).enqueue(service, order).await? {
        // The holder ended between the two calls: try to take the lock again.
        Enqueue::LockFree => Box::pin(place(ctx, service, order, step)).await,
        Enqueue::Queued { superseded } => {
            if let Some(old) = superseded {
                supersede(ctx, &old, id, step).await?;
            }
            Ok(Placed::Queued {
                holder: holder.to_owned(),
            })
        }
        Enqueue::Superseded { by } => {
            supersede(ctx, id, &by, step).await?;
            Ok(Placed::Superseded { by })
        }
    }
}

/// Marks the queued deployment `old` superseded by `by`, once: the newer push that replaced it
/// in the queue, `old`'s own retried prepare and the sweep may all get here, and only the
/// first writes and notifies.
pub async fn supersede(ctx: &Context, old: &str, by: &str, step: &str) -> StepResult<()> {
    let records = Records::new(ctx);
    let written = records
        .update_while(
            old,
            Status::Queued,
            Change::new()
                .status(Status::Superseded)
                .failure(&format!("superseded by newer push {by}"))
                .log(
                    step,
                    StepOutcome::Superseded,
                    format!("replaced in the queue by {by}"),
                    ctx.now(),
                ),
        )
        .await?;
    if written {
        notify_superseded(ctx, &records.get(old).await?, by).await;
    }
    Ok(())
}

/// Tells people a queued push will not be deployed. A lost message is logged, not retried: the
/// record already says superseded, and a retry must not queue anything twice.
pub async fn notify_superseded(ctx: &Context, deployment: &Deployment, by: &str) {
    let detail = format!("A newer push ({by}) will be deployed instead.");
    if let Err(e) = notify::outcome(ctx, deployment, notify::Notice::Superseded, &detail).await {
        warn!(error = %e, "could not publish the superseded notice");
    }
}
