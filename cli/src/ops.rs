//! Operator commands: status and history read records and AWS with the caller's credentials;
//! approve/reject, rollback, unlock, abort and retry go through the operator API ([`api`]),
//! which acts as the principal AWS verified.

use std::process::ExitCode;

use bluegreen::config_store::ConfigStore;
use bluegreen::record::{Deployment, Records, Verdict};
use bluegreen::steps::approval::{self, Decided, Decision, Delivered};
use bluegreen::{Context, StepError, StepResult, identity, operator, release};
use bluegreen_console::api::ActionRequest;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::{self, Failure, Route};
use crate::output::{Output, table};

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
    // Each stored config on its own: one team's unreadable config must not hide every other
    // service's status. It is named after the table, and the exit status says something is
    // wrong.
    let stored = match service {
        Some(name) => store.load(name).await.map(|c| vec![Ok(c)]),
        None => store.load_each().await,
    };
    let stored = match stored {
        Ok(s) => s,
        Err(e) => return out.error(&e),
    };
    let (mut configs, mut invalid) = (Vec::new(), Vec::new());
    for config in stored {
        match config {
            Ok(config) => configs.push(config),
            Err(bad) => invalid.push(bad),
        }
    }
    configs.sort_by(|a, b| a.name.cmp(&b.name));
    if configs.is_empty() && invalid.is_empty() {
        // Nothing to show: say whether that is because nothing is configured or because
        // bluegreen is not installed here (its tables missing), never an empty table and 0 for
        // an installation that is not there.
        if let Err(e) = Records::new(&ctx).recent(1).await {
            return out.error(&e);
        }
        errln!(
            "no service is configured under {} (bluegreen config put <file>)",
            ctx.settings.config_prefix
        );
    }
    let mut lines = Vec::new();
    for config in configs {
        match bluegreen_ops::status::of(&ctx, config).await {
            Ok(line) => lines.push(line),
            Err(e) => return out.error(&e),
        }
    }
    let shown = show_status(out, &lines);
    if invalid.is_empty() {
        return shown;
    }
    let problems: Vec<String> = invalid.into_iter().flat_map(|bad| bad.problems).collect();
    out.error(&StepError::ConfigInvalid(problems))
}

/// `status`'s table (or JSON) of the services' lines.
fn show_status(out: Output, lines: &[bluegreen_ops::status::ServiceStatus]) -> ExitCode {
    out.show(&lines, |&lines| {
        if lines.is_empty() {
            return; // said on stderr: nothing configured, or every config broken
        }
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
                    l.queued.join(", "),
                ],
                None => vec![
                    l.service.clone(),
                    l.production.clone(),
                    "—".into(),
                    String::new(),
                    String::new(),
                    String::new(),
                    l.queued.join(", "),
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
                "QUEUED",
            ],
            &rows,
        );
        for l in lines {
            for route in &l.routes {
                println!("  {}: also {route}", l.service);
            }
            for problem in &l.guard {
                println!("! {}: {problem}", l.service);
            }
        }
    })
}

/// `bluegreen history <service>`.
pub async fn history(out: Output, service: &str, limit: usize) -> ExitCode {
    let ctx = Context::from_env().await;
    if let Err(e) = ConfigStore::new(&ctx).load(service).await {
        return out.error(&e);
    }
    let all = match Records::new(&ctx).for_service(service, limit).await {
        Ok(all) => all,
        Err(e) => return out.error(&e),
    };
    out.show(&all, |all| {
        let rows: Vec<Vec<String>> = all
            .iter()
            .map(|d| {
                let decided = d.approval.as_ref().map(decision).unwrap_or_default();
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

/// An approval's decision for `history`: who decided, and through what; a timeout was
/// nobody's decision and says when the window closed.
fn decision(a: &bluegreen::record::ApprovalState) -> String {
    use bluegreen::record::Verdict;
    match (a.decision, a.approver.as_deref()) {
        (None, _) => String::new(),
        (Some(Verdict::TimedOut), _) => {
            format!("timed out at {} (nobody decided)", when(a.expires_at))
        }
        (Some(verdict), Some(approver)) => match a.channel.as_deref() {
            Some(channel) => format!("{} by {approver} ({channel})", verdict.outcome().words()),
            None => format!("{} by {approver}", verdict.outcome().words()),
        },
        (Some(verdict), None) => verdict.outcome().words().to_owned(),
    }
}

/// The caller's AWS identity, or the error that says why there is none.
async fn who(ctx: &Context) -> Result<String, StepError> {
    identity::caller_arn(ctx).await
}

/// `s` when it can be one segment of an API path (deployment ids and service names are made
/// of these characters; anything else is refused before a request is signed).
fn segment(kind: &str, s: &str) -> Result<String, Failure> {
    let valid = !s.is_empty()
        && s.len() <= 200
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s != "."
        && s != "..";
    if valid {
        Ok(s.to_owned())
    } else {
        Err(Failure {
            name: "EventMalformed".into(),
            message: format!("{s:?} is not a {kind}"),
        })
    }
}

fn step_failure(e: StepError) -> Failure {
    Failure {
        name: e.name().into(),
        message: e.to_string(),
    }
}

/// Runs an operator action through the operator API (`path`), or — against an emulator on
/// this machine — in this process as the caller's AWS identity, and shows its answer.
async fn as_operator<T, Fut>(
    out: Output,
    path: Result<String, Failure>,
    body: ActionRequest,
    direct: impl FnOnce(Context, String) -> Fut,
    text: impl FnOnce(&T),
) -> ExitCode
where
    T: Serialize + DeserializeOwned,
    Fut: std::future::Future<Output = StepResult<T>>,
{
    as_operator_judged(out, path, body, direct, text, |_| true).await
}

/// [`as_operator`], exiting 1 when `succeeded` says the answer, though given, is not what
/// was asked for (a retried ending that still needs attention).
async fn as_operator_judged<T, Fut>(
    out: Output,
    path: Result<String, Failure>,
    body: ActionRequest,
    direct: impl FnOnce(Context, String) -> Fut,
    text: impl FnOnce(&T),
    succeeded: impl FnOnce(&T) -> bool,
) -> ExitCode
where
    T: Serialize + DeserializeOwned,
    Fut: std::future::Future<Output = StepResult<T>>,
{
    let done = async {
        let path = path?;
        match api::route().await? {
            Route::Api(client) => client.post::<T>(&path, &body).await,
            Route::Direct(ctx) => {
                let caller = who(&ctx).await.map_err(step_failure)?;
                direct(*ctx, caller).await.map_err(step_failure)
            }
        }
    };
    match done.await {
        Ok(done) if succeeded(&done) => out.show(&done, text),
        Ok(done) => {
            out.show(&done, text);
            ExitCode::FAILURE
        }
        Err(f) => out.failure(&f.name, &f.message),
    }
}

/// `bluegreen approve|reject <deployment-id>`: the operator API records the decision once as
/// the caller's IAM identity and sends it to the waiting execution; repeating a decision that
/// was recorded but not delivered sends it again.
pub async fn decide(
    out: Output,
    deployment_id: &str,
    approve: bool,
    reason: Option<String>,
) -> ExitCode {
    let verb = if approve { "approve" } else { "reject" };
    // Where local runs are recorded: the emulator the SDK resolves (a profile may name it).
    let endpoint = Context::from_env().await.endpoint_url;
    let path = segment("deployment id", deployment_id)
        .map(|id| format!("/api/v1/deployments/{id}/{verb}"));
    let direct_reason = reason.clone();
    as_operator(
        out,
        path,
        ActionRequest {
            reason,
            ..ActionRequest::default()
        },
        |ctx, approver| async move {
            let decision = Decision {
                approve,
                approver: approver.clone(),
                reason: direct_reason,
                channel: "cli".into(),
                link_nonce: None,
            };
            let delivered = approval::decide_and_send(&ctx, deployment_id, &decision).await?;
            Ok(Decided {
                deployment_id: deployment_id.to_owned(),
                decision: Verdict::of(approve),
                approver,
                delivered,
            })
        },
        |d: &Decided| {
            outln!(
                "{} {} as {}; {}",
                d.decision,
                d.deployment_id,
                d.approver,
                match d.delivered {
                    Delivered::StepFunctions => "Step Functions has been told".to_owned(),
                    Delivered::LocalRunner => local_pickup(endpoint.as_deref(), &d.deployment_id),
                }
            )
        },
    )
    .await
}

/// Who picks a decision recorded for a local run up: the `bluegreen run` waiting for it, when
/// its process still runs; else nobody, and the person is told how to end the deployment.
fn local_pickup(endpoint: Option<&str>, deployment_id: &str) -> String {
    match bluegreen_statemachine::local_runs::run_of(endpoint, deployment_id) {
        Some(run) if run.alive => format!("the local run (process {}) picks it up", run.pid),
        _ => format!(
            "no local run waits for it (the `bluegreen run` that asked is not running): \
             `bluegreen reconcile` ends {deployment_id} as the stack's reconciler would"
        ),
    }
}

/// `bluegreen rollback <service>`.
pub async fn rollback(out: Output, service: &str) -> ExitCode {
    as_operator(
        out,
        segment("service name", service).map(|s| format!("/api/v1/services/{s}/rollback")),
        ActionRequest::default(),
        |ctx, operator| async move { operator::manual_rollback(&ctx, service, &operator).await },
        |d: &operator::ManualRollback| {
            outln!(
                "rolled back {} ({}): {}",
                d.service,
                d.deployment_id,
                d.detail
            );
            print_next(d.next_deployment.as_deref());
        },
    )
    .await
}

/// `bluegreen redeploy <service>`: one request id per command, so a request the API answered
/// but whose answer was lost, sent again, finds the deployment it started.
pub async fn redeploy(out: Output, service: &str) -> ExitCode {
    let request_id = uuid::Uuid::new_v4().to_string();
    let direct_id = request_id.clone();
    as_operator(
        out,
        segment("service name", service).map(|s| format!("/api/v1/services/{s}/redeploy")),
        ActionRequest {
            request_id: Some(request_id),
            ..ActionRequest::default()
        },
        |ctx, operator| async move {
            release::redeploy(&ctx, service, &operator, &direct_id).await
        },
        print_requested,
    )
    .await
}

/// `bluegreen deploy <service> --tag T | --digest D` (clap makes sure exactly one is given;
/// the API checks again).
pub async fn deploy(
    out: Output,
    service: &str,
    tag: Option<String>,
    digest: Option<String>,
) -> ExitCode {
    let request_id = uuid::Uuid::new_v4().to_string();
    let direct_id = request_id.clone();
    let request = ActionRequest {
        request_id: Some(request_id),
        tag,
        digest,
        ..ActionRequest::default()
    };
    let image = match request.image() {
        Ok(image) => image,
        Err(e) => return out.failure(e.name(), &e.to_string()),
    };
    as_operator(
        out,
        segment("service name", service).map(|s| format!("/api/v1/services/{s}/deploy")),
        request,
        |ctx, operator| async move {
            release::deploy(&ctx, service, &image, &operator, &direct_id).await
        },
        print_requested,
    )
    .await
}

/// `bluegreen rollback <service> --to <deployment-id>`.
pub async fn rollback_to(out: Output, service: &str, to: &str) -> ExitCode {
    let request_id = uuid::Uuid::new_v4().to_string();
    let direct_id = request_id.clone();
    let target = match segment("deployment id", to) {
        Ok(target) => target,
        Err(f) => return out.failure(&f.name, &f.message),
    };
    as_operator(
        out,
        segment("service name", service).map(|s| format!("/api/v1/services/{s}/rollback-to")),
        ActionRequest {
            request_id: Some(request_id),
            to: Some(target.clone()),
            ..ActionRequest::default()
        },
        |ctx, operator| async move {
            release::roll_back_to(&ctx, service, &target, &operator, &direct_id).await
        },
        print_requested,
    )
    .await
}

fn print_requested(r: &release::Requested) {
    outln!(
        "deploying {} to {} as {}: {} ({}), {:?}",
        r.image,
        r.service,
        r.deployment_id,
        r.tag,
        r.operator,
        r.outcome
    );
    if r.execution_started {
        outln!(
            "its execution was started; follow it with `bluegreen wait --deployment {}`",
            r.deployment_id
        );
    } else if r.outcome == bluegreen::steps::prepare::PreparedOutcome::Queued {
        outln!("queued behind the running deployment: it starts when that one ends");
    } else if r.outcome == bluegreen::steps::prepare::PreparedOutcome::Started {
        outln!(
            "its execution is not running yet: in the stack the reconciler's sweep starts it \
             within minutes; against an emulator run it here: bluegreen run --deployment {}",
            r.deployment_id
        );
    }
}

/// `bluegreen unlock <service>`.
pub async fn unlock(out: Output, service: &str) -> ExitCode {
    as_operator(
        out,
        segment("service name", service).map(|s| format!("/api/v1/services/{s}/unlock")),
        ActionRequest::default(),
        |ctx, operator| async move { operator::unlock(&ctx, service, &operator).await },
        |d: &operator::Unlocked| {
            outln!(
                "unlocked {} (held by {}) as {}",
                d.service,
                d.released_from,
                d.operator
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
        segment("deployment id", deployment_id).map(|id| format!("/api/v1/deployments/{id}/abort")),
        ActionRequest::default(),
        |ctx, operator| async move { operator::abort(&ctx, deployment_id, &operator).await },
        |d: &operator::Aborted| {
            outln!("{} is {}: {}", d.deployment_id, d.status, d.detail);
            print_next(d.next_deployment.as_deref());
        },
    )
    .await
}

/// `bluegreen retry <deployment-id>`: exit 1 when the ending ran again and the deployment
/// still needs attention (the cause is still there), as when the retry was refused.
pub async fn retry(out: Output, deployment_id: &str) -> ExitCode {
    as_operator_judged(
        out,
        segment("deployment id", deployment_id).map(|id| format!("/api/v1/deployments/{id}/retry")),
        ActionRequest::default(),
        |ctx, operator| async move {
            operator::retry(&ctx, deployment_id, &operator, operator::RETRY_WAIT_LIMIT).await
        },
        |d: &operator::Retried| {
            outln!(
                "re-ran {} of {}: {:?}: {}",
                d.ending,
                d.deployment_id,
                d.status,
                d.detail
            );
            print_next(d.next_deployment.as_deref());
        },
        |d: &operator::Retried| d.status != bluegreen::record::Status::NeedsAttention,
    )
    .await
}

fn print_next(next: Option<&str>) {
    if let Some(next) = next {
        if std::env::var_os("BLUEGREEN_DEPLOYMENT_MACHINE_ARN").is_some() {
            outln!("queued deployment {next} now holds the lock; its execution was started");
        } else {
            outln!(
                "queued deployment {next} now holds the lock: start the deployment state \
                 machine with {{\"deployment_id\": \"{next}\"}} (name {next}), or set \
                 BLUEGREEN_DEPLOYMENT_MACHINE_ARN and bluegreen starts it"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bluegreen::record::{ApprovalState, Verdict};

    fn approval(decision: Option<Verdict>, approver: Option<&str>) -> ApprovalState {
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-21T14:00:00Z")
            .unwrap()
            .to_utc();
        ApprovalState {
            requested_at: at,
            expires_at: at,
            decision,
            approver: approver.map(str::to_owned),
            decided_at: None,
            reason: None,
            channel: approver.map(|_| "console".to_owned()),
            link_nonce: None,
            delivered_at: None,
        }
    }

    /// Issue 29 item 9: a timed-out approval was shown as `timed_out by ? (?)`.
    #[test]
    fn history_says_who_decided_and_a_timeout_as_nobodys_decision() {
        let timed_out = decision(&approval(Some(Verdict::TimedOut), None));
        assert_eq!(
            timed_out,
            "timed out at 2026-11-21 14:00:00 (nobody decided)"
        );
        let approved = decision(&approval(
            Some(Verdict::Approved),
            Some("alice@example.com"),
        ));
        assert_eq!(approved, "approved by alice@example.com (console)");
        assert_eq!(decision(&approval(None, None)), "");
    }
}
