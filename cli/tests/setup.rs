//! The first hour, as a new user runs it: `init --local` on an empty emulator, and `wait`
//! following a deployment from a CI pipeline's point of view (exit 0, 1, 2).

#[allow(dead_code)]
#[path = "../../tests/steps/common.rs"]
mod common;

use std::process::{Command, Output};
use std::time::Duration;

use bluegreen_tests::{Emulator, World};
use common::*;

fn command(endpoint: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bluegreen"));
    command
        .args(args)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE");
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `bluegreen args` in the background; its output once it exits (bounded: a wait that
/// never ends fails the test instead of hanging it).
async fn spawn(endpoint: &str, args: &[&str]) -> tokio::task::JoinHandle<Output> {
    let mut command = tokio::process::Command::from(command(endpoint, args));
    command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().expect("bluegreen starts");
    tokio::spawn(async move {
        tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
            .await
            .expect("bluegreen wait ends")
            .expect("its output")
    })
}

#[tokio::test]
async fn init_local_creates_the_stacks_tables_secret_and_topic_once() {
    let emulator = Emulator::start().await;
    let out = command(&emulator.endpoint, &["init", "--local"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for line in [
        "export BLUEGREEN_DEPLOYMENTS_TABLE=bluegreen-deployments",
        "export BLUEGREEN_SERVICES_TABLE=bluegreen-services",
        "export BLUEGREEN_LINK_SECRET_ID=bluegreen/link-signing-key",
        "export BLUEGREEN_TOPIC_ARN=arn:aws:sns:us-east-1:",
    ] {
        assert!(stdout.contains(line), "{line}: {stdout}");
    }
    // What it made, read from the emulator: the tables with their indexes.
    let ctx = bluegreen::Context::new(
        &emulator.sdk_config().await,
        bluegreen::Settings::from_env(),
    );
    let described = ctx
        .dynamodb
        .describe_table()
        .table_name("bluegreen-deployments")
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let mut indexes: Vec<String> = described
        .global_secondary_indexes()
        .iter()
        .filter_map(|i| i.index_name.clone())
        .collect();
    indexes.sort();
    assert_eq!(indexes, ["by_service", "by_status", "recent"]);
    let key = bluegreen::links::SigningKey::load(&ctx, "bluegreen/link-signing-key").await;
    assert!(key.is_ok(), "the link secret is a usable key: {key:?}");

    // A second run finds everything and creates nothing.
    let again = command(&emulator.endpoint, &["init", "--local"])
        .output()
        .unwrap();
    assert!(again.status.success());
    assert_eq!(text(&again.stdout), stdout);
    assert!(
        !text(&again.stderr).contains("created"),
        "{}",
        text(&again.stderr)
    );
}

#[test]
fn init_refuses_anything_but_a_local_emulator() {
    let out = command(
        "https://dynamodb.us-east-1.amazonaws.com",
        &["init", "--local"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("SetupRefused"),
        "{}",
        text(&out.stderr)
    );
    let out = command("http://127.0.0.1:9", &["init"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--local"),
        "{}",
        text(&out.stderr)
    );
}

const DIGEST_A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

#[tokio::test]
async fn wait_follows_a_push_by_digest_from_before_it_is_prepared_to_success() {
    let world = World::build().await;
    let args = [
        "wait",
        "--service",
        "shop",
        "--digest",
        DIGEST_A,
        "--interval",
        "200ms",
    ];
    let waiting = spawn(&world.emulator.endpoint, &args).await;
    // The CI pipeline pushed; the deployment goes through while `wait` follows it.
    let id = deploy_to_switch(&world).await;
    bluegreen::steps::finish::run(&world.ctx, &id_ref(&id))
        .await
        .unwrap();
    let out = waiting.await.unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains(&format!("following {id}")), "{stdout}");
    assert!(stdout.contains(&format!("{id} succeeded")), "{stdout}");
    for step in ["Prepare", "Health check", "Approval", "Switch"] {
        assert!(stdout.contains(step), "{step}: {stdout}");
    }
}

#[tokio::test]
async fn wait_exits_1_when_the_deployment_aborts() {
    let world = World::build().await;
    let id = prepare_push(&world, "v2", "event-1").await;
    let waiting = spawn(
        &world.emulator.endpoint,
        &["wait", "--deployment", &id, "--interval", "200ms"],
    )
    .await;
    bluegreen::steps::abort::run(&world.ctx, &failure(&id, "HealthCheckFailed"))
        .await
        .unwrap();
    let out = waiting.await.unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains(&format!("{id} ended aborted")),
        "{}",
        text(&out.stdout)
    );
}

#[tokio::test]
async fn wait_exits_2_when_the_timeout_passes_first_and_says_where_the_deployment_is() {
    let world = World::build().await;
    let id = deploy_to_approval(&world).await;
    let out = spawn(
        &world.emulator.endpoint,
        &[
            "--output",
            "json",
            "wait",
            "--deployment",
            &id,
            "--timeout",
            "1s",
            "--interval",
            "200ms",
        ],
    )
    .await
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains(&format!("{id} is still awaiting_approval")),
        "{}",
        text(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["outcome"], "timed_out");
    // A tag nobody pushed is not found, and says so.
    let out = spawn(
        &world.emulator.endpoint,
        &[
            "wait",
            "--service",
            "shop",
            "--tag",
            "v9",
            "--timeout",
            "1s",
        ],
    )
    .await
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no deployment of that push was found"),
        "{}",
        text(&out.stderr)
    );
}
