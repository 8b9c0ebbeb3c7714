//! [`LoadBalancing`] over ELBv2.

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, FixedResponseActionConfig, ForwardActionConfig,
    HostHeaderConditionConfig, HttpHeaderConditionConfig, HttpRequestMethodConditionConfig,
    PathPatternConditionConfig, QueryStringConditionConfig, QueryStringKeyValuePair, Rule,
    RuleCondition, SourceIpConditionConfig, Tag, TargetGroupTuple, TargetHealthStateEnum,
};

use crate::error::{StepError, StepResult};
use crate::naming::{TAG_MANAGED, TAG_ROLE};
use crate::ports::compute::Tags;
use crate::ports::load_balancing::{
    Condition, FixedResponseRule, ForwardRule, LoadBalancing, Route, RouteForward, RuleState,
    TargetHealth, WeightedGroup,
};

/// DescribeTags takes at most this many ARNs per call.
const TAGS_PER_CALL: usize = 20;

/// ELBv2 through the SDK.
pub struct Elb(pub aws_sdk_elasticloadbalancingv2::Client);

fn not_found(kind: &'static str, arn: &str) -> StepError {
    StepError::ResourceNotFound {
        kind,
        id: arn.to_owned(),
    }
}

/// A rule condition as the port states it. ELB reports a condition's values in its typed
/// config (and, for host and path, in the legacy `Values` too); the typed one wins.
fn condition_of(c: &RuleCondition) -> Condition {
    let field = c.field.clone().unwrap_or_default();
    let typed = match field.as_str() {
        "host-header" => c.host_header_config.as_ref().and_then(|h| h.values.clone()),
        "path-pattern" => c
            .path_pattern_config
            .as_ref()
            .and_then(|p| p.values.clone()),
        "http-header" => c.http_header_config.as_ref().and_then(|h| h.values.clone()),
        "http-request-method" => c
            .http_request_method_config
            .as_ref()
            .and_then(|m| m.values.clone()),
        "source-ip" => c.source_ip_config.as_ref().and_then(|s| s.values.clone()),
        "query-string" => c.query_string_config.as_ref().and_then(|q| {
            q.values.as_ref().map(|pairs| {
                pairs
                    .iter()
                    .map(|p| {
                        let key = p.key.as_deref().unwrap_or_default();
                        format!("{key}={}", p.value.as_deref().unwrap_or_default())
                    })
                    .collect()
            })
        }),
        _ => None,
    };
    Condition {
        header_name: c
            .http_header_config
            .as_ref()
            .and_then(|h| h.http_header_name.clone()),
        values: typed
            .filter(|v| !v.is_empty())
            .or_else(|| c.values.clone())
            .unwrap_or_default(),
        field,
    }
}

/// The SDK's form of a port condition (typed config for every field).
fn sdk_condition(c: &Condition) -> RuleCondition {
    let values = Some(c.values.clone());
    let builder = RuleCondition::builder().field(&c.field);
    match c.field.as_str() {
        "host-header" => builder.host_header_config(
            HostHeaderConditionConfig::builder()
                .set_values(values)
                .build(),
        ),
        "path-pattern" => builder.path_pattern_config(
            PathPatternConditionConfig::builder()
                .set_values(values)
                .build(),
        ),
        "http-header" => builder.http_header_config(
            HttpHeaderConditionConfig::builder()
                .set_http_header_name(c.header_name.clone())
                .set_values(values)
                .build(),
        ),
        "http-request-method" => builder.http_request_method_config(
            HttpRequestMethodConditionConfig::builder()
                .set_values(values)
                .build(),
        ),
        "source-ip" => builder.source_ip_config(
            SourceIpConditionConfig::builder()
                .set_values(values)
                .build(),
        ),
        "query-string" => builder.query_string_config(
            QueryStringConditionConfig::builder()
                .set_values(Some(
                    c.values
                        .iter()
                        .map(|pair| {
                            let (key, value) = pair.split_once('=').unwrap_or(("", pair));
                            QueryStringKeyValuePair::builder()
                                .set_key((!key.is_empty()).then(|| key.to_owned()))
                                .value(value)
                                .build()
                        })
                        .collect(),
                ))
                .build(),
        ),
        _ => builder.set_values(values),
    }
    .build()
}

/// The target groups a rule's forward actions send to, and whether one of its actions answers
/// by itself.
fn targets_of(actions: &[Action]) -> (Vec<String>, bool) {
    let mut groups = Vec::new();
    let mut answers_itself = false;
    for action in actions {
        match action.r#type {
            Some(ActionTypeEnum::Forward) => {
                groups.extend(groups_of(action).into_iter().map(|g| g.target_group_arn))
            }
            Some(ActionTypeEnum::FixedResponse | ActionTypeEnum::Redirect) => {
                answers_itself = true;
            }
            _ => {}
        }
    }
    (groups, answers_itself)
}

/// The forward action's groups as ELB reports them (a plain `TargetGroupArn` forward is one
/// group without a weight).
fn groups_of(forward: &Action) -> Vec<WeightedGroup> {
    match forward
        .forward_config
        .as_ref()
        .and_then(|f| f.target_groups.as_ref())
    {
        Some(groups) if !groups.is_empty() => groups
            .iter()
            .map(|g| WeightedGroup {
                target_group_arn: g.target_group_arn.clone().unwrap_or_default(),
                weight: g.weight,
            })
            .collect(),
        _ => vec![WeightedGroup {
            target_group_arn: forward.target_group_arn.clone().unwrap_or_default(),
            weight: None,
        }],
    }
}

fn is_forward(action: &Action) -> bool {
    action.r#type == Some(ActionTypeEnum::Forward)
}

/// `actions` with the forward action's groups replaced (stickiness and order kept, every
/// other action as it was).
fn reweighed(actions: Vec<Action>, groups: &[(String, i32)]) -> StepResult<Vec<Action>> {
    if !actions.iter().any(is_forward) {
        return Err(StepError::UnexpectedRouting(
            "no forward action on the listener".into(),
        ));
    }
    let tuples: Vec<TargetGroupTuple> = groups
        .iter()
        .map(|(arn, weight)| {
            TargetGroupTuple::builder()
                .target_group_arn(arn)
                .weight(*weight)
                .build()
        })
        .collect();
    Ok(actions
        .into_iter()
        .map(|action| {
            if !is_forward(&action) {
                return action;
            }
            let stickiness = action
                .forward_config
                .as_ref()
                .and_then(|f| f.target_group_stickiness_config.clone());
            Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .set_order(action.order)
                .forward_config(
                    ForwardActionConfig::builder()
                        .set_target_groups(Some(tuples.clone()))
                        .set_target_group_stickiness_config(stickiness)
                        .build(),
                )
                .build()
        })
        .collect())
}

/// A listener's default actions as the SDK answers them (the set-up commands copy them).
pub async fn listener_actions(
    client: &aws_sdk_elasticloadbalancingv2::Client,
    arn: &str,
) -> StepResult<Vec<Action>> {
    let out = client
        .describe_listeners()
        .listener_arns(arn)
        .send()
        .await
        .map_err(|e| match e.as_service_error() {
            Some(s) if s.is_listener_not_found_exception() => not_found("listener", arn),
            _ => StepError::from_sdk("elasticloadbalancing:DescribeListeners", e),
        })?;
    let listener = out
        .listeners
        .unwrap_or_default()
        .into_iter()
        .next()
        .ok_or_else(|| not_found("listener", arn))?;
    Ok(listener.default_actions.unwrap_or_default())
}

impl Elb {
    async fn actions(&self, route: &Route) -> StepResult<Vec<Action>> {
        match route {
            Route::Listener(arn) => listener_actions(&self.0, arn).await,
            Route::Rule(arn) => {
                let out = self
                    .0
                    .describe_rules()
                    .rule_arns(arn)
                    .send()
                    .await
                    .map_err(|e| match e.as_service_error() {
                        Some(s) if s.is_rule_not_found_exception() => {
                            not_found("listener rule", arn)
                        }
                        _ => StepError::from_sdk("elasticloadbalancing:DescribeRules", e),
                    })?;
                let rule = out
                    .rules
                    .unwrap_or_default()
                    .into_iter()
                    .next()
                    .ok_or_else(|| not_found("listener rule", arn))?;
                Ok(rule.actions.unwrap_or_default())
            }
        }
    }

    /// A listener's rules other than the default one, every page.
    async fn listener_rules(&self, listener_arn: &str) -> StepResult<Vec<Rule>> {
        let mut all = Vec::new();
        let mut marker = None;
        loop {
            let out = self
                .0
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
                return Ok(all);
            }
        }
    }

    /// The load balancers the target groups are attached to.
    async fn load_balancers_of(&self, target_group_arns: &[String]) -> StepResult<Vec<String>> {
        let out = self
            .0
            .describe_target_groups()
            .set_target_group_arns(Some(target_group_arns.to_vec()))
            .send()
            .await
            .map_err(|e| StepError::from_sdk("elasticloadbalancing:DescribeTargetGroups", e))?;
        let mut balancers: Vec<String> = out
            .target_groups
            .unwrap_or_default()
            .into_iter()
            .flat_map(|g| g.load_balancer_arns.unwrap_or_default())
            .collect();
        balancers.sort();
        balancers.dedup();
        Ok(balancers)
    }

    /// Every listener of a load balancer, every page: `(ARN, default actions)`.
    async fn listeners_of(
        &self,
        load_balancer_arn: &str,
    ) -> StepResult<Vec<(String, Vec<Action>)>> {
        let mut all = Vec::new();
        let mut marker = None;
        loop {
            let out = self
                .0
                .describe_listeners()
                .load_balancer_arn(load_balancer_arn)
                .set_marker(marker)
                .send()
                .await
                .map_err(|e| StepError::from_sdk("elasticloadbalancing:DescribeListeners", e))?;
            all.extend(out.listeners.unwrap_or_default().into_iter().map(|l| {
                (
                    l.listener_arn.unwrap_or_default(),
                    l.default_actions.unwrap_or_default(),
                )
            }));
            marker = out.next_marker;
            if marker.is_none() {
                return Ok(all);
            }
        }
    }

    /// Each ARN's tags.
    /// CreateRule with one action, tagged at creation.
    async fn create_rule(
        &self,
        listener_arn: &str,
        priority: i32,
        conditions: &[Condition],
        action: Action,
        tags: &Tags,
    ) -> StepResult<()> {
        self.0
            .create_rule()
            .listener_arn(listener_arn)
            .priority(priority)
            .set_conditions(Some(conditions.iter().map(sdk_condition).collect()))
            .actions(action)
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect(),
            ))
            .send()
            .await
            .map_err(|e| StepError::from_sdk("elasticloadbalancing:CreateRule", e))?;
        Ok(())
    }

    async fn tags(&self, arns: &[String]) -> StepResult<Vec<(String, Tags)>> {
        let mut found = Vec::new();
        for chunk in arns.chunks(TAGS_PER_CALL) {
            let out = self
                .0
                .describe_tags()
                .set_resource_arns(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| StepError::from_sdk("elasticloadbalancing:DescribeTags", e))?;
            for description in out.tag_descriptions.unwrap_or_default() {
                found.push((
                    description.resource_arn.unwrap_or_default(),
                    description
                        .tags
                        .unwrap_or_default()
                        .into_iter()
                        .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
                        .collect(),
                ));
            }
        }
        Ok(found)
    }
}

#[async_trait::async_trait]
impl LoadBalancing for Elb {
    async fn forward(&self, route: &Route) -> StepResult<Option<Vec<WeightedGroup>>> {
        Ok(self
            .actions(route)
            .await?
            .iter()
            .find(|a| is_forward(a))
            .map(groups_of))
    }

    async fn set_forward(&self, route: &Route, groups: &[(String, i32)]) -> StepResult<()> {
        let actions = reweighed(self.actions(route).await?, groups)?;
        match route {
            Route::Listener(arn) => {
                self.0
                    .modify_listener()
                    .listener_arn(arn)
                    .set_default_actions(Some(actions))
                    .send()
                    .await
                    .map_err(|e| StepError::from_sdk("elasticloadbalancing:ModifyListener", e))?;
            }
            Route::Rule(arn) => {
                self.0
                    .modify_rule()
                    .rule_arn(arn)
                    .set_actions(Some(actions))
                    .send()
                    .await
                    .map_err(|e| StepError::from_sdk("elasticloadbalancing:ModifyRule", e))?;
            }
        }
        Ok(())
    }

    async fn routes_to(&self, target_group_arns: &[String]) -> StepResult<Vec<RouteForward>> {
        let sends_to_one = |groups: &[WeightedGroup]| {
            groups
                .iter()
                .any(|g| target_group_arns.contains(&g.target_group_arn))
        };
        let forward_of = |actions: &[Action]| actions.iter().find(|a| is_forward(a)).map(groups_of);
        let mut found = Vec::new();
        for balancer in self.load_balancers_of(target_group_arns).await? {
            for (listener, defaults) in self.listeners_of(&balancer).await? {
                if let Some(groups) = forward_of(&defaults).filter(|g| sends_to_one(g)) {
                    found.push((Route::Listener(listener.clone()), groups));
                }
                for rule in self.listener_rules(&listener).await? {
                    let actions = rule.actions.as_deref().unwrap_or_default();
                    if let Some(groups) = forward_of(actions).filter(|g| sends_to_one(g)) {
                        found.push((Route::Rule(rule.rule_arn.unwrap_or_default()), groups));
                    }
                }
            }
        }
        let arns: Vec<String> = found
            .iter()
            .map(|(route, _)| match route {
                Route::Listener(arn) | Route::Rule(arn) => arn.clone(),
            })
            .collect();
        let tags = self.tags(&arns).await?;
        let tag = |arn: &str, key: &str| {
            tags.iter()
                .find(|(a, _)| a == arn)
                .and_then(|(_, t)| t.iter().find(|(k, _)| k == key))
                .map(|(_, v)| v.clone())
        };
        Ok(found
            .into_iter()
            .zip(arns)
            .map(|((route, groups), arn)| RouteForward {
                route,
                groups,
                managed: tag(&arn, TAG_MANAGED).as_deref() == Some("true"),
                role: tag(&arn, TAG_ROLE),
            })
            .collect())
    }

    async fn rules(&self, listener_arn: &str) -> StepResult<Vec<RuleState>> {
        let rules = self.listener_rules(listener_arn).await?;
        let arns: Vec<String> = rules.iter().filter_map(|r| r.rule_arn.clone()).collect();
        let tags = self.tags(&arns).await?;
        Ok(rules
            .into_iter()
            .map(|r| {
                let arn = r.rule_arn.unwrap_or_default();
                let (target_groups, answers_itself) =
                    targets_of(r.actions.as_deref().unwrap_or_default());
                RuleState {
                    priority: r.priority.as_deref().and_then(|p| p.parse().ok()),
                    tags: tags
                        .iter()
                        .find(|(a, _)| *a == arn)
                        .map(|(_, t)| t.clone())
                        .unwrap_or_default(),
                    conditions: r
                        .conditions
                        .as_deref()
                        .unwrap_or_default()
                        .iter()
                        .map(condition_of)
                        .collect(),
                    target_groups,
                    answers_itself,
                    arn,
                }
            })
            .collect())
    }

    async fn create_fixed_response_rule(
        &self,
        listener_arn: &str,
        rule: &FixedResponseRule,
    ) -> StepResult<()> {
        let action = Action::builder()
            .r#type(ActionTypeEnum::FixedResponse)
            .fixed_response_config(
                FixedResponseActionConfig::builder()
                    .status_code(&rule.status_code)
                    .content_type(&rule.content_type)
                    .message_body(&rule.body)
                    .build(),
            )
            .build();
        self.create_rule(
            listener_arn,
            rule.priority,
            &rule.conditions,
            action,
            &rule.tags,
        )
        .await
    }

    async fn create_forward_rule(&self, listener_arn: &str, rule: &ForwardRule) -> StepResult<()> {
        let action = Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .forward_config(
                ForwardActionConfig::builder()
                    .target_groups(
                        TargetGroupTuple::builder()
                            .target_group_arn(&rule.target_group_arn)
                            .weight(100)
                            .build(),
                    )
                    .build(),
            )
            .build();
        self.create_rule(
            listener_arn,
            rule.priority,
            &rule.conditions,
            action,
            &rule.tags,
        )
        .await
    }

    async fn delete_rule(&self, rule_arn: &str) -> StepResult<()> {
        match self.0.delete_rule().rule_arn(rule_arn).send().await {
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

    async fn target_health(&self, target_group_arn: &str) -> StepResult<Vec<TargetHealth>> {
        let out = self
            .0
            .describe_target_health()
            .target_group_arn(target_group_arn)
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(s) if s.is_target_group_not_found_exception() => {
                    not_found("target group", target_group_arn)
                }
                _ => StepError::from_sdk("elasticloadbalancing:DescribeTargetHealth", e),
            })?;
        Ok(out
            .target_health_descriptions
            .unwrap_or_default()
            .into_iter()
            .map(|d| {
                let health = d.target_health;
                TargetHealth {
                    id: d.target.and_then(|t| t.id).unwrap_or_default(),
                    state: health
                        .as_ref()
                        .and_then(|h| h.state.clone())
                        .unwrap_or(TargetHealthStateEnum::Unavailable)
                        .as_str()
                        .to_owned(),
                    reason: health
                        .and_then(|h| h.description.or(h.reason.map(|r| r.as_str().to_owned())))
                        .unwrap_or_default(),
                }
            })
            .collect())
    }
}
