//! Sync DB: give pre-prod (or the migration rehearsal) a fresh clone of production.
//!
//! Runs before launch, because an isolated pre-prod's task definition carries the clone's
//! endpoint. Strategies: `none` and `shared` without rehearsal do nothing; `isolated` makes a
//! `preprod` clone; `shared` with rehearsal makes a `rehearsal` clone. RDS instances are
//! restored from their newest available snapshot; Aurora clusters get a copy-on-write clone.
//! Clones are named from the deployment (so a retry finds them) and tagged with the deployment
//! and expiry (so abort, finish and scheduled teardown remove them).

use aws_sdk_rds::types::Tag;

use crate::config::{DbSource, DbStrategy};
use crate::context::Context;
use crate::error::{StepError, StepResult};
use crate::naming::{self, TAG_DEPLOYMENT, TAG_EXPIRES, TAG_MANAGED};
use crate::poll::{CheckInput, Poll, Started, pending};
use crate::record::{Change, DbClone, Deployment, Records};

use super::{DeploymentRef, load_active, record_done, record_failed, start_once};

const STEP: &str = "sync_db";

/// The clone this deployment needs, if any: `(purpose, source)`.
fn wanted(deployment: &Deployment) -> Option<(&'static str, &DbSource)> {
    let db = &deployment.config.database;
    let source = db.source.as_ref()?;
    match db.strategy {
        DbStrategy::Isolated => Some(("preprod", source)),
        DbStrategy::Shared if db.rehearsal => Some(("rehearsal", source)),
        _ => None,
    }
}

/// Starts creating the clone (once).
pub async fn start(ctx: &Context, input: &DeploymentRef) -> StepResult<Started> {
    let deployment = load_active(ctx, &input.deployment_id).await?;
    let timeout = deployment.config.database.clone_timeout_seconds;
    let Some((purpose, source)) = wanted(&deployment) else {
        return start_once(ctx, &deployment, STEP, timeout, 0, Change::new()).await;
    };
    let identifier =
        naming::clone_identifier(&deployment.service, &deployment.deployment_id, purpose);
    let (kind, instance_id) = match source {
        DbSource::RdsInstance { .. } => ("rds_instance", identifier.clone()),
        DbSource::AuroraCluster { .. } => ("aurora_cluster", format!("{identifier}-1")),
    };
    if !deployment.clones.iter().any(|c| c.identifier == identifier) {
        // Recorded before creation, so abort removes a clone whose creation was interrupted.
        let mut clones = deployment.clones.clone();
        clones.push(DbClone {
            kind: kind.into(),
            identifier: identifier.clone(),
            purpose: purpose.into(),
            endpoint: None,
        });
        Records::new(ctx)
            .update(
                &deployment.deployment_id,
                Change::new().set("clones", &clones),
            )
            .await?;
    }
    let tags = vec![
        rds_tag(TAG_MANAGED, "true"),
        rds_tag(TAG_DEPLOYMENT, &deployment.deployment_id),
        rds_tag(TAG_EXPIRES, &deployment.expires_at.to_rfc3339()),
    ];
    let class = deployment.config.database.clone_instance_class.clone();
    match source {
        DbSource::RdsInstance {
            identifier: source_id,
        } => {
            if describe_instance(ctx, &instance_id).await?.is_none() {
                restore_instance(ctx, source_id, &identifier, class, tags).await?;
            }
        }
        DbSource::AuroraCluster {
            identifier: source_id,
        } => {
            clone_cluster(ctx, source_id, &identifier, &instance_id, class, tags).await?;
        }
    }
    start_once(ctx, &deployment, STEP, timeout, 30, Change::new()).await
}

/// Checks whether the clone is available and records its endpoint.
pub async fn check(ctx: &Context, input: &CheckInput) -> StepResult<Poll> {
    let deployment = load_active(ctx, &input.deployment_id).await?;
    let Some((purpose, source)) = wanted(&deployment) else {
        let detail = format!(
            "database strategy {:?}: nothing to clone",
            deployment.config.database.strategy
        );
        record_done(ctx, &deployment, STEP, &detail, Change::new()).await?;
        return Ok(Poll::Done { detail });
    };
    let identifier =
        naming::clone_identifier(&deployment.service, &deployment.deployment_id, purpose);
    let instance_id = match source {
        DbSource::RdsInstance { .. } => identifier.clone(),
        DbSource::AuroraCluster { .. } => format!("{identifier}-1"),
    };
    let now = ctx.now();
    let instance = describe_instance(ctx, &instance_id).await?;
    let status = instance
        .as_ref()
        .and_then(|i| i.db_instance_status.clone())
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
        return Err(record_failed(ctx, &deployment, STEP, err, Change::new()).await);
    }
    if status == "available" {
        let endpoint = instance
            .and_then(|i| i.endpoint)
            .and_then(|e| e.address)
            .unwrap_or_default();
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
            STEP,
            &detail,
            Change::new().set("clones", &clones),
        )
        .await?;
        return Ok(Poll::Done { detail });
    }
    if now >= input.deadline {
        let err = StepError::SyncFailed(format!(
            "clone {instance_id} still {status} at the deadline"
        ));
        return Err(record_failed(ctx, &deployment, STEP, err, Change::new()).await);
    }
    Ok(pending(
        input,
        now,
        format!("clone {instance_id} is {status}"),
    ))
}

fn rds_tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

/// Describes a DB instance; `None` if it does not exist.
pub(crate) async fn describe_instance(
    ctx: &Context,
    identifier: &str,
) -> StepResult<Option<aws_sdk_rds::types::DbInstance>> {
    match ctx
        .rds
        .describe_db_instances()
        .db_instance_identifier(identifier)
        .send()
        .await
    {
        Ok(out) => Ok(out.db_instances.unwrap_or_default().into_iter().next()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_db_instance_not_found_fault()) =>
        {
            Ok(None)
        }
        Err(e) => Err(StepError::from_sdk("rds:DescribeDBInstances", e)),
    }
}

async fn restore_instance(
    ctx: &Context,
    source: &str,
    clone: &str,
    class: Option<String>,
    tags: Vec<Tag>,
) -> StepResult<()> {
    let Some(original) = describe_instance(ctx, source).await? else {
        return Err(StepError::ResourceNotFound {
            kind: "DB instance",
            id: source.to_owned(),
        });
    };
    let snapshots = ctx
        .rds
        .describe_db_snapshots()
        .db_instance_identifier(source)
        .send()
        .await
        .map_err(|e| StepError::from_sdk("rds:DescribeDBSnapshots", e))?;
    let newest = snapshots
        .db_snapshots
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s.status.as_deref() == Some("available"))
        .max_by_key(|s| s.snapshot_create_time.map(|t| t.secs()).unwrap_or(0))
        .and_then(|s| s.db_snapshot_identifier)
        .ok_or_else(|| {
            StepError::SyncFailed(format!("no available snapshot of {source} to restore"))
        })?;
    let security_groups: Vec<String> = original
        .vpc_security_groups
        .unwrap_or_default()
        .into_iter()
        .filter_map(|g| g.vpc_security_group_id)
        .collect();
    ctx.rds
        .restore_db_instance_from_db_snapshot()
        .db_instance_identifier(clone)
        .db_snapshot_identifier(newest)
        .set_db_instance_class(class.or(original.db_instance_class))
        .set_db_subnet_group_name(
            original
                .db_subnet_group
                .and_then(|g| g.db_subnet_group_name),
        )
        .set_vpc_security_group_ids((!security_groups.is_empty()).then_some(security_groups))
        .publicly_accessible(false)
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(|e| StepError::from_sdk("rds:RestoreDBInstanceFromDBSnapshot", e))?;
    Ok(())
}

async fn clone_cluster(
    ctx: &Context,
    source: &str,
    clone: &str,
    instance: &str,
    class: Option<String>,
    tags: Vec<Tag>,
) -> StepResult<()> {
    let clusters = ctx
        .rds
        .describe_db_clusters()
        .db_cluster_identifier(source)
        .send()
        .await
        .map_err(|e| match e.as_service_error() {
            Some(s) if s.is_db_cluster_not_found_fault() => StepError::ResourceNotFound {
                kind: "DB cluster",
                id: source.to_owned(),
            },
            _ => StepError::from_sdk("rds:DescribeDBClusters", e),
        })?;
    let original = clusters
        .db_clusters
        .unwrap_or_default()
        .into_iter()
        .next()
        .ok_or_else(|| StepError::ResourceNotFound {
            kind: "DB cluster",
            id: source.to_owned(),
        })?;
    let exists = ctx
        .rds
        .describe_db_clusters()
        .db_cluster_identifier(clone)
        .send()
        .await
        .is_ok();
    if !exists {
        ctx.rds
            .restore_db_cluster_to_point_in_time()
            .db_cluster_identifier(clone)
            .source_db_cluster_identifier(source)
            .restore_type("copy-on-write")
            .use_latest_restorable_time(true)
            .set_db_subnet_group_name(original.db_subnet_group.clone())
            .set_tags(Some(tags.clone()))
            .send()
            .await
            .map_err(|e| StepError::from_sdk("rds:RestoreDBClusterToPointInTime", e))?;
    }
    if describe_instance(ctx, instance).await?.is_none() {
        // A copy-on-write clone has storage but no compute: add one writer instance.
        let class = match class {
            Some(c) => c,
            None => writer_class(ctx, &original).await?,
        };
        ctx.rds
            .create_db_instance()
            .db_instance_identifier(instance)
            .db_cluster_identifier(clone)
            .engine(
                original
                    .engine
                    .unwrap_or_else(|| "aurora-postgresql".into()),
            )
            .db_instance_class(class)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| StepError::from_sdk("rds:CreateDBInstance", e))?;
    }
    Ok(())
}

/// The instance class of the source cluster's writer.
async fn writer_class(
    ctx: &Context,
    cluster: &aws_sdk_rds::types::DbCluster,
) -> StepResult<String> {
    let writer = cluster
        .db_cluster_members
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|m| m.is_cluster_writer == Some(true))
        .and_then(|m| m.db_instance_identifier.clone());
    match writer {
        Some(id) => Ok(describe_instance(ctx, &id)
            .await?
            .and_then(|i| i.db_instance_class)
            .unwrap_or_else(|| "db.r6g.large".into())),
        None => Ok("db.r6g.large".into()),
    }
}
