//! The lead-time benchmark's world (`bench/lead-time`): one push deployed end to end by the
//! real steps and the committed definition on virtual time, over an in-memory AWS whose work
//! finishes at scheduled times — rollouts 60–180 s, migrations 10–120 s, targets healthy
//! 30–90 s after their rollout, clones 2–10 min, Route 53 changes 10–60 s — with every AWS
//! call taking 20–80 ms (DynamoDB 5–15 ms) and every Lambda task 50 ms of dispatch. Nothing fails, nobody
//! interferes, the approval is automatic: what is measured is how long bluegreen takes to
//! notice that AWS finished, and what the deployment costs.
//!
//! A wait's lag is the time from the last piece of AWS's work finishing during a step's wait
//! to the end of the check invocation that answered done (the state machine moves on then).
//! The seed scripts' waiters are computed from the same pieces: `aws ecs wait` looks every
//! 15 s at services and every 6 s at tasks, `aws elbv2 wait` every 15 s, `aws rds wait` and
//! `aws route53 wait` every 30 s, from the moment the work began.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bluegreen::config::{ApprovalPolicy, ServiceConfig};
use bluegreen::looks::Pacing;
use bluegreen::record::Deployment;
use bluegreen::step_table::Shape;
use bluegreen::traffic_mode;

use crate::memory::{self, Conductor, Fate, State};

use super::cloud::{self, Finished, Timing};
use super::executions::{Invocation, Ledger, SimExecutions};
use super::race::World;
use super::rng::Rng;
use super::scenario::{Knobs, Scenario};
use super::{actors, clock};

/// Step Functions' dispatch and Lambda's invoke of one task.
const INVOKE_OVERHEAD: Duration = Duration::from_millis(50);
/// The functions' memory (the stack's `MemorySize`).
pub const MEMORY_GB: f64 = 0.25;
/// The longest one deployment may take in virtual time before the run gives up.
const GIVE_UP: Duration = Duration::from_secs(4 * 3600);

/// Which world a deployment runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BenchWorld {
    /// Listener mode, pre-prod on its own clone, the production migration after approval:
    /// every ECS, ELB and RDS wait.
    ListenerIsolated,
    /// Route 53 weighted records, the migration before launch: the DNS waits.
    DnsShared,
}

impl BenchWorld {
    /// Both worlds.
    pub const ALL: [BenchWorld; 2] = [BenchWorld::ListenerIsolated, BenchWorld::DnsShared];

    /// Its name in the table.
    pub fn name(self) -> &'static str {
        match self {
            BenchWorld::ListenerIsolated => "listener, isolated database",
            BenchWorld::DnsShared => "DNS, shared database",
        }
    }

    fn config(self, names: &crate::Names) -> ServiceConfig {
        let mut config = crate::service_config(names);
        config.health.test_url = Some(names.test_url.clone());
        match self {
            BenchWorld::ListenerIsolated => World::Isolated.configure(&mut config, names),
            BenchWorld::DnsShared => {
                World::Shared.configure(&mut config, names);
                super::scenario::dns_mode(&mut config, names);
            }
        }
        config.approval.policy = ApprovalPolicy::Auto;
        config
    }
}

/// One wait of a deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct Wait {
    /// The step that waited (`migrate`, `launch_preprod`, …).
    pub step: String,
    /// What it waited for (the last piece of AWS's work that finished during the wait).
    pub what: &'static str,
    /// How long that piece took.
    pub work: f64,
    /// From the piece finishing to the step moving on.
    pub lag: f64,
    /// The lag of a seed script's waiter on the same piece.
    pub waiter_lag: f64,
}

/// One measured deployment.
#[derive(Debug, Clone)]
pub struct Deployed {
    /// How it ended (`succeeded`).
    pub status: String,
    /// Its waits, in order.
    pub waits: Vec<Wait>,
    /// From the push's delivery to the deployment's end, seconds.
    pub duration: f64,
    /// Seconds in which AWS worked or the bake ran (the union of those intervals).
    pub world_work: f64,
    /// `duration - world_work`: bluegreen's own time.
    pub overhead: f64,
    /// States the deployment execution entered.
    pub transitions: u64,
    /// Lambda invocations.
    pub invocations: u64,
    /// Lambda GB-seconds (duration × [`MEMORY_GB`]).
    pub gb_seconds: f64,
    /// What production sees at the end ([`production_view`]): runs that differ only in
    /// timing end with the same.
    pub production: String,
}

/// A conductor that only waits, nothing fails: a DynamoDB call takes 5–15 ms (its
/// documented single-digit latency, plus the network), any other AWS call 20–80 ms.
struct Latency(Rng);

#[async_trait::async_trait]
impl Conductor for Latency {
    async fn before(&self, operation: &'static str) -> Fate {
        let millis = if operation.starts_with("dynamodb:") {
            5 + self.0.below(11)
        } else {
            20 + self.0.below(61)
        };
        tokio::time::sleep(Duration::from_millis(millis)).await;
        Fate::Answer
    }

    fn applied(&self, _operation: &'static str, _state: &State) {}
}

/// How the deployment's checks notice AWS finishing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    /// Whether a check looks again within its invocation.
    pub pacing: Pacing,
    /// What becomes of ECS's events.
    pub events: Events,
}

/// What becomes of ECS's events (task and deployment state changes) in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Events {
    /// bluegreen does not wait for them (`BLUEGREEN_WAKE_ON_EVENTS=off`).
    Off,
    /// Each is delivered to the wake function once, 0.2–1.5 s after the change.
    Delivered,
    /// Every one is lost: each wait ends by its slow path.
    Dropped,
    /// Each is delivered twice, and the event before it again 2 s later (after both copies:
    /// out of order).
    Doubled,
}

impl Mode {
    /// One look per check on the state machine's backoff, no events (the old behaviour).
    pub const BEFORE: Mode = Mode {
        pacing: Pacing::Once,
        events: Events::Off,
    };
    /// Checks looking every 1–2 s within an invocation, no events.
    pub const LOOKS: Mode = Mode {
        pacing: Pacing::Paced,
        events: Events::Off,
    };
    /// Paced looks, and ECS's two waits ended by their events (the stack's default).
    pub const AFTER: Mode = Mode {
        pacing: Pacing::Paced,
        events: Events::Delivered,
    };
}

/// Deploys one push in `world` in `mode`. The same seed gives the same AWS schedule in every
/// mode (AWS's work draws from its own generator).
pub fn deploy(seed: u64, world: BenchWorld, mode: Mode) -> Deployed {
    super::block_on(measure(seed, world, mode))
}

/// The bus `mode` makes of EventBridge's delivery `deliver`.
fn bus(mode: Mode, deliver: cloud::Bus) -> cloud::Bus {
    let previous: Mutex<Option<serde_json::Value>> = Mutex::new(None);
    Arc::new(move |event: serde_json::Value| match mode.events {
        Events::Off | Events::Dropped => {}
        Events::Delivered => deliver(event),
        Events::Doubled => {
            deliver(event.clone());
            deliver(event.clone());
            if let Some(before) = previous.lock().expect("previous").replace(event) {
                // Delivery takes at most 1.5 s: 2 s later, the older event comes last.
                let deliver = deliver.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    deliver(before);
                });
            }
        }
    })
}

fn scenario(seed: u64, world: BenchWorld, names: &crate::Names) -> Scenario {
    let mut scenario = Scenario::generate(&Rng::new(seed), Knobs::QUIET, names);
    scenario.config = world.config(names);
    scenario.pushes.truncate(1);
    for push in &mut scenario.pushes {
        (push.pushed_after, push.delivered_after, push.duplicated) = (0, 0, false);
    }
    scenario.migration_seconds = (10, 120);
    scenario.rollout_seconds = (60, 180);
    scenario.autoscaled = false;
    scenario
}

async fn measure(seed: u64, world: BenchWorld, mode: Mode) -> Deployed {
    clock::start();
    let names = memory::world::made_up_names();
    let scenario = scenario(seed, world, &names);
    let finished = Arc::new(Mutex::new(Vec::new()));
    let timing = Timing {
        tick: Duration::from_millis(100),
        clone_seconds: (120, 600),
        insync_seconds: (10, 60),
        targets_seconds: (30, 90),
        finished: Some(finished.clone()),
    };
    // bluegreen's calls draw their latencies from a generator of their own, so the paced and
    // the unpaced run meet the same AWS.
    let calls = Rng::new(seed ^ 0x5eed_ca11);
    let conductor = Arc::new(Latency(calls.clone()));
    let (aws, mut ctx) = memory::world::build(&names, conductor, Arc::new(clock::now)).await;
    ctx.settings.pacing = mode.pacing;
    ctx.settings.wake_on_events = mode.events != Events::Off;
    bluegreen::config_store::ConfigStore::new(&ctx)
        .put(&scenario.config)
        .await
        .expect("the bench's config is valid");
    let ledger = Arc::new(Ledger {
        invoke_overhead: INVOKE_OVERHEAD,
        ..Ledger::default()
    });
    let trace: actors::Trace = Arc::new(Mutex::new(Vec::new()));
    let executions = Arc::new(
        SimExecutions::new(ctx.clone(), aws.clone(), calls, trace.clone(), false)
            .with_ledger(ledger.clone()),
    );
    aws.with(|s| s.workflow.starter = Some(executions.clone()));
    let world_rng = Rng::new(seed);
    let actors = [
        tokio::spawn(cloud::run(
            aws.clone(),
            world_rng,
            scenario.clone(),
            names.clone(),
            timing,
            bus(mode, executions.bus()),
        )),
        tokio::spawn(actors::pushes(scenario.clone(), executions, trace)),
    ];
    let deployment = ended(&aws, &ctx.settings.deployments_table).await;
    for actor in actors {
        actor.abort();
    }
    let production = aws.with(|s| production_view(s));
    let invocations = ledger.invocations.lock().expect("ledger").clone();
    let transitions = *ledger.transitions.lock().expect("ledger");
    let finished = finished.lock().expect("finished").clone();
    Deployed {
        production,
        ..account(
            &deployment,
            &scenario.config,
            &invocations,
            &finished,
            transitions,
        )
    }
}

/// What production sees at the end, without times: each service's revision and counts, the
/// tasks started (by whom, how they ended), where every listener and rule forwards, the DNS
/// records' weights, the clones left.
fn production_view(state: &State) -> String {
    let mut lines = Vec::new();
    for (key, service) in &state.ecs.services {
        let s = &service.state;
        lines.push(format!(
            "service {key}: {:?} desired {} running {}",
            s.task_definition, s.desired_count, s.running_count
        ));
    }
    for task in state.ecs.tasks.values() {
        let exits: Vec<Option<i32>> = task.state.containers.iter().map(|c| c.exit_code).collect();
        lines.push(format!(
            "task by {}: {} {:?}",
            task.state.started_by, task.state.last_status, exits
        ));
    }
    for (arn, listener) in &state.elb.listeners {
        lines.push(format!("listener {arn}: {:?}", listener.forward));
    }
    for (arn, rule) in &state.elb.rules {
        lines.push(format!("rule {arn}: {:?} {:?}", rule.forward, rule.fixed));
    }
    lines.push(format!("dns {:?}", state.dns.zones));
    lines.push(format!(
        "rds instances {:?}",
        state.rds.instances.keys().collect::<Vec<_>>()
    ));
    lines.push(format!(
        "rds clusters {:?}",
        state.rds.clusters.keys().collect::<Vec<_>>()
    ));
    lines.join("\n")
}

/// The deployment once it has ended (read from the table every virtual second, without a
/// call: the bench's looks must not change bluegreen's latencies).
async fn ended(aws: &memory::MemoryAws, table: &str) -> Deployment {
    let mut waited = Duration::ZERO;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        waited += Duration::from_secs(1);
        let found: Option<Deployment> = aws.with(|s| {
            s.tables
                .items(table)
                .into_iter()
                .find_map(|item| serde_dynamo::from_item(item).ok())
        });
        if let Some(d) = found.filter(|d| d.status.is_terminal()) {
            // Its execution's last states (the ending's answer) come a moment later.
            tokio::time::sleep(Duration::from_secs(5)).await;
            return d;
        }
        assert!(waited < GIVE_UP, "the bench's deployment did not end");
    }
}

/// Seconds since the start at `at`.
fn since_start(at: chrono::DateTime<chrono::Utc>) -> f64 {
    let epoch: chrono::DateTime<chrono::Utc> = clock::EPOCH.parse().expect("epoch");
    (at - epoch).num_milliseconds() as f64 / 1000.0
}

fn account(
    deployment: &Deployment,
    config: &ServiceConfig,
    invocations: &[Invocation],
    finished: &[Finished],
    transitions: u64,
) -> Deployed {
    // As the bake step counts it: at least as long as resolvers may keep the old answers.
    let bake_seconds = traffic_mode::of(config)
        .cached_answers()
        .map_or(config.bake.seconds, |a| {
            config.bake.seconds.max(a.switch_ttl_seconds)
        }) as f64;
    let waits = waits(invocations, finished, bake_seconds);
    let duration = deployment
        .timeline
        .last()
        .map_or(0.0, |e| since_start(e.at));
    let mut intervals: Vec<(f64, f64)> = finished
        .iter()
        .filter(|f| f.at <= duration)
        .map(|f| (f.began, f.at))
        .collect();
    if let Some(bake) = invocations.iter().find(|i| i.state == "Bake") {
        intervals.push((bake.ended, bake.ended + bake_seconds));
    }
    // DNS mode: the switch waits until resolvers have dropped answers cached with the TTL
    // from before it was lowered — the clients' time, not bluegreen's.
    if let Some(ttl) = &deployment.dns_ttl {
        let lowered = since_start(ttl.lowered_at);
        intervals.push((lowered, lowered + ttl.previous as f64));
    }
    let world_work = union_length(intervals);
    let gb_seconds = invocations
        .iter()
        .map(|i| (i.ended - i.began) * MEMORY_GB)
        .sum();
    Deployed {
        status: deployment.status.to_string(),
        waits,
        duration,
        world_work,
        overhead: duration - world_work,
        transitions,
        invocations: invocations.len() as u64,
        gb_seconds,
        production: String::new(),
    }
}

/// Each polling step's wait: from its start's end to the check that answered done, and the
/// last piece of AWS's work that finished in between (the bake's end for the bake).
fn waits(invocations: &[Invocation], finished: &[Finished], bake_seconds: f64) -> Vec<Wait> {
    let mut waits = Vec::new();
    for start in invocations.iter() {
        let Some(step) = bluegreen::steps::registry::by_state(&start.state)
            .filter(|s| s.shape == Shape::Polling && s.state == start.state)
        else {
            continue;
        };
        let check = format!("{}Check", start.state);
        let Some(done) = invocations
            .iter()
            .find(|i| i.state == check && i.done && i.began >= start.ended)
        else {
            continue;
        };
        let step = step.name.to_owned();
        if start.state == "Bake" {
            let over = start.ended + bake_seconds;
            waits.push(Wait {
                step,
                what: "bake time over",
                work: bake_seconds,
                lag: done.ended - over,
                waiter_lag: 0.0,
            });
            continue;
        }
        let awaited = awaited(&step);
        let piece = finished
            .iter()
            .filter(|f| f.at > start.began && f.at <= done.ended && awaited.contains(&f.what))
            .max_by(|a, b| a.at.total_cmp(&b.at));
        if let Some(piece) = piece {
            let work = piece.at - piece.began;
            waits.push(Wait {
                step,
                what: piece.what,
                work,
                lag: done.ended - piece.at,
                waiter_lag: waiter_lag(piece.what, work),
            });
        }
    }
    waits
}

/// What AWS does that `step` waits for. (A piece that finished before the step began was not
/// waited for: the step's first look saw it done.)
fn awaited(step: &str) -> &'static [&'static str] {
    match step {
        "sync_db" => &["database available"],
        "migrate" => &["migration task stopped"],
        "launch_preprod" => &["rollout settled"],
        "health_check" => &["targets healthy"],
        "promote" => &[
            "migration task stopped",
            "rollout settled",
            "targets healthy",
        ],
        "switch" => &["rollout settled", "targets healthy", "DNS change INSYNC"],
        _ => &[],
    }
}

/// How late a seed script's `aws … wait` notices a piece of `work` seconds that it began
/// looking at when the work began.
pub fn waiter_lag(what: &str, work: f64) -> f64 {
    let every = match what {
        "migration task stopped" => 6.0,
        "rollout settled" | "targets healthy" => 15.0,
        _ => 30.0,
    };
    (work / every).ceil() * every - work
}

/// The length of the union of `intervals`.
fn union_length(mut intervals: Vec<(f64, f64)>) -> f64 {
    intervals.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut total = 0.0;
    let mut current: Option<(f64, f64)> = None;
    for (from, to) in intervals {
        current = match current {
            Some((a, b)) if from <= b => Some((a, b.max(to))),
            Some((a, b)) => {
                total += b - a;
                Some((from, to))
            }
            None => Some((from, to)),
        };
    }
    total + current.map_or(0.0, |(a, b)| b - a)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The benchmark's table keeps a row for every wait its worlds have: a change that made
    /// a wait invisible to it (a renamed state, a piece no longer logged) fails here, not as a
    /// quietly shorter table.
    #[test]
    fn each_world_deploys_and_every_wait_is_measured() {
        let expected = [
            (
                BenchWorld::ListenerIsolated,
                vec![
                    "sync_db",
                    "migrate",
                    "launch_preprod",
                    "health_check",
                    "promote",
                    "bake",
                ],
            ),
            (
                BenchWorld::DnsShared,
                vec![
                    "migrate",
                    "launch_preprod",
                    "health_check",
                    "switch",
                    "bake",
                ],
            ),
        ];
        for (world, steps) in expected {
            for mode in [Mode::BEFORE, Mode::LOOKS, Mode::AFTER] {
                let run = deploy(0, world, mode);
                assert_eq!(run.status, "succeeded", "{world:?} {mode:?}");
                let waited: Vec<&str> = run.waits.iter().map(|w| w.step.as_str()).collect();
                match mode.pacing {
                    Pacing::Paced => assert_eq!(waited, steps, "{world:?} {mode:?}"),
                    // Noticed late, a piece may have finished before the next step began
                    // (targets healthy during the launch's last wait): that step waited for
                    // nothing.
                    Pacing::Once => assert!(
                        waited.iter().all(|w| steps.contains(w)),
                        "{world:?}: {waited:?}"
                    ),
                }
                assert!(run.overhead > 0.0 && run.world_work > 0.0, "{run:?}");
            }
        }
    }

    #[test]
    fn overlapping_work_is_counted_once() {
        assert_eq!(
            union_length(vec![(0.0, 10.0), (5.0, 12.0), (20.0, 25.0)]),
            17.0
        );
    }

    #[test]
    fn a_waiter_notices_at_its_next_look() {
        assert_eq!(waiter_lag("migration task stopped", 13.0), 5.0);
        assert_eq!(waiter_lag("rollout settled", 90.0), 0.0);
        assert_eq!(waiter_lag("rollout settled", 91.0), 14.0);
    }
}
