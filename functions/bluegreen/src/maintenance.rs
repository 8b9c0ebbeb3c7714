//! Maintenance mode (listener mode, `migration.maintenance = true`): while the production
//! migration runs, production answers a fixed 503 page. bluegreen adds an ALB fixed-response
//! rule matching every path above every other rule of the production listener, tagged with the
//! deployment, and removes it when the migration stopped. The rule is found by its tags, so a
//! retry never adds a second one; abort, rollback, finish and teardown always remove it.

use crate::config::{ServiceConfig, Traffic};
use crate::context::Context;
use crate::error::{StepError, StepResult};
use crate::naming::{TAG_DEPLOYMENT, TAG_MANAGED, TAG_ROLE};
use crate::ports::compute::Tags;
use crate::ports::load_balancing::{FixedResponseRule, RuleState};
use crate::record::Deployment;

/// The `bluegreen:role` tag value of a maintenance rule.
const ROLE: &str = "maintenance";
/// What production answers while the migration runs.
const PAGE: &str = "<!doctype html><title>Maintenance</title>\
                    <h1>Down for maintenance</h1><p>We will be back in a few minutes.</p>";

/// Adds the maintenance rule for `deployment` unless it is there.
pub async fn switch_on(ctx: &Context, deployment: &Deployment) -> StepResult<()> {
    let listener = production_listener(&deployment.config)?;
    let rules = ctx.ports.load_balancing.rules(listener).await?;
    if rules
        .iter()
        .any(|rule| is_maintenance_of(&rule.tags, &deployment.deployment_id))
    {
        return Ok(());
    }
    let page = FixedResponseRule {
        priority: top_priority(&rules)?,
        status_code: "503".into(),
        content_type: "text/html".into(),
        body: PAGE.into(),
        tags: vec![
            tag(TAG_MANAGED, "true"),
            tag(TAG_DEPLOYMENT, &deployment.deployment_id),
            tag(TAG_ROLE, ROLE),
        ],
    };
    ctx.ports
        .load_balancing
        .create_fixed_response_rule(listener, &page)
        .await?;
    Ok(())
}

/// Removes every maintenance rule of `deployment` (none is fine). Returns whether one was
/// removed.
pub async fn switch_off(ctx: &Context, deployment: &Deployment) -> StepResult<bool> {
    let mut removed = false;
    for (arn, owner) in rules_of(ctx, &deployment.config).await? {
        if owner == deployment.deployment_id {
            delete(ctx, &arn).await?;
            removed = true;
        }
    }
    Ok(removed)
}

/// Every maintenance rule on the service's production listener, with the deployment that
/// added it: `(rule ARN, deployment id)`. None in DNS mode.
pub async fn rules_of(ctx: &Context, config: &ServiceConfig) -> StepResult<Vec<(String, String)>> {
    let Ok(listener) = production_listener(config) else {
        return Ok(Vec::new());
    };
    let rules = ctx.ports.load_balancing.rules(listener).await?;
    Ok(rules
        .into_iter()
        .filter(|rule| role_of(&rule.tags) == Some(ROLE))
        .map(|rule| {
            let owner = tag_value(&rule.tags, TAG_DEPLOYMENT).unwrap_or_default();
            (rule.arn, owner.to_owned())
        })
        .collect())
}

/// Deletes one rule (one already gone is fine).
pub async fn delete(ctx: &Context, rule_arn: &str) -> StepResult<()> {
    ctx.ports.load_balancing.delete_rule(rule_arn).await
}

fn production_listener(config: &ServiceConfig) -> StepResult<&str> {
    match &config.traffic {
        Traffic::Listener {
            production_listener_arn,
            ..
        } => Ok(production_listener_arn),
        Traffic::Dns { .. } => Err(StepError::ConfigInvalid(vec![
            "migration.maintenance: needs traffic mode 'listener'".into(),
        ])),
    }
}

fn tag(key: &str, value: &str) -> (String, String) {
    (key.to_owned(), value.to_owned())
}

fn tag_value<'a>(tags: &'a Tags, key: &str) -> Option<&'a str> {
    tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn role_of(tags: &Tags) -> Option<&str> {
    tag_value(tags, TAG_ROLE)
}

fn is_maintenance_of(tags: &Tags, deployment_id: &str) -> bool {
    role_of(tags) == Some(ROLE) && tag_value(tags, TAG_DEPLOYMENT) == Some(deployment_id)
}

fn top_priority(rules: &[RuleState]) -> StepResult<i32> {
    let lowest = rules.iter().filter_map(|r| r.priority).min();
    match lowest {
        None => Ok(1),
        Some(1) => Err(StepError::MaintenanceFailed(
            "priority 1 of the production listener is taken by another rule; the maintenance \
             page must come before every rule"
                .into(),
        )),
        Some(p) => Ok(p - 1),
    }
}
