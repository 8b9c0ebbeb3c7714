//! Step Functions: the deployment executions (named after their deployment) and the task
//! tokens of approval waits.

use crate::error::StepResult;

/// How a deployment's execution stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Execution {
    /// It runs (or waits for a redrive).
    Running,
    /// It ended: `SUCCEEDED`, `FAILED`, `TIMED_OUT` or `ABORTED`.
    Ended(String),
    /// There is none.
    Missing,
}

impl Execution {
    /// Whether it still runs.
    pub fn is_running(&self) -> bool {
        matches!(self, Execution::Running)
    }
}

/// Step Functions, as far as the steps and operator actions use it.
#[async_trait::async_trait]
pub trait Workflow: Send + Sync {
    /// The execution named `name` of the state machine `machine`.
    async fn status(&self, machine: &str, name: &str) -> StepResult<Execution>;

    /// Starts execution `name` of `machine` with `input` (JSON). Starting one that exists
    /// with the same input is accepted (Step Functions' idempotent start).
    async fn start(&self, machine: &str, name: &str, input: &str) -> StepResult<()>;

    /// Stops the execution (a missing or ended one is fine). A step invocation already
    /// running is not stopped: it runs to its end or its timeout.
    async fn stop(&self, machine: &str, name: &str, error: &str, cause: &str) -> StepResult<()>;

    /// Completes the task waiting with `token`; [`crate::StepError::DecisionNotDelivered`]
    /// when nothing waits for it any more.
    async fn send_task_success(&self, token: &str, output: &str) -> StepResult<()>;

    /// Fails the task waiting with `token`, as [`Workflow::send_task_success`].
    async fn send_task_failure(&self, token: &str, error: &str, cause: &str) -> StepResult<()>;

    /// Whether the state machine exists.
    async fn machine_exists(&self, machine: &str) -> StepResult<bool>;
}
