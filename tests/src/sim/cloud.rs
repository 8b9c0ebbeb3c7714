//! What AWS does on its own, played against the in-memory state: the ECS scheduler (rollouts
//! complete or fail, targets register healthy or not), the container runtime (tasks start,
//! run for a while and exit with the scenario's code, or stop when asked), RDS (clones become
//! available, deleted ones go), Route 53 (changes reach INSYNC), and the application itself
//! (a bad image fails its smoke checks through the test listener — in DNS mode, through its
//! slot's test URL — an alarming one fires the bake alarm once it serves production).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
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

/// How AWS's own work is played: how often it is looked at, how long the pieces not in the
/// scenario take, and (for the lead-time benchmark) a log of when each piece finished.
#[derive(Clone)]
pub struct Timing {
    /// How often AWS's own work is looked at (and so how late after its due time a piece
    /// shows as finished).
    pub tick: Duration,
    /// Seconds an RDS clone (or its deletion) takes.
    pub clone_seconds: (u64, u64),
    /// Seconds a Route 53 change takes to reach INSYNC.
    pub insync_seconds: (u64, u64),
    /// Seconds from a rollout settling to its targets passing the target group's health
    /// checks (`(0, 0)`: healthy as the rollout settles).
    pub targets_seconds: (u64, u64),
    /// Where each finished piece of work is written, when someone reads it.
    pub finished: Option<Arc<Mutex<Vec<Finished>>>>,
}

impl Timing {
    /// The simulator's: looked at every 5 s, targets healthy as their rollout settles.
    pub fn simulator() -> Timing {
        Timing {
            tick: Duration::from_secs(5),
            clone_seconds: (60, 600),
            insync_seconds: (5, 60),
            targets_seconds: (0, 0),
            finished: None,
        }
    }
}

/// One piece of AWS's work that finished: what, when AWS was first seen doing it, and when it
/// was due to finish (virtual seconds since the start).
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    /// What finished (`rollout settled`, `migration task stopped`, …).
    pub what: &'static str,
    /// When the work was first seen.
    pub began: f64,
    /// When it finished.
    pub at: f64,
}

/// When each pending piece of AWS's work completes (virtual milliseconds since the start).
#[derive(Default)]
struct Due(BTreeMap<String, (u64, u64)>);

impl Due {
    /// Whether `key` is due now; the first time it is asked, it is given a time `after`
    /// (a range of whole seconds) from now. Reached, it is written to `log` as `what`.
    fn reached(
        &mut self,
        key: &str,
        now: u64,
        rng: &Rng,
        after: (u64, u64),
        log: Option<(&Timing, &'static str)>,
    ) -> bool {
        let (began, due) = *self.0.entry(key.to_owned()).or_insert_with(|| {
            let seconds = after.0 + rng.below(after.1 - after.0 + 1);
            (now, now + seconds * 1000)
        });
        if now < due {
            return false;
        }
        self.0.remove(key);
        if let Some((timing, what)) = log
            && let Some(finished) = &timing.finished
        {
            finished.lock().expect("finished").push(Finished {
                what,
                began: began as f64 / 1000.0,
                at: due as f64 / 1000.0,
            });
        }
        true
    }
}

/// Where the events AWS puts on EventBridge go (the simulator's bus, [`super::executions`]).
pub type Bus = Arc<dyn Fn(serde_json::Value) + Send + Sync>;

/// Plays AWS until dropped; the events its work emits go to `bus`.
pub async fn run(
    aws: MemoryAws,
    rng: Rng,
    scenario: Scenario,
    names: Names,
    timing: Timing,
    bus: Bus,
) {
    let mut due = Due::default();
    loop {
        tokio::time::sleep(timing.tick).await;
        let now = super::clock::elapsed().as_millis() as u64;
        let events = aws.with(|state| {
            tasks(state, &mut due, now, &rng, &scenario, &timing);
            services(state, &mut due, now, &rng, &scenario, &timing);
            targets(state, &mut due, now, &rng, &timing);
            databases(state, &mut due, now, &rng, &timing);
            application(state, &scenario, &names);
            // Application Auto Scaling acts on its own: now and then its policies run.
            if scenario.autoscaled && rng.chance(100) {
                state.run_scaling_policies();
            }
            std::mem::take(&mut state.bus)
        });
        for event in events {
            bus(event);
        }
    }
}

/// Plays ECS's own blue/green until dropped (an ECS-engine world): every [`Timing::tick`] its
/// deployments move on as far as they can, and each hook invocation due runs bluegreen's hook
/// function as Lambda would — on its own task, with the run's faults (a crashed or timed-out
/// invocation is a function error: ECS rolls back) — its answer handed back to ECS. What ECS
/// changes on its own is checked against `invariants` as bluegreen's calls are. A revision
/// whose image the scenario fails to roll out never passes its health checks: ECS's circuit
/// breaker rolls its deployment back.
pub async fn ecs_blue_green(
    aws: MemoryAws,
    ctx: bluegreen::Context,
    scenario: Scenario,
    timing: Timing,
    trace: super::actors::Trace,
    invariants: Arc<super::invariants::Invariants>,
) {
    loop {
        tokio::time::sleep(timing.tick).await;
        let now = super::clock::elapsed().as_millis() as u64;
        let calls = aws.with(|s| {
            for i in 0..s.ecs.blue_green.len() {
                let td = s.ecs.blue_green[i].target.1.clone();
                let image = s
                    .ecs
                    .definition(&td)
                    .and_then(|d| d.containers.first().cloned());
                if image.is_some_and(|c| scenario.rollout_fails(&c.image)) {
                    s.ecs.blue_green[i].scale_up_fails = true;
                }
            }
            let calls = s.play_blue_green(now);
            invariants.check("ecs:blue-green", s);
            calls
        });
        for call in calls {
            let (aws, ctx, trace) = (aws.clone(), ctx.clone(), trace.clone());
            let invariants = invariants.clone();
            tokio::spawn(async move {
                let payload = call.payload.clone();
                let answer =
                    super::executions::invocation(&ctx, "EcsHook".into(), |ctx| async move {
                        bluegreen::steps::registry::invoke(
                            &ctx,
                            &bluegreen::steps::registry::ECS_HOOK,
                            payload,
                        )
                        .await
                    })
                    .await;
                let said = match &answer {
                    Ok(v) => v["hookStatus"].as_str().unwrap_or("?").to_owned(),
                    Err(e) => format!("error {e}"),
                };
                super::actors::note(&trace, format!("ECS hook at {}: {said}", call.stage));
                let now = super::clock::elapsed().as_millis() as u64;
                aws.with(|s| {
                    s.now_ms = s.now_ms.max(now);
                    s.hook_answered(&call, answer);
                    invariants.check("ecs:hook-answered", s);
                });
            });
        }
    }
}

/// An ECS event as EventBridge delivers it.
fn ecs_event(detail_type: &str, resource: String, detail: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "version": "0",
        "id": format!("sim-{}", super::clock::elapsed().as_micros()),
        "detail-type": detail_type,
        "source": "aws.ecs",
        "account": "123456789012",
        "time": super::clock::now().to_rfc3339(),
        "region": "eu-west-1",
        "resources": [resource],
        "detail": detail,
    })
}

/// ECS's "ECS Task State Change" for task `arn` as it is now.
fn task_changed(state: &mut State, arn: &str) {
    let task = &state.ecs.tasks[arn];
    let detail = serde_json::json!({
        "taskArn": arn,
        "clusterArn": format!("arn:aws:ecs:eu-west-1:123456789012:cluster/{}", task.cluster),
        "lastStatus": task.state.last_status,
        "desiredStatus": task.state.desired_status,
        "startedBy": task.state.started_by,
        "stopCode": task.state.stop_code,
    });
    let event = ecs_event(bluegreen::wakes::TASK_STATE_CHANGE, arn.to_owned(), detail);
    state.bus.push(event);
}

/// ECS's "ECS Deployment State Change" for service `cluster/name` (`key`).
fn deployment_changed(state: &mut State, key: &str, event_name: &str) {
    let arn = format!("arn:aws:ecs:eu-west-1:123456789012:service/{key}");
    let detail = serde_json::json!({
        "eventType": if event_name.ends_with("FAILED") { "ERROR" } else { "INFO" },
        "eventName": event_name,
        "deploymentId": format!("ecs-svc/{}", super::clock::elapsed().as_millis()),
    });
    let event = ecs_event(bluegreen::wakes::DEPLOYMENT_STATE_CHANGE, arn, detail);
    state.bus.push(event);
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

fn tasks(
    state: &mut State,
    due: &mut Due,
    now: u64,
    rng: &Rng,
    scenario: &Scenario,
    timing: &Timing,
) {
    let arns: Vec<String> = state.ecs.tasks.keys().cloned().collect();
    for arn in arns {
        let task = &state.ecs.tasks[&arn];
        if task.state.last_status == "STOPPED" {
            continue;
        }
        // ECS lists a task a little after it started.
        if !task.listed && due.reached(&format!("{arn}:listed"), now, rng, (0, 3), None) {
            state.ecs.tasks.get_mut(&arn).expect("task").listed = true;
        }
        let task = &state.ecs.tasks[&arn];
        if task.state.desired_status == "STOPPED" {
            if due.reached(&format!("{arn}:stop"), now, rng, (1, 30), None) {
                let task = state.ecs.tasks.get_mut(&arn).expect("task");
                task.state.last_status = "STOPPED".into();
                task.state.stop_code = Some("UserInitiated".into());
                for c in &mut task.state.containers {
                    c.exit_code = Some(143);
                }
                task_changed(state, &arn);
            }
            continue;
        }
        if task.state.last_status == "PROVISIONING" {
            let start = format!("{arn}:start");
            if due.reached(&start, now, rng, (1, 20), Some((timing, "task running"))) {
                state
                    .ecs
                    .tasks
                    .get_mut(&arn)
                    .expect("task")
                    .state
                    .last_status = "RUNNING".into();
                task_changed(state, &arn);
            }
            continue;
        }
        let exit = format!("{arn}:exit");
        let log = Some((timing, "migration task stopped"));
        if due.reached(&exit, now, rng, scenario.migration_seconds, log) {
            let code = exit_code(&state.ecs.tasks[&arn].state, scenario, state);
            let task = state.ecs.tasks.get_mut(&arn).expect("task");
            task.state.last_status = "STOPPED".into();
            task.state.desired_status = "STOPPED".into();
            task.state.stop_code = Some("EssentialContainerExited".into());
            task.state.stopped_reason = Some("Essential container in task exited".into());
            for c in &mut task.state.containers {
                c.exit_code = Some(code);
            }
            task_changed(state, &arn);
        }
    }
}

fn services(
    state: &mut State,
    due: &mut Due,
    now: u64,
    rng: &Rng,
    scenario: &Scenario,
    timing: &Timing,
) {
    let keys: Vec<String> = state.ecs.services.keys().cloned().collect();
    for key in keys {
        let (primary, desired, target_group) = {
            let model = &state.ecs.services[&key];
            // ECS's own blue/green moves in stages (`memory::ecs_blue_green`), not here.
            if model.state.setup.is_ecs_blue_green() {
                continue;
            }
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
            Some((timing, "rollout settled")),
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
            deployment_changed(state, &key, "SERVICE_DEPLOYMENT_FAILED");
            continue;
        }
        primary.rollout_state = Some("COMPLETED".into());
        primary.running_count = desired;
        primary.desired_count = desired;
        model.state.deployments.retain(|d| d.status == "PRIMARY");
        model.state.running_count = desired;
        deployment_changed(state, &key, "SERVICE_DEPLOYMENT_COMPLETED");
        let octet = 10 + key.len() % 200;
        // Registered, the new targets pass the target group's health checks a while later.
        let initial = timing.targets_seconds != (0, 0) && desired > 0;
        state.elb.targets.insert(
            target_group,
            (0..desired)
                .map(|i| TargetHealth {
                    id: format!("10.{octet}.0.{}", 10 + i),
                    state: if initial { "initial" } else { "healthy" }.into(),
                    reason: String::new(),
                })
                .collect(),
        );
    }
}

/// Targets registered `initial` pass their health checks after [`Timing::targets_seconds`];
/// `draining` ones (their service deleted) leave the group as long after.
fn targets(state: &mut State, due: &mut Due, now: u64, rng: &Rng, timing: &Timing) {
    for (group, targets) in &mut state.elb.targets {
        if targets.iter().any(|t| t.state == "draining") {
            let key = format!("{group}:drained:{}", targets.len());
            let log = Some((timing, "targets drained"));
            if due.reached(&key, now, rng, timing.targets_seconds, log) {
                targets.retain(|t| t.state != "draining");
            }
        }
        if !targets.iter().any(|t| t.state == "initial") {
            continue;
        }
        let key = format!("{group}:healthy");
        let log = Some((timing, "targets healthy"));
        if due.reached(&key, now, rng, timing.targets_seconds, log) {
            for target in targets.iter_mut() {
                target.state = "healthy".into();
            }
        }
    }
}

fn databases(state: &mut State, due: &mut Due, now: u64, rng: &Rng, timing: &Timing) {
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
    let clone = state.rds.instances.values().any(|i| i.status == "creating")
        || state.rds.clusters.values().any(|c| c.status == "creating");
    let what = if clone {
        "database available"
    } else {
        "database deleted"
    };
    let log = Some((timing, what));
    if creating && due.reached("rds", now, rng, timing.clone_seconds, log) {
        state.rds.settle();
    }
    let log = Some((timing, "DNS change INSYNC"));
    if state.dns.changes.values().any(|s| !s)
        && due.reached("route53", now, rng, timing.insync_seconds, log)
    {
        state.dns.sync_all();
    }
}

/// The pushed application as it behaves: what the test endpoints answer for the image
/// pre-prod runs, and whether the bake alarm fires for the image production runs.
fn application(state: &mut State, scenario: &Scenario, names: &Names) {
    let production = match &scenario.config.traffic {
        // ECS's rules route the smoke checks (`SmokeState::routed`): each group answers as the
        // release it runs.
        Traffic::Listener { .. } if super::scenario::on_ecs(&scenario.config) => {
            for group in [&names.tg_blue, &names.tg_green] {
                let broken = state
                    .image_in_group(group)
                    .is_some_and(|i| scenario.smoke_fails(&i));
                let answer = if broken {
                    Answer {
                        status: 500,
                        body: "broken build (simulated)".into(),
                    }
                } else {
                    Answer {
                        status: 200,
                        body: "ok".into(),
                    }
                };
                state.smoke.by_group.insert(group.clone(), answer);
            }
            image_behind(state, &production_route(&scenario.config, names))
        }
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
    state.image_in_group(&group.target_group_arn)
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
