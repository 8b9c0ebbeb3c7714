//! `bluegreen reconcile [service]`: the stack's reconciler, run on this machine for local runs.
//!
//! On AWS the reconciler runs every few minutes and asks Step Functions whether each lock
//! holder's execution still runs. Locally the executions are `bluegreen run` processes: one
//! killed after the switch left its service locked in `baking` for good, every operator verb
//! refusing "in progress". This command asks the local runs instead (`local_runs`: a run is
//! alive while its process is) and does what the stack's reconciler would: releases the lock
//! of an ended deployment, marks one whose run died after traffic may have moved as needing
//! attention (then `retry` or `rollback` end it), aborts one that died before, and runs here
//! any deployment it starts (a queued one handed the lock).

use std::process::ExitCode;
use std::sync::Arc;

use bluegreen::Context;
use bluegreen::steps::reconcile::{self, Action, Reconciled};
use bluegreen_statemachine::ScaledClock;
use bluegreen_statemachine::local_runs::{LOCAL_DEPLOYMENT_MACHINE, LocalWorkflow};

use crate::output::Output;
use crate::run::{Local, execution_of};

/// `bluegreen reconcile` arguments.
#[derive(clap::Args)]
pub struct ReconcileArgs {
    /// The service to reconcile (default: every locked service, as the stack's sweep).
    service: Option<String>,
    /// How fast waits pass in a deployment the reconciler starts (as `run --time-scale`).
    #[arg(long, default_value_t = 1.0, value_parser = crate::run::time_scale)]
    time_scale: f64,
}

/// Runs the command: exit 0 unless reconciling failed or a deployment it ran failed.
pub async fn run(out: Output, args: ReconcileArgs) -> ExitCode {
    let clock = ScaledClock::new(args.time_scale);
    let ctx = Context::from_env()
        .await
        .with_clock(Arc::new(clock.shared_now()));
    if !ctx.on_loopback_emulator() {
        return crate::usage(&format!(
            "reconcile looks after local runs, against an emulator on this machine \
             (AWS_ENDPOINT_URL on loopback; it is {}): in an AWS account the stack's reconciler \
             runs on its schedule",
            ctx.endpoint_url.as_deref().unwrap_or("AWS itself")
        ));
    }
    let workflow = Arc::new(LocalWorkflow::new(ctx.endpoint_url.clone()));
    let mut local = ctx.clone();
    local.ports.workflow = workflow.clone();
    local.settings.deployment_machine_arn = Some(LOCAL_DEPLOYMENT_MACHINE.into());
    let reconciled = match &args.service {
        Some(service) => reconcile::service(&local, service).await.map(|r| vec![r]),
        None => reconcile::sweep(&local).await,
    };
    let reconciled = match reconciled {
        Ok(r) => r,
        Err(e) => return out.error(&e),
    };
    let shown = out.show(&reconciled, |all| {
        for r in all {
            outln!("{}", line(r));
        }
    });
    // A service that could not be reconciled now is a failure of this command (the sweep on
    // AWS tries again; here the person does).
    let failed = reconciled.iter().any(|r| r.action == Action::Failed);
    let started = workflow.take_started();
    if started.is_empty() {
        return if failed { ExitCode::FAILURE } else { shown };
    }
    let runner = match Local::new(&ctx, &clock) {
        Ok(runner) => runner,
        Err(e) => return crate::fail(&e),
    };
    let queue = started.into_iter().map(execution_of).collect();
    if runner.run_deployments(&ctx, queue, None).await && !failed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// One service's answer, with what to do next where a person must act.
fn line(r: &Reconciled) -> String {
    let holder = r.holder.as_deref().unwrap_or("-");
    let next = match r.action {
        Action::NeedsAttention => format!(
            "\n  next: `bluegreen retry {holder}` ends it (rolls back if traffic moved), or \
             `bluegreen rollback {}` / `bluegreen unlock {}`",
            r.service, r.service
        ),
        _ => String::new(),
    };
    format!(
        "{}: {} {holder}: {}{next}",
        r.service,
        action_words(r.action),
        bluegreen::text::line(&r.detail)
    )
}

fn action_words(action: Action) -> &'static str {
    match action {
        Action::Nothing => "nothing to do for",
        Action::Aborted => "aborted",
        Action::Waiting => "waiting on the ending of",
        Action::Ended => "ended",
        Action::NeedsAttention => "needs attention:",
        Action::Released => "released the lock of",
        Action::Requeued => "queued again behind",
        Action::Superseded => "superseded",
        Action::Started => "started",
        Action::Failed => "could not reconcile",
        Action::GuardViolation => "found the slots out of shape:",
    }
}
