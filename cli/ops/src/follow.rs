//! Following a deployment from outside (`bluegreen wait`, a CI pipeline that pushed an image):
//! find it by id, or by service and the pushed image's digest or tag, and say whether it has
//! ended and how. Reads by key and by index only.

use chrono::{DateTime, Utc};
use serde::Serialize;

use bluegreen::context::Context;
use bluegreen::error::{StepError, StepResult};
use bluegreen::record::{Deployment, Records, Status};

/// Which deployment to follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// This deployment.
    Deployment(String),
    /// The newest deployment of `service` of the image with this digest (`sha256:…`) created
    /// at or after `since`.
    Digest {
        /// The service.
        service: String,
        /// The pushed image's digest.
        digest: String,
        /// Deployments before this are of an earlier push.
        since: DateTime<Utc>,
    },
    /// The newest deployment of `service` of a push of this tag created at or after `since` (a
    /// tag can be pushed again; an older push of it is not this one).
    Tag {
        /// The service.
        service: String,
        /// The pushed tag.
        tag: String,
        /// Deployments before this are of an earlier push.
        since: DateTime<Utc>,
    },
}

/// How a followed deployment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// The new image serves production.
    Succeeded,
    /// It will not serve production: aborted, rolled back, superseded by a newer push, or
    /// stopped needing a person.
    Failed,
}

impl Ending {
    /// The ending of a deployment in `status`, or `None` while it runs.
    pub fn of(status: Status) -> Option<Ending> {
        match status {
            Status::Succeeded => Some(Ending::Succeeded),
            Status::Aborted | Status::RolledBack | Status::NeedsAttention | Status::Superseded => {
                Some(Ending::Failed)
            }
            Status::Queued
            | Status::Preparing
            | Status::Preprod
            | Status::AwaitingApproval
            | Status::Promoting
            | Status::Switching
            | Status::Baking => None,
        }
    }
}

/// The deployment `target` names as it is now; `None` while there is none yet (the push has
/// not been prepared yet, say).
pub async fn find(ctx: &Context, target: &Target) -> StepResult<Option<Deployment>> {
    let records = Records::new(ctx);
    match target {
        Target::Deployment(id) => match records.get(id).await {
            Ok(d) => Ok(Some(d)),
            Err(StepError::DeploymentNotFound(_)) => Ok(None),
            Err(e) => Err(e),
        },
        Target::Digest {
            service,
            digest,
            since,
        } => {
            records
                .newest_for_service_since(service, *since, |d| d.image.digest == *digest)
                .await
        }
        Target::Tag {
            service,
            tag,
            since,
        } => {
            records
                .newest_for_service_since(service, *since, |d| d.image.tag == *tag)
                .await
        }
    }
}
