//! [`Databases`] over RDS.

use aws_sdk_rds::types::{DbCluster, DbInstance, ServerlessV2ScalingConfiguration, Tag};

use crate::error::{StepError, StepResult};
use crate::ports::compute::Tags;
use crate::ports::databases::{CloneRequest, Databases, DbClusterState, DbInstanceState};

/// The writer class of an Aurora clone when the source's writer cannot be read.
const FALLBACK_INSTANCE_CLASS: &str = "db.r6g.large";

/// RDS through the SDK.
pub struct Rds(pub aws_sdk_rds::Client);

/// A parameter or option group name unless it is one of the engine's defaults
/// (`default.postgres16`, `default:postgres-16`), which AWS uses when none is named.
fn custom(group: Option<String>) -> Option<String> {
    group.filter(|name| !name.starts_with("default.") && !name.starts_with("default:"))
}

fn sdk_tags(tags: &[(String, String)]) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn pairs(tags: Option<Vec<Tag>>) -> Tags {
    tags.unwrap_or_default()
        .into_iter()
        .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
        .collect()
}

fn instance_state(instance: DbInstance) -> DbInstanceState {
    DbInstanceState {
        identifier: instance.db_instance_identifier.unwrap_or_default(),
        status: instance.db_instance_status.unwrap_or_default(),
        endpoint: instance.endpoint.and_then(|e| e.address),
        cluster: instance.db_cluster_identifier,
        tags: pairs(instance.tag_list),
    }
}

fn cluster_state(cluster: DbCluster) -> DbClusterState {
    DbClusterState {
        identifier: cluster.db_cluster_identifier.unwrap_or_default(),
        status: cluster.status.unwrap_or_default(),
        endpoints: [cluster.endpoint, cluster.reader_endpoint]
            .into_iter()
            .flatten()
            .collect(),
        members: cluster
            .db_cluster_members
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| m.db_instance_identifier)
            .collect(),
        tags: pairs(cluster.tag_list),
    }
}

impl Rds {
    async fn sdk_instance(&self, identifier: &str) -> StepResult<Option<DbInstance>> {
        match self
            .0
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

    async fn sdk_cluster(&self, identifier: &str) -> StepResult<Option<DbCluster>> {
        match self
            .0
            .describe_db_clusters()
            .db_cluster_identifier(identifier)
            .send()
            .await
        {
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

    /// An RDS instance restored from `source`'s newest available snapshot, in its subnet
    /// group and security groups, never public.
    async fn restore_instance(
        &self,
        source: &str,
        clone: &str,
        class: Option<String>,
        tags: Vec<Tag>,
    ) -> StepResult<()> {
        if self.sdk_instance(clone).await?.is_some() {
            return Ok(());
        }
        let Some(original) = self.sdk_instance(source).await? else {
            return Err(StepError::ResourceNotFound {
                kind: "DB instance",
                id: source.to_owned(),
            });
        };
        let newest = self.newest_available_snapshot(source).await?;
        let security_groups: Vec<String> = original
            .vpc_security_groups
            .unwrap_or_default()
            .into_iter()
            .filter_map(|g| g.vpc_security_group_id)
            .collect();
        self.0
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
            // AWS gives a restored instance the engine's default parameter group unless one is
            // named: production's settings (timeouts, extensions, pool sizes) would be missing.
            // The engine's own defaults (`default.…`, `default:…`) are what AWS picks anyway.
            .set_db_parameter_group_name(custom(
                original
                    .db_parameter_groups
                    .unwrap_or_default()
                    .into_iter()
                    .find_map(|g| g.db_parameter_group_name),
            ))
            .set_option_group_name(custom(
                original
                    .option_group_memberships
                    .unwrap_or_default()
                    .into_iter()
                    .find_map(|g| g.option_group_name),
            ))
            .publicly_accessible(false)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| StepError::from_sdk("rds:RestoreDBInstanceFromDBSnapshot", e))?;
        Ok(())
    }

    /// The newest available snapshot of instance `source`, over every page: AWS answers 100
    /// snapshots a page, and an instance with daily automated and manual snapshots has more;
    /// the newest can be on any page.
    async fn newest_available_snapshot(&self, source: &str) -> StepResult<String> {
        let mut pages = self
            .0
            .describe_db_snapshots()
            .db_instance_identifier(source)
            .into_paginator()
            .items()
            .send();
        let mut newest: Option<aws_sdk_rds::types::DbSnapshot> = None;
        while let Some(snapshot) = pages.next().await {
            let snapshot =
                snapshot.map_err(|e| StepError::from_sdk("rds:DescribeDBSnapshots", e))?;
            let time = |s: &aws_sdk_rds::types::DbSnapshot| {
                s.snapshot_create_time
                    .map(|t| (t.secs(), t.subsec_nanos()))
                    .unwrap_or_default()
            };
            if snapshot.status.as_deref() == Some("available")
                && newest.as_ref().is_none_or(|n| time(&snapshot) >= time(n))
            {
                newest = Some(snapshot);
            }
        }
        newest
            .and_then(|s| s.db_snapshot_identifier)
            .ok_or_else(|| {
                StepError::SyncFailed(format!("no available snapshot of {source} to restore"))
            })
    }

    /// An Aurora copy-on-write clone of `source` with one writer instance (what exists of it
    /// is kept).
    async fn clone_cluster(
        &self,
        source: &str,
        clone: &str,
        instance: &str,
        class: Option<String>,
        tags: Vec<Tag>,
    ) -> StepResult<()> {
        let original =
            self.sdk_cluster(source)
                .await?
                .ok_or_else(|| StepError::ResourceNotFound {
                    kind: "DB cluster",
                    id: source.to_owned(),
                })?;
        if self.sdk_cluster(clone).await?.is_none() {
            // AWS gives a restored cluster the VPC's default security group (which tasks
            // usually cannot reach), the engine's default parameter group and no Serverless v2
            // scaling (a db.serverless writer cannot be added) unless they are named: the
            // source's are.
            let security_groups: Vec<String> = original
                .vpc_security_groups
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|g| g.vpc_security_group_id)
                .collect();
            let scaling = original
                .serverless_v2_scaling_configuration
                .as_ref()
                .map(|s| {
                    ServerlessV2ScalingConfiguration::builder()
                        .set_min_capacity(s.min_capacity)
                        .set_max_capacity(s.max_capacity)
                        .build()
                });
            self.0
                .restore_db_cluster_to_point_in_time()
                .db_cluster_identifier(clone)
                .source_db_cluster_identifier(source)
                .restore_type("copy-on-write")
                .use_latest_restorable_time(true)
                .set_db_subnet_group_name(original.db_subnet_group.clone())
                .set_vpc_security_group_ids(
                    (!security_groups.is_empty()).then_some(security_groups),
                )
                .set_db_cluster_parameter_group_name(custom(
                    original.db_cluster_parameter_group.clone(),
                ))
                .set_serverless_v2_scaling_configuration(scaling)
                .set_tags(Some(tags.clone()))
                .send()
                .await
                .map_err(|e| StepError::from_sdk("rds:RestoreDBClusterToPointInTime", e))?;
        }
        if self.sdk_instance(instance).await?.is_none() {
            // Boxed: the clone's futures sit inside every step's; kept off the stack.
            Box::pin(self.add_writer(&original, clone, instance, class, tags)).await?;
        }
        Ok(())
    }

    /// A copy-on-write clone has storage but no compute: one writer instance, like the
    /// source's writer (its class, and its instance parameter group: AWS would otherwise give
    /// the engine's default).
    async fn add_writer(
        &self,
        original: &DbCluster,
        clone: &str,
        instance: &str,
        class: Option<String>,
        tags: Vec<Tag>,
    ) -> StepResult<()> {
        let writer = self.writer(original).await?;
        let class = class
            .or_else(|| writer.as_ref().and_then(|w| w.db_instance_class.clone()))
            .unwrap_or_else(|| FALLBACK_INSTANCE_CLASS.into());
        let parameter_group = writer
            .and_then(|w| w.db_parameter_groups)
            .unwrap_or_default()
            .into_iter()
            .find_map(|g| g.db_parameter_group_name);
        self.0
            .create_db_instance()
            .db_instance_identifier(instance)
            .db_cluster_identifier(clone)
            .engine(
                original
                    .engine
                    .clone()
                    .unwrap_or_else(|| "aurora-postgresql".into()),
            )
            .db_instance_class(class)
            .set_db_parameter_group_name(custom(parameter_group))
            .publicly_accessible(false)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| StepError::from_sdk("rds:CreateDBInstance", e))?;
        Ok(())
    }

    /// `cluster`'s writer instance, if it has one that can be read.
    async fn writer(&self, cluster: &DbCluster) -> StepResult<Option<DbInstance>> {
        let writer = cluster
            .db_cluster_members
            .as_deref()
            .unwrap_or_default()
            .iter()
            .find(|m| m.is_cluster_writer == Some(true))
            .and_then(|m| m.db_instance_identifier.clone());
        match writer {
            Some(id) => self.sdk_instance(&id).await,
            None => Ok(None),
        }
    }
}

#[async_trait::async_trait]
impl Databases for Rds {
    async fn describe_instance(&self, identifier: &str) -> StepResult<Option<DbInstanceState>> {
        Ok(self.sdk_instance(identifier).await?.map(instance_state))
    }

    async fn describe_cluster(&self, identifier: &str) -> StepResult<Option<DbClusterState>> {
        Ok(self.sdk_cluster(identifier).await?.map(cluster_state))
    }

    async fn create_clone(
        &self,
        request: &CloneRequest,
        tags: &[(String, String)],
    ) -> StepResult<()> {
        match request {
            CloneRequest::Snapshot {
                source,
                clone,
                class,
            } => {
                self.restore_instance(source, clone, class.clone(), sdk_tags(tags))
                    .await
            }
            CloneRequest::CopyOnWrite {
                source,
                clone,
                instance,
                class,
            } => {
                self.clone_cluster(source, clone, instance, class.clone(), sdk_tags(tags))
                    .await
            }
        }
    }

    async fn all_instances(&self) -> StepResult<Vec<DbInstanceState>> {
        let mut pages = self
            .0
            .describe_db_instances()
            .into_paginator()
            .items()
            .send();
        let mut all = Vec::new();
        while let Some(instance) = pages.next().await {
            all.push(instance_state(instance.map_err(|e| {
                StepError::from_sdk("rds:DescribeDBInstances", e)
            })?));
        }
        Ok(all)
    }

    async fn all_clusters(&self) -> StepResult<Vec<DbClusterState>> {
        let mut pages = self
            .0
            .describe_db_clusters()
            .into_paginator()
            .items()
            .send();
        let mut all = Vec::new();
        while let Some(cluster) = pages.next().await {
            all.push(cluster_state(
                cluster.map_err(|e| StepError::from_sdk("rds:DescribeDBClusters", e))?,
            ));
        }
        Ok(all)
    }

    async fn delete_instance(&self, identifier: &str) -> StepResult<()> {
        match self
            .0
            .delete_db_instance()
            .db_instance_identifier(identifier)
            .skip_final_snapshot(true)
            .delete_automated_backups(true)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error().is_some_and(|s| {
                    // Gone, or already being deleted.
                    s.is_db_instance_not_found_fault() || s.is_invalid_db_instance_state_fault()
                }) =>
            {
                Ok(())
            }
            Err(e) => Err(StepError::from_sdk("rds:DeleteDBInstance", e)),
        }
    }

    async fn delete_cluster(&self, identifier: &str) -> StepResult<()> {
        match self
            .0
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
}
