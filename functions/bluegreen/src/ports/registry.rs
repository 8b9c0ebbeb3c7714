//! ECR: the images of a service's repository (a person's `deploy --tag`, the missed-push
//! sweep).

use chrono::{DateTime, Utc};

use crate::error::StepResult;

/// An image in a repository, as ECR describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryImage {
    /// The registry (account id) that holds it.
    pub registry: String,
    /// The region of that registry (the client's).
    pub region: String,
    /// Repository name.
    pub repository: String,
    /// `sha256:…`.
    pub digest: String,
    /// Its tags, in ECR's order (none for an untagged image).
    pub tags: Vec<String>,
    /// When it was pushed (for a replica, when it arrived in this region).
    pub pushed_at: DateTime<Utc>,
}

/// Which image of a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageReference {
    /// By tag: the image the tag names now.
    Tag(String),
    /// By digest.
    Digest(String),
}

/// ECR, as far as bluegreen reads it (`ecr:DescribeImages`, repositories in the stack's
/// region and account unless the config names another registry).
#[async_trait::async_trait]
pub trait Registry: Send + Sync {
    /// The image `reference` names in `repository` of `registry` (`None`: the caller's
    /// account); `Ok(None)` when the repository has no such image. A repository that does not
    /// exist is [`crate::StepError::ResourceNotFound`].
    async fn image(
        &self,
        registry: Option<&str>,
        repository: &str,
        reference: &ImageReference,
    ) -> StepResult<Option<RegistryImage>>;

    /// The tagged images of `repository`, every page up to `limit` images, in no particular
    /// order (ECR guarantees none). A repository that does not exist is
    /// [`crate::StepError::ResourceNotFound`].
    async fn tagged_images(
        &self,
        registry: Option<&str>,
        repository: &str,
        limit: usize,
    ) -> StepResult<Vec<RegistryImage>>;
}
