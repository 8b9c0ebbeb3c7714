//! Sync DB: give pre-prod (or the migration rehearsal) a fresh clone of production.
//!
//! Runs before launch, because an isolated pre-prod's task definition carries the clone's
//! endpoint. Strategies: `none` and `shared` without rehearsal do nothing; `isolated` makes a
//! `preprod` clone; `shared` with rehearsal makes a `rehearsal` clone. RDS instances are
//! restored from their newest available snapshot; Aurora clusters get a copy-on-write clone.
//! Clones are named from the deployment (so a retry finds them) and tagged with the deployment
//! and expiry (so abort, finish and scheduled teardown remove them).

use crate::looks::Looks;
use crate::config::DbSource;
use crate::context::Context;
use crate::db_plan;
use crate::error::{StepError, StepResult};
use crate::naming::{self, TAG_DEPLOYMENT, TAG_EXPIRES, TAG_MANAGED};
use crate::poll::{CheckInput, Poll, Started, pending};
use crate::ports::databases::CloneRequest;
use crate::record::{Change, CloneKind, ClonePurpose, DbClone, Deployment, Records};

use crate::step_table::{OnFailure, Shape, Step};
use super::{
    DeploymentRef, load_active, record_done, record_failed, start_once, start_with_nothing_to_do,
};

/// This step's row in the step registry (see [`crate::step_table::Step`]).
pub const STEP: Step = Step {
    name: "sync_db",
    state: "SyncDb",
    function: "SyncDb",
    timeout_seconds: 60,
    label: "Sync database",
    shape: Shape::Polling,
    on_failure: OnFailure::Abort,
    raises: &["SyncFailed", "ResourceNotFound"],
};
const NAME: &str = STEP.name;

/// How this step's check looks (see [`crate::looks`]). RDS reports a clone available after minutes; its Describe calls have low account-wide
/// rate limits, so every 2 s (about a second late on average).
pub const LOOKS: Looks = Looks {
    every_seconds: 2,
    window_seconds: 30,
    look_bound_seconds: 20,
    woken_by: &[],
};

/// Seconds before the first look at a clone being created (RDS takes minutes).
const FIRST_LOOK_SECONDS: u64 = 30;

/// The clone this deployment needs, if any: `(purpose, source)`.
fn wanted(deployment: &Deployment) -> Option<(ClonePurpose, &DbSource)> {
    let purpose = db_plan::plan(&deployment.config).clone?;
    Some((purpose, deployment.config.database.source.as_ref()?))
}

/// The clone's identifier, what it is made from, and the instance that serves it.
fn clone_of(deployment: &Deployment, purpose: ClonePurpose, source: &DbSource) -> DbClone {
    let identifier = naming::clone_identifier(
        &deployment.service,
        &deployment.deployment_id,
        purpose.as_str(),
    );
    let kind = match source {
        DbSource::RdsInstance { .. } => CloneKind::RdsInstance,
        DbSource::AuroraCluster { .. } => CloneKind::AuroraCluster,
    };
    DbClone {
        kind,
        identifier,
        purpose,
        endpoint: None,
    }
}

/// Starts creating the clone (once).
pub async fn start(ctx: &Context, input: &DeploymentRef) -> StepResult<Started> {
    let deployment = load_active(ctx, &input.deployment_id).await?;
    let timeout = deployment.config.database.clone_timeout_seconds;
    let Some((purpose, source)) = wanted(&deployment) else {
        return start_with_nothing_to_do(ctx, &deployment, NAME).await;
    };
    let clone = clone_of(&deployment, purpose, source);
    let identifier = clone.identifier.clone();
    let clone_id = identifier.clone();
    let instance_id = clone.instance_identifier();
    if !deployment.clones.iter().any(|c| c.identifier == identifier) {
        // Recorded before creation, so abort removes a clone whose creation was interrupted.
        let mut clones = deployment.clones.clone();
        clones.push(clone);
        Records::new(ctx)
            .update(&deployment.deployment_id, Change::new().clones(&clones))
            .await?;
    }
    let tags = [
        (TAG_MANAGED, "true"),
        (TAG_DEPLOYMENT, deployment.deployment_id.as_str()),
        (TAG_EXPIRES, &deployment.expires_at.to_rfc3339()),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let class = deployment.config.database.clone_instance_class.clone();
    let request = match source {
        DbSource::RdsInstance {
            identifier: source_id,
        } => CloneRequest::Snapshot {
            source: source_id.clone(),
            clone: identifier,
            class,
        },
        DbSource::AuroraCluster {
            identifier: source_id,
        } => CloneRequest::CopyOnWrite {
            source: source_id.clone(),
            clone: identifier,
            instance: instance_id,
            class,
        },
    };
    crate::fence::guard(ctx, &deployment.deployment_id, "creating a clone").await?;
    ctx.ports
        .databases
        .create_clone(&request, &tags)
        .await
        .map_err(|e| refused_clone(e, &clone_id, source))?;
    start_once(
        ctx,
        &deployment,
        NAME,
        timeout,
        FIRST_LOOK_SECONDS,
        Change::new(),
    )
    .await
}

/// A clone AWS refused to create (a class the engine does not offer, a parameter group of
/// another family, a quota): `SyncFailed` naming the clone, its source and what AWS said, so
/// the record and the notice say why. Transient errors stay retryable.
fn refused_clone(err: StepError, clone: &str, source: &DbSource) -> StepError {
    let source = match source {
        DbSource::RdsInstance { identifier } => format!("RDS instance {identifier}"),
        DbSource::AuroraCluster { identifier } => format!("Aurora cluster {identifier}"),
    };
    match err {
        StepError::Aws {
            operation,
            code,
            message,
        } => StepError::SyncFailed(format!(
            "AWS refused to create clone {clone} of {source}: {operation}: {code}: {message}"
        )),
        other => other,
    }
}

/// Checks whether the clone is available and records its endpoint.
pub async fn check(ctx: &Context, input: &CheckInput) -> StepResult<Poll> {
    let deployment = load_active(ctx, &input.deployment_id).await?;
    let Some((purpose, source)) = wanted(&deployment) else {
        let detail = format!(
            "database strategy {:?}: nothing to clone",
            deployment.config.database.strategy
        );
        record_done(ctx, &deployment, NAME, &detail, Change::new()).await?;
        return Ok(Poll::Done { detail });
    };
    let clone = clone_of(&deployment, purpose, source);
    let identifier = clone.identifier.clone();
    let instance_id = clone.instance_identifier();
    let now = ctx.now();
    let instance = ctx.ports.databases.describe_instance(&instance_id).await?;
    let status = instance
        .as_ref()
        .map(|i| i.status.clone())
        .unwrap_or_else(|| "missing".into());
    if [
        "failed",
        "incompatible-restore",
        "incompatible-parameters",
        "storage-full",
        "missing",
    ]
    .contains(&status.as_str())
    {
        let err = StepError::SyncFailed(format!("clone {instance_id} is {status}"));
        return Err(record_failed(ctx, &deployment, NAME, err, Change::new()).await);
    }
    if status == "available" {
        let endpoint = instance.and_then(|i| i.endpoint).unwrap_or_default();
        let clones: Vec<DbClone> = deployment
            .clones
            .iter()
            .cloned()
            .map(|mut c| {
                if c.identifier == identifier {
                    c.endpoint = Some(endpoint.clone());
                }
                c
            })
            .collect();
        let detail = format!("{purpose} clone {identifier} available at {endpoint}");
        record_done(
            ctx,
            &deployment,
            NAME,
            &detail,
            Change::new().clones(&clones),
        )
        .await?;
        return Ok(Poll::Done { detail });
    }
    if now >= input.deadline {
        let err = StepError::SyncFailed(format!(
            "clone {instance_id} still {status} at the deadline"
        ));
        return Err(record_failed(ctx, &deployment, NAME, err, Change::new()).await);
    }
    Ok(pending(
        input,
        now,
        format!("clone {instance_id} is {status}"),
    ))
}
