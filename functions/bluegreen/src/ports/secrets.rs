//! Secrets Manager: the approval-link signing key, and the per-deployment secrets that point a
//! clone's pre-prod at its database (`database.secret`).

use crate::error::StepResult;

use super::compute::Tags;

/// A secret's metadata, as bluegreen reads it (never its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretInfo {
    /// Its full ARN.
    pub arn: String,
    /// Its name.
    pub name: String,
    /// The KMS key that encrypts it (`None`: the account's `aws/secretsmanager` key).
    pub kms_key_id: Option<String>,
    /// Its tags.
    pub tags: Tags,
}

/// Secrets Manager, as far as bluegreen uses it.
#[async_trait::async_trait]
pub trait Secrets: Send + Sync {
    /// The secret's current `SecretString`; `None` when it holds binary data instead.
    /// [`crate::StepError`] as AWS answers when there is no such secret.
    async fn secret_string(&self, id: &str) -> StepResult<Option<String>> {
        self.secret_string_at(id, None, None).await
    }

    /// The `SecretString` of one version of the secret: `stage` (`AWSCURRENT` when `None`) or
    /// the version `id`.
    async fn secret_string_at(
        &self,
        id: &str,
        stage: Option<&str>,
        version: Option<&str>,
    ) -> StepResult<Option<String>>;

    /// The secret's metadata; `None` when there is no such secret (or it is being deleted).
    async fn describe_secret(&self, id: &str) -> StepResult<Option<SecretInfo>>;

    /// Creates the secret `name` holding `value`, encrypted with `kms_key_id` (else the
    /// account's default key) and tagged; its ARN.
    async fn create_secret(
        &self,
        name: &str,
        value: &str,
        kms_key_id: Option<&str>,
        tags: &[(String, String)],
    ) -> StepResult<String>;

    /// Writes `value` as the secret's new current version.
    async fn put_secret_value(&self, id: &str, value: &str) -> StepResult<()>;

    /// Deletes the secret at once (no recovery window); `false` when there was none.
    async fn delete_secret(&self, id: &str) -> StepResult<bool>;

    /// Every secret whose name starts with `prefix`, with its tags.
    async fn secrets_named(&self, prefix: &str) -> StepResult<Vec<SecretInfo>>;
}
