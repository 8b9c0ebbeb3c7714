//! ECS's own blue/green deployments of a service (`strategy = BLUE_GREEN`): its service
//! deployments, the revisions they roll out, and stopping one. A port of its own: only the ECS
//! engine (`crate::engine::ecs_blue_green`) and its lifecycle hook (`crate::ecs_hook`) use it.

use serde::{Deserialize, Serialize};

use crate::error::StepResult;

/// One service deployment of ECS's own (`DescribeServiceDeployments`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcsDeployment {
    /// Its ARN (`…:service-deployment/<cluster>/<service>/<id>`): a lifecycle hook's
    /// `resourceArn`.
    pub arn: String,
    /// `PENDING`, `IN_PROGRESS`, `SUCCESSFUL`, `STOPPED`, `STOP_REQUESTED`,
    /// `ROLLBACK_REQUESTED`, `ROLLBACK_IN_PROGRESS`, `ROLLBACK_SUCCESSFUL` or
    /// `ROLLBACK_FAILED`.
    pub status: String,
    /// ECS's words for the status.
    pub status_reason: Option<String>,
    /// Where a blue/green deployment stands: `PRE_SCALE_UP` … `POST_TEST_TRAFFIC_SHIFT` …
    /// `BAKE_TIME`, `CLEAN_UP` (values ECS adds later pass through as they are).
    pub lifecycle_stage: Option<String>,
    /// The service revision it rolls out.
    pub target_revision: Option<String>,
}

impl EcsDeployment {
    /// Whether ECS is still working on it (pending, in progress, stopping or rolling back).
    pub fn is_ongoing(&self) -> bool {
        is_ongoing_status(&self.status)
    }
}

/// Whether a service deployment of this status is still going on (ECS's "pending" and
/// "ongoing" groups).
pub fn is_ongoing_status(status: &str) -> bool {
    matches!(
        status,
        "PENDING"
            | "IN_PROGRESS"
            | "STOP_REQUESTED"
            | "ROLLBACK_REQUESTED"
            | "ROLLBACK_IN_PROGRESS"
    )
}

/// A service revision: what ECS runs for a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRevision {
    /// Its ARN.
    pub arn: String,
    /// The task definition it runs.
    pub task_definition: String,
}

/// ECS's service deployments, as far as the ECS engine and its hook use them.
#[async_trait::async_trait]
pub trait ServiceDeployments: Send + Sync {
    /// A service's service deployments, newest first: the 20 newest ECS lists, described.
    async fn service_deployments(
        &self,
        cluster: &str,
        service: &str,
    ) -> StepResult<Vec<EcsDeployment>>;

    /// A service's service deployments still going on (pending, in progress, stopping or
    /// rolling back), newest first: ECS's list filtered by those statuses, described.
    async fn ongoing_service_deployments(
        &self,
        cluster: &str,
        service: &str,
    ) -> StepResult<Vec<EcsDeployment>>;

    /// One service deployment, as ECS describes it now; `None` when it describes none.
    async fn service_deployment(&self, arn: &str) -> StepResult<Option<EcsDeployment>>;

    /// One service revision; [`crate::StepError::ResourceNotFound`] when ECS knows none.
    async fn service_revision(&self, arn: &str) -> StepResult<ServiceRevision>;

    /// Stops a service deployment that is still going on and rolls it back: ECS moves traffic
    /// back and returns the service to its last successful revision (`stopType = ROLLBACK`,
    /// the only one ECS documents). ECS refuses one that ended (`ConflictException`).
    async fn stop_service_deployment(&self, arn: &str) -> StepResult<()>;
}
