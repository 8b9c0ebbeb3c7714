//! What every terminal path shares: remove clones, restore the DNS TTL, release the lock
//! (handing it to a queued deployment), write the final status and notify.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::context::Context;
use crate::error::{StepError, StepResult};
use crate::lock::Locks;
use crate::notify;
use crate::record::{Change, Deployment, Records, Status};
use crate::routing;

/// How a deployment ended; the same answer however often the terminal step runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Ended {
    /// The deployment.
    pub deployment_id: String,
    /// `succeeded`, `aborted` or `rolled_back`.
    pub status: Status,
    /// A queued deployment that now holds the lock; the state machine starts it with
    /// `{"deployment_id": "<id>"}`. Absent (not null) when there is none: the state machine
    /// tests it with `IsPresent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_deployment: Option<String>,
    /// What was done.
    pub detail: String,
}

impl Ended {
    /// The answer for a deployment that has already ended.
    pub(crate) fn of(deployment: &Deployment) -> Self {
        Ended {
            deployment_id: deployment.deployment_id.clone(),
            status: deployment.status,
            next_deployment: deployment.handed_over_to.clone(),
            detail: deployment
                .timeline
                .last()
                .map(|e| e.detail.clone())
                .unwrap_or_default(),
        }
    }
}

/// Deletes the deployment's database clones; clones already gone are fine.
pub(crate) async fn delete_clones(
    ctx: &Context,
    deployment: &Deployment,
) -> StepResult<Vec<String>> {
    let mut deleted = Vec::new();
    for clone in &deployment.clones {
        match clone.kind.as_str() {
            "aurora_cluster" => {
                delete_instance(ctx, &format!("{}-1", clone.identifier)).await?;
                delete_cluster(ctx, &clone.identifier).await?;
            }
            _ => delete_instance(ctx, &clone.identifier).await?,
        }
        deleted.push(clone.identifier.clone());
    }
    Ok(deleted)
}

pub(crate) async fn delete_instance(ctx: &Context, identifier: &str) -> StepResult<()> {
    match ctx
        .rds
        .delete_db_instance()
        .db_instance_identifier(identifier)
        .skip_final_snapshot(true)
        .delete_automated_backups(true)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_db_instance_not_found_fault()) =>
        {
            Ok(())
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_invalid_db_instance_state_fault()) =>
        {
            // Already being deleted.
            Ok(())
        }
        Err(e) => Err(StepError::from_sdk("rds:DeleteDBInstance", e)),
    }
}

pub(crate) async fn delete_cluster(ctx: &Context, identifier: &str) -> StepResult<()> {
    match ctx
        .rds
        .delete_db_cluster()
        .db_cluster_identifier(identifier)
        .skip_final_snapshot(true)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_db_cluster_not_found_fault()) =>
        {
            Ok(())
        }
        Err(e) => Err(StepError::from_sdk("rds:DeleteDBCluster", e)),
    }
}

/// DNS mode: puts the TTL back to what it was before the deployment lowered it.
pub(crate) async fn restore_dns_ttl(ctx: &Context, deployment: &Deployment) -> StepResult<()> {
    if let Some(ttl) = &deployment.dns_ttl {
        routing::set_dns_ttl(ctx, &deployment.config, ttl.previous).await?;
    }
    Ok(())
}

/// Releases the lock, writes the final status and notifies. `failure` is the cause for
/// aborted and rolled-back deployments.
pub(crate) async fn end(
    ctx: &Context,
    deployment: &Deployment,
    status: Status,
    step: &str,
    detail: String,
    failure: Option<String>,
) -> StepResult<Ended> {
    let next = Locks::new(ctx)
        .release(&deployment.service, &deployment.deployment_id)
        .await?;
    let mut change =
        Change::new()
            .set("status", &status)
            .log(step, "succeeded", detail.clone(), ctx.now());
    if let Some(failure) = &failure {
        change = change.set("failure", failure);
    }
    if let Some(next) = &next {
        change = change.set("handed_over_to", next);
    }
    Records::new(ctx)
        .update(&deployment.deployment_id, change)
        .await?;
    let notice = match status {
        Status::Succeeded => notify::Notice::Succeeded,
        Status::Aborted => notify::Notice::Aborted,
        _ => notify::Notice::RolledBack,
    };
    let message = match &failure {
        Some(f) => format!("{detail}\nCause: {f}"),
        None => detail.clone(),
    };
    if let Err(e) = notify::outcome(ctx, deployment, notice, &message).await {
        // The deployment has ended either way; a lost notification must not undo that.
        warn!(error = %e, "could not publish the outcome");
    }
    info!(deployment_id = %deployment.deployment_id, ?status, next = ?next, "deployment ended");
    Ok(Ended {
        deployment_id: deployment.deployment_id.clone(),
        status,
        next_deployment: next,
        detail,
    })
}
