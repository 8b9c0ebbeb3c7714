//! RDS adapter: database clones (restore from snapshot, Aurora copy-on-write), their
//! endpoints and their deletion — every RDS call bluegreen makes goes through here.

use aws_sdk_rds::types::{DbCluster, DbInstance, Tag};

use crate::context::Context;
use crate::error::{StepError, StepResult};
use crate::naming::CLONE_PREFIX;

/// Instance class used for a clone when neither the config nor the source names one.
const FALLBACK_INSTANCE_CLASS: &str = "db.r6g.large";

/// Builds an RDS tag.
pub fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

/// Describes a DB instance; `None` if it does not exist.
pub async fn describe_instance(ctx: &Context, identifier: &str) -> StepResult<Option<DbInstance>> {
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

/// Restores `clone` from the newest available snapshot of `source`, in its subnets and
/// security groups, never publicly accessible.
pub async fn restore_instance(
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

/// A copy-on-write clone of Aurora cluster `source` with one writer instance `instance`
/// (each created only if missing).
pub async fn clone_cluster(
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
async fn writer_class(ctx: &Context, cluster: &DbCluster) -> StepResult<String> {
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
            .unwrap_or_else(|| FALLBACK_INSTANCE_CLASS.into())),
        None => Ok(FALLBACK_INSTANCE_CLASS.into()),
    }
}

/// Every DB instance in the account and region, every page.
pub async fn all_instances(ctx: &Context) -> StepResult<Vec<DbInstance>> {
    let mut pages = ctx
        .rds
        .describe_db_instances()
        .into_paginator()
        .items()
        .send();
    let mut all = Vec::new();
    while let Some(instance) = pages.next().await {
        all.push(instance.map_err(|e| StepError::from_sdk("rds:DescribeDBInstances", e))?);
    }
    Ok(all)
}

/// Every DB cluster in the account and region, every page.
pub async fn all_clusters(ctx: &Context) -> StepResult<Vec<DbCluster>> {
    let mut pages = ctx
        .rds
        .describe_db_clusters()
        .into_paginator()
        .items()
        .send();
    let mut all = Vec::new();
    while let Some(cluster) = pages.next().await {
        all.push(cluster.map_err(|e| StepError::from_sdk("rds:DescribeDBClusters", e))?);
    }
    Ok(all)
}

/// Deletes a DB instance without a final snapshot; one already gone or being deleted is fine.
pub async fn delete_instance(ctx: &Context, identifier: &str) -> StepResult<()> {
    match ctx
        .rds
        .delete_db_instance()
        .db_instance_identifier(identifier)
        .skip_final_snapshot(true)
        .delete_automated_backups(true)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_db_instance_not_found_fault()) =>
        {
            Ok(())
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_invalid_db_instance_state_fault()) =>
        {
            // Already being deleted.
            Ok(())
        }
        Err(e) => Err(StepError::from_sdk("rds:DeleteDBInstance", e)),
    }
}

/// Deletes a DB cluster without a final snapshot; one already gone is fine.
pub async fn delete_cluster(ctx: &Context, identifier: &str) -> StepResult<()> {
    match ctx
        .rds
        .delete_db_cluster()
        .db_cluster_identifier(identifier)
        .skip_final_snapshot(true)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_db_cluster_not_found_fault()) =>
        {
            Ok(())
        }
        Err(e) => Err(StepError::from_sdk("rds:DeleteDBCluster", e)),
    }
}

/// Every bluegreen clone in the account (instances and clusters named `bg-…`) with the
/// addresses a client would use to reach it: the guard compares task definitions against these.
pub async fn clone_addresses(ctx: &Context) -> StepResult<Vec<(String, Vec<String>)>> {
    let mut found = Vec::new();
    let mut marker = None;
    loop {
        let out = ctx
            .rds
            .describe_db_instances()
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| StepError::from_sdk("rds:DescribeDBInstances", e))?;
        for instance in out.db_instances.unwrap_or_default() {
            let id = instance.db_instance_identifier.unwrap_or_default();
            if id.starts_with(CLONE_PREFIX) {
                let address = instance.endpoint.and_then(|e| e.address);
                found.push((id, address.into_iter().collect()));
            }
        }
        marker = out.marker;
        if marker.is_none() {
            break;
        }
    }
    let mut marker = None;
    loop {
        let out = ctx
            .rds
            .describe_db_clusters()
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| StepError::from_sdk("rds:DescribeDBClusters", e))?;
        for cluster in out.db_clusters.unwrap_or_default() {
            let id = cluster.db_cluster_identifier.unwrap_or_default();
            if id.starts_with(CLONE_PREFIX) {
                let addresses = [cluster.endpoint, cluster.reader_endpoint]
                    .into_iter()
                    .flatten()
                    .collect();
                found.push((id, addresses));
            }
        }
        marker = out.marker;
        if marker.is_none() {
            break;
        }
    }
    Ok(found)
}

/// The DB cluster, or `None` when there is none with that identifier.
pub async fn describe_cluster(ctx: &Context, identifier: &str) -> StepResult<Option<DbCluster>> {
    let out = ctx
        .rds
        .describe_db_clusters()
        .db_cluster_identifier(identifier)
        .send()
        .await;
    match out {
        Ok(out) => Ok(out.db_clusters.unwrap_or_default().into_iter().next()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_db_cluster_not_found_fault()) =>
        {
            Ok(None)
        }
        Err(e) => Err(StepError::from_sdk("rds:DescribeDBClusters", e)),
    }
}
