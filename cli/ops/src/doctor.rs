//! `bluegreen doctor`: checks a service's config and the installation against AWS before the
//! first push, read-only, and lists every finding at once with what to do about it — instead
//! of a deployment failing halfway on the first of them.
//!
//! Each finding has a stable `code` (scripts and tests match it), the resource it is about,
//! what is wrong and the fix. A check that cannot be made (access denied, say) is a finding
//! too (`check-failed`), so the others still run. It describes resources only: it never reads
//! the link-signing key (its secret's metadata says whether it exists).

use serde::Serialize;

use crate::direct::ecs;
use crate::direct::elb;
use crate::subscriptions;
use bluegreen::alarms;
use bluegreen::app_containers::{Named, app_containers};
use bluegreen::config::{DbSource, DbStrategy, HeaderValue, ServiceConfig, Traffic};
use bluegreen::context::Context;
use bluegreen::error::StepError;
use bluegreen::executions;
use bluegreen::links::SigningKey;
use bluegreen::naming::{TAG_DATABASE_SOURCE, TAG_MANAGED, TAG_SMOKE_HEADER};
use bluegreen::notify;
use bluegreen::routing;
use bluegreen::secret_reference::{SecretReference, is_clone_secret};
use bluegreen::service_index::ServiceIndex;
use bluegreen::slot::Slot;
use bluegreen::tables::{self, TABLES};
use bluegreen::test_rule;

/// One thing that would stop or endanger a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable kebab-case name, e.g. `target-group-not-attached`.
    pub code: &'static str,
    /// What it is about (a service, a slot, an ARN, a table).
    pub subject: String,
    /// What is wrong.
    pub problem: String,
    /// What to do.
    pub fix: String,
}

/// Findings collected for one subject.
struct Findings(Vec<Finding>);

impl Findings {
    fn add(&mut self, code: &'static str, subject: &str, problem: String, fix: &str) {
        self.0.push(Finding {
            code,
            subject: subject.to_owned(),
            problem,
            fix: fix.to_owned(),
        });
    }

    /// A check that could not be made: recorded, and the others go on.
    fn failed(&mut self, subject: &str, e: &StepError) {
        self.add(
            "check-failed",
            subject,
            format!("could not be checked: {e}"),
            "give the caller read access to it (see the OperatorPolicy), then run doctor again",
        );
    }
}

/// The installation: the stack's tables and indexes, the link secret, the topic and the
/// deployment state machine that the settings name.
pub async fn installation(ctx: &Context) -> Vec<Finding> {
    let mut f = Findings(Vec::new());
    for table in TABLES {
        let name = table.name(&ctx.settings);
        match tables::missing(ctx, table).await {
            Ok(None) => {}
            Ok(Some(indexes)) if indexes.is_empty() => f.add(
                "table-missing",
                name,
                format!("DynamoDB table {name} does not exist"),
                "deploy the stack (or `bluegreen init --local` on an emulator), or set the \
                 BLUEGREEN_*_TABLE variables to its table names",
            ),
            Ok(Some(indexes)) => f.add(
                "index-missing",
                name,
                format!("table {name} lacks the index(es) {}", indexes.join(", ")),
                "update the stack: its template declares every index bluegreen queries",
            ),
            Err(e) => f.failed(name, &e),
        }
    }
    if let Some(secret) = &ctx.settings.link_secret_id {
        match SigningKey::secret_exists(ctx, secret).await {
            Ok(true) => {}
            Ok(false) => f.add(
                "link-secret-missing",
                secret,
                format!("the approval-link signing secret {secret} does not exist"),
                "set BLUEGREEN_LINK_SECRET_ID to the stack's LinkSigningSecretArn output",
            ),
            Err(e) => f.failed(secret, &e),
        }
    }
    if let Some(topic) = &ctx.settings.topic_arn {
        match notify::topic_exists(ctx, topic).await {
            Ok(true) => {}
            Ok(false) => f.add(
                "topic-missing",
                topic,
                format!("SNS topic {topic} does not exist"),
                "set BLUEGREEN_TOPIC_ARN to the stack's TopicArn output",
            ),
            Err(e) => f.failed(topic, &e),
        }
    }
    if let Some(machine) = &ctx.settings.deployment_machine_arn {
        match executions::machine_exists(ctx).await {
            Ok(true) => {}
            Ok(false) => f.add(
                "state-machine-missing",
                machine,
                format!("state machine {machine} does not exist"),
                "set BLUEGREEN_DEPLOYMENT_MACHINE_ARN to the stack's DeploymentStateMachineArn",
            ),
            Err(e) => f.failed(machine, &e),
        }
    }
    f.0
}

/// One service's config against what AWS has.
pub async fn service(ctx: &Context, config: &ServiceConfig) -> Vec<Finding> {
    let mut f = Findings(Vec::new());
    index(ctx, config, &mut f).await;
    let ecs_engine = config.traffic.engine() == bluegreen::config::Engine::Ecs;
    for slot in Slot::ALL {
        slot_service(ctx, config, slot, &mut f).await;
    }
    match &config.traffic {
        Traffic::Listener {
            production_listener_arn,
            test_listener_arn,
            production_rule_arn,
            ..
        } => {
            for slot in Slot::ALL {
                target_group(ctx, config, slot, &mut f).await;
            }
            let live = production(ctx, config, &mut f).await;
            // One service, one scalable target, which ECS's deployments leave alone: the
            // slots' idle-target checks would take production's own for the idle slot's.
            if !ecs_engine {
                autoscaling(ctx, config, live, &mut f).await;
            }
            if live.is_some() {
                live_slots(ctx, config, &mut f).await;
            }
            match test_listener_arn {
                Some(arn) => test_listener(ctx, config, arn, live, &mut f).await,
                // ECS's engine: ECS's own test rule (its gates are checked below); bluegreen's
                // header rule only to `isolated` pre-prod's own service.
                None if ecs_engine && !bluegreen::db_plan::preprod_on_clone(config) => {}
                None => test_rule_room(ctx, config, production_listener_arn, &mut f).await,
            }
            let mut switched = vec![production_listener_arn];
            switched.extend(test_listener_arn);
            switched.extend(production_rule_arn);
            for arn in switched {
                // One that does not exist is reported as missing already.
                if !f
                    .0
                    .iter()
                    .any(|x| x.subject == *arn && x.code.ends_with("-missing"))
                {
                    tagged(ctx, arn, &mut f).await;
                }
            }
        }
        Traffic::Dns { .. } => {
            let live = production(ctx, config, &mut f).await;
            autoscaling(ctx, config, live, &mut f).await;
            if live.is_some() {
                live_slots(ctx, config, &mut f).await;
            }
        }
    }
    if ecs_engine {
        isolated_on_ecs(ctx, config, &mut f).await;
    }
    database(ctx, config, &mut f).await;
    smoke_header_secrets(ctx, config, &mut f).await;
    maintenance_page(ctx, config, &mut f).await;
    match alarms::missing(ctx, &config.bake.alarms).await {
        Ok(missing) => {
            for alarm in missing {
                f.add(
                    "alarm-missing",
                    &alarm,
                    format!("bake alarm {alarm} does not exist"),
                    "create it in CloudWatch, or remove it from bake.alarms",
                );
            }
        }
        Err(e) => f.failed("bake.alarms", &e),
    }
    approvers(ctx, config, &mut f).await;
    f.0
}

async fn index(ctx: &Context, config: &ServiceConfig, f: &mut Findings) {
    match ServiceIndex::new(ctx)
        .watching(&config.source.repository)
        .await
    {
        Ok(services) if services.contains(&config.name) => {}
        Ok(_) => f.add(
            "config-not-indexed",
            &config.name,
            format!(
                "the service index does not list {} under {}: its pushes are not deployed",
                config.name, config.source.repository
            ),
            "run `bluegreen config reindex` (configs written outside `bluegreen config put` \
             are indexed by the stack's index_config function)",
        ),
        Err(e) => f.failed(&config.name, &e),
    }
}

/// Who else deploys the slot's service, and Service Connect: each a slot the slots engine
/// cannot drive.
fn deployment_findings(
    config: &ServiceConfig,
    slot: Slot,
    service: &aws_sdk_ecs::types::Service,
    subject: &str,
    f: &mut Findings,
) {
    let setup = bluegreen::aws::compute::setup_of(service);
    // On ECS's engine the service is meant to deploy blue/green itself.
    let slots = config.traffic.engine() == bluegreen::config::Engine::Slots;
    if let Some(deployer) = setup.other_deployer().filter(|_| slots) {
        f.add(
            "deployed-by-another",
            subject,
            format!(
                "{slot} slot: {subject} is deployed by {deployer}, which moves its own traffic \
                 when its task definition changes: launches are refused"
            ),
            "set the service's deployment strategy to ROLLING (and its controller to ECS); a \
             service on ECS's own blue/green is for traffic.engine = \"ecs\" (README \"Which \
             engine\")",
        );
    }
    // The one service keeps its names on ECS's engine.
    if let Some(namespace) = ecs::service_connect_of(service).filter(|_| slots) {
        f.add(
            "service-connect-unsupported",
            subject,
            format!(
                "{slot} slot: {subject} uses Service Connect (namespace {namespace}): the two \
                 slots cannot publish the same names, so callers would reach only one"
            ),
            "turn Service Connect off for the slots and call the service through its load \
             balancer, or deploy it with ECS's own blue/green",
        );
    }
}

/// On ECS's engine: whether ECS would deploy the service with bluegreen's gates — on ECS's
/// blue/green, the stack's hook at both gated stages with a timeout that rolls back — as the
/// launch checks it before it deploys (`engine::ecs_blue_green::not_gated`).
fn ecs_gates(
    ctx: &Context,
    config: &ServiceConfig,
    service: &aws_sdk_ecs::types::Service,
    subject: &str,
    f: &mut Findings,
) {
    if config.traffic.engine() != bluegreen::config::Engine::Ecs {
        return;
    }
    let Some(hook) = ctx.settings.ecs_hook_arn.as_deref() else {
        f.add(
            "ecs-hook-unknown",
            subject,
            "the stack's lifecycle hook is not known here, so the service's hooks cannot be \
             checked (launches fail closed without it)"
                .to_owned(),
            "set BLUEGREEN_ECS_HOOK_ARN to the stack's EcsHookFunctionArn output",
        );
        return;
    };
    let setup = bluegreen::aws::compute::setup_of(service);
    let name = service.service_name().unwrap_or(subject);
    if let Some(why) = bluegreen::engine::ecs_blue_green::not_gated_setup(name, &setup, hook) {
        f.add(
            "ecs-not-gated",
            subject,
            format!("{why}: launches are refused"),
            "register the hook as README \"Which engine\" shows",
        );
    }
}

async fn slot_service(ctx: &Context, config: &ServiceConfig, slot: Slot, f: &mut Findings) {
    let slot_config = config.slots.get(slot);
    let subject = format!("{}/{}", config.cluster, slot_config.service);
    // On ECS's engine both slots name the one service: what is the service's own is checked
    // once (blue's turn); each slot's target group is checked for both.
    let first = config.traffic.engine() == bluegreen::config::Engine::Slots || slot == Slot::Blue;
    let service = match ecs::describe_service(ctx, &config.cluster, &slot_config.service).await {
        Ok(service) => service,
        Err(StepError::ResourceNotFound {
            kind: "ECS cluster",
            ..
        }) => {
            if !f.0.iter().any(|x| x.code == "cluster-missing") {
                f.add(
                    "cluster-missing",
                    &config.cluster,
                    format!("ECS cluster {} does not exist", config.cluster),
                    "set `cluster` to the cluster the slot services run in",
                );
            }
            return;
        }
        Err(StepError::ResourceNotFound { .. }) if !first => return,
        Err(StepError::ResourceNotFound { .. }) => {
            f.add(
                "service-missing",
                &subject,
                format!("{slot} slot: ECS service {subject} does not exist"),
                &format!(
                    "create it (`bluegreen adopt` makes the second slot from an existing \
                     service), or fix slots.{slot}.service in {}'s config",
                    config.name
                ),
            );
            return;
        }
        Err(e) => return f.failed(&subject, &e),
    };
    if first {
        service_findings(ctx, config, slot, &service, &subject, f).await;
    }
    slot_group_attached(config, slot, &service, &subject, f);
}

/// What is the slot service's own: its managed tag, who deploys it, ECS's gates (on ECS's
/// engine), its app container.
async fn service_findings(
    ctx: &Context,
    config: &ServiceConfig,
    slot: Slot,
    service: &aws_sdk_ecs::types::Service,
    subject: &str,
    f: &mut Findings,
) {
    let subject = subject.to_owned();
    let arn = service.service_arn.clone().unwrap_or_default();
    match ecs::tags_of(ctx, &arn).await {
        Ok(tags) if tags.iter().any(|(k, v)| k == TAG_MANAGED && v == "true") => {}
        Ok(_) => f.add(
            "service-untagged",
            &subject,
            format!("{slot} slot: {subject} is not tagged {TAG_MANAGED}=true"),
            "tag it (bluegreen scales and updates only services tagged as its own)",
        ),
        Err(e) => f.failed(&subject, &e),
    }
    deployment_findings(config, slot, service, &subject, f);
    ecs_gates(ctx, config, service, &subject, f);
    container(ctx, config, slot, service, &subject, f).await;
}

/// Whether the slot's target group is one the service registers in (on ECS's blue/green, the
/// alternate group of its load balancer's advanced configuration counts: it is the service's
/// too).
fn slot_group_attached(
    config: &ServiceConfig,
    slot: Slot,
    service: &aws_sdk_ecs::types::Service,
    subject: &str,
    f: &mut Findings,
) {
    let slot_config = config.slots.get(slot);
    if matches!(config.traffic, Traffic::Listener { .. }) {
        // On ECS's blue/green the alternate group is the load balancer's advanced
        // configuration's: it is the service's too.
        let tg = Some(slot_config.target_group_arn.as_str());
        let attached = service.load_balancers().iter().any(|lb| {
            lb.target_group_arn.as_deref() == tg
                || lb
                    .advanced_configuration()
                    .is_some_and(|a| a.alternate_target_group_arn() == tg)
        });
        if !attached {
            f.add(
                "target-group-not-attached",
                subject,
                format!(
                    "{slot} slot: {subject} does not register its tasks in {}",
                    slot_config.target_group_arn
                ),
                &format!(
                    "attach the target group to the service's load balancer configuration, or \
                     fix slots.{slot}.target_group_arn in {}'s config",
                    config.name
                ),
            );
        }
    }
}

/// A listener or rule bluegreen switches must carry the managed tag: the stack's roles may
/// modify only tagged ones.
async fn tagged(ctx: &Context, arn: &str, f: &mut Findings) {
    match elb::tags_of(ctx, arn).await {
        Ok(None) => {} // no such listener: the routing checks say so
        Ok(Some(tags)) if tags.iter().any(|(k, v)| k == TAG_MANAGED && v == "true") => {}
        Ok(Some(_)) => f.add(
            "listener-untagged",
            arn,
            format!("{arn} is not tagged {TAG_MANAGED}=true: the switch would be AccessDenied"),
            "tag it (bluegreen's roles modify only tagged listeners and rules)",
        ),
        Err(StepError::Aws { code, .. })
            if code.ends_with("NotFound") || code.ends_with("NotFoundException") => {}
        Err(e) => f.failed(arn, &e),
    }
}

/// The slot service's task definition has the containers the config names, and by default
/// `container` runs the app's image (not a proxy or agent sidecar the push would replace).
async fn container(
    ctx: &Context,
    config: &ServiceConfig,
    slot: Slot,
    service: &aws_sdk_ecs::types::Service,
    subject: &str,
    f: &mut Findings,
) {
    let Some(td) = &service.task_definition else {
        return;
    };
    match ecs::describe_task_definition(ctx, td).await {
        Ok((definition, _)) => {
            let named: Vec<Named<'_>> = definition
                .container_definitions()
                .iter()
                .map(|c| Named {
                    name: c.name.as_deref().unwrap_or_default(),
                    image: c.image.as_deref().unwrap_or_default(),
                })
                .collect();
            let Err(problem) = app_containers(config, &named, td) else {
                return;
            };
            let main = named.iter().find(|c| c.name == config.container);
            // By default, with `container` present, the only problem is its image.
            if let (Some(main), true) = (main, config.containers.is_empty()) {
                f.add(
                    "container-image-not-from-source",
                    subject,
                    format!(
                        "{slot} slot: container {:?} runs {}, not an image of {}: every push \
                         would replace it with the app",
                        main.name, main.image, config.source.repository
                    ),
                    "set `container` to the app's container, or name the containers the push \
                     updates in `containers`",
                );
            } else {
                f.add(
                    "container-missing",
                    subject,
                    format!("{slot} slot: {problem}"),
                    "set `container` (and `containers`) to the containers that run the pushed \
                     image",
                );
            }
        }
        Err(e) => f.failed(td, &e),
    }
}

/// ECS's engine: pre-prod services of its own (`isolated`, `bg-<service>-preprod-…`) still
/// active that the lock's holder does not own — left by an ending that needed a person. Their
/// tasks, on a clone, sit in the alternate target group, where the next launch refuses to
/// start beside them.
async fn own_preprod_services_left(ctx: &Context, config: &ServiceConfig, f: &mut Findings) {
    let prefix = bluegreen::naming::preprod_service_prefix(&config.slots.blue.service);
    let names = match ecs::service_names(ctx, &config.cluster, &prefix).await {
        Ok(names) => names,
        // A missing cluster is reported by the slots' check.
        Err(StepError::ResourceNotFound { .. }) => return,
        Err(e) => return f.failed(&config.cluster, &e),
    };
    let holder = match bluegreen::lock::Locks::new(ctx).read(&config.name).await {
        Ok(lock) => lock.map(|l| l.holder),
        Err(e) => return f.failed(&config.name, &e),
    };
    for name in names {
        let subject = format!("{}/{name}", config.cluster);
        let arn = match ecs::describe_service(ctx, &config.cluster, &name).await {
            Ok(service) => service.service_arn.unwrap_or_default(),
            Err(StepError::ResourceNotFound { .. }) => continue,
            Err(e) => return f.failed(&subject, &e),
        };
        let owner = match ctx.ports.compute.tags_of(&arn).await {
            Ok(tags) => tags
                .into_iter()
                .find(|(k, _)| k == bluegreen::naming::TAG_DEPLOYMENT)
                .map(|(_, v)| v),
            Err(e) => return f.failed(&subject, &e),
        };
        if owner.is_some() && owner == holder {
            continue;
        }
        let owner = owner.unwrap_or_else(|| "an unknown deployment".into());
        f.add(
            "ecs-preprod-service-left",
            &subject,
            format!(
                "pre-prod's own service {name} of {owner} still runs (on its clone, in the \
                 alternate target group) though its deployment no longer holds the lock: the \
                 next launch is refused while its tasks are registered there"
            ),
            &format!(
                "`bluegreen retry {owner}` if it needs attention (its abort deletes it), else \
                 delete the service"
            ),
        );
    }
}

/// ECS's engine: pre-prod services of its own an ending left; with `isolated`, each slot
/// group's deregistration delay.
async fn isolated_on_ecs(ctx: &Context, config: &ServiceConfig, f: &mut Findings) {
    own_preprod_services_left(ctx, config, f).await;
    if bluegreen::db_plan::preprod_on_clone(config) {
        for slot in Slot::ALL {
            preprod_drain(ctx, config, slot, f).await;
        }
    }
}

/// ECS's engine with `isolated`: promote waits for pre-prod's own service to drain from the
/// alternate group (either group, as they swap) before ECS deploys, within
/// `preprod.launch_timeout_seconds`, and an abort waits as long: a deregistration delay of half
/// of it or more leaves too little for ECS's rollout (promote fails after the production
/// migration ran) or makes every rejection need a person.
async fn preprod_drain(ctx: &Context, config: &ServiceConfig, slot: Slot, f: &mut Findings) {
    let arn = &config.slots.get(slot).target_group_arn;
    let delay = match elb::deregistration_delay(ctx, arn).await {
        Ok(Some(delay)) => delay,
        Ok(None) => return,
        // A missing group is reported by the slots' check.
        Err(StepError::ResourceNotFound { .. }) => return,
        Err(e) => return f.failed(arn, &e),
    };
    let timeout = config.preprod.launch_timeout_seconds;
    if delay * 2 >= timeout {
        f.add(
            "ecs-preprod-drain-too-long",
            arn,
            format!(
                "{slot} target group's deregistration delay is {delay} s: isolated pre-prod's \
                 own service drains from the group for that long before ECS deploys, within \
                 preprod.launch_timeout_seconds ({timeout} s), and an abort waits as long"
            ),
            &format!(
                "lower the group's deregistration_delay.timeout_seconds (below {}), or raise \
                 preprod.launch_timeout_seconds in {}'s config",
                timeout / 2,
                config.name
            ),
        );
    }
}

async fn target_group(ctx: &Context, config: &ServiceConfig, slot: Slot, f: &mut Findings) {
    let arn = &config.slots.get(slot).target_group_arn;
    match elb::target_group(ctx, arn).await {
        Ok(Some(_)) => {}
        Ok(None) => f.add(
            "target-group-missing",
            arn,
            format!("{slot} slot: target group {arn} does not exist"),
            &format!(
                "create it, or fix slots.{slot}.target_group_arn in {}'s config",
                config.name
            ),
        ),
        Err(e) => f.failed(arn, &e),
    }
}

/// Production routing: the listener, rule or records exist and send everything to one slot.
/// Returns the live slot when it could be read.
async fn production(ctx: &Context, config: &ServiceConfig, f: &mut Findings) -> Option<Slot> {
    let subject = format!("{} production routing", config.name);
    let state = match routing::read_production(ctx, config).await {
        Ok(state) => state,
        Err(StepError::ResourceNotFound { kind, id }) => {
            let code = match kind {
                "listener" => "listener-missing",
                "listener rule" => "rule-missing",
                "hosted zone" => "hosted-zone-missing",
                _ => "dns-records-missing",
            };
            f.add(
                code,
                &id,
                format!("{kind} {id} does not exist"),
                "fix the traffic section of the config to name what production uses",
            );
            return None;
        }
        Err(StepError::UnexpectedRouting(why)) => {
            f.add(
                "production-routing-unexpected",
                &subject,
                why,
                "make production forward to exactly one slot's target group (or records)",
            );
            return None;
        }
        Err(e) => {
            f.failed(&subject, &e);
            return None;
        }
    };
    match state.live() {
        Ok(live) => Some(live),
        Err(e) => {
            f.add(
                "production-routing-unexpected",
                &subject,
                e.to_string(),
                "send all of production to one slot before the first deployment",
            );
            None
        }
    }
}

/// The live-slot guard's invariant (see [`bluegreen::guard`]): production on slots that run tasks,
/// the idle slot at rest. Checked while no deployment holds the service.
async fn live_slots(ctx: &Context, config: &ServiceConfig, f: &mut Findings) {
    let subject = format!("{} slots", config.name);
    // A slot service that does not exist is reported already; there is nothing to judge.
    if f.0
        .iter()
        .any(|x| matches!(x.code, "service-missing" | "cluster-missing"))
    {
        return;
    }
    match bluegreen::lock::Locks::new(ctx).read(&config.name).await {
        Ok(Some(_)) => return,
        Ok(None) => {}
        Err(e) => return f.failed(&subject, &e),
    }
    match bluegreen::guard::findings(ctx, config).await {
        Ok(found) => {
            for (code, problem, fix) in found {
                f.add(code, &subject, problem, &fix);
            }
        }
        Err(e) => f.failed(&subject, &e),
    }
}

/// The slots' autoscaling: the idle slot cannot come back, production is not left suspended
/// (see [`bluegreen::autoscaling::problems`]).
async fn autoscaling(ctx: &Context, config: &ServiceConfig, live: Option<Slot>, f: &mut Findings) {
    let Some(live) = live else { return };
    let subject = format!("{} autoscaling", config.name);
    // A deployment in progress suspends scaling on purpose (see bluegreen::autoscaling).
    match bluegreen::lock::Locks::new(ctx).read(&config.name).await {
        Ok(Some(_)) => return,
        Ok(None) => {}
        Err(e) => return f.failed(&subject, &e),
    }
    match bluegreen::autoscaling::check(ctx, config, live).await {
        Ok(found) => {
            for (code, problem, fix) in found {
                f.add(code, &subject, problem, &fix);
            }
        }
        Err(e) => f.failed(&subject, &e),
    }
}

async fn test_listener(
    ctx: &Context,
    config: &ServiceConfig,
    arn: &str,
    live: Option<Slot>,
    f: &mut Findings,
) {
    match routing::read_test(ctx, config).await {
        Ok(Some(slot)) if Some(slot) == live => f.add(
            "test-listener-routing",
            arn,
            format!("the test listener forwards to the live {slot} slot, not the idle one"),
            "point the test listener at the idle slot's target group",
        ),
        Ok(_) => {}
        Err(StepError::ResourceNotFound { kind, id }) => f.add(
            "test-listener-missing",
            &id,
            format!("{kind} {id} does not exist"),
            "create a test listener (`bluegreen adopt --test-port`) or fix test_listener_arn",
        ),
        Err(e) => f.add(
            "test-listener-routing",
            arn,
            e.to_string(),
            "point the test listener at the idle slot's target group",
        ),
    }
}

/// With a test rule: the place the next deployment's rule would take on the production
/// listener (`test_rule::placement`), asked now rather than at the launch.
async fn test_rule_room(ctx: &Context, config: &ServiceConfig, listener: &str, f: &mut Findings) {
    let rules = match ctx.ports.load_balancing.rules(listener).await {
        Ok(rules) => rules,
        // A missing listener is reported by the production check.
        Err(StepError::ResourceNotFound { .. }) => return,
        Err(e) => return f.failed(listener, &e),
    };
    // What the next launch sees: the service's own test rules are replaced, others stay.
    if let Err(e) = test_rule::placement(config, &test_rule::others_of(config, rules)) {
        f.add(
            "test-rule-no-room",
            listener,
            e.to_string(),
            "free a priority where the test rule goes, or use a test listener \
             (traffic.test_listener_arn)",
        );
    }
}

async fn database(ctx: &Context, config: &ServiceConfig, f: &mut Findings) {
    let needs_source =
        config.database.strategy == DbStrategy::Isolated || config.database.rehearsal;
    let Some(source) = config.database.source.as_ref().filter(|_| needs_source) else {
        return;
    };
    let (kind, found) = match source {
        DbSource::RdsInstance { identifier } => (
            "RDS instance",
            ctx.ports
                .databases
                .describe_instance(identifier)
                .await
                .map(|i| i.is_some()),
        ),
        DbSource::AuroraCluster { identifier } => (
            "Aurora cluster",
            ctx.ports
                .databases
                .describe_cluster(identifier)
                .await
                .map(|c| c.is_some()),
        ),
    };
    let id = match source {
        DbSource::RdsInstance { identifier } | DbSource::AuroraCluster { identifier } => identifier,
    };
    match found {
        Ok(true) => {}
        Ok(false) => f.add(
            "database-source-missing",
            id,
            format!("{kind} {id}, which pre-prod's database is cloned from, does not exist"),
            "fix database.source to name production's database",
        ),
        Err(e) => f.failed(id, &e),
    }
    if let Some(setting) = &config.database.secret {
        database_secret(ctx, config, setting, f).await;
    }
}

/// `database.secret`: each slot's task definition reads the setting from a Secrets Manager
/// secret that exists and that the stack may read (tagged [`TAG_DATABASE_SOURCE`]); without
/// the tag the first clone deployment fails with AccessDenied.
async fn database_secret(ctx: &Context, config: &ServiceConfig, setting: &str, f: &mut Findings) {
    let mut seen = Vec::new();
    for slot in Slot::ALL {
        let service = &config.slots.get(slot).service;
        // A slot that cannot be read is reported by the slot checks.
        let Ok(td) = bluegreen::ecs::live_task_definition(ctx, &config.cluster, service).await
        else {
            continue;
        };
        let definition = match bluegreen::ecs::describe_task_definition(ctx, &td).await {
            Ok(definition) => definition,
            Err(e) => {
                f.failed(&td, &e);
                continue;
            }
        };
        let Some(from) = definition.secret_from(&config.container, setting) else {
            f.add(
                "database-secret-not-read",
                &td,
                format!(
                    "{slot} slot: container {} of {td} has no secret {setting}",
                    config.container
                ),
                "set database.secret to the `secrets` entry the app reads its database from",
            );
            continue;
        };
        // Pre-prod of a deployment in progress reads its clone's secret: bluegreen's own.
        if is_clone_secret(&from) || seen.contains(&from) {
            continue;
        }
        seen.push(from.clone());
        let reference = match SecretReference::parse(&from) {
            Ok(reference) => reference,
            Err(why) => {
                f.add(
                    "database-secret-not-re-pointable",
                    &td,
                    format!("{slot} slot: database.secret {setting}: {why}"),
                    "keep the database setting in a Secrets Manager secret, or use url_env or \
                     endpoint_env with a plain variable",
                );
                continue;
            }
        };
        let id = &reference.secret_id;
        match ctx.ports.secrets.describe_secret(id).await {
            Ok(None) => f.add(
                "database-secret-missing",
                id,
                format!("secret {id}, which {slot}'s {setting} reads, does not exist"),
                "fix the task definition's valueFrom, or create the secret",
            ),
            Ok(Some(info))
                if !info
                    .tags
                    .contains(&(TAG_DATABASE_SOURCE.into(), "true".into())) =>
            {
                f.add(
                    "database-secret-untagged",
                    id,
                    format!(
                        "secret {} is not tagged {TAG_DATABASE_SOURCE} = true: the stack may not \
                         read it, so no clone can be pointed at",
                        info.name
                    ),
                    &format!(
                        "aws secretsmanager tag-resource --secret-id {id} --tags \
                         Key={TAG_DATABASE_SOURCE},Value=true"
                    ),
                );
            }
            Ok(Some(_)) => {}
            Err(e) => f.failed(id, &e),
        }
    }
}

/// Every smoke-check header kept in Secrets Manager exists and may be read by the checking
/// functions (tagged [`TAG_SMOKE_HEADER`]); without the tag the first health check fails with
/// AccessDenied, after the clone and the migration ran.
async fn smoke_header_secrets(ctx: &Context, config: &ServiceConfig, f: &mut Findings) {
    let mut seen = Vec::new();
    for check in &config.health.smoke {
        for value in check.headers.values() {
            let HeaderValue::Secret(secret) = value else {
                continue;
            };
            if seen.contains(&secret.secret) {
                continue;
            }
            seen.push(secret.secret.clone());
            let id = &secret.secret;
            match ctx.ports.secrets.describe_secret(id).await {
                Ok(None) => f.add(
                    "smoke-header-secret-missing",
                    id,
                    format!("secret {id}, a smoke check's header, does not exist"),
                    "fix health.smoke's header `secret`, or create the secret",
                ),
                Ok(Some(info))
                    if !info
                        .tags
                        .contains(&(TAG_SMOKE_HEADER.into(), "true".into())) =>
                {
                    f.add(
                        "smoke-header-secret-untagged",
                        id,
                        format!(
                            "secret {} is not tagged {TAG_SMOKE_HEADER} = true: the health \
                             check may not read it",
                            info.name
                        ),
                        &format!(
                            "aws secretsmanager tag-resource --secret-id {id} --tags \
                             Key={TAG_SMOKE_HEADER},Value=true"
                        ),
                    );
                }
                Ok(Some(_)) => {}
                Err(e) => f.failed(id, &e),
            }
        }
    }
}

/// Whether the maintenance page could go up where the production migration would put it:
/// the same decision the migration makes (`maintenance::placement`), asked now, not at 3 am.
async fn maintenance_page(ctx: &Context, config: &ServiceConfig, f: &mut Findings) {
    let Traffic::Listener {
        production_listener_arn,
        ..
    } = &config.traffic
    else {
        return;
    };
    if !config.migration.as_ref().is_some_and(|m| m.maintenance) {
        return;
    }
    let placed = match ctx
        .ports
        .load_balancing
        .rules(production_listener_arn)
        .await
    {
        // Whether the default action also serves the service only adds a page below every
        // rule; that it fits (short of priority 50000) is not checked here.
        Ok(rules) => bluegreen::maintenance::placement(config, &rules, false),
        Err(e) => return f.failed(production_listener_arn, &e),
    };
    if let Err(e) = placed {
        f.add(
            "maintenance-page-unplaceable",
            production_listener_arn,
            e.to_string(),
            "route the service through its own rule with a free priority directly above it, or \
             set migration.maintenance = false",
        );
    }
}

async fn approvers(ctx: &Context, config: &ServiceConfig, f: &mut Findings) {
    if !config.approval.approvers.iter().any(|a| a.contains('@')) {
        return;
    }
    if ctx.settings.topic_arn.is_none() {
        f.add(
            "topic-unset",
            &config.name,
            "approvers are e-mail addresses but BLUEGREEN_TOPIC_ARN is not set: nobody is \
             told a deployment awaits them"
                .into(),
            "set BLUEGREEN_TOPIC_ARN to the stack's TopicArn output",
        );
        return;
    }
    match subscriptions::unsubscribed_approvers(ctx, config).await {
        Ok(missing) => {
            for approver in missing {
                f.add(
                    "approver-not-subscribed",
                    &approver,
                    format!(
                        "approver {approver} has no subscription with their own filter policy: \
                         their approval links reach nobody"
                    ),
                    &format!("run `bluegreen approvers subscribe {}`", config.name),
                );
            }
        }
        Err(e) => f.failed(&config.name, &e),
    }
}
