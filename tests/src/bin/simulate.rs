//! `scripts/simulate`: runs seeds of the deterministic simulator and reports every broken
//! invariant with the command that replays it, shrunk.
//!
//! ```text
//! simulate --seeds N [--from K]      seeds K .. K+N
//! simulate --seed S [--no-faults] [--no-operators] [--no-bad-images] [--no-event-trouble]
//!          [--pushes P] [--trace] [--calls]    one seed, replayed (with its trace)
//! ```

use std::process::ExitCode;
use std::time::Instant;

use bluegreen_tests::sim::{self, Knobs};

struct Args {
    from: u64,
    seeds: u64,
    knobs: Knobs,
    trace: bool,
    calls: bool,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        from: 0,
        seeds: 1,
        knobs: Knobs::default(),
        trace: false,
        calls: false,
    };
    let mut it = std::env::args().skip(1);
    let number = |v: Option<String>, flag: &str| -> Result<u64, String> {
        v.and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{flag} needs a number"))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seeds" => args.seeds = number(it.next(), "--seeds")?,
            "--from" => args.from = number(it.next(), "--from")?,
            "--seed" => {
                args.from = number(it.next(), "--seed")?;
                args.seeds = 1;
                args.trace = true;
            }
            "--pushes" => args.knobs.pushes = number(it.next(), "--pushes")? as usize,
            "--no-faults" => args.knobs.faults = false,
            "--no-operators" => args.knobs.operators = false,
            "--no-bad-images" => args.knobs.bad_images = false,
            "--no-event-trouble" => args.knobs.event_trouble = false,
            "--trace" => args.trace = true,
            "--calls" => {
                args.trace = true;
                args.calls = true;
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("simulate: {e}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let (mut safe, mut unsafe_, mut calls) = (0u64, 0u64, 0u64);
    let mut ends = std::collections::BTreeMap::<String, u64>::new();
    for seed in args.from..args.from + args.seeds {
        let report = sim::run_traced(seed, args.knobs, args.calls);
        calls += report.calls;
        for (_, status) in &report.deployments {
            *ends.entry(status.clone()).or_default() += 1;
        }
        if args.trace {
            for line in &report.trace {
                println!("  {line}");
            }
        }
        if report.safe() {
            safe += 1;
            continue;
        }
        unsafe_ += 1;
        let shrunk = sim::shrink(&report);
        println!("seed {seed}: UNSAFE");
        for v in &shrunk.violations {
            println!("  {} after {}: {}", v.at, v.after, v.what);
        }
        println!("  replay: scripts/simulate --seed {seed} {}", shrunk.knobs);
        for line in shrunk.trace.iter().rev().take(30).rev() {
            println!("  | {line}");
        }
    }
    let ends: Vec<String> = ends.iter().map(|(s, n)| format!("{s} {n}")).collect();
    println!(
        "simulate: {} seeds, {safe} safe, {unsafe_} unsafe; {calls} AWS calls; deployments: {} ({:.1} s)",
        args.seeds,
        ends.join(", "),
        started.elapsed().as_secs_f64()
    );
    if unsafe_ == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
