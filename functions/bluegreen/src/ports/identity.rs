//! STS: who is calling (the CLI and the local console decide as this identity).

use crate::error::StepResult;

/// STS, as far as the CLI uses it.
#[async_trait::async_trait]
pub trait Identity: Send + Sync {
    /// The caller's ARN.
    async fn caller_arn(&self) -> StepResult<String>;
}
