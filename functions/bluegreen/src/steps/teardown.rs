//! Scheduled teardown: remove pre-prod slots, warm old slots and database clones whose expiry
//! has passed and that no running deployment owns. A slot that production routes to is never
//! touched: the live slot is read from AWS for every service before anything is changed.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::config::ServiceConfig;
use crate::config_store::ConfigStore;
use crate::context::Context;
use crate::db_guard;
use crate::ecs;
use crate::error::{StepError, StepResult};
use crate::lock::Locks;
use crate::maintenance;
use crate::naming::{TAG_DEPLOYMENT, TAG_EXPIRES, TAG_MANAGED, TAG_ROLE};
use crate::rds;
use crate::record::Records;
use crate::routing;

/// What teardown removed and what it left, with reasons.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TeardownReport {
    /// Resources removed (scaled to zero or deleted).
    pub removed: Vec<String>,
    /// Expired resources left in place, with the reason.
    pub kept: Vec<String>,
}

/// Runs one teardown pass over every registered service and every tagged clone. Each service
/// is handled on its own: an invalid config, a deleted slot service or a failing call is
/// reported in `kept` and the pass goes on. Clones are removed only when every service's
/// running task definitions could be read — a clone one of them might use is never guessed
/// unused.
pub async fn run(ctx: &Context) -> StepResult<TeardownReport> {
    let now = ctx.now();
    let mut report = TeardownReport::default();
    // Database settings of every running slot: a clone one of them names is never deleted.
    let mut in_use = Vec::new();
    let mut unseen = Vec::new();
    for stored in ConfigStore::new(ctx).load_each().await? {
        let config = match stored {
            Ok(config) => config,
            Err(bad) => {
                report.kept.push(format!(
                    "{}: config invalid, its resources left alone ({})",
                    bad.service,
                    bad.problems.join("; ")
                ));
                unseen.push(bad.service);
                continue;
            }
        };
        match db_guard::env_values_in_use(ctx, &config).await {
            Ok(values) => in_use.extend(values),
            Err(e) => {
                report.kept.push(format!(
                    "{}: running task definitions unreadable ({e})",
                    config.name
                ));
                unseen.push(config.name.clone());
                continue;
            }
        }
        if let Err(e) = tear_down_service(ctx, &config, now, &mut report).await {
            warn!(service = %config.name, error = %e, "service skipped this pass");
            report.kept.push(format!("{}: {e}", config.name));
        }
    }
    if unseen.is_empty() {
        remove_clones(ctx, now, &in_use, &mut report).await?;
    } else {
        report.kept.push(format!(
            "expired clones: not removed this pass, because what {} runs is unknown",
            unseen.join(", ")
        ));
    }
    info!(
        removed = report.removed.len(),
        kept = report.kept.len(),
        "teardown pass done"
    );
    Ok(report)
}

/// One service: its ended deployments' maintenance rules, and its expired idle slot — unless
/// the service is locked (a deployment, an operator action or a person owns its slots now).
async fn tear_down_service(
    ctx: &Context,
    config: &ServiceConfig,
    now: DateTime<Utc>,
    report: &mut TeardownReport,
) -> StepResult<()> {
    // A maintenance page of an ended deployment answers production with 503s: it goes even
    // while the service is locked (by a deployment a person must look at, say).
    for (rule, owner) in maintenance::rules_of(ctx, config).await? {
        if !running(ctx, &owner).await? {
            maintenance::delete(ctx, &rule).await?;
            report.removed.push(format!(
                "maintenance rule {rule} of ended deployment {owner}"
            ));
        }
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
    let Some(arn) = service.service_arn.clone() else {
        return Ok(());
    };
    let tags = ecs::tags_of(ctx, &arn).await?;
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
    if service.desired_count > 0 {
        ecs::update_service(ctx, &config.cluster, idle, None, 0).await?;
    }
    ecs::untag_resource(ctx, &arn, &[TAG_ROLE, TAG_EXPIRES]).await?;
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

fn rds_tag(tags: &Option<Vec<aws_sdk_rds::types::Tag>>, key: &str) -> Option<String> {
    tags.as_deref()
        .unwrap_or_default()
        .iter()
        .find(|t| t.key.as_deref() == Some(key))
        .and_then(|t| t.value.clone())
}

async fn remove_clones(
    ctx: &Context,
    now: DateTime<Utc>,
    in_use: &[String],
    report: &mut TeardownReport,
) -> StepResult<()> {
    let used = |id: &str| in_use.iter().any(|value| value.contains(id));
    for instance in rds::all_instances(ctx).await? {
        if instance.db_cluster_identifier.is_some() {
            continue; // removed with its cluster below
        }
        let id = instance.db_instance_identifier.clone().unwrap_or_default();
        if let Some(reason) = keep_clone(ctx, &instance.tag_list, now).await? {
            if let Some(reason) = reason {
                report.kept.push(format!("DB instance {id}: {reason}"));
            }
            continue;
        }
        if used(&id) {
            report.kept.push(format!(
                "DB instance {id}: a running slot's task definition uses it"
            ));
            continue;
        }
        rds::delete_instance(ctx, &id).await?;
        report.removed.push(format!("DB instance {id} deleted"));
    }
    for cluster in rds::all_clusters(ctx).await? {
        let id = cluster.db_cluster_identifier.clone().unwrap_or_default();
        if let Some(reason) = keep_clone(ctx, &cluster.tag_list, now).await? {
            if let Some(reason) = reason {
                report.kept.push(format!("DB cluster {id}: {reason}"));
            }
            continue;
        }
        if used(&id) {
            report.kept.push(format!(
                "DB cluster {id}: a running slot's task definition uses it"
            ));
            continue;
        }
        for member in cluster.db_cluster_members.unwrap_or_default() {
            if let Some(instance) = member.db_instance_identifier {
                rds::delete_instance(ctx, &instance).await?;
            }
        }
        rds::delete_cluster(ctx, &id).await?;
        report.removed.push(format!("DB cluster {id} deleted"));
    }
    Ok(())
}

/// `None` to delete; `Some(None)` to skip silently (not ours, not expired); `Some(Some(why))`
/// to keep an expired clone that a running deployment still owns.
async fn keep_clone(
    ctx: &Context,
    tags: &Option<Vec<aws_sdk_rds::types::Tag>>,
    now: DateTime<Utc>,
) -> StepResult<Option<Option<String>>> {
    if rds_tag(tags, TAG_MANAGED).as_deref() != Some("true")
        || !expired(rds_tag(tags, TAG_EXPIRES).as_deref(), now)
    {
        return Ok(Some(None));
    }
    if let Some(owner) = rds_tag(tags, TAG_DEPLOYMENT)
        && running(ctx, &owner).await?
    {
        return Ok(Some(Some(format!("deployment {owner} is still running"))));
    }
    Ok(None)
}
