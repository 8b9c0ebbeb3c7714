//! The test rule (`traffic.test_rule`): pre-prod reached through the production listener
//! instead of a test listener on its own port — production's host name, certificate and
//! network path, no extra port open.
//!
//! For each deployment one rule forwards to pre-prod's slot the requests whose preview header
//! carries the deployment id (and, when set, that come from `source_ips`). A request without
//! the header never matches it, wherever it sits. It is placed where production's own requests
//! are decided: directly above the production rule in rule mode (so a request production would
//! get, with the header, gets pre-prod), after every rule when production is the listener's
//! default action. The priority directly above the production rule stays free for the
//! maintenance page. The rule is tagged with the deployment and found by its tags, so a retry
//! never adds a second one; every ending removes it, and teardown removes any an ending missed.

use crate::config::{ServiceConfig, TestRoute, TestRule, Traffic};
use crate::context::Context;
use crate::error::{StepError, StepResult};
use crate::naming::{TAG_DEPLOYMENT, TAG_MANAGED, TAG_ROLE};
use crate::ports::load_balancing::{Condition, ForwardRule, Route, RuleState};
use crate::record::Deployment;
use crate::slot::Slot;

/// The `bluegreen:role` tag value of a test rule.
pub const ROLE: &str = "preview";

/// The highest priority a listener rule may have (the last evaluated).
const LAST_PRIORITY: i32 = 50_000;

/// The header the smoke checks send to reach `deployment_id`'s pre-prod: `(name, value)` with
/// a test rule, `None` with a test listener or in DNS mode.
pub fn header(config: &ServiceConfig, deployment_id: &str) -> Option<(String, String)> {
    match config.traffic.test_route() {
        TestRoute::Rule(rule) => Some((rule.header.clone(), deployment_id.to_owned())),
        TestRoute::Listener(_) | TestRoute::SlotUrls => None,
    }
}

/// What the rule of `deployment_id` matches: the preview header with the deployment id, and
/// the source networks when set.
pub fn conditions(rule: &TestRule, deployment_id: &str) -> Vec<Condition> {
    let mut conditions = vec![Condition {
        field: "http-header".into(),
        header_name: Some(rule.header.clone()),
        values: vec![deployment_id.to_owned()],
    }];
    if !rule.source_ips.is_empty() {
        conditions.push(Condition {
            field: "source-ip".into(),
            header_name: None,
            values: rule.source_ips.clone(),
        });
    }
    conditions
}

/// The priority of a new test rule among the production listener's other `rules`:
/// - rule mode: the free priority closest above the production rule, leaving the one directly
///   above it to the maintenance page when `migration.maintenance` is on;
/// - listener mode (production is the default action): the last priority, after every rule.
///
/// Refused (`UnexpectedRouting`, naming what is in the way) when no priority is free there.
pub fn placement(config: &ServiceConfig, rules: &[RuleState]) -> StepResult<i32> {
    let Traffic::Listener {
        production_rule_arn,
        ..
    } = &config.traffic
    else {
        return Err(not_listener_mode());
    };
    let taken = |p: i32| rules.iter().any(|r| r.priority == Some(p));
    let Some(rule_arn) = production_rule_arn else {
        let last = rules.iter().filter_map(|r| r.priority).max().unwrap_or(0);
        if last >= LAST_PRIORITY {
            return Err(StepError::UnexpectedRouting(format!(
                "test rule: the production listener has a rule at priority {LAST_PRIORITY}, the \
                 last; no priority is left after every rule for the test rule"
            )));
        }
        return Ok(LAST_PRIORITY);
    };
    let production = rules
        .iter()
        .find(|r| r.arn == *rule_arn)
        .and_then(|r| r.priority)
        .ok_or_else(|| StepError::ResourceNotFound {
            kind: "listener rule",
            id: rule_arn.clone(),
        })?;
    let reserved = config
        .migration
        .as_ref()
        .is_some_and(|m| m.maintenance)
        .then_some(production - 1);
    (1..production)
        .rev()
        .find(|p| Some(*p) != reserved && !taken(*p))
        .ok_or_else(|| {
            StepError::UnexpectedRouting(format!(
                "test rule: every priority above the production rule {rule_arn} (priority \
                 {production}) is taken{}; free one above it, or use a test listener \
                 (traffic.test_listener_arn)",
                if reserved.is_some() {
                    " or kept for the maintenance page directly above it"
                } else {
                    ""
                }
            ))
        })
}

/// Makes `deployment`'s test rule forward to `slot`: added when missing, moved when it
/// forwards elsewhere, nothing when it is right. Nothing to do without `traffic.test_rule`.
pub async fn ensure(ctx: &Context, deployment: &Deployment, slot: Slot) -> StepResult<()> {
    let config = &deployment.config;
    let TestRoute::Rule(test_rule) = config.traffic.test_route() else {
        return Ok(());
    };
    let listener = production_listener(config)?;
    let balancing = &ctx.ports.load_balancing;
    let (own, others): (Vec<RuleState>, Vec<RuleState>) = balancing
        .rules(listener)
        .await?
        .into_iter()
        .partition(|rule| owner_of(rule) == Some(deployment.deployment_id.as_str()));
    let target_group = &config.slots.get(slot).target_group_arn;
    let Some((kept, extra)) = own.split_first() else {
        let rule = ForwardRule {
            priority: placement(config, &others)?,
            conditions: conditions(test_rule, &deployment.deployment_id),
            target_group_arn: target_group.clone(),
            tags: vec![
                tag(TAG_MANAGED, "true"),
                tag(TAG_DEPLOYMENT, &deployment.deployment_id),
                tag(TAG_ROLE, ROLE),
            ],
        };
        return balancing.create_forward_rule(listener, &rule).await;
    };
    // Only one rule per deployment is ever added; a second would be another writer's, and
    // the one kept is enough.
    for rule in extra {
        balancing.delete_rule(&rule.arn).await?;
    }
    if kept.target_groups != [target_group.clone()] {
        balancing
            .set_forward(
                &Route::Rule(kept.arn.clone()),
                &[(target_group.clone(), 100)],
            )
            .await?;
    }
    Ok(())
}

/// Removes `deployment`'s test rule (none is fine). Returns whether one was removed.
pub async fn remove(ctx: &Context, deployment: &Deployment) -> StepResult<bool> {
    let mut removed = false;
    for (arn, owner) in rules_of(ctx, &deployment.config).await? {
        if owner == deployment.deployment_id {
            ctx.ports.load_balancing.delete_rule(&arn).await?;
            removed = true;
        }
    }
    Ok(removed)
}

/// Every test rule on the service's production listener, with the deployment that added it:
/// `(rule ARN, deployment id)`. None in DNS mode. Looked for also when the config now names a
/// test listener: a rule added under the config before must still go.
pub async fn rules_of(ctx: &Context, config: &ServiceConfig) -> StepResult<Vec<(String, String)>> {
    let Ok(listener) = production_listener(config) else {
        return Ok(Vec::new());
    };
    let rules = ctx.ports.load_balancing.rules(listener).await?;
    Ok(rules
        .iter()
        .filter_map(|rule| Some((rule.arn.clone(), owner_of(rule)?.to_owned())))
        .collect())
}

/// The deployment that added `rule`, when it is a test rule.
fn owner_of(rule: &RuleState) -> Option<&str> {
    let tag = |key: &str| {
        rule.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    (tag(TAG_ROLE) == Some(ROLE))
        .then(|| tag(TAG_DEPLOYMENT))
        .flatten()
}

fn production_listener(config: &ServiceConfig) -> StepResult<&str> {
    match &config.traffic {
        Traffic::Listener {
            production_listener_arn,
            ..
        } => Ok(production_listener_arn),
        Traffic::Dns { .. } => Err(not_listener_mode()),
    }
}

fn not_listener_mode() -> StepError {
    StepError::ConfigInvalid(vec![
        "traffic.test_rule: needs traffic mode 'listener'".into(),
    ])
}

fn tag(key: &str, value: &str) -> (String, String) {
    (key.to_owned(), value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../docs/example-service.toml");
    const RULE: &str =
        "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/shop/1/2/3";

    fn config(rule_mode: bool, maintenance: bool) -> ServiceConfig {
        let mut config = ServiceConfig::from_toml(EXAMPLE).expect("the example parses");
        if let Traffic::Listener {
            production_rule_arn,
            test_listener_arn,
            test_rule,
            ..
        } = &mut config.traffic
        {
            *production_rule_arn = rule_mode.then(|| RULE.to_owned());
            *test_listener_arn = None;
            *test_rule = Some(TestRule::default());
        }
        if let Some(m) = config.migration.as_mut() {
            m.maintenance = maintenance;
        }
        config
    }

    fn rule(arn: &str, priority: i32) -> RuleState {
        RuleState {
            arn: arn.into(),
            priority: Some(priority),
            tags: Vec::new(),
            conditions: Vec::new(),
            target_groups: vec!["tg-other".into()],
            answers_itself: false,
        }
    }

    #[test]
    fn in_rule_mode_the_rule_sits_closest_above_the_production_rule() {
        let rules = [rule("other-team", 5), rule(RULE, 10), rule("later", 11)];
        assert_eq!(placement(&config(true, false), &rules).unwrap(), 9);
        // With a maintenance page, 9 is the page's: the test rule takes the next one free.
        let with_page = config(true, true);
        assert!(with_page.migration.as_ref().unwrap().maintenance);
        assert_eq!(placement(&with_page, &rules).unwrap(), 8);
        let crowded = [rule("a", 9), rule("b", 8), rule(RULE, 10)];
        assert_eq!(placement(&config(true, false), &crowded).unwrap(), 7);
    }

    #[test]
    fn in_rule_mode_no_free_priority_above_production_is_refused_by_name() {
        let rules = [rule("other-team", 1), rule(RULE, 2)];
        let err = placement(&config(true, false), &rules).unwrap_err();
        assert_eq!(err.name(), "UnexpectedRouting");
        assert!(err.to_string().contains(RULE), "{err}");
        // Priority 1 is the maintenance page's when the production rule is at 2.
        let err = placement(&config(true, true), &[rule(RULE, 2)]).unwrap_err();
        assert!(err.to_string().contains("maintenance page"), "{err}");
        let missing = placement(&config(true, false), &[rule("x", 4)]).unwrap_err();
        assert_eq!(missing.name(), "ResourceNotFound");
    }

    #[test]
    fn in_listener_mode_the_rule_comes_after_every_rule() {
        let config = config(false, false);
        assert_eq!(placement(&config, &[]).unwrap(), LAST_PRIORITY);
        assert_eq!(
            placement(&config, &[rule("a", 3), rule("b", 49_999)]).unwrap(),
            LAST_PRIORITY
        );
        let err = placement(&config, &[rule("a", LAST_PRIORITY)]).unwrap_err();
        assert_eq!(err.name(), "UnexpectedRouting");
    }

    #[test]
    fn the_rule_matches_only_the_deployments_header_and_the_networks_given() {
        let mut test_rule = TestRule::default();
        let only_header = conditions(&test_rule, "shop-20261206T010203-abc123");
        assert_eq!(only_header.len(), 1);
        assert_eq!(only_header[0].field, "http-header");
        assert_eq!(
            only_header[0].header_name.as_deref(),
            Some("X-Bluegreen-Preview")
        );
        assert_eq!(only_header[0].values, ["shop-20261206T010203-abc123"]);
        test_rule.source_ips = vec!["10.0.0.0/16".into()];
        let both = conditions(&test_rule, "d");
        assert_eq!(both[1].field, "source-ip");
        assert_eq!(both[1].values, ["10.0.0.0/16"]);
    }

    #[test]
    fn the_header_is_sent_only_with_a_test_rule() {
        let config = config(true, false);
        assert_eq!(
            header(&config, "d-1"),
            Some(("X-Bluegreen-Preview".into(), "d-1".into()))
        );
        let listener = ServiceConfig::from_toml(EXAMPLE).unwrap();
        assert_eq!(header(&listener, "d-1"), None);
    }

    #[test]
    fn a_test_rule_is_known_by_its_role_and_deployment_tags() {
        let mut mine = rule("mine", 9);
        mine.tags = vec![tag(TAG_ROLE, ROLE), tag(TAG_DEPLOYMENT, "d-1")];
        assert_eq!(owner_of(&mine), Some("d-1"));
        let mut page = rule("page", 8);
        page.tags = vec![tag(TAG_ROLE, "maintenance"), tag(TAG_DEPLOYMENT, "d-1")];
        assert_eq!(owner_of(&page), None);
    }
}
