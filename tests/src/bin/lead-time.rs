//! Lead-time benchmark (`bench/lead-time`): how long after AWS finishes a piece of work
//! bluegreen moves on, its own time per deployment, and what one deployment costs — before
//! (one look per check invocation, the state machine's 5–60 s backoff), with paced looks
//! (checks looking every 1–2 s within an invocation) and after (paced looks, and ECS's two
//! waits ended by ECS's events), on the same AWS schedules, beside the seed
//! scripts' `aws … wait` waiters. Runs on virtual time (`bluegreen_tests::sim::lead_time`):
//! the world, not the machine, sets the numbers.
//!
//! Arguments: `[--seeds N]` (default 20 per world and mode). Prints markdown tables (the
//! README's) and the summary lines.

use std::collections::BTreeMap;

use bluegreen_tests::sim::lead_time::{BenchWorld, Deployed, Mode, deploy};

/// Step Functions Standard: USD per state transition (us-east-1 list price).
const PER_TRANSITION: f64 = 0.025 / 1000.0;
/// Lambda on arm64 (the stack's default): USD per GB-second and per request.
const PER_GB_SECOND: f64 = 0.000_013_333_4;
const PER_REQUEST: f64 = 0.20 / 1_000_000.0;

fn seeds() -> u64 {
    let mut args = std::env::args().skip(1);
    let mut seeds = 20;
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next().and_then(|v| v.parse().ok())) {
            ("--seeds", Some(n)) if n > 0 => seeds = n,
            _ => {
                eprintln!("usage: lead-time [--seeds N]");
                std::process::exit(2);
            }
        }
    }
    seeds
}

/// The lags seen for one wait (`step: what`) over every seed.
#[derive(Default)]
struct Lags {
    work: Vec<f64>,
    before: Vec<f64>,
    looks: Vec<f64>,
    after: Vec<f64>,
    waiter: Vec<f64>,
}

/// The three ways of noticing, as the tables name them.
const MODES: [(&str, Mode); 3] = [
    ("before", Mode::BEFORE),
    ("looks", Mode::LOOKS),
    ("after", Mode::AFTER),
];

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.iter().sum::<f64>() / values.len() as f64
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(0.0, f64::max)
}

fn cost(d: &Deployed) -> f64 {
    d.transitions as f64 * PER_TRANSITION
        + d.invocations as f64 * PER_REQUEST
        + d.gb_seconds * PER_GB_SECOND
}

/// One row of the per-deployment table: the means over `runs`.
fn deployment_row(label: &str, runs: &[Deployed]) -> String {
    let avg = |f: fn(&Deployed) -> f64| mean(&runs.iter().map(f).collect::<Vec<_>>());
    format!(
        "| {label} | {:.0} s | {:.1} s | {:.0} | {:.0} | {:.1} | ${:.5} |",
        avg(|d| d.duration),
        avg(|d| d.overhead),
        avg(|d| d.transitions as f64),
        avg(|d| d.invocations as f64),
        avg(|d| d.gb_seconds),
        avg(cost),
    )
}

fn main() {
    let seeds = seeds();
    let mut lags: BTreeMap<(BenchWorld, String, &str), Lags> = BTreeMap::new();
    let mut runs: BTreeMap<(BenchWorld, &str), Vec<Deployed>> = BTreeMap::new();
    for world in BenchWorld::ALL {
        for seed in 0..seeds {
            for (name, mode) in MODES {
                let run = deploy(seed, world, mode);
                assert_eq!(
                    run.status, "succeeded",
                    "seed {seed} in {world:?} {name}: {run:?}"
                );
                for wait in &run.waits {
                    let entry = lags
                        .entry((world, wait.step.clone(), wait.what))
                        .or_default();
                    match name {
                        "before" => entry.before.push(wait.lag),
                        "looks" => entry.looks.push(wait.lag),
                        _ => {
                            entry.work.push(wait.work);
                            entry.after.push(wait.lag);
                            entry.waiter.push(wait.waiter_lag);
                        }
                    }
                }
                runs.entry((world, name)).or_default().push(run);
            }
        }
    }
    println!(
        "Lag from AWS finishing a piece of work to bluegreen moving on ({seeds} seeds per world; seconds, mean / max):\n"
    );
    println!(
        "| wait | AWS's work | before: backoff | paced looks | after: looks + ECS events | seed scripts' waiters |"
    );
    println!("|---|---|---|---|---|---|");
    let (mut all_before, mut all_looks, mut all_after, mut all_waiter) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((world, step, what), l) in &lags {
        println!(
            "| {step}: {what} ({}) | {:.0} | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} / {:.1} |",
            world.name(),
            mean(&l.work),
            mean(&l.before),
            max(&l.before),
            mean(&l.looks),
            max(&l.looks),
            mean(&l.after),
            max(&l.after),
            mean(&l.waiter),
            max(&l.waiter),
        );
        all_before.extend(&l.before);
        all_looks.extend(&l.looks);
        all_after.extend(&l.after);
        all_waiter.extend(&l.waiter);
    }
    println!(
        "\nOne deployment, mean over the seeds (cost at list prices: Step Functions Standard, Lambda arm64):\n"
    );
    println!(
        "| world, pacing | duration | bluegreen's own time | state transitions | Lambda invocations | GB-seconds | cost |"
    );
    println!("|---|---|---|---|---|---|---|");
    for ((world, pacing), list) in &runs {
        println!(
            "{}",
            deployment_row(&format!("{}, {pacing}", world.name()), list)
        );
    }
    let overhead = |pacing: &str| {
        let all: Vec<f64> = runs
            .iter()
            .filter(|((_, p), _)| *p == pacing)
            .flat_map(|(_, list)| list.iter().map(|d| d.overhead))
            .collect();
        mean(&all)
    };
    let costs = |pacing: &str| {
        let all: Vec<f64> = runs
            .iter()
            .filter(|((_, p), _)| *p == pacing)
            .flat_map(|(_, list)| list.iter().map(cost))
            .collect();
        mean(&all)
    };
    println!();
    println!(
        "before: mean lag per wait {:.1} s (max {:.1} s); bluegreen's own time per deployment {:.1} s; ${:.5} per deployment",
        mean(&all_before),
        max(&all_before),
        overhead("before"),
        costs("before")
    );
    println!(
        "looks:  mean lag per wait {:.1} s (max {:.1} s); bluegreen's own time per deployment {:.1} s; ${:.5} per deployment",
        mean(&all_looks),
        max(&all_looks),
        overhead("looks"),
        costs("looks")
    );
    println!(
        "after:  mean lag per wait {:.1} s (max {:.1} s); bluegreen's own time per deployment {:.1} s; ${:.5} per deployment",
        mean(&all_after),
        max(&all_after),
        overhead("after"),
        costs("after")
    );
    println!(
        "seed scripts' waiters: mean lag per wait {:.1} s (max {:.1} s)",
        mean(&all_waiter),
        max(&all_waiter)
    );
}
