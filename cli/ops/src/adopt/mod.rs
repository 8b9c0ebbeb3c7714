//! `bluegreen adopt`: takes an ordinary ECS service behind an ALB listener (what most teams
//! have) and creates what blue/green needs from what exists — the second slot's target group
//! (a copy of the first, health check included), the second service (a copy of the first at
//! desired count 0), the `bluegreen:managed` tags, and the validated config that points at
//! them. Listener mode adds a test listener on the same load balancer. DNS mode (the service's
//! name is a Route 53 CNAME to its load balancer) adds a second load balancer like the first
//! and turns the CNAME into the weighted pair — blue 100 with the same value, green 0 — in one
//! change batch, so resolvers' answers do not change.
//!
//! Without `apply` it only plans: the same walk, reading only, says what it would create.
//! With `apply` the plan runs first, so every check it makes (names taken, ports, tag limits,
//! the config's validation) refuses before the first write. Each piece is looked for before it
//! is created (by name, or by the tags adopt puts on what it creates), so a second run changes
//! nothing and says so, and a run stopped half-way (the process killed) finishes on the next
//! one; a run that fails part-way takes its own changes back ([`made`]). `undo` removes what
//! adopt created and the tags it added, and is refused once a deployment has used them.
//!
//! Production traffic is never moved: the production listener keeps forwarding to the
//! existing service's target group, which becomes the blue slot, and DNS keeps answering
//! blue's load balancer.
//!
//! A service ECS already deploys blue/green is adopted as it is, for bluegreen's ECS engine
//! ([`ecs_engine`]): nothing is created, the config names its one service and ECS's routes.

mod ecs_engine;
mod made;
mod undo;

use std::fmt;

use aws_sdk_ecs::types::Service;
use aws_sdk_elasticloadbalancingv2::types::{Listener, TargetGroup};
use serde::Serialize;

use crate::direct::ecs;
use crate::direct::elb;
use crate::direct::route53;
use bluegreen::app_containers::runs_image_of;
use bluegreen::config::{
    Approval, Bake, Database, Engine, Finish, Health, ImageSource, Preprod, Routes, ServiceConfig,
    SlotConfig, Slots, SmokeCheck, TestRule, Traffic,
};
use bluegreen::config_store::ConfigStore;
use bluegreen::context::Context;
use bluegreen::error::{StepError, StepResult};
use bluegreen::naming::{TAG_MANAGED, merge_tags};
use bluegreen::ports::load_balancing::{Route, RouteForward};
use bluegreen::record::Records;
use bluegreen::routes::listener_of_rule;

use made::Made;
pub use made::TakenBack;
pub use undo::undo;

/// Tag on everything adopt created, naming the adopted service's config (undo removes those).
pub const TAG_CREATED: &str = "bluegreen:adopt-created";
/// Tag on existing resources adopt tagged `bluegreen:managed` (undo removes both tags).
pub const TAG_TAGGED: &str = "bluegreen:adopt-tagged";

/// ELB names are at most 32 characters.
const ELB_NAME_MAX: usize = 32;

/// What to adopt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The ECS cluster.
    pub cluster: String,
    /// The existing service (it becomes the blue slot).
    pub service: String,
    /// The config's name (default: the service's name without a `-blue` suffix).
    pub name: Option<String>,
    /// The production listener, when its load balancer has more than one listener forwarding
    /// to the service's target group.
    pub production_listener_arn: Option<String>,
    /// An existing test listener to use (pointed at the new slot); else one is created on
    /// `test_port`.
    pub test_listener_arn: Option<String>,
    /// Port for the test listener adopt creates.
    pub test_port: Option<i32>,
    /// Reach pre-prod through a test rule on the production listener (`traffic.test_rule`)
    /// instead of a test listener: no extra port.
    pub test_rule: bool,
    /// The production host name (what the certificate names), for the test URL and the
    /// smoke checks' TLS server name; default: the production rule's host-header condition.
    pub host: Option<String>,
    /// The ECR repository whose pushes deploy the service.
    pub repository: String,
    /// The app's container (default: the one running an image of `repository`, preferring
    /// the load-balanced one — never a proxy sidecar in front of the app).
    pub container: Option<String>,
    /// Tag patterns that deploy.
    pub tags: Vec<String>,
    /// Who may approve.
    pub approvers: Vec<String>,
    /// The test listener's base URL for smoke checks (default: the load balancer's DNS name
    /// and the test port; in DNS mode each slot's load balancer).
    pub test_url: Option<String>,
    /// DNS mode: the Route 53 record that names the service (instead of a test listener).
    pub dns: Option<DnsTarget>,
}

/// The record DNS mode switches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsTarget {
    /// Hosted zone id.
    pub hosted_zone_id: String,
    /// The record's name, e.g. `shop.example.com`.
    pub record_name: String,
}

/// What adopt did, or would do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Adopted {
    /// Whether anything was (or would be) created or changed.
    pub changed: bool,
    /// One line per change, in order (`would …` when planning).
    pub changes: Vec<String>,
    /// What to know before applying: what adopt does not change for you (the load
    /// balancer's security groups for a new port) and what the stored config will do that a
    /// person may not expect (the old slot scaled to 0 at once, no migration).
    pub notes: Vec<String>,
    /// The config (ARNs of what a plan would create read `(created by --apply)`).
    pub config: ServiceConfig,
}

/// Why adopt stopped — and, when `--apply` failed part-way, what it took back of its own
/// changes (nothing is left half-adopted unless [`TakenBack::left`] says so).
#[derive(Debug)]
pub struct Failed {
    /// What stopped it.
    pub error: StepError,
    /// This run's changes, taken back (empty when it stopped before its first write).
    pub taken_back: TakenBack,
}

impl Failed {
    /// The stable name of what stopped it.
    pub fn name(&self) -> &'static str {
        self.error.name()
    }
}

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl From<StepError> for Failed {
    fn from(error: StepError) -> Self {
        Failed {
            error,
            taken_back: TakenBack::default(),
        }
    }
}

/// What exists of the service's current shape.
struct Existing {
    service: Service,
    container: AppContainer,
    target_group: TargetGroup,
    production: Listener,
    /// The production rule, when a rule of that listener (a host or path rule on a shared
    /// load balancer) routes the service rather than its default action.
    rule: Option<String>,
    /// Every other listener and rule that forwards to the service: they move with production
    /// (`traffic.routes`).
    others: Vec<String>,
}

fn refuse(why: impl Into<String>) -> StepError {
    StepError::SetupRefused(why.into())
}

/// `<base>-green` for a `<base>-blue` name, else `<name>-green`, within `max` characters.
fn green_name(name: &str, max: usize) -> String {
    let base = name.strip_suffix("-blue").unwrap_or(name);
    let base: String = base
        .chars()
        .take(max.saturating_sub("-green".len()))
        .collect();
    format!("{base}-green")
}

/// Reads what routes to `service` (a rolling one); refuses the shapes blue/green cannot take
/// over.
async fn existing(ctx: &Context, req: &Request, service: Service) -> StepResult<Existing> {
    // CodeDeploy, or ECS's linear or canary, moves its own rules between its target group and
    // the alternate: a copy would deploy against the same ones. (ECS's blue/green is adopted
    // as it is: `ecs_engine`.)
    if let Some(deployer) = bluegreen::aws::compute::setup_of(&service).other_deployer() {
        return Err(refuse(format!(
            "{} is deployed by {deployer}, not ECS's rolling deployments: it has a deployment \
             controller already, which moves its production and test rules between its target \
             group and the alternate, and a second slot copied from it would deploy against the \
             same ones. Keep deploying it as it is, move it to ECS's BLUE_GREEN strategy \
             (bluegreen drives that one: traffic.engine = \"ecs\", README \"Which engine\"), or \
             set its strategy to ROLLING (controller ECS) and adopt it into two slots",
            req.service
        )));
    }
    if let Some(namespace) = ecs::service_connect_of(&service) {
        return Err(refuse(format!(
            "{} uses Service Connect (namespace {namespace}): a second slot cannot publish \
             the same Service Connect names, and a copy without them would not be reachable \
             as the service after the switch. Use ECS's own blue/green for it, or move its \
             callers to the load balancer",
            req.service
        )));
    }
    let balancers = service.load_balancers();
    let balancer = match balancers {
        [] => {
            return Err(refuse(format!(
                "{} has no load balancer: blue/green needs an ALB target group to switch",
                req.service
            )));
        }
        [one] if one.load_balancer_name.is_some() => {
            return Err(refuse(format!(
                "{} is behind a classic ELB ({}), which cannot switch between target groups",
                req.service,
                one.load_balancer_name.as_deref().unwrap_or_default()
            )));
        }
        [one] => one,
        _ => {
            return Err(refuse(format!(
                "{} registers in {} target groups: adopt takes a service with exactly one",
                req.service,
                balancers.len()
            )));
        }
    };
    let tg_arn = balancer.target_group_arn.clone().unwrap_or_default();
    let target_group =
        elb::target_group(ctx, &tg_arn)
            .await?
            .ok_or_else(|| StepError::ResourceNotFound {
                kind: "target group",
                id: tg_arn.clone(),
            })?;
    let (production, rule, others) = production_route(ctx, req, &target_group).await?;
    let container = app_container(ctx, req, &service, balancer.container_name.as_deref()).await?;
    Ok(Existing {
        container,
        service,
        target_group,
        production,
        rule,
        others,
    })
}

/// The app's container in the service's task definition, and whether the config must name it
/// in `containers` (it was chosen by `--container` and runs an image from elsewhere). Chosen by
/// image: a front proxy is often the load-balanced container, and every push would replace it
/// with the app.
async fn app_container(
    ctx: &Context,
    req: &Request,
    service: &Service,
    balanced: Option<&str>,
) -> StepResult<AppContainer> {
    let td = service.task_definition.as_deref().unwrap_or_default();
    let (definition, _) = ecs::describe_task_definition(ctx, td).await?;
    let named: Vec<(&str, &str)> = definition
        .container_definitions()
        .iter()
        .map(|c| {
            (
                c.name.as_deref().unwrap_or_default(),
                c.image.as_deref().unwrap_or_default(),
            )
        })
        .collect();
    let listed = || {
        named
            .iter()
            .map(|(name, image)| format!("{name} ({image})"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(chosen) = &req.container {
        let Some((_, image)) = named.iter().find(|(name, _)| name == chosen) else {
            return Err(refuse(format!(
                "--container {chosen:?} is not a container of {td}: it has {}",
                listed()
            )));
        };
        return Ok(AppContainer {
            name: chosen.clone(),
            named: !runs_image_of(image, &req.repository),
        });
    }
    let apps: Vec<&str> = named
        .iter()
        .filter(|(_, image)| runs_image_of(image, &req.repository))
        .map(|(name, _)| *name)
        .collect();
    let name = match (apps.as_slice(), balanced) {
        ([], _) => {
            return Err(refuse(format!(
                "no container of {td} runs an image of {}: it has {}; pass --container with \
                 the app's container, or the repository its image comes from",
                req.repository,
                listed()
            )));
        }
        (apps, Some(b)) if apps.contains(&b) => b,
        ([first, ..], _) => first,
    };
    Ok(AppContainer {
        name: name.to_owned(),
        named: false,
    })
}

/// The container adopt wrote into the config.
struct AppContainer {
    name: String,
    /// Whether `containers` must name it (its image is not from the repository).
    named: bool,
}

/// Production's route to `target_group` — a listener's default action, or else a rule (the
/// shared-ALB norm: a host or path rule) — its listener, and every other route to it.
async fn production_route(
    ctx: &Context,
    req: &Request,
    target_group: &TargetGroup,
) -> StepResult<(Listener, Option<String>, Vec<String>)> {
    let tg = target_group.target_group_arn.as_deref().unwrap_or_default();
    // Each load balancer once (moto names one again for every route to the group).
    let mut balancers = target_group.load_balancer_arns().to_vec();
    balancers.sort();
    balancers.dedup();
    let [balancer] = balancers.as_slice() else {
        return Err(refuse(format!(
            "target group {tg} is attached to {} load balancers: adopt takes one",
            balancers.len()
        )));
    };
    let routes = ctx.ports.load_balancing.routes_to(&[tg.to_owned()]).await?;
    let chosen = choose_production(&routes, tg, req.production_listener_arn.as_deref())
        .map_err(|why| refuse(format!("{why} (load balancer {balancer})")))?;
    let listener = elb::listeners_of(ctx, balancer)
        .await?
        .into_iter()
        .find(|l| l.listener_arn.as_deref() == Some(chosen.listener.as_str()))
        .ok_or_else(|| StepError::ResourceNotFound {
            kind: "listener",
            id: chosen.listener.clone(),
        })?;
    Ok((listener, chosen.rule, chosen.others))
}

/// What [`choose_production`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ProductionRoute {
    listener: String,
    rule: Option<String>,
    others: Vec<String>,
}

/// Chooses production among the routes to `tg`: the (given) listener whose default action
/// forwards only to it, else the first rule that does (the rules come in priority order);
/// every other route is one that moves with it, and must forward only to `tg` too — adopt
/// cannot move part of a route that also serves another target group.
fn choose_production(
    routes: &[RouteForward],
    tg: &str,
    listener: Option<&str>,
) -> Result<ProductionRoute, String> {
    let only_here = |r: &RouteForward| {
        r.groups
            .iter()
            .all(|g| g.target_group_arn == tg || g.weight == Some(0))
    };
    let on_listener = |r: &RouteForward| match (&r.route, listener) {
        (_, None) => true,
        (Route::Listener(arn), Some(l)) => arn == l,
        (Route::Rule(arn), Some(l)) => listener_of_rule(arn) == l,
    };
    let candidates: Vec<&RouteForward> = routes
        .iter()
        .filter(|r| only_here(r) && on_listener(r))
        .collect();
    let defaults: Vec<&RouteForward> = candidates
        .iter()
        .copied()
        .filter(|r| matches!(r.route, Route::Listener(_)))
        .collect();
    let production = match (defaults.as_slice(), candidates.first()) {
        ([one], _) => one.route.clone(),
        ([], Some(rule)) => rule.route.clone(),
        ([], None) => {
            return Err(match listener {
                Some(l) => {
                    format!("listener {l} has no default action or rule forwarding only to {tg}")
                }
                None => format!("no listener or rule forwards only to {tg}"),
            });
        }
        (several, _) => {
            return Err(format!(
                "{} listeners forward to {tg}: say which is production with --listener",
                several.len()
            ));
        }
    };
    let (listener, rule) = match &production {
        Route::Listener(arn) => (arn.clone(), None),
        Route::Rule(arn) => (listener_of_rule(arn), Some(arn.clone())),
    };
    let mut others = Vec::new();
    for r in routes {
        let arn = match &r.route {
            Route::Listener(arn) | Route::Rule(arn) => arn,
        };
        if r.route == production {
            continue;
        }
        if !only_here(r) {
            return Err(format!(
                "{arn} forwards to {tg} and to other target groups: adopt cannot move part of \
                 a route"
            ));
        }
        // In rule mode the listener's default action follows the rule already.
        if rule.is_none() || *arn != listener {
            others.push(arn.clone());
        }
    }
    Ok(ProductionRoute {
        listener,
        rule,
        others,
    })
}

/// Stands for an ARN or name a plan would create.
const PENDING: &str = "(created by --apply)";

/// The TTL of a record Route 53 answered without one.
const DEFAULT_DNS_TTL: i64 = 300;

/// How production is routed once adopted, as the walk found or made it.
struct Routing {
    traffic: Traffic,
    /// `health.test_url` (listener mode: the test listener).
    test_url: Option<String>,
    /// Each slot's own test URL, blue then green (DNS mode: its load balancer, unless
    /// `--test-url` names one endpoint for both).
    slot_urls: [Option<String>; 2],
    /// DNS mode: each slot's record value (its load balancer's DNS name), blue then green.
    record_values: [Option<String>; 2],
}

/// The tags of everything adopting `name` creates.
fn created(name: &str) -> [(&'static str, &str); 2] {
    [(TAG_MANAGED, "true"), (TAG_CREATED, name)]
}

/// The most tags an ECS resource takes.
const ECS_MAX_TAGS: usize = 50;
/// The most tags an ELB resource takes.
const ELB_MAX_TAGS: usize = 50;

fn owned(tags: &[(&str, &str)]) -> Vec<(String, String)> {
    tags.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn borrowed(tags: &[(String, String)]) -> Vec<(&str, &str)> {
    tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// One adopt run: what it was asked, whether it applies, and what it changed (or would).
struct Walk<'a> {
    ctx: &'a Context,
    req: &'a Request,
    apply: bool,
    name: String,
    changes: Vec<String>,
    notes: Vec<String>,
    /// What this run changed in AWS, in order (taken back if it fails part-way).
    made: Vec<Made>,
}

impl Walk<'_> {
    fn note(&mut self, what: String) {
        let line = if self.apply {
            what
        } else {
            format!("would {what}")
        };
        self.changes.push(line);
    }

    /// The green target group, a copy of blue's.
    async fn green_target_group(&mut self, found: &Existing) -> StepResult<String> {
        let blue = found
            .target_group
            .target_group_arn
            .clone()
            .unwrap_or_default();
        let base = found.target_group.target_group_name.as_deref();
        let name = green_name(base.unwrap_or(&self.name), ELB_NAME_MAX);
        let blue_attributes = elb::target_group_attributes(self.ctx, &blue).await?;
        let arn = if let Some(tg) = elb::target_group_named(self.ctx, &name).await? {
            let arn = tg.target_group_arn.unwrap_or_default();
            let tags = elb::tags_of(self.ctx, &arn).await?.unwrap_or_default();
            ours(tags, &self.name, &arn)?;
            arn
        } else {
            // Blue's own tags too (cost allocation, ownership), with adopt's.
            let own = elb::tags_of(self.ctx, &blue).await?.unwrap_or_default();
            let tags = merge_tags(&own, &owned(&created(&self.name)));
            if tags.len() > ELB_MAX_TAGS {
                return Err(refuse(format!(
                    "target group {blue} has {} tags: with adopt's it would have more than \
                     the {ELB_MAX_TAGS} ELB takes",
                    own.len()
                )));
            }
            self.note(format!("create target group {name} (a copy of {blue})"));
            if !self.apply {
                return Ok(PENDING.into());
            }
            self.made.push(Made::TargetGroup(name.clone()));
            let tg = elb::create_target_group_like(
                self.ctx,
                &name,
                &found.target_group,
                &borrowed(&tags),
            )
            .await?;
            tg.target_group_arn.unwrap_or_default()
        };
        // Every attribute of blue's (deregistration delay, stickiness, slow start, algorithm):
        // a green slot that drains or balances differently is another service. Checked on a
        // group adopt made before too — a run stopped between the two calls.
        if elb::target_group_attributes(self.ctx, &arn).await? != blue_attributes {
            self.note(format!("copy the attributes of {blue} to {name}"));
            if self.apply {
                elb::set_target_group_attributes(self.ctx, &arn, &blue_attributes).await?;
            }
        }
        Ok(arn)
    }

    /// Listener mode: the test listener forwards to green (or, with `--test-rule`, each
    /// deployment adds its test rule to the production listener), and every route is tagged.
    async fn listener_routing(&mut self, found: &Existing, green_tg: &str) -> StepResult<Routing> {
        let production = found.production.listener_arn.clone().unwrap_or_default();
        if self.req.test_rule && bluegreen::config::is_nlb_arn(&production) {
            return Err(refuse(
                "the production listener is an NLB's, which has no listener rules: use a test \
                 listener (--test-port) instead of --test-rule",
            ));
        }
        // The port the smoke checks go to: the test listener's, or production's own.
        let (test, port) = if self.req.test_rule {
            self.attach_behind_production(found, green_tg).await?;
            (None, found.production.port)
        } else {
            let listener = test_listener(self, found, green_tg).await?;
            let port = listener
                .as_ref()
                .and_then(|l| l.port)
                .or(self.req.test_port);
            let arn = listener.and_then(|l| l.listener_arn);
            (Some(arn.unwrap_or_else(|| PENDING.into())), port)
        };
        // Every route bluegreen moves is tagged: its roles modify only tagged ones (and add
        // test rules only to a tagged production listener).
        let mut tagged = vec![production.clone()];
        tagged.extend(test.iter().cloned());
        tagged.extend(found.rule.iter().cloned());
        tagged.extend(found.others.iter().cloned());
        self.managed_tags(found, &tagged).await?;
        let test_url = match &self.req.test_url {
            Some(url) => url.clone(),
            None => self.test_url(found, port.unwrap_or_default()).await?,
        };
        Ok(Routing {
            traffic: Traffic::Listener {
                production_listener_arn: production,
                test_listener_arn: test,
                test_rule: self.req.test_rule.then(TestRule::default),
                production_rule_arn: found.rule.clone(),
                shift: None,
                routes: if found.others.is_empty() {
                    Routes::default()
                } else {
                    Routes::Listed(found.others.clone())
                },
                engine: Engine::Slots,
            },
            test_url: Some(test_url),
            slot_urls: [None, None],
            record_values: [None, None],
        })
    }

    /// DNS mode: a green load balancer and listener like blue's, and the record made the
    /// weighted pair (blue 100, green 0).
    async fn dns_routing(
        &mut self,
        found: &Existing,
        green_tg: &str,
        dns: &DnsTarget,
    ) -> StepResult<Routing> {
        let green = self.green_balancer(found, green_tg).await?;
        self.managed_tags(found, &[]).await?;
        let blue = blue_dns(self.ctx, found).await?;
        let ttl = self.weighted_records(dns, &blue, &green).await?;
        let scheme = scheme(&found.production);
        let url = |value: &str| {
            let own = self.req.test_url.is_none();
            own.then(|| format!("{scheme}://{value}"))
        };
        Ok(Routing {
            traffic: Traffic::Dns {
                hosted_zone_id: dns.hosted_zone_id.clone(),
                record_name: dns.record_name.clone(),
                ttl_seconds: u64::try_from(ttl).unwrap_or_default(),
                switch_ttl_seconds: bluegreen::config::default_switch_ttl(),
            },
            test_url: self.req.test_url.clone(),
            slot_urls: [url(&blue), url(&green)],
            record_values: [Some(blue.clone()), Some(green.clone())],
        })
    }

    /// The green load balancer (a copy of blue's) with a listener like production's forwarding
    /// to green. Returns its DNS name.
    async fn green_balancer(&mut self, found: &Existing, green_tg: &str) -> StepResult<String> {
        let blue_arn = found
            .production
            .load_balancer_arn
            .clone()
            .unwrap_or_default();
        let blue = elb::load_balancer(self.ctx, &blue_arn)
            .await?
            .ok_or_else(|| StepError::ResourceNotFound {
                kind: "load balancer",
                id: blue_arn.clone(),
            })?;
        let base = blue.load_balancer_name.as_deref();
        let name = green_name(base.unwrap_or(&self.name), ELB_NAME_MAX);
        let adopter = self.name.clone();
        let created = created(&adopter);
        let balancer = match elb::load_balancer_named(self.ctx, &name).await? {
            Some(lb) => {
                let arn = lb.load_balancer_arn.clone().unwrap_or_default();
                let tags = elb::tags_of(self.ctx, &arn).await?.unwrap_or_default();
                ours(tags, &self.name, &arn)?;
                lb
            }
            None => {
                self.note(format!(
                    "create load balancer {name} (a copy of {blue_arn})"
                ));
                if !self.apply {
                    return Ok(PENDING.into());
                }
                self.made.push(Made::LoadBalancer(name.clone()));
                elb::create_load_balancer_like(self.ctx, &name, &blue, &created).await?
            }
        };
        let arn = balancer.load_balancer_arn.clone().unwrap_or_default();
        let port = found.production.port.unwrap_or_default();
        let listeners = elb::listeners_of(self.ctx, &arn).await?;
        if !listeners.iter().any(|l| l.port == Some(port)) {
            self.note(format!(
                "create listener :{port} on {name}, forwarding to green"
            ));
            if self.apply {
                let like = &found.production;
                self.made.push(Made::Listener {
                    balancer: arn.clone(),
                    port,
                });
                elb::create_listener_like(self.ctx, like, &arn, port, green_tg, &created).await?;
            }
        }
        Ok(balancer.dns_name.unwrap_or_default())
    }

    /// The green service, a copy of blue's at desired count 0.
    async fn green_service(&mut self, found: &Existing, green_tg: &str) -> StepResult<String> {
        let name = green_name(&self.req.service, usize::MAX);
        match ecs::describe_service(self.ctx, &self.req.cluster, &name).await {
            Ok(service) => {
                let arn = service.service_arn.clone().unwrap_or_default();
                ours(ecs::tags_of(self.ctx, &arn).await?, &self.name, &arn)?;
                self.green_registers_in(&service, green_tg).await?;
            }
            Err(StepError::ResourceNotFound { .. }) => {
                let cluster = &self.req.cluster;
                let from = &self.req.service;
                let like = &found.service;
                // Blue's own tags too (cost allocation, ownership), with adopt's.
                let blue_arn = like.service_arn.as_deref().unwrap_or_default();
                let own = ecs::tags_of(self.ctx, blue_arn).await?;
                let tags = merge_tags(&own, &owned(&created(&self.name)));
                if tags.len() > ECS_MAX_TAGS {
                    return Err(refuse(format!(
                        "{from} has {} tags: with adopt's the copy would have more than \
                         the {ECS_MAX_TAGS} ECS takes",
                        own.len()
                    )));
                }
                self.note(format!(
                    "create ECS service {cluster}/{name} (a copy of {from}, 0 tasks)"
                ));
                if self.apply {
                    self.made.push(Made::Service {
                        cluster: cluster.clone(),
                        name: name.clone(),
                    });
                    ecs::create_service_like(
                        self.ctx,
                        cluster,
                        &name,
                        like,
                        green_tg,
                        0,
                        &borrowed(&tags),
                    )
                    .await?;
                }
            }
            Err(e) => return Err(e),
        }
        Ok(name)
    }

    /// The green service an earlier run made must register in the green group this run
    /// found or made: after the group was deleted and made again, it still named the old one
    /// (and adopt reported success).
    async fn green_registers_in(&mut self, service: &Service, green_tg: &str) -> StepResult<()> {
        let registered: Vec<String> = service
            .load_balancers()
            .iter()
            .filter_map(|lb| lb.target_group_arn.clone())
            .collect();
        if registered.iter().all(|tg| tg == green_tg) {
            return Ok(());
        }
        let cluster = self.req.cluster.clone();
        let name = service.service_name.clone().unwrap_or_default();
        self.note(format!(
            "point ECS service {cluster}/{name} at {green_tg} (it registers in {}, which is not \
             the green slot's group)",
            registered.join(", ")
        ));
        if self.apply {
            self.made.push(Made::ServiceGroup {
                cluster: cluster.clone(),
                name,
                before: registered.first().cloned().unwrap_or_default(),
            });
            ecs::register_in(self.ctx, &cluster, service, green_tg).await?;
        }
        Ok(())
    }

    /// `bluegreen:managed` on the existing service and on `listeners` (the stack's roles
    /// change only tagged ones), marked so undo removes what adopt added.
    async fn managed_tags(&mut self, found: &Existing, listeners: &[String]) -> StepResult<()> {
        let managed =
            |tags: &[(String, String)]| tags.iter().any(|(k, v)| k == TAG_MANAGED && v == "true");
        let service_arn = found.service.service_arn.clone().unwrap_or_default();
        if !managed(&ecs::tags_of(self.ctx, &service_arn).await?) {
            self.note(format!("tag {} {TAG_MANAGED}=true", self.req.service));
            if self.apply {
                let tags = vec![
                    ecs::tag(TAG_MANAGED, "true"),
                    ecs::tag(TAG_TAGGED, &self.name),
                ];
                self.made.push(Made::ServiceTags(service_arn.clone()));
                ecs::tag_resource(self.ctx, &service_arn, tags).await?;
            }
        }
        for arn in listeners.iter().filter(|a| a.as_str() != PENDING) {
            if !managed(&elb::tags_of(self.ctx, arn).await?.unwrap_or_default()) {
                let kind = if arn.contains(":listener-rule/") {
                    "rule"
                } else {
                    "listener"
                };
                self.note(format!("tag {kind} {arn} {TAG_MANAGED}=true"));
                if self.apply {
                    let tags = [(TAG_MANAGED, "true"), (TAG_TAGGED, self.name.as_str())];
                    self.made.push(Made::RouteTags(arn.clone()));
                    elb::add_tags(self.ctx, arn, &tags).await?;
                }
            }
        }
        Ok(())
    }

    /// DNS mode: the record becomes the weighted pair — blue 100 with its current value,
    /// green 0 — in one change batch, so what resolvers are answered does not change. Returns
    /// the record's TTL.
    async fn weighted_records(
        &mut self,
        dns: &DnsTarget,
        blue: &str,
        green: &str,
    ) -> StepResult<i64> {
        let records =
            route53::cname_records(self.ctx, &dns.hosted_zone_id, &dns.record_name).await?;
        let ids: Vec<Option<&str>> = records
            .iter()
            .map(|r| r.set_identifier.as_deref())
            .collect();
        if ids == [Some("blue"), Some("green")] || ids == [Some("green"), Some("blue")] {
            return Ok(records[0].ttl.unwrap_or(DEFAULT_DNS_TTL));
        }
        let [simple] = records.as_slice() else {
            return Err(refuse(format!(
                "{} has {} CNAME record(s), not one simple record for adopt to turn into the \
                 blue/green pair",
                dns.record_name,
                records.len()
            )));
        };
        let current = simple
            .resource_records()
            .first()
            .map(|r| r.value.trim_end_matches('.').to_owned())
            .unwrap_or_default();
        if simple.set_identifier.is_some() || !current.eq_ignore_ascii_case(blue) {
            return Err(refuse(format!(
                "{} ({current}, set {:?}) is not a simple record pointing at {}'s load \
                 balancer ({blue})",
                dns.record_name, simple.set_identifier, self.req.service
            )));
        }
        let ttl = simple.ttl.unwrap_or(DEFAULT_DNS_TTL);
        self.note(format!(
            "make {} weighted: blue 100 ({blue}), green 0 ({green})",
            dns.record_name
        ));
        if self.apply {
            let batch = route53::weighted_pair_for(simple, green)?;
            self.made.push(Made::WeightedRecords {
                zone: dns.hosted_zone_id.clone(),
                name: dns.record_name.clone(),
            });
            route53::change_record_sets(self.ctx, &dns.hosted_zone_id, batch).await?;
        }
        Ok(ttl)
    }

    /// The config that points at what the walk found and made.
    fn config(
        &self,
        found: &Existing,
        slots: [(String, String); 2],
        routing: Routing,
    ) -> ServiceConfig {
        let [(blue_service, blue_tg), (green_service, green_tg)] = slots;
        let [blue_url, green_url] = routing.slot_urls;
        let [blue_value, green_value] = routing.record_values;
        let slot = |service, tg, id: &str, test_url, record_value| SlotConfig {
            service,
            target_group_arn: tg,
            test_url,
            set_identifier: Some(id.to_owned()),
            record_value,
        };
        ServiceConfig {
            name: self.name.clone(),
            source: ImageSource {
                repository: self.req.repository.clone(),
                tags: self.req.tags.clone(),
                registry: None,
                pull_from: Default::default(),
            },
            cluster: self.req.cluster.clone(),
            container: found.container.name.clone(),
            containers: if found.container.named {
                vec![found.container.name.clone()]
            } else {
                Vec::new()
            },
            image_env: Vec::new(),
            task_definition: Default::default(),
            slots: Slots {
                blue: slot(blue_service, blue_tg, "blue", blue_url, blue_value),
                green: slot(green_service, green_tg, "green", green_url, green_value),
            },
            preprod: Preprod::default(),
            database: Database::default(),
            migration: None,
            health: Health {
                test_url: routing.test_url,
                smoke: vec![SmokeCheck::get(
                    found
                        .target_group
                        .health_check_path
                        .as_deref()
                        .unwrap_or("/"),
                )],
                ..Health::default()
            },
            approval: Approval {
                approvers: self.req.approvers.clone(),
                ..Approval::default()
            },
            // Behind an NLB the old slot may get new connections for the weights' settling
            // time after the switch: the bake (after which finish scales it down) waits it out.
            bake: Bake {
                seconds: Bake::default()
                    .seconds
                    .max(routing.traffic.settle_seconds()),
                ..Bake::default()
            },
            traffic: routing.traffic,
            finish: Finish::default(),
            guard: Default::default(),
            operators: Vec::new(),
        }
    }

    /// Stores the config (validated) unless SSM holds it already; a plan checks everything
    /// but the ARNs still to be created.
    async fn store(&mut self, config: &ServiceConfig) -> StepResult<()> {
        if !self.apply {
            let problems: Vec<String> = config
                .problems()
                .into_iter()
                .filter(|p| !p.contains(PENDING))
                .collect();
            if !problems.is_empty() {
                return Err(StepError::ConfigInvalid(problems));
            }
            self.note(format!("store the config {}", config.name));
            return Ok(());
        }
        config.validate()?;
        let store = ConfigStore::new(self.ctx);
        // A put that fails part-way (index, parameter, the index's other entries) leaves a
        // config pointing at what is taken back: it is taken back too — the one stored before
        // put back, or none. (An unreadable one stored before cannot be put back as it was.)
        match store.load(&config.name).await {
            Ok(stored) if stored == *config => return Ok(()),
            Ok(stored) => self.made.push(Made::Config {
                name: config.name.clone(),
                before: Some(Box::new(stored)),
            }),
            Err(StepError::ServiceNotFound(_)) => self.made.push(Made::Config {
                name: config.name.clone(),
                before: None,
            }),
            Err(StepError::ConfigInvalid(_)) => {}
            Err(e) => return Err(e),
        }
        store.put(config).await?;
        self.note(format!(
            "store the config {}",
            store.parameter_name(&config.name)
        ));
        Ok(())
    }
}

/// Plans (`apply` false) or applies adopting `req`. See the module docs. Applying runs the
/// plan first (every check before the first write); when a write fails, this run's changes
/// are taken back and [`Failed::taken_back`] says which.
pub async fn adopt(ctx: &Context, req: &Request, apply: bool) -> Result<Adopted, Failed> {
    let mut plan = Walk::new(ctx, req, false);
    let planned = plan.run().await?;
    if !apply {
        return Ok(planned);
    }
    let mut walk = Walk::new(ctx, req, true);
    match walk.run().await {
        Ok(adopted) => Ok(adopted),
        Err(error) => Err(Failed {
            error,
            taken_back: made::take_back(ctx, &walk.made, &walk.name).await,
        }),
    }
}

impl<'a> Walk<'a> {
    fn new(ctx: &'a Context, req: &'a Request, apply: bool) -> Self {
        let name = req.name.clone().unwrap_or_else(|| {
            let base = req.service.strip_suffix("-blue").unwrap_or(&req.service);
            base.to_owned()
        });
        Walk {
            ctx,
            req,
            apply,
            name,
            changes: Vec::new(),
            notes: Vec::new(),
            made: Vec::new(),
        }
    }

    /// The walk: what exists, then each piece in the order AWS needs them (the green target
    /// group behind a load balancer before the green service registers in it), then the
    /// config.
    async fn run(&mut self) -> StepResult<Adopted> {
        let (ctx, req) = (self.ctx, self.req);
        // After a deployment the shape adopt looks for is gone (production may forward to the
        // green slot, the test listener to the original service): say so, not what that looks
        // like to the walk.
        // No deployments table yet (adopt before `init` or the stack): nothing has deployed.
        let latest = match Records::new(ctx).for_service(&self.name, 1).await {
            Ok(mut latest) => latest.pop(),
            Err(StepError::ResourceNotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        if let Some(d) = latest {
            return Err(refuse(format!(
                "{} is adopted and has deployed since ({}, {}): adopt takes a service before \
                 its first deployment. Check it with `bluegreen doctor {}`; change its config \
                 with `bluegreen config put`",
                self.name, d.deployment_id, d.status, self.name
            )));
        }
        let service = ecs::describe_service(ctx, &req.cluster, &req.service).await?;
        let setup = bluegreen::aws::compute::setup_of(&service);
        if setup.is_ecs_blue_green() {
            return self.run_on_ecs(service, setup).await;
        }
        let found = existing(ctx, req, service).await?;
        let blue_tg = found
            .target_group
            .target_group_arn
            .clone()
            .unwrap_or_default();
        let green_tg = self.green_target_group(&found).await?;
        let routing = match &req.dns {
            None => self.listener_routing(&found, &green_tg).await?,
            Some(dns) => self.dns_routing(&found, &green_tg, dns).await?,
        };
        let green_service = self.green_service(&found, &green_tg).await?;
        let slots = [(req.service.clone(), blue_tg), (green_service, green_tg)];
        let config = self.config(&found, slots, routing);
        self.store(&config).await?;
        self.notes.extend(config_notes(&config));
        Ok(Adopted {
            changed: !self.changes.is_empty(),
            changes: std::mem::take(&mut self.changes),
            notes: std::mem::take(&mut self.notes),
            config,
        })
    }
}

/// What the stored config does that a person adopting a service may not expect.
fn config_notes(config: &ServiceConfig) -> Vec<String> {
    let mut notes = vec![format!(
        "the config: smoke check{} {} against {}; database {}{}; approvers: {}",
        if config.health.smoke.len() == 1 {
            ""
        } else {
            "s"
        },
        config
            .health
            .smoke
            .iter()
            .map(|s| format!("{} {}", s.method, s.path))
            .collect::<Vec<_>>()
            .join(", "),
        config
            .health
            .test_url
            .as_deref()
            .unwrap_or("each slot's own URL"),
        serde_json::to_value(config.database.strategy)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        if config.migration.is_none() {
            ", no migration"
        } else {
            ""
        },
        if config.approval.approvers.is_empty() {
            "none".to_owned()
        } else {
            config.approval.approvers.join(", ")
        }
    )];
    // ECS's engine keeps no warm side (ECS scales the old revision in): the setting means
    // nothing there.
    if config.finish.keep_warm_seconds == 0 && config.traffic.engine() == Engine::Slots {
        notes.push(
            "finish.keep_warm_seconds is 0: after each deployment the old slot (at first this \
             service) is scaled to 0 at once, and `bluegreen rollback` is refused; set it (for \
             example 3600) with `bluegreen config put` to keep the old slot warm for a quick \
             rollback"
                .to_owned(),
        );
    }
    notes
}

/// `http` or `https`, as production's listener speaks.
fn scheme(listener: &Listener) -> &'static str {
    match listener.protocol.as_ref().map(|p| p.as_str()) {
        Some("HTTPS") => "https",
        _ => "http",
    }
}

/// The DNS name of the existing service's load balancer.
async fn blue_dns(ctx: &Context, found: &Existing) -> StepResult<String> {
    let arn = found
        .production
        .load_balancer_arn
        .as_deref()
        .unwrap_or_default();
    elb::load_balancer_dns(ctx, arn)
        .await?
        .ok_or_else(|| StepError::ResourceNotFound {
            kind: "load balancer",
            id: arn.to_owned(),
        })
}

/// A resource with the name adopt would give must be one adopt created for `name`; anything
/// else of that name is someone's, and is not taken over.
fn ours(tags: Vec<(String, String)>, name: &str, arn: &str) -> StepResult<()> {
    if tags.iter().any(|(k, v)| k == TAG_CREATED && v == name) {
        Ok(())
    } else {
        Err(refuse(format!(
            "{arn} exists and was not created by adopting {name}: rename or remove it, or \
             write the config by hand"
        )))
    }
}

impl Walk<'_> {
    /// The smoke checks' base URL when none is given: the production host name (`--host`, the
    /// production rule's host-header condition, or the first name a Route 53 alias or CNAME
    /// points at the load balancer) — what the certificate names — on the test listener's
    /// port, or on the production listener's with a test rule. Without a host name an HTTP
    /// listener is reached by the load balancer's DNS name; an HTTPS one is refused, since its
    /// certificate would not match that name.
    async fn test_url(&self, found: &Existing, port: i32) -> StepResult<String> {
        let scheme = scheme(&found.production);
        let host = match &self.req.host {
            Some(host) => Some(host.clone()),
            None => match self.rule_host(found).await? {
                Some(host) => Some(host),
                None => self.alias_host(found).await?,
            },
        };
        let host = match host {
            Some(host) => host,
            None if scheme == "https" => {
                return Err(refuse(
                    "the production listener is HTTPS and no host name was found (no \
                     host-header condition on the production rule): give --host, the name the \
                     certificate covers, or --test-url",
                ));
            }
            None => blue_dns(self.ctx, found).await?,
        };
        Ok(url_of(scheme, &host, port))
    }

    /// With a test rule there is no test listener to put green's target group behind the
    /// load balancer, which ECS requires of a service's target group: the production route
    /// forwards to it at weight 0 (no request reaches it), as ECS's own blue/green does.
    async fn attach_behind_production(
        &mut self,
        found: &Existing,
        green_tg: &str,
    ) -> StepResult<()> {
        let route = match (&found.rule, &found.production.listener_arn) {
            (Some(rule), _) => Route::Rule(rule.clone()),
            (None, Some(listener)) => Route::Listener(listener.clone()),
            (None, None) => return Ok(()),
        };
        let balancing = &self.ctx.ports.load_balancing;
        let groups = balancing.forward(&route).await?.unwrap_or_default();
        if groups.iter().any(|g| g.target_group_arn == green_tg) {
            return Ok(());
        }
        let blue = found
            .target_group
            .target_group_arn
            .clone()
            .unwrap_or_default();
        self.note(format!(
            "forward to {green_tg} at weight 0 from {} (ECS needs the group behind the load \
             balancer; no request reaches it)",
            bluegreen::routes::describe(&route)
        ));
        if self.apply {
            let before = groups
                .iter()
                .map(|g| (g.target_group_arn.clone(), g.weight.unwrap_or(1)))
                .collect();
            self.made.push(Made::Forward {
                route: route.clone(),
                before,
            });
            balancing
                .set_forward(&route, &[(blue, 100), (green_tg.to_owned(), 0)])
                .await?;
        }
        Ok(())
    }

    /// The first name (in order) Route 53 points at the load balancer, by an alias or a
    /// CNAME; the config shows which was taken, and `--host` chooses another.
    /// Route 53 that cannot be read (no permission to list zones) is no name: an HTTP
    /// listener then falls back to the load balancer's, an HTTPS one asks for `--host`.
    async fn alias_host(&self, found: &Existing) -> StepResult<Option<String>> {
        let balancer = blue_dns(self.ctx, found).await?;
        match crate::direct::route53::names_pointing_at(self.ctx, &balancer).await {
            Ok(names) => Ok(names.into_iter().next()),
            Err(e) => {
                tracing::warn!(error = %e, "Route 53 not read for the test URL's host name");
                Ok(None)
            }
        }
    }

    /// The first host name of the production rule's host-header condition that names one
    /// host (no wildcard).
    async fn rule_host(&self, found: &Existing) -> StepResult<Option<String>> {
        let (Some(rule), Some(listener)) = (&found.rule, &found.production.listener_arn) else {
            return Ok(None);
        };
        let rules = self.ctx.ports.load_balancing.rules(listener).await?;
        Ok(rules
            .iter()
            .filter(|r| r.arn == *rule)
            .flat_map(|r| &r.conditions)
            .filter(|c| c.field == "host-header")
            .flat_map(|c| &c.values)
            .find(|v| !v.contains(['*', '?']))
            .cloned())
    }
}

/// `scheme://host[:port]`, the port left out when it is the scheme's own.
fn url_of(scheme: &str, host: &str, port: i32) -> String {
    match (scheme, port) {
        ("http", 80) | ("https", 443) => format!("{scheme}://{host}"),
        _ => format!("{scheme}://{host}:{port}"),
    }
}

/// A test listener like production's on `port`, forwarding to green (`None` when planning).
async fn create_test_listener(
    walk: &mut Walk<'_>,
    found: &Existing,
    balancer: &str,
    port: i32,
    green_tg: &str,
) -> StepResult<Option<Listener>> {
    walk.note(format!("create test listener :{port} on {balancer}"));
    // A new port is closed until the load balancer's security groups open it: adopt does not
    // change security groups (they are often shared, and owned by the network's team).
    let groups = elb::load_balancer(walk.ctx, balancer)
        .await?
        .map(|lb| lb.security_groups().to_vec())
        .unwrap_or_default();
    if !groups.is_empty() {
        walk.notes.push(format!(
            "the test port {port} must be allowed by the load balancer's security group(s) {} \
             from where the smoke checks run (the HealthCheck function's subnets, or this \
             machine); adopt does not change security groups",
            groups.join(", ")
        ));
    }
    if !walk.apply {
        return Ok(None);
    }
    let adopter = walk.name.clone();
    walk.made.push(Made::Listener {
        balancer: balancer.to_owned(),
        port,
    });
    let like = &found.production;
    let made = created(&adopter);
    let listener = elb::create_listener_like(walk.ctx, like, balancer, port, green_tg, &made);
    Ok(Some(listener.await?))
}

/// Listener mode: the test listener — the one given, the one adopt created before (found by
/// its port, forwarding to green), or a new one on `test_port`. `None` only when planning one
/// that does not exist yet.
async fn test_listener(
    walk: &mut Walk<'_>,
    found: &Existing,
    green_tg: &str,
) -> StepResult<Option<Listener>> {
    let req = walk.req;
    let balancer = found
        .production
        .load_balancer_arn
        .clone()
        .unwrap_or_default();
    let listeners = elb::listeners_of(walk.ctx, &balancer).await?;
    let existing = match (&req.test_listener_arn, req.test_port) {
        (Some(arn), _) => Some(
            listeners
                .iter()
                .find(|l| l.listener_arn.as_deref() == Some(arn.as_str()))
                .cloned()
                .ok_or_else(|| refuse(format!("{arn} is not a listener of {balancer}")))?,
        ),
        (None, Some(port)) => listeners.iter().find(|l| l.port == Some(port)).cloned(),
        (None, None) => {
            return Err(refuse(
                "the service has no test listener yet: give --test-port (adopt creates one), \
                 --test-listener, or --dns-zone and --dns-record for DNS mode",
            ));
        }
    };
    let Some(listener) = existing else {
        let port = req.test_port.unwrap_or_default();
        return create_test_listener(walk, found, &balancer, port, green_tg).await;
    };
    let arn = listener.listener_arn.clone().unwrap_or_default();
    if Some(arn.as_str()) == found.production.listener_arn.as_deref() {
        return Err(refuse(
            "the test listener cannot be the production listener",
        ));
    }
    let forwards_green = listener
        .default_actions()
        .first()
        .is_some_and(|a| a.target_group_arn.as_deref() == Some(green_tg));
    if forwards_green {
        return Ok(Some(listener));
    }
    if req.test_listener_arn.is_none() {
        return Err(refuse(format!(
            "port {} of {balancer} is taken by listener {arn} (not adopt's): choose another \
             --test-port or pass it as --test-listener",
            listener.port.unwrap_or_default()
        )));
    }
    walk.note(format!(
        "point test listener {arn} at the green target group"
    ));
    if walk.apply {
        let before = elb::listener_actions(walk.ctx, &arn).await?;
        walk.made.push(Made::ListenerActions {
            arn: arn.clone(),
            before,
        });
        elb::set_listener_actions(walk.ctx, &arn, vec![elb::forward_to(green_tg)]).await?;
    }
    Ok(Some(listener))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bluegreen::ports::load_balancing::WeightedGroup;

    const TG: &str = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/shop-blue/1";
    const OTHER: &str = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/billing/2";
    const HTTPS: &str = "arn:aws:elasticloadbalancing:us-east-1:1:listener/app/alb/9/443";
    const HOST: &str = "arn:aws:elasticloadbalancing:us-east-1:1:listener-rule/app/alb/9/443/10";
    const ADMIN: &str = "arn:aws:elasticloadbalancing:us-east-1:1:listener-rule/app/alb/9/443/20";

    fn route(route: Route, groups: &[&str]) -> RouteForward {
        RouteForward {
            route,
            groups: groups
                .iter()
                .map(|g| WeightedGroup {
                    target_group_arn: g.to_string(),
                    weight: None,
                })
                .collect(),
            managed: false,
            role: None,
        }
    }

    #[test]
    fn a_rule_belongs_to_the_listener_its_arn_names() {
        assert_eq!(listener_of_rule(HOST), HTTPS);
    }

    #[test]
    fn a_service_routed_by_rules_is_adopted_by_its_first_rule_with_the_others_moving_with_it() {
        let routes = [
            route(Route::Rule(HOST.into()), &[TG]),
            route(Route::Rule(ADMIN.into()), &[TG]),
        ];
        assert_eq!(
            choose_production(&routes, TG, None),
            Ok(ProductionRoute {
                listener: HTTPS.into(),
                rule: Some(HOST.into()),
                others: vec![ADMIN.into()],
            })
        );
        // A listener's default action to the service wins over its rules.
        let mut with_default = routes.to_vec();
        with_default.push(route(Route::Listener(HTTPS.into()), &[TG]));
        let chosen = choose_production(&with_default, TG, None).unwrap();
        assert_eq!((chosen.listener.as_str(), chosen.rule), (HTTPS, None));
        assert_eq!(chosen.others, [HOST, ADMIN]);
    }

    #[test]
    fn a_route_shared_with_another_target_group_is_refused() {
        let routes = [
            route(Route::Rule(HOST.into()), &[TG]),
            route(Route::Rule(ADMIN.into()), &[TG, OTHER]),
        ];
        let err = choose_production(&routes, TG, None).unwrap_err();
        assert!(err.contains(ADMIN), "{err}");
        assert!(choose_production(&[], TG, None).is_err());
    }
}
