//! Maintenance mode (listener mode, `migration.maintenance = true`): while the production
//! migration runs, production answers a fixed 503 page. bluegreen adds an ALB fixed-response
//! rule matching every path above every other rule of the production listener, tagged with the
//! deployment, and removes it when the migration stopped. The rule is found by its tags, so a
//! retry never adds a second one; abort, rollback, finish and teardown always remove it.

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, FixedResponseActionConfig, PathPatternConditionConfig, Rule,
    RuleCondition, Tag,
};

use crate::config::{ServiceConfig, Traffic};
use crate::context::Context;
use crate::elb;
use crate::error::{StepError, StepResult};
use crate::naming::{TAG_DEPLOYMENT, TAG_MANAGED, TAG_ROLE};
use crate::record::Deployment;

/// The `bluegreen:role` tag value of a maintenance rule.
const ROLE: &str = "maintenance";
/// What production answers while the migration runs.
const PAGE: &str = "<!doctype html><title>Maintenance</title>\
                    <h1>Down for maintenance</h1><p>We will be back in a few minutes.</p>";

/// Adds the maintenance rule for `deployment` unless it is there.
pub async fn switch_on(ctx: &Context, deployment: &Deployment) -> StepResult<()> {
    let listener = production_listener(&deployment.config)?;
    let rules = elb::listener_rules(ctx, listener).await?;
    let tagged = elb::rule_tags(ctx, &rules).await?;
    if tagged
        .iter()
        .any(|(_, tags)| is_maintenance_of(tags, &deployment.deployment_id))
    {
        return Ok(());
    }
    let priority = top_priority(&rules)?;
    let action = Action::builder()
        .r#type(ActionTypeEnum::FixedResponse)
        .fixed_response_config(
            FixedResponseActionConfig::builder()
                .status_code("503")
                .content_type("text/html")
                .message_body(PAGE)
                .build(),
        )
        .build();
    let every_path = RuleCondition::builder()
        .field("path-pattern")
        .path_pattern_config(PathPatternConditionConfig::builder().values("/*").build())
        .build();
    let tags = vec![
        tag(TAG_MANAGED, "true"),
        tag(TAG_DEPLOYMENT, &deployment.deployment_id),
        tag(TAG_ROLE, ROLE),
    ];
    elb::create_rule(ctx, listener, priority, every_path, action, tags).await?;
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
    let rules = elb::listener_rules(ctx, listener).await?;
    Ok(elb::rule_tags(ctx, &rules)
        .await?
        .into_iter()
        .filter(|(_, tags)| role_of(tags) == Some(ROLE))
        .map(|(arn, tags)| {
            let owner = tags
                .iter()
                .find(|t| t.key.as_deref() == Some(TAG_DEPLOYMENT))
                .and_then(|t| t.value.clone())
                .unwrap_or_default();
            (arn, owner)
        })
        .collect())
}

/// Deletes one rule (one already gone is fine).
pub async fn delete(ctx: &Context, rule_arn: &str) -> StepResult<()> {
    elb::delete_rule(ctx, rule_arn).await
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

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

fn role_of(tags: &[Tag]) -> Option<&str> {
    tags.iter()
        .find(|t| t.key.as_deref() == Some(TAG_ROLE))
        .and_then(|t| t.value.as_deref())
}

fn is_maintenance_of(tags: &[Tag], deployment_id: &str) -> bool {
    role_of(tags) == Some(ROLE)
        && tags.iter().any(|t| {
            t.key.as_deref() == Some(TAG_DEPLOYMENT) && t.value.as_deref() == Some(deployment_id)
        })
}

/// A priority above every existing rule: one less than the smallest in use (1 when there are
/// none). Refused when priority 1 is taken: the page must come before every other rule.
fn top_priority(rules: &[Rule]) -> StepResult<i32> {
    let lowest = rules
        .iter()
        .filter_map(|r| r.priority.as_deref()?.parse::<i32>().ok())
        .min();
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
