//! `bluegreen`: run a deployment locally with the real state machine definitions, decide
//! approvals, validate definitions and configs, and draw the flow.
//!
//! Every command uses the default AWS credential chain and region; `AWS_ENDPOINT_URL` points it
//! at an emulator (that is how `scripts/demo` runs it).

mod graph;
mod run;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "bluegreen",
    version,
    about = "Blue/green deployments for ECS services"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a deployment locally: the intake and deployment definitions execute in-process,
    /// calling the real steps against AWS (or the emulator in AWS_ENDPOINT_URL).
    Run(run::RunArgs),
    /// Approve a deployment that awaits approval (records the decision the local runner waits on).
    Approve {
        /// The deployment id.
        deployment_id: String,
        /// Who approves (must be a listed approver).
        #[arg(long, env = "BLUEGREEN_APPROVER", default_value = "local")]
        approver: String,
    },
    /// Reject a deployment that awaits approval.
    Reject {
        /// The deployment id.
        deployment_id: String,
        /// Why (required).
        #[arg(long)]
        reason: String,
        /// Who rejects (must be a listed approver).
        #[arg(long, env = "BLUEGREEN_APPROVER", default_value = "local")]
        approver: String,
    },
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
    match cli.command {
        Command::Run(args) => run::run(args).await,
        Command::Approve {
            deployment_id,
            approver,
        } => decide(&deployment_id, true, approver, None).await,
        Command::Reject {
            deployment_id,
            reason,
            approver,
        } => decide(&deployment_id, false, approver, Some(reason)).await,
        Command::Validate { configs } => validate(&configs),
        Command::Graph { intake } => {
            let text = if intake {
                bluegreen_statemachine::INTAKE_ASL
            } else {
                bluegreen_statemachine::DEPLOYMENT_ASL
            };
            match bluegreen_statemachine::Definition::parse(text) {
                Ok(definition) => {
                    print!("{}", graph::mermaid(&definition));
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e.to_string()),
            }
        }
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("bluegreen: {message}");
    ExitCode::FAILURE
}

async fn decide(
    deployment_id: &str,
    approve: bool,
    approver: String,
    reason: Option<String>,
) -> ExitCode {
    let ctx = bluegreen::Context::from_env().await;
    let decision = bluegreen::steps::approval::Decision {
        approve,
        approver,
        reason,
        channel: "cli".into(),
    };
    match bluegreen::steps::approval::decide(&ctx, deployment_id, &decision).await {
        Ok(_token) => {
            println!(
                "{} {deployment_id} as {}",
                if approve { "approved" } else { "rejected" },
                decision.approver
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("{}: {e}", e.name())),
    }
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
    for path in configs {
        let shown = path.display();
        let result = std::fs::read_to_string(path)
            .map_err(|e| bluegreen::StepError::ConfigInvalid(vec![e.to_string()]))
            .and_then(|text| bluegreen::config::ServiceConfig::from_toml(&text))
            .and_then(|config| config.validate());
        if let Err(bluegreen::StepError::ConfigInvalid(list)) = result {
            problems.extend(list.into_iter().map(|p| format!("{shown}: {p}")));
        }
    }
    if problems.is_empty() {
        println!(
            "ok: 2 definitions and {} config file(s) are valid",
            configs.len()
        );
        ExitCode::SUCCESS
    } else {
        for p in &problems {
            eprintln!("{p}");
        }
        fail(&format!("{} problem(s)", problems.len()))
    }
}
