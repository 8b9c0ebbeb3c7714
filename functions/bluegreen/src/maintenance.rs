//! Maintenance mode (listener mode, `migration.maintenance = true`): while the production
//! migration runs, production answers a fixed 503 page — and only production of this service.
//! In rule mode the page copies the production rule's conditions and sits directly above it
//! (priority − 1), so other hosts and paths on a shared listener are served as before. With the
//! listener's default action as the route, the page matches every path above every rule, so it
//! is refused when the listener carries rules for anything but this service's slots. The rule
//! is tagged with the deployment and found by its tags, so a retry never adds a second one;
//! abort, rollback, finish and teardown always remove it.

use crate::config::{ServiceConfig, Traffic};
use crate::context::Context;
use crate::error::{StepError, StepResult};
use crate::naming::{TAG_DEPLOYMENT, TAG_MANAGED, TAG_ROLE};
use crate::ports::compute::Tags;
use crate::ports::load_balancing::{Condition, FixedResponseRule, Route, RuleState};
use crate::record::Deployment;
use crate::slot::Slot;

/// The `bluegreen:role` tag value of a maintenance rule.
pub const ROLE: &str = crate::naming::ROLE_MAINTENANCE;
/// What production answers while the migration runs.
const PAGE: &str = "<!doctype html><title>Maintenance</title>\
                    <h1>Down for maintenance</h1><p>We will be back in a few minutes.</p>";

/// The highest priority a listener rule may have (the last evaluated).
const LAST_PRIORITY: i32 = 50_000;

/// Adds the maintenance page for `deployment` (one rule, or two: see [`placement`]); a page
/// already there is not added again, so a retry after a partial switch-on completes it.
pub async fn switch_on(ctx: &Context, deployment: &Deployment) -> StepResult<()> {
    let config = &deployment.config;
    let listener = production_listener(config)?;
    let balancing = &ctx.ports.load_balancing;
    let (own, others): (Vec<RuleState>, Vec<RuleState>) = balancing
        .rules(listener)
        .await?
        .into_iter()
        .partition(|rule| is_maintenance_of(&rule.tags, &deployment.deployment_id));
    let default = balancing
        .forward(&Route::Listener(listener.to_owned()))
        .await?;
    let default_serves_the_service = default.is_some_and(|groups| {
        !groups.is_empty()
            && groups
                .iter()
                .all(|g| slot_groups(config).contains(&g.target_group_arn.as_str()))
    });
    for (priority, conditions) in placement(config, &others, default_serves_the_service)? {
        if own.iter().any(|rule| rule.priority == Some(priority)) {
            continue;
        }
        let page = FixedResponseRule {
            priority,
            conditions,
            status_code: "503".into(),
            content_type: "text/html".into(),
            body: PAGE.into(),
            tags: vec![
                tag(TAG_MANAGED, "true"),
                tag(TAG_DEPLOYMENT, &deployment.deployment_id),
                tag(TAG_ROLE, ROLE),
            ],
        };
        balancing
            .create_fixed_response_rule(listener, &page)
            .await?;
    }
    Ok(())
}

/// Where the page goes and what it matches, from the production listener's `rules` (the
/// deployment's own pages left out) and whether its default action forwards to this service:
/// - rule mode: the production rule's conditions directly above it; and when the default
///   action forwards to the service too (bluegreen keeps it following the rule), every path
///   below every rule, since whatever no rule matches is the service's traffic as well;
/// - listener mode: every path above every rule, refused when a rule serves anything but this
///   service's slots.
pub fn placement(
    config: &ServiceConfig,
    rules: &[RuleState],
    default_serves_the_service: bool,
) -> StepResult<Vec<(i32, Vec<Condition>)>> {
    let Traffic::Listener {
        production_rule_arn,
        ..
    } = &config.traffic
    else {
        return Err(not_listener_mode());
    };
    let Some(rule_arn) = production_rule_arn else {
        let foreign: Vec<&str> = rules
            .iter()
            // A deployment's test rule and probe match only its preview header: no other
            // traffic is behind them.
            .filter(|r| {
                !matches!(role_of(&r.tags), Some(ROLE | crate::naming::ROLE_PREVIEW))
                    && !serves_only_slots_of(config, r)
            })
            .map(|r| r.arn.as_str())
            .collect();
        if !foreign.is_empty() {
            return Err(StepError::ConfigInvalid(vec![format!(
                "migration.maintenance: the production listener has rules for other traffic \
                 ({}); a maintenance page for every path above them would answer 503 for it \
                 too. Route the service through its own rule (traffic.production_rule_arn) or \
                 set migration.maintenance = false",
                foreign.join(", ")
            )]));
        }
        return Ok(vec![(top_priority(rules)?, vec![Condition::every_path()])]);
    };
    let production =
        rules
            .iter()
            .find(|r| r.arn == *rule_arn)
            .ok_or_else(|| StepError::ResourceNotFound {
                kind: "listener rule",
                id: rule_arn.clone(),
            })?;
    let above = production.priority.map(|p| p - 1).unwrap_or_default();
    if above < 1 {
        return Err(StepError::MaintenanceFailed(format!(
            "the production rule {rule_arn} has priority 1: there is no priority above it for \
             the maintenance page"
        )));
    }
    if let Some(taken) = rules.iter().find(|r| r.priority == Some(above)) {
        return Err(StepError::MaintenanceFailed(format!(
            "priority {above}, directly above the production rule {rule_arn}, is taken by rule \
             {}; the maintenance page must sit directly above the production rule (leave \
             priority {above} free)",
            taken.arn
        )));
    }
    let mut pages = vec![(above, production.conditions.clone())];
    if default_serves_the_service {
        let last = rules.iter().filter_map(|r| r.priority).max().unwrap_or(0) + 1;
        if last > LAST_PRIORITY {
            return Err(StepError::MaintenanceFailed(format!(
                "the listener's default action forwards to the service, and no priority is \
                 left below its last rule ({LAST_PRIORITY} is the highest) for the page that \
                 answers what no rule matches"
            )));
        }
        pages.push((last, vec![Condition::every_path()]));
    }
    Ok(pages)
}

/// The service's two target groups.
fn slot_groups(config: &ServiceConfig) -> Vec<&str> {
    Slot::ALL
        .iter()
        .map(|s| config.slots.get(*s).target_group_arn.as_str())
        .collect()
}

/// Whether a rule only forwards to the service's own slots.
fn serves_only_slots_of(config: &ServiceConfig, rule: &RuleState) -> bool {
    let slots = slot_groups(config);
    !rule.answers_itself
        && !rule.target_groups.is_empty()
        && rule
            .target_groups
            .iter()
            .all(|g| slots.contains(&g.as_str()))
}

/// Removes every maintenance rule of `deployment` (none is fine). Returns whether one was
/// removed.
pub async fn switch_off(ctx: &Context, deployment: &Deployment) -> StepResult<bool> {
    remove_deployment_rules(ctx, deployment, ROLE).await
}

/// Every maintenance rule on the service's production listener, with the deployment that
/// added it: `(rule ARN, deployment id)`. None in DNS mode.
pub async fn rules_of(ctx: &Context, config: &ServiceConfig) -> StepResult<Vec<(String, String)>> {
    deployment_rules(ctx, config, ROLE).await
}

/// Every rule a deployment added to the service's production listener with `bluegreen:role`
/// `role` (the maintenance page, the test rule), with that deployment: `(rule ARN, deployment
/// id)`. None in DNS mode.
pub async fn deployment_rules(
    ctx: &Context,
    config: &ServiceConfig,
    role: &str,
) -> StepResult<Vec<(String, String)>> {
    let Ok(listener) = production_listener(config) else {
        return Ok(Vec::new());
    };
    let rules = ctx.ports.load_balancing.rules(listener).await?;
    Ok(rules
        .into_iter()
        .filter(|rule| role_of(&rule.tags) == Some(role))
        .map(|rule| {
            let owner = tag_value(&rule.tags, TAG_DEPLOYMENT).unwrap_or_default();
            (rule.arn, owner.to_owned())
        })
        .collect())
}

/// Removes `deployment`'s rules with `bluegreen:role` `role` (none is fine). Returns whether
/// one was removed.
pub async fn remove_deployment_rules(
    ctx: &Context,
    deployment: &Deployment,
    role: &str,
) -> StepResult<bool> {
    let mut removed = false;
    for (arn, owner) in deployment_rules(ctx, &deployment.config, role).await? {
        if owner == deployment.deployment_id {
            delete(ctx, &arn).await?;
            removed = true;
        }
    }
    Ok(removed)
}

/// Deletes one rule (one already gone is fine).
pub async fn delete(ctx: &Context, rule_arn: &str) -> StepResult<()> {
    ctx.ports.load_balancing.delete_rule(rule_arn).await
}

fn production_listener(config: &ServiceConfig) -> StepResult<&str> {
    config
        .traffic
        .production_listener_arn()
        .ok_or_else(not_listener_mode)
}

fn not_listener_mode() -> StepError {
    StepError::ConfigInvalid(vec![
        "migration.maintenance: needs traffic mode 'listener'".into(),
    ])
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

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../docs/example-service.toml");
    const RULE: &str =
        "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/shop/1/2/3";

    fn config(rule_mode: bool) -> ServiceConfig {
        let mut config = ServiceConfig::from_toml(EXAMPLE).expect("the example parses");
        if let Traffic::Listener {
            production_rule_arn,
            ..
        } = &mut config.traffic
        {
            *production_rule_arn = rule_mode.then(|| RULE.to_owned());
        }
        config
    }

    fn host(name: &str) -> Condition {
        Condition {
            field: "host-header".into(),
            header_name: None,
            values: vec![name.into()],
        }
    }

    fn rule(arn: &str, priority: i32, groups: &[&str], conditions: Vec<Condition>) -> RuleState {
        RuleState {
            arn: arn.into(),
            priority: Some(priority),
            tags: Vec::new(),
            conditions,
            target_groups: groups.iter().map(|g| g.to_string()).collect(),
            answers_itself: groups.is_empty(),
        }
    }

    #[test]
    fn in_rule_mode_the_page_copies_the_production_rule_directly_above_it() {
        let config = config(true);
        let blue = config.slots.blue.target_group_arn.clone();
        let rules = vec![
            rule(
                "other-team",
                5,
                &["tg-other"],
                vec![host("api.example.com")],
            ),
            rule(RULE, 10, &[&blue], vec![host("shop.example.com")]),
        ];
        let pages = placement(&config, &rules, false).unwrap();
        assert_eq!(pages, vec![(9, vec![host("shop.example.com")])]);
        // The default action forwards to the service too: what no rule matches gets a page
        // below every rule.
        let pages = placement(&config, &rules, true).unwrap();
        assert_eq!(
            pages,
            vec![
                (9, vec![host("shop.example.com")]),
                (11, vec![Condition::every_path()])
            ]
        );
    }

    #[test]
    fn in_rule_mode_a_taken_priority_above_the_production_rule_is_refused() {
        let config = config(true);
        let rules = vec![
            rule(
                "other-team",
                9,
                &["tg-other"],
                vec![host("api.example.com")],
            ),
            rule(RULE, 10, &["tg"], vec![host("shop.example.com")]),
        ];
        let err = placement(&config, &rules, false).unwrap_err();
        assert_eq!(err.name(), "MaintenanceFailed");
        assert!(err.to_string().contains("other-team"), "{err}");
        let first = vec![rule(RULE, 1, &["tg"], vec![host("shop.example.com")])];
        assert_eq!(
            placement(&config, &first, false).unwrap_err().name(),
            "MaintenanceFailed"
        );
    }

    #[test]
    fn in_listener_mode_rules_for_other_traffic_refuse_the_page() {
        let config = config(false);
        let blue = config.slots.blue.target_group_arn.clone();
        let own = rule("own", 20, &[&blue], vec![host("shop.example.com")]);
        let pages = placement(&config, std::slice::from_ref(&own), false).unwrap();
        assert_eq!(pages, vec![(19, vec![Condition::every_path()])]);
        let foreign = rule("admin", 30, &["tg-admin"], vec![host("admin.example.com")]);
        let redirect = rule("to-https", 40, &[], vec![host("shop.example.com")]);
        let err = placement(&config, &[own, foreign, redirect], false).unwrap_err();
        assert_eq!(err.name(), "ConfigInvalid");
        let text = err.to_string();
        assert!(
            text.contains("admin") && text.contains("to-https"),
            "{text}"
        );
        assert!(!text.contains("own,"), "{text}");
    }
}
