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

#[tokio::test]
async fn auto_approve_that_is_refused_says_why_at_once_instead_of_waiting_silently() {
    let world = World::build().await;
    // The caller (moto's identity) is not an approver of this service.
    let mut config = world.config();
    config.approval.approvers = vec!["alice@example.com".into()];
    // A short window: the local runner looks at the record every 2 virtual seconds.
    config.approval.timeout_seconds = 60;
    world.put_config(&config).await;
    let _ecs = bluegreen_tests::Simulator::start(&world);
    let event = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/ecr-push-tagged.json"
    );
    // Async: the simulator playing ECS runs on this test's runtime meanwhile.
    let args = [
        "run",
        "--event",
        event,
        "--auto-approve",
        "--time-scale",
        "0.001",
    ];
    let out = tokio::process::Command::from(command(&world, &args))
        .output()
        .await
        .expect("bluegreen runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let refusals: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("--auto-approve could not approve"))
        .collect();
    assert_eq!(refusals.len(), 1, "said once: {stdout}");
    assert!(refusals[0].contains("NotAnApprover"), "{stdout}");
    assert!(stdout.contains("ApprovalTimedOut"), "{stdout}");
    assert_eq!(out.status.code(), Some(1), "{stdout}");
}
