//! The routes besides production's own: which move with it (`traffic.routes`), and which still
//! send traffic to a slot about to be scaled down.
//!
//! On a shared load balancer a service is usually reached by more than the one listener or
//! rule its config names: a host rule and an `/admin/*` rule, an HTTP listener beside the HTTPS
//! one. A route the switch does not move keeps forwarding to the old slot, and scaling that
//! slot to 0 takes the route's traffic down. Pure: the caller observes the routes
//! ([`crate::ports::LoadBalancing::routes_to`]) and acts on the answer.

use crate::config::{Routes, RoutesWord, ServiceConfig, TestRoute, Traffic};
use crate::error::{StepError, StepResult};
use crate::ports::load_balancing::{Route, RouteForward, WeightedGroup};
use crate::slot::Slot;

/// How a route is named in messages: `listener <ARN>` or `rule <ARN>`.
pub fn describe(route: &Route) -> String {
    match route {
        Route::Listener(arn) => format!("listener {arn}"),
        Route::Rule(arn) => format!("rule {arn}"),
    }
}

/// The listener a rule belongs to (`…:listener-rule/app/n/lb/listener/rule` →
/// `…:listener/app/n/lb/listener`).
pub fn listener_of_rule(rule: &str) -> String {
    let listener = rule.replacen(":listener-rule/", ":listener/", 1);
    listener
        .rsplit_once('/')
        .map_or(listener.clone(), |(head, _)| head.to_owned())
}

/// The route an ARN names (rules have `:listener-rule/` in theirs).
pub fn route_of(arn: &str) -> Route {
    if arn.contains(":listener-rule/") {
        Route::Rule(arn.to_owned())
    } else {
        Route::Listener(arn.to_owned())
    }
}

/// Whether `route` is one the config already handles itself: the production listener (its
/// default action, which follows the rule in rule mode), the production rule, the test
/// listener (pre-prod's, never production traffic), and the rules bluegreen adds for one
/// deployment (a test rule: pre-prod's too).
fn own(config: &ServiceConfig, route: &RouteForward) -> bool {
    let Traffic::Listener {
        production_listener_arn,
        production_rule_arn,
        ..
    } = &config.traffic
    else {
        return false;
    };
    is_test(config, route)
        || match &route.route {
            Route::Listener(arn) => arn == production_listener_arn,
            Route::Rule(arn) => Some(arn) == production_rule_arn.as_ref(),
        }
}

/// Whether other routes move with production (listener mode with `traffic.routes` other than
/// `"primary"`): without them a move makes no call to find them.
pub fn move_with_production(config: &ServiceConfig) -> bool {
    matches!(&config.traffic, Traffic::Listener { routes, .. } if !routes.is_primary_only())
}

/// Whether the route `arn` moves back and forth with production: every one with
/// `traffic.routes = "auto"`, the listed ones, none by default (or in DNS mode). Pure.
pub fn follows_production(config: &ServiceConfig, arn: &str) -> bool {
    let Traffic::Listener { routes, .. } = &config.traffic else {
        return false;
    };
    match routes {
        Routes::Word(RoutesWord::Auto) => true,
        Routes::Word(RoutesWord::Primary) => false,
        Routes::Listed(arns) => arns.iter().any(|a| a == arn),
    }
}

/// The routes that move with production, each with its slot weights now, from what was
/// observed — and the problems of those that cannot be moved: none by default; with `"auto"`
/// every observed route the config does not handle itself; a listed route must be among those
/// observed. A route that also sends to a target group of neither slot, or that bluegreen may
/// not modify (untagged), is a problem. A move forward refuses on any problem before anything
/// moves (part of a service's routes on the new release is no state to leave production in); a
/// move back moves what it can (see [`crate::routing::Move`]).
pub fn companions(
    config: &ServiceConfig,
    observed: &[RouteForward],
) -> (Vec<(Route, RouteState)>, Vec<String>) {
    let mut problems = Vec::new();
    let Traffic::Listener { routes, .. } = &config.traffic else {
        return (Vec::new(), problems);
    };
    let chosen: Vec<&RouteForward> = match routes {
        Routes::Word(RoutesWord::Primary) => return (Vec::new(), problems),
        Routes::Word(RoutesWord::Auto) => observed.iter().filter(|r| !own(config, r)).collect(),
        Routes::Listed(arns) => arns
            .iter()
            .filter_map(|arn| {
                let route = route_of(arn);
                let found = observed.iter().find(|r| r.route == route);
                if found.is_none() {
                    problems.push(format!(
                        "traffic.routes: {} forwards to neither slot's target group",
                        describe(&route)
                    ));
                }
                found
            })
            .collect(),
    };
    let mut movable = Vec::new();
    for r in chosen {
        match weights_of(config, r.groups.clone()) {
            Err(_) => problems.push(format!(
                "{} also sends traffic to a target group of neither slot: bluegreen moves only \
                 routes that forward to the slots alone",
                describe(&r.route)
            )),
            Ok(_) if !r.managed => problems.push(format!(
                "{} forwards to the slots but is not tagged bluegreen:managed=true, so \
                 bluegreen may not move it: tag it",
                describe(&r.route)
            )),
            Ok(state) => movable.push((r.route.clone(), state)),
        }
    }
    (movable, problems)
}

/// Every observed route the config does not handle itself, with its slot weights (or why
/// they cannot be read: it also sends to a target group of neither slot) — what `status`
/// shows beside production.
pub fn others(
    config: &ServiceConfig,
    observed: &[RouteForward],
) -> Vec<(Route, Result<RouteState, String>)> {
    observed
        .iter()
        .filter(|r| !own(config, r))
        .map(|r| {
            let weights = weights_of(config, r.groups.clone()).map_err(|e| e.to_string());
            (r.route.clone(), weights)
        })
        .collect()
}

/// The routes, other than pre-prod's (the test listener, a test rule), that send `slot` any
/// traffic: scaling `slot` to 0 under them would take their traffic down.
pub fn still_on(config: &ServiceConfig, observed: &[RouteForward], slot: Slot) -> Vec<Route> {
    if !matches!(config.traffic, Traffic::Listener { .. }) {
        return Vec::new();
    }
    observed
        .iter()
        .filter(|r| !is_test(config, r))
        .filter(|r| sends_to(config, r, slot))
        .map(|r| r.route.clone())
        .collect()
}

/// The routes besides production's own and the test listener's that send `slot` any
/// traffic, also those that send some elsewhere too: what the live-slot guard watches.
pub fn others_on(config: &ServiceConfig, observed: &[RouteForward], slot: Slot) -> Vec<Route> {
    observed
        .iter()
        .filter(|r| !own(config, r) && sends_to(config, r, slot))
        .map(|r| r.route.clone())
        .collect()
}

/// Whether `route` is pre-prod's: the test listener or one of its rules (a host or header
/// rule testers use), or a test rule bluegreen added for a deployment.
fn is_test(config: &ServiceConfig, route: &RouteForward) -> bool {
    if route.role.as_deref() == Some(crate::test_rule::ROLE) {
        return true;
    }
    let TestRoute::Listener(test_listener_arn) = config.traffic.test_route() else {
        return false;
    };
    match &route.route {
        Route::Listener(arn) => arn == test_listener_arn,
        Route::Rule(arn) => listener_of_rule(arn) == test_listener_arn,
    }
}

/// Whether the route gives `slot`'s target group any weight.
fn sends_to(config: &ServiceConfig, r: &RouteForward, slot: Slot) -> bool {
    let target_group = &config.slots.get(slot).target_group_arn;
    let single = r.groups.len() == 1;
    r.groups.iter().any(|g| {
        // A one-group forward without a weight sends everything (as weights_of reads).
        &g.target_group_arn == target_group && g.weight.unwrap_or(i32::from(single)) > 0
    })
}

/// How production traffic is split between the slots right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteState {
    /// Weight of the blue slot.
    pub blue: i64,
    /// Weight of the green slot.
    pub green: i64,
    /// DNS mode: the records' TTL.
    pub ttl: Option<i64>,
}

impl RouteState {
    /// The weight of one slot.
    pub fn weight(&self, slot: Slot) -> i64 {
        match slot {
            Slot::Blue => self.blue,
            Slot::Green => self.green,
        }
    }

    /// The slot that takes all production traffic; an error when traffic is split or absent.
    pub fn live(&self) -> StepResult<Slot> {
        match (self.blue > 0, self.green > 0) {
            (true, false) => Ok(Slot::Blue),
            (false, true) => Ok(Slot::Green),
            _ => Err(StepError::UnexpectedRouting(format!(
                "traffic is split blue={} green={}; finish or undo the previous switch first",
                self.blue, self.green
            ))),
        }
    }

    /// The share of traffic (0–100) that goes to `slot`.
    pub fn percent(&self, slot: Slot) -> i64 {
        let total = self.blue + self.green;
        if total == 0 {
            0
        } else {
            self.weight(slot) * 100 / total
        }
    }
}

/// Maps a forward action's target groups to slot weights; a target group of neither slot
/// taking traffic is an error.
pub(crate) fn weights_of(
    config: &ServiceConfig,
    groups: Vec<WeightedGroup>,
) -> StepResult<RouteState> {
    let single = groups.len() == 1;
    let mut state = RouteState {
        blue: 0,
        green: 0,
        ttl: None,
    };
    for group in groups {
        // ALB treats a missing weight in a one-group forward as all traffic.
        let weight = group
            .weight
            .map(i64::from)
            .unwrap_or(if single { 1 } else { 0 });
        let arn = group.target_group_arn;
        if arn == config.slots.blue.target_group_arn {
            state.blue += weight;
        } else if arn == config.slots.green.target_group_arn {
            state.green += weight;
        } else if weight > 0 {
            return Err(StepError::UnexpectedRouting(format!(
                "listener forwards to target group {arn}, which belongs to neither slot"
            )));
        }
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::load_balancing::WeightedGroup;

    fn config(routes: Routes) -> ServiceConfig {
        let mut c = ServiceConfig::from_toml(include_str!("../../../docs/example-service.toml"))
            .expect("the documented example parses");
        if let Traffic::Listener {
            routes: r,
            production_rule_arn,
            ..
        } = &mut c.traffic
        {
            *r = routes;
            *production_rule_arn = None;
        }
        c
    }

    fn tg(c: &ServiceConfig, slot: Slot) -> String {
        c.slots.get(slot).target_group_arn.clone()
    }

    fn forward(route: Route, groups: &[(&str, Option<i32>)], managed: bool) -> RouteForward {
        RouteForward {
            route,
            groups: groups
                .iter()
                .map(|(arn, weight)| WeightedGroup {
                    target_group_arn: arn.to_string(),
                    weight: *weight,
                })
                .collect(),
            managed,
            role: None,
        }
    }

    const ADMIN: &str =
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/shop/1/2/3";
    const HTTP: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/shop/1/9";

    /// The world of the issue: the production listener, the test listener, an admin rule and
    /// an HTTP listener, all but the test listener on blue.
    fn observed(c: &ServiceConfig) -> Vec<RouteForward> {
        let Traffic::Listener {
            production_listener_arn,
            test_listener_arn,
            ..
        } = &c.traffic
        else {
            unreachable!()
        };
        let blue = tg(c, Slot::Blue);
        let green = tg(c, Slot::Green);
        vec![
            forward(
                Route::Listener(production_listener_arn.clone()),
                &[(&blue, None)],
                true,
            ),
            forward(
                Route::Listener(test_listener_arn.clone().expect("a test listener")),
                &[(&green, None)],
                true,
            ),
            forward(
                Route::Rule(ADMIN.into()),
                &[(&blue, Some(100)), (&green, Some(0))],
                true,
            ),
            forward(Route::Listener(HTTP.into()), &[(&blue, None)], true),
        ]
    }

    /// The movable routes (and no problem), or the problems.
    fn moved(
        c: &ServiceConfig,
        world: &[RouteForward],
    ) -> Result<Vec<(Route, RouteState)>, String> {
        let (movable, problems) = companions(c, world);
        if problems.is_empty() {
            Ok(movable)
        } else {
            Err(problems.join("; "))
        }
    }

    #[test]
    fn by_default_nothing_else_moves_and_auto_moves_every_other_route_to_a_slot() {
        let c = config(Routes::default());
        assert_eq!(moved(&c, &observed(&c)), Ok(Vec::new()));
        let c = config(Routes::Word(RoutesWord::Auto));
        let routes: Vec<Route> = moved(&c, &observed(&c))
            .unwrap()
            .into_iter()
            .map(|(r, _)| r)
            .collect();
        assert_eq!(
            routes,
            [Route::Rule(ADMIN.into()), Route::Listener(HTTP.into())]
        );
    }

    /// A host rule on the test listener is pre-prod's: never moved as production, never a
    /// route that keeps a slot from scaling down.
    #[test]
    fn rules_of_the_test_listener_are_pre_prods() {
        let c = config(Routes::Word(RoutesWord::Auto));
        let Traffic::Listener {
            test_listener_arn, ..
        } = &c.traffic
        else {
            unreachable!()
        };
        let test_listener_arn = test_listener_arn.as_deref().expect("a test listener");
        let rule = format!(
            "{}/77",
            test_listener_arn.replacen(":listener/", ":listener-rule/", 1)
        );
        assert_eq!(listener_of_rule(&rule), test_listener_arn);
        let mut world = observed(&c);
        world.push(forward(
            Route::Rule(rule.clone()),
            &[(&tg(&c, Slot::Blue), None)],
            true,
        ));
        let routes: Vec<Route> = moved(&c, &world)
            .unwrap()
            .into_iter()
            .map(|(r, _)| r)
            .collect();
        assert!(!routes.contains(&Route::Rule(rule.clone())), "{routes:?}");
        assert!(!still_on(&c, &world, Slot::Blue).contains(&Route::Rule(rule)));
    }

    #[test]
    fn a_listed_route_must_forward_to_a_slot_and_every_moved_route_must_be_movable() {
        let c = config(Routes::Listed(vec![HTTP.into()]));
        let routes = moved(&c, &observed(&c)).unwrap();
        assert_eq!(routes.len(), 1);
        assert_eq!(routes[0].1.blue, 1);

        let elsewhere = format!("{HTTP}0");
        let c = config(Routes::Listed(vec![elsewhere.clone()]));
        let err = moved(&c, &observed(&c)).unwrap_err();
        assert!(err.contains(&elsewhere), "{err}");

        let c = config(Routes::Word(RoutesWord::Auto));
        let mut world = observed(&c);
        world[3].managed = false;
        let (movable, problems) = companions(&c, &world);
        assert_eq!(
            movable.len(),
            1,
            "the admin rule can still be moved (a move back)"
        );
        assert!(
            problems.len() == 1 && problems[0].contains(HTTP) && problems[0].contains("not tagged"),
            "{problems:?}"
        );
        let mut world = observed(&c);
        world[2].groups.push(WeightedGroup {
            target_group_arn:
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/other/1".into(),
            weight: Some(5),
        });
        let err = moved(&c, &world).unwrap_err();
        assert!(err.contains(ADMIN) && err.contains("neither slot"), "{err}");
        assert_eq!(
            others_on(&c, &world, Slot::Blue).len(),
            2,
            "a mixed route is watched too"
        );
    }

    #[test]
    fn a_slot_is_still_routed_while_any_route_but_the_test_listener_sends_it_traffic() {
        let c = config(Routes::default());
        let world = observed(&c);
        assert_eq!(still_on(&c, &world, Slot::Green), Vec::<Route>::new());
        let on_blue = still_on(&c, &world, Slot::Blue);
        assert_eq!(on_blue.len(), 3, "{on_blue:?}");
        assert!(on_blue.contains(&Route::Rule(ADMIN.into())));
    }

    /// A deployment's test rule on the production listener is pre-prod's: `auto` never moves
    /// it with production and it never keeps a slot from scaling down; an untagged rule with
    /// the same forward is a route like any other.
    #[test]
    fn a_test_rule_is_pre_prods_by_its_role_tag() {
        let c = config(Routes::Word(RoutesWord::Auto));
        let preview =
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/shop/1/2/9";
        let mut world = observed(&c);
        let mut rule = forward(
            Route::Rule(preview.into()),
            &[(&tg(&c, Slot::Green), Some(100))],
            true,
        );
        rule.role = Some(crate::test_rule::ROLE.into());
        world.push(rule);
        let moved_routes: Vec<Route> = moved(&c, &world)
            .unwrap()
            .into_iter()
            .map(|(r, _)| r)
            .collect();
        assert!(!moved_routes.contains(&Route::Rule(preview.into())));
        assert_eq!(still_on(&c, &world, Slot::Green), Vec::<Route>::new());
        assert!(others_on(&c, &world, Slot::Green).is_empty());
        world.last_mut().unwrap().role = None;
        assert_eq!(
            still_on(&c, &world, Slot::Green),
            [Route::Rule(preview.into())]
        );
    }
}
