//! RDS in memory: instances, clusters and their snapshots; a clone is `creating` until the
//! simulated AWS makes it available.

use std::collections::BTreeMap;

use bluegreen::StepError;
use bluegreen::ports::Databases;
use bluegreen::ports::databases::{CloneRequest, DbClusterState, DbInstanceState};

use super::{MemoryAws, not_found};

/// RDS's state.
#[derive(Debug, Clone, Default)]
pub struct RdsState {
    /// Instances by identifier.
    pub instances: BTreeMap<String, DbInstanceState>,
    /// Clusters by identifier.
    pub clusters: BTreeMap<String, DbClusterState>,
    /// Available snapshots by source instance.
    pub snapshots: BTreeMap<String, Vec<String>>,
}

impl RdsState {
    /// Every `creating` instance and cluster becomes available, with an endpoint (RDS's own
    /// work, played by a simulator); `deleting` ones are gone.
    pub fn settle(&mut self) {
        self.instances.retain(|_, i| i.status != "deleting");
        self.clusters.retain(|_, c| c.status != "deleting");
        for instance in self.instances.values_mut() {
            if instance.status == "creating" {
                instance.status = "available".into();
                instance.endpoint = Some(format!("{}.sim.rds.amazonaws.com", instance.identifier));
            }
        }
        for cluster in self.clusters.values_mut() {
            if cluster.status == "creating" {
                cluster.status = "available".into();
                cluster.endpoints = vec![format!(
                    "{}.cluster.sim.rds.amazonaws.com",
                    cluster.identifier
                )];
            }
        }
    }

    fn creating_instance(
        identifier: &str,
        cluster: Option<&str>,
        tags: &[(String, String)],
    ) -> DbInstanceState {
        DbInstanceState {
            identifier: identifier.to_owned(),
            status: "creating".into(),
            endpoint: None,
            cluster: cluster.map(str::to_owned),
            tags: tags.to_vec(),
        }
    }
}

#[async_trait::async_trait]
impl Databases for MemoryAws {
    async fn describe_instance(
        &self,
        identifier: &str,
    ) -> Result<Option<DbInstanceState>, StepError> {
        self.call("rds:DescribeDBInstances", |s| {
            Ok(s.rds.instances.get(identifier).cloned())
        })
        .await
    }

    async fn describe_cluster(
        &self,
        identifier: &str,
    ) -> Result<Option<DbClusterState>, StepError> {
        self.call("rds:DescribeDBClusters", |s| {
            Ok(s.rds.clusters.get(identifier).cloned())
        })
        .await
    }

    async fn create_clone(
        &self,
        request: &CloneRequest,
        tags: &[(String, String)],
    ) -> Result<(), StepError> {
        let operation = match request {
            CloneRequest::Snapshot { .. } => "rds:RestoreDBInstanceFromDBSnapshot",
            CloneRequest::CopyOnWrite { .. } => "rds:RestoreDBClusterToPointInTime",
        };
        self.call(operation, |s| {
            match request {
                CloneRequest::Snapshot { source, clone, .. } => {
                    if s.rds.instances.contains_key(clone) {
                        return Ok(());
                    }
                    if !s.rds.instances.contains_key(source) {
                        return Err(not_found("DB instance", source));
                    }
                    if s.rds.snapshots.get(source).is_none_or(|l| l.is_empty()) {
                        return Err(StepError::SyncFailed(format!(
                            "no available snapshot of {source} to restore"
                        )));
                    }
                    s.rds.instances.insert(
                        clone.clone(),
                        RdsState::creating_instance(clone, None, tags),
                    );
                }
                CloneRequest::CopyOnWrite {
                    source,
                    clone,
                    instance,
                    ..
                } => {
                    if !s.rds.clusters.contains_key(source) {
                        return Err(not_found("DB cluster", source));
                    }
                    s.rds
                        .clusters
                        .entry(clone.clone())
                        .or_insert_with(|| DbClusterState {
                            identifier: clone.clone(),
                            status: "creating".into(),
                            endpoints: Vec::new(),
                            members: vec![instance.clone()],
                            tags: tags.to_vec(),
                        });
                    s.rds.instances.entry(instance.clone()).or_insert_with(|| {
                        RdsState::creating_instance(instance, Some(clone), tags)
                    });
                }
            }
            Ok(())
        })
        .await
    }

    async fn all_instances(&self) -> Result<Vec<DbInstanceState>, StepError> {
        self.call("rds:DescribeDBInstances", |s| {
            Ok(s.rds.instances.values().cloned().collect())
        })
        .await
    }

    async fn all_clusters(&self) -> Result<Vec<DbClusterState>, StepError> {
        self.call("rds:DescribeDBClusters", |s| {
            Ok(s.rds.clusters.values().cloned().collect())
        })
        .await
    }

    async fn delete_instance(&self, identifier: &str) -> Result<(), StepError> {
        self.call("rds:DeleteDBInstance", |s| {
            if let Some(instance) = s.rds.instances.get_mut(identifier) {
                instance.status = "deleting".into();
            }
            Ok(())
        })
        .await
    }

    async fn delete_cluster(&self, identifier: &str) -> Result<(), StepError> {
        self.call("rds:DeleteDBCluster", |s| {
            if let Some(cluster) = s.rds.clusters.get_mut(identifier) {
                cluster.status = "deleting".into();
            }
            Ok(())
        })
        .await
    }
}
