//! [`Secrets`] over Secrets Manager.

use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, Tag};

use crate::error::{StepError, StepResult};
use crate::ports::secrets::{SecretInfo, Secrets};

/// Secrets Manager through the SDK.
pub struct SecretsManager(pub aws_sdk_secretsmanager::Client);

fn tags_of(tags: Option<Vec<Tag>>) -> Vec<(String, String)> {
    tags.unwrap_or_default()
        .into_iter()
        .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
        .collect()
}

#[async_trait::async_trait]
impl Secrets for SecretsManager {
    async fn secret_string_at(
        &self,
        id: &str,
        stage: Option<&str>,
        version: Option<&str>,
    ) -> StepResult<Option<String>> {
        let out = self
            .0
            .get_secret_value()
            .secret_id(id)
            .set_version_stage(stage.map(str::to_owned))
            .set_version_id(version.map(str::to_owned))
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(s) if s.is_resource_not_found_exception() => StepError::ResourceNotFound {
                    kind: "secret",
                    id: id.to_owned(),
                },
                _ => StepError::from_sdk("secretsmanager:GetSecretValue", e),
            })?;
        Ok(out.secret_string)
    }

    async fn describe_secret(&self, id: &str) -> StepResult<Option<SecretInfo>> {
        match self.0.describe_secret().secret_id(id).send().await {
            // A secret scheduled for deletion is as good as gone: it can be neither read nor
            // written.
            Ok(out) if out.deleted_date.is_some() => Ok(None),
            Ok(out) => Ok(Some(SecretInfo {
                arn: out.arn.unwrap_or_default(),
                name: out.name.unwrap_or_default(),
                kms_key_id: out.kms_key_id,
                tags: tags_of(out.tags),
            })),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(StepError::from_sdk("secretsmanager:DescribeSecret", e)),
        }
    }

    async fn create_secret(
        &self,
        name: &str,
        value: &str,
        kms_key_id: Option<&str>,
        tags: &[(String, String)],
    ) -> StepResult<String> {
        let out = self
            .0
            .create_secret()
            .name(name)
            .secret_string(value)
            .set_kms_key_id(kms_key_id.map(str::to_owned))
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect(),
            ))
            .send()
            .await
            .map_err(|e| StepError::from_sdk("secretsmanager:CreateSecret", e))?;
        out.arn.ok_or_else(|| StepError::AwsTransient {
            operation: "secretsmanager:CreateSecret",
            message: "no ARN in the response".into(),
        })
    }

    async fn put_secret_value(&self, id: &str, value: &str) -> StepResult<()> {
        self.0
            .put_secret_value()
            .secret_id(id)
            .secret_string(value)
            .send()
            .await
            .map_err(|e| StepError::from_sdk("secretsmanager:PutSecretValue", e))?;
        Ok(())
    }

    async fn delete_secret(&self, id: &str) -> StepResult<bool> {
        match self
            .0
            .delete_secret()
            .secret_id(id)
            .force_delete_without_recovery(true)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(StepError::from_sdk("secretsmanager:DeleteSecret", e)),
        }
    }

    async fn secrets_named(&self, prefix: &str) -> StepResult<Vec<SecretInfo>> {
        let mut found = Vec::new();
        let mut next = None;
        loop {
            let out = self
                .0
                .list_secrets()
                .filters(
                    Filter::builder()
                        .key(FilterNameStringType::Name)
                        .values(prefix)
                        .build(),
                )
                .set_next_token(next)
                .send()
                .await
                .map_err(|e| StepError::from_sdk("secretsmanager:ListSecrets", e))?;
            found.extend(
                out.secret_list
                    .unwrap_or_default()
                    .into_iter()
                    // The name filter matches a prefix of any word of the name; only ours.
                    .filter(|s| s.name.as_deref().is_some_and(|n| n.starts_with(prefix)))
                    .map(|s| SecretInfo {
                        arn: s.arn.unwrap_or_default(),
                        name: s.name.unwrap_or_default(),
                        kms_key_id: s.kms_key_id,
                        tags: tags_of(s.tags),
                    }),
            );
            next = out.next_token;
            if next.is_none() {
                return Ok(found);
            }
        }
    }
}
