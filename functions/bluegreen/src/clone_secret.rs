//! `database.secret`: the per-deployment secret that points pre-prod (or the rehearsal) at its
//! clone when the app reads its database from a Secrets Manager secret.
//!
//! ECS cannot override a `secrets` entry for one task, and a task definition must never hold
//! a password in plain text, so bluegreen writes `bluegreen/clone/<service>/<clone>`:
//! production's secret value with only its host pointed at the clone (see
//! [`crate::endpoint`]), encrypted with production's key, tagged with the deployment; the
//! revision that runs on the clone reads it — every entry of every container that read
//! production's secret, whatever its name or JSON key. The value is never logged or
//! recorded. It is deleted with its clone ([`crate::ending`], and scheduled teardown for one
//! an ending missed).

use crate::config::DbSource;
use crate::context::Context;
use crate::endpoint;
use crate::error::{StepError, StepResult};
use crate::naming::{TAG_DEPLOYMENT, TAG_EXPIRES, TAG_MANAGED};
use crate::ports::compute::TaskDefinitionState;
use crate::ports::secrets::SecretInfo;
use crate::record::{DbClone, Deployment};
use crate::secret_reference::{SecretReference, clone_secret_name};

/// `(container, secrets entry, valueFrom)` for every entry of `base` that reads the
/// production secret the database setting names, pointed at `clone`'s own secret (the same
/// JSON key) — written first if it is missing or holds another value (a retry finds it by
/// name and writes nothing new).
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
    let entries = entries_reading(base, &reference).map_err(invalid)?;
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
    let production = source_endpoints(ctx, deployment).await?;
    let value =
        endpoint::repointed_secret(&current, reference.json_key.as_deref(), host, &production)
            .map_err(invalid)?;
    let arn = write(ctx, deployment, clone, &value, source.kms_key_id.as_deref()).await?;
    Ok(entries
        .into_iter()
        .map(|(container, name, entry)| (container, name, entry.pointing_at(&arn)))
        .collect())
}

/// The addresses of the production database the clone is made from (an instance's endpoint;
/// a cluster's writer and reader endpoints): none of them may stay in the clone's copy.
async fn source_endpoints(ctx: &Context, deployment: &Deployment) -> StepResult<Vec<String>> {
    let databases = &ctx.ports.databases;
    Ok(match &deployment.config.database.source {
        Some(DbSource::RdsInstance { identifier }) => databases
            .describe_instance(identifier)
            .await?
            .and_then(|i| i.endpoint)
            .into_iter()
            .collect(),
        Some(DbSource::AuroraCluster { identifier }) => databases
            .describe_cluster(identifier)
            .await?
            .map(|c| c.endpoints)
            .unwrap_or_default(),
        None => Vec::new(),
    })
}

/// Every `secrets` entry of `base` that reads `production`'s secret — under the setting's name
/// or any other (a worker's `DB_CREDENTIALS`, a `…:password::` key): all of them read the
/// clone's copy, which holds the same fields with the host moved. An entry pinned to another
/// version than the setting's cannot be: refused.
fn entries_reading(
    base: &TaskDefinitionState,
    production: &SecretReference,
) -> Result<Vec<(String, String, SecretReference)>, String> {
    let mut entries = Vec::new();
    for container in &base.containers {
        for (name, from) in &container.secrets {
            if production.named_through_ssm(from) {
                return Err(format!(
                    "container {} reads the same secret through SSM as {name}; name it by its \
                     ARN, which bluegreen can re-point",
                    container.name
                ));
            }
            let Ok(entry) = SecretReference::parse(from) else {
                continue; // an SSM parameter or another kind: not this secret
            };
            if !entry.same_secret(production) {
                continue;
            }
            if (&entry.version_stage, &entry.version_id)
                != (&production.version_stage, &production.version_id)
            {
                return Err(format!(
                    "container {} reads another version of the same secret as {name}; \
                     bluegreen copies one version for the clone",
                    container.name
                ));
            }
            entries.push((container.name.clone(), name.clone(), entry));
        }
    }
    Ok(entries)
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
    let name = clone_secret_name(&deployment.service, &clone.identifier);
    if let Some(existing) = secrets.describe_secret(&name).await? {
        return overwrite(ctx, deployment, existing, value).await;
    }
    // An abort that already deleted the deployment's clones must not get a secret back.
    crate::fence::guard(ctx, &deployment.deployment_id, "writing the clone's secret").await?;
    let tags = [
        (TAG_MANAGED, "true"),
        (TAG_DEPLOYMENT, deployment.deployment_id.as_str()),
        (TAG_EXPIRES, &deployment.expires_at.to_rfc3339()),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let arn = match secrets.create_secret(&name, value, kms_key_id, &tags).await {
        Ok(arn) => arn,
        // An earlier attempt created it and its answer was lost, and the look above did not
        // see it yet (Secrets Manager reads are eventually consistent).
        Err(StepError::Aws { code, .. }) if code == "ResourceExistsException" => {
            match secrets.describe_secret(&name).await? {
                Some(existing) => return overwrite(ctx, deployment, existing, value).await,
                None => {
                    return Err(StepError::AwsTransient {
                        operation: "secretsmanager:CreateSecret",
                        message: format!("{name} exists but cannot be read yet"),
                    });
                }
            }
        }
        Err(e) => return Err(e),
    };
    // An abort may have cleaned up between the look at the fence and the write: the copy of
    // production's credentials must not outlive it. Only a refusal deletes it — any other
    // error (a throttled read) leaves it for the retry, which finds it by name.
    match crate::fence::guard(ctx, &deployment.deployment_id, "writing the clone's secret").await {
        Err(refused @ (StepError::Fenced { .. } | StepError::DeploymentEnded { .. })) => {
            secrets.delete_secret(&arn).await?;
            Err(refused)
        }
        Err(other) => Err(other),
        Ok(()) => Ok(arn),
    }
}

/// `existing` (this deployment's, by its tag) made to hold `value`.
async fn overwrite(
    ctx: &Context,
    deployment: &Deployment,
    existing: SecretInfo,
    value: &str,
) -> StepResult<String> {
    let owner = existing
        .tags
        .iter()
        .find(|(k, _)| k == TAG_DEPLOYMENT)
        .map(|(_, v)| v.as_str());
    if owner != Some(deployment.deployment_id.as_str()) {
        return Err(StepError::SyncFailed(format!(
            "secret {} exists and is not this deployment's (tagged {}); delete it or let \
             scheduled teardown remove it",
            existing.name,
            owner.unwrap_or("with no deployment")
        )));
    }
    let secrets = &ctx.ports.secrets;
    if secrets.secret_string(&existing.arn).await?.as_deref() != Some(value) {
        secrets.put_secret_value(&existing.arn, value).await?;
    }
    Ok(existing.arn)
}

/// Deletes `clone`'s secret (of a deployment of `service`), if there is one; whether there
/// was. It is looked up first: IAM lets bluegreen delete only secrets tagged as its own, and a
/// name that does not exist has no tags (AWS would answer AccessDenied, not "not found").
pub async fn delete(ctx: &Context, service: &str, clone: &DbClone) -> StepResult<bool> {
    let secrets = &ctx.ports.secrets;
    match secrets
        .describe_secret(&clone_secret_name(service, &clone.identifier))
        .await?
    {
        Some(existing) => secrets.delete_secret(&existing.arn).await,
        None => Ok(false),
    }
}
