//! The Elastic Load Balancing adapter: every ELBv2 call bluegreen makes (listeners, rules,
//! their tags, target health), with errors mapped to [`StepError`]s that name the missing
//! resource. What the actions mean (which slot is live, the maintenance page) is decided by
//! `routing` and `maintenance`, not here.

use aws_sdk_elasticloadbalancingv2::types::{
    Action, Rule, RuleCondition, Tag, TargetGroup, TargetHealthDescription,
};

use crate::context::Context;
use crate::error::{StepError, StepResult};

/// DescribeTags takes at most this many ARNs per call.
const TAGS_PER_CALL: usize = 20;

/// The default actions of a listener.
pub async fn listener_actions(ctx: &Context, listener_arn: &str) -> StepResult<Vec<Action>> {
    let out = ctx
        .elb
        .describe_listeners()
        .listener_arns(listener_arn)
        .send()
        .await
        .map_err(|e| match e.as_service_error() {
            Some(s) if s.is_listener_not_found_exception() => listener_not_found(listener_arn),
            _ => StepError::from_sdk("elasticloadbalancing:DescribeListeners", e),
        })?;
    let listener = out
        .listeners
        .unwrap_or_default()
        .into_iter()
        .next()
        .ok_or_else(|| listener_not_found(listener_arn))?;
    Ok(listener.default_actions.unwrap_or_default())
}

/// The actions of one listener rule.
pub async fn rule_actions(ctx: &Context, rule_arn: &str) -> StepResult<Vec<Action>> {
    let out = ctx
        .elb
        .describe_rules()
        .rule_arns(rule_arn)
        .send()
        .await
        .map_err(|e| match e.as_service_error() {
            Some(s) if s.is_rule_not_found_exception() => rule_not_found(rule_arn),
            _ => StepError::from_sdk("elasticloadbalancing:DescribeRules", e),
        })?;
    let rule = out
        .rules
        .unwrap_or_default()
        .into_iter()
        .next()
        .ok_or_else(|| rule_not_found(rule_arn))?;
    Ok(rule.actions.unwrap_or_default())
}

/// Replaces a listener's default actions (one call: the whole split changes at once).
pub async fn set_listener_actions(
    ctx: &Context,
    listener_arn: &str,
    actions: Vec<Action>,
) -> StepResult<()> {
    ctx.elb
        .modify_listener()
        .listener_arn(listener_arn)
        .set_default_actions(Some(actions))
        .send()
        .await
        .map_err(|e| StepError::from_sdk("elasticloadbalancing:ModifyListener", e))?;
    Ok(())
}

/// Replaces a rule's actions.
pub async fn set_rule_actions(
    ctx: &Context,
    rule_arn: &str,
    actions: Vec<Action>,
) -> StepResult<()> {
    ctx.elb
        .modify_rule()
        .rule_arn(rule_arn)
        .set_actions(Some(actions))
        .send()
        .await
        .map_err(|e| StepError::from_sdk("elasticloadbalancing:ModifyRule", e))?;
    Ok(())
}

/// A listener's rules other than the default one, every page.
pub async fn listener_rules(ctx: &Context, listener_arn: &str) -> StepResult<Vec<Rule>> {
    let mut all = Vec::new();
    let mut marker = None;
    loop {
        let out = ctx
            .elb
            .describe_rules()
            .listener_arn(listener_arn)
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| StepError::from_sdk("elasticloadbalancing:DescribeRules", e))?;
        all.extend(
            out.rules
                .unwrap_or_default()
                .into_iter()
                .filter(|r| r.is_default != Some(true)),
        );
        marker = out.next_marker;
        if marker.is_none() {
            break;
        }
    }
    Ok(all)
}

/// The rules with their tags: `(rule ARN, tags)`.
pub async fn rule_tags(ctx: &Context, rules: &[Rule]) -> StepResult<Vec<(String, Vec<Tag>)>> {
    let arns: Vec<String> = rules.iter().filter_map(|r| r.rule_arn.clone()).collect();
    let mut found = Vec::new();
    for chunk in arns.chunks(TAGS_PER_CALL) {
        let out = ctx
            .elb
            .describe_tags()
            .set_resource_arns(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| StepError::from_sdk("elasticloadbalancing:DescribeTags", e))?;
        for description in out.tag_descriptions.unwrap_or_default() {
            found.push((
                description.resource_arn.unwrap_or_default(),
                description.tags.unwrap_or_default(),
            ));
        }
    }
    Ok(found)
}

/// Adds a rule to a listener, tagged at creation (so it is never untagged, even briefly).
pub async fn create_rule(
    ctx: &Context,
    listener_arn: &str,
    priority: i32,
    condition: RuleCondition,
    action: Action,
    tags: Vec<Tag>,
) -> StepResult<()> {
    ctx.elb
        .create_rule()
        .listener_arn(listener_arn)
        .priority(priority)
        .conditions(condition)
        .actions(action)
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(|e| StepError::from_sdk("elasticloadbalancing:CreateRule", e))?;
    Ok(())
}

/// Deletes one rule (one already gone is fine).
pub async fn delete_rule(ctx: &Context, rule_arn: &str) -> StepResult<()> {
    match ctx.elb.delete_rule().rule_arn(rule_arn).send().await {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_rule_not_found_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(StepError::from_sdk("elasticloadbalancing:DeleteRule", e)),
    }
}

/// The health of every target registered in a target group.
pub async fn target_health(
    ctx: &Context,
    target_group_arn: &str,
) -> StepResult<Vec<TargetHealthDescription>> {
    let out = ctx
        .elb
        .describe_target_health()
        .target_group_arn(target_group_arn)
        .send()
        .await
        .map_err(|e| match e.as_service_error() {
            Some(s) if s.is_target_group_not_found_exception() => StepError::ResourceNotFound {
                kind: "target group",
                id: target_group_arn.to_owned(),
            },
            _ => StepError::from_sdk("elasticloadbalancing:DescribeTargetHealth", e),
        })?;
    Ok(out.target_health_descriptions.unwrap_or_default())
}

fn listener_not_found(arn: &str) -> StepError {
    StepError::ResourceNotFound {
        kind: "listener",
        id: arn.to_owned(),
    }
}

fn rule_not_found(arn: &str) -> StepError {
    StepError::ResourceNotFound {
        kind: "listener rule",
        id: arn.to_owned(),
    }
}

/// The target group, or `None` when there is none with that ARN.
pub async fn target_group(ctx: &Context, arn: &str) -> StepResult<Option<TargetGroup>> {
    let out = ctx
        .elb
        .describe_target_groups()
        .target_group_arns(arn)
        .send()
        .await;
    match out {
        Ok(out) => Ok(out.target_groups.unwrap_or_default().into_iter().next()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_target_group_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(StepError::from_sdk(
            "elasticloadbalancing:DescribeTargetGroups",
            e,
        )),
    }
}

/// The tags of one ELB resource (listener, rule, target group) as `(key, value)` pairs;
/// `None` when ELB describes no such resource.
pub async fn tags_of(ctx: &Context, arn: &str) -> StepResult<Option<Vec<(String, String)>>> {
    let out = ctx
        .elb
        .describe_tags()
        .resource_arns(arn)
        .send()
        .await
        .map_err(|e| StepError::from_sdk("elasticloadbalancing:DescribeTags", e))?;
    Ok(out
        .tag_descriptions
        .unwrap_or_default()
        .into_iter()
        .find(|d| d.resource_arn.as_deref() == Some(arn))
        .map(|d| {
            d.tags
                .unwrap_or_default()
                .into_iter()
                .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
                .collect()
        }))
}
