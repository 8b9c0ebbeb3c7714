//! Deployments a person starts without a push. `bluegreen deploy <service> --tag T | --digest D`
//! deploys an image of the service's repository that ECR holds, resolving a tag to the digest it
//! names now (both are recorded). `bluegreen redeploy <service>` sends the image
//! production runs now through the full flow — pre-prod, approval, switch, bake — picking up
//! what changed around it: the service's config, the family's newest revision
//! (`task_definition.source = "family"`, docs/iac.md), secrets rotated since the tasks started.
//! A config-only release is therefore never a rolling update on production.
//! `bluegreen rollback <service> --to <deployment>` sends an earlier deployment's image and
//! task definition through the same flow: a rollback after the keep-warm window.
//!
//! The deployment is prepared exactly as a push's ([`admit::prepare_service`]: the same lock,
//! record and approval rules). A chosen image queues behind a running deployment as a push
//! does; a redeploy or a rollback never queues: it names the image live *now* (or an earlier
//! one), which the running deployment is about to replace, so it is refused while one runs. In the
//! stack its execution is started here; a lost start is started by the reconciler's sweep (a
//! held lock whose execution never started).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::admit::{self, PreparedOutcome, WhenLocked};
use crate::config::ServiceConfig;
use crate::config_store::ConfigStore;
use crate::context::Context;
use crate::ecs;
use crate::error::{StepError, StepResult};
use crate::event::{Image, PersonRequest, Push};
use crate::executions;
use crate::lock::Locks;
use crate::naming;
use crate::ports::registry::ImageReference;
use crate::record::{Records, Status};
use crate::routing;

/// Longest request id accepted (the CLI sends a UUID).
const MAX_REQUEST_ID: usize = 64;
/// How many of the service's newest records are searched for a request already answered.
const REQUESTS_REMEMBERED: usize = 20;
/// The tag recorded for a live image no deployment record names (an adopted service).
const UNKNOWN_TAG: &str = "live";
/// The tag recorded for an image deployed by a digest that has no tag in ECR.
const UNTAGGED: &str = "untagged";

/// What `bluegreen deploy`, `redeploy` or `rollback --to` started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Requested {
    /// The new deployment.
    pub deployment_id: String,
    /// The service.
    pub service: String,
    /// `started` (it holds the lock), `queued` (a chosen image, behind a running deployment),
    /// or what became of it.
    pub outcome: PreparedOutcome,
    /// The digest-pinned image it deploys.
    pub image: String,
    /// The tag recorded with it (the tag asked for, or the one the image was deployed as).
    pub tag: String,
    /// Who asked for it.
    pub operator: String,
    /// Whether its execution was started here (in the stack); otherwise the caller starts it
    /// (the CLI says how).
    pub execution_started: bool,
}

/// Deploys the image `reference` names in the service's repository (`source.repository`) as
/// `operator`, through the full flow; a tag is resolved to the digest it names now, and both
/// are recorded. With `--digest`, the recorded tag is the image's first tag that the service's
/// patterns match (else its first tag, else `untagged`). The tag need not match the
/// service's patterns: a person chose it, and the approval rules gate it as they gate a push.
/// Behind a running deployment it queues as a push does (the newest queued wins).
/// `request_id` makes the request idempotent.
///
/// Errors: [`StepError::ServiceNotFound`], [`StepError::EventMalformed`] (a tag, digest or
/// request id that cannot be one), [`StepError::ReleaseRefused`] (ECR has no such image),
/// [`StepError::ResourceNotFound`] (the repository does not exist).
pub async fn deploy(
    ctx: &Context,
    service: &str,
    reference: &ImageReference,
    operator: &str,
    request_id: &str,
) -> StepResult<Requested> {
    let (config, event_id) = match received(ctx, service, "deploy", request_id, operator).await? {
        Received::New { config, event_id } => (*config, event_id),
        Received::Answered(answered) => return Ok(answered),
    };
    let asked = match reference {
        ImageReference::Tag(tag) if crate::event::valid_tag(tag) => format!("tag {tag}"),
        ImageReference::Digest(d) if crate::event::valid_digest(d) => format!("digest {d}"),
        ImageReference::Tag(bad) | ImageReference::Digest(bad) => {
            return Err(StepError::EventMalformed(format!(
                "{bad:?} is not an image tag (1-128 of A-Z a-z 0-9 _ . -) or a digest \
                 (sha256: and 64 lowercase hex digits)"
            )));
        }
    };
    let repository = &config.source.repository;
    let registry = config
        .registry_to_read(ctx.region.as_deref())
        .map_err(StepError::ReleaseRefused)?;
    let found = ctx
        .ports
        .registry
        .image(registry, repository, reference)
        .await?
        .ok_or_else(|| {
            StepError::ReleaseRefused(format!(
                "ECR repository {repository} has no image with {asked}"
            ))
        })?;
    let tag = match reference {
        ImageReference::Tag(tag) => tag.clone(),
        ImageReference::Digest(_) => found
            .tags
            .iter()
            .find(|t| config.matches_tag(t))
            .or(found.tags.first())
            .cloned()
            .unwrap_or_else(|| UNTAGGED.to_owned()),
    };
    let image = Image {
        repository: repository.clone(),
        tag,
        digest: found.digest,
        account: found.registry,
        region: found.region,
    };
    let request = PersonRequest {
        by: operator.to_owned(),
        what: format!("deploy {asked}"),
        base_task_definition: None,
    };
    start(ctx, config, event_id, image, request, WhenLocked::Queue).await
}

/// Sends the image `service` runs in production now through the full deployment flow, as
/// `operator`. `request_id` makes the request idempotent: asking again with the same id
/// answers the deployment the first request started.
///
/// Errors: [`StepError::ServiceNotFound`], [`StepError::ReleaseRefused`] (a deployment is in
/// progress, or the live image is not an ECR image of the service's repository pinned by
/// digest), [`StepError::EventMalformed`] (a request id that is not one).
pub async fn redeploy(
    ctx: &Context,
    service: &str,
    operator: &str,
    request_id: &str,
) -> StepResult<Requested> {
    let (config, event_id) = match received(ctx, service, "redeploy", request_id, operator).await? {
        Received::New { config, event_id } => (*config, event_id),
        Received::Answered(answered) => return Ok(answered),
    };
    let mut image = live_image(ctx, &config).await?;
    let deployed_as = Records::new(ctx)
        .newest_for_service(service, |d| d.image.digest == image.digest)
        .await?
        .map(|d| d.image.tag);
    image.tag = match deployed_as {
        Some(tag) => tag,
        None if !image.tag.is_empty() => image.tag,
        None => UNKNOWN_TAG.to_owned(),
    };
    let request = PersonRequest {
        by: operator.to_owned(),
        what: "redeploy".into(),
        base_task_definition: None,
    };
    start(ctx, config, event_id, image, request, WhenLocked::Refuse).await
}

/// Sends the image and task definition of an earlier deployment of `service`, `target`,
/// through the full deployment flow (pre-prod, approval, switch, bake) — a rollback after the
/// keep-warm window, when the old slot no longer runs. Pre-prod starts from the revision
/// `target` started from, with its digest: what it ran (in `isolated` mode the production
/// revision takes production's database setting, `database.endpoint_env`, as it is now).
///
/// Errors: as [`redeploy`], and [`StepError::DeploymentNotFound`]; `ReleaseRefused` when
/// `target` is another service's or did not succeed.
pub async fn roll_back_to(
    ctx: &Context,
    service: &str,
    target: &str,
    operator: &str,
    request_id: &str,
) -> StepResult<Requested> {
    let (config, event_id) = match received(ctx, service, "rollback", request_id, operator).await? {
        Received::New { config, event_id } => (*config, event_id),
        Received::Answered(answered) => return Ok(answered),
    };
    let earlier = Records::new(ctx).get(target).await?;
    if earlier.service != service {
        return Err(StepError::ReleaseRefused(format!(
            "{target} is a deployment of {}, not of {service}",
            earlier.service
        )));
    }
    // A rolled-back deployment was judged bad (by its bake or a person): not a way back.
    if earlier.status != Status::Succeeded {
        return Err(StepError::ReleaseRefused(format!(
            "{target} is {}, not succeeded: roll back to a deployment that succeeded",
            earlier.status
        )));
    }
    // Records from before `base` was kept name the revision pre-prod ran, which carries the
    // same digest: starting from it gives the same revision.
    let revisions = &earlier.task_definitions;
    let base = revisions
        .base
        .clone()
        .or_else(|| revisions.preprod.clone())
        .ok_or_else(|| {
            StepError::ReleaseRefused(format!("{target} recorded no task definition"))
        })?;
    let request = PersonRequest {
        by: operator.to_owned(),
        what: format!("rollback to {target}"),
        base_task_definition: Some(base),
    };
    start(
        ctx,
        config,
        event_id,
        earlier.image.clone(),
        request,
        WhenLocked::Refuse,
    )
    .await
}

/// Prepares the deployment of `image` a person asked for and starts its execution when it
/// holds the lock (`when_locked`: queue behind a running deployment, or refuse).
async fn start(
    ctx: &Context,
    config: ServiceConfig,
    event_id: String,
    image: Image,
    request: PersonRequest,
    when_locked: WhenLocked,
) -> StepResult<Requested> {
    let service = config.name.clone();
    let operator = request.by.clone();
    let push = Push {
        event_id,
        time: request_order(ctx, &service).await?,
        image: image.clone(),
        requested: Some(Box::new(request)),
        replicated_from: None,
    };
    let prepared = admit::prepare_service(ctx, &push, config, when_locked).await?;
    let started = prepared.outcome == PreparedOutcome::Started;
    let execution_started =
        started && executions::start_in_stack(ctx, &prepared.deployment_id).await;
    info!(
        %service, deployment_id = %prepared.deployment_id, %operator, digest = %image.digest,
        "release requested"
    );
    Ok(Requested {
        deployment_id: prepared.deployment_id,
        service,
        outcome: prepared.outcome,
        image: image.pinned_uri(),
        tag: image.tag,
        operator,
        execution_started,
    })
}

/// Where a person's request stands among the service's pushes: just after the newest push the
/// lock holds (the queued one, else the running one), not at the time of asking. A queued push
/// is then superseded by the request (a person asked after it was queued; ordered before it,
/// the request itself was superseded and never ran), and a push made before the request whose
/// event arrives after it (EventBridge delivers late) is still newer than the running one and
/// deploys after the request — with the time of asking it would be superseded by a request
/// naming an older image.
async fn request_order(ctx: &Context, service: &str) -> StepResult<DateTime<Utc>> {
    let newest = Locks::new(ctx).newest_order(service).await?;
    Ok(newest
        .and_then(|order| order.pushed_at())
        .map_or_else(|| ctx.now(), |t| t + chrono::Duration::milliseconds(1)))
}

/// A person's request as received: new (the service's config and the request's event id), or
/// one an earlier call with the same request id already answered.
enum Received {
    New {
        config: Box<ServiceConfig>,
        event_id: String,
    },
    Answered(Requested),
}

/// Reads the service's config ([`StepError::ServiceNotFound`] first), checks the request id
/// and looks for the deployment an earlier call with it started.
async fn received(
    ctx: &Context,
    service: &str,
    kind: &str,
    request_id: &str,
    operator: &str,
) -> StepResult<Received> {
    let config = ConfigStore::new(ctx).load(service).await?;
    crate::identity::ensure_operator(&config, operator)?;
    let event_id = event_id(kind, request_id)?;
    Ok(match answered(ctx, service, &event_id, operator).await? {
        Some(answered) => Received::Answered(answered),
        None => Received::New {
            config: Box::new(config),
            event_id,
        },
    })
}

/// The deployment an earlier request with `event_id` started, if any (a retried call).
async fn answered(
    ctx: &Context,
    service: &str,
    event_id: &str,
    operator: &str,
) -> StepResult<Option<Requested>> {
    let found = Records::new(ctx)
        .for_service(service, REQUESTS_REMEMBERED)
        .await?
        .into_iter()
        .find(|d| d.event_id == event_id);
    Ok(found.map(|existing| Requested {
        outcome: admit::summary(&existing).outcome,
        image: existing.image.pinned_uri(),
        deployment_id: existing.deployment_id,
        service: existing.service,
        tag: existing.image.tag,
        operator: operator.to_owned(),
        execution_started: false,
    }))
}

/// The record's event id for a person's request (`kind`: `deploy`, `redeploy`, `rollback`):
/// what makes a retried request find the deployment it started.
fn event_id(kind: &str, request_id: &str) -> StepResult<String> {
    let valid = !request_id.is_empty()
        && request_id.len() <= MAX_REQUEST_ID
        && request_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !valid {
        return Err(StepError::EventMalformed(format!(
            "request id {request_id:?} is not 1-{MAX_REQUEST_ID} letters, digits or '-'"
        )));
    }
    Ok(naming::request_event_id(kind, request_id))
}

/// The image production's live slot runs, read from its task definition's container.
async fn live_image(ctx: &Context, config: &ServiceConfig) -> StepResult<Image> {
    let live = routing::read_production(ctx, config).await?.live()?;
    let live_service = &config.slots.get(live).service;
    let task_definition = ecs::live_task_definition(ctx, &config.cluster, live_service).await?;
    let described = ecs::describe_task_definition(ctx, &task_definition).await?;
    let container = described.container(&config.container).ok_or_else(|| {
        StepError::ConfigInvalid(vec![format!(
            "container: {:?} is not a container of task definition {task_definition}",
            config.container
        )])
    })?;
    let image = Image::from_pinned_uri(&container.image).ok_or_else(|| {
        StepError::ReleaseRefused(format!(
            "{live_service} runs {}, not an ECR image pinned by digest: push a tag the service \
             watches to deploy it",
            container.image
        ))
    })?;
    if image.repository != config.source.repository {
        return Err(StepError::ReleaseRefused(format!(
            "{live_service} runs an image of repository {}, not of {} (source.repository)",
            image.repository, config.source.repository
        )));
    }
    Ok(image)
}
