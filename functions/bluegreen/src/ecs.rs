//! The slots' ECS services as the steps use them, over the [`Compute`] port: reading a
//! service, setting its task definition and count, marking a slot held by a deployment, and
//! judging a rollout.
//!
//! [`Compute`]: crate::ports::Compute

use chrono::{DateTime, Utc};

use crate::context::Context;
use crate::error::StepResult;
use crate::naming::{TAG_DEPLOYMENT, TAG_EXPIRES, TAG_MANAGED, TAG_ROLE};
use crate::ports::compute::{ServiceRegistry, ServiceState, TaskDefinitionState};

/// Describes one ECS service; [`crate::StepError::ResourceNotFound`] if it is missing or
/// inactive.
pub async fn describe_service(
    ctx: &Context,
    cluster: &str,
    service: &str,
) -> StepResult<ServiceState> {
    ctx.ports.compute.describe_service(cluster, service).await
}

/// The task definition the live slot's service `service` runs;
/// [`crate::StepError::ResourceNotFound`] when it names none.
pub async fn live_task_definition(
    ctx: &Context,
    cluster: &str,
    service: &str,
) -> StepResult<String> {
    describe_service(ctx, cluster, service)
        .await?
        .task_definition
        .ok_or_else(|| crate::StepError::ResourceNotFound {
            kind: "task definition of the live slot",
            id: service.to_owned(),
        })
}

/// Sets a service's task definition and desired count (either may be left as it is).
pub async fn update_service(
    ctx: &Context,
    cluster: &str,
    service: &str,
    task_definition: Option<&str>,
    desired_count: i32,
) -> StepResult<()> {
    ctx.ports
        .compute
        .update_service(cluster, service, task_definition, desired_count)
        .await
}

/// Gives a service exactly `registries` (Cloud Map) unless it has them already — each change
/// rolls the service out again, so an unchanged one is not written. `true` when written.
pub async fn ensure_registries(
    ctx: &Context,
    cluster: &str,
    service: &str,
    registries: &[ServiceRegistry],
) -> StepResult<bool> {
    if describe_service(ctx, cluster, service).await?.registries == registries {
        return Ok(false);
    }
    ctx.ports
        .compute
        .set_registries(cluster, service, registries)
        .await?;
    Ok(true)
}

/// Moves service discovery (Cloud Map) from `from` to `to` once production's traffic is on
/// `to`: `to` gets `from`'s registries unless it has some, then `from` has none — a slot
/// production left is not found by callers, whatever still keeps it running.
pub async fn registries_to(ctx: &Context, cluster: &str, from: &str, to: &str) -> StepResult<()> {
    let leaving = describe_service(ctx, cluster, from).await?.registries;
    if leaving.is_empty() {
        return Ok(());
    }
    if describe_service(ctx, cluster, to)
        .await?
        .registries
        .is_empty()
    {
        ensure_registries(ctx, cluster, to, &leaving).await?;
    }
    ensure_registries(ctx, cluster, from, &[]).await?;
    Ok(())
}

/// A task definition and its tags.
pub async fn describe_task_definition(
    ctx: &Context,
    name: &str,
) -> StepResult<TaskDefinitionState> {
    ctx.ports.compute.describe_task_definition(name).await
}

/// A tag as a `(key, value)` pair.
pub fn tag(key: &str, value: &str) -> (String, String) {
    (key.to_owned(), value.to_owned())
}

/// Marks a slot's service as held for `deployment_id` in `role` (`preprod`, `warm`) until
/// `expires`: the scheduled teardown scales a marked slot down once it has expired.
pub async fn mark_slot(
    ctx: &Context,
    cluster: &str,
    service: &str,
    deployment_id: &str,
    role: &str,
    expires: DateTime<Utc>,
) -> StepResult<()> {
    let described = describe_service(ctx, cluster, service).await?;
    let tags = vec![
        tag(TAG_MANAGED, "true"),
        tag(TAG_DEPLOYMENT, deployment_id),
        tag(TAG_ROLE, role),
        tag(TAG_EXPIRES, &expires.to_rfc3339()),
    ];
    ctx.ports.compute.tag_resource(&described.arn, &tags).await
}

/// Clears a slot's role and expiry marks: it is live again, or idle, and the scheduled
/// teardown must not scale it down as an expired pre-prod or warm slot.
pub async fn unmark_slot(ctx: &Context, cluster: &str, service: &str) -> StepResult<()> {
    let described = describe_service(ctx, cluster, service).await?;
    ctx.ports
        .compute
        .untag_resource(&described.arn, &[TAG_ROLE, TAG_EXPIRES])
        .await
}

/// The slot marks (`bluegreen:deployment-id`, `bluegreen:role`, `bluegreen:expires-at`) a slot's
/// service carries now; empty when it is not marked (a live or idle slot).
pub async fn slot_marks(
    ctx: &Context,
    service: &ServiceState,
) -> StepResult<std::collections::BTreeMap<String, String>> {
    let tags = ctx.ports.compute.tags_of(&service.arn).await?;
    let marks: std::collections::BTreeMap<String, String> = tags
        .into_iter()
        .filter(|(key, _)| [TAG_DEPLOYMENT, TAG_ROLE, TAG_EXPIRES].contains(&key.as_str()))
        .collect();
    // Only a slot with a role is marked; a deployment tag alone is what `mark_slot` leaves
    // after `unmark_slot`.
    Ok(if marks.contains_key(TAG_ROLE) {
        marks
    } else {
        Default::default()
    })
}

/// Puts back the slot marks [`slot_marks`] read (a warm slot's role and expiry), or clears
/// them when there were none.
pub async fn restore_slot_marks(
    ctx: &Context,
    cluster: &str,
    service: &str,
    marks: &std::collections::BTreeMap<String, String>,
) -> StepResult<()> {
    if marks.is_empty() {
        return unmark_slot(ctx, cluster, service).await;
    }
    let described = describe_service(ctx, cluster, service).await?;
    let tags: Vec<(String, String)> = marks.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    ctx.ports.compute.tag_resource(&described.arn, &tags).await
}

/// The latest revision of `family` if it carries every tag in `tags`: how a retry finds the
/// revision an earlier attempt registered (its response may have been lost).
pub async fn latest_revision_tagged(
    ctx: &Context,
    family: &str,
    tags: &[(String, String)],
) -> StepResult<Option<String>> {
    let latest = describe_task_definition(ctx, family).await?;
    let carries_all = tags.iter().all(|want| latest.tags.contains(want));
    Ok(carries_all.then_some(latest.arn))
}

/// How a service's rollout of one task definition stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    /// Not (yet) completed: progress for people.
    InProgress(String),
    /// The primary deployment runs the task definition at the desired count.
    Completed(String),
    /// ECS gave up on it: the reason.
    Failed(String),
}

/// Looks at `service`'s primary deployment of `task_definition` (at least `desired` running).
pub async fn rollout(
    ctx: &Context,
    cluster: &str,
    service: &str,
    task_definition: &str,
    desired: i32,
) -> StepResult<Rollout> {
    let described = describe_service(ctx, cluster, service).await?;
    Ok(judge_rollout(&described, task_definition, desired))
}

/// Why ECS's deployment circuit breaker rolled `task_definition` back, when it did: the
/// deployment of it is FAILED (draining, no longer primary), or the primary rolling back names
/// the breaker. Without this the launch would wait out its whole timeout on a revision ECS had
/// already given up, and report "not stable by the deadline".
fn rolled_back(service: &ServiceState, task_definition: &str) -> Option<String> {
    let failed = service.deployments.iter().find(|d| {
        d.status != "PRIMARY"
            && d.task_definition.as_deref() == Some(task_definition)
            && d.rollout_state.as_deref() == Some("FAILED")
    });
    if let Some(failed) = failed {
        return Some(
            failed
                .rollout_reason
                .clone()
                .unwrap_or_else(|| "its deployment failed".into()),
        );
    }
    service
        .primary()
        .and_then(|p| p.rollout_reason.clone())
        .filter(|reason| reason.contains("circuit breaker"))
}

/// What a service's state says of its rollout of `task_definition`.
pub fn judge_rollout(service: &ServiceState, task_definition: &str, desired: i32) -> Rollout {
    let name = &service.name;
    let Some(primary) = service.primary() else {
        return Rollout::InProgress("no primary deployment yet".into());
    };
    let state = primary.rollout_state.clone().unwrap_or_default();
    let ours = primary.task_definition.as_deref() == Some(task_definition);
    let progress = format!(
        "rollout {state}, running {}/{desired}",
        primary.running_count
    );
    if !ours && let Some(reason) = rolled_back(service, task_definition) {
        return Rollout::Failed(format!(
            "{name} did not start {task_definition}; ECS rolled it back to {}: {reason}",
            primary
                .task_definition
                .as_deref()
                .unwrap_or("the previous revision")
        ));
    }
    if ours && state == "FAILED" {
        Rollout::Failed(format!(
            "{name} did not start: {}",
            primary
                .rollout_reason
                .clone()
                .unwrap_or_else(|| "rollout failed".into())
        ))
    } else if ours && state == "COMPLETED" && primary.running_count >= desired {
        Rollout::Completed(format!("{name} runs {task_definition} ({progress})"))
    } else {
        Rollout::InProgress(progress)
    }
}
