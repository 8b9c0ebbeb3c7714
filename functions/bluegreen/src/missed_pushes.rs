//! The missed-push sweep. ECR emits its push events best effort, and EventBridge may fail to
//! deliver one: a push nobody saw would never deploy, and nothing would say so. On a schedule,
//! this reads each watched repository (`ecr:DescribeImages`) and deploys the newest image a
//! service's tag patterns match when no deployment names its digest and it was pushed after
//! the service's newest deployment — exactly what the event would have started.
//!
//! - **Idempotent with the event path.** The sweep's deployment id comes from the digest and
//!   the push time (event id [`naming::missed_push_event_id`]), so two sweeps find the same
//!   record; a late event for an image the sweep already started answers that deployment
//!   (intake looks for it) instead of starting a second one; an image a push event deployed is
//!   never swept (its digest has a record).
//! - **The event goes first.** An image younger than [`EVENT_GRACE_SECONDS`] is left to its
//!   event.
//! - **Never the past.** Only an image pushed after the service's newest deployment is a missed
//!   push; an older one is history (a deployment chose something newer, or a person rolled
//!   back on purpose). A service with no deployment yet is left alone: its first deployment
//!   comes from a push or a person, never from whatever its repository held when it was
//!   registered.
//! - **Bounded.** Each run takes the next page of the service index, as teardown does, and
//!   reads at most [`IMAGES_PER_REPOSITORY`] images of a repository.

use chrono::{DateTime, Duration, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::admit::{self, PreparedOutcome, WhenLocked};
use crate::config::ServiceConfig;
use crate::config_store::ConfigStore;
use crate::context::Context;
use crate::error::{StepError, StepResult};
use crate::event::{Image, Push};
use crate::executions;
use crate::naming;
use crate::ports::registry::RegistryImage;
use crate::record::{Deployment, Records};
use crate::service_index::ServiceIndex;

/// Services one run looks at (one config read, one to three DynamoDB queries and the
/// repository's `DescribeImages` pages each).
const SERVICES_PER_RUN: i32 = 25;

/// The cursor (in the service index) where the last run stopped.
const CURSOR: &str = "missed_pushes";

/// How long a push is left to its own event. EventBridge delivers ECR's events within seconds;
/// five minutes leaves the event path every chance (and its retries) before the sweep decides.
pub const EVENT_GRACE_SECONDS: i64 = 300;

/// At most this many images of one repository are read (ten `DescribeImages` pages).
pub const IMAGES_PER_REPOSITORY: usize = 10_000;

/// How far before an image's push the records are searched for its digest: the event's `time`
/// has whole seconds, ECR's push time does not, and clocks differ.
const DIGEST_SEARCH_SLACK_SECONDS: i64 = 3600;

/// What one sweep found and did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SweepReport {
    /// Deployments started (or queued) for missed pushes: `service: deployment (tag@digest)`.
    pub deployed: Vec<String>,
    /// Services left alone, with the reason (nothing missed is not listed).
    pub skipped: Vec<String>,
    /// The services this run looked at (a page of the service index).
    pub services: Vec<String>,
    /// Where the next run starts (the last service looked at); `None`: from the beginning.
    pub continues_after: Option<String>,
}

/// Runs one bounded sweep: the next [`SERVICES_PER_RUN`] services of the index. A service's
/// failure (an invalid config, a missing repository, a refused call) is reported and the sweep
/// goes on.
pub async fn run(ctx: &Context) -> StepResult<SweepReport> {
    let now = ctx.now();
    let mut report = SweepReport::default();
    let index = ServiceIndex::new(ctx);
    report.services = index.next_page(CURSOR, SERVICES_PER_RUN).await?;
    for stored in ConfigStore::new(ctx).load_many(&report.services).await? {
        match stored {
            Ok(config) => {
                let service = config.name.clone();
                if let Err(e) = sweep_service(ctx, config, now, &mut report).await {
                    warn!(%service, error = %e, "service not swept this run");
                    report.skipped.push(format!("{service}: {e}"));
                }
            }
            Err(bad) => report.skipped.push(format!(
                "{}: config invalid ({})",
                bad.service,
                bad.problems.join("; ")
            )),
        }
    }
    report.continues_after = index
        .move_past(CURSOR, &report.services, SERVICES_PER_RUN)
        .await?;
    info!(
        services = report.services.len(),
        deployed = report.deployed.len(),
        skipped = report.skipped.len(),
        "missed-push sweep done"
    );
    Ok(report)
}

/// One service: its newest missed push, deployed as the push would have been.
async fn sweep_service(
    ctx: &Context,
    config: ServiceConfig,
    now: DateTime<Utc>,
    report: &mut SweepReport,
) -> StepResult<()> {
    let records = Records::new(ctx);
    let Some(newest) = records
        .for_service(&config.name, 1)
        .await?
        .into_iter()
        .next()
    else {
        return Ok(());
    };
    let registry = config
        .registry_to_read(ctx.region.as_deref())
        .map_err(StepError::ReleaseRefused)?;
    let images = ctx
        .ports
        .registry
        .tagged_images(registry, &config.source.repository, IMAGES_PER_REPOSITORY)
        .await?;
    let Some((image, tag)) = newest_missed(&config, &images, &newest, now) else {
        return Ok(());
    };
    let since = image.pushed_at - Duration::seconds(DIGEST_SEARCH_SLACK_SECONDS);
    let deployed = records
        .newest_for_service_since(&config.name, since, |d| d.image.digest == image.digest)
        .await?;
    if deployed.is_some() {
        return Ok(());
    }
    let push = Push {
        event_id: naming::missed_push_event_id(&image.digest),
        time: image.pushed_at,
        image: Image {
            repository: image.repository.clone(),
            tag: tag.to_owned(),
            digest: image.digest.clone(),
            account: image.registry.clone(),
            region: image.region.clone(),
        },
        requested: None,
        replicated_from: None,
    };
    let service = config.name.clone();
    let prepared = admit::prepare_service(ctx, &push, config, WhenLocked::Queue).await?;
    if prepared.outcome == PreparedOutcome::Superseded {
        // The lock already holds a newer push: nothing was deployed.
        report.skipped.push(format!(
            "{service}: {tag}@{} is older than what the lock holds (recorded as {}, superseded)",
            image.digest, prepared.deployment_id
        ));
        return Ok(());
    }
    if prepared.outcome == PreparedOutcome::Started {
        executions::start_in_stack(ctx, &prepared.deployment_id).await;
    }
    warn!(
        %service, deployment_id = %prepared.deployment_id, %tag, digest = %image.digest,
        outcome = ?prepared.outcome, "deploying a push whose event never arrived"
    );
    report.deployed.push(format!(
        "{service}: {} ({tag}@{}, {:?})",
        prepared.deployment_id, image.digest, prepared.outcome
    ));
    Ok(())
}

/// The decision: the newest image of `images` (and the tag it matched) that `config` watches,
/// pushed after the service's `newest` deployment (after it was asked for, when a person asked
/// for it) and at least [`EVENT_GRACE_SECONDS`] before
/// `now`, unless it is the image `newest` deploys. Ties on push time go to the greater digest,
/// so every run picks the same one.
pub fn newest_missed<'a>(
    config: &ServiceConfig,
    images: &'a [RegistryImage],
    newest: &Deployment,
    now: DateTime<Utc>,
) -> Option<(&'a RegistryImage, &'a str)> {
    let settled = now - Duration::seconds(EVENT_GRACE_SECONDS);
    // A person's request is ordered among the pushes by the lock, not by when it was asked
    // (release::request_order): an image pushed before the request and never deployed is
    // history once a person chose what runs — deploying it would undo their rollback.
    let after = if naming::is_request_event_id(&newest.event_id) {
        newest.pushed_at.max(newest.created_at)
    } else {
        newest.pushed_at
    };
    let (image, tag) = images
        .iter()
        .filter(|i| i.repository == config.source.repository)
        .filter_map(|i| Some((i, i.tags.iter().find(|t| config.matches_tag(t))?)))
        .max_by(|(a, _), (b, _)| (a.pushed_at, &a.digest).cmp(&(b.pushed_at, &b.digest)))?;
    let missed = image.pushed_at > after
        && image.pushed_at <= settled
        && image.digest != newest.image.digest;
    missed.then_some((image, tag.as_str()))
}
