//! The operator commands as a user runs them: the `bluegreen` binary against a moto emulator
//! (AWS_ENDPOINT_URL), deciding as its STS identity, with text and JSON output and exit codes.

#[allow(dead_code)]
#[path = "../../tests/steps/common.rs"]
mod common;

use std::process::Command;

use bluegreen::steps::approval::{self, RequestInput};
use bluegreen_tests::{MOTO_CALLER, World};
use common::*;

/// Runs `bluegreen` against the world's emulator; (exit code, stdout, stderr).
fn bluegreen(world: &World, args: &[&str]) -> (i32, String, String) {
    bluegreen_with(world, args, &[])
}

/// `bluegreen args` pointed at the world's emulator, not yet run.
fn command(world: &World, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bluegreen"));
    command
        .args(args)
        .env("AWS_ENDPOINT_URL", &world.emulator.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE");
    command
}

/// [`bluegreen`] with extra environment variables.
fn bluegreen_with(world: &World, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = command(world, args)
        .envs(env.iter().copied())
        .output()
        .expect("bluegreen runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A deployment awaiting approval with a local runner's token (nothing to deliver to).
async fn awaiting(world: &World) -> String {
    let id = deploy_to_health(world).await;
    approval::request(
        &world.ctx,
        &RequestInput {
            deployment_id: id.clone(),
            task_token: "bluegreen-local:cli-test:Approval:1".into(),
        },
    )
    .await
    .expect("request approval");
    id
}

#[tokio::test]
async fn approve_decides_once_as_the_callers_identity_and_history_shows_it() {
    let world = World::build().await;
    let id = awaiting(&world).await;
    let (code, stdout, stderr) = bluegreen(&world, &["approve", &id]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(&format!("approved {id} as {MOTO_CALLER}")),
        "{stdout}"
    );
    let (code, _, stderr) = bluegreen(&world, &["reject", &id, "--reason", "too late"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("NotAwaitingApproval") && stderr.contains("already approved"),
        "{stderr}"
    );

    let (code, stdout, _) = bluegreen(&world, &["history", "shop"]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains(&id) && stdout.contains(&format!("approved by {MOTO_CALLER} (cli)")),
        "{stdout}"
    );
    let (code, stdout, _) = bluegreen(&world, &["--output", "json", "status", "shop"]);
    assert_eq!(code, 0);
    let status: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(status[0]["service"], "shop");
    assert_eq!(status[0]["production"], "blue 100%");
    assert_eq!(status[0]["latest"]["deployment_id"], id.as_str());
}

#[tokio::test]
async fn refusals_and_unknowns_exit_non_zero_with_the_error_name() {
    let world = World::build().await;
    let (code, _, stderr) = bluegreen(&world, &["rollback", "shop"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("RollbackRefused") && stderr.contains("no successful deployment"),
        "{stderr}"
    );
    let (code, _, stderr) = bluegreen(&world, &["--output", "json", "approve", "shop-nope"]);
    assert_eq!(code, 1);
    let error: serde_json::Value = serde_json::from_str(stderr.trim()).expect("JSON error");
    assert_eq!(error["error"], "DeploymentNotFound");
    let (code, _, stderr) = bluegreen(&world, &["history", "nope"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("ServiceNotFound"), "{stderr}");
    let (code, _, stderr) = bluegreen(&world, &["reject", "shop-x"]);
    assert_eq!(
        code, 2,
        "a rejection without --reason is a usage error: {stderr}"
    );
}

#[tokio::test]
async fn config_put_validates_stores_and_get_reads_back() {
    let world = World::build().await;
    let example = format!(
        "{}/../docs/example-service.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let (code, stdout, stderr) = bluegreen(&world, &["config", "put", &example]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("stored shop in /bluegreen/services/shop"),
        "{stdout}"
    );
    let (code, stdout, _) = bluegreen(&world, &["config", "get", "shop"]);
    assert_eq!(code, 0);
    let stored = bluegreen::config::ServiceConfig::from_toml(&stdout).expect("TOML round trip");
    let original =
        bluegreen::config::ServiceConfig::from_toml(&std::fs::read_to_string(&example).unwrap())
            .unwrap();
    assert_eq!(stored, original);

    let bad = std::env::temp_dir().join(format!("bluegreen-put-{}.toml", std::process::id()));
    std::fs::write(&bad, "name = \"Shop!\"\n").unwrap();
    let (code, _, stderr) = bluegreen(&world, &["config", "put", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(stderr.contains("ConfigInvalid"), "{stderr}");
    let (code, stdout, _) = bluegreen(&world, &["config", "get", "shop"]);
    assert_eq!(code, 0);
    assert_eq!(
        bluegreen::config::ServiceConfig::from_toml(&stdout).unwrap(),
        original,
        "a refused put changed nothing"
    );
}

#[tokio::test]
async fn a_queued_push_says_whom_it_waits_for_and_status_shows_the_deployment_holding_the_service()
{
    let world = World::build().await;
    let first = awaiting(&world).await;
    let event = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/ecr-push-tagged-v3.json"
    );
    let (code, stdout, stderr) = bluegreen(&world, &["run", "--event", event]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let queued = world
        .lock("shop")
        .await
        .and_then(|l| l.queued)
        .expect("the push is queued on the lock");
    assert!(
        stdout.contains(&format!("shop: {queued} queued behind {first}")),
        "{stdout}"
    );
    let (code, stdout, stderr) = bluegreen(&world, &["--output", "json", "status", "shop"]);
    assert_eq!(code, 0, "{stderr}");
    let status: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        status[0]["latest"]["deployment_id"],
        first.as_str(),
        "the deployment awaiting approval, not the newer queued push: {status}"
    );
    assert_eq!(status[0]["queued"], serde_json::json!([queued]));
}

#[tokio::test]
async fn a_missing_table_is_named() {
    let world = World::build().await;
    let (code, _, stderr) = bluegreen_with(
        &world,
        &["history", "shop"],
        &[("BLUEGREEN_DEPLOYMENTS_TABLE", "shop-deployments-typo")],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("DynamoDB table \"shop-deployments-typo\" does not exist"),
        "{stderr}"
    );
}

/// Issue 29 item 2: `--auto-approve` by a caller who cannot approve the service the push
/// deploys is refused before the intake runs — not after the approval window (it used to wait
/// it out, 4 hours by default) — and nothing is started: no record, no lock.
#[tokio::test]
async fn auto_approve_by_a_caller_who_is_not_an_approver_is_refused_before_anything_starts() {
    let world = World::build().await;
    // The caller (moto's identity) is not an approver of this service.
    let mut config = world.config();
    config.approval.approvers = vec!["alice@example.com".into()];
    // Were the check missing, the run would end after this short window, not hang the test.
    config.approval.timeout_seconds = 60;
    world.put_config(&config).await;
    let event = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/ecr-push-tagged.json"
    );
    let args = [
        "run",
        "--event",
        event,
        "--auto-approve",
        "--time-scale",
        "0.001",
    ];
    let (code, stdout, stderr) = bluegreen_async(&world, &args).await;
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!(
            "approves as {}, who is not an approver of shop (its approvers: alice@example.com)",
            bluegreen_tests::MOTO_CALLER
        )),
        "{stderr}"
    );
    assert!(!stdout.contains("== intake"), "nothing ran: {stdout}");
    let records = bluegreen::record::Records::new(&world.ctx)
        .for_service("shop", 10)
        .await
        .unwrap();
    assert!(records.is_empty(), "no deployment prepared: {records:?}");
    let lock = bluegreen::lock::Locks::new(&world.ctx)
        .read("shop")
        .await
        .unwrap();
    assert!(lock.is_none(), "no lock taken: {lock:?}");

    // Listed, the same command gets past the check (and the intake prepares the push). The
    // window long enough for the approver's looks: 60 s at 0.001 is 60 ms of real time.
    config.approval.timeout_seconds = 3600;
    config
        .approval
        .approvers
        .push(bluegreen_tests::MOTO_CALLER.into());
    world.put_config(&config).await;
    let _ecs = bluegreen_tests::Simulator::start(&world);
    let (code, stdout, _) = bluegreen_async(&world, &args).await;
    assert!(stdout.contains("(--auto-approve)"), "approved: {stdout}");
    assert_eq!(code, 0, "{stdout}");
}

/// Issue 29 item 12: `bluegreen abort` of a deployment whose local `run` waits for its
/// approval ends that run — as StopExecution ends the execution on AWS — instead of leaving it
/// to wait out the approval window (here 3,600 s at 0.05: three minutes; it used to, and then
/// printed the service's production as its outcome).
#[tokio::test]
async fn aborting_a_deployment_ends_the_local_run_waiting_for_its_approval() {
    let world = World::build().await;
    let _ecs = bluegreen_tests::Simulator::start(&world);
    let event = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/ecr-push-tagged.json"
    );
    let args = ["run", "--event", event, "--time-scale", "0.05"];
    let run = tokio::process::Command::from(command(&world, &args))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("bluegreen runs");
    let id = deployment_awaiting_approval(&world).await;
    let aborted = tokio::process::Command::from(command(&world, &["abort", &id]))
        .output()
        .await
        .expect("bluegreen abort runs");
    assert_eq!(
        aborted.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&aborted.stderr)
    );
    // A bound, not a sleep: without the fix the run waits three minutes for its approval.
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), run.wait_with_output())
        .await
        .expect("the run ended with the abort, not at the approval timeout")
        .expect("the run's output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("outcome: Aborted"), "{stdout}");
    assert!(stdout.contains("StoppedByOperator"), "{stdout}");
    // Stopped, not caught: the run does not run the ending a second time (the abort did).
    assert!(
        !stdout.lines().any(|l| l.ends_with("> Abort")),
        "the run's own Abort state ran: {stdout}"
    );
}

/// [`bluegreen`], on the test's runtime (a simulator playing ECS runs on it meanwhile).
async fn bluegreen_async(world: &World, args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::from(command(world, args))
        .output()
        .await
        .expect("bluegreen runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Starts `bluegreen run` of the tagged push in the background.
fn run_in_background(world: &World, extra: &[&str]) -> tokio::process::Child {
    let event = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/ecr-push-tagged.json"
    );
    let mut args = vec!["run", "--event", event];
    args.extend(extra);
    tokio::process::Command::from(command(world, &args))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("bluegreen runs")
}

/// Issue 29 items 11 and 12: a `bluegreen run` killed while it waits for the approval. `approve`
/// no longer says "the local runner picks it up" — no run waits for it — and
/// `bluegreen reconcile`, the stack's reconciler for local runs, aborts the orphan (traffic
/// never moved) and frees the service.
#[tokio::test]
async fn a_run_killed_at_its_approval_is_aborted_by_reconcile_and_approve_says_nobody_waits() {
    let world = World::build().await;
    let _ecs = bluegreen_tests::Simulator::start(&world);
    let mut run = run_in_background(&world, &["--time-scale", "0.05"]);
    let id = deployment_awaiting_approval(&world).await;
    // While the run lives, a decision is picked up by it.
    let (_, reconciled, _) = bluegreen_async(&world, &["reconcile", "shop"]).await;
    assert!(reconciled.contains("nothing to do for"), "{reconciled}");
    run.kill().await.expect("killed");
    run.wait().await.expect("reaped");

    let (code, stdout, stderr) = bluegreen_async(&world, &["approve", &id]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("no local run waits for it"), "{stdout}");
    assert!(!stdout.contains("picks it up"), "{stdout}");

    let (code, stdout, stderr) = bluegreen_async(&world, &["reconcile", "shop"]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains(&format!("shop: aborted {id}")), "{stdout}");
    let record = bluegreen::record::Records::new(&world.ctx)
        .get(&id)
        .await
        .unwrap();
    assert_eq!(record.status, bluegreen::record::Status::Aborted);
    assert_eq!(world.lock_holder().await, None, "the service is free");
    assert_eq!(
        world.production().await.live().unwrap(),
        bluegreen::Slot::Blue,
        "production never moved"
    );
}

/// Issue 29 item 11: a `bluegreen run` killed after the switch left its service locked in
/// `baking`: `abort` refused ("traffic may have moved"). `reconcile` marks it as needing
/// attention, as the stack's reconciler would (it will not guess between finishing and rolling
/// back), and `retry` then rolls it back: production on blue again, the lock free.
#[tokio::test]
async fn a_run_killed_after_the_switch_is_marked_by_reconcile_and_retry_rolls_it_back() {
    let world = World::build().await;
    let mut config = world.config();
    config.bake.seconds = 600; // 30 s at 0.05: long enough to be killed in
    world.put_config(&config).await;
    let _ecs = bluegreen_tests::Simulator::start(&world);
    let mut run = run_in_background(&world, &["--auto-approve", "--time-scale", "0.05"]);
    let id = loop {
        let baking = bluegreen::record::Records::new(&world.ctx)
            .with_status(bluegreen::record::Status::Baking)
            .await
            .unwrap();
        if let Some(d) = baking.first() {
            break d.deployment_id.clone();
        }
        assert!(
            run.try_wait().unwrap().is_none(),
            "the run ended before it baked"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    run.kill().await.expect("killed");
    run.wait().await.expect("reaped");
    let (code, _, stderr) = bluegreen_async(&world, &["abort", &id]).await;
    assert_eq!(code, 1, "{stderr}");

    let (code, stdout, stderr) = bluegreen_async(&world, &["reconcile"]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("shop: needs attention: {id}")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("bluegreen retry {id}")),
        "{stdout}"
    );

    let (code, stdout, stderr) = bluegreen_async(&world, &["retry", &id]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    let record = bluegreen::record::Records::new(&world.ctx)
        .get(&id)
        .await
        .unwrap();
    assert_eq!(
        record.status,
        bluegreen::record::Status::RolledBack,
        "{stdout}"
    );
    assert_eq!(world.lock_holder().await, None);
    assert_eq!(
        world.production().await.live().unwrap(),
        bluegreen::Slot::Blue
    );
}

/// The rejection reason an attacker holding one approval link sent (issue 33), whole.
const HOSTILE_REASON: &str = "ünïcødé 🚀 \u{202e}RTL\u{202c} \x00NUL \x07BEL \x1b[31mANSI-RED\x1b[0m \x1b]0;pwned-title\x07 \r\nX-Injected: header\r\n<svg onload=alert(1)>";

/// The first character in `output` a screen would act on or hide (a control other than the
/// printer's own line feeds, a bidi control, an invisible character), if any.
fn acted_on(output: &str) -> Option<(usize, char)> {
    output
        .chars()
        .enumerate()
        .find(|(_, c)| *c != '\n' && bluegreen::text::is_hidden(*c))
}

/// Waits (polling the table) until the service has a deployment awaiting approval.
async fn deployment_awaiting_approval(world: &World) -> String {
    use bluegreen::record::{Records, Status};
    for _ in 0..600 {
        let waiting = Records::new(&world.ctx)
            .with_status(Status::AwaitingApproval)
            .await
            .expect("records readable");
        if let Some(d) = waiting.first() {
            return d.deployment_id.clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no deployment reached its approval within a minute");
}

#[tokio::test]
async fn a_hostile_reason_is_refused_at_the_console_and_a_stored_one_is_shown_never_acted_on() {
    use bluegreen::record::{RecordedDecision, Records, Status, TimelineEntry, Verdict};
    let world = World::build().await.with_topic();
    let _ecs = bluegreen_tests::Simulator::start(&world);
    let event = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/ecr-push-tagged.json"
    );
    let mut run = command(&world, &["run", "--event", event, "--time-scale", "0.01"]);
    run.env("BLUEGREEN_TOPIC_ARN", &world.topic_arn);
    let mut run = tokio::process::Command::from(run);
    let run = tokio::spawn(async move { run.output().await.expect("bluegreen runs") });
    let id = deployment_awaiting_approval(&world).await;

    // 1. Through the console (as its operator, with the page's form token): refused, named,
    //    nothing recorded or sent.
    let listener = bluegreen_tests::serving::loopback_listener().await;
    let address = listener.local_addr().unwrap();
    let app =
        bluegreen_console::local::app(world.ctx.clone(), address, Some(MOTO_CALLER.to_owned()));
    let console = bluegreen_tests::serving::serve_local_console(app, listener);
    let client = reqwest::Client::new();
    let page_url = format!("{}/deployments/{id}", console.url);
    let page = client
        .get(&page_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page's form token")
        .to_owned();
    let refused = client
        .post(format!("{page_url}/decision"))
        .form(&[
            ("decision", "reject"),
            ("reason", HOSTILE_REASON),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), reqwest::StatusCode::BAD_REQUEST);
    let refusal = refused.text().await.unwrap();
    assert!(
        refusal.contains("InputRefused") && refusal.contains("reason: contains the control"),
        "{refusal}"
    );
    assert_eq!(acted_on(&refusal), None, "{refusal}");
    let unchanged = Records::new(&world.ctx).get(&id).await.unwrap();
    assert_eq!(unchanged.status, Status::AwaitingApproval);
    assert_eq!(unchanged.approval.as_ref().unwrap().decision, None);
    let stored = serde_json::to_string(&unchanged).unwrap();
    assert!(
        !stored.contains("pwned"),
        "nothing of the reason was stored"
    );

    // 2. What an older version or a hand edit could have stored: the same reason, raw. Every
    //    output shows it and none acts on it.
    let now = world.now();
    let recorded = Records::new(&world.ctx)
        .record_decision(
            &id,
            &RecordedDecision {
                verdict: Verdict::Rejected,
                approver: MOTO_CALLER,
                reason: Some(HOSTILE_REASON),
                channel: "console",
                link_nonce: None,
            },
            TimelineEntry {
                step: "approval".into(),
                at: now,
                outcome: Verdict::Rejected.outcome(),
                detail: format!("by {MOTO_CALLER} via console: {HOSTILE_REASON}"),
            },
        )
        .await
        .unwrap();
    assert!(recorded.is_some(), "the raw decision was planted");
    let ran = run.await.unwrap();
    let stdout = String::from_utf8_lossy(&ran.stdout);
    assert_eq!(ran.status.code(), Some(1), "{stdout}");
    assert_eq!(acted_on(&stdout), None, "the runner's output: {stdout}");
    let outcome = stdout
        .lines()
        .find(|l| l.contains("outcome:"))
        .expect("an outcome line");
    assert!(
        outcome.contains("ApprovalRejected")
            && outcome.contains("\\u202eRTL\\u202c \\x00NUL \\x07BEL \\x1b[31mANSI-RED")
            && outcome.contains("\\r\\nX-Injected: header\\r\\n<svg"),
        "one line, every control shown: {outcome}"
    );

    let notices = world.published().await;
    let aborted = notices
        .iter()
        .find(|n| n["attributes"]["kind"] == "aborted")
        .expect("an aborted notice");
    for part in ["subject", "message"] {
        let text = aborted[part].as_str().unwrap();
        assert_eq!(acted_on(text), None, "the notice's {part}: {text}");
    }
    assert!(
        aborted["message"]
            .as_str()
            .unwrap()
            .contains("\\x1b]0;pwned-title\\x07"),
        "{aborted}"
    );

    let (code, history, _) = bluegreen(&world, &["history", "shop"]);
    assert_eq!(code, 0);
    assert_eq!(acted_on(&history), None, "history: {history}");
    let rows: Vec<&str> = history.lines().collect();
    assert_eq!(rows.len(), 2, "a header and exactly one row: {history}");
    assert!(
        rows[1].contains(&id) && rows[1].contains("\\u202e"),
        "{history}"
    );
    let (code, json, _) = bluegreen(&world, &["--output", "json", "history", "shop"]);
    assert_eq!(code, 0);
    assert_eq!(acted_on(&json), None, "history JSON: {json}");
    let parsed: serde_json::Value = serde_json::from_str(&json).expect("still JSON");
    assert_eq!(
        parsed[0]["approval"]["reason"], HOSTILE_REASON,
        "JSON's escapes read back as what was stored"
    );
    let (code, status, _) = bluegreen(&world, &["status"]);
    assert_eq!(code, 0);
    assert_eq!(acted_on(&status), None, "status: {status}");
    assert_eq!(status.lines().count(), 2, "{status}");

    let page = client
        .get(&page_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(acted_on(&page), None, "the console page");
    assert!(
        page.contains("\\x1b[31mANSI-RED") && page.contains("&lt;svg onload"),
        "shown, escaped: {page}"
    );
}

/// One team's unreadable config does not hide the other services: `status` shows every service
/// it can read, then names the broken parameter and exits 1 (before, the whole command failed
/// with the parse error and showed nothing).
#[tokio::test]
async fn status_shows_every_readable_service_and_names_an_unreadable_config() {
    let world = World::build().await;
    let prefix = world.ctx.settings.config_prefix.trim_end_matches('/');
    let broken = format!("{prefix}/broken-team");
    aws_sdk_ssm::Client::new(&world.sdk)
        .put_parameter()
        .name(&broken)
        .value("{not json")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .expect("store an unparsable config");

    let (code, stdout, stderr) = bluegreen(&world, &["status"]);
    assert_eq!(
        code, 1,
        "something is wrong, and the exit status says so: {stderr}"
    );
    let rows: Vec<&str> = stdout.lines().collect();
    assert_eq!(rows.len(), 2, "the header and shop's row: {stdout}");
    assert!(rows[1].starts_with("shop "), "{stdout}");
    assert!(
        stderr.contains("ConfigInvalid") && stderr.contains(&broken),
        "the broken parameter is named: {stderr}"
    );

    let (code, json, _) = bluegreen(&world, &["--output", "json", "status"]);
    assert_eq!(code, 1);
    let parsed: serde_json::Value = serde_json::from_str(&json).expect("JSON on stdout");
    assert_eq!(parsed[0]["service"], "shop", "{json}");

    // Asked for by name, a readable service is not affected at all.
    let (code, _, stderr) = bluegreen(&world, &["status", "shop"]);
    assert_eq!(code, 0, "{stderr}");
}

/// `status` where bluegreen is not installed (its deployments table missing) fails naming the
/// table, instead of an empty table and exit 0; where nothing is configured it says so.
#[tokio::test]
async fn status_without_an_installation_names_what_is_missing() {
    let world = World::build().await;
    let empty = [("BLUEGREEN_CONFIG_PREFIX", "/nobody/")];
    let (code, stdout, stderr) = bluegreen_with(
        &world,
        &["status"],
        &[empty[0], ("BLUEGREEN_DEPLOYMENTS_TABLE", "not-installed")],
    );
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stderr.contains("ResourceNotFound") && stderr.contains("not-installed"),
        "{stderr}"
    );
    assert!(stdout.is_empty(), "no empty table: {stdout}");

    let (code, stdout, stderr) = bluegreen_with(&world, &["status"], &empty);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("no service is configured under /nobody/"),
        "{stdout}{stderr}"
    );
}

/// `doctor <service>` for a service with no stored config still checks the installation and
/// reports both (before, it stopped at `ServiceNotFound` and said nothing of a missing table).
#[tokio::test]
async fn doctor_for_an_unconfigured_service_reports_it_beside_the_installations_findings() {
    let world = World::build().await;
    let (code, stdout, stderr) = bluegreen_with(
        &world,
        &["doctor", "nosuch"],
        &[("BLUEGREEN_DEPLOYMENTS_TABLE", "not-installed")],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stdout.contains("service-not-configured  nosuch")
            && stdout.contains("no config is stored for nosuch under /bluegreen/services/"),
        "{stdout}"
    );
    assert!(
        stdout.contains("table-missing  not-installed"),
        "the installation is checked too: {stdout}"
    );
    assert!(!stderr.contains("ServiceNotFound"), "{stderr}");

    let (code, stdout, _) = bluegreen(&world, &["doctor", "shop"]);
    assert!(
        !stdout.contains("service-not-configured"),
        "{code}: {stdout}"
    );
}

/// Issue 29 item 13: `bluegreen retry` whose ending needs attention again (here: the production
/// migration failed, so production's schema is unknown and no ending may release the service)
/// exits 1, not 0 — it printed "re-ran" and exited 0 while the deployment still needed a
/// person.
#[tokio::test]
async fn a_retry_that_still_needs_attention_exits_1() {
    use bluegreen::record::{Change, Records, Status, TaskState, TrackedTask};
    use bluegreen::steps::reconcile::{self, EndingFailure};
    let world = World::build().await;
    let id = deploy_to_health(&world).await;
    let failed_migration = TrackedTask {
        task_arn: "arn:aws:ecs:us-east-1:123456789012:task/shop-cluster/0a1b2c".into(),
        started_at: world.now(),
        state: TaskState::Failed,
        detail: "exit code 3".into(),
    };
    Records::new(&world.ctx)
        .update(&id, Change::new().production_migration(&failed_migration))
        .await
        .unwrap();
    let failure = EndingFailure {
        deployment_id: id.clone(),
        error: Some(bluegreen::steps::CaughtError {
            error: "MigrationFailed".into(),
            cause: "exit code 3".into(),
        }),
        state: None,
    };
    let ended = reconcile::ending_failed(&world.ctx, &failure)
        .await
        .unwrap();
    assert_eq!(ended.status, Status::NeedsAttention);

    let (code, stdout, stderr) = bluegreen_async(&world, &["retry", &id]).await;
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("NeedsAttention"), "{stdout}");
    let record = Records::new(&world.ctx).get(&id).await.unwrap();
    assert_eq!(record.status, Status::NeedsAttention);
}

/// `bluegreen metrics` over a seeded history (numbers worked out by hand in
/// `bluegreen_tests::history::standard`): text and JSON, one service and every service, and a
/// window that is not one.
#[tokio::test]
async fn metrics_shows_the_four_numbers_of_a_seeded_history() {
    let world = World::build().await;
    let history = bluegreen_tests::history::standard(chrono::Utc::now());
    bluegreen_tests::history::seed(&world.ctx, &world.config(), &history).await;

    let (code, stdout, stderr) = bluegreen(&world, &["--output", "json", "metrics", "shop"]);
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let shop = &report["metrics"][0];
    assert_eq!(shop["service"], "shop");
    assert_eq!(shop["deployments"], 4);
    assert_eq!(shop["reached_production"], 3);
    assert_eq!(shop["succeeded"], 2);
    assert_eq!(shop["lead_time"]["median_seconds"], 20 * 60);
    assert_eq!(shop["lead_time"]["p90_seconds"], 40 * 60);
    assert_eq!(shop["change_failures"], 1);
    assert_eq!(shop["time_to_restore"]["median_seconds"], 10 * 60);
    assert_eq!(shop["unrestored"], 0);
    let per_day = shop["per_day"].as_f64().unwrap();
    assert!((per_day - 2.0 / 30.0).abs() < 1e-6, "{per_day}");
    let steps: Vec<&str> = report["step_medians"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps[..5],
        [
            "prepare",
            "migrate",
            "launch_preprod",
            "health_check",
            "approval"
        ]
    );

    let (code, stdout, stderr) = bluegreen(&world, &["metrics", "--since", "36h"]);
    assert_eq!(code, 0, "{stderr}");
    let shop_row = stdout
        .lines()
        .find(|l| l.starts_with("shop"))
        .expect(&stdout);
    // Only v4 (aborted before production) was made in the last 36 hours.
    let cells: Vec<&str> = shop_row.split_whitespace().collect();
    assert_eq!(cells[1..4], ["1", "0", "0"], "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("(all)")), "{stdout}");

    let (code, stdout, _) = bluegreen(&world, &["metrics", "shop"]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("20m 00s / 40m 00s") && stdout.contains("33% (1)"),
        "{stdout}"
    );
    assert!(stdout.contains("median time per step"), "{stdout}");

    let (code, _, stderr) = bluegreen(&world, &["metrics", "--since", "last tuesday"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("ConfigInvalid") && stderr.contains("not a window start"),
        "{stderr}"
    );
    let (code, _, stderr) = bluegreen(&world, &["metrics", "nosuch"]);
    assert_eq!(code, 1, "{stderr}");
}
