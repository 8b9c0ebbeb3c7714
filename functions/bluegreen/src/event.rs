//! Intake of EventBridge `ECR Image Action` events.
//!
//! The event shape is the one AWS documents for Amazon ECR
//! (<https://docs.aws.amazon.com/AmazonECR/latest/userguide/ecr-eventbridge.html>). Only a
//! successful `PUSH` of a tagged image can start a deployment; everything else is
//! [`Intake::Ignored`] with the reason, so the caller can log and stop without touching AWS.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{StepError, StepResult};

/// The `detail` of an `ECR Image Action` event. AWS adds fields over time, so unknown fields
/// are accepted and ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct EcrImageAction {
    /// `PUSH` or `DELETE`.
    pub action_type: String,
    /// `SUCCESS` or `FAILURE`.
    pub result: String,
    /// Repository name.
    pub repository_name: String,
    /// `sha256:…`; absent on some failed pushes.
    #[serde(default)]
    pub image_digest: Option<String>,
    /// Absent for digest-only pushes.
    #[serde(default)]
    pub image_tag: Option<String>,
}

/// A pushed image, pinned by digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Image {
    /// Repository name.
    pub repository: String,
    /// The tag that was pushed.
    pub tag: String,
    /// `sha256:…`.
    pub digest: String,
    /// Registry account id.
    pub account: String,
    /// Registry region.
    pub region: String,
}

impl Image {
    /// The digest-pinned image reference put in task definitions: `registry/repo@sha256:…`.
    pub fn pinned_uri(&self) -> String {
        format!(
            "{}.dkr.ecr.{}.amazonaws.com/{}@{}",
            self.account, self.region, self.repository, self.digest
        )
    }
}

/// A push that can start a deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Push {
    /// EventBridge event id; makes deployment ids deterministic under retries.
    pub event_id: String,
    /// When ECR emitted the event; orders queued pushes.
    pub time: DateTime<Utc>,
    /// The image.
    pub image: Image,
}

/// What intake made of an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Intake {
    /// A successful tagged push.
    Push(Push),
    /// Not something that starts a deployment, and why.
    Ignored(String),
}

/// Parses an EventBridge event (as JSON) into an [`Intake`].
///
/// Returns [`StepError::EventMalformed`] when the JSON is not an ECR Image Action event.
pub fn parse(event: &serde_json::Value) -> StepResult<Intake> {
    let event: EventBridgeEvent<serde_json::Value> = serde_json::from_value(event.clone())
        .map_err(|e| StepError::EventMalformed(format!("not an EventBridge event: {e}")))?;
    if event.source != "aws.ecr" || event.detail_type != "ECR Image Action" {
        return Ok(Intake::Ignored(format!(
            "event is {:?} from {:?}, not an ECR Image Action",
            event.detail_type, event.source
        )));
    }
    let detail: EcrImageAction = serde_json::from_value(event.detail)
        .map_err(|e| StepError::EventMalformed(format!("ECR Image Action detail: {e}")))?;
    if detail.action_type != "PUSH" {
        return Ok(Intake::Ignored(format!(
            "action {} is not a PUSH",
            detail.action_type
        )));
    }
    if detail.result != "SUCCESS" {
        return Ok(Intake::Ignored(format!("push result is {}", detail.result)));
    }
    let Some(tag) = detail.image_tag.filter(|t| !t.is_empty()) else {
        return Ok(Intake::Ignored("digest-only push (no tag to match)".into()));
    };
    let digest = detail
        .image_digest
        .filter(|d| valid_digest(d))
        .ok_or_else(|| {
            StepError::EventMalformed("successful push without a sha256 digest".into())
        })?;
    let event_id = event
        .id
        .filter(|id| !id.is_empty())
        .ok_or_else(|| StepError::EventMalformed("event has no id".into()))?;
    let account = event
        .account
        .filter(|a| a.len() == 12 && a.chars().all(|c| c.is_ascii_digit()))
        .ok_or_else(|| StepError::EventMalformed("event has no 12-digit account".into()))?;
    let region = event
        .region
        .filter(|r| !r.is_empty())
        .ok_or_else(|| StepError::EventMalformed("event has no region".into()))?;
    let time = event
        .time
        .ok_or_else(|| StepError::EventMalformed("event has no time".into()))?;
    Ok(Intake::Push(Push {
        event_id,
        time,
        image: Image {
            repository: detail.repository_name,
            tag,
            digest,
            account,
            region,
        },
    }))
}

fn valid_digest(digest: &str) -> bool {
    digest
        .strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()))
}
