//! The deterministic simulator: one thread, a virtual clock, one seeded PRNG, the real steps
//! and the committed state machine definitions over the in-memory AWS.
//!
//! A seed makes a world ([`scenario`]): the service's database strategy and approval policy,
//! pushes that arrive late, out of order and twice, images that fail their rollout, smoke
//! checks, migrations or alarms, AWS calls that are throttled, lose their answers or crash the
//! invocation that made them, status-change events that are late, doubled or lost, and people
//! who approve, reject, abort, retry, unlock and roll back at random moments. Every AWS call
//! waits a random virtual latency, so concurrent executions, operators and sweeps interleave
//! differently for every seed. After every call that changed AWS the invariants are checked
//! ([`invariants`]); at the end, the quiescent ones.
//!
//! A run is a function of its seed and [`Knobs`]: `scripts/simulate --seed S` replays it, and a
//! failing seed is shrunk by switching kinds of trouble off while it still fails.

mod actors;
pub mod clock;
mod cloud;
mod conductor;
mod executions;
pub mod invariants;
pub mod lead_time;
pub mod neighbours;
pub mod race;
mod rng;
pub mod scenario;

use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use invariants::Violation;
pub use scenario::Knobs;

use crate::memory::{self, MemoryAws};

/// The longest a run's phase goes on past the last push: every execution, approval window and
/// sweep has ended by then in a correct run.
const SETTLE: Duration = Duration::from_secs(24 * 3600);
/// How often a run looks whether everything has come to rest.
const LOOK: Duration = Duration::from_secs(600);

/// What one run found.
#[derive(Debug, Clone)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// The knobs it ran with.
    pub knobs: Knobs,
    /// Broken invariants, in the order seen.
    pub violations: Vec<Violation>,
    /// AWS calls made.
    pub calls: u64,
    /// The deployments' end statuses, `(id, status)`.
    pub deployments: Vec<(String, String)>,
    /// What happened (faults, operators' actions, executions' ends), in order.
    pub trace: Vec<String>,
    /// Calls that may change AWS made by step invocations ([`race`] counts cases by them).
    pub step_changes: u64,
    /// In a [`race`] case: the paused invocation and call its action ran before.
    pub raced_at: Option<String>,
}

impl Report {
    /// Whether every invariant held.
    pub fn safe(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Runs seed `seed` with `knobs` to its end.
pub fn run(seed: u64, knobs: Knobs) -> Report {
    run_traced(seed, knobs, false)
}

/// [`run`], and with `trace_calls` every AWS call that changed something is in the trace with
/// the invocation that made it (`scripts/simulate --seed S --calls`).
pub fn run_traced(seed: u64, knobs: Knobs, trace_calls: bool) -> Report {
    block_on(simulate(seed, knobs, trace_calls, None, &|_, _| {})).0
}

/// Runs seed `seed` with `knobs`, its world changed by `script` first (the config, the pushes,
/// the decisions): a scenario a test chooses, with the simulator's AWS, definitions and
/// invariants. The report, and AWS as the run left it.
pub fn run_scripted(
    seed: u64,
    knobs: Knobs,
    script: &dyn Fn(&mut scenario::Scenario, &crate::Names),
) -> (Report, MemoryAws) {
    block_on(simulate(seed, knobs, false, None, script))
}

/// The seed every [`race`] case runs with (its latencies; nothing else is random there).
const RACE_SEED: u64 = 1;

/// Runs one case of the interleaving campaign ([`race`]): one push, no faults, no bad images,
/// an approver who approves; `case.action` runs before the `case.at`-th changing step call.
/// `at = 0` runs the deployment unraced (its [`Report::step_changes`] counts the cases).
pub fn race_case(case: race::Case, trace_calls: bool) -> Report {
    block_on(simulate(
        RACE_SEED,
        Knobs::QUIET,
        trace_calls,
        Some(case),
        &|_, _| {},
    ))
    .0
}

fn block_on<T>(run: impl std::future::Future<Output = T>) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
    runtime.block_on(run)
}

/// `scenario` made into a race case's fixed world: the standard config (listener mode, a
/// migration) with `case.world`'s database, one push on time.
fn raced(
    mut scenario: scenario::Scenario,
    case: race::Case,
    names: &crate::Names,
) -> scenario::Scenario {
    scenario.config = crate::service_config(names);
    scenario.config.health.test_url = Some(names.test_url.clone());
    case.world.configure(&mut scenario.config, names);
    if scenario::on_ecs(&scenario.config) {
        // As every ECS world of the simulator (`scenario`): not autoscaled, the listener's
        // default another team's.
        scenario.autoscaled = false;
        scenario.default_is_neighbours = true;
    }
    scenario.config.approval.policy = bluegreen::config::ApprovalPolicy::Required;
    scenario.pushes.truncate(1);
    for push in &mut scenario.pushes {
        push.delivered_after = push.pushed_after;
        push.duplicated = false;
    }
    scenario.faults = conductor::FaultRates::NONE;
    scenario
}

async fn simulate(
    seed: u64,
    knobs: Knobs,
    trace_calls: bool,
    case: Option<race::Case>,
    script: &dyn Fn(&mut scenario::Scenario, &crate::Names),
) -> (Report, MemoryAws) {
    clock::start();
    let rng = rng::Rng::new(seed);
    let names = memory::world::made_up_names();
    let mut scenario = scenario::Scenario::generate(&rng, knobs, &names);
    if let Some(case) = case {
        scenario = raced(scenario, case, &names);
    }
    script(&mut scenario, &names);
    let mut settings = crate::standard_settings();
    let on_ecs = scenario::on_ecs(&scenario.config);
    if on_ecs {
        // As the stack sets it: bluegreen's hook function, registered on the service.
        settings.ecs_hook_arn = Some(crate::ecs_world::HOOK_ARN.into());
    }
    let invariants = Arc::new(invariants::Invariants::new(
        settings.clone(),
        vec![scenario.config.clone()],
    ));
    let trace: actors::Trace = Arc::new(Mutex::new(Vec::new()));
    let conductor = Arc::new(conductor::SimConductor::new(
        rng.clone(),
        invariants.clone(),
        trace.clone(),
        trace_calls,
    ));
    let (aws, mut ctx) =
        memory::world::build(&names, conductor.clone(), Arc::new(clock::now)).await;
    ctx.settings.pacing = scenario.pacing;
    ctx.settings.ecs_hook_arn = settings.ecs_hook_arn.clone();
    bluegreen::config_store::ConfigStore::new(&ctx)
        .put(&scenario.config)
        .await
        .expect("the scenario's config is valid");
    if scenario.autoscaled {
        aws.with(|s| memory::world::autoscale_blue(s, &names, 2, 6));
    }
    // A world tested through a test rule has no test listener (it would be a route to a slot
    // the config does not know).
    if matches!(
        scenario.config.traffic.test_route(),
        bluegreen::config::TestRoute::Rule(_)
    ) {
        aws.with(|s| s.elb.listeners.remove(&names.test_listener));
    }
    let theirs = aws
        .with(|s| neighbours::install(s, &names, &scenario.config, scenario.default_is_neighbours));
    if on_ecs {
        // ECS's rules in place of the rule-mode production rule neighbours installed.
        aws.with(|s| crate::ecs_world::install(s, &names));
    }
    invariants.world_built(theirs);
    let executions = Arc::new(executions::SimExecutions::new(
        ctx.clone(),
        aws.clone(),
        rng.clone(),
        trace.clone(),
        knobs.event_trouble,
    ));
    aws.with(|s| s.workflow.starter = Some(executions.clone()));
    conductor.arm(scenario.faults);
    if let Some(case) = case.filter(|c| c.at > 0) {
        let (ctx, trace) = (ctx.clone(), trace.clone());
        conductor.race(conductor::Racer {
            at: case.at,
            run: Box::new(move || {
                Box::pin(async move {
                    let answer = race::act(ctx, case.action).await;
                    actors::note(&trace, format!("race {}: {answer}", case.action.name()));
                })
            }),
        });
    }

    let mut actors = vec![
        tokio::spawn(cloud::run(
            aws.clone(),
            rng.clone(),
            scenario.clone(),
            names.clone(),
            cloud::Timing::simulator(),
            executions.bus(),
        )),
        tokio::spawn(actors::pushes(
            scenario.clone(),
            executions.clone(),
            trace.clone(),
        )),
        tokio::spawn(actors::schedules(ctx.clone(), trace.clone())),
    ];
    if on_ecs {
        actors.push(tokio::spawn(cloud::ecs_blue_green(
            aws.clone(),
            ctx.clone(),
            scenario.clone(),
            cloud::Timing::simulator(),
            trace.clone(),
            invariants.clone(),
        )));
    }
    let mut people = Vec::new();
    if knobs.operators {
        people.push(tokio::spawn(actors::approvers(
            ctx.clone(),
            rng.clone(),
            scenario.clone(),
            trace.clone(),
        )));
        people.push(tokio::spawn(actors::operators(
            ctx.clone(),
            rng.clone(),
            scenario.clone(),
            trace.clone(),
        )));
    } else {
        people.push(tokio::spawn(actors::approvers(
            ctx.clone(),
            rng.clone(),
            scenario::Scenario {
                approves: 1000,
                rejects: 0,
                ..scenario.clone()
            },
            trace.clone(),
        )));
    }
    let last = scenario
        .pushes
        .iter()
        .map(|p| p.delivered_after + 30)
        .max()
        .unwrap_or(0);
    tokio::time::sleep(Duration::from_secs(last)).await;
    settle(&aws, &settings, Rest::Quiet).await;
    // People stop; AWS and the schedules run on until every execution has ended and the
    // scheduled jobs have had their turn.
    for person in people {
        person.abort();
    }
    conductor.arm(conductor::FaultRates::NONE);
    // Not coming to rest within SETTLE is no finding by itself: seed 6383 (2026-12-07) ends
    // with an aborted deployment's execution waiting a day for its timeout (harmless: its
    // next step refuses, it holds nothing). A lock still held is judged below.
    settle(&aws, &settings, Rest::Quiescent).await;
    for actor in actors {
        actor.abort();
    }
    aws.with(|state| invariants.check_quiescent(state));
    let report = finish(
        seed,
        knobs,
        &aws,
        &invariants,
        &conductor,
        &trace,
        &settings,
    );
    (report, aws)
}

/// How much rest a run waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rest {
    /// Nothing in progress, seen twice in a row: people may stop.
    Quiet,
    /// Quiet, no lock held but by a deployment that waits for a person, for five looks in a
    /// row (40 min): the sweep (every 5 min) and a whole teardown (every 30 min) ran at rest, so
    /// what bluegreen tidies on its own schedule — an operator's lease left by a crashed
    /// command, a warm slot a crashed rollback prepared — is tidied before the quiescent
    /// invariants are judged.
    Quiescent,
}

/// Waits for `rest`, looking every [`LOOK`], at most [`SETTLE`].
async fn settle(aws: &MemoryAws, settings: &bluegreen::Settings, rest: Rest) {
    let looks = match rest {
        Rest::Quiet => 2,
        // Five looks 10 min apart span 40 min: a teardown's 30-min turn starts and ends in it.
        Rest::Quiescent => 5,
    };
    let mut calm = 0;
    let mut waited = Duration::ZERO;
    while waited < SETTLE && calm < looks {
        tokio::time::sleep(LOOK).await;
        waited += LOOK;
        let resting =
            aws.with(|s| at_rest(s, settings) && (rest == Rest::Quiet || unlocked(s, settings)));
        calm = if resting { calm + 1 } else { 0 };
    }
}

/// No lock held, but by a deployment that needs attention (a person releases that one).
fn unlocked(state: &memory::State, settings: &bluegreen::Settings) -> bool {
    let attention: Vec<String> = state
        .tables
        .items(&settings.deployments_table)
        .into_iter()
        .filter_map(|item| serde_dynamo::from_item::<_, bluegreen::record::Deployment>(item).ok())
        .filter(|d| d.status == bluegreen::record::Status::NeedsAttention)
        .map(|d| d.deployment_id)
        .collect();
    state
        .tables
        .items(&settings.locks_table)
        .iter()
        .all(|lock| match lock.get("deployment_id") {
            Some(serde_dynamo::AttributeValue::S(holder)) => attention.contains(holder),
            _ => true,
        })
}

/// No execution, task or deployment in progress.
fn at_rest(state: &memory::State, settings: &bluegreen::Settings) -> bool {
    let executions = state
        .workflow
        .executions
        .values()
        .all(|e| e.status != "RUNNING");
    let tasks = state
        .ecs
        .tasks
        .values()
        .all(|t| t.state.last_status == "STOPPED");
    let records = state
        .tables
        .items(&settings.deployments_table)
        .into_iter()
        .filter_map(|item| serde_dynamo::from_item::<_, bluegreen::record::Deployment>(item).ok())
        .all(|d| d.status.is_terminal() || d.status == bluegreen::record::Status::Queued);
    executions && tasks && records
}

fn finish(
    seed: u64,
    knobs: Knobs,
    aws: &MemoryAws,
    invariants: &invariants::Invariants,
    conductor: &conductor::SimConductor,
    trace: &actors::Trace,
    settings: &bluegreen::Settings,
) -> Report {
    let records: Vec<bluegreen::record::Deployment> = aws.with(|s| {
        s.tables
            .items(&settings.deployments_table)
            .into_iter()
            .filter_map(|item| serde_dynamo::from_item(item).ok())
            .collect()
    });
    // How each deployment ended closes the trace: a replay shows why, not only what.
    let mut trace = trace.lock().expect("trace").clone();
    for d in &records {
        let last = d.timeline.last().map(|e| e.detail.as_str()).unwrap_or("");
        trace.push(format!("end {} {}: {last}", d.deployment_id, d.status));
    }
    let deployments = records
        .into_iter()
        .map(|d| (d.deployment_id, d.status.to_string()))
        .collect();
    Report {
        seed,
        knobs,
        violations: invariants.violations(),
        calls: conductor.calls(),
        deployments,
        trace,
        step_changes: conductor.step_changes(),
        raced_at: conductor.raced_at(),
    }
}

/// `report`'s seed with as much trouble switched off as still breaks an invariant: the
/// smallest knobs found, and that run's report.
pub fn shrink(report: &Report) -> Report {
    let mut best = report.clone();
    let candidates: [fn(Knobs) -> Knobs; 5] = [
        |k| Knobs { faults: false, ..k },
        |k| Knobs {
            operators: false,
            ..k
        },
        |k| Knobs {
            event_trouble: false,
            ..k
        },
        |k| Knobs {
            bad_images: false,
            ..k
        },
        |k| Knobs {
            pushes: k.pushes.saturating_sub(1).max(1),
            ..k
        },
    ];
    loop {
        let mut smaller = None;
        for candidate in candidates {
            let knobs = candidate(best.knobs);
            if knobs == best.knobs {
                continue;
            }
            let attempt = run(best.seed, knobs);
            if !attempt.safe() {
                smaller = Some(attempt);
                break;
            }
        }
        match smaller {
            Some(attempt) => best = attempt,
            None => return best,
        }
    }
}
