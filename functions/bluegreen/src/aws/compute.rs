//! [`Compute`] and [`ServiceDeployments`] over ECS.

use aws_sdk_ecs::types::{
    CapacityProviderStrategyItem, ContainerDefinition, ContainerOverride, DesiredStatus,
    KeyValuePair, Service, Tag, Task, TaskDefinition, TaskDefinitionField, TaskOverride,
};

use crate::error::{StepError, StepResult};
use crate::ports::compute::{
    Compute, ContainerExit, ContainerState, NewService, OneOff, RevisionOverlay, ServiceDeployment,
    ServiceRegistry, ServiceState, Tags, TaskDefinitionState, TaskState,
};
use crate::ports::service_deployments::{EcsDeployment, ServiceDeployments, ServiceRevision};

/// ECS through the SDK.
pub struct Ecs(pub aws_sdk_ecs::Client);

fn tags(tags: &[(String, String)]) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// `CreateService` of service `name` in `cluster` as a copy of `like`'s placement — task
/// definition, launch type or capacity provider strategy, platform version, network
/// configuration, health check grace period, placement, ECS Exec, tag propagation, zone
/// rebalancing, scheduling strategy, the volumes its primary deployment attaches — registering
/// in `target_group_arn` (same containers and ports). The caller adds the rest (count, tags,
/// deployment settings, registries) and sends it.
pub fn create_service_like(
    client: &aws_sdk_ecs::Client,
    cluster: &str,
    name: &str,
    like: &Service,
    target_group_arn: &str,
) -> aws_sdk_ecs::operation::create_service::builders::CreateServiceFluentBuilder {
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
    client
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
        .set_health_check_grace_period_seconds(like.health_check_grace_period_seconds)
        .set_placement_constraints(
            Some(like.placement_constraints().to_vec()).filter(|s| !s.is_empty()),
        )
        .set_placement_strategy(Some(like.placement_strategy().to_vec()).filter(|s| !s.is_empty()))
        .enable_execute_command(like.enable_execute_command)
        // What a copy must not drop (issue 26): how tasks are tagged, how they spread over
        // zones, the volumes the primary deployment attaches.
        .set_propagate_tags(like.propagate_tags.clone())
        .enable_ecs_managed_tags(like.enable_ecs_managed_tags)
        .set_availability_zone_rebalancing(like.availability_zone_rebalancing.clone())
        .set_scheduling_strategy(like.scheduling_strategy.clone())
        .set_volume_configurations(
            like.deployments()
                .iter()
                .find(|d| d.status.as_deref() == Some("PRIMARY"))
                .map(|d| d.volume_configurations().to_vec())
                .filter(|v| !v.is_empty()),
        )
        .set_load_balancers(Some(load_balancers))
}

fn pairs(tags: Vec<Tag>) -> Tags {
    tags.into_iter()
        .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
        .collect()
}

pub use super::service_deployments::setup_of;

fn service_state(service: Service) -> ServiceState {
    let setup = super::service_deployments::setup_of(&service);
    ServiceState {
        setup,
        arn: service.service_arn.unwrap_or_default(),
        name: service.service_name.unwrap_or_default(),
        task_definition: service.task_definition,
        desired_count: service.desired_count,
        running_count: service.running_count,
        deployments: service
            .deployments
            .unwrap_or_default()
            .into_iter()
            .map(|d| ServiceDeployment {
                status: d.status.unwrap_or_default(),
                task_definition: d.task_definition,
                desired_count: d.desired_count,
                running_count: d.running_count,
                rollout_state: d.rollout_state.map(|s| s.as_str().to_owned()),
                rollout_reason: d.rollout_state_reason,
            })
            .collect(),
        registries: service
            .service_registries
            .unwrap_or_default()
            .into_iter()
            .map(|r| ServiceRegistry {
                registry_arn: r.registry_arn.unwrap_or_default(),
                port: r.port,
                container_name: r.container_name,
                container_port: r.container_port,
            })
            .collect(),
    }
}

fn task_state(task: Task) -> TaskState {
    TaskState {
        arn: task.task_arn.unwrap_or_default(),
        task_definition: task.task_definition_arn.unwrap_or_default(),
        started_by: task.started_by.unwrap_or_default(),
        last_status: task.last_status.unwrap_or_default(),
        desired_status: task.desired_status.unwrap_or_default(),
        stop_code: task.stop_code.map(|c| c.as_str().to_owned()),
        stopped_reason: task.stopped_reason,
        containers: task
            .containers
            .unwrap_or_default()
            .into_iter()
            .map(|c| ContainerExit {
                name: c.name.unwrap_or_default(),
                exit_code: c.exit_code,
                reason: c.reason,
            })
            .collect(),
    }
}

fn definition_state(td: &TaskDefinition, tags: Tags) -> TaskDefinitionState {
    TaskDefinitionState {
        arn: td.task_definition_arn.clone().unwrap_or_default(),
        family: td.family.clone().unwrap_or_default(),
        containers: td
            .container_definitions()
            .iter()
            .map(|c| ContainerState {
                name: c.name.clone().unwrap_or_default(),
                image: c.image.clone().unwrap_or_default(),
                environment: c
                    .environment()
                    .iter()
                    .map(|kv| {
                        (
                            kv.name.clone().unwrap_or_default(),
                            kv.value.clone().unwrap_or_default(),
                        )
                    })
                    .collect(),
                secrets: c
                    .secrets()
                    .iter()
                    .map(|s| (s.name.clone(), s.value_from.clone()))
                    .collect(),
                environment_files: c
                    .environment_files()
                    .iter()
                    .map(|f| f.value.clone())
                    .collect(),
                log: c.log_configuration.as_ref().map(|log| {
                    let mut options: Vec<(String, String)> = log
                        .options
                        .clone()
                        .unwrap_or_default()
                        .into_iter()
                        .collect();
                    options.sort();
                    (log.log_driver.as_str().to_owned(), options)
                }),
            })
            .collect(),
        tags,
    }
}

/// The most tags an ECS resource takes.
const MAX_TAGS: usize = 50;

/// The tags of a new revision: its base's own (cost allocation and ownership tags, which a
/// tag-on-create policy may require) without bluegreen's from an earlier deployment, then
/// bluegreen's. More than ECS takes is refused by name rather than dropping the team's tags.
fn revision_tags(
    base: &[(String, String)],
    ours: &[(String, String)],
    base_arn: Option<&str>,
) -> StepResult<Vec<Tag>> {
    let merged = crate::naming::merge_tags(base, ours);
    if merged.len() > MAX_TAGS {
        return Err(StepError::ConfigInvalid(vec![format!(
            "task definition {} has {} tags of its own and bluegreen adds {}: ECS takes at most \
             {MAX_TAGS}",
            base_arn.unwrap_or("(base)"),
            merged.len() - ours.len(),
            ours.len()
        )]));
    }
    Ok(tags(&merged))
}

/// Fargate's interruptible capacity provider.
const FARGATE_SPOT: &str = "FARGATE_SPOT";

/// A capacity provider strategy without Fargate Spot, for a task that must not be interrupted
/// part-way (a migration): the other providers keep their weights and bases, and `FARGATE`
/// takes Spot's place when nothing else is left. A custom (EC2 Auto Scaling) provider is kept
/// as it is: whether its instances are Spot is not visible here.
fn without_spot(strategy: Vec<CapacityProviderStrategyItem>) -> Vec<CapacityProviderStrategyItem> {
    if !strategy
        .iter()
        .any(|item| item.capacity_provider == FARGATE_SPOT)
    {
        return strategy;
    }
    let rest: Vec<_> = strategy
        .into_iter()
        .filter(|item| item.capacity_provider != FARGATE_SPOT)
        .collect();
    // What is left must still place a task (a weight or a base above 0).
    if rest.iter().any(|item| item.weight > 0 || item.base > 0) {
        return rest;
    }
    vec![
        CapacityProviderStrategyItem::builder()
            .capacity_provider("FARGATE")
            .weight(1)
            .build()
            .expect("a provider is set"),
    ]
}

/// Sets (or replaces) one environment variable.
fn set_env(env: &mut Option<Vec<KeyValuePair>>, name: &str, value: &str) {
    let vars = env.get_or_insert_with(Vec::new);
    vars.retain(|kv| kv.name.as_deref() != Some(name));
    vars.push(KeyValuePair::builder().name(name).value(value).build());
}

/// `base`'s containers with `overlay` applied; a container the overlay names that `base` does
/// not have is [`StepError::ConfigInvalid`].
fn overlaid(
    base: &TaskDefinition,
    overlay: &RevisionOverlay,
) -> StepResult<Vec<ContainerDefinition>> {
    let mut containers = base.container_definitions.clone().unwrap_or_default();
    let arn = base.task_definition_arn.as_deref().unwrap_or_default();
    let find = |name: &str| -> StepResult<usize> {
        containers
            .iter()
            .position(|c| c.name.as_deref() == Some(name))
            .ok_or_else(|| {
                StepError::ConfigInvalid(vec![format!(
                    "container: {name:?} is not a container of task definition {arn}"
                )])
            })
    };
    let mut images = Vec::new();
    for (container, image) in &overlay.images {
        images.push((find(container)?, image.clone()));
    }
    let mut env = Vec::new();
    for (container, name, value) in &overlay.environment {
        env.push((find(container)?, name.clone(), value.clone()));
    }
    let mut secrets = Vec::new();
    for (container, name, value_from) in &overlay.secrets {
        secrets.push((find(container)?, container, name, value_from));
    }
    for (i, image) in images {
        containers[i].image = Some(image);
    }
    for (i, name, value) in env {
        set_env(&mut containers[i].environment, &name, &value);
    }
    for (i, container, name, value_from) in secrets {
        let entry = containers[i]
            .secrets
            .iter_mut()
            .flatten()
            .find(|s| s.name == *name)
            .ok_or_else(|| {
                StepError::ConfigInvalid(vec![format!(
                    "container {container} of task definition {arn} has no secret {name}"
                )])
            })?;
        entry.value_from.clone_from(value_from);
    }
    Ok(containers)
}

/// A task definition (by ARN, `family:revision` or family) with its tags, as the SDK answers
/// it (the set-up commands copy whole definitions).
pub async fn describe_definition(
    client: &aws_sdk_ecs::Client,
    name: &str,
) -> StepResult<(TaskDefinition, Tags)> {
    let out = client
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
    let tags = pairs(out.tags.unwrap_or_default());
    let td = out
        .task_definition
        .ok_or_else(|| StepError::ResourceNotFound {
            kind: "task definition",
            id: name.to_owned(),
        })?;
    Ok((td, tags))
}

/// One ACTIVE service as the SDK answers it; [`StepError::ResourceNotFound`] when it (or its
/// cluster) is missing or inactive.
pub async fn describe_sdk_service(
    client: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
) -> StepResult<Service> {
    let out = client
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

#[async_trait::async_trait]
impl Compute for Ecs {
    async fn describe_service(&self, cluster: &str, service: &str) -> StepResult<ServiceState> {
        describe_sdk_service(&self.0, cluster, service)
            .await
            .map(service_state)
    }

    async fn update_service(
        &self,
        cluster: &str,
        service: &str,
        task_definition: Option<&str>,
        desired_count: i32,
    ) -> StepResult<()> {
        self.0
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

    async fn deploy_revision(
        &self,
        cluster: &str,
        service: &str,
        task_definition: &str,
    ) -> StepResult<()> {
        self.0
            .update_service()
            .cluster(cluster)
            .service(service)
            .task_definition(task_definition)
            .send()
            .await
            .map_err(|e| StepError::from_sdk("ecs:UpdateService", e))?;
        Ok(())
    }

    async fn create_service(&self, new: &NewService) -> StepResult<()> {
        let like = describe_sdk_service(&self.0, &new.cluster, &new.like).await?;
        // ECS's rolling deployment with the breaker: a revision that cannot start fails the
        // launch instead of waiting out its timeout. Nothing of `like`'s own deployment
        // configuration (ECS's blue/green, its hooks) nor its registries: pre-prod is deployed
        // once and must not be found by production's callers.
        let breaker = aws_sdk_ecs::types::DeploymentCircuitBreaker::builder()
            .enable(true)
            .rollback(false)
            .build();
        let deployment = aws_sdk_ecs::types::DeploymentConfiguration::builder()
            .deployment_circuit_breaker(breaker)
            .build();
        create_service_like(&self.0, &new.cluster, &new.name, &like, &new.target_group)
            .task_definition(&new.task_definition)
            .deployment_configuration(deployment)
            .desired_count(new.desired_count)
            .set_tags(Some(tags(&new.tags)))
            .send()
            .await
            .map_err(|e| StepError::from_sdk("ecs:CreateService", e))?;
        Ok(())
    }

    async fn delete_service(&self, cluster: &str, service: &str) -> StepResult<()> {
        let deleted = self
            .0
            .delete_service()
            .cluster(cluster)
            .service(service)
            .force(true)
            .send()
            .await;
        match deleted {
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

    async fn set_registries(
        &self,
        cluster: &str,
        service: &str,
        registries: &[ServiceRegistry],
    ) -> StepResult<()> {
        let registries = registries
            .iter()
            .map(|r| {
                aws_sdk_ecs::types::ServiceRegistry::builder()
                    .registry_arn(&r.registry_arn)
                    .set_port(r.port)
                    .set_container_name(r.container_name.clone())
                    .set_container_port(r.container_port)
                    .build()
            })
            .collect();
        self.0
            .update_service()
            .cluster(cluster)
            .service(service)
            .set_service_registries(Some(registries))
            .send()
            .await
            .map_err(|e| StepError::from_sdk("ecs:UpdateService", e))?;
        Ok(())
    }

    async fn tag_resource(&self, arn: &str, tags_to_add: &[(String, String)]) -> StepResult<()> {
        self.0
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(tags(tags_to_add)))
            .send()
            .await
            .map_err(|e| StepError::from_sdk("ecs:TagResource", e))?;
        Ok(())
    }

    async fn untag_resource(&self, arn: &str, keys: &[&str]) -> StepResult<()> {
        self.0
            .untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(keys.iter().map(|k| (*k).to_owned()).collect()))
            .send()
            .await
            .map_err(|e| StepError::from_sdk("ecs:UntagResource", e))?;
        Ok(())
    }

    async fn tags_of(&self, arn: &str) -> StepResult<Tags> {
        let out = self
            .0
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(|e| StepError::from_sdk("ecs:ListTagsForResource", e))?;
        Ok(pairs(out.tags.unwrap_or_default()))
    }

    async fn describe_task_definition(&self, name: &str) -> StepResult<TaskDefinitionState> {
        let (td, tags) = describe_definition(&self.0, name).await?;
        Ok(definition_state(&td, tags))
    }

    async fn register_revision(
        &self,
        base: &str,
        overlay: &RevisionOverlay,
        with_tags: &[(String, String)],
    ) -> StepResult<String> {
        let (base, base_tags) = describe_definition(&self.0, base).await?;
        let revision_tags = revision_tags(&base_tags, with_tags, base.task_definition_arn())?;
        let containers = overlaid(&base, overlay)?;
        let out = self
            .0
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
            .set_enable_fault_injection(base.enable_fault_injection)
            .set_tags(Some(revision_tags))
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

    async fn run_task(&self, task: &OneOff) -> StepResult<Result<TaskState, String>> {
        let service = describe_sdk_service(&self.0, &task.cluster, &task.network_of).await?;
        let mut environment = None;
        for (name, value) in &task.env {
            set_env(&mut environment, name, value);
        }
        let mut overrides = TaskOverride::builder().container_overrides(
            ContainerOverride::builder()
                .name(&task.container)
                .set_command(Some(task.command.clone()))
                .set_environment(environment)
                .build(),
        );
        for (other, env) in &task.env_of_others {
            let mut environment = None;
            for (name, value) in env {
                set_env(&mut environment, name, value);
            }
            overrides = overrides.container_overrides(
                ContainerOverride::builder()
                    .name(other)
                    .set_environment(environment)
                    .build(),
            );
        }
        let overrides = overrides.build();
        let out = self
            .0
            .run_task()
            .cluster(&task.cluster)
            .task_definition(&task.task_definition)
            .count(1)
            .started_by(&task.started_by)
            .client_token(&task.client_token)
            .overrides(overrides)
            .set_network_configuration(service.network_configuration)
            .set_launch_type(service.launch_type)
            .set_capacity_provider_strategy(
                service
                    .capacity_provider_strategy
                    .map(|s| if task.on_demand { without_spot(s) } else { s })
                    .filter(|s| !s.is_empty()),
            )
            .set_platform_version(service.platform_version)
            .set_tags(Some(tags(&task.tags)))
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
            .map(|t| Ok(task_state(t)))
            .ok_or_else(|| StepError::AwsTransient {
                operation: "ecs:RunTask",
                message: "no task and no failure in the response".into(),
            })
    }

    async fn find_task(&self, cluster: &str, started_by: &str) -> StepResult<Option<TaskState>> {
        let mut arns = Vec::new();
        for status in [DesiredStatus::Running, DesiredStatus::Stopped] {
            let out = self
                .0
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
        self.describe_task(cluster, &arn).await
    }

    async fn describe_task(&self, cluster: &str, task_arn: &str) -> StepResult<Option<TaskState>> {
        // An unknown task is a `MISSING` failure in the answer, not an error; any other
        // failure says nothing about the task.
        let out = self
            .0
            .describe_tasks()
            .cluster(cluster)
            .tasks(task_arn)
            .send()
            .await
            .map_err(|e| StepError::from_sdk("ecs:DescribeTasks", e))?;
        if let Some(task) = out.tasks.unwrap_or_default().into_iter().next() {
            return Ok(Some(task_state(task)));
        }
        match out.failures.unwrap_or_default().into_iter().next() {
            Some(failure) if failure.reason.as_deref() != Some("MISSING") => {
                Err(StepError::AwsTransient {
                    operation: "ecs:DescribeTasks",
                    message: format!(
                        "{}: {}",
                        failure.reason.unwrap_or_default(),
                        failure.detail.unwrap_or_default()
                    ),
                })
            }
            _ => Ok(None),
        }
    }

    async fn stop_task(&self, cluster: &str, task_arn: &str, reason: &str) -> StepResult<()> {
        self.0
            .stop_task()
            .cluster(cluster)
            .task(task_arn)
            .reason(reason)
            .send()
            .await
            .map_err(|e| StepError::from_sdk("ecs:StopTask", e))?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl ServiceDeployments for Ecs {
    async fn service_deployments(
        &self,
        cluster: &str,
        service: &str,
    ) -> StepResult<Vec<EcsDeployment>> {
        super::service_deployments::list(&self.0, cluster, service).await
    }

    async fn ongoing_service_deployments(
        &self,
        cluster: &str,
        service: &str,
    ) -> StepResult<Vec<EcsDeployment>> {
        super::service_deployments::ongoing(&self.0, cluster, service).await
    }

    async fn service_deployment(&self, arn: &str) -> StepResult<Option<EcsDeployment>> {
        let arns = [arn.to_owned()];
        let mut found = super::service_deployments::describe(&self.0, &arns).await?;
        Ok(found.pop())
    }

    async fn service_revision(&self, arn: &str) -> StepResult<ServiceRevision> {
        super::service_deployments::revision(&self.0, arn).await
    }

    async fn stop_service_deployment(&self, arn: &str) -> StepResult<()> {
        super::service_deployments::stop(&self.0, arn).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(provider: &str, base: i32, weight: i32) -> CapacityProviderStrategyItem {
        CapacityProviderStrategyItem::builder()
            .capacity_provider(provider)
            .base(base)
            .weight(weight)
            .build()
            .unwrap()
    }

    fn names(strategy: &[CapacityProviderStrategyItem]) -> Vec<(String, i32, i32)> {
        strategy
            .iter()
            .map(|i| (i.capacity_provider.clone(), i.base, i.weight))
            .collect()
    }

    #[test]
    fn a_migration_never_runs_on_fargate_spot() {
        let on_demand = vec![("FARGATE".to_owned(), 0, 1)];
        assert_eq!(
            names(&without_spot(vec![item("FARGATE_SPOT", 0, 1)])),
            on_demand
        );
        assert_eq!(
            names(&without_spot(vec![
                item("FARGATE", 1, 1),
                item("FARGATE_SPOT", 0, 4)
            ])),
            vec![("FARGATE".to_owned(), 1, 1)]
        );
        assert_eq!(
            names(&without_spot(vec![
                item("FARGATE", 0, 0),
                item("FARGATE_SPOT", 2, 1)
            ])),
            on_demand,
            "what is left could not place a task"
        );
        let ec2 = vec![item("shop-asg", 0, 1)];
        assert_eq!(names(&without_spot(ec2.clone())), names(&ec2));
    }
}
