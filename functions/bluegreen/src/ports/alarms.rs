//! CloudWatch alarms named in `bake.alarms`.

use crate::error::StepResult;

/// CloudWatch, as far as the steps use it.
#[async_trait::async_trait]
pub trait Alarms: Send + Sync {
    /// Of `names`, the alarms in state ALARM (metric and composite alarms).
    async fn firing(&self, names: &[String]) -> StepResult<Vec<String>>;

    /// Of `names`, the alarms that do not exist.
    async fn missing(&self, names: &[String]) -> StepResult<Vec<String>>;
}
