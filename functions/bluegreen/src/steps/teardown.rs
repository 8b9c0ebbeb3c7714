//! Scheduled teardown: remove pre-prod slots, warm old slots, database clones and their
//! secrets whose expiry has passed and that no running deployment owns. A slot that production
//! routes to is never touched: the live slot is read from AWS for every service before anything
//! is changed. A service on ECS's own blue/green has no idle slot (ECS scales the old revision
//! in itself): only its ended deployments' rules and clones are removed.
//!
//! Each run is bounded: it takes the next page of services from the service index (a cursor
//! there says where the last run stopped) and a bounded number of clones, so its cost does not
//! grow with the number of services; the account is covered over several runs.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::autoscaling;
use crate::config::ServiceConfig;
use crate::config_store::ConfigStore;
use crate::context::Context;
use crate::db_guard;
use crate::ecs;
use crate::error::{StepError, StepResult};
use crate::lock::Locks;
use crate::maintenance;
use crate::naming::{TAG_DEPLOYMENT, TAG_EXPIRES, TAG_MANAGED, TAG_ROLE};
use crate::ports::compute::Tags;
use crate::record::Records;
use crate::routing;
use crate::secret_reference::{CLONE_SECRET_PREFIX, clone_of_secret};
use crate::service_index::ServiceIndex;
use crate::test_rule;

/// Services one run looks at. Each costs a handful of ELB, ECS and DynamoDB reads; a run
/// stays well inside the function's timeout, and the whole account is covered every
/// `ceil(services / SERVICES_PER_RUN)` runs.
const SERVICES_PER_RUN: i32 = 25;

/// Expired clones one run deletes at most; the rest go next run.
const CLONES_PER_RUN: usize = 10;

/// The cursor (in the service index) where the last run stopped.
const CURSOR: &str = "teardown";

/// What teardown removed and what it left, with reasons.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TeardownReport {
    /// Resources removed (scaled to zero or deleted).
    pub removed: Vec<String>,
    /// Expired resources left in place, with the reason.
    pub kept: Vec<String>,
    /// The services this run looked at (a page of the service index).
    #[serde(default)]
    pub services: Vec<String>,
    /// Where the next run starts (the last service looked at); `None`: from the beginning.
    #[serde(default)]
    pub continues_after: Option<String>,
}

/// Runs one bounded teardown pass: the next [`SERVICES_PER_RUN`] services of the index after
/// where the last run stopped, then up to [`CLONES_PER_RUN`] expired clones. Each service is
/// handled on its own: an invalid config, a deleted slot service or a failing call is
/// reported in `kept` and the pass goes on. A clone is removed only when the task
/// definitions its service's slots run could be read and none names it.
pub async fn run(ctx: &Context) -> StepResult<TeardownReport> {
    let now = ctx.now();
    let mut report = TeardownReport::default();
    let index = ServiceIndex::new(ctx);
    report.services = index.next_page(CURSOR, SERVICES_PER_RUN).await?;
    for stored in ConfigStore::new(ctx).load_many(&report.services).await? {
        let config = match stored {
            Ok(config) => config,
            Err(bad) => {
                report.kept.push(format!(
                    "{}: config invalid, its resources left alone ({})",
                    bad.service,
                    bad.problems.join("; ")
                ));
                continue;
            }
        };
        if let Err(e) = tear_down_service(ctx, &config, now, &mut report).await {
            warn!(service = %config.name, error = %e, "service skipped this pass");
            report.kept.push(format!("{}: {e}", config.name));
        }
    }
    report.continues_after = index
        .move_past(CURSOR, &report.services, SERVICES_PER_RUN)
        .await?;
    remove_clones(ctx, now, &mut report).await?;
    info!(
        services = report.services.len(),
        removed = report.removed.len(),
        kept = report.kept.len(),
        "teardown pass done"
    );
    Ok(report)
}

/// The listener rules ended deployments of the service left: a maintenance page answers
/// production with 503s, a test rule shows nothing anyone is deploying. They go even while the
/// service is locked (by a deployment a person must look at, say).
async fn remove_ended_rules(
    ctx: &Context,
    config: &ServiceConfig,
    report: &mut TeardownReport,
) -> StepResult<()> {
    for (role, what) in [
        (maintenance::ROLE, "maintenance rule"),
        (test_rule::ROLE, "test rule"),
    ] {
        for (rule, owner) in maintenance::deployment_rules(ctx, config, role).await? {
            if !running(ctx, &owner).await? {
                maintenance::delete(ctx, &rule).await?;
                report
                    .removed
                    .push(format!("{what} {rule} of ended deployment {owner}"));
            }
        }
    }
    Ok(())
}

/// One service: its ended deployments' listener rules, and its expired idle slot — unless
/// the service is locked (a deployment, an operator action or a person owns its slots now).
async fn tear_down_service(
    ctx: &Context,
    config: &ServiceConfig,
    now: DateTime<Utc>,
    report: &mut TeardownReport,
) -> StepResult<()> {
    remove_ended_rules(ctx, config, report).await?;
    if !crate::engine::of(config).has_idle_slot() {
        // One service, production's: ECS scales its old revision in itself.
        return Ok(());
    }
    if let Some(lock) = Locks::new(ctx).read(&config.name).await? {
        report.kept.push(format!(
            "{}: slots left alone, locked by {}",
            config.name, lock.holder
        ));
        return Ok(());
    }
    let live = match routing::read_production(ctx, config)
        .await
        .and_then(|s| s.live())
    {
        Ok(live) => live,
        Err(e) => {
            report
                .kept
                .push(format!("{}: live slot unknown ({e})", config.name));
            return Ok(());
        }
    };
    let idle = &config.slots.get(live.other()).service;
    let service = ecs::describe_service(ctx, &config.cluster, idle).await?;
    let arn = service.arn.clone();
    let tags = ctx.ports.compute.tags_of(&arn).await?;
    let tag = |k: &str| {
        tags.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    if tag(TAG_ROLE).is_none() || !expired(tag(TAG_EXPIRES).as_deref(), now) {
        return Ok(());
    }
    if let Some(owner) = tag(TAG_DEPLOYMENT)
        && running(ctx, &owner).await?
    {
        report
            .kept
            .push(format!("{idle}: deployment {owner} is still running"));
        return Ok(());
    }
    if let Err(e) = routing::ensure_unrouted(ctx, config, live.other(), "teardown").await {
        report.kept.push(format!("{idle}: {e}"));
        return Ok(());
    }
    autoscaling::rest(ctx, &config.cluster, idle).await?;
    if service.desired_count > 0 {
        ecs::update_service(ctx, &config.cluster, idle, None, 0).await?;
    }
    ctx.ports
        .compute
        .untag_resource(&arn, &[TAG_ROLE, TAG_EXPIRES])
        .await?;
    report
        .removed
        .push(format!("ECS service {}/{idle} scaled to 0", config.cluster));
    Ok(())
}

fn expired(expires_at: Option<&str>, now: DateTime<Utc>) -> bool {
    expires_at
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .is_some_and(|t| t.to_utc() <= now)
}

/// Whether the deployment exists and has not ended.
async fn running(ctx: &Context, deployment_id: &str) -> StepResult<bool> {
    match Records::new(ctx).get(deployment_id).await {
        Ok(d) => Ok(!d.status.is_terminal()),
        Err(StepError::DeploymentNotFound(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

fn rds_tag(tags: &Tags, key: &str) -> Option<String> {
    tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

async fn remove_clones(
    ctx: &Context,
    now: DateTime<Utc>,
    report: &mut TeardownReport,
) -> StepResult<()> {
    let mut uses = CloneUses::default();
    let mut removed = 0;
    let databases = &ctx.ports.databases;
    for instance in databases.all_instances().await? {
        if instance.cluster.is_some() {
            continue; // removed with its cluster below
        }
        if removed >= CLONES_PER_RUN {
            return Ok(());
        }
        let id = instance.identifier.clone();
        if let Some(reason) = keep_clone(ctx, &instance.tags, now, &id, &mut uses).await? {
            if let Some(reason) = reason {
                report.kept.push(format!("DB instance {id}: {reason}"));
            }
            continue;
        }
        databases.delete_instance(&id).await?;
        report.removed.push(format!("DB instance {id} deleted"));
        removed += 1;
    }
    for cluster in databases.all_clusters().await? {
        if removed >= CLONES_PER_RUN {
            return Ok(());
        }
        let id = cluster.identifier.clone();
        if let Some(reason) = keep_clone(ctx, &cluster.tags, now, &id, &mut uses).await? {
            if let Some(reason) = reason {
                report.kept.push(format!("DB cluster {id}: {reason}"));
            }
            continue;
        }
        for instance in &cluster.members {
            databases.delete_instance(instance).await?;
        }
        databases.delete_cluster(&id).await?;
        report.removed.push(format!("DB cluster {id} deleted"));
        removed += 1;
    }
    // A clone's secret (`database.secret`) whose ending did not delete it: judged like its
    // clone, by the same tags and the same references from running slots.
    for secret in ctx.ports.secrets.secrets_named(CLONE_SECRET_PREFIX).await? {
        if removed >= CLONES_PER_RUN {
            return Ok(());
        }
        let id = clone_of_secret(&secret.name);
        if let Some(reason) = keep_clone(ctx, &secret.tags, now, id, &mut uses).await? {
            if let Some(reason) = reason {
                report
                    .kept
                    .push(format!("secret {}: {reason}", secret.name));
            }
            continue;
        }
        ctx.ports.secrets.delete_secret(&secret.arn).await?;
        report
            .removed
            .push(format!("secret {} deleted", secret.name));
        removed += 1;
    }
    Ok(())
}

/// What each service's running slots name in their task definitions, read once per run and
/// only for services that own an expired clone.
#[derive(Default)]
struct CloneUses(HashMap<String, Result<Vec<String>, String>>);

impl CloneUses {
    /// Why the clone `id`, made by a deployment of `service`, must stay: a running slot of
    /// the service names it, or what they run cannot be read (never guessed unused).
    async fn keeps(&mut self, ctx: &Context, service: &str, id: &str) -> Option<String> {
        if !self.0.contains_key(service) {
            let values = match ConfigStore::new(ctx).load(service).await {
                Ok(config) => db_guard::env_values_in_use(ctx, &config)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            self.0.insert(service.to_owned(), values);
        }
        match &self.0[service] {
            Ok(values) if values.iter().any(|v| v.contains(id)) => {
                Some("a running slot's task definition uses it".into())
            }
            Ok(_) => None,
            Err(e) => Some(format!("what {service}'s slots run is unknown ({e})")),
        }
    }
}

/// `None` to delete; `Some(None)` to skip silently (not ours, not expired); `Some(Some(why))`
/// to keep an expired clone: its deployment still runs, its owner is unknown, or its
/// service's slots use it (or what they run cannot be read).
async fn keep_clone(
    ctx: &Context,
    tags: &Tags,
    now: DateTime<Utc>,
    id: &str,
    uses: &mut CloneUses,
) -> StepResult<Option<Option<String>>> {
    if rds_tag(tags, TAG_MANAGED).as_deref() != Some("true")
        || !expired(rds_tag(tags, TAG_EXPIRES).as_deref(), now)
    {
        return Ok(Some(None));
    }
    let Some(owner) = rds_tag(tags, TAG_DEPLOYMENT) else {
        return Ok(Some(Some(
            "no deployment tag: its service is unknown".into(),
        )));
    };
    let service = match Records::new(ctx).get(&owner).await {
        Ok(d) if !d.status.is_terminal() => {
            return Ok(Some(Some(format!("deployment {owner} is still running"))));
        }
        Ok(d) => d.service,
        Err(StepError::DeploymentNotFound(_)) => {
            return Ok(Some(Some(format!(
                "deployment {owner} has no record: its service is unknown"
            ))));
        }
        Err(e) => return Err(e),
    };
    Ok(uses.keeps(ctx, &service, id).await.map(Some))
}
