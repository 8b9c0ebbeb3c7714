//! RDS: the database clones of `isolated` and rehearsal deployments.

use serde::{Deserialize, Serialize};

use crate::error::StepResult;

use super::compute::Tags;

/// A DB instance as bluegreen reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbInstanceState {
    /// Its identifier.
    pub identifier: String,
    /// `creating`, `available`, `deleting`, …
    pub status: String,
    /// The address clients connect to, once known.
    pub endpoint: Option<String>,
    /// The cluster it belongs to (Aurora).
    pub cluster: Option<String>,
    /// Its tags.
    pub tags: Tags,
}

/// A DB cluster (Aurora) as bluegreen reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbClusterState {
    /// Its identifier.
    pub identifier: String,
    /// `creating`, `available`, …
    pub status: String,
    /// Writer and reader endpoints, once known.
    pub endpoints: Vec<String>,
    /// Its member instances.
    pub members: Vec<String>,
    /// Its tags.
    pub tags: Tags,
}

/// How a clone is made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CloneRequest {
    /// An RDS instance restored from the source instance's newest available snapshot.
    Snapshot {
        /// The source instance.
        source: String,
        /// The clone's identifier.
        clone: String,
        /// Its class (else the source's).
        class: Option<String>,
    },
    /// An Aurora copy-on-write clone of the source cluster, with one writer instance.
    CopyOnWrite {
        /// The source cluster.
        source: String,
        /// The clone cluster's identifier.
        clone: String,
        /// Its writer instance's identifier.
        instance: String,
        /// The writer's class (else the source writer's).
        class: Option<String>,
    },
}

/// RDS, as far as the steps use it.
#[async_trait::async_trait]
pub trait Databases: Send + Sync {
    /// One instance; `None` when there is none.
    async fn describe_instance(&self, identifier: &str) -> StepResult<Option<DbInstanceState>>;

    /// One cluster; `None` when there is none.
    async fn describe_cluster(&self, identifier: &str) -> StepResult<Option<DbClusterState>>;

    /// Starts making a clone, tagged with `tags`; what already exists of it is kept (a retry
    /// continues). [`crate::StepError::ResourceNotFound`] when the source is missing;
    /// [`crate::StepError::SyncFailed`] when it has no snapshot to restore.
    async fn create_clone(
        &self,
        request: &CloneRequest,
        tags: &[(String, String)],
    ) -> StepResult<()>;

    /// Every instance in the account (every page).
    async fn all_instances(&self) -> StepResult<Vec<DbInstanceState>>;

    /// Every cluster in the account (every page).
    async fn all_clusters(&self) -> StepResult<Vec<DbClusterState>>;

    /// Deletes an instance without a final snapshot (gone or already deleting is fine).
    async fn delete_instance(&self, identifier: &str) -> StepResult<()>;

    /// Deletes a cluster without a final snapshot (gone is fine).
    async fn delete_cluster(&self, identifier: &str) -> StepResult<()>;
}
