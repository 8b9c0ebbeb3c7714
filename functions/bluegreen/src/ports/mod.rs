//! The ports: what bluegreen needs from AWS, as narrow traits over plain values.
//!
//! Each trait names the operations the steps, endings, reconciler and operator actions call —
//! nothing more — with the meaning bluegreen relies on written on the method (what a retry
//! finds, what "missing" answers, what is idempotent). Two worlds implement them:
//!
//! - [`crate::aws`]: the AWS SDK for Rust, as deployed (and as the emulator tests run it);
//! - the in-memory AWS of the tests (`bluegreen_tests::memory`), which the deterministic
//!   simulator drives with faults, timing and interleavings of its choosing.
//!
//! A contract suite runs the same scenarios through both and compares what AWS ends up
//! holding. Set-up and diagnosis commands (`adopt`, `doctor`, `install`) use the SDK directly:
//! they are not ports, and the in-memory world does not serve them.

pub mod alarms;
pub mod compute;
pub mod databases;
pub mod dns;
pub mod identity;
pub mod load_balancing;
pub mod notifications;
pub mod parameters;
pub mod registry;
pub mod scaling;
pub mod secrets;
pub mod service_deployments;
pub mod smoke;
pub mod tables;
pub mod workflow;

use std::sync::Arc;

pub use alarms::Alarms;
pub use compute::Compute;
pub use databases::Databases;
pub use dns::Dns;
pub use identity::Identity;
pub use load_balancing::LoadBalancing;
pub use notifications::Notifications;
pub use parameters::Parameters;
pub use registry::Registry;
pub use scaling::Scaling;
pub use secrets::Secrets;
pub use service_deployments::ServiceDeployments;
pub use smoke::SmokeClient;
pub use tables::Tables;
pub use workflow::Workflow;

/// Every port, shared by the clones of a [`crate::Context`].
#[derive(Clone)]
pub struct Ports {
    /// ECS: services, task definitions, one-off tasks.
    pub compute: Arc<dyn Compute>,
    /// ECS's own blue/green: service deployments and revisions.
    pub service_deployments: Arc<dyn ServiceDeployments>,
    /// ELBv2: listeners' and rules' forward actions, maintenance rules, target health.
    pub load_balancing: Arc<dyn LoadBalancing>,
    /// Route 53: weighted records and changes.
    pub dns: Arc<dyn Dns>,
    /// RDS: database clones.
    pub databases: Arc<dyn Databases>,
    /// DynamoDB: the deployment records, the locks and the service index.
    pub tables: Arc<dyn Tables>,
    /// SSM Parameter Store: the service configs.
    pub parameters: Arc<dyn Parameters>,
    /// Step Functions: executions and task tokens.
    pub workflow: Arc<dyn Workflow>,
    /// SNS and the chat webhook.
    pub notifications: Arc<dyn Notifications>,
    /// CloudWatch alarms.
    pub alarms: Arc<dyn Alarms>,
    /// STS: who is calling.
    pub identity: Arc<dyn Identity>,
    /// Secrets Manager: the link-signing key.
    pub secrets: Arc<dyn Secrets>,
    /// HTTP smoke checks against test endpoints.
    pub smoke: Arc<dyn SmokeClient>,
    /// Application Auto Scaling: the slots' scalable targets and policies.
    pub scaling: Arc<dyn Scaling>,
    /// ECR: the images of the services' repositories.
    pub registry: Arc<dyn Registry>,
}
