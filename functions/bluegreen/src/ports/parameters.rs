//! SSM Parameter Store: one JSON parameter per service config.

use crate::error::StepResult;

/// A stored parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter {
    /// Its full name.
    pub name: String,
    /// Its value (decrypted).
    pub value: String,
    /// Its version (1 for the first write).
    pub version: i64,
}

/// SSM Parameter Store, as far as the config store uses it.
#[async_trait::async_trait]
pub trait Parameters: Send + Sync {
    /// One parameter; `None` when there is none.
    async fn get(&self, name: &str) -> StepResult<Option<Parameter>>;

    /// The parameters of `names` that exist, in any order (at most ten names).
    async fn get_many(&self, names: &[String]) -> StepResult<Vec<Parameter>>;

    /// Every parameter directly under `path` (every page).
    async fn by_path(&self, path: &str) -> StepResult<Vec<Parameter>>;

    /// Writes a parameter (overwriting; the advanced tier for values over 4 KiB).
    async fn put(&self, name: &str, value: &str) -> StepResult<()>;

    /// Deletes a parameter; `false` when there was none.
    async fn delete(&self, name: &str) -> StepResult<bool>;
}
