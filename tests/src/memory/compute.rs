//! ECS in memory: services with their deployments, task definition revisions, one-off tasks.

use std::collections::BTreeMap;

use bluegreen::StepError;
use bluegreen::ports::Compute;
use bluegreen::ports::ServiceDeployments;
use bluegreen::ports::compute::{
    ContainerExit, NewService, OneOff, RevisionOverlay, ServiceDeployment, ServiceState, Tags,
    TaskDefinitionState, TaskState,
};
use bluegreen::ports::service_deployments::{EcsDeployment, ServiceRevision};

use super::{MemoryAws, not_found, refused};

/// ECS's state.
#[derive(Debug, Clone, Default)]
pub struct EcsState {
    /// Services by `cluster/name`.
    pub services: BTreeMap<String, ServiceModel>,
    /// Task definition revisions by ARN.
    pub definitions: BTreeMap<String, TaskDefinitionState>,
    /// Tasks by ARN.
    pub tasks: BTreeMap<String, TaskModel>,
    /// Tags of services and other resources by ARN.
    pub tags: BTreeMap<String, Tags>,
    /// Tasks started so far (their ids; service deployments and revisions count here too).
    pub started: u64,
    /// ECS's own blue/green deployments, oldest first (see `super::ecs_blue_green`).
    pub blue_green: Vec<super::ecs_blue_green::BlueGreenDeployment>,
    /// Service revisions by ARN.
    pub revisions: BTreeMap<String, ServiceRevision>,
    /// The service (`cluster/name`) of each service revision.
    pub revision_service: BTreeMap<String, String>,
}

/// One service.
#[derive(Debug, Clone)]
pub struct ServiceModel {
    /// What ECS answers for it.
    pub state: ServiceState,
    /// The target group its tasks register in.
    pub target_group: String,
}

/// One task.
#[derive(Debug, Clone)]
pub struct TaskModel {
    /// What ECS answers for it.
    pub state: TaskState,
    /// Its cluster.
    pub cluster: String,
    /// Whether `ListTasks` and `DescribeTasks` show it yet (ECS reads are eventual).
    pub listed: bool,
    /// The command it runs.
    pub command: Vec<String>,
    /// Its environment overrides.
    pub env: Vec<(String, String)>,
    /// The RunTask idempotency token it was started with.
    pub client_token: String,
}

impl EcsState {
    /// The service `cluster/name`.
    pub fn service(&self, cluster: &str, name: &str) -> Option<&ServiceModel> {
        self.services.get(&format!("{cluster}/{name}"))
    }

    /// The latest revision of `family`.
    fn latest(&self, family: &str) -> Option<&TaskDefinitionState> {
        self.definitions
            .values()
            .filter(|d| d.family == family)
            .max_by_key(|d| revision_of(&d.arn))
    }

    /// A definition by ARN, `family:revision` or family (the latest).
    pub fn definition(&self, name: &str) -> Option<&TaskDefinitionState> {
        if let Some(d) = self.definitions.get(name) {
            return Some(d);
        }
        match name.rsplit_once(':') {
            Some((family, revision)) if revision.parse::<u64>().is_ok() => {
                self.definitions.values().find(|d| {
                    d.arn
                        .ends_with(&format!("task-definition/{family}:{revision}"))
                })
            }
            _ => self.latest(name),
        }
    }

    /// Registers a revision of `family` with `containers` and `tags`; its ARN.
    pub fn register(
        &mut self,
        family: &str,
        containers: Vec<bluegreen::ports::compute::ContainerState>,
        tags: Tags,
    ) -> String {
        let revision = self
            .latest(family)
            .map(|d| revision_of(&d.arn))
            .unwrap_or(0)
            + 1;
        let arn = format!("arn:aws:ecs:us-east-1:123456789012:task-definition/{family}:{revision}");
        self.definitions.insert(
            arn.clone(),
            TaskDefinitionState {
                arn: arn.clone(),
                family: family.to_owned(),
                containers,
                tags,
            },
        );
        arn
    }
}

fn revision_of(arn: &str) -> u64 {
    arn.rsplit(':')
        .next()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

impl ServiceModel {
    /// Sets the task definition and desired count as `UpdateService` does: a changed task
    /// definition starts a new primary deployment (the old one drains); a changed count changes
    /// the primary's.
    pub fn update(&mut self, task_definition: Option<&str>, desired: i32) {
        let state = &mut self.state;
        let new_definition = task_definition
            .filter(|td| state.task_definition.as_deref() != Some(*td))
            .map(str::to_owned);
        state.desired_count = desired;
        match new_definition {
            Some(td) => {
                state.task_definition = Some(td.clone());
                for d in &mut state.deployments {
                    d.status = "ACTIVE".into();
                }
                state.deployments.insert(
                    0,
                    ServiceDeployment {
                        status: "PRIMARY".into(),
                        task_definition: Some(td),
                        desired_count: desired,
                        running_count: 0,
                        rollout_state: Some("IN_PROGRESS".into()),
                        rollout_reason: None,
                    },
                );
            }
            None => {
                if let Some(primary) = state.deployments.iter_mut().find(|d| d.status == "PRIMARY")
                    && primary.desired_count != desired
                {
                    primary.desired_count = desired;
                    primary.rollout_state = Some("IN_PROGRESS".into());
                }
            }
        }
    }
}

fn overlaid(
    base: &TaskDefinitionState,
    overlay: &RevisionOverlay,
) -> Result<Vec<bluegreen::ports::compute::ContainerState>, StepError> {
    let mut containers = base.containers.clone();
    let missing = |name: &str| {
        StepError::ConfigInvalid(vec![format!(
            "container: {name:?} is not a container of task definition {}",
            base.arn
        )])
    };
    for (name, image) in &overlay.images {
        let container = containers
            .iter_mut()
            .find(|c| &c.name == name)
            .ok_or_else(|| missing(name))?;
        container.image = image.clone();
    }
    for (name, var, value) in &overlay.environment {
        let container = containers
            .iter_mut()
            .find(|c| &c.name == name)
            .ok_or_else(|| missing(name))?;
        container.environment.retain(|(n, _)| n != var);
        container.environment.push((var.clone(), value.clone()));
    }
    for (name, secret, value_from) in &overlay.secrets {
        let container = containers
            .iter_mut()
            .find(|c| &c.name == name)
            .ok_or_else(|| missing(name))?;
        let entry = container
            .secrets
            .iter_mut()
            .find(|(n, _)| n == secret)
            .ok_or_else(|| missing(&format!("{name} secret {secret}")))?;
        entry.1.clone_from(value_from);
    }
    Ok(containers)
}

/// The service an `UpdateService` names, or ECS's answer for one that does not exist.
fn service_to_update<'a>(
    s: &'a mut super::State,
    cluster: &str,
    service: &str,
) -> Result<&'a mut ServiceModel, StepError> {
    s.ecs
        .services
        .get_mut(&format!("{cluster}/{service}"))
        .ok_or_else(|| {
            refused(
                "ecs:UpdateService",
                "ServiceNotFoundException",
                "Service not found.",
            )
        })
}

#[async_trait::async_trait]
impl Compute for MemoryAws {
    async fn describe_service(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<ServiceState, StepError> {
        self.call("ecs:DescribeServices", |s| {
            s.ecs
                .service(cluster, service)
                .map(|m| m.state.clone())
                .ok_or_else(|| not_found("ECS service", &format!("{cluster}/{service}")))
        })
        .await
    }

    async fn update_service(
        &self,
        cluster: &str,
        service: &str,
        task_definition: Option<&str>,
        desired_count: i32,
    ) -> Result<(), StepError> {
        self.call("ecs:UpdateService", |s| {
            if let Some(td) = task_definition
                && s.ecs.definition(td).is_none()
            {
                return Err(refused(
                    "ecs:UpdateService",
                    "ClientException",
                    format!("task definition {td} does not exist"),
                ));
            }
            let model = service_to_update(s, cluster, service)?;
            // ECS's own blue/green: a new revision is a service deployment of its stages.
            if model.state.setup.is_ecs_blue_green()
                && let Some(td) = task_definition
                && model.state.task_definition.as_deref() != Some(td)
            {
                s.start_blue_green(&format!("{cluster}/{service}"), td, desired_count);
                return Ok(());
            }
            model.update(task_definition, desired_count);
            Ok(())
        })
        .await
    }

    async fn deploy_revision(
        &self,
        cluster: &str,
        service: &str,
        task_definition: &str,
    ) -> Result<(), StepError> {
        let desired = self.with(|s| {
            s.ecs
                .services
                .get(&format!("{cluster}/{service}"))
                .map(|m| m.state.desired_count)
        });
        // ECS keeps the desired count it has: the same as passing it.
        self.update_service(
            cluster,
            service,
            Some(task_definition),
            desired.unwrap_or_default(),
        )
        .await
    }

    async fn create_service(&self, new: &NewService) -> Result<(), StepError> {
        self.call("ecs:CreateService", |s| {
            if s.ecs.service(&new.cluster, &new.name).is_some() {
                return Err(refused(
                    "ecs:CreateService",
                    "InvalidParameterException",
                    "Creation of service was not idempotent.",
                ));
            }
            if s.ecs.definition(&new.task_definition).is_none() {
                return Err(refused(
                    "ecs:CreateService",
                    "ClientException",
                    format!("task definition {} does not exist", new.task_definition),
                ));
            }
            s.ecs
                .service(&new.cluster, &new.like)
                .ok_or_else(|| not_found("ECS service", &new.like))?;
            let arn = format!(
                "arn:aws:ecs:us-east-1:123456789012:service/{}/{}",
                new.cluster, new.name
            );
            s.ecs.tags.insert(arn.clone(), new.tags.clone());
            let state = ServiceState {
                arn,
                name: new.name.clone(),
                task_definition: None,
                desired_count: 0,
                running_count: 0,
                deployments: Vec::new(),
                registries: Vec::new(),
                setup: Default::default(),
            };
            let mut model = ServiceModel {
                state,
                target_group: new.target_group.clone(),
            };
            model.update(Some(&new.task_definition), new.desired_count);
            s.ecs
                .services
                .insert(format!("{}/{}", new.cluster, new.name), model);
            Ok(())
        })
        .await
    }

    async fn delete_service(&self, cluster: &str, service: &str) -> Result<(), StepError> {
        self.call("ecs:DeleteService", |s| {
            let Some(model) = s.ecs.services.remove(&format!("{cluster}/{service}")) else {
                return Ok(());
            };
            // Its tasks stop; the load balancer drains them from the group a while later.
            if let Some(targets) = s.elb.targets.get_mut(&model.target_group) {
                for target in targets.iter_mut() {
                    target.state = "draining".into();
                }
            }
            Ok(())
        })
        .await
    }

    async fn set_registries(
        &self,
        cluster: &str,
        service: &str,
        registries: &[bluegreen::ports::compute::ServiceRegistry],
    ) -> Result<(), StepError> {
        self.call("ecs:UpdateService", |s| {
            let model = service_to_update(s, cluster, service)?;
            model.state.registries = registries.to_vec();
            Ok(())
        })
        .await
    }

    async fn tag_resource(&self, arn: &str, tags: &[(String, String)]) -> Result<(), StepError> {
        self.call("ecs:TagResource", |s| {
            let current = s.ecs.tags.entry(arn.to_owned()).or_default();
            for (k, v) in tags {
                current.retain(|(key, _)| key != k);
                current.push((k.clone(), v.clone()));
            }
            Ok(())
        })
        .await
    }

    async fn untag_resource(&self, arn: &str, keys: &[&str]) -> Result<(), StepError> {
        self.call("ecs:UntagResource", |s| {
            if let Some(current) = s.ecs.tags.get_mut(arn) {
                current.retain(|(key, _)| !keys.contains(&key.as_str()));
            }
            Ok(())
        })
        .await
    }

    async fn tags_of(&self, arn: &str) -> Result<Tags, StepError> {
        self.call("ecs:ListTagsForResource", |s| {
            Ok(s.ecs.tags.get(arn).cloned().unwrap_or_default())
        })
        .await
    }

    async fn describe_task_definition(&self, name: &str) -> Result<TaskDefinitionState, StepError> {
        self.call("ecs:DescribeTaskDefinition", |s| {
            s.ecs
                .definition(name)
                .cloned()
                .ok_or_else(|| not_found("task definition", name))
        })
        .await
    }

    async fn register_revision(
        &self,
        base: &str,
        overlay: &RevisionOverlay,
        tags: &[(String, String)],
    ) -> Result<String, StepError> {
        self.call("ecs:RegisterTaskDefinition", |s| {
            let base = s
                .ecs
                .definition(base)
                .cloned()
                .ok_or_else(|| not_found("task definition", base))?;
            let containers = overlaid(&base, overlay)?;
            Ok(s.ecs.register(&base.family, containers, tags.to_vec()))
        })
        .await
    }

    async fn run_task(&self, task: &OneOff) -> Result<Result<TaskState, String>, StepError> {
        self.call("ecs:RunTask", |s| {
            if s.ecs.service(&task.cluster, &task.network_of).is_none() {
                return Err(not_found(
                    "ECS service",
                    &format!("{}/{}", task.cluster, task.network_of),
                ));
            }
            // ECS's idempotency: the same token and parameters answer the task it started.
            if let Some(started) = s
                .ecs
                .tasks
                .values()
                .find(|t| !task.client_token.is_empty() && t.client_token == task.client_token)
            {
                if started.state.task_definition != task.task_definition
                    || started.state.started_by != task.started_by
                {
                    return Err(refused(
                        "ecs:RunTask",
                        "InvalidParameterException",
                        "the client token was used with different parameters",
                    ));
                }
                return Ok(Ok(started.state.clone()));
            }
            if s.ecs.definition(&task.task_definition).is_none() {
                return Err(refused(
                    "ecs:RunTask",
                    "ClientException",
                    "Unable to find task definition",
                ));
            }
            s.ecs.started += 1;
            let arn = format!(
                "arn:aws:ecs:us-east-1:123456789012:task/{}/{:032x}",
                task.cluster, s.ecs.started
            );
            let state = TaskState {
                arn: arn.clone(),
                task_definition: task.task_definition.clone(),
                started_by: task.started_by.clone(),
                last_status: "PROVISIONING".into(),
                desired_status: "RUNNING".into(),
                stop_code: None,
                stopped_reason: None,
                containers: vec![ContainerExit {
                    name: task.container.clone(),
                    exit_code: None,
                    reason: None,
                }],
            };
            s.ecs.tasks.insert(
                arn,
                TaskModel {
                    state: state.clone(),
                    cluster: task.cluster.clone(),
                    listed: false,
                    command: task.command.clone(),
                    env: task.env.clone(),
                    client_token: task.client_token.clone(),
                },
            );
            Ok(Ok(state))
        })
        .await
    }

    async fn find_task(
        &self,
        cluster: &str,
        started_by: &str,
    ) -> Result<Option<TaskState>, StepError> {
        self.call("ecs:ListTasks", |s| {
            Ok(s.ecs
                .tasks
                .values()
                .find(|t| t.cluster == cluster && t.listed && t.state.started_by == started_by)
                .map(|t| t.state.clone()))
        })
        .await
    }

    async fn describe_task(
        &self,
        cluster: &str,
        task_arn: &str,
    ) -> Result<Option<TaskState>, StepError> {
        // Modelled as pessimistically as ListTasks: a task just started is invisible to every
        // read until it is listed (AWS documents DescribeTasks as eventually consistent too).
        self.call("ecs:DescribeTasks", |s| {
            Ok(s.ecs
                .tasks
                .get(task_arn)
                .filter(|t| t.cluster == cluster && t.listed)
                .map(|t| t.state.clone()))
        })
        .await
    }

    async fn stop_task(
        &self,
        _cluster: &str,
        task_arn: &str,
        reason: &str,
    ) -> Result<(), StepError> {
        self.call("ecs:StopTask", |s| {
            let task = s.ecs.tasks.get_mut(task_arn).ok_or_else(|| {
                refused(
                    "ecs:StopTask",
                    "InvalidParameterException",
                    "The referenced task was not found.",
                )
            })?;
            if task.state.desired_status != "STOPPED" {
                task.state.desired_status = "STOPPED".into();
                task.state.stopped_reason = Some(reason.to_owned());
            }
            Ok(())
        })
        .await
    }
}

#[async_trait::async_trait]
impl ServiceDeployments for MemoryAws {
    async fn service_deployments(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Vec<EcsDeployment>, StepError> {
        self.list_blue_green(cluster, service, false).await
    }

    async fn ongoing_service_deployments(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Vec<EcsDeployment>, StepError> {
        self.list_blue_green(cluster, service, true).await
    }

    async fn service_deployment(&self, arn: &str) -> Result<Option<EcsDeployment>, StepError> {
        self.call("ecs:DescribeServiceDeployments", |s| {
            Ok(s.ecs
                .blue_green
                .iter()
                .find(|d| d.arn == arn)
                .map(|d| d.described()))
        })
        .await
    }

    async fn service_revision(&self, arn: &str) -> Result<ServiceRevision, StepError> {
        self.call("ecs:DescribeServiceRevisions", |s| {
            s.ecs
                .revisions
                .get(arn)
                .cloned()
                .ok_or_else(|| not_found("ECS service revision", arn))
        })
        .await
    }

    async fn stop_service_deployment(&self, arn: &str) -> Result<(), StepError> {
        self.call("ecs:StopServiceDeployment", |s| s.stop_blue_green(arn))
            .await
    }
}

impl MemoryAws {
    /// `ListServiceDeployments` (then described): the newest 20, or every one going on.
    async fn list_blue_green(
        &self,
        cluster: &str,
        service: &str,
        ongoing: bool,
    ) -> Result<Vec<EcsDeployment>, StepError> {
        self.call("ecs:ListServiceDeployments", |s| {
            let key = format!("{cluster}/{service}");
            if !s.ecs.services.contains_key(&key) {
                return Err(not_found("ECS service", &key));
            }
            Ok(match ongoing {
                true => s.ecs.ongoing_blue_green(&key),
                false => s.ecs.described_blue_green(&key),
            })
        })
        .await
    }
}
