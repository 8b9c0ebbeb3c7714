//! [`Registry`] over ECR.

use aws_sdk_ecr::types::{ImageDetail, ImageIdentifier, TagStatus};
use chrono::{DateTime, Utc};

use crate::error::{StepError, StepResult};
use crate::ports::registry::{ImageReference, Registry, RegistryImage};

/// The most images one `DescribeImages` page returns (ECR's maximum).
const PAGE_SIZE: i32 = 1000;

/// ECR through the SDK.
pub struct Ecr(pub aws_sdk_ecr::Client);

impl Ecr {
    fn region(&self) -> String {
        self.0
            .config()
            .region()
            .map(|r| r.to_string())
            .unwrap_or_default()
    }

    fn image_of(&self, repository: &str, detail: ImageDetail) -> Option<RegistryImage> {
        let pushed_at = detail
            .image_pushed_at
            .and_then(|t| DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos()))?;
        Some(RegistryImage {
            registry: detail.registry_id.unwrap_or_default(),
            region: self.region(),
            repository: repository.to_owned(),
            digest: detail.image_digest?,
            tags: detail.image_tags.unwrap_or_default(),
            pushed_at,
        })
    }
}

/// ECR's "no such repository" as bluegreen's typed error; everything else as AWS said it.
fn mapped(repository: &str, err: StepError) -> StepError {
    match err.aws_code() {
        Some("RepositoryNotFoundException") => StepError::ResourceNotFound {
            kind: "ECR repository",
            id: repository.to_owned(),
        },
        _ => err,
    }
}

#[async_trait::async_trait]
impl Registry for Ecr {
    async fn image(
        &self,
        registry: Option<&str>,
        repository: &str,
        reference: &ImageReference,
    ) -> StepResult<Option<RegistryImage>> {
        let id = match reference {
            ImageReference::Tag(tag) => ImageIdentifier::builder().image_tag(tag),
            ImageReference::Digest(digest) => ImageIdentifier::builder().image_digest(digest),
        }
        .build();
        let answer = self
            .0
            .describe_images()
            .set_registry_id(registry.map(str::to_owned))
            .repository_name(repository)
            .image_ids(id)
            .send()
            .await;
        match answer {
            Ok(out) => Ok(out
                .image_details
                .unwrap_or_default()
                .into_iter()
                .find_map(|d| self.image_of(repository, d))),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_image_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(mapped(
                repository,
                StepError::from_sdk("ecr:DescribeImages", e),
            )),
        }
    }

    async fn tagged_images(
        &self,
        registry: Option<&str>,
        repository: &str,
        limit: usize,
    ) -> StepResult<Vec<RegistryImage>> {
        let mut images = Vec::new();
        let mut token = None;
        loop {
            let out = self
                .0
                .describe_images()
                .set_registry_id(registry.map(str::to_owned))
                .repository_name(repository)
                .filter(
                    aws_sdk_ecr::types::DescribeImagesFilter::builder()
                        .tag_status(TagStatus::Tagged)
                        .build(),
                )
                .max_results(PAGE_SIZE)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| mapped(repository, StepError::from_sdk("ecr:DescribeImages", e)))?;
            images.extend(
                out.image_details
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|d| self.image_of(repository, d)),
            );
            token = out.next_token;
            if token.is_none() || images.len() >= limit {
                images.truncate(limit);
                return Ok(images);
            }
        }
    }
}
