//! [`Secrets`] over Secrets Manager.

use crate::error::{StepError, StepResult};
use crate::ports::secrets::Secrets;

/// Secrets Manager through the SDK.
pub struct SecretsManager(pub aws_sdk_secretsmanager::Client);

#[async_trait::async_trait]
impl Secrets for SecretsManager {
    async fn secret_string(&self, id: &str) -> StepResult<Option<String>> {
        let out = self
            .0
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| StepError::from_sdk("secretsmanager:GetSecretValue", e))?;
        Ok(out.secret_string)
    }
}
