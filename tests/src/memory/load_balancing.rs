//! ELBv2 in memory: listeners' and rules' forward actions, fixed-response rules, target health.

use std::collections::BTreeMap;

use bluegreen::StepError;
use bluegreen::ports::LoadBalancing;
use bluegreen::ports::compute::Tags;
use bluegreen::ports::load_balancing::{
    Condition, FixedResponseRule, ForwardRule, Route, RouteForward, RuleState, TargetHealth,
    WeightedGroup,
};

use super::{MemoryAws, not_found};

/// ELB's state.
#[derive(Debug, Clone, Default)]
pub struct ElbState {
    /// Listeners by ARN.
    pub listeners: BTreeMap<String, ListenerModel>,
    /// Rules (other than default ones) by ARN.
    pub rules: BTreeMap<String, RuleModel>,
    /// Registered targets by target group ARN.
    pub targets: BTreeMap<String, Vec<TargetHealth>>,
    /// Rules created so far.
    pub created: u64,
}

/// A listener's default action.
#[derive(Debug, Clone)]
pub struct ListenerModel {
    /// Its forward action's groups (`None`: a fixed response).
    pub forward: Option<Vec<WeightedGroup>>,
}

/// A listener rule.
#[derive(Debug, Clone)]
pub struct RuleModel {
    /// The listener it belongs to.
    pub listener: String,
    /// Its priority.
    pub priority: i32,
    /// Its forward action's groups (`None`: a fixed response).
    pub forward: Option<Vec<WeightedGroup>>,
    /// Its fixed response, if it answers with one.
    pub fixed: Option<FixedResponseRule>,
    /// Its tags.
    pub tags: Tags,
    /// The requests it matches.
    pub conditions: Vec<Condition>,
}

impl ElbState {
    /// The groups the route forwards to.
    pub fn forward_of(&self, route: &Route) -> Result<Option<Vec<WeightedGroup>>, StepError> {
        match route {
            Route::Listener(arn) => self
                .listeners
                .get(arn)
                .map(|l| l.forward.clone())
                .ok_or_else(|| not_found("listener", arn)),
            Route::Rule(arn) => self
                .rules
                .get(arn)
                .map(|r| r.forward.clone())
                .ok_or_else(|| not_found("listener rule", arn)),
        }
    }
}

impl ElbState {
    /// CreateRule: refused on a missing listener or a priority in use, as ELB refuses.
    fn create_rule(&mut self, rule: RuleModel) -> Result<(), StepError> {
        if !self.listeners.contains_key(&rule.listener) {
            return Err(not_found("listener", &rule.listener));
        }
        if self
            .rules
            .values()
            .any(|r| r.listener == rule.listener && r.priority == rule.priority)
        {
            return Err(super::refused(
                "elasticloadbalancing:CreateRule",
                "PriorityInUse",
                format!("Priority '{}' is currently in use", rule.priority),
            ));
        }
        self.created += 1;
        let arn = format!(
            "{}/rule-{:04}",
            rule.listener.replace(":listener/", ":listener-rule/"),
            self.created
        );
        self.rules.insert(arn, rule);
        Ok(())
    }
}

#[async_trait::async_trait]
impl LoadBalancing for MemoryAws {
    async fn forward(&self, route: &Route) -> Result<Option<Vec<WeightedGroup>>, StepError> {
        let operation = match route {
            Route::Listener(_) => "elasticloadbalancing:DescribeListeners",
            Route::Rule(_) => "elasticloadbalancing:DescribeRules",
        };
        self.call(operation, |s| s.elb.forward_of(route)).await
    }

    async fn set_forward(&self, route: &Route, groups: &[(String, i32)]) -> Result<(), StepError> {
        let operation = match route {
            Route::Listener(_) => "elasticloadbalancing:ModifyListener",
            Route::Rule(_) => "elasticloadbalancing:ModifyRule",
        };
        self.call(operation, |s| {
            let forward = match route {
                Route::Listener(arn) => {
                    &mut s
                        .elb
                        .listeners
                        .get_mut(arn)
                        .ok_or_else(|| not_found("listener", arn))?
                        .forward
                }
                Route::Rule(arn) => {
                    &mut s
                        .elb
                        .rules
                        .get_mut(arn)
                        .ok_or_else(|| not_found("listener rule", arn))?
                        .forward
                }
            };
            if forward.is_none() {
                return Err(StepError::UnexpectedRouting(
                    "no forward action on the listener".into(),
                ));
            }
            *forward = Some(
                groups
                    .iter()
                    .map(|(arn, weight)| WeightedGroup {
                        target_group_arn: arn.clone(),
                        weight: Some(*weight),
                    })
                    .collect(),
            );
            Ok(())
        })
        .await
    }

    /// The world has one load balancer: every listener and rule is on it. Listeners are
    /// tagged as the world's set-up tags them; rules by their own tags.
    async fn routes_to(
        &self,
        target_group_arns: &[String],
    ) -> Result<Vec<RouteForward>, StepError> {
        self.call("elasticloadbalancing:DescribeListeners", |s| {
            let sends = |groups: &Option<Vec<WeightedGroup>>| {
                groups.as_ref().is_some_and(|g| {
                    g.iter()
                        .any(|g| target_group_arns.contains(&g.target_group_arn))
                })
            };
            let listeners = s
                .elb
                .listeners
                .iter()
                .filter(|(_, l)| sends(&l.forward))
                .map(|(arn, l)| RouteForward {
                    route: Route::Listener(arn.clone()),
                    groups: l.forward.clone().unwrap_or_default(),
                    managed: true,
                    role: None,
                });
            let rules = s
                .elb
                .rules
                .iter()
                .filter(|(_, r)| sends(&r.forward))
                .map(|(arn, r)| RouteForward {
                    route: Route::Rule(arn.clone()),
                    groups: r.forward.clone().unwrap_or_default(),
                    managed: r
                        .tags
                        .iter()
                        .any(|(k, v)| k == bluegreen::naming::TAG_MANAGED && v == "true"),
                    role: r
                        .tags
                        .iter()
                        .find(|(k, _)| k == bluegreen::naming::TAG_ROLE)
                        .map(|(_, v)| v.clone()),
                });
            Ok(listeners.chain(rules).collect())
        })
        .await
    }

    async fn rules(&self, listener_arn: &str) -> Result<Vec<RuleState>, StepError> {
        self.call("elasticloadbalancing:DescribeRules", |s| {
            Ok(s.elb
                .rules
                .iter()
                .filter(|(_, r)| r.listener == listener_arn)
                .map(|(arn, r)| RuleState {
                    arn: arn.clone(),
                    priority: Some(r.priority),
                    tags: r.tags.clone(),
                    conditions: r.conditions.clone(),
                    target_groups: r
                        .forward
                        .iter()
                        .flatten()
                        .map(|g| g.target_group_arn.clone())
                        .collect(),
                    answers_itself: r.fixed.is_some(),
                })
                .collect())
        })
        .await
    }

    async fn create_fixed_response_rule(
        &self,
        listener_arn: &str,
        rule: &FixedResponseRule,
    ) -> Result<(), StepError> {
        let model = RuleModel {
            listener: listener_arn.to_owned(),
            priority: rule.priority,
            forward: None,
            fixed: Some(rule.clone()),
            tags: rule.tags.clone(),
            conditions: rule.conditions.clone(),
        };
        self.call("elasticloadbalancing:CreateRule", |s| {
            s.elb.create_rule(model)
        })
        .await
    }

    async fn create_forward_rule(
        &self,
        listener_arn: &str,
        rule: &ForwardRule,
    ) -> Result<(), StepError> {
        let model = RuleModel {
            listener: listener_arn.to_owned(),
            priority: rule.priority,
            forward: Some(vec![WeightedGroup {
                target_group_arn: rule.target_group_arn.clone(),
                weight: Some(100),
            }]),
            fixed: None,
            tags: rule.tags.clone(),
            conditions: rule.conditions.clone(),
        };
        self.call("elasticloadbalancing:CreateRule", |s| {
            s.elb.create_rule(model)
        })
        .await
    }

    async fn delete_rule(&self, rule_arn: &str) -> Result<(), StepError> {
        self.call("elasticloadbalancing:DeleteRule", |s| {
            s.elb.rules.remove(rule_arn);
            Ok(())
        })
        .await
    }

    async fn target_health(&self, target_group_arn: &str) -> Result<Vec<TargetHealth>, StepError> {
        self.call("elasticloadbalancing:DescribeTargetHealth", |s| {
            s.elb
                .targets
                .get(target_group_arn)
                .cloned()
                .ok_or_else(|| not_found("target group", target_group_arn))
        })
        .await
    }
}
