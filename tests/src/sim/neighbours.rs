//! The shared load balancer: in a real fleet the production listener also carries other
//! teams' services. Every simulated world has another team's host rule on the production
//! listener (`cart.example.com` → its own target group) — or, where the service's maintenance
//! page covers every path of that listener, a listener of its own on the same load balancer;
//! in DNS worlds the rule sits on a listener production does not use; in rule-mode worlds production is a
//! host rule of its own (`shop.example.com`) on that listener, and the listener's default
//! action is either production's too (it follows the rule) or the other team's. Whatever
//! bluegreen does, the other team's routes must forward exactly as they did
//! ([`super::invariants`] holds them after every call). A world whose config moves other
//! routes with production (`traffic.routes = "auto"`) has an `/admin/*` rule of its own too.

use bluegreen::config::{ServiceConfig, Traffic};
use bluegreen::ports::load_balancing::{Condition, Route, WeightedGroup};

use crate::Names;
use crate::memory::{ListenerModel, RuleModel, State};
use crate::world::ACCOUNT;

/// Other teams' routes, each with what it forwards to.
pub type Neighbours = Vec<(Route, Option<Vec<WeightedGroup>>)>;

/// The other team's target group.
pub fn neighbour_group() -> String {
    format!(
        "arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:targetgroup/cart-web/7777777777777777"
    )
}

/// A rule of the production listener, by its id.
fn rule_arn(names: &Names, id: &str) -> String {
    format!(
        "{}/{id}",
        names
            .production_listener
            .replace(":listener/", ":listener-rule/")
    )
}

/// Production's host rule in a rule-mode world (`traffic.production_rule_arn`).
pub fn production_rule(names: &Names) -> String {
    rule_arn(names, "0000000000000010")
}

/// The other team's host rule.
fn neighbour_rule(names: &Names) -> String {
    rule_arn(names, "0000000000000020")
}

/// The service's own `/admin/*` rule, in worlds whose routes move with production.
fn admin_rule(names: &Names) -> String {
    rule_arn(names, "0000000000000030")
}

fn host(name: &str) -> Vec<Condition> {
    vec![Condition {
        field: "host-header".into(),
        header_name: None,
        values: vec![name.into()],
    }]
}

fn to(group: &str) -> Option<Vec<WeightedGroup>> {
    Some(vec![WeightedGroup {
        target_group_arn: group.to_owned(),
        weight: None,
    }])
}

/// Whether `config` puts its maintenance page above every rule of the production listener
/// (listener mode without a production rule).
fn page_above_every_rule(config: &ServiceConfig) -> bool {
    let maintenance = config.migration.as_ref().is_some_and(|m| m.maintenance);
    maintenance
        && matches!(
            &config.traffic,
            Traffic::Listener {
                production_rule_arn: None,
                ..
            }
        )
}

/// Puts the other team's rule or listener (and, when `config` is in rule mode, production's
/// rule, with
/// the listener's default on the other team's group when `default_is_neighbours`) into
/// `state`. Returns the routes that are not bluegreen's, with what each forwards to.
pub fn install(
    state: &mut State,
    names: &Names,
    config: &ServiceConfig,
    default_is_neighbours: bool,
) -> Neighbours {
    let neighbour = neighbour_group();
    let rule = |priority: i32, hostname: &str, group: &str| RuleModel {
        listener: names.production_listener.clone(),
        priority,
        forward: to(group),
        fixed: None,
        tags: Vec::new(),
        conditions: host(hostname),
    };
    let mut theirs = Vec::new();
    if page_above_every_rule(config) {
        // A maintenance page for every path of the production listener needs the listener to
        // itself (bluegreen refuses the page beside other teams' rules): the other team has
        // its own listener on the load balancer.
        let listener = names
            .production_listener
            .replace("4444444444444444", "6666666666666666");
        assert_ne!(
            listener, names.production_listener,
            "the other team's own listener"
        );
        state.elb.listeners.insert(
            listener.clone(),
            ListenerModel {
                forward: to(&neighbour),
            },
        );
        theirs.push((Route::Listener(listener), to(&neighbour)));
    } else {
        state.elb.rules.insert(
            neighbour_rule(names),
            rule(20, "cart.example.com", &neighbour),
        );
        theirs.push((Route::Rule(neighbour_rule(names)), to(&neighbour)));
    }
    if bluegreen::routes::move_with_production(config) {
        let managed = (bluegreen::naming::TAG_MANAGED.to_owned(), "true".to_owned());
        let admin = RuleModel {
            tags: vec![managed],
            conditions: vec![Condition {
                field: "path-pattern".into(),
                header_name: None,
                values: vec!["/admin/*".into()],
            }],
            ..rule(30, "", &names.tg_blue)
        };
        state.elb.rules.insert(admin_rule(names), admin);
    }
    if let Traffic::Listener {
        production_rule_arn: Some(arn),
        ..
    } = &config.traffic
    {
        state
            .elb
            .rules
            .insert(arn.clone(), rule(10, "shop.example.com", &names.tg_blue));
        if default_is_neighbours {
            let default = Route::Listener(names.production_listener.clone());
            if let Some(listener) = state.elb.listeners.get_mut(&names.production_listener) {
                listener.forward = to(&neighbour);
            }
            theirs.push((default, to(&neighbour)));
        }
    }
    theirs
}
