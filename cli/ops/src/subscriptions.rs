//! Approval links reach only their approver: each approval request is published once per
//! approver with the message attribute `approver`, and each approver's subscription carries a
//! filter policy that admits only their own address. [`subscribe_approvers`] makes those
//! subscriptions (e-mail), [`audit`] finds every subscription on the topic that could receive
//! someone else's link (no filter policy, a filter that admits more than one approver, or one
//! that does not exclude approval requests).

use serde::Serialize;
use serde_json::{Value, json};

use bluegreen::config::ServiceConfig;
use bluegreen::context::Context;
use bluegreen::error::{StepError, StepResult};

/// The filter policy of `approver`'s subscription: approval requests for them only.
pub fn approver_filter(approver: &str) -> String {
    json!({ "approver": [approver] }).to_string()
}

/// Why a subscription with this filter policy (and scope) could receive another approver's
/// link, or `None` when it cannot.
pub fn exposes_links(filter_policy: Option<&str>, scope: Option<&str>) -> Option<String> {
    let Some(text) = filter_policy.filter(|t| !t.trim().is_empty()) else {
        return Some("no filter policy: it receives every approver's link".into());
    };
    if scope.is_some_and(|s| s != "MessageAttributes") {
        return Some(format!(
            "filter policy scope {}: bluegreen's attributes are not filtered",
            scope.unwrap_or_default()
        ));
    }
    let Ok(Value::Object(policy)) = serde_json::from_str::<Value>(text) else {
        return Some("the filter policy is not a JSON object".into());
    };
    let exact = |key: &str| -> Option<Vec<String>> {
        policy
            .get(key)?
            .as_array()?
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    if exact("approver").is_some_and(|values| values.len() == 1) {
        return None;
    }
    if exact("kind").is_some_and(|kinds| !kinds.iter().any(|k| k == "awaiting_approval")) {
        return None;
    }
    Some(
        "its filter admits approval requests for more than one approver (pin `approver` to one \
         address, or list `kind`s without awaiting_approval)"
            .into(),
    )
}

/// A subscription that could receive someone else's link.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exposed {
    /// The subscription.
    pub subscription_arn: String,
    /// Protocol and endpoint, e.g. `email alice@example.com`.
    pub endpoint: String,
    /// Why.
    pub problem: String,
}

fn topic(ctx: &Context) -> StepResult<&str> {
    ctx.settings.topic_arn.as_deref().ok_or_else(|| {
        StepError::ConfigInvalid(vec![
            "BLUEGREEN_TOPIC_ARN is not set (the stack's TopicArn output)".into(),
        ])
    })
}

/// One subscription of the topic, with its filter (confirmed ones only: a pending
/// confirmation has no attributes yet).
struct TopicSubscription {
    arn: String,
    protocol: String,
    endpoint: String,
    pending: bool,
    filter_policy: Option<String>,
    filter_scope: Option<String>,
}

/// Every subscription of the topic, every page, with its filter policy.
async fn topic_subscriptions(ctx: &Context) -> StepResult<Vec<TopicSubscription>> {
    let topic = topic(ctx)?;
    let mut all = Vec::new();
    let mut pages = ctx
        .sdk()?
        .sns
        .list_subscriptions_by_topic()
        .topic_arn(topic)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| StepError::from_sdk("sns:ListSubscriptionsByTopic", e))?;
        for subscription in page.subscriptions.unwrap_or_default() {
            let arn = subscription.subscription_arn.unwrap_or_default();
            let pending = !arn.starts_with("arn:");
            let mut attributes = if pending {
                Default::default()
            } else {
                ctx.sdk()?
                    .sns
                    .get_subscription_attributes()
                    .subscription_arn(&arn)
                    .send()
                    .await
                    .map_err(|e| StepError::from_sdk("sns:GetSubscriptionAttributes", e))?
                    .attributes
                    .unwrap_or_default()
            };
            all.push(TopicSubscription {
                arn,
                protocol: subscription.protocol.unwrap_or_default(),
                endpoint: subscription.endpoint.unwrap_or_default(),
                pending,
                filter_policy: attributes.remove("FilterPolicy"),
                filter_scope: attributes.remove("FilterPolicyScope"),
            });
        }
    }
    Ok(all)
}

/// Every confirmed subscription on the topic that could receive another approver's link.
/// Pending confirmations have no attributes yet and are listed as such.
pub async fn audit(ctx: &Context) -> StepResult<Vec<Exposed>> {
    let mut exposed = Vec::new();
    for s in topic_subscriptions(ctx).await? {
        let endpoint = format!("{} {}", s.protocol, s.endpoint);
        let problem = if s.pending {
            Some("pending confirmation: check it again once confirmed".to_owned())
        } else {
            exposes_links(s.filter_policy.as_deref(), s.filter_scope.as_deref())
        };
        if let Some(problem) = problem {
            exposed.push(Exposed {
                subscription_arn: s.arn,
                endpoint,
                problem,
            });
        }
    }
    Ok(exposed)
}

/// The e-mail approvers of `config` with no confirmed-or-pending subscription on the topic
/// that carries their own filter policy ([`approver_filter`]): their approval links reach
/// nobody (or, without the filter, reach everyone).
pub async fn unsubscribed_approvers(
    ctx: &Context,
    config: &ServiceConfig,
) -> StepResult<Vec<String>> {
    let subscriptions = topic_subscriptions(ctx).await?;
    let filtered = |approver: &str| {
        let wanted: Value = serde_json::from_str(&approver_filter(approver)).unwrap_or_default();
        subscriptions.iter().any(|s| {
            s.endpoint.eq_ignore_ascii_case(approver)
                // A pending confirmation gets its filter once confirmed.
                && (s.pending
                    || s.filter_policy.as_deref().is_some_and(|f| {
                        serde_json::from_str::<Value>(f).ok().as_ref() == Some(&wanted)
                    }))
        })
    };
    Ok(config
        .approval
        .approvers
        .iter()
        .filter(|a| a.contains('@') && !filtered(a))
        .cloned()
        .collect())
}

/// What [`subscribe_approvers`] did for one approver.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Subscribed {
    /// The approver's address.
    pub approver: String,
    /// The subscription (`pending confirmation` until the approver confirms the e-mail).
    pub subscription_arn: String,
}

/// Subscribes each e-mail approver of `config` to the topic with [`approver_filter`] (SNS
/// answers the existing subscription for a repeat; an existing one with another filter is an
/// error naming it). IAM principals among the approvers get no links and are skipped.
pub async fn subscribe_approvers(
    ctx: &Context,
    config: &ServiceConfig,
) -> StepResult<Vec<Subscribed>> {
    let topic = topic(ctx)?;
    let mut done = Vec::new();
    for approver in config.approval.approvers.iter().filter(|a| a.contains('@')) {
        let out = ctx
            .sdk()?
            .sns
            .subscribe()
            .topic_arn(topic)
            .protocol("email")
            .endpoint(approver)
            .attributes("FilterPolicy", approver_filter(approver))
            .attributes("FilterPolicyScope", "MessageAttributes")
            .return_subscription_arn(true)
            .send()
            .await
            .map_err(|e| StepError::from_sdk("sns:Subscribe", e))?;
        done.push(Subscribed {
            approver: approver.clone(),
            subscription_arn: out
                .subscription_arn
                .unwrap_or_else(|| "pending confirmation".into()),
        });
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_filters_that_pin_one_approver_or_exclude_approval_requests_are_safe() {
        assert_eq!(
            exposes_links(Some(&approver_filter("alice@example.com")), None),
            None
        );
        assert_eq!(
            exposes_links(
                Some(r#"{"kind": ["succeeded", "aborted"]}"#),
                Some("MessageAttributes")
            ),
            None
        );
        for unsafe_policy in [
            None,
            Some(""),
            Some(r#"{"approver": ["alice@example.com", "bob@example.com"]}"#),
            Some(r#"{"approver": [{"prefix": ""}]}"#),
            Some(r#"{"kind": ["awaiting_approval"]}"#),
            Some(r#"{"service": ["shop"]}"#),
            Some("not json"),
        ] {
            assert!(
                exposes_links(unsafe_policy, None).is_some(),
                "{unsafe_policy:?}"
            );
        }
        assert!(exposes_links(Some(&approver_filter("a@b.c")), Some("MessageBody")).is_some());
    }
}
