//! `scripts/simulate`: runs seeds of the deterministic simulator and reports every broken
//! invariant with the command that replays it, shrunk.
//!
//! ```text
//! simulate --seeds N [--from K]      seeds K .. K+N
//! simulate --seed S [--no-faults] [--no-operators] [--no-bad-images] [--no-event-trouble]
//!          [--pushes P] [--trace] [--calls]    one seed, replayed (with its trace)
//! simulate --interleavings [--part I/N]      the interleaving campaign (every Nth case from I)
//! simulate --case "<world> <action> @<n>" [--calls]   one case, replayed with its trace
//! ```

use std::process::ExitCode;
use std::time::Instant;

use bluegreen_tests::sim::race::{Action, Case, World};

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

fn parse_case(text: &str) -> Result<Case, String> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let bad = || format!("--case wants \"<world> <action> @<n>\", not {text:?}");
    let [world, action, at] = parts[..] else {
        return Err(bad());
    };
    Ok(Case {
        world: World::named(world).ok_or_else(bad)?,
        action: Action::named(action).ok_or_else(bad)?,
        at: at
            .strip_prefix('@')
            .and_then(|n| n.parse().ok())
            .ok_or_else(bad)?,
    })
}

/// `--interleavings [--part I/N]` and `--case C [--calls]`; `None` for the seed modes.
fn interleavings() -> Option<ExitCode> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        argv.iter()
            .position(|a| a == flag)
            .and_then(|i| argv.get(i + 1).cloned())
    };
    if let Some(text) = value("--case") {
        let case = match parse_case(&text) {
            Ok(case) => case,
            Err(e) => {
                eprintln!("simulate: {e}");
                return Some(ExitCode::from(2));
            }
        };
        let report = sim::race_case(case, argv.iter().any(|a| a == "--calls"));
        for line in &report.trace {
            println!("  {line}");
        }
        return Some(print_case(&case, &report));
    }
    if !argv.iter().any(|a| a == "--interleavings") {
        return None;
    }
    let (part, parts) = value("--part")
        .and_then(|p| {
            let (i, n) = p.split_once('/')?;
            Some((i.parse::<usize>().ok()?, n.parse::<usize>().ok()?.max(1)))
        })
        .unwrap_or((0, 1));
    let started = Instant::now();
    let (mut total, mut unsafe_) = (0u64, 0u64);
    for (i, case) in sim::race::cases().into_iter().enumerate() {
        if i % parts != part {
            continue;
        }
        total += 1;
        if print_case(&case, &sim::race_case(case, false)) != ExitCode::SUCCESS {
            unsafe_ += 1;
        }
    }
    println!(
        "interleavings: {total} cases, {} safe, {unsafe_} unsafe ({:.1} s)",
        total - unsafe_,
        started.elapsed().as_secs_f64()
    );
    Some(if unsafe_ == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// One line for a case (and its broken invariants, with the replay command).
fn print_case(case: &Case, report: &sim::Report) -> ExitCode {
    let ends: Vec<&str> = report.deployments.iter().map(|(_, s)| s.as_str()).collect();
    let before = report.raced_at.as_deref().unwrap_or("(never reached)");
    let raced = report.raced_at.is_some() || case.at == 0;
    let verdict = match (report.safe(), raced) {
        (true, true) => "safe",
        (true, false) => "NOT RACED",
        (false, _) => "UNSAFE",
    };
    println!("{case} before {before}: {verdict}; {}", ends.join(", "));
    if report.safe() && raced {
        return ExitCode::SUCCESS;
    }
    for v in &report.violations {
        println!("  {} after {}: {}", v.at, v.after, v.what);
    }
    println!("  replay: scripts/simulate --case \"{case}\" --calls");
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    if let Some(code) = interleavings() {
        return code;
    }
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
