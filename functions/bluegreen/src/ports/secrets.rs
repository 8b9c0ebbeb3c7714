//! Secrets Manager: the approval-link signing key.

use crate::error::StepResult;

/// Secrets Manager, as far as the link signer uses it.
#[async_trait::async_trait]
pub trait Secrets: Send + Sync {
    /// The secret's current `SecretString`; `None` when it holds binary data instead.
    /// [`crate::StepError`] as AWS answers when there is no such secret.
    async fn secret_string(&self, id: &str) -> StepResult<Option<String>>;
}
