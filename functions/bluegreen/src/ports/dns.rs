//! Route 53: the weighted records of DNS mode.

use serde::{Deserialize, Serialize};

use crate::error::StepResult;

/// One weighted CNAME record set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightedRecord {
    /// The record name.
    pub name: String,
    /// Its set identifier.
    pub set_identifier: Option<String>,
    /// Its weight.
    pub weight: Option<i64>,
    /// Its TTL in seconds.
    pub ttl: Option<i64>,
    /// The name it points to.
    pub value: String,
}

/// Route 53, as far as the steps use it.
#[async_trait::async_trait]
pub trait Dns: Send + Sync {
    /// Every CNAME record set of `name` in the zone (all set identifiers; names compared
    /// without the trailing dot, ignoring case). [`crate::StepError::ResourceNotFound`] when
    /// the zone is missing.
    async fn cname_records(&self, zone: &str, name: &str) -> StepResult<Vec<WeightedRecord>>;

    /// Upserts `records` in one change batch (all or none change); returns the change id.
    async fn upsert(
        &self,
        zone: &str,
        records: &[WeightedRecord],
        comment: &str,
    ) -> StepResult<String>;

    /// Whether a change has propagated to every authoritative server (`INSYNC`).
    async fn change_in_sync(&self, change_id: &str) -> StepResult<bool>;
}
