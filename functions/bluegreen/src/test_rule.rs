//! The test rule (`traffic.test_rule`): pre-prod reached through the production listener
//! instead of a test listener on its own port — production's host name, certificate and
//! network path, no extra port open.
//!
//! For each deployment one rule forwards to pre-prod's slot the requests whose preview header
//! carries the deployment id (and, when set, that come from `source_ips`). A request without
//! the header never matches it, wherever it sits. It is placed before every rule that forwards
//! to the service's slots (the production rule, the other routes), so no route of the service
//! can catch a request that carries the header; the priority directly above any bluegreen
//! rule stays free for that service's maintenance page.
//!
//! A header rule can still be missed where bluegreen cannot see: a proxy or CDN that drops
//! the header, `source_ips` that do not hold the checks' address (a NAT), a rule of another
//! team above it matching the same host. The smoke checks would then be answered by
//! production and pass for the wrong release. So beside the rule sits a **probe**: a rule with
//! the same conditions but the header value `<deployment>-probe`, answering a fixed text. The
//! health check asks it first; only when the probe answers do the smoke checks count.
//!
//! Both rules are tagged with the deployment and the service and found by their tags, so a
//! retry never adds a second one; every ending removes them, the service's next deployment
//! removes any an ending left, and teardown removes those of ended deployments.

use crate::config::{ServiceConfig, TestRoute, TestRule, Traffic};
use crate::context::Context;
use crate::error::{StepError, StepResult};
use crate::naming::{TAG_DEPLOYMENT, TAG_MANAGED, TAG_ROLE, TAG_SERVICE};
use crate::ports::load_balancing::{Condition, FixedResponseRule, ForwardRule, Route, RuleState};
use crate::record::Deployment;
use crate::slot::Slot;

/// The `bluegreen:role` tag value of a test rule and of its probe.
pub const ROLE: &str = crate::naming::ROLE_PREVIEW;

/// The highest priority a listener rule may have (the last evaluated).
const LAST_PRIORITY: i32 = 50_000;

/// How often [`ensure`] reads the rules again after a creation failed (a priority taken
/// meanwhile by another writer, or an answer lost after the rule was made).
const CREATE_ATTEMPTS: usize = 3;

/// The path the probe is asked on: one no app serves and no cache holds for anyone else.
pub const PROBE_PATH: &str = "/bluegreen-test-rule-probe/";

/// The header the smoke checks send to reach `deployment_id`'s pre-prod: `(name, value)` with
/// a test rule, `None` with a test listener or in DNS mode.
pub fn header(config: &ServiceConfig, deployment_id: &str) -> Option<(String, String)> {
    match config.traffic.test_route() {
        TestRoute::Rule(rule) => Some((rule.header.clone(), deployment_id.to_owned())),
        TestRoute::Listener(_) | TestRoute::SlotUrls | TestRoute::Ecs => None,
    }
}

/// The request that proves requests with the preview header reach the deployment's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// Appended to the test URL.
    pub path: String,
    /// `(name, value)`: the preview header with the probe's value.
    pub header: (String, String),
    /// What only the probe rule answers.
    pub body: String,
}

/// `deployment_id`'s probe, with a test rule.
pub fn probe(config: &ServiceConfig, deployment_id: &str) -> Option<Probe> {
    match config.traffic.test_route() {
        TestRoute::Rule(rule) => Some(probe_of(rule, deployment_id)),
        TestRoute::Listener(_) | TestRoute::SlotUrls | TestRoute::Ecs => None,
    }
}

/// `deployment_id`'s probe beside a rule of `rule`'s settings.
pub fn probe_of(rule: &TestRule, deployment_id: &str) -> Probe {
    Probe {
        path: format!("{PROBE_PATH}{deployment_id}"),
        header: (rule.header.clone(), probe_value(deployment_id)),
        body: probe_body(deployment_id),
    }
}

fn probe_value(deployment_id: &str) -> String {
    format!("{deployment_id}-probe")
}

fn probe_body(deployment_id: &str) -> String {
    format!("bluegreen test-rule probe {deployment_id}")
}

/// What a rule matches: the preview header with `value`, and the source networks when set.
pub fn conditions(rule: &TestRule, value: &str) -> Vec<Condition> {
    let mut conditions = vec![Condition {
        field: "http-header".into(),
        header_name: Some(rule.header.clone()),
        values: vec![value.to_owned()],
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

/// The two priorities, later first, a deployment's rules may take among the production
/// listener's `rules` (every rule on it): free, before every rule that forwards to one of the
/// service's slots (test rules aside) — after every rule when none does — and never directly
/// above a bluegreen-managed rule or the production rule, nor priority 1 in listener mode (a
/// maintenance page's places). The later one is the probe's: a rule that would catch the smoke
/// checks before the test rule then catches the probe too, and the health check fails rather
/// than tests production. Refused (`UnexpectedRouting`, naming the first rule in the
/// way) when fewer than two are free there.
pub fn placement(config: &ServiceConfig, rules: &[RuleState]) -> StepResult<[i32; 2]> {
    let Traffic::Listener {
        production_rule_arn,
        ..
    } = &config.traffic
    else {
        return Err(not_listener_mode());
    };
    if let Some(arn) = production_rule_arn
        && !rules.iter().any(|r| r.arn == *arn)
    {
        return Err(StepError::ResourceNotFound {
            kind: "listener rule",
            id: arn.clone(),
        });
    }
    let slots = [
        &config.slots.blue.target_group_arn,
        &config.slots.green.target_group_arn,
    ];
    let first_route = rules
        .iter()
        .filter(|r| role_of(r) != Some(ROLE))
        .filter(|r| {
            Some(&r.arn) == production_rule_arn.as_ref()
                || r.target_groups.iter().any(|g| slots.contains(&g))
        })
        .filter_map(|r| r.priority.map(|p| (p, r.arn.as_str())))
        .min();
    let bound = first_route.map_or(LAST_PRIORITY + 1, |(p, _)| p);
    let taken = |p: i32| rules.iter().any(|r| r.priority == Some(p));
    let reserved = |p: i32| {
        rules.iter().any(|r| {
            r.priority == Some(p + 1)
                && (Some(&r.arn) == production_rule_arn.as_ref()
                    || tag(r, TAG_MANAGED) == Some("true"))
        })
    };
    // In listener mode the maintenance page goes above every rule: priority 1 stays free.
    let first = if production_rule_arn.is_some() { 1 } else { 2 };
    let free: Vec<i32> = (first..bound)
        .rev()
        .filter(|p| !taken(*p) && !reserved(*p))
        .take(2)
        .collect();
    match free.as_slice() {
        [a, b] => Ok([*a, *b]),
        _ => Err(StepError::UnexpectedRouting(match first_route {
            Some((priority, arn)) => format!(
                "test rule: fewer than two priorities are free before {arn} (priority \
                 {priority}), the first rule that forwards to the service (the one directly \
                 above a bluegreen rule is kept for a maintenance page); free some above it, \
                 or use a test listener (traffic.test_listener_arn)"
            ),
            None => format!(
                "test rule: fewer than two priorities are free up to {LAST_PRIORITY} on the \
                 production listener; free some, or use a test listener \
                 (traffic.test_listener_arn)"
            ),
        })),
    }
}

/// Makes `deployment`'s test rule forward to `slot`, with its probe beside it: added when
/// missing, moved when it forwards elsewhere, nothing when right; rules an earlier deployment
/// of the service left are removed first. Nothing to do without `traffic.test_rule`.
pub async fn ensure(ctx: &Context, deployment: &Deployment, slot: Slot) -> StepResult<()> {
    let TestRoute::Rule(test_rule) = deployment.config.traffic.test_route() else {
        return Ok(());
    };
    ensure_rule(ctx, deployment, test_rule, slot).await
}

/// [`ensure`] with `test_rule`'s settings whatever the service's test route: on ECS's engine
/// `isolated` pre-prod runs in a service of its own, which ECS's test rule does not reach.
pub async fn ensure_rule(
    ctx: &Context,
    deployment: &Deployment,
    test_rule: &TestRule,
    slot: Slot,
) -> StepResult<()> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match ensure_once(ctx, deployment, test_rule, slot).await {
            // A priority another writer took between the look and the creation (another
            // service's launch, a person, or this rule itself when an answer was lost and the
            // SDK sent the creation again): the next look at the rules decides.
            Err(e) if e.aws_code() == Some("PriorityInUse") && attempt < CREATE_ATTEMPTS => {
                tracing::warn!(deployment_id = %deployment.deployment_id, error = %e, "test rule: creating again after a fresh look");
            }
            other => return other,
        }
    }
}

async fn ensure_once(
    ctx: &Context,
    deployment: &Deployment,
    test_rule: &TestRule,
    slot: Slot,
) -> StepResult<()> {
    let config = &deployment.config;
    let id = &deployment.deployment_id;
    let listener = production_listener(config)?;
    let balancing = &ctx.ports.load_balancing;
    let mut rules = balancing.rules(listener).await?;
    // One deployment of a service runs at a time: a test rule of the service that is not
    // this deployment's was left by an ending that could not remove it.
    for stale in rules
        .iter()
        .filter(|r| owner_of(r).is_some_and(|owner| owner != id))
        .filter(|r| tag(r, TAG_SERVICE) == Some(config.name.as_str()))
    {
        balancing.delete_rule(&stale.arn).await?;
    }
    rules.retain(|r| {
        owner_of(r).is_none_or(|owner| owner == id) || tag(r, TAG_SERVICE) != Some(&config.name)
    });
    let own = |answers_itself: bool| {
        rules
            .iter()
            .find(|r| owner_of(r) == Some(id.as_str()) && r.answers_itself == answers_itself)
    };
    let target_group = &config.slots.get(slot).target_group_arn;
    let tags = vec![
        (TAG_MANAGED.to_owned(), "true".to_owned()),
        (TAG_DEPLOYMENT.to_owned(), id.clone()),
        (TAG_ROLE.to_owned(), ROLE.to_owned()),
        (TAG_SERVICE.to_owned(), config.name.clone()),
    ];
    if let (Some(forward), Some(_)) = (own(false), own(true)) {
        if forward.target_groups != [target_group.clone()] {
            let route = Route::Rule(forward.arn.clone());
            balancing
                .set_forward(&route, &[(target_group.clone(), 100)])
                .await?;
        }
        return Ok(());
    }
    // Both are placed together (the probe after the rule): one left alone by an attempt that
    // stopped half-way goes first.
    let lone: Vec<String> = [own(false), own(true)]
        .into_iter()
        .flatten()
        .map(|r| r.arn.clone())
        .collect();
    for arn in &lone {
        balancing.delete_rule(arn).await?;
    }
    rules.retain(|r| !lone.contains(&r.arn));
    let [later, earlier] = placement(config, &rules)?;
    let rule = ForwardRule {
        priority: earlier,
        conditions: conditions(test_rule, id),
        target_group_arn: target_group.clone(),
        tags: tags.clone(),
    };
    balancing.create_forward_rule(listener, &rule).await?;
    let page = FixedResponseRule {
        priority: later,
        conditions: conditions(test_rule, &probe_value(id)),
        status_code: "200".into(),
        content_type: "text/plain".into(),
        body: probe_body(id),
        tags,
    };
    balancing.create_fixed_response_rule(listener, &page).await
}

/// Removes `deployment`'s test rule and probe (none is fine). Returns whether one was removed.
pub async fn remove(ctx: &Context, deployment: &Deployment) -> StepResult<bool> {
    crate::maintenance::remove_deployment_rules(ctx, deployment, ROLE).await
}

/// The listener's rules a new test rule of `config`'s service is placed among (what
/// [`ensure`] sees): every rule but the service's own test rules, which it replaces.
pub fn others_of(config: &ServiceConfig, rules: Vec<RuleState>) -> Vec<RuleState> {
    rules
        .into_iter()
        .filter(|r| owner_of(r).is_none() || tag(r, TAG_SERVICE) != Some(&config.name))
        .collect()
}

/// The deployment that added `rule`, when it is a test rule or probe.
fn owner_of(rule: &RuleState) -> Option<&str> {
    (role_of(rule) == Some(ROLE))
        .then(|| tag(rule, TAG_DEPLOYMENT))
        .flatten()
}

fn role_of(rule: &RuleState) -> Option<&str> {
    tag(rule, TAG_ROLE)
}

fn tag<'a>(rule: &'a RuleState, key: &str) -> Option<&'a str> {
    rule.tags
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn production_listener(config: &ServiceConfig) -> StepResult<&str> {
    config
        .traffic
        .production_listener_arn()
        .ok_or_else(not_listener_mode)
}

fn not_listener_mode() -> StepError {
    StepError::ConfigInvalid(vec![
        "traffic.test_rule: needs traffic mode 'listener'".into(),
    ])
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
            test_listener_arn,
            test_rule,
            ..
        } = &mut config.traffic
        {
            *production_rule_arn = rule_mode.then(|| RULE.to_owned());
            *test_listener_arn = None;
            *test_rule = Some(TestRule::default());
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

    fn to_slot(arn: &str, priority: i32, config: &ServiceConfig) -> RuleState {
        RuleState {
            target_groups: vec![config.slots.blue.target_group_arn.clone()],
            ..rule(arn, priority)
        }
    }

    fn managed(mut r: RuleState) -> RuleState {
        r.tags.push((TAG_MANAGED.into(), "true".into()));
        r
    }

    #[test]
    fn in_rule_mode_the_rules_sit_above_the_production_rule_leaving_the_page_its_place() {
        let config = config(true);
        let rules = [
            rule("other-team", 5),
            to_slot(RULE, 10, &config),
            rule("later", 11),
        ];
        // 9 is the maintenance page's place, directly above the production rule.
        assert_eq!(placement(&config, &rules).unwrap(), [8, 7]);
        let crowded = [rule("a", 8), rule("b", 6), to_slot(RULE, 10, &config)];
        assert_eq!(placement(&config, &crowded).unwrap(), [7, 5]);
    }

    #[test]
    fn a_route_of_the_service_above_the_production_rule_bounds_the_place_too() {
        let config = config(true);
        let rules = [
            to_slot("admin-rule", 4, &config),
            to_slot(RULE, 10, &config),
        ];
        assert_eq!(placement(&config, &rules).unwrap(), [3, 2]);
        // Another bluegreen service's rule at 7 keeps 6 free for its maintenance page.
        let config = self::config(false);
        let shared = [managed(rule("cart", 7)), to_slot("shop-host", 9, &config)];
        assert_eq!(placement(&config, &shared).unwrap(), [8, 5]);
    }

    #[test]
    fn no_room_above_the_first_route_is_refused_by_name() {
        let config = config(true);
        let rules = [rule("other-team", 1), to_slot(RULE, 3, &config)];
        let err = placement(&config, &rules).unwrap_err();
        assert_eq!(err.name(), "UnexpectedRouting");
        assert!(err.to_string().contains(RULE), "{err}");
        let missing = placement(&config, &[rule("x", 4)]).unwrap_err();
        assert_eq!(missing.name(), "ResourceNotFound");
    }

    #[test]
    fn in_listener_mode_without_routes_of_the_service_the_rules_come_after_every_rule() {
        let config = config(false);
        assert_eq!(
            placement(&config, &[]).unwrap(),
            [LAST_PRIORITY, LAST_PRIORITY - 1]
        );
        assert_eq!(
            placement(&config, &[rule("a", 3), rule("b", LAST_PRIORITY - 1)]).unwrap(),
            [LAST_PRIORITY, LAST_PRIORITY - 2]
        );
    }

    #[test]
    fn the_rule_matches_only_its_header_value_and_the_networks_given() {
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
    fn the_header_and_the_probe_are_sent_only_with_a_test_rule() {
        let config = config(true);
        assert_eq!(
            header(&config, "d-1"),
            Some(("X-Bluegreen-Preview".into(), "d-1".into()))
        );
        let probe = probe(&config, "d-1").unwrap();
        assert_eq!(probe.header.1, "d-1-probe");
        assert!(probe.path.ends_with("/d-1") && probe.body.contains("d-1"));
        let listener = ServiceConfig::from_toml(EXAMPLE).unwrap();
        assert_eq!(header(&listener, "d-1"), None);
        assert_eq!(self::probe(&listener, "d-1"), None);
    }

    #[test]
    fn a_test_rule_is_known_by_its_role_and_deployment_tags() {
        let mut mine = rule("mine", 9);
        mine.tags = vec![
            (TAG_ROLE.into(), ROLE.into()),
            (TAG_DEPLOYMENT.into(), "d-1".into()),
        ];
        assert_eq!(owner_of(&mine), Some("d-1"));
        let mut page = rule("page", 8);
        page.tags = vec![
            (TAG_ROLE.into(), "maintenance".into()),
            (TAG_DEPLOYMENT.into(), "d-1".into()),
        ];
        assert_eq!(owner_of(&page), None);
    }
}
