//! `database.secret`: the per-deployment secret that points pre-prod (or the rehearsal) at its
//! clone when the app reads its database from a Secrets Manager secret.
//!
//! ECS cannot override a `secrets` entry for one task, and a task definition must never hold
//! a password in plain text, so bluegreen writes `bluegreen/clone/<clone>`: production's
//! secret value with only its host pointed at the clone (see [`crate::endpoint`]), encrypted
//! with production's key, tagged with the deployment; the revision that runs on the clone
//! reads it. The value is never logged or recorded. It is deleted with its clone
//! ([`crate::ending`], and scheduled teardown for one an ending missed).

use crate::context::Context;
use crate::endpoint;
use crate::error::{StepError, StepResult};
use crate::naming::{TAG_DEPLOYMENT, TAG_EXPIRES, TAG_MANAGED};
use crate::ports::compute::TaskDefinitionState;
use crate::record::{DbClone, Deployment};
use crate::secret_reference::{SecretReference, clone_secret_name};

/// `(container, secrets entry, valueFrom)` for every container of `base` that reads the
/// database secret, pointed at `clone`'s own secret — written first if it is missing or holds
/// another value (a retry finds it by name and writes nothing new).
pub async fn ensure(
    ctx: &Context,
    deployment: &Deployment,
    base: &TaskDefinitionState,
    clone: &DbClone,
) -> StepResult<Vec<(String, String, String)>> {
    let setting = deployment.config.database.setting();
    let invalid =
        |why: String| StepError::ConfigInvalid(vec![format!("database.secret: {setting}: {why}")]);
    let readers: Vec<(String, String)> = base
        .containers
        .iter()
        .filter_map(|c| Some((c.name.clone(), base.secret_from(&c.name, setting)?)))
        .collect();
    let Some((_, value_from)) = readers.first() else {
        return Err(invalid(format!("no container of {} reads it", base.arn)));
    };
    if let Some((other, _)) = readers.iter().find(|(_, from)| from != value_from) {
        return Err(invalid(format!(
            "containers {} and {other} read it from different secrets",
            readers[0].0
        )));
    }
    let reference = SecretReference::parse(value_from).map_err(invalid)?;
    let host = clone.endpoint.as_deref().ok_or_else(|| {
        StepError::SyncFailed(format!("clone {} has no endpoint yet", clone.identifier))
    })?;
    let secrets = &ctx.ports.secrets;
    let source = secrets
        .describe_secret(&reference.secret_id)
        .await?
        .ok_or_else(|| StepError::ResourceNotFound {
            kind: "secret",
            id: reference.secret_id.clone(),
        })?;
    let current = secrets
        .secret_string_at(
            &reference.secret_id,
            reference.version_stage.as_deref(),
            reference.version_id.as_deref(),
        )
        .await?
        .ok_or_else(|| invalid("the secret holds binary data, not text".into()))?;
    let value = endpoint::repointed_secret(&current, reference.json_key.as_deref(), host)
        .map_err(invalid)?;
    let arn = write(ctx, deployment, clone, &value, source.kms_key_id.as_deref()).await?;
    let value_from = reference.pointing_at(&arn);
    Ok(readers
        .into_iter()
        .map(|(container, _)| (container, setting.to_owned(), value_from.clone()))
        .collect())
}

/// Makes `clone`'s secret hold `value`; its ARN. A secret of that name that another
/// deployment wrote is never overwritten.
async fn write(
    ctx: &Context,
    deployment: &Deployment,
    clone: &DbClone,
    value: &str,
    kms_key_id: Option<&str>,
) -> StepResult<String> {
    let secrets = &ctx.ports.secrets;
    let name = clone_secret_name(&clone.identifier);
    if let Some(existing) = secrets.describe_secret(&name).await? {
        let owner = existing
            .tags
            .iter()
            .find(|(k, _)| k == TAG_DEPLOYMENT)
            .map(|(_, v)| v.as_str());
        if owner != Some(deployment.deployment_id.as_str()) {
            return Err(StepError::SyncFailed(format!(
                "secret {name} exists and is not this deployment's (tagged {}); delete it or \
                 let scheduled teardown remove it",
                owner.unwrap_or("with no deployment")
            )));
        }
        if secrets.secret_string(&existing.arn).await?.as_deref() != Some(value) {
            secrets.put_secret_value(&existing.arn, value).await?;
        }
        return Ok(existing.arn);
    }
    // An abort that already deleted the deployment's clones must not get a secret back.
    crate::fence::guard(ctx, &deployment.deployment_id, "writing the clone's secret").await?;
    let tags = [
        (TAG_MANAGED, "true"),
        (TAG_DEPLOYMENT, deployment.deployment_id.as_str()),
        (TAG_EXPIRES, &deployment.expires_at.to_rfc3339()),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    secrets.create_secret(&name, value, kms_key_id, &tags).await
}

/// Deletes `clone`'s secret, if there is one; whether there was.
pub async fn delete(ctx: &Context, clone: &DbClone) -> StepResult<bool> {
    ctx.ports
        .secrets
        .delete_secret(&clone_secret_name(&clone.identifier))
        .await
}
