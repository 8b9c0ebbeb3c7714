//! ECS: the slots' services, the task definitions bluegreen derives, and one-off migration
//! tasks.

use serde::{Deserialize, Serialize};

use crate::error::StepResult;

/// Tags as `(key, value)` pairs.
pub type Tags = Vec<(String, String)>;

/// An ECS service as bluegreen reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceState {
    /// The service's ARN.
    pub arn: String,
    /// The service's name.
    pub name: String,
    /// The task definition the service is set to run.
    pub task_definition: Option<String>,
    /// Tasks it is asked to run.
    pub desired_count: i32,
    /// Tasks running now.
    pub running_count: i32,
    /// Its deployments (ECS keeps the primary and the ones it is draining).
    pub deployments: Vec<ServiceDeployment>,
    /// Its service registries (Cloud Map): where its tasks register for callers to find.
    #[serde(default)]
    pub registries: Vec<ServiceRegistry>,
    /// Who deploys it and how (ECS's own blue/green among them).
    #[serde(default)]
    pub setup: DeploymentSetup,
}

/// How ECS deploys a service: its `deploymentController` and the parts of its
/// `deploymentConfiguration` and load balancers that ECS's own blue/green reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentSetup {
    /// `ECS` (ECS's default when unset), `CODE_DEPLOY` or `EXTERNAL`: who deploys it.
    pub controller: Option<String>,
    /// `ROLLING` (ECS's default when unset), `BLUE_GREEN`, `LINEAR` or `CANARY`.
    pub strategy: Option<String>,
    /// Blue/green: minutes both revisions run after production moved, before the old one
    /// is scaled in.
    pub bake_minutes: Option<i32>,
    /// Its lifecycle hooks.
    pub hooks: Vec<LifecycleHook>,
    /// Its load balancers' blue/green routes (`advancedConfiguration`).
    pub routes: Vec<BlueGreenRoute>,
}

impl DeploymentSetup {
    /// Whether ECS itself deploys the service blue/green (controller ECS, strategy
    /// `BLUE_GREEN`).
    pub fn is_ecs_blue_green(&self) -> bool {
        self.controller.as_deref().unwrap_or("ECS") == "ECS"
            && self.strategy.as_deref() == Some("BLUE_GREEN")
    }

    /// Who else moves the service's traffic when its task definition changes, if anyone: a
    /// deployment controller other than ECS (CodeDeploy, an external one), or an ECS strategy
    /// other than rolling (ECS's own blue/green, linear, canary — each moves its own rules
    /// between its target groups). `None`: ECS's rolling deployments, which the slots engine
    /// drives.
    pub fn other_deployer(&self) -> Option<String> {
        match (self.controller.as_deref(), self.strategy.as_deref()) {
            (Some(controller), _) if controller != "ECS" => {
                Some(format!("the {controller} deployment controller"))
            }
            (_, Some(strategy)) if strategy != "ROLLING" => {
                Some(format!("ECS's own {strategy} deployments"))
            }
            _ => None,
        }
    }
}

/// A service bluegreen creates for a while (`isolated` pre-prod on ECS's engine, DESIGN 28).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewService {
    /// Its cluster.
    pub cluster: String,
    /// Its name.
    pub name: String,
    /// The service whose placement it copies.
    pub like: String,
    /// The task definition it runs.
    pub task_definition: String,
    /// The target group its tasks register in.
    pub target_group: String,
    /// Tasks it runs.
    pub desired_count: i32,
    /// Its tags (ECS propagates none of them to tasks unless `like` does).
    pub tags: Tags,
}

/// One lifecycle hook of a service's deployment configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleHook {
    /// `AWS_LAMBDA` or `PAUSE`.
    pub target_type: String,
    /// The Lambda function's ARN (`AWS_LAMBDA`).
    pub target_arn: Option<String>,
    /// The stages it runs at (`POST_TEST_TRAFFIC_SHIFT`, …).
    pub stages: Vec<String>,
    /// Minutes ECS waits for it at a stage before its `timeout_action` (ECS's default: 1440).
    #[serde(default)]
    pub timeout_minutes: Option<i32>,
    /// `ROLLBACK` (ECS's default) or `CONTINUE`: what ECS does when the hook times out — with
    /// `CONTINUE` a held gate would let production move unapproved.
    #[serde(default)]
    pub timeout_action: Option<String>,
}

/// One load balancer of a blue/green service: the target group and its alternate, and the
/// rules ECS moves between them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlueGreenRoute {
    /// The target group the service was given.
    pub target_group: String,
    /// The other target group ECS alternates with.
    pub alternate_target_group: Option<String>,
    /// The rule (ALB) or listener (NLB) production traffic comes through.
    pub production_rule: Option<String>,
    /// The rule test traffic comes through.
    pub test_rule: Option<String>,
    /// The infrastructure role ECS moves the rules with.
    pub role_arn: Option<String>,
}

/// One service registry of a service (Cloud Map), as ECS states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ServiceRegistry {
    /// The Cloud Map service's ARN.
    pub registry_arn: String,
    /// The port of an SRV record.
    pub port: Option<i32>,
    /// The container whose port an SRV record names.
    pub container_name: Option<String>,
    /// That container's port.
    pub container_port: Option<i32>,
}

impl ServiceState {
    /// The deployment ECS is rolling out (`PRIMARY`), if any.
    pub fn primary(&self) -> Option<&ServiceDeployment> {
        self.deployments.iter().find(|d| d.status == "PRIMARY")
    }
}

/// One deployment of a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceDeployment {
    /// `PRIMARY`, `ACTIVE` (draining) or `INACTIVE`.
    pub status: String,
    /// The task definition it rolls out.
    pub task_definition: Option<String>,
    /// Tasks it wants.
    pub desired_count: i32,
    /// Tasks of it running.
    pub running_count: i32,
    /// `IN_PROGRESS`, `COMPLETED` or `FAILED`.
    pub rollout_state: Option<String>,
    /// Why, when ECS says.
    pub rollout_reason: Option<String>,
}

/// A task definition revision: its containers (what bluegreen reads and changes) and tags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskDefinitionState {
    /// `arn:aws:ecs:…:task-definition/<family>:<revision>`.
    pub arn: String,
    /// The family.
    pub family: String,
    /// Its containers.
    pub containers: Vec<ContainerState>,
    /// Its tags.
    pub tags: Tags,
}

impl TaskDefinitionState {
    /// The container named `name`.
    pub fn container(&self, name: &str) -> Option<&ContainerState> {
        self.containers.iter().find(|c| c.name == name)
    }

    /// The value of environment variable `name` in `container`, if set.
    pub fn env_value(&self, container: &str, name: &str) -> Option<String> {
        self.container(container)?
            .environment
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    /// The `valueFrom` of `container`'s `secrets` entry `name`, if it has one.
    pub fn secret_from(&self, container: &str, name: &str) -> Option<String> {
        self.container(container)?
            .secrets
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    /// Every environment value of every container, as `(container, name, value)`.
    pub fn all_env(&self) -> Vec<(String, String, String)> {
        self.containers
            .iter()
            .flat_map(|c| {
                c.environment
                    .iter()
                    .map(move |(n, v)| (c.name.clone(), n.clone(), v.clone()))
            })
            .collect()
    }

    /// Everything a container is told where to find its settings: every plain value, every
    /// secret's `valueFrom` and every environment file, as `(container, what, value)` (`what`
    /// is a variable's name, `secret NAME` or `environment file`).
    pub fn all_references(&self) -> Vec<(String, String, String)> {
        let mut all = self.all_env();
        for c in &self.containers {
            all.extend(
                c.secrets
                    .iter()
                    .map(|(n, from)| (c.name.clone(), format!("secret {n}"), from.clone())),
            );
            all.extend(
                c.environment_files
                    .iter()
                    .map(|f| (c.name.clone(), "environment file".to_owned(), f.clone())),
            );
        }
        all
    }
}

/// One container of a task definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerState {
    /// Its name.
    pub name: String,
    /// Its image.
    pub image: String,
    /// Its plain environment variables, in order.
    pub environment: Vec<(String, String)>,
    /// Its `secrets`: `(name, valueFrom)` — the variable a Secrets Manager secret or SSM
    /// parameter is read into, and where from (never the value).
    #[serde(default)]
    pub secrets: Vec<(String, String)>,
    /// Its `environmentFiles` (S3 ARNs): variables ECS reads from files at start.
    #[serde(default)]
    pub environment_files: Vec<String>,
    /// Its log driver and options (`awslogs`, `awslogs-group`, …), when configured.
    pub log: Option<(String, Vec<(String, String)>)>,
}

/// What a new revision changes in its base: container images and environment values; every
/// other setting of the base is copied.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RevisionOverlay {
    /// `(container, image)`.
    pub images: Vec<(String, String)>,
    /// `(container, name, value)`: set, replacing any earlier value.
    pub environment: Vec<(String, String, String)>,
    /// `(container, name, valueFrom)`: the `secrets` entry `name` read from `valueFrom`
    /// instead (the entry must exist).
    #[serde(default)]
    pub secrets: Vec<(String, String, String)>,
}

/// What a one-off task runs: which container of which task definition, with which command and
/// environment overrides, in the network of which service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OneOff {
    /// Cluster.
    pub cluster: String,
    /// The service whose network configuration and launch type (or capacity provider
    /// strategy) the task borrows.
    pub network_of: String,
    /// Run on on-demand capacity: the borrowed strategy without Fargate Spot.
    pub on_demand: bool,
    /// Task definition ARN.
    pub task_definition: String,
    /// Container whose command is overridden.
    pub container: String,
    /// The command.
    pub command: Vec<String>,
    /// Environment overrides, `(name, value)`.
    pub env: Vec<(String, String)>,
    /// Environment overrides of other containers (not the command): the app's other
    /// containers that read the same database setting, so a worker in a rehearsal task uses
    /// the clone the migration does. `(container, [(name, value)])`.
    pub env_of_others: Vec<(String, Vec<(String, String)>)>,
    /// The `startedBy` value a retry finds the task by.
    pub started_by: String,
    /// RunTask's idempotency token: the same token with the same parameters starts one task
    /// (ECS honours it for 24 hours), so a retry whose first answer was lost — and whose task
    /// `ListTasks` does not show yet — gets the task already started, not a second one.
    pub client_token: String,
    /// Tags for the task.
    pub tags: Tags,
}

/// An ECS task as bluegreen reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskState {
    /// The task's ARN.
    pub arn: String,
    /// The task definition it runs.
    pub task_definition: String,
    /// Its `startedBy`.
    pub started_by: String,
    /// `PROVISIONING` … `RUNNING` … `STOPPED`.
    pub last_status: String,
    /// `RUNNING` or `STOPPED` (asked to stop).
    pub desired_status: String,
    /// Why it stopped (`EssentialContainerExited`, `TaskFailedToStart`, `UserInitiated`, …).
    pub stop_code: Option<String>,
    /// ECS's words for it.
    pub stopped_reason: Option<String>,
    /// Its containers' exits.
    pub containers: Vec<ContainerExit>,
}

impl TaskState {
    /// Whether ECS reports the task stopped.
    pub fn is_stopped(&self) -> bool {
        self.last_status == "STOPPED"
    }

    /// The task's id (the last segment of its ARN).
    pub fn id(&self) -> &str {
        self.arn.rsplit('/').next().unwrap_or_default()
    }
}

/// A container of a task, once it exited.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerExit {
    /// Its name.
    pub name: String,
    /// Its exit code, when it ran.
    pub exit_code: Option<i32>,
    /// ECS's reason, when it did not.
    pub reason: Option<String>,
}

/// ECS, as far as the steps use it.
#[async_trait::async_trait]
pub trait Compute: Send + Sync {
    /// One service; [`crate::StepError::ResourceNotFound`] when it (or its cluster) is
    /// missing or inactive.
    async fn describe_service(&self, cluster: &str, service: &str) -> StepResult<ServiceState>;

    /// Sets a service's task definition (when given) and desired count: a set-to-value,
    /// idempotent.
    async fn update_service(
        &self,
        cluster: &str,
        service: &str,
        task_definition: Option<&str>,
        desired_count: i32,
    ) -> StepResult<()>;

    /// Sets a service's task definition and nothing else (`UpdateService` without a desired
    /// count: the service's autoscaling keeps owning it). On a service on ECS's own
    /// blue/green this starts a service deployment. Not idempotent there: a second call with
    /// another revision supersedes the first's deployment.
    async fn deploy_revision(
        &self,
        cluster: &str,
        service: &str,
        task_definition: &str,
    ) -> StepResult<()>;

    /// Creates `new`: `new.like`'s placement (network, capacity, container and port) in
    /// `new.target_group`, rolling with the circuit breaker, no registries. Callers look first.
    async fn create_service(&self, new: &NewService) -> StepResult<()>;

    /// Deletes a service whatever its desired count (ECS stops its tasks, which leave their
    /// target group draining). Deleting a service that is gone is no error.
    async fn delete_service(&self, cluster: &str, service: &str) -> StepResult<()>;

    /// Sets a service's registries (Cloud Map); `[]` removes them. ECS rolls the service out
    /// again so its tasks register (or stop registering) accordingly.
    async fn set_registries(
        &self,
        cluster: &str,
        service: &str,
        registries: &[ServiceRegistry],
    ) -> StepResult<()>;

    /// Adds tags to an ECS resource (idempotent).
    async fn tag_resource(&self, arn: &str, tags: &[(String, String)]) -> StepResult<()>;

    /// Removes tags (removing absent tags is fine).
    async fn untag_resource(&self, arn: &str, keys: &[&str]) -> StepResult<()>;

    /// An ECS resource's tags.
    async fn tags_of(&self, arn: &str) -> StepResult<Tags>;

    /// A task definition (by ARN, `family:revision` or family for the latest ACTIVE one) with
    /// its tags; [`crate::StepError::ResourceNotFound`] when there is none.
    async fn describe_task_definition(&self, name: &str) -> StepResult<TaskDefinitionState>;

    /// Registers a new revision of `base`'s family: `base` with `overlay` applied and every
    /// other setting copied, tagged with `tags`. Returns its ARN. Not idempotent: a retry
    /// finds an earlier registration as the family's latest revision by its tags.
    async fn register_revision(
        &self,
        base: &str,
        overlay: &RevisionOverlay,
        tags: &[(String, String)],
    ) -> StepResult<String>;

    /// Starts one task, once per [`OneOff::client_token`]. A placement failure is
    /// `Err(reason)` inside `Ok`.
    async fn run_task(&self, task: &OneOff) -> StepResult<Result<TaskState, String>>;

    /// The task started with `started_by` (running or stopped), described. ECS lists tasks
    /// eventually: one just started may not be found yet.
    async fn find_task(&self, cluster: &str, started_by: &str) -> StepResult<Option<TaskState>>;

    /// One task by its ARN (running or stopped); `None` when ECS does not know it: not yet
    /// (ECS describes tasks eventually too) or no longer (it forgets stopped tasks after about
    /// an hour).
    async fn describe_task(&self, cluster: &str, task_arn: &str) -> StepResult<Option<TaskState>>;

    /// Stops a task (stopping a stopped task is harmless).
    async fn stop_task(&self, cluster: &str, task_arn: &str, reason: &str) -> StepResult<()>;
}
