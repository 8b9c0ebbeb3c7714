//! `bluegreen run`: one push, run through the intake and deployment definitions in-process,
//! with a live timeline and a summary.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bluegreen::record::{Records, Status};
use bluegreen::{Context, text};
use bluegreen_ops::auto_approve::AutoApprover;
use bluegreen_statemachine::local::{LocalTasks, StartRequest};
use bluegreen_statemachine::local_runs::{self, LOCAL_DEPLOYMENT_MACHINE, Registration};
use bluegreen_statemachine::{
    DEPLOYMENT_ASL, Definition, EventKind, Finished, HistoryEvent, INTAKE_ASL, Outcome, Runner,
    ScaledClock,
};
use chrono::{DateTime, Utc};

/// Arguments of `bluegreen run`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// The EventBridge event (an ECR Image Action) to deploy, as a JSON file.
    #[arg(
        long,
        required_unless_present = "deployment",
        conflicts_with = "deployment"
    )]
    event: Option<PathBuf>,
    /// Instead of an event: run the deployment definition for a deployment already prepared
    /// (what `bluegreen redeploy` prints against an emulator).
    #[arg(long)]
    deployment: Option<String>,
    /// Approve automatically, as your AWS identity (STS), whenever a deployment of this run
    /// awaits approval (never another service's or another terminal's). Only against an
    /// emulator on this machine (`AWS_ENDPOINT_URL` on loopback); your identity must be a
    /// listed approver of every service the push deploys, checked before anything starts.
    /// Without it, approve from another terminal with `bluegreen approve <deployment-id>`.
    #[arg(long)]
    auto_approve: bool,
    /// How fast waits pass: 1 is real time, 0.01 makes a 60 s wait take 0.6 s, 0 skips them
    /// (a number from 0 to 1).
    #[arg(long, default_value_t = 1.0, value_parser = time_scale)]
    time_scale: f64,
}

/// `--time-scale`: a number from 0 to 1 (a negative or larger scale has no meaning; it used to
/// be clamped silently).
pub fn time_scale(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(scale) if (0.0..=1.0).contains(&scale) => Ok(scale),
        Ok(_) => Err(format!("{text} is not between 0 and 1")),
        Err(e) => Err(format!("{text:?} is not a number: {e}")),
    }
}

/// Runs the command; exit 0 when every deployment succeeded.
pub async fn run(args: RunArgs) -> ExitCode {
    let event = match &args.event {
        Some(path) => match read_event(path) {
            Ok(event) => Some((path.display().to_string(), event)),
            Err(e) => return crate::fail(&e),
        },
        None => None,
    };
    let clock = ScaledClock::new(args.time_scale);
    let mut ctx = Context::from_env()
        .await
        .with_clock(Arc::new(clock.shared_now()))
        .with_sleeper(scaled_sleeper(&clock));
    // The emulator sends no ECS events: waiting for them would end every migration and
    // rollout wait by its slow path. Checks look instead (`bluegreen::wakes`).
    ctx.settings.wake_on_events = false;
    let approver = if args.auto_approve {
        let pushed = event.as_ref().map(|(_, e)| e);
        match AutoApproval::start(&ctx, pushed, args.deployment.as_deref()).await {
            Ok(approval) => Some(approval),
            Err(message) => return crate::fail(&message),
        }
    } else {
        None
    };
    let local = match Local::new(&ctx, &clock) {
        Ok(local) => local,
        Err(e) => return crate::fail(&e),
    };
    let queue = match (event, args.deployment) {
        (Some((path, event)), _) => {
            outln!("== intake ({path})");
            let intake_run = local.intake.run("intake", event).await;
            if let Outcome::Failed(f) = &intake_run.outcome {
                return crate::fail(&format!("intake failed: {}: {}", f.error, f.cause));
            }
            if let Outcome::Succeeded(output) = &intake_run.outcome {
                for line in prepared_lines(&ctx, &output["prepared"]).await {
                    outln!("   {line}");
                }
            }
            local.tasks.take_started()
        }
        // Prepared already (a redeploy): its execution, with the input every one gets.
        (None, Some(id)) => vec![execution_of(id)],
        (None, None) => return crate::fail("give --event or --deployment"),
    };
    let all_succeeded = local.run_deployments(&ctx, queue, approver.as_ref()).await;
    if let Some(approval) = approver {
        approval.handle.abort();
    }
    if all_succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The event file's JSON; an unreadable or malformed file is named in the error.
fn read_event(path: &std::path::Path) -> Result<serde_json::Value, String> {
    std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).map_err(|e| e.to_string()))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The deployment execution of a prepared deployment, with the input every one gets.
pub fn execution_of(id: String) -> StartRequest {
    StartRequest {
        state_machine: LOCAL_DEPLOYMENT_MACHINE.into(),
        input: serde_json::json!({ "deployment_id": id }),
        name: id,
    }
}

/// The committed definitions, run in-process over the context's AWS by the local runner.
pub struct Local {
    tasks: Arc<LocalTasks>,
    intake: Runner,
    deployment: Runner,
}

impl Local {
    /// Both definitions over `ctx`, timed by `clock`, printing each event worth reading.
    pub fn new(ctx: &Context, clock: &ScaledClock) -> Result<Self, String> {
        let tasks = Arc::new(LocalTasks::new(ctx.clone(), Arc::new(clock.clone()), 2.0));
        let observer: bluegreen_statemachine::runner::Observer = Arc::new(print_event);
        let runner = |text: &str, id: &str| -> Result<Runner, String> {
            let definition = Definition::parse(text).map_err(|e| e.to_string())?;
            Ok(
                Runner::new(definition, id, tasks.clone(), Arc::new(clock.clone()))
                    .with_observer(observer.clone()),
            )
        };
        Ok(Local {
            intake: runner(INTAKE_ASL, "arn:local:stateMachine:bluegreen-intake")?,
            deployment: runner(DEPLOYMENT_ASL, LOCAL_DEPLOYMENT_MACHINE)?,
            tasks,
        })
    }

    /// Runs each started deployment's execution to its end, then those their endings
    /// started (hand-overs to queued deployments); whether every one succeeded. Each is
    /// recorded as this process's run while it runs (`local_runs`), so `reconcile` and
    /// `approve` in another terminal can tell whether it still runs.
    pub async fn run_deployments(
        &self,
        ctx: &Context,
        queue: Vec<StartRequest>,
        approval: Option<&AutoApproval>,
    ) -> bool {
        let mut all_succeeded = true;
        if queue.is_empty() {
            outln!("no deployment started in this run (why is above)");
        }
        let endpoint = ctx.endpoint_url.as_deref();
        // Every deployment this run will execute is recorded as queued in it at once, so that
        // `reconcile` elsewhere does not start it a second time while it waits its turn.
        let mut pending: std::collections::VecDeque<_> = queue
            .into_iter()
            .map(|start| (local_runs::register(endpoint, &start.name), start))
            .collect();
        while let Some((registration, start)) = pending.pop_front() {
            outln!("\n== deployment {}", start.name);
            let file = match registration {
                Registration::Elsewhere(pid) => {
                    outln!("   runs in process {pid} already (not run here a second time)");
                    continue;
                }
                Registration::Ours(file) => Some(file),
                Registration::Unrecorded => None,
            };
            if let Some(file) = &file {
                file.started();
            }
            if let Some(approval) = approval {
                approval.admit(&start);
            }
            let finished = self.deployment.run(&start.name, start.input).await;
            all_succeeded &= matches!(finished.outcome, Outcome::Succeeded(_));
            summary(ctx, &start.name, &finished).await;
            drop(file);
            // Handed over by its ending: this run's from now, recorded before anything else.
            for next in self.tasks.take_started() {
                pending.push_back((local_runs::register(endpoint, &next.name), next));
            }
        }
        all_succeeded
    }
}

/// `--auto-approve` running beside the run: who approves, and the deployments of this run
/// (only those are approved).
pub struct AutoApproval {
    handle: tokio::task::JoinHandle<()>,
    this_run: Arc<Mutex<BTreeSet<String>>>,
}

impl AutoApproval {
    /// Starts approving as the caller, after checking that the caller may approve every
    /// service the push (or the prepared deployment) deploys: a caller who is not listed is
    /// refused here, before anything starts, not after the approval window.
    async fn start(
        ctx: &Context,
        event: Option<&serde_json::Value>,
        deployment: Option<&str>,
    ) -> Result<Self, String> {
        let caller = auto_approver(ctx).await?;
        let configs = match (event, deployment) {
            (Some(event), _) => bluegreen::steps::prepare::configs_deploying(ctx, event).await,
            (None, Some(id)) => configs_of(ctx, id).await,
            (None, None) => Ok(Vec::new()),
        }
        .map_err(|e| {
            format!(
                "--auto-approve cannot read what this run deploys ({}: {e})",
                e.name()
            )
        })?;
        for config in &configs {
            bluegreen_ops::auto_approve::may_approve(config, &caller)?;
        }
        let this_run = Arc::new(Mutex::new(BTreeSet::new()));
        let handle = tokio::spawn(auto_approve(ctx.clone(), caller, this_run.clone()));
        Ok(AutoApproval { handle, this_run })
    }

    /// Counts a deployment this run executes as its own.
    fn admit(&self, start: &bluegreen_statemachine::local::StartRequest) {
        let id = start.input["deployment_id"].as_str().unwrap_or(&start.name);
        if let Ok(mut ids) = self.this_run.lock() {
            ids.insert(id.to_owned());
        }
    }
}

/// The configs a prepared deployment's approval is decided against: its own (as when it
/// started) and its service's current one (an approver must be in both).
async fn configs_of(
    ctx: &Context,
    id: &str,
) -> bluegreen::StepResult<Vec<bluegreen::config::ServiceConfig>> {
    let deployment = Records::new(ctx).get(id).await?;
    // As the decision does: a service whose current config is gone or unreadable is decided
    // on the deployment's own.
    match bluegreen::config_store::ConfigStore::new(ctx)
        .load(&deployment.service)
        .await
    {
        Ok(current) => Ok(vec![deployment.config, current]),
        Err(_) => Ok(vec![deployment.config]),
    }
}

/// Who `--auto-approve` approves as: the caller's own identity, and only on an emulator on
/// this machine — approving without a person is a development convenience, never a way around
/// the operator API.
async fn auto_approver(ctx: &Context) -> Result<String, String> {
    if !ctx.on_loopback_emulator() {
        return Err(format!(
            "--auto-approve is refused: it works only against an emulator on this machine \
             (AWS_ENDPOINT_URL on 127.0.0.1 or localhost), and the endpoint is {}",
            ctx.endpoint_url.as_deref().unwrap_or("AWS itself")
        ));
    }
    bluegreen::identity::caller_arn(ctx)
        .await
        .map_err(|e| format!("--auto-approve needs your identity ({}: {e})", e.name()))
}

/// Approves each deployment of this run that awaits approval, as `approver`, once each;
/// says once per deployment why when the approval is refused.
async fn auto_approve(ctx: Context, approver: String, this_run: Arc<Mutex<BTreeSet<String>>>) {
    let mut approver = AutoApprover::new(approver);
    loop {
        let ids = this_run.lock().map(|ids| ids.clone()).unwrap_or_default();
        for line in approver.look(&ctx, &ids).await {
            outln!("         {line}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn time(at: DateTime<Utc>) -> String {
    at.format("%H:%M:%S").to_string()
}

/// One line per event worth a person's attention.
fn print_event(event: &HistoryEvent) {
    let at = time(event.at);
    match &event.kind {
        EventKind::StateEntered { state } => outln!("{at}  > {state}"),
        EventKind::Waiting { seconds, .. } if *seconds > 0.0 => {
            outln!("{at}      waiting {seconds:.0}s")
        }
        EventKind::Retrying {
            attempt,
            delay_seconds,
            ..
        } => outln!("{at}      retry {attempt} in {delay_seconds:.1}s"),
        EventKind::TaskFailed { error, cause, .. } => {
            outln!("{at}      failed: {error}: {}", text::line(cause))
        }
        EventKind::Caught { error, next, .. } => outln!("{at}      caught {error} -> {next}"),
        EventKind::ExecutionSucceeded { .. } => outln!("{at}  = succeeded"),
        EventKind::ExecutionFailed { error, cause } => {
            outln!("{at}  = failed: {error}: {}", text::line(cause))
        }
        _ => {}
    }
}

/// What prepare did with the push, one line per service: the deployment id and, for a push
/// that does not start now, why and what happens next.
async fn prepared_lines(ctx: &Context, prepared: &serde_json::Value) -> Vec<String> {
    use bluegreen::steps::prepare::{Prepared, PreparedOutcome};
    let Ok(prepared) = serde_json::from_value::<Prepared>(prepared.clone()) else {
        return vec![format!("prepare answered {prepared}")];
    };
    let deployments = match prepared {
        Prepared::Ignored { reason } => return vec![format!("push ignored: {reason}")],
        Prepared::Deployments { deployments } => deployments,
    };
    let mut lines = Vec::new();
    for d in deployments {
        let (service, id) = (&d.service, &d.deployment_id);
        lines.push(match d.outcome {
            PreparedOutcome::Started => format!("{service}: {id} started"),
            PreparedOutcome::Queued => {
                let holder = bluegreen::lock::Locks::new(ctx)
                    .holder(service)
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| "the running deployment".into());
                format!(
                    "{service}: {id} queued behind {holder}; it starts when that one ends \
                     (`bluegreen status {service}`)"
                )
            }
            PreparedOutcome::Superseded => format!(
                "{service}: {id} superseded: a newer push of {service} is queued or has run \
                 (pushes deploy in push order)"
            ),
            PreparedOutcome::Ended => {
                format!("{service}: {id} already ran to its end (a replayed event)")
            }
            PreparedOutcome::Failed => format!(
                "{service}: {id} not prepared: {}",
                d.error.as_deref().unwrap_or("no cause given")
            ),
        });
    }
    lines
}

/// The per-step durations (by the execution's clock) and the outcome, from the record too.
async fn summary(ctx: &Context, deployment_id: &str, finished: &Finished) {
    let mut durations: BTreeMap<String, (usize, f64)> = BTreeMap::new();
    let mut entered: Option<(String, DateTime<Utc>)> = None;
    let mut order = Vec::new();
    for event in &finished.history {
        match &event.kind {
            EventKind::StateEntered { state } => entered = Some((state.clone(), event.at)),
            EventKind::StateExited { state } => {
                if let Some((name, at)) = entered.take().filter(|(n, _)| n == state) {
                    let Some(step) = step_of(&name).map(str::to_owned) else {
                        continue;
                    };
                    if !durations.contains_key(&step) {
                        order.push(step.clone());
                    }
                    let entry = durations.entry(step).or_default();
                    entry.0 = order.len();
                    entry.1 += (event.at - at).num_milliseconds() as f64 / 1000.0;
                }
            }
            _ => {}
        }
    }
    outln!("\n   step               time");
    for step in &order {
        outln!("   {step:<18} {:>7.1}s", durations[step].1);
    }
    let status = Records::new(ctx)
        .get(deployment_id)
        .await
        .map(|d| d.status)
        .unwrap_or(Status::Aborted);
    match &finished.outcome {
        Outcome::Succeeded(_) => outln!("   outcome: {status:?}"),
        Outcome::Failed(f) => outln!(
            "   outcome: {status:?} — {}: {}",
            text::line(&f.error),
            text::line(&f.cause)
        ),
    }
    // Read from AWS, not from the record: this is what production actually does now.
    if let Ok(d) = Records::new(ctx).get(deployment_id).await {
        match bluegreen::routing::read_production(ctx, &d.config).await {
            Ok(state) => outln!(
                "   production traffic: blue {}%, green {}%",
                state.percent(bluegreen::Slot::Blue),
                state.percent(bluegreen::Slot::Green)
            ),
            Err(e) => outln!("   production traffic: unknown ({e})"),
        }
    }
}

/// The label of the step a state belongs to (`LaunchPreprodWait` -> "Launch pre-prod"), from
/// the step registry; `None` for states that are not part of a step.
fn step_of(state: &str) -> Option<&'static str> {
    bluegreen::steps::registry::by_state(state).map(|s| s.label)
}

/// Checks' looks within an invocation pass on the runner's scaled clock, as its Wait states
/// do: at `--time-scale 0.01` a look a second later takes 10 ms, and the steps' clock moves on
/// the full second.
fn scaled_sleeper(clock: &ScaledClock) -> bluegreen::context::Sleeper {
    let clock = clock.clone();
    Arc::new(move |duration| {
        let clock = clock.clone();
        Box::pin(async move {
            bluegreen_statemachine::runner::Clock::sleep(&clock, duration.as_secs_f64()).await
        })
    })
}
