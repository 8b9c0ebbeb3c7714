//! What must hold of the in-memory AWS after every call that changed it, and at the end of a
//! run. Read from AWS's state itself — routes, services, tasks, rules, records, locks — not
//! from what bluegreen says it did.

use std::collections::BTreeMap;
use std::sync::Mutex;

use bluegreen::config::{ServiceConfig, Traffic};
use bluegreen::lock::PushOrder;
use bluegreen::ports::load_balancing::{Route, WeightedGroup};
use bluegreen::record::{Deployment, Status};
use bluegreen::{Settings, Slot};

use crate::memory::State;

use super::neighbours::Neighbours;

/// A broken invariant: when, after which call, what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Virtual time since the start.
    pub at: String,
    /// The call after which it was seen (`quiescence` at the end).
    pub after: String,
    /// What is wrong.
    pub what: String,
}

/// The invariants of one run, with what they remember between checks.
pub struct Invariants {
    settings: Settings,
    configs: BTreeMap<String, ServiceConfig>,
    seen: Mutex<Seen>,
    violations: Mutex<Vec<Violation>>,
    /// The records as the last DynamoDB write left them (other calls do not change them).
    records: Mutex<Vec<Deployment>>,
    /// Other teams' routes on the shared load balancer, with what each forwards to; `None`
    /// until the world is complete (the routes' checks wait for it).
    neighbours: Mutex<Option<Neighbours>>,
}

/// What earlier checks saw.
#[derive(Default)]
struct Seen {
    /// The last status of each deployment.
    statuses: BTreeMap<String, Status>,
    /// Per service, the newest push that ever moved production traffic.
    newest_switched: BTreeMap<String, PushOrder>,
    /// Deployments already counted as having moved traffic.
    switched: Vec<String>,
}

/// Whether a deployment may go from `before` to `after`: an ended one stays as it ended,
/// except that a success can be rolled back by an operator inside its keep-warm window, and
/// one that needs attention can be retried to an end.
fn may_move(before: Status, after: Status) -> bool {
    before == after
        || !before.is_terminal()
        || before == Status::NeedsAttention
        || (before == Status::Succeeded && after == Status::RolledBack)
}

/// Whether an operation only reads.
fn reads_only(operation: &str) -> bool {
    let action = operation.split(':').nth(1).unwrap_or(operation);
    ["Describe", "Get", "List", "Query", "Scan"]
        .iter()
        .any(|p| action.starts_with(p))
}

impl Invariants {
    /// Invariants over `configs` (by service) under `settings`.
    pub fn new(settings: Settings, configs: Vec<ServiceConfig>) -> Self {
        Invariants {
            settings,
            configs: configs.into_iter().map(|c| (c.name.clone(), c)).collect(),
            seen: Mutex::new(Seen::default()),
            violations: Mutex::new(Vec::new()),
            records: Mutex::new(Vec::new()),
            neighbours: Mutex::new(None),
        }
    }

    /// The world is complete: from now on every route is checked, and `routes` (other teams'
    /// routes on the shared load balancer) are held to forwarding exactly as given.
    pub fn world_built(&self, routes: Neighbours) {
        *self.neighbours.lock().expect("neighbours") = Some(routes);
    }

    /// Every violation so far.
    pub fn violations(&self) -> Vec<Violation> {
        self.violations.lock().expect("violations").clone()
    }

    fn violated(&self, after: &str, what: String) {
        let mut all = self.violations.lock().expect("violations");
        // The same breach seen after every later call is one finding.
        if !all.iter().any(|v| v.what == what) {
            all.push(Violation {
                at: super::clock::stamp(),
                after: after.to_owned(),
                what,
            });
        }
    }

    /// The records in `state`.
    fn records(&self, state: &State) -> Vec<Deployment> {
        state
            .tables
            .items(&self.settings.deployments_table)
            .into_iter()
            .filter_map(|item| serde_dynamo::from_item(item).ok())
            .collect()
    }

    /// After a call that changed AWS: everything that must hold at every moment.
    pub fn check(&self, operation: &str, state: &State) {
        if reads_only(operation) {
            return;
        }
        let mut cached = self.records.lock().expect("records");
        if operation.starts_with("dynamodb:") {
            *cached = self.records(state);
        }
        let records = cached.clone();
        drop(cached);
        for config in self.configs.values() {
            self.production_is_served(operation, state, config);
            self.one_deployment_at_a_time(operation, &records, config);
            if on_ecs(config) {
                self.ecs_moves_production_only_when_switched(operation, state, &records, config);
            }
        }
        self.one_migration_at_a_time(operation, state);
        self.migrations_run_under_their_lock(operation, state, &records);
        self.test_rules_need_their_header(operation, state);
        self.test_rules_end_with_their_deployment(operation, state, &records);
        self.history_moves_forward(operation, &records);
        if self.neighbours.lock().expect("neighbours").is_some() {
            self.neighbours_untouched(operation, state);
            for config in self.configs.values() {
                self.every_route_is_served(operation, state, config);
            }
        }
    }

    /// Every route of the service's (production, and every other rule or listener that
    /// forwards to a slot — not the test listener or a test rule) forwards only to slots that
    /// run tasks: no route loses its traffic to a slot scaled to 0.
    fn every_route_is_served(&self, operation: &str, state: &State, config: &ServiceConfig) {
        for (route, slot, weight) in routes_to_slots(state, config) {
            let service_name = &config.slots.get(slot).service;
            if weight > 0 && !runs_tasks(state, config, slot) {
                self.violated(
                    operation,
                    format!(
                        "{}: {route:?} forwards {weight} to {slot} ({service_name}), which runs no tasks",
                        config.name
                    ),
                );
            }
        }
    }

    /// Another team's route on the shared load balancer forwards exactly as it did: bluegreen
    /// moves its own service's routes only.
    fn neighbours_untouched(&self, operation: &str, state: &State) {
        let neighbours = self.neighbours.lock().expect("neighbours").clone();
        for (route, forward) in neighbours.iter().flatten() {
            let now = state.elb.forward_of(route);
            if now.as_ref().ok() != Some(forward) {
                self.violated(
                    operation,
                    format!("another team's route {route:?} forwarded to {forward:?}; now {now:?}"),
                );
            }
        }
    }

    /// Production forwards only to slots that run tasks, on production's database.
    fn production_is_served(&self, operation: &str, state: &State, config: &ServiceConfig) {
        for (slot, weight) in production_weights(state, config) {
            if weight == 0 {
                continue;
            }
            let service_name = &config.slots.get(slot).service;
            let Some(service) = state.ecs.service(&config.cluster, service_name) else {
                self.violated(
                    operation,
                    format!("production forwards to {slot}, which has no service"),
                );
                continue;
            };
            // ECS's engine: pre-prod's own service (`isolated`, on the clone) registers in the
            // alternate group, which production must not reach.
            if let Some(preprod) = preprod_service_in(state, config, slot) {
                self.violated(
                    operation,
                    format!(
                        "{}: production forwards {weight} to {slot}, where pre-prod's service {preprod} registers",
                        config.name
                    ),
                );
            }
            if !runs_tasks(state, config, slot) {
                self.violated(
                    operation,
                    format!(
                        "{}: production forwards {weight} to {slot} ({service_name}), which runs {}/{} tasks ({} registered in its group)",
                        config.name,
                        service.state.running_count,
                        service.state.desired_count,
                        registered(state, config, slot)
                    ),
                );
            }
            let mut definitions: Vec<&str> = service
                .state
                .task_definition
                .iter()
                .map(String::as_str)
                .collect();
            definitions.extend(
                service
                    .state
                    .deployments
                    .iter()
                    .filter_map(|d| d.task_definition.as_deref()),
            );
            for td in definitions {
                let Some(definition) = state.ecs.definition(td) else {
                    continue;
                };
                for (container, name, value) in definition.all_env() {
                    if value.contains(bluegreen::naming::CLONE_PREFIX) && value.contains(".sim.rds")
                    {
                        self.violated(
                            operation,
                            format!(
                                "{}: production forwards to {slot}, whose {td} has {container} {name}={value} (a clone)",
                                config.name
                            ),
                        );
                    }
                }
            }
        }
    }

    /// On ECS's engine, ECS moves production itself, gated by bluegreen's hook: production only
    /// ever serves the release it had or one whose deployment reached its switch — approved
    /// (by a person or the auto policy), migrated after the approval, pre-prod checked — which
    /// the switch records (`switched_at`) as it lets ECS on.
    fn ecs_moves_production_only_when_switched(
        &self,
        operation: &str,
        state: &State,
        records: &[Deployment],
        config: &ServiceConfig,
    ) {
        for (slot, weight) in production_weights(state, config) {
            let group = &config.slots.get(slot).target_group_arn;
            let Some(image) = state.image_in_group(group).filter(|_| weight > 0) else {
                continue;
            };
            // An image deployed again (`bluegreen rollback --to`, a redeploy) may serve once
            // any of its deployments reached its switch.
            let of_image: Vec<&Deployment> = records
                .iter()
                .filter(|d| image.ends_with(&d.image.digest))
                .collect();
            let switched = of_image.iter().any(|d| d.switched_at.is_some());
            if let Some(d) = of_image.first().filter(|_| !switched) {
                self.violated(
                    operation,
                    format!(
                        "{}: production forwards {weight} to {slot}, which runs {}'s image before its switch (approved and ready)",
                        config.name, d.deployment_id
                    ),
                );
            }
        }
    }

    /// A test rule matches only requests with its deployment's preview header: ordinary
    /// requests never reach pre-prod through it, wherever it sits.
    fn test_rules_need_their_header(&self, operation: &str, state: &State) {
        for rule in state.elb.rules.values() {
            let Some(owner) = test_rule_owner(rule) else {
                continue;
            };
            // The rule matches the deployment id, its probe the id's probe value.
            let probe = format!("{owner}-probe");
            let header = rule.conditions.iter().any(|c| {
                c.field == "http-header"
                    && c.header_name.is_some()
                    && !c.values.is_empty()
                    && c.values.iter().all(|v| v == owner || *v == probe)
            });
            if !header {
                self.violated(
                    operation,
                    format!(
                        "the test rule of {owner} matches without its header: {:?}",
                        rule.conditions
                    ),
                );
            }
        }
    }

    /// Every ending removes its deployment's test rule before it writes the end: a rule
    /// outlives its deployment only when the deployment needs a person (the reconciler's
    /// removal is best effort; teardown takes what is left) or has no record yet.
    fn test_rules_end_with_their_deployment(
        &self,
        operation: &str,
        state: &State,
        records: &[Deployment],
    ) {
        for rule in state.elb.rules.values() {
            let Some(owner) = test_rule_owner(rule) else {
                continue;
            };
            let status = records
                .iter()
                .find(|d| d.deployment_id == owner)
                .map(|d| d.status);
            if status.is_some_and(|s| s.is_terminal() && s != Status::NeedsAttention) {
                self.violated(
                    operation,
                    format!("the test rule of {owner} ({status:?}) outlives it"),
                );
            }
        }
    }

    /// At most one deployment of a service is past queueing and not ended.
    fn one_deployment_at_a_time(
        &self,
        operation: &str,
        records: &[Deployment],
        config: &ServiceConfig,
    ) {
        let active: Vec<&str> = records
            .iter()
            .filter(|d| d.service == config.name)
            .filter(|d| !d.status.is_terminal() && d.status != Status::Queued)
            .map(|d| d.deployment_id.as_str())
            .collect();
        if active.len() > 1 {
            self.violated(
                operation,
                format!(
                    "{}: {} deployments active at once: {}",
                    config.name,
                    active.len(),
                    active.join(", ")
                ),
            );
        }
    }

    /// At most one migration task (rehearsal, production or rollback) runs per cluster.
    fn one_migration_at_a_time(&self, operation: &str, state: &State) {
        let mut running: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for task in state.ecs.tasks.values() {
            if task.state.last_status != "STOPPED" && task.state.started_by.starts_with("bg-") {
                running
                    .entry(task.cluster.as_str())
                    .or_default()
                    .push(task.state.started_by.as_str());
            }
        }
        for (cluster, tasks) in running {
            if tasks.len() > 1 {
                self.violated(
                    operation,
                    format!(
                        "{cluster}: {} migration tasks run at once: {}",
                        tasks.len(),
                        tasks.join(", ")
                    ),
                );
            }
        }
    }

    /// A migration task (rehearsal, production or rollback) runs only while the deployment that
    /// started it holds its service's lock: the lock is what keeps the next deployment's
    /// migration off the database, so it must not be handed on (or released) while a task
    /// that was stopped is still in its stop timeout. (Stricter than one migration per cluster:
    /// it fails when the lock moves, not only when a second task happens to start.)
    fn migrations_run_under_their_lock(
        &self,
        operation: &str,
        state: &State,
        records: &[Deployment],
    ) {
        use bluegreen::db_plan::MigrationTask;
        let locks = state.tables.items(&self.settings.locks_table);
        let holder_of = |service: &str| {
            locks.iter().find_map(|lock| {
                let named = matches!(lock.get("service"),
                    Some(serde_dynamo::AttributeValue::S(s)) if s == service);
                match lock.get("deployment_id") {
                    Some(serde_dynamo::AttributeValue::S(h)) if named => Some(h.clone()),
                    _ => None,
                }
            })
        };
        for task in state.ecs.tasks.values() {
            if task.state.last_status == "STOPPED" || !task.state.started_by.starts_with("bg-") {
                continue;
            }
            let started = [
                MigrationTask::OnClone,
                MigrationTask::Production,
                MigrationTask::Rollback,
            ];
            let Some(owner) = records.iter().find(|d| {
                started
                    .iter()
                    .any(|kind| every_attempt(d, *kind).contains(&task.state.started_by))
            }) else {
                continue; // started before its record was read (the next check sees it)
            };
            let holder = holder_of(&owner.service);
            if holder.as_deref() != Some(owner.deployment_id.as_str()) {
                self.violated(
                    operation,
                    format!(
                        "{}: migration task {} of {} still runs ({}, {}), but the lock is {}",
                        owner.service,
                        task.state.started_by,
                        owner.deployment_id,
                        task.state.last_status,
                        if task.listed {
                            "listed"
                        } else {
                            "not listed yet"
                        },
                        holder.map_or("free".to_owned(), |h| format!("held by {h}"))
                    ),
                );
            }
        }
    }

    /// Ended deployments stay ended, and no push older than one that reached production ever
    /// reaches it after.
    fn history_moves_forward(&self, operation: &str, records: &[Deployment]) {
        let mut seen = self.seen.lock().expect("seen");
        for d in records {
            if let Some(before) = seen.statuses.get(&d.deployment_id).copied()
                && !may_move(before, d.status)
            {
                self.violated(
                    operation,
                    format!(
                        "{} went from {before} to {} after it ended",
                        d.deployment_id, d.status
                    ),
                );
            }
            seen.statuses.insert(d.deployment_id.clone(), d.status);
            if d.switched_at.is_some() && !seen.switched.contains(&d.deployment_id) {
                seen.switched.push(d.deployment_id.clone());
                let order = PushOrder::new(d.pushed_at, &d.deployment_id);
                match seen.newest_switched.get(&d.service) {
                    Some(newest) if *newest > order => self.violated(
                        operation,
                        format!(
                            "{}: {} moved production after the newer {}",
                            d.service,
                            d.deployment_id,
                            newest.deployment_id()
                        ),
                    ),
                    _ => {
                        seen.newest_switched.insert(d.service.clone(), order);
                    }
                }
            }
        }
    }

    /// At the end of a run, when nothing runs any more.
    pub fn check_quiescent(&self, state: &State) {
        let records = self.records(state);
        let after = "quiescence";
        let locks = state.tables.items(&self.settings.locks_table);
        let text = |item: &serde_dynamo::Item, name: &str| match item.get(name) {
            Some(serde_dynamo::AttributeValue::S(v)) => Some(v.clone()),
            _ => None,
        };
        // A push queued behind a deployment that needs attention waits for a person, not
        // for bluegreen: the lock is released by `unlock` or `retry`.
        let waits_for_a_person = |d: &Deployment| {
            d.status == Status::Queued
                && locks.iter().any(|lock| {
                    text(lock, "queued_id").as_deref() == Some(d.deployment_id.as_str())
                        && records.iter().any(|holder| {
                            text(lock, "deployment_id").as_deref()
                                == Some(holder.deployment_id.as_str())
                                && holder.status == Status::NeedsAttention
                        })
                })
        };
        for d in &records {
            if !d.status.is_terminal() && !waits_for_a_person(d) {
                self.violated(
                    after,
                    format!("{} is still {} at the end", d.deployment_id, d.status),
                );
            }
        }
        for (name, execution) in &state.workflow.executions {
            if execution.status == "RUNNING" {
                self.violated(after, format!("execution {name} still runs at the end"));
            }
        }
        for lock in &locks {
            let holder = match lock.get("deployment_id") {
                Some(serde_dynamo::AttributeValue::S(h)) => h.clone(),
                _ => continue,
            };
            let attention = records
                .iter()
                .any(|d| d.deployment_id == holder && d.status == Status::NeedsAttention);
            // A leased hold too: the run waited for the sweep to release expired leases.
            if !attention {
                self.violated(
                    after,
                    format!("the lock is held by {holder}, which does not need attention"),
                );
            }
        }
        self.migrations_tracked_to_an_outcome(state, &records);
        let attention: Vec<&Deployment> = records
            .iter()
            .filter(|d| d.status == Status::NeedsAttention)
            .collect();
        for rule in state.elb.rules.values() {
            if rule.fixed.is_some() && test_rule_owner(rule).is_none() {
                self.violated(
                    after,
                    format!("a maintenance rule is left at priority {}", rule.priority),
                );
            }
        }

        for service in state.ecs.services.values() {
            let name = &service.state.name;
            let owner = records.iter().find(|d| {
                d.preprod
                    .as_ref()
                    .is_some_and(|p| p.ephemeral_service.as_ref() == Some(name))
            });
            let is_preprod = name.starts_with(bluegreen::naming::CLONE_PREFIX);
            if is_preprod && owner.is_none_or(|d| d.status != Status::NeedsAttention) {
                self.violated(after, format!("pre-prod's service {name} is left"));
            }
        }
        for (id, instance) in &state.rds.instances {
            let owned_by_attention = attention
                .iter()
                .any(|d| d.clones.iter().any(|c| id.starts_with(&c.identifier)));
            if id.starts_with(bluegreen::naming::CLONE_PREFIX)
                && instance.status != "deleting"
                && !owned_by_attention
            {
                self.violated(after, format!("clone {id} is left ({})", instance.status));
            }
        }
        for config in self.configs.values() {
            let weights = production_weights(state, config);
            let live: Vec<Slot> = weights
                .iter()
                .filter(|(_, w)| *w > 0)
                .map(|(s, _)| *s)
                .collect();
            if live.len() != 1 {
                self.violated(
                    after,
                    format!(
                        "{}: production is split or served by none: {weights:?}",
                        config.name
                    ),
                );
                continue;
            }
            for (route, slot, weight) in routes_to_slots(state, config) {
                if slot != live[0] && weight > 0 {
                    self.violated(
                        after,
                        format!(
                            "{}: {route:?} still forwards {weight} to {slot}; production is on {}",
                            config.name, live[0]
                        ),
                    );
                }
            }
            let idle = live[0].other();
            let service = state
                .ecs
                .service(&config.cluster, &config.slots.get(idle).service);
            let warm = records.iter().any(|d| {
                d.service == config.name
                    && (d.status == Status::NeedsAttention || config.finish.keep_warm_seconds > 0)
            });
            // One service on ECS's engine: the idle side is its alternate group, which ECS
            // empties once it cleaned up (or rolled back).
            let idle_runs = if on_ecs(config) {
                registered(state, config, idle) > 0
            } else {
                service.is_some_and(|s| s.state.desired_count > 0)
            };
            if idle_runs && !warm {
                self.violated(
                    after,
                    format!("{}: the idle slot {idle} still runs tasks", config.name),
                );
            }
            let attention = records
                .iter()
                .any(|d| d.service == config.name && d.status == Status::NeedsAttention);
            if !attention {
                self.autoscaling_follows_production(state, config, live[0]);
            }
        }
    }
}

impl Invariants {
    /// Where production autoscaled, it still does on the slot that serves it, and the idle
    /// slot's scalable target can no longer bring it back (minimum 0).
    fn autoscaling_follows_production(&self, state: &State, config: &ServiceConfig, live: Slot) {
        if state.scaling.targets.is_empty() {
            return;
        }
        let after = "quiescence";
        let resource = |slot: Slot| {
            bluegreen::autoscaling::resource_id(&config.cluster, &config.slots.get(slot).service)
        };
        match state.scaling.targets.get(&resource(live)) {
            None => self.violated(
                after,
                format!("{}: production on {live} no longer autoscales", config.name),
            ),
            Some(t) if t.suspended.scale_in || t.suspended.scale_out || t.min < 1 => self.violated(
                after,
                format!(
                    "{}: production's autoscaling on {live} is left {t:?}",
                    config.name
                ),
            ),
            Some(_) => {}
        }
        if let Some(t) = state.scaling.targets.get(&resource(live.other()))
            && t.min > 0
        {
            self.violated(
                after,
                format!(
                    "{}: the idle slot {} keeps a minimum of {}: a policy brings it back",
                    config.name,
                    live.other(),
                    t.min
                ),
            );
        }
    }

    /// Every production or rollback migration task ECS ran is on its deployment's record, and
    /// no record still calls one `running` once everything has come to rest: what production's
    /// schema went through is known (issue 21).
    fn migrations_tracked_to_an_outcome(&self, state: &State, records: &[Deployment]) {
        let after = "quiescence";
        let holders: Vec<String> = state
            .tables
            .items(&self.settings.locks_table)
            .iter()
            .filter_map(|lock| match lock.get("deployment_id") {
                Some(serde_dynamo::AttributeValue::S(h)) => Some(h.clone()),
                _ => None,
            })
            .collect();
        for d in records {
            // A deployment that needs a person and still holds the lock has not been looked at
            // yet: `unlock` (or `retry`) settles its migrations before anything else deploys.
            if d.status == Status::NeedsAttention && holders.contains(&d.deployment_id) {
                continue;
            }
            for (task, tracked) in [
                (
                    bluegreen::db_plan::MigrationTask::Production,
                    d.production_migration.as_ref(),
                ),
                (
                    bluegreen::db_plan::MigrationTask::Rollback,
                    d.rollback_migration.as_ref(),
                ),
            ] {
                let kind = task.kind();
                // The current attempt's (a retry runs a failed rollback migration again under
                // its own startedBy; the failed attempts are on the record already).
                let started_by = bluegreen::migration::started_by(d, task);
                let ran = state
                    .ecs
                    .tasks
                    .values()
                    .any(|t| t.state.started_by == started_by);
                match tracked {
                    None if ran => self.violated(
                        after,
                        format!(
                            "{}: a {kind} task ran and is not on the record",
                            d.deployment_id
                        ),
                    ),
                    Some(t) if t.state == bluegreen::record::TaskState::Running => self.violated(
                        after,
                        format!(
                            "{}: its {kind} task {} is still recorded running at the end ({})",
                            d.deployment_id, t.task_arn, d.status
                        ),
                    ),
                    _ => {}
                }
            }
        }
    }
}

/// Every route on the load balancers that forwards to a slot of `config`, with the slot and
/// its weight — but the test listener and the deployments' test rules, which point at
/// pre-prod by design. None in DNS mode: there each slot's own load balancer forwards to it
/// and production is the records.
fn on_ecs(config: &ServiceConfig) -> bool {
    super::scenario::on_ecs(config)
}

/// A service other than the slots' that registers in `slot`'s group and runs tasks: pre-prod's
/// own on ECS's engine.
fn preprod_service_in(state: &State, config: &ServiceConfig, slot: Slot) -> Option<String> {
    let group = &config.slots.get(slot).target_group_arn;
    let slots = [&config.slots.blue.service, &config.slots.green.service];
    state
        .ecs
        .services
        .values()
        .find(|s| {
            &s.target_group == group && !slots.contains(&&s.state.name) && s.state.running_count > 0
        })
        .map(|s| s.state.name.clone())
}

/// Targets registered in `slot`'s target group.
fn registered(state: &State, config: &ServiceConfig, slot: Slot) -> usize {
    let group = &config.slots.get(slot).target_group_arn;
    state.elb.targets.get(group).map_or(0, Vec::len)
}

/// Whether what `slot`'s group receives reaches running tasks: its service runs tasks — and
/// on ECS's engine, where both slots are the one service, its revision's tasks are registered
/// in the slot's own group.
fn runs_tasks(state: &State, config: &ServiceConfig, slot: Slot) -> bool {
    let running = state
        .ecs
        .service(&config.cluster, &config.slots.get(slot).service)
        .is_some_and(|s| s.state.desired_count > 0 && s.state.running_count > 0);
    running && (!on_ecs(config) || registered(state, config, slot) > 0)
}

fn routes_to_slots(state: &State, config: &ServiceConfig) -> Vec<(Route, Slot, i64)> {
    let test_listener = match &config.traffic {
        Traffic::Listener {
            test_listener_arn, ..
        } => test_listener_arn.clone(),
        Traffic::Dns { .. } => return Vec::new(),
    };
    let listeners = state
        .elb
        .listeners
        .iter()
        .filter(|(arn, _)| Some(*arn) != test_listener.as_ref())
        .map(|(arn, l)| (Route::Listener(arn.clone()), l.forward.clone()));
    let rules = state
        .elb
        .rules
        .iter()
        .filter(|(_, r)| test_rule_owner(r).is_none())
        .map(|(arn, r)| (Route::Rule(arn.clone()), r.forward.clone()));
    let mut found = Vec::new();
    for (route, forward) in listeners.chain(rules) {
        for (group, weight) in weighted(forward.unwrap_or_default()) {
            for slot in Slot::ALL {
                if config.slots.get(slot).target_group_arn == group {
                    found.push((route.clone(), slot, weight));
                }
            }
        }
    }
    found
}

/// Each target group of a forward action with its weight (a lone group without one takes all
/// the traffic, as ELB forwards it).
fn weighted(groups: Vec<WeightedGroup>) -> impl Iterator<Item = (String, i64)> {
    let single = groups.len() == 1;
    groups.into_iter().map(move |g| {
        let weight = g
            .weight
            .map(i64::from)
            .unwrap_or(if single { 1 } else { 0 });
        (g.target_group_arn, weight)
    })
}

/// Each slot's share of production, as the service's routes forward it.
fn production_weights(state: &State, config: &ServiceConfig) -> Vec<(Slot, i64)> {
    let mut weights = vec![(Slot::Blue, 0), (Slot::Green, 0)];
    match &config.traffic {
        Traffic::Listener {
            production_listener_arn,
            production_rule_arn,
            ..
        } => {
            let route = match production_rule_arn {
                Some(rule) => Route::Rule(rule.clone()),
                None => Route::Listener(production_listener_arn.clone()),
            };
            let groups = state
                .elb
                .forward_of(&route)
                .ok()
                .flatten()
                .unwrap_or_default();
            for (group, weight) in weighted(groups) {
                for (slot, w) in weights.iter_mut() {
                    if config.slots.get(*slot).target_group_arn == group {
                        *w += weight;
                    }
                }
            }
        }
        Traffic::Dns {
            hosted_zone_id,
            record_name,
            ..
        } => {
            for record in state.dns.zones.get(hosted_zone_id).into_iter().flatten() {
                if !record
                    .name
                    .trim_end_matches('.')
                    .eq_ignore_ascii_case(record_name.trim_end_matches('.'))
                {
                    continue;
                }
                for (slot, w) in weights.iter_mut() {
                    if config.slots.get(*slot).set_identifier == record.set_identifier {
                        *w += record.weight.unwrap_or(0);
                    }
                }
            }
        }
    }
    weights
}

/// The deployment a test rule belongs to (`None`: not a test rule).
fn test_rule_owner(rule: &crate::memory::RuleModel) -> Option<&str> {
    let tag = |key: &str| {
        rule.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    (tag(bluegreen::naming::TAG_ROLE) == Some(bluegreen::test_rule::ROLE))
        .then(|| tag(bluegreen::naming::TAG_DEPLOYMENT))
        .flatten()
}

/// The `startedBy` of every attempt of a deployment's migration of `kind`: one, or — for the
/// rollback migration run again by retries — `rollback`, `rollback2`, … up to the current one,
/// so a still-running earlier attempt is checked too.
fn every_attempt(d: &Deployment, kind: bluegreen::db_plan::MigrationTask) -> Vec<String> {
    let id = &d.deployment_id;
    if kind != bluegreen::db_plan::MigrationTask::Rollback {
        return vec![bluegreen::migration::started_by(d, kind)];
    }
    let mut all = vec![bluegreen::naming::started_by(id, kind.kind())];
    for n in 2..=d.failed_rollback_migrations.len() + 1 {
        all.push(bluegreen::naming::started_by(
            id,
            &format!("{}{n}", kind.kind()),
        ));
    }
    all
}
