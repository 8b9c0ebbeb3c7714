//! `bluegreen approvers subscribe <service>` and `bluegreen approvers check`: each approver's
//! e-mail subscription filters on their own address, and no subscription on the topic can
//! receive someone else's approval link.

use std::process::ExitCode;

use bluegreen::Context;
use bluegreen::config_store::ConfigStore;
use bluegreen_ops::subscriptions;

use crate::output::{Output, table};

/// Approver subscriptions.
#[derive(clap::Subcommand)]
pub enum ApproversCommand {
    /// Subscribe the service's e-mail approvers to the topic, each with a filter policy that
    /// admits only approval requests for that address (each must confirm the e-mail).
    Subscribe {
        /// The service whose approvers to subscribe.
        service: String,
    },
    /// List every subscription on the topic that could receive another approver's link (no
    /// filter policy, or one that admits several approvers); exit 1 if there is any.
    Check,
}

/// Runs an approvers command.
pub async fn run(out: Output, command: ApproversCommand) -> ExitCode {
    let ctx = Context::from_env().await;
    match command {
        ApproversCommand::Subscribe { service } => {
            let subscribed = match ConfigStore::new(&ctx).load(&service).await {
                Ok(config) => subscriptions::subscribe_approvers(&ctx, &config).await,
                Err(e) => Err(e),
            };
            match subscribed {
                Ok(done) => out.show(&done, |done| {
                    let rows: Vec<Vec<String>> = done
                        .iter()
                        .map(|s| vec![s.approver.clone(), s.subscription_arn.clone()])
                        .collect();
                    table(&["APPROVER", "SUBSCRIPTION"], &rows);
                }),
                Err(e) => out.error(&e),
            }
        }
        ApproversCommand::Check => match subscriptions::audit(&ctx).await {
            Ok(exposed) => {
                let code = out.show(&exposed, |exposed| {
                    if exposed.is_empty() {
                        outln!("every subscription receives only its own approver's links");
                    } else {
                        let rows: Vec<Vec<String>> = exposed
                            .iter()
                            .map(|e| vec![e.endpoint.clone(), e.problem.clone()])
                            .collect();
                        table(&["SUBSCRIPTION", "PROBLEM"], &rows);
                    }
                });
                if exposed.is_empty() {
                    code
                } else {
                    ExitCode::FAILURE
                }
            }
            Err(e) => out.error(&e),
        },
    }
}
