//! What AWS does on its own, played against the in-memory state: the ECS scheduler (rollouts
//! complete or fail, targets register healthy or not), the container runtime (tasks start,
//! run for a while and exit with the scenario's code, or stop when asked), RDS (clones become
//! available, deleted ones go), Route 53 (changes reach INSYNC), and the application itself
//! (a bad image fails its smoke checks through the test listener — in DNS mode, through its
//! slot's test URL — an alarming one fires the bake alarm once it serves production).

use std::collections::BTreeMap;
use std::time::Duration;

use bluegreen::naming::TAG_ROLE;
use bluegreen::ports::compute::TaskState;
use bluegreen::ports::load_balancing::{Route, TargetHealth};
use bluegreen::ports::smoke::Answer;

use bluegreen::Slot;
use bluegreen::config::Traffic;

use crate::Names;
use crate::memory::{MemoryAws, ServiceModel, State};

use super::rng::Rng;
use super::scenario::{Scenario, slot_test_url};

/// How often AWS's own work is looked at.
const TICK: Duration = Duration::from_secs(5);

/// When each pending piece of AWS's work completes (virtual seconds since the start).
#[derive(Default)]
struct Due(BTreeMap<String, u64>);

impl Due {
    /// Whether `key` is due now; the first time it is asked, it is given a time `after`
    /// (a range of seconds) from now.
    fn reached(&mut self, key: &str, now: u64, rng: &Rng, after: (u64, u64)) -> bool {
        let due = *self
            .0
            .entry(key.to_owned())
            .or_insert_with(|| now + after.0 + rng.below(after.1 - after.0 + 1));
        if now >= due {
            self.0.remove(key);
            true
        } else {
            false
        }
    }
}

/// Plays AWS until dropped.
pub async fn run(aws: MemoryAws, rng: Rng, scenario: Scenario, names: Names) {
    let mut due = Due::default();
    loop {
        tokio::time::sleep(TICK).await;
        let now = super::clock::elapsed().as_secs();
        aws.with(|state| {
            tasks(state, &mut due, now, &rng, &scenario);
            services(state, &mut due, now, &rng, &scenario);
            databases(state, &mut due, now, &rng);
            application(state, &scenario, &names);
            // Application Auto Scaling acts on its own: now and then its policies run.
            if scenario.autoscaled && rng.chance(100) {
                state.run_scaling_policies();
            }
        });
    }
}

/// The exit code a migration task started with `started_by` ends with.
fn exit_code(task: &TaskState, scenario: &Scenario, state: &State) -> i32 {
    let kind = task.started_by.rsplit('-').next().unwrap_or_default();
    // A rollback migration run again after a retry (`rollback2`, …) is a rollback migration.
    let kind = kind.trim_end_matches(|c: char| c.is_ascii_digit());
    let image = state
        .ecs
        .definition(&task.task_definition)
        .and_then(|d| d.containers.first().map(|c| c.image.clone()))
        .unwrap_or_default();
    scenario.migration_exit(kind, &image)
}

fn tasks(state: &mut State, due: &mut Due, now: u64, rng: &Rng, scenario: &Scenario) {
    let arns: Vec<String> = state.ecs.tasks.keys().cloned().collect();
    for arn in arns {
        let task = &state.ecs.tasks[&arn];
        if task.state.last_status == "STOPPED" {
            continue;
        }
        // ECS lists a task a little after it started.
        if !task.listed && due.reached(&format!("{arn}:listed"), now, rng, (0, 3)) {
            state.ecs.tasks.get_mut(&arn).expect("task").listed = true;
        }
        let task = &state.ecs.tasks[&arn];
        if task.state.desired_status == "STOPPED" {
            if due.reached(&format!("{arn}:stop"), now, rng, (1, 30)) {
                let task = state.ecs.tasks.get_mut(&arn).expect("task");
                task.state.last_status = "STOPPED".into();
                task.state.stop_code = Some("UserInitiated".into());
                for c in &mut task.state.containers {
                    c.exit_code = Some(143);
                }
            }
            continue;
        }
        if task.state.last_status == "PROVISIONING" {
            if due.reached(&format!("{arn}:start"), now, rng, (1, 20)) {
                state
                    .ecs
                    .tasks
                    .get_mut(&arn)
                    .expect("task")
                    .state
                    .last_status = "RUNNING".into();
            }
            continue;
        }
        if due.reached(&format!("{arn}:exit"), now, rng, scenario.migration_seconds) {
            let code = exit_code(&state.ecs.tasks[&arn].state, scenario, state);
            let task = state.ecs.tasks.get_mut(&arn).expect("task");
            task.state.last_status = "STOPPED".into();
            task.state.desired_status = "STOPPED".into();
            task.state.stop_code = Some("EssentialContainerExited".into());
            task.state.stopped_reason = Some("Essential container in task exited".into());
            for c in &mut task.state.containers {
                c.exit_code = Some(code);
            }
        }
    }
}

fn services(state: &mut State, due: &mut Due, now: u64, rng: &Rng, scenario: &Scenario) {
    let keys: Vec<String> = state.ecs.services.keys().cloned().collect();
    for key in keys {
        let (primary, desired, target_group) = {
            let model = &state.ecs.services[&key];
            let Some(primary) = model.state.primary().cloned() else {
                continue;
            };
            (
                primary,
                model.state.desired_count,
                model.target_group.clone(),
            )
        };
        if primary.rollout_state.as_deref() != Some("IN_PROGRESS") {
            continue;
        }
        let td = primary.task_definition.clone().unwrap_or_default();
        if !due.reached(
            &format!("{key}:{td}:{desired}"),
            now,
            rng,
            scenario.rollout_seconds,
        ) {
            continue;
        }
        let image = state
            .ecs
            .definition(&td)
            .and_then(|d| d.containers.first().map(|c| c.image.clone()))
            .unwrap_or_default();
        let fails = desired > 0 && scenario.rollout_fails(&image);
        let model = state.ecs.services.get_mut(&key).expect("service");
        let primary = model
            .state
            .deployments
            .iter_mut()
            .find(|d| d.status == "PRIMARY")
            .expect("primary");
        if fails {
            primary.rollout_state = Some("FAILED".into());
            primary.rollout_reason = Some("tasks failed to start (simulated)".into());
            continue;
        }
        primary.rollout_state = Some("COMPLETED".into());
        primary.running_count = desired;
        primary.desired_count = desired;
        model.state.deployments.retain(|d| d.status == "PRIMARY");
        model.state.running_count = desired;
        let octet = 10 + key.len() % 200;
        state.elb.targets.insert(
            target_group,
            (0..desired)
                .map(|i| TargetHealth {
                    id: format!("10.{octet}.0.{}", 10 + i),
                    state: "healthy".into(),
                    reason: String::new(),
                })
                .collect(),
        );
    }
}

fn databases(state: &mut State, due: &mut Due, now: u64, rng: &Rng) {
    let creating = state
        .rds
        .instances
        .values()
        .any(|i| i.status == "creating" || i.status == "deleting")
        || state
            .rds
            .clusters
            .values()
            .any(|c| c.status == "creating" || c.status == "deleting");
    if creating && due.reached("rds", now, rng, (60, 600)) {
        state.rds.settle();
    }
    if state.dns.changes.values().any(|s| !s) && due.reached("route53", now, rng, (5, 60)) {
        state.dns.sync_all();
    }
}

/// The pushed application as it behaves: what the test endpoints answer for the image
/// pre-prod runs, and whether the bake alarm fires for the image production runs.
fn application(state: &mut State, scenario: &Scenario, names: &Names) {
    let production = match &scenario.config.traffic {
        Traffic::Listener { .. } => {
            let production = production_route(&scenario.config, names);
            let test = image_behind(state, &test_route(state, names, &production));
            answer_smoke(state, &names.test_url, test, scenario);
            image_behind(state, &production)
        }
        // Each slot is checked through its own URL; production is the slot the weighted
        // records give the most weight.
        Traffic::Dns {
            hosted_zone_id,
            record_name,
            ..
        } => {
            for slot in Slot::ALL {
                let image = image_of_slot(state, scenario, slot);
                answer_smoke(state, &slot_test_url(names, slot), image, scenario);
            }
            let heaviest = state
                .dns
                .zones
                .get(hosted_zone_id)
                .into_iter()
                .flatten()
                .filter(|r| r.name.eq_ignore_ascii_case(record_name))
                .max_by_key(|r| r.weight.unwrap_or(0))
                .and_then(|r| r.set_identifier.clone());
            Slot::ALL
                .into_iter()
                .find(|slot| scenario.config.slots.get(*slot).set_identifier == heaviest)
                .and_then(|slot| image_of_slot(state, scenario, slot))
        }
    };
    let firing = production.is_some_and(|image| scenario.alarms(&image));
    state.alarms.alarms.insert("shop-5xx".into(), firing);
}

/// A failing answer at `url` while `image` is one that fails its smoke checks.
fn answer_smoke(state: &mut State, url: &str, image: Option<String>, scenario: &Scenario) {
    match image.filter(|image| scenario.smoke_fails(image)) {
        Some(_) => {
            state.smoke.answers.insert(
                url.to_owned(),
                Ok(Answer {
                    status: 500,
                    body: "broken build (simulated)".into(),
                }),
            );
        }
        None => {
            state.smoke.answers.remove(url);
        }
    }
}

/// Where production's requests land: its host rule in rule mode, else the listener's default.
fn production_route(config: &bluegreen::config::ServiceConfig, names: &Names) -> Route {
    match &config.traffic {
        Traffic::Listener {
            production_rule_arn: Some(rule),
            ..
        } => Route::Rule(rule.clone()),
        _ => Route::Listener(names.production_listener.clone()),
    }
}

/// Where a smoke check through the test route lands. Through a test rule it reaches pre-prod
/// only while the rule is there; without it the request (header and all) reaches
/// `production`, as ALB would route it.
fn test_route(state: &State, names: &Names, production: &Route) -> Route {
    if state.elb.listeners.contains_key(&names.test_listener) {
        return Route::Listener(names.test_listener.clone());
    }
    state
        .elb
        .rules
        .iter()
        .find(|(_, r)| {
            r.listener == names.production_listener
                && r.forward.is_some()
                && r.tags
                    .iter()
                    .any(|(k, v)| k == TAG_ROLE && v == bluegreen::test_rule::ROLE)
        })
        .map_or_else(|| production.clone(), |(arn, _)| Route::Rule(arn.clone()))
}

/// The image the service behind `route`'s heaviest target group runs.
fn image_behind(state: &State, route: &Route) -> Option<String> {
    let groups = state.elb.forward_of(route).ok().flatten()?;
    let group = groups.iter().max_by_key(|g| g.weight.unwrap_or(1))?;
    let service = state
        .ecs
        .services
        .values()
        .find(|s| s.target_group == group.target_group_arn)?;
    image_of(state, service)
}

/// The image `slot`'s service runs.
fn image_of_slot(state: &State, scenario: &Scenario, slot: Slot) -> Option<String> {
    let name = &scenario.config.slots.get(slot).service;
    let service = state
        .ecs
        .services
        .values()
        .find(|s| &s.state.name == name)?;
    image_of(state, service)
}

fn image_of(state: &State, service: &ServiceModel) -> Option<String> {
    let td = service.state.task_definition.as_deref()?;
    state
        .ecs
        .definition(td)?
        .containers
        .first()
        .map(|c| c.image.clone())
}
