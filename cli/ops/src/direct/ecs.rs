//! ECS calls of the set-up and diagnosis commands (`adopt`, `doctor`), made directly with the
//! SDK: they read and copy whole services, which the steps' [`bluegreen::ports::Compute`] port
//! deliberately does not model.

use aws_sdk_ecs::types::{Service, Tag, TaskDefinition};

use bluegreen::context::Context;
use bluegreen::error::{StepError, StepResult};

/// Describes one ECS service; [`StepError::ResourceNotFound`] if it is missing or inactive.
pub async fn describe_service(ctx: &Context, cluster: &str, service: &str) -> StepResult<Service> {
    bluegreen::aws::compute::describe_sdk_service(&ctx.sdk()?.ecs, cluster, service).await
}

/// The Service Connect namespace a service's deployments publish in, when Service Connect is
/// on: a second slot cannot claim the same Service Connect names, so bluegreen's two-slot
/// engine does not take such a service (issue 26; ECS's own blue/green does, issue 32).
pub fn service_connect_of(service: &Service) -> Option<String> {
    service
        .deployments()
        .iter()
        .filter_map(|d| d.service_connect_configuration.as_ref())
        .find(|c| c.enabled)
        .map(|c| {
            c.namespace
                .clone()
                .unwrap_or_else(|| "(the cluster's default)".into())
        })
}

/// Builds an ECS tag.
pub fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

/// Adds tags to an ECS resource (tagging is idempotent).
pub async fn tag_resource(ctx: &Context, arn: &str, tags: Vec<Tag>) -> StepResult<()> {
    use bluegreen::ports::Compute;
    let pairs: Vec<(String, String)> = tags
        .into_iter()
        .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
        .collect();
    bluegreen::aws::compute::Ecs(ctx.sdk()?.ecs.clone())
        .tag_resource(arn, &pairs)
        .await
}

/// Removes tags from an ECS resource (removing absent tags is fine).
pub async fn untag_resource(ctx: &Context, arn: &str, keys: &[&str]) -> StepResult<()> {
    use bluegreen::ports::Compute;
    bluegreen::aws::compute::Ecs(ctx.sdk()?.ecs.clone())
        .untag_resource(arn, keys)
        .await
}

/// The tags of an ECS resource as `(key, value)` pairs.
pub async fn tags_of(ctx: &Context, arn: &str) -> StepResult<Vec<(String, String)>> {
    use bluegreen::ports::Compute;
    bluegreen::aws::compute::Ecs(ctx.sdk()?.ecs.clone())
        .tags_of(arn)
        .await
}

/// A task definition and its tags.
pub async fn describe_task_definition(
    ctx: &Context,
    name: &str,
) -> StepResult<(TaskDefinition, Vec<(String, String)>)> {
    bluegreen::aws::compute::describe_definition(&ctx.sdk()?.ecs, name).await
}

/// Creates service `name` in `cluster` as a copy of `like` — task definition, launch type or
/// capacity provider strategy, platform version, network configuration, service registries,
/// deployment settings — registering in `target_group_arn` (same container and port), with
/// `desired_count` tasks and `tags`.
pub async fn create_service_like(
    ctx: &Context,
    cluster: &str,
    name: &str,
    like: &Service,
    target_group_arn: &str,
    desired_count: i32,
    tags: &[(&str, &str)],
) -> StepResult<Service> {
    let client = &ctx.sdk()?.ecs;
    let out =
        bluegreen::aws::compute::create_service_like(client, cluster, name, like, target_group_arn)
            .set_service_registries(
                Some(like.service_registries().to_vec()).filter(|s| !s.is_empty()),
            )
            .set_deployment_configuration(like.deployment_configuration.clone())
            .desired_count(desired_count)
            .set_tags(Some(tags.iter().map(|(k, v)| tag(k, v)).collect()))
            .send()
            .await
            .map_err(|e| StepError::from_sdk("ecs:CreateService", e))?;
    out.service
        .ok_or_else(|| StepError::Internal(format!("CreateService {name} answered no service")))
}

/// Points `service`'s load balancer configuration at `target_group_arn` (container and port
/// kept): ECS's rolling deployments take a new load balancer configuration by UpdateService.
pub async fn register_in(
    ctx: &Context,
    cluster: &str,
    service: &Service,
    target_group_arn: &str,
) -> StepResult<()> {
    let load_balancers = service
        .load_balancers()
        .iter()
        .map(|lb| {
            let mut lb = lb.clone();
            lb.target_group_arn = Some(target_group_arn.to_owned());
            lb
        })
        .collect();
    let name = service.service_name.as_deref().unwrap_or_default();
    ctx.sdk()?
        .ecs
        .update_service()
        .cluster(cluster)
        .service(name)
        .set_load_balancers(Some(load_balancers))
        .send()
        .await
        .map_err(|e| StepError::from_sdk("ecs:UpdateService", e))?;
    Ok(())
}

/// The names of `cluster`'s active services that start with `prefix` (every page).
pub async fn service_names(ctx: &Context, cluster: &str, prefix: &str) -> StepResult<Vec<String>> {
    let pages = ctx
        .sdk()?
        .ecs
        .list_services()
        .cluster(cluster)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<String>, _>>()
        .await
        .map_err(|e| StepError::from_sdk("ecs:ListServices", e))?;
    Ok(pages
        .into_iter()
        .filter_map(|arn| arn.rsplit('/').next().map(str::to_owned))
        .filter(|name| name.starts_with(prefix))
        .collect())
}

/// Deletes a service (scaled to 0 first by `force`); one already gone is fine.
pub async fn delete_service(ctx: &Context, cluster: &str, service: &str) -> StepResult<()> {
    use bluegreen::ports::Compute;
    bluegreen::aws::compute::Ecs(ctx.sdk()?.ecs.clone())
        .delete_service(cluster, service)
        .await
}
