//! `bluegreen`: run deployments locally, watch and decide them, roll back, manage service
//! configs, serve the approval console, and check and draw the state machine definitions.
//!
//! Every command uses the default AWS credential chain and region; `AWS_ENDPOINT_URL` points it
//! at an emulator (that is how `scripts/demo` runs it). Exit status: 0 done, 1 refused or
//! failed (the message says why), 2 bad usage.

/// `println!` for the CLI's output: a reader that went away (`bluegreen status | head -1`)
/// ends the command quietly with status 141 (128 + SIGPIPE, as a shell reports a tool that
/// its pipe killed) instead of a panic; any other write error ends it with status 1.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprintln!` through the same rendering of untrusted text as [`outln!`].
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::output::write_err(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` with [`outln!`]'s handling of a closed pipe.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write_out(format_args!($($arg)*))
    };
}

mod adopt;
mod api;
mod approvers;
mod config_cmd;
mod config_problems;
mod console;
mod doctor;
mod graph;
mod init;
mod local;
mod metrics;
mod ops;
mod output;
mod reconcile;
mod run;
mod wait;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use output::Output;

#[derive(Parser)]
#[command(
    name = "bluegreen",
    version,
    about = "Blue/green deployments for ECS services"
)]
struct Cli {
    /// `text` for people, `json` for scripts.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a deployment locally: the intake and deployment definitions execute in-process,
    /// calling the real steps against AWS (or the emulator in AWS_ENDPOINT_URL).
    Run(run::RunArgs),
    /// Do what the stack's reconciler does, for local runs (against an emulator on this
    /// machine): end or mark a deployment whose `bluegreen run` died, release a lock its
    /// holder left, run a deployment handed the lock.
    Reconcile(reconcile::ReconcileArgs),
    /// The emulator and what plays AWS around it, in the background, for trying bluegreen
    /// on this machine (the README's first-hour walk).
    #[command(subcommand)]
    Local(local::LocalCommand),
    /// Serve the approval console on this machine (as you, for requests from this machine).
    Console(console::ConsoleArgs),
    /// Show each service's live slot and latest deployment (or one service's).
    Status {
        /// Only this service.
        service: Option<String>,
    },
    /// Follow a deployment until it ends (for CI after a push): exit 0 when it succeeded, 1 when
    /// it aborted, rolled back, was superseded or needs attention, 2 on --timeout.
    Wait(wait::WaitArgs),
    /// Delivery metrics from the deployment records: deployment frequency, lead time from
    /// push to production, change failure rate and time to restore, per service and overall
    /// (with a service: also its median time per step).
    Metrics(metrics::MetricsArgs),
    /// List a service's deployments, newest first.
    History {
        /// The service.
        service: String,
        /// How many to show.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Approve a deployment that awaits approval, as your AWS identity.
    Approve {
        /// The deployment id.
        deployment_id: String,
    },
    /// Reject a deployment that awaits approval, as your AWS identity.
    Reject {
        /// The deployment id.
        deployment_id: String,
        /// Why (required).
        #[arg(long)]
        reason: String,
    },
    /// Send a service's traffic back to the slot its last deployment replaced (only within
    /// the keep-warm window, while that slot still runs); with --to, deploy an earlier
    /// deployment's image and task definition again through the full flow (any time).
    Rollback {
        /// The service.
        service: String,
        /// An earlier deployment of the service (its id) to go back to.
        #[arg(long)]
        to: Option<String>,
    },
    /// Deploy an image of the service's repository through the full flow — pre-prod,
    /// approval, switch, bake — without a push: a tag (resolved to the digest it names now;
    /// both are recorded) or a digest. Queues behind a running deployment, as a push does.
    #[command(group(clap::ArgGroup::new("image").required(true).args(["tag", "digest"])))]
    Deploy {
        /// The service.
        service: String,
        /// A tag of the service's repository.
        #[arg(long)]
        tag: Option<String>,
        /// A digest (sha256:…) of the service's repository.
        #[arg(long)]
        digest: Option<String>,
    },
    /// Send the image production runs now through the full flow again — pre-prod, approval,
    /// switch, bake — with the service's current config, task definition family and secrets:
    /// a config-only release. Refused while a deployment is in progress.
    Redeploy {
        /// The service.
        service: String,
    },
    /// Release a service whose last deployment ended needing attention (after you checked its
    /// database and slots); refused while a deployment is in progress.
    Unlock {
        /// The service.
        service: String,
    },
    /// Abort a deployment before its switch: stop its execution, put pre-prod back, remove its
    /// clones and release the lock (to a queued push, if any). Refused once traffic may have
    /// moved.
    Abort {
        /// The deployment id.
        deployment_id: String,
    },
    /// Run the ending of a deployment that needs attention once more, after you fixed what
    /// stopped it (finish if its bake passed, rollback if traffic moved, else abort).
    Retry {
        /// The deployment id.
        deployment_id: String,
    },
    /// Take an existing ECS service behind an ALB into blue/green: plan (default), --apply,
    /// or --undo NAME. Creates the second slot's target group and service, a test listener,
    /// the managed tags and the config; production traffic is not moved.
    Adopt(Box<adopt::AdoptArgs>),
    /// Check the installation and a service's config (or every service's) against AWS,
    /// read-only, listing every problem with its fix: exit 0 when there is nothing to fix.
    Doctor {
        /// Only this service (the installation is always checked).
        service: Option<String>,
    },
    /// Create the stack's tables, link secret and topic in a local emulator
    /// (AWS_ENDPOINT_URL on localhost) and print the environment to export.
    Init {
        /// Required: init only ever creates resources in a local emulator.
        #[arg(long)]
        local: bool,
    },
    /// Validate, upload or read service configs.
    #[command(subcommand)]
    Config(config_cmd::ConfigCommand),
    /// Subscribe approvers with per-approver filter policies, or check that no subscription
    /// can receive someone else's approval link.
    #[command(subcommand)]
    Approvers(approvers::ApproversCommand),
    /// Check the state machine definitions and, optionally, service config files.
    Validate {
        /// TOML service config files to validate.
        #[arg(long = "config")]
        configs: Vec<std::path::PathBuf>,
    },
    /// Print a Mermaid diagram of a definition.
    Graph {
        /// Draw the intake definition instead of the deployment one.
        #[arg(long)]
        intake: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = cli.output;
    match cli.command {
        Command::Run(args) => run::run(args).await,
        Command::Reconcile(args) => reconcile::run(out, args).await,
        Command::Local(command) => local::run(out, command).await,
        Command::Console(args) => console::serve(args).await,
        Command::Status { service } => ops::status(out, service.as_deref()).await,
        Command::Wait(args) => wait::run(out, args).await,
        Command::History { service, limit } => ops::history(out, &service, limit).await,
        Command::Metrics(args) => metrics::run(out, args).await,
        Command::Approve { deployment_id } => ops::decide(out, &deployment_id, true, None).await,
        Command::Reject {
            deployment_id,
            reason,
        } => ops::decide(out, &deployment_id, false, Some(reason)).await,
        Command::Rollback { service, to: None } => ops::rollback(out, &service).await,
        Command::Rollback {
            service,
            to: Some(to),
        } => ops::rollback_to(out, &service, &to).await,
        Command::Unlock { service } => ops::unlock(out, &service).await,
        Command::Redeploy { service } => ops::redeploy(out, &service).await,
        Command::Deploy {
            service,
            tag,
            digest,
        } => ops::deploy(out, &service, tag, digest).await,
        Command::Abort { deployment_id } => ops::abort(out, &deployment_id).await,
        Command::Retry { deployment_id } => ops::retry(out, &deployment_id).await,
        Command::Init { local } => init::run(out, local).await,
        Command::Adopt(args) => adopt::run(out, *args).await,
        Command::Doctor { service } => doctor::run(out, service.as_deref()).await,
        Command::Config(command) => config_cmd::run(out, command).await,
        Command::Approvers(command) => approvers::run(out, command).await,
        Command::Validate { configs } => validate(&configs),
        Command::Graph { intake } => {
            let text = if intake {
                bluegreen_statemachine::INTAKE_ASL
            } else {
                bluegreen_statemachine::DEPLOYMENT_ASL
            };
            match bluegreen_statemachine::Definition::parse(text) {
                Ok(definition) => {
                    out!("{}", graph::mermaid(&definition));
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e.to_string()),
            }
        }
    }
}

/// Prints `bluegreen: <message>` to stderr and returns the failure status.
fn fail(message: &str) -> ExitCode {
    errln!("bluegreen: {message}");
    ExitCode::FAILURE
}

/// Prints `bluegreen: <message>` to stderr and returns 2, the status of a usage error (as
/// clap's own): the command was not given what it needs, nothing was tried.
fn usage(message: &str) -> ExitCode {
    errln!("bluegreen: {message}");
    ExitCode::from(2)
}

fn validate(configs: &[std::path::PathBuf]) -> ExitCode {
    let mut problems = Vec::new();
    for (name, text) in [
        (
            "statemachine/deployment.asl.json",
            bluegreen_statemachine::DEPLOYMENT_ASL,
        ),
        (
            "statemachine/intake.asl.json",
            bluegreen_statemachine::INTAKE_ASL,
        ),
    ] {
        match bluegreen_statemachine::Definition::parse(text) {
            Ok(d) => problems.extend(
                bluegreen_statemachine::validate::validate(&d)
                    .into_iter()
                    .map(|p| format!("{name}: {p}")),
            ),
            Err(e) => problems.push(format!("{name}: {e}")),
        }
    }
    problems.extend(config_cmd::problems_of(configs));
    if problems.is_empty() {
        outln!(
            "ok: 2 definitions and {} config file(s) are valid",
            configs.len()
        );
        ExitCode::SUCCESS
    } else {
        for p in &problems {
            errln!("{p}");
        }
        fail(&format!("{} problem(s)", problems.len()))
    }
}
