//! Prepare: turn an ECR push into deployments — match service configs, take each service's
//! lock (or queue behind the running deployment), read which slot is live from AWS, and create
//! the deployment record.

use chrono::Duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::config::{ServiceConfig, StackRegistry};
use crate::config_store::{ConfigStore, InvalidConfig};
use crate::context::Context;
use crate::error::{StepError, StepResult};
use crate::event::{self, Intake, Push};
use crate::lock::Locks;
use crate::naming;
use crate::notify;
use crate::record::StepOutcome;
use crate::record::{Deployment, Records, Status};

pub use crate::admit::{Prepared1, PreparedOutcome};
use crate::admit::{
    WhenLocked, auto_approval_allowed, new_record, prepare_service, resume_queued, summary,
};

const STEP: &str = super::registry::PREPARE.name;

/// What prepare made of one event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Prepared {
    /// Nothing to do, and why.
    Ignored {
        /// Why the event starts nothing.
        reason: String,
    },
    /// One entry per matching service.
    Deployments {
        /// The deployments this push created or found.
        deployments: Vec<Prepared1>,
    },
}

/// Handles an EventBridge event, or `{"resume": "<deployment id>"}` for a queued deployment
/// that has been handed the lock by the deployment before it.
pub async fn run(ctx: &Context, input: &serde_json::Value) -> StepResult<Prepared> {
    if let Some(resume) = input.get("resume") {
        let id = resume
            .as_str()
            .ok_or_else(|| StepError::EventMalformed("resume must be a deployment id".into()))?;
        let one = resume_queued(ctx, id).await?;
        return Ok(Prepared::Deployments {
            deployments: vec![one],
        });
    }
    let push = match event::parse(input)? {
        Intake::Ignored(reason) => {
            info!(%reason, "event ignored");
            return Ok(Prepared::Ignored { reason });
        }
        Intake::Push(push) => push,
    };
    let Watchers {
        matching,
        invalid,
        elsewhere,
    } = watchers(ctx, &push).await?;
    if matching.is_empty() && invalid.is_empty() {
        let reason = unwatched(&push, &elsewhere);
        info!(%reason, "event ignored");
        return Ok(Prepared::Ignored { reason });
    }
    let mut deployments = Vec::new();
    for bad in invalid {
        warn!(service = %bad.service, error = %bad.error(), "push for an invalid config");
        let id = naming::deployment_id(&bad.service, &push.event_id, push.time);
        report_invalid_config(ctx, &bad, &id).await?;
        deployments.push(Prepared1::failed(id, bad.service.clone(), &bad.error()));
    }
    match prepare_watchers(ctx, &push, matching, &mut deployments).await {
        Some(e) => Err(e),
        None => Ok(Prepared::Deployments { deployments }),
    }
}

/// The valid configs a push event would prepare a deployment for (none for an event intake
/// ignores); reads only. `bluegreen run --auto-approve` checks them before the intake runs.
pub async fn configs_deploying(
    ctx: &Context,
    input: &serde_json::Value,
) -> StepResult<Vec<ServiceConfig>> {
    match event::parse(input)? {
        Intake::Ignored(_) => Ok(Vec::new()),
        Intake::Push(push) => Ok(watchers(ctx, &push).await?.matching),
    }
}

/// Why a push no service takes is ignored: nobody watches it, or only in other registries.
fn unwatched(push: &Push, elsewhere: &[String]) -> String {
    if elsewhere.is_empty() {
        format!(
            "no service watches {}:{}",
            push.image.repository, push.image.tag
        )
    } else {
        format!(
            "{}:{} from {} in {}: {}",
            push.image.repository,
            push.image.tag,
            push.image.account,
            push.image.region,
            elsewhere.join("; ")
        )
    }
}

/// Prepares each watching service on its own, adding its answer to `deployments`; returns
/// the first retryable error (after every service was tried), for Step Functions to retry the
/// whole intake.
async fn prepare_watchers(
    ctx: &Context,
    push: &Push,
    matching: Vec<ServiceConfig>,
    deployments: &mut Vec<Prepared1>,
) -> Option<StepError> {
    let mut retry = None;
    for config in matching {
        let service = config.name.clone();
        let id = naming::deployment_id(&service, &push.event_id, push.time);
        // Refused before anything is looked up or parked: a parked record would carry the
        // config past this check (the reconciler puts it through the queue as it stands).
        if let Err(e) = auto_approval_allowed(ctx, &config) {
            deployments.push(Prepared1::failed(id, service, &e));
            continue;
        }
        // A push the missed-push sweep deployed before its event arrived: the same deployment.
        // When that cannot be told, nothing is parked (a parked record could deploy the same
        // image a second time); the retry asks again.
        match swept(ctx, &service, push).await {
            Ok(Some(swept)) => {
                info!(%service, deployment_id = %swept.deployment_id, "push already deployed by the sweep");
                deployments.push(summary(&swept));
                continue;
            }
            Ok(None) => {}
            Err(e) if e.is_retryable() => {
                warn!(%service, error = %e, "could not tell whether the sweep deployed this push; retried");
                retry.get_or_insert(e);
                continue;
            }
            Err(e) => {
                deployments.push(Prepared1::failed(id, service, &e));
                continue;
            }
        }
        match prepare_service(ctx, push, config.clone(), WhenLocked::Queue).await {
            Ok(one) => deployments.push(one),
            // A retryable error stops only this service: the services after it are prepared
            // now, and this one's push is parked (see `park`). Step Functions then retries the
            // whole intake; every service's prepare is idempotent (the record it wrote is found
            // again), so a retry repeats nothing and goes through the queue with the parked one.
            Err(e) if e.is_retryable() => {
                warn!(%service, deployment_id = %id, error = %e, "service not prepared yet; parked for a retry");
                if let Err(parking) = park(ctx, push, &id, config, &e).await {
                    warn!(%service, error = %parking, "could not park the push");
                }
                retry.get_or_insert(e);
            }
            // One service's failure stops only that service (what it took was given back).
            Err(e) => deployments.push(Prepared1::failed(id, service, &e)),
        }
    }
    retry
}

/// Parks a push whose prepare failed with a retryable error: a `queued` record that the lock
/// does not name, with the error on its timeline (a record already written is left as it is).
/// The intake's retry finds it and puts it through the queue; if every retry fails too (the
/// intake ends `Rejected`), the reconciler's sweep of unqueued records does, after its grace.
/// Without it, a push whose prepare kept failing left nothing behind and never deployed.
async fn park(
    ctx: &Context,
    push: &Push,
    id: &str,
    config: ServiceConfig,
    error: &StepError,
) -> StepResult<()> {
    let mut deployment = new_record(ctx, id, push, config, Status::Queued, None);
    deployment.timeline = vec![crate::record::TimelineEntry {
        step: STEP.into(),
        at: ctx.now(),
        outcome: StepOutcome::Failed,
        detail: format!(
            "not prepared: {}: {error}; parked as queued (the intake's retry, or the \
             reconciler's sweep after every retry failed, puts it through the queue)",
            error.name()
        ),
    }];
    Records::new(ctx).create(&deployment).await.map(drop)
}

/// How far before a push's event time intake looks for the missed-push sweep's deployment of
/// its image (the sweep records ECR's push time, the event has whole seconds; clocks differ).
const SWEPT_SEARCH_SLACK_SECONDS: i64 = 3600;

/// The deployment the missed-push sweep ([`crate::missed_pushes`]) started for this push's
/// image, if any: intake answers it instead of deploying the image a second time when the
/// event arrives late.
async fn swept(ctx: &Context, service: &str, push: &Push) -> StepResult<Option<Deployment>> {
    let event_id = naming::missed_push_event_id(&push.image.digest);
    let since = push.time - Duration::seconds(SWEPT_SEARCH_SLACK_SECONDS);
    Records::new(ctx)
        .newest_for_service_since(service, since, |d| d.event_id == event_id)
        .await
}

/// The services a push concerns, from the configs indexed under its repository.
struct Watchers {
    /// Valid configs that take it.
    matching: Vec<ServiceConfig>,
    /// Invalid configs of its repository (reported, never deployed).
    invalid: Vec<InvalidConfig>,
    /// Why services watching the same repository name and tag did not take it (another
    /// registry, region or pull source).
    elsewhere: Vec<String>,
}

/// Reads the configs watching the push's repository and sorts them. Only the configs indexed
/// under the pushed repository are read: a push costs the same however many services the
/// account has.
async fn watchers(ctx: &Context, push: &Push) -> StepResult<Watchers> {
    let mut matching = Vec::new();
    let mut invalid = Vec::new();
    let mut elsewhere = Vec::new();
    let stack = StackRegistry {
        account: ctx.settings.account_id.clone(),
        region: ctx.region.clone(),
    };
    for stored in ConfigStore::new(ctx)
        .watching(&push.image.repository)
        .await?
    {
        match stored {
            Ok(c)
                if c.source.repository == push.image.repository
                    && c.matches_tag(&push.image.tag) =>
            {
                // Same repository name, another registry (a forwarded event of another
                // account, another region, a replica the service does not pull from).
                match c.takes_from(push, &stack) {
                    Ok(()) => matching.push(c),
                    Err(why) => elsewhere.push(why),
                }
            }
            Ok(_) => {}
            // A broken config is only this service's problem; it is reported when a push for
            // its repository arrives, and otherwise left to `bluegreen config validate`.
            Err(bad) if bad.repository.as_deref() == Some(push.image.repository.as_str()) => {
                invalid.push(bad)
            }
            Err(bad) => warn!(parameter = %bad.parameter, "invalid service config skipped"),
        }
    }
    Ok(Watchers {
        matching,
        invalid,
        elsewhere,
    })
}

/// Tells people once per config version that pushes for its service deploy nothing. A lost
/// message is logged, not retried (the marker is written first, so a retry cannot repeat it).
async fn report_invalid_config(ctx: &Context, bad: &InvalidConfig, id: &str) -> StepResult<()> {
    if Locks::new(ctx)
        .first_report_of_invalid_config(&bad.service, bad.version)
        .await?
        && let Err(e) = notify::config_invalid(ctx, &bad.service, id, &bad.problems).await
    {
        warn!(error = %e, "could not publish the invalid-config notice");
    }
    Ok(())
}
