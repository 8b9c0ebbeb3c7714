//! ELBv2: the forward actions bluegreen moves, the maintenance rules it adds, and target
//! health.

use serde::{Deserialize, Serialize};

use crate::error::StepResult;

use super::compute::Tags;

/// Where a forward action lives: a listener's default actions, or one rule's actions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Route {
    /// The listener's default actions.
    Listener(String),
    /// One listener rule's actions.
    Rule(String),
}

/// One target group of a forward action and its weight, as ELB reports it: a one-group
/// forward may carry no weight (all traffic).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightedGroup {
    /// The target group's ARN.
    pub target_group_arn: String,
    /// Its weight, when ELB reports one.
    pub weight: Option<i32>,
}

/// One condition of a listener rule, as ELB states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    /// `host-header`, `path-pattern`, `http-header`, `http-request-method`, `query-string` or
    /// `source-ip`.
    pub field: String,
    /// For `http-header`: the header's name.
    pub header_name: Option<String>,
    /// Its values (for `query-string`: `key=value`, or `=value` for a value without a key).
    pub values: Vec<String>,
}

impl Condition {
    /// Every request: the path pattern `/*`.
    pub fn every_path() -> Condition {
        Condition {
            field: "path-pattern".into(),
            header_name: None,
            values: vec!["/*".into()],
        }
    }
}

/// A listener rule other than the default one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleState {
    /// The rule's ARN.
    pub arn: String,
    /// Its priority.
    pub priority: Option<i32>,
    /// Its tags.
    pub tags: Tags,
    /// The requests it matches.
    pub conditions: Vec<Condition>,
    /// The target groups its forward actions send to.
    pub target_groups: Vec<String>,
    /// Whether one of its actions answers by itself (a fixed response or a redirect).
    pub answers_itself: bool,
}

/// A route found on a load balancer, with what its forward action sends where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteForward {
    /// The listener default action or rule.
    pub route: Route,
    /// Its forward action's target groups.
    pub groups: Vec<WeightedGroup>,
    /// Whether it is tagged `bluegreen:managed=true` (bluegreen's roles modify only those).
    pub managed: bool,
    /// Its `bluegreen:role` tag: set on the rules bluegreen adds for one deployment (the
    /// maintenance page, the test rule), which are never production's routes.
    pub role: Option<String>,
}

/// A fixed response served by a rule (the maintenance page).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedResponseRule {
    /// The rule's priority.
    pub priority: i32,
    /// The requests it answers.
    pub conditions: Vec<Condition>,
    /// HTTP status, like `503`.
    pub status_code: String,
    /// `Content-Type`.
    pub content_type: String,
    /// The body.
    pub body: String,
    /// Tags set at creation.
    pub tags: Tags,
}

/// A rule forwarding to one target group (the test rule), tagged at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardRule {
    /// The rule's priority.
    pub priority: i32,
    /// The requests it matches.
    pub conditions: Vec<Condition>,
    /// The target group it forwards to.
    pub target_group_arn: String,
    /// Tags set at creation.
    pub tags: Tags,
}

/// A registered target's health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetHealth {
    /// The target (an IP address or instance id).
    pub id: String,
    /// `healthy`, `unhealthy`, `initial`, `draining`, `unused`, `unavailable`.
    pub state: String,
    /// ELB's description or reason code.
    pub reason: String,
}

/// ELBv2, as far as the steps use it.
#[async_trait::async_trait]
pub trait LoadBalancing: Send + Sync {
    /// The target groups of the route's forward action; `None` when the route has no forward
    /// action (a fixed response, a redirect). [`crate::StepError::ResourceNotFound`] when
    /// the listener or rule is missing.
    async fn forward(&self, route: &Route) -> StepResult<Option<Vec<WeightedGroup>>>;

    /// Replaces the route's forward action's target groups with `groups` (`(ARN, weight)`),
    /// in one call, keeping its stickiness, its order and every other action. A set-to-value:
    /// idempotent.
    async fn set_forward(&self, route: &Route, groups: &[(String, i32)]) -> StepResult<()>;

    /// Every listener default action and rule, on the load balancers `target_group_arns` are
    /// attached to, whose forward action sends to at least one of them, every page read.
    async fn routes_to(&self, target_group_arns: &[String]) -> StepResult<Vec<RouteForward>>;

    /// A listener's rules other than the default one, with their tags.
    async fn rules(&self, listener_arn: &str) -> StepResult<Vec<RuleState>>;

    /// Adds a rule answering every path with a fixed response, tagged at creation.
    async fn create_fixed_response_rule(
        &self,
        listener_arn: &str,
        rule: &FixedResponseRule,
    ) -> StepResult<()>;

    /// Adds a rule forwarding what it matches to one target group, tagged at creation.
    async fn create_forward_rule(&self, listener_arn: &str, rule: &ForwardRule) -> StepResult<()>;

    /// Deletes one rule (one already gone is fine).
    async fn delete_rule(&self, rule_arn: &str) -> StepResult<()>;

    /// The health of every target registered in a target group.
    async fn target_health(&self, target_group_arn: &str) -> StepResult<Vec<TargetHealth>>;
}
