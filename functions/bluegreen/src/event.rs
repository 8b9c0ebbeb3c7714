//! Intake of EventBridge `ECR Image Action` and `ECR Replication Action` events.
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
    /// `PUSH` or `DELETE` (a replication's says `REPLICATE`; it is not relied on).
    #[serde(default)]
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
    /// "ECR Replication Action" only: the account the image was replicated from.
    #[serde(default)]
    pub source_account: Option<String>,
    /// "ECR Replication Action" only: the region the image was replicated from.
    #[serde(default)]
    pub source_region: Option<String>,
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

    /// The image a task definition names, when it is an ECR image pinned by digest (what
    /// [`Image::pinned_uri`] writes, or `repo:tag@sha256:…`, where the digest is what runs);
    /// `None` for a tag reference or another registry. The tag is the reference's, if any.
    pub fn from_pinned_uri(uri: &str) -> Option<Image> {
        let (reference, digest) = uri.split_once('@')?;
        let (host, path) = reference.split_once('/')?;
        let (repository, tag) = path.split_once(':').unwrap_or((path, ""));
        let (account, rest) = host.split_once(".dkr.ecr.")?;
        let region = rest.strip_suffix(".amazonaws.com")?;
        let valid = account.len() == 12
            && account.chars().all(|c| c.is_ascii_digit())
            && valid_region(region)
            && valid_repository(repository)
            && (tag.is_empty() || valid_tag(tag))
            && valid_digest(digest);
        valid.then(|| Image {
            repository: repository.to_owned(),
            tag: tag.to_owned(),
            digest: digest.to_owned(),
            account: account.to_owned(),
            region: region.to_owned(),
        })
    }
}

/// A private ECR registry: an account in a region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistryLocation {
    /// The registry's account id (12 digits).
    pub account: String,
    /// The registry's region, like `us-east-1`.
    pub region: String,
}

impl std::fmt::Display for RegistryLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} in {}", self.account, self.region)
    }
}

/// A push that can start a deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Push {
    /// EventBridge event id; makes deployment ids deterministic under retries.
    pub event_id: String,
    /// When ECR emitted the event; orders queued pushes.
    pub time: DateTime<Utc>,
    /// The image (for a replication: the replica, in the registry the event came from).
    pub image: Image,
    /// For an "ECR Replication Action": the registry the image was pushed to and replicated
    /// from. `None` for a push.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicated_from: Option<RegistryLocation>,
    /// What a person asked for, when a person did rather than a push (see `release`). Boxed:
    /// a push from ECR, the common case, carries none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested: Option<Box<PersonRequest>>,
}

/// A deployment a person asked for without a push (`bluegreen redeploy`, `rollback --to`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PersonRequest {
    /// Who asked (their IAM principal).
    pub by: String,
    /// What they asked for, for the timeline (`redeploy`, `rollback to <deployment id>`).
    pub what: String,
    /// The task definition revision to start from instead of choosing one (`rollback --to`:
    /// the one that deployment started from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_task_definition: Option<String>,
}

/// What intake made of an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Intake {
    /// A successful tagged push.
    Push(Push),
    /// Not something that starts a deployment, and why.
    Ignored(String),
}

/// The detail type of a push's event.
const IMAGE_ACTION: &str = "ECR Image Action";
/// The detail type of an image ECR replication copied into this registry.
const REPLICATION_ACTION: &str = "ECR Replication Action";

/// Parses an EventBridge event (as JSON) into an [`Intake`]: an "ECR Image Action" `PUSH`, or
/// an "ECR Replication Action" (the replica, in the registry the event came from, and the
/// registry it was replicated from; whether a service takes it is the service's
/// `source.pull_from`).
///
/// Returns [`StepError::EventMalformed`] when the JSON is not such an event or holds a value
/// ECR could not have sent.
pub fn parse(event: &serde_json::Value) -> StepResult<Intake> {
    let event: EventBridgeEvent<serde_json::Value> = serde_json::from_value(event.clone())
        .map_err(|e| StepError::EventMalformed(format!("not an EventBridge event: {e}")))?;
    let replication = event.detail_type == REPLICATION_ACTION;
    if event.source != "aws.ecr" || !(event.detail_type == IMAGE_ACTION || replication) {
        return Ok(Intake::Ignored(format!(
            "event is {:?} from {:?}, not an ECR Image Action or ECR Replication Action",
            event.detail_type, event.source
        )));
    }
    let detail: EcrImageAction = serde_json::from_value(event.detail)
        .map_err(|e| StepError::EventMalformed(format!("{} detail: {e}", event.detail_type)))?;
    if let Some(reason) = not_a_deployable_image(&detail, replication) {
        return Ok(Intake::Ignored(reason));
    }
    let tag = detail.image_tag.clone().unwrap_or_default();
    let digest = detail.image_digest.clone().unwrap_or_default();
    check_image(&detail.repository_name, &tag, &digest)?;
    let event_id = event.id.unwrap_or_default();
    // EventBridge assigns ids (UUIDs); whatever an event carries here is printed and stored.
    if event_id.is_empty()
        || event_id.len() > 256
        || !event_id.chars().all(|c| c.is_ascii_graphic())
    {
        return Err(malformed(
            "id",
            &event_id,
            "an EventBridge event id (1-256 printable ASCII characters)",
        ));
    }
    let here = registry("account", event.account, "region", event.region)?;
    let replicated_from = if replication {
        Some(registry(
            "detail.source-account",
            detail.source_account,
            "detail.source-region",
            detail.source_region,
        )?)
    } else {
        None
    };
    let time = event
        .time
        .ok_or_else(|| StepError::EventMalformed("time: the event has no time".into()))?;
    Ok(Intake::Push(Push {
        event_id,
        time,
        image: Image {
            repository: detail.repository_name,
            tag,
            digest,
            account: here.account,
            region: here.region,
        },
        requested: None,
        replicated_from,
    }))
}

/// Why an image event cannot start a deployment (a failed push or replication, a delete, an
/// image without a tag), or `None` when it can.
fn not_a_deployable_image(detail: &EcrImageAction, replication: bool) -> Option<String> {
    // A replication event is about the replica whatever its action type says.
    if !replication && detail.action_type != "PUSH" {
        return Some(format!("action {:?} is not a PUSH", detail.action_type));
    }
    let what = if replication { "replication" } else { "push" };
    if detail.result != "SUCCESS" {
        return Some(format!("{what} result is {:?}", detail.result));
    }
    match detail.image_tag.as_deref() {
        None | Some("") => Some(format!("digest-only {what} (no tag to match)")),
        Some(_) => None,
    }
}

/// Every value below ends up in a record, a lock key, a task definition and resource tags: a
/// value ECR could not have sent is refused here, naming the field, before anything is matched
/// or touched (rather than failing half-way when ECS refuses it as a tag).
fn check_image(repository: &str, tag: &str, digest: &str) -> StepResult<()> {
    if !valid_repository(repository) {
        return Err(malformed(
            "detail.repository-name",
            repository,
            "an ECR repository name (2-256 characters: lowercase path components of a-z, 0-9 \
             and single '.', '_' or '-' between them, separated by '/')",
        ));
    }
    if !valid_tag(tag) {
        return Err(malformed(
            "detail.image-tag",
            tag,
            "an image tag (1-128 characters of A-Z, a-z, 0-9, '_', '.', '-', not starting with \
             '.' or '-')",
        ));
    }
    if !valid_digest(digest) {
        return Err(malformed(
            "detail.image-digest",
            digest,
            "a sha256 digest (\"sha256:\" and 64 lowercase hex digits)",
        ));
    }
    Ok(())
}

/// The registry an event's `account_field` and `region_field` name, checked.
fn registry(
    account_field: &str,
    account: Option<String>,
    region_field: &str,
    region: Option<String>,
) -> StepResult<RegistryLocation> {
    let account = account.unwrap_or_default();
    if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
        return Err(malformed(
            account_field,
            &account,
            "a 12-digit AWS account id",
        ));
    }
    let region = region.unwrap_or_default();
    if !valid_region(&region) {
        return Err(malformed(
            region_field,
            &region,
            "an AWS region name (like us-east-1)",
        ));
    }
    Ok(RegistryLocation { account, region })
}

fn malformed(field: &str, value: &str, rule: &str) -> StepError {
    StepError::EventMalformed(format!("{field} {value:?} is not {rule}"))
}

/// Whether `digest` is an image digest as ECR writes it: `sha256:` and 64 lowercase hex digits.
pub fn valid_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

/// ECR's repository name grammar: `(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*`,
/// 2-256 characters.
fn valid_repository(name: &str) -> bool {
    let component = |c: &str| {
        !c.is_empty()
            && c.split(['.', '_', '-']).all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit())
            })
    };
    (2..=256).contains(&name.len()) && name.split('/').all(component)
}

/// The image tag grammar (Docker's, which ECR enforces): `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub(crate) fn valid_tag(tag: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    tag.len() <= 128
        && tag.chars().all(allowed)
        && tag
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// An AWS region name: lowercase words joined by '-', ending in a number (`us-east-1`,
/// `us-gov-west-1`, `ap-southeast-3`).
pub(crate) fn valid_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && region.len() <= 32
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1]
            .parse::<u8>()
            .is_ok_and(|_| parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_uri_reads_back_as_the_image_it_was_written_from() {
        let image = Image {
            repository: "team/shop".into(),
            tag: String::new(),
            digest: format!("sha256:{}", "a".repeat(64)),
            account: "123456789012".into(),
            region: "eu-west-1".into(),
        };
        assert_eq!(
            Image::from_pinned_uri(&image.pinned_uri()),
            Some(image.clone())
        );
        let tagged = format!(
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/shop:v7@{}",
            image.digest
        );
        let read = Image::from_pinned_uri(&tagged).unwrap();
        assert_eq!((read.tag.as_str(), read.digest), ("v7", image.digest));
    }

    #[test]
    fn a_tag_reference_or_another_registry_is_not_a_pinned_image() {
        let digest = format!("sha256:{}", "a".repeat(64));
        for uri in [
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop:v1".to_owned(),
            format!("docker.io/library/nginx@{digest}"),
            format!("12345.dkr.ecr.us-east-1.amazonaws.com/shop@{digest}"),
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop@sha256:short".to_owned(),
            format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/Shop@{digest}"),
        ] {
            assert_eq!(Image::from_pinned_uri(&uri), None, "{uri}");
        }
    }

    /// Found by the fuzz campaign: the reason an event is ignored is printed by `bluegreen run`
    /// and logged; it quoted the event's action raw.
    #[test]
    fn an_ignored_events_reason_shows_what_it_quotes() {
        let mut event: serde_json::Value =
            serde_json::from_str(include_str!("../../../events/ecr-push-tagged.json")).unwrap();
        event["detail"]["action-type"] = "\u{1b}]0;x\u{7}".into();
        let Intake::Ignored(reason) = parse(&event).unwrap() else {
            panic!("not ignored")
        };
        assert_eq!(reason, "action \"\\u{1b}]0;x\\u{7}\" is not a PUSH");
        event["detail"]["action-type"] = "PUSH".into();
        event["detail"]["result"] = "\u{202e}FAILURE".into();
        let Intake::Ignored(reason) = parse(&event).unwrap() else {
            panic!("not ignored")
        };
        assert!(!reason.chars().any(crate::text::is_hidden), "{reason}");
    }

    /// Found by the long fuzz campaign: an id with a bidi override was accepted and stored.
    #[test]
    fn an_event_id_is_printable_ascii() {
        let mut event: serde_json::Value =
            serde_json::from_str(include_str!("../../../events/ecr-push-tagged.json")).unwrap();
        for id in ["\u{202e}", "a b", "é"] {
            event["id"] = id.into();
            let err = parse(&event).unwrap_err();
            assert!(err.to_string().contains("printable ASCII"), "{id:?}: {err}");
        }
    }
}
