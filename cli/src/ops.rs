//! Operator commands over deployment records and AWS: status, history, approve/reject,
//! rollback, unlock, abort, retry. Identity for decisions and rollbacks is the caller's AWS principal (STS).

use std::process::ExitCode;

use bluegreen::config_store::ConfigStore;
use bluegreen::record::{Deployment, Records};
use bluegreen::steps::approval::{self, Decision, Delivered};
use bluegreen::{Context, StepError, StepResult, identity, operator, routing};
use serde::Serialize;

use crate::output::{Output, table};

/// One service's line of `status`.
#[derive(Debug, Serialize)]
struct ServiceStatus {
    service: String,
    /// Production routing read from AWS now, e.g. `blue 100%`.
    production: String,
    latest: Option<Deployment>,
}

fn routing_text(state: StepResult<routing::RouteState>) -> String {
    match state {
        Ok(state) => {
            let b = state.percent(bluegreen::Slot::Blue);
            let g = state.percent(bluegreen::Slot::Green);
            match (b, g) {
                (100, _) => "blue 100%".into(),
                (_, 100) => "green 100%".into(),
                _ => format!("blue {b}% / green {g}%"),
            }
        }
        Err(e) => format!("unreadable: {}", e.name()),
    }
}

fn status_name(d: &Deployment) -> String {
    serde_json::to_value(d.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// `bluegreen status [service]`.
pub async fn status(out: Output, service: Option<&str>) -> ExitCode {
    let ctx = Context::from_env().await;
    let store = ConfigStore::new(&ctx);
    let configs = match service {
        Some(name) => store.load(name).await.map(|c| vec![c]),
        None => store.load_all().await,
    };
    let configs = match configs {
        Ok(c) => c,
        Err(e) => return out.error(&e),
    };
    let mut lines = Vec::new();
    for config in configs {
        let latest = match Records::new(&ctx).for_service(&config.name).await {
            Ok(all) => all.into_iter().next(),
            Err(e) => return out.error(&e),
        };
        lines.push(ServiceStatus {
            production: routing_text(routing::read_production(&ctx, &config).await),
            service: config.name,
            latest,
        });
    }
    out.show(&lines, |lines| {
        let rows: Vec<Vec<String>> = lines
            .iter()
            .map(|l| match &l.latest {
                Some(d) => vec![
                    l.service.clone(),
                    l.production.clone(),
                    d.deployment_id.clone(),
                    d.image.tag.clone(),
                    status_name(d),
                    when(d.updated_at),
                ],
                None => vec![
                    l.service.clone(),
                    l.production.clone(),
                    "—".into(),
                    String::new(),
                    String::new(),
                    String::new(),
                ],
            })
            .collect();
        table(
            &[
                "SERVICE",
                "PRODUCTION",
                "LATEST",
                "TAG",
                "STATUS",
                "UPDATED",
            ],
            &rows,
        );
    })
}

/// `bluegreen history <service>`.
pub async fn history(out: Output, service: &str, limit: usize) -> ExitCode {
    let ctx = Context::from_env().await;
    if let Err(e) = ConfigStore::new(&ctx).load(service).await {
        return out.error(&e);
    }
    let mut all = match Records::new(&ctx).for_service(service).await {
        Ok(all) => all,
        Err(e) => return out.error(&e),
    };
    all.truncate(limit);
    out.show(&all, |all| {
        let rows: Vec<Vec<String>> = all
            .iter()
            .map(|d| {
                let decided = d
                    .approval
                    .as_ref()
                    .and_then(|a| {
                        Some(format!(
                            "{} by {} ({})",
                            a.decision.as_deref()?,
                            a.approver.as_deref().unwrap_or("?"),
                            a.channel.as_deref().unwrap_or("?")
                        ))
                    })
                    .unwrap_or_default();
                vec![
                    when(d.created_at),
                    d.deployment_id.clone(),
                    d.image.tag.clone(),
                    status_name(d),
                    decided,
                    d.failure.clone().unwrap_or_default(),
                ]
            })
            .collect();
        table(
            &[
                "CREATED",
                "DEPLOYMENT",
                "TAG",
                "STATUS",
                "DECISION",
                "CAUSE",
            ],
            &rows,
        );
    })
}

/// The caller's AWS identity, or the error that says why there is none.
async fn who(ctx: &Context) -> Result<String, StepError> {
    identity::caller_arn(ctx).await
}

#[derive(Debug, Serialize)]
struct Decided {
    deployment_id: String,
    decision: &'static str,
    approver: String,
    delivered: Delivered,
}

/// `bluegreen approve|reject <deployment-id>`: records the decision once as the caller's IAM
/// identity (channel `cli`), then sends it to the waiting execution.
pub async fn decide(
    out: Output,
    deployment_id: &str,
    approve: bool,
    reason: Option<String>,
) -> ExitCode {
    let ctx = Context::from_env().await;
    let approver = match who(&ctx).await {
        Ok(arn) => arn,
        Err(e) => return out.error(&e),
    };
    let decision = Decision {
        approve,
        approver: approver.clone(),
        reason,
        channel: "cli".into(),
        link_nonce: None,
    };
    match approval::decide_and_send(&ctx, deployment_id, &decision).await {
        Ok(delivered) => out.show(
            &Decided {
                deployment_id: deployment_id.to_owned(),
                decision: if approve { "approved" } else { "rejected" },
                approver,
                delivered,
            },
            |d| {
                println!(
                    "{} {} as {}; {}",
                    d.decision,
                    d.deployment_id,
                    d.approver,
                    match d.delivered {
                        Delivered::StepFunctions => "Step Functions has been told",
                        Delivered::LocalRunner => "the local runner picks it up",
                    }
                )
            },
        ),
        Err(e) => out.error(&e),
    }
}

/// Runs an operator action as the caller's AWS identity and shows its answer.
async fn as_operator<T, Fut>(
    out: Output,
    action: impl FnOnce(Context, String) -> Fut,
    text: impl FnOnce(&T),
) -> ExitCode
where
    T: Serialize,
    Fut: std::future::Future<Output = StepResult<T>>,
{
    let ctx = Context::from_env().await;
    let operator = match who(&ctx).await {
        Ok(arn) => arn,
        Err(e) => return out.error(&e),
    };
    match action(ctx, operator).await {
        Ok(done) => out.show(&done, text),
        Err(e) => out.error(&e),
    }
}

/// `bluegreen rollback <service>`.
pub async fn rollback(out: Output, service: &str) -> ExitCode {
    as_operator(
        out,
        |ctx, operator| async move { operator::manual_rollback(&ctx, service, &operator).await },
        |d| {
            println!(
                "rolled back {} ({}): {}",
                d.service, d.deployment_id, d.detail
            );
            print_next(d.next_deployment.as_deref());
        },
    )
    .await
}

/// `bluegreen unlock <service>`.
pub async fn unlock(out: Output, service: &str) -> ExitCode {
    as_operator(
        out,
        |ctx, operator| async move { operator::unlock(&ctx, service, &operator).await },
        |d| {
            println!(
                "unlocked {} (held by {}) as {}",
                d.service, d.released_from, d.operator
            );
            print_next(d.next_deployment.as_deref());
        },
    )
    .await
}

/// `bluegreen abort <deployment-id>`.
pub async fn abort(out: Output, deployment_id: &str) -> ExitCode {
    as_operator(
        out,
        |ctx, operator| async move { operator::abort(&ctx, deployment_id, &operator).await },
        |d| {
            println!("{} is {:?}: {}", d.deployment_id, d.status, d.detail);
            print_next(d.next_deployment.as_deref());
        },
    )
    .await
}

/// `bluegreen retry <deployment-id>`.
pub async fn retry(out: Output, deployment_id: &str) -> ExitCode {
    as_operator(
        out,
        |ctx, operator| async move { operator::retry(&ctx, deployment_id, &operator).await },
        |d| {
            println!(
                "re-ran {} of {}: {:?}: {}",
                d.ending, d.deployment_id, d.status, d.detail
            );
            print_next(d.next_deployment.as_deref());
        },
    )
    .await
}

fn print_next(next: Option<&str>) {
    if let Some(next) = next {
        if std::env::var_os("BLUEGREEN_DEPLOYMENT_MACHINE_ARN").is_some() {
            println!("queued deployment {next} now holds the lock; its execution was started");
        } else {
            println!(
                "queued deployment {next} now holds the lock: start the deployment state \
                 machine with {{\"deployment_id\": \"{next}\"}} (name {next}), or set \
                 BLUEGREEN_DEPLOYMENT_MACHINE_ARN and bluegreen starts it"
            );
        }
    }
}
