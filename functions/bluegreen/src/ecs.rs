//! ECS adapter: the few service, task-definition and tag operations the steps share.

use aws_sdk_ecs::types::{Service, Tag};

use crate::context::Context;
use crate::error::{StepError, StepResult};

/// Describes one ECS service; [`StepError::ResourceNotFound`] if it is missing or inactive.
pub async fn describe_service(ctx: &Context, cluster: &str, service: &str) -> StepResult<Service> {
    let out = ctx
        .ecs
        .describe_services()
        .cluster(cluster)
        .services(service)
        .send()
        .await
        .map_err(|e| match e.as_service_error() {
            Some(s) if s.is_cluster_not_found_exception() => StepError::ResourceNotFound {
                kind: "ECS cluster",
                id: cluster.to_owned(),
            },
            _ => StepError::from_sdk("ecs:DescribeServices", e),
        })?;
    out.services
        .unwrap_or_default()
        .into_iter()
        .find(|s| s.status.as_deref() == Some("ACTIVE"))
        .ok_or_else(|| StepError::ResourceNotFound {
            kind: "ECS service",
            id: format!("{cluster}/{service}"),
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
    ctx.ecs
        .update_service()
        .cluster(cluster)
        .service(service)
        .set_task_definition(task_definition.map(str::to_owned))
        .desired_count(desired_count)
        .send()
        .await
        .map_err(|e| StepError::from_sdk("ecs:UpdateService", e))?;
    Ok(())
}

/// Builds an ECS tag.
pub fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

/// Adds tags to an ECS resource (tagging is idempotent).
pub async fn tag_resource(ctx: &Context, arn: &str, tags: Vec<Tag>) -> StepResult<()> {
    ctx.ecs
        .tag_resource()
        .resource_arn(arn)
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(|e| StepError::from_sdk("ecs:TagResource", e))?;
    Ok(())
}

/// Removes tags from an ECS resource (removing absent tags is fine).
pub async fn untag_resource(ctx: &Context, arn: &str, keys: &[&str]) -> StepResult<()> {
    ctx.ecs
        .untag_resource()
        .resource_arn(arn)
        .set_tag_keys(Some(keys.iter().map(|k| (*k).to_owned()).collect()))
        .send()
        .await
        .map_err(|e| StepError::from_sdk("ecs:UntagResource", e))?;
    Ok(())
}

/// The tags of an ECS resource as `(key, value)` pairs.
pub async fn tags_of(ctx: &Context, arn: &str) -> StepResult<Vec<(String, String)>> {
    let out = ctx
        .ecs
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .map_err(|e| StepError::from_sdk("ecs:ListTagsForResource", e))?;
    Ok(out
        .tags
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
        .collect())
}
