//! ECS adapter: services, task definitions, one-off tasks and tags — every ECS call the steps
//! make goes through here.

use aws_sdk_ecs::types::{
    ContainerDefinition, ContainerOverride, DesiredStatus, KeyValuePair, Service, Tag, Task,
    TaskDefinition, TaskDefinitionField, TaskOverride,
};

use chrono::{DateTime, Utc};

use crate::context::Context;
use crate::error::{StepError, StepResult};
use crate::naming::{TAG_DEPLOYMENT, TAG_EXPIRES, TAG_MANAGED, TAG_ROLE};

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
    if let Some(arn) = described.service_arn.as_deref() {
        let tags = vec![
            tag(TAG_MANAGED, "true"),
            tag(TAG_DEPLOYMENT, deployment_id),
            tag(TAG_ROLE, role),
            tag(TAG_EXPIRES, &expires.to_rfc3339()),
        ];
        tag_resource(ctx, arn, tags).await?;
    }
    Ok(())
}

/// Clears a slot's role and expiry marks: it is live again, or idle, and the scheduled
/// teardown must not scale it down as an expired pre-prod or warm slot.
pub async fn unmark_slot(ctx: &Context, cluster: &str, service: &str) -> StepResult<()> {
    let described = describe_service(ctx, cluster, service).await?;
    if let Some(arn) = described.service_arn.as_deref() {
        untag_resource(ctx, arn, &[TAG_ROLE, TAG_EXPIRES]).await?;
    }
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

/// A task definition and its tags.
pub async fn describe_task_definition(
    ctx: &Context,
    name: &str,
) -> StepResult<(TaskDefinition, Vec<(String, String)>)> {
    let out = ctx
        .ecs
        .describe_task_definition()
        .task_definition(name)
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .map_err(|e| match e.as_service_error() {
            Some(s) if s.is_client_exception() => StepError::ResourceNotFound {
                kind: "task definition",
                id: name.to_owned(),
            },
            _ => StepError::from_sdk("ecs:DescribeTaskDefinition", e),
        })?;
    let tags = out
        .tags
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
        .collect();
    let td = out
        .task_definition
        .ok_or_else(|| StepError::ResourceNotFound {
            kind: "task definition",
            id: name.to_owned(),
        })?;
    Ok((td, tags))
}

/// The latest revision of `family` if it carries every tag in `tags`: how a retry finds the
/// revision an earlier attempt registered (its response may have been lost).
pub async fn latest_revision_tagged(
    ctx: &Context,
    family: &str,
    tags: &[Tag],
) -> StepResult<Option<String>> {
    let (latest, latest_tags) = describe_task_definition(ctx, family).await?;
    let carries_all = tags.iter().all(|want| {
        latest_tags.iter().any(|(k, v)| {
            Some(k.as_str()) == want.key.as_deref() && Some(v.as_str()) == want.value.as_deref()
        })
    });
    Ok(carries_all.then_some(latest.task_definition_arn).flatten())
}

/// Registers a new revision of `base`'s family with `containers` instead of its own, every
/// other setting copied, tagged with `tags`.
pub async fn register_revision(
    ctx: &Context,
    base: TaskDefinition,
    containers: Vec<ContainerDefinition>,
    tags: Vec<Tag>,
) -> StepResult<String> {
    let out = ctx
        .ecs
        .register_task_definition()
        .set_family(base.family)
        .set_container_definitions(Some(containers))
        .set_task_role_arn(base.task_role_arn)
        .set_execution_role_arn(base.execution_role_arn)
        .set_network_mode(base.network_mode)
        .set_volumes(base.volumes)
        .set_placement_constraints(base.placement_constraints)
        .set_requires_compatibilities(base.requires_compatibilities)
        .set_cpu(base.cpu)
        .set_memory(base.memory)
        .set_pid_mode(base.pid_mode)
        .set_ipc_mode(base.ipc_mode)
        .set_proxy_configuration(base.proxy_configuration)
        .set_ephemeral_storage(base.ephemeral_storage)
        .set_runtime_platform(base.runtime_platform)
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(|e| StepError::from_sdk("ecs:RegisterTaskDefinition", e))?;
    out.task_definition
        .and_then(|t| t.task_definition_arn)
        .ok_or_else(|| StepError::AwsTransient {
            operation: "ecs:RegisterTaskDefinition",
            message: "no task definition in the response".into(),
        })
}

/// Sets (or replaces) one environment variable.
pub fn set_env(env: &mut Option<Vec<KeyValuePair>>, name: &str, value: &str) {
    let vars = env.get_or_insert_with(Vec::new);
    vars.retain(|kv| kv.name.as_deref() != Some(name));
    vars.push(KeyValuePair::builder().name(name).value(value).build());
}

/// The value of environment variable `name` in `container` of `td`, if set.
pub fn env_value(td: &TaskDefinition, container: &str, name: &str) -> Option<String> {
    td.container_definitions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|c| c.name.as_deref() == Some(container))?
        .environment
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|kv| kv.name.as_deref() == Some(name))
        .and_then(|kv| kv.value.clone())
}

/// Every environment value of every container of `td`, as `(container, name, value)`.
pub fn all_env(td: &TaskDefinition) -> Vec<(String, String, String)> {
    td.container_definitions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .flat_map(|c| {
            let container = c.name.clone().unwrap_or_default();
            c.environment
                .as_deref()
                .unwrap_or_default()
                .iter()
                .map(move |kv| {
                    (
                        container.clone(),
                        kv.name.clone().unwrap_or_default(),
                        kv.value.clone().unwrap_or_default(),
                    )
                })
        })
        .collect()
}

/// What a one-off task runs: which container of which task definition, with which command and
/// environment overrides, in the network of which service.
pub struct OneOff<'a> {
    /// Cluster.
    pub cluster: &'a str,
    /// The service whose network configuration and launch type the task borrows.
    pub network_of: &'a str,
    /// Task definition ARN.
    pub task_definition: &'a str,
    /// Container whose command is overridden.
    pub container: &'a str,
    /// The command.
    pub command: &'a [String],
    /// Environment overrides, `(name, value)`.
    pub env: Vec<(String, String)>,
    /// The `startedBy` value a retry finds the task by.
    pub started_by: &'a str,
    /// Tags for the task.
    pub tags: Vec<Tag>,
}

/// Starts a one-off task. A placement failure is returned as `Err(reason)` inside `Ok`, so the
/// caller names it in its own terms.
pub async fn run_task(ctx: &Context, task: OneOff<'_>) -> StepResult<Result<Task, String>> {
    let service = describe_service(ctx, task.cluster, task.network_of).await?;
    let mut environment = None;
    for (name, value) in &task.env {
        set_env(&mut environment, name, value);
    }
    let overrides = TaskOverride::builder()
        .container_overrides(
            ContainerOverride::builder()
                .name(task.container)
                .set_command(Some(task.command.to_vec()))
                .set_environment(environment)
                .build(),
        )
        .build();
    let out = ctx
        .ecs
        .run_task()
        .cluster(task.cluster)
        .task_definition(task.task_definition)
        .count(1)
        .started_by(task.started_by)
        .overrides(overrides)
        .set_network_configuration(service.network_configuration)
        .set_launch_type(service.launch_type)
        .set_capacity_provider_strategy(
            service.capacity_provider_strategy.filter(|s| !s.is_empty()),
        )
        .set_platform_version(service.platform_version)
        .set_tags(Some(task.tags))
        .send()
        .await
        .map_err(|e| StepError::from_sdk("ecs:RunTask", e))?;
    if let Some(failure) = out.failures.unwrap_or_default().into_iter().next() {
        return Ok(Err(format!(
            "RunTask failed: {} {}",
            failure.reason.unwrap_or_default(),
            failure.detail.unwrap_or_default()
        )));
    }
    out.tasks
        .unwrap_or_default()
        .into_iter()
        .next()
        .map(Ok)
        .ok_or_else(|| StepError::AwsTransient {
            operation: "ecs:RunTask",
            message: "no task and no failure in the response".into(),
        })
}

/// The task started with `started_by`, running or stopped, described.
pub async fn find_task(ctx: &Context, cluster: &str, started_by: &str) -> StepResult<Option<Task>> {
    let mut arns = Vec::new();
    for status in [DesiredStatus::Running, DesiredStatus::Stopped] {
        let out = ctx
            .ecs
            .list_tasks()
            .cluster(cluster)
            .started_by(started_by)
            .desired_status(status)
            .send()
            .await
            .map_err(|e| StepError::from_sdk("ecs:ListTasks", e))?;
        arns.extend(out.task_arns.unwrap_or_default());
    }
    let Some(arn) = arns.into_iter().next() else {
        return Ok(None);
    };
    let out = ctx
        .ecs
        .describe_tasks()
        .cluster(cluster)
        .tasks(arn)
        .send()
        .await
        .map_err(|e| StepError::from_sdk("ecs:DescribeTasks", e))?;
    Ok(out.tasks.unwrap_or_default().into_iter().next())
}

/// Stops a task (stopping a stopped task is harmless).
pub async fn stop_task(
    ctx: &Context,
    cluster: &str,
    task_arn: &str,
    reason: &str,
) -> StepResult<()> {
    ctx.ecs
        .stop_task()
        .cluster(cluster)
        .task(task_arn)
        .reason(reason)
        .send()
        .await
        .map_err(|e| StepError::from_sdk("ecs:StopTask", e))?;
    Ok(())
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
    let Some(primary) = described
        .deployments
        .unwrap_or_default()
        .into_iter()
        .find(|d| d.status.as_deref() == Some("PRIMARY"))
    else {
        return Ok(Rollout::InProgress("no primary deployment yet".into()));
    };
    let state = primary
        .rollout_state
        .as_ref()
        .map(|s| s.as_str().to_owned())
        .unwrap_or_default();
    let ours = primary.task_definition.as_deref() == Some(task_definition);
    let progress = format!(
        "rollout {state}, running {}/{desired}",
        primary.running_count
    );
    Ok(if ours && state == "FAILED" {
        Rollout::Failed(format!(
            "{service} did not start: {}",
            primary
                .rollout_state_reason
                .unwrap_or_else(|| "rollout failed".into())
        ))
    } else if ours && state == "COMPLETED" && primary.running_count >= desired {
        Rollout::Completed(format!("{service} runs {task_definition} ({progress})"))
    } else {
        Rollout::InProgress(progress)
    })
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
    let load_balancers = like
        .load_balancers()
        .iter()
        .map(|lb| {
            aws_sdk_ecs::types::LoadBalancer::builder()
                .target_group_arn(target_group_arn)
                .set_container_name(lb.container_name.clone())
                .set_container_port(lb.container_port)
                .build()
        })
        .collect();
    let out = ctx
        .ecs
        .create_service()
        .cluster(cluster)
        .service_name(name)
        .set_task_definition(like.task_definition.clone())
        .set_launch_type(
            like.launch_type
                .clone()
                .filter(|_| like.capacity_provider_strategy().is_empty()),
        )
        .set_capacity_provider_strategy(
            Some(like.capacity_provider_strategy().to_vec()).filter(|s| !s.is_empty()),
        )
        .set_platform_version(like.platform_version.clone())
        .set_network_configuration(like.network_configuration.clone())
        .set_service_registries(Some(like.service_registries().to_vec()).filter(|s| !s.is_empty()))
        .set_deployment_configuration(like.deployment_configuration.clone())
        .set_health_check_grace_period_seconds(like.health_check_grace_period_seconds)
        .set_placement_constraints(
            Some(like.placement_constraints().to_vec()).filter(|s| !s.is_empty()),
        )
        .set_placement_strategy(Some(like.placement_strategy().to_vec()).filter(|s| !s.is_empty()))
        .enable_execute_command(like.enable_execute_command)
        .set_load_balancers(Some(load_balancers))
        .desired_count(desired_count)
        .set_tags(Some(tags.iter().map(|(k, v)| tag(k, v)).collect()))
        .send()
        .await
        .map_err(|e| StepError::from_sdk("ecs:CreateService", e))?;
    out.service
        .ok_or_else(|| StepError::Internal(format!("CreateService {name} answered no service")))
}

/// Deletes a service (scaled to 0 first by `force`); one already gone is fine.
pub async fn delete_service(ctx: &Context, cluster: &str, service: &str) -> StepResult<()> {
    match ctx
        .ecs
        .delete_service()
        .cluster(cluster)
        .service(service)
        .force(true)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_service_not_found_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(StepError::from_sdk("ecs:DeleteService", e)),
    }
}
