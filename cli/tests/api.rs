//! Decisions and operator actions through the operator API, as a user runs them: the
//! `bluegreen` binary signs its requests with SigV4 and sends them to a stand-in for the
//! stack's function URL with `AuthType AWS_IAM` ([`IamFunctionUrl`]: verifies the signature,
//! then invokes the console's Lambda app with the principal in the request context). The CLI's
//! own AWS endpoint is an [`AwsCallRecorder`], so the tests list every AWS call the CLI made:
//! with the API, none — it needs no DynamoDB write and no `states:SendTask*`.

#[allow(dead_code)]
#[path = "../../tests/steps/common.rs"]
mod common;

use tokio::process::Command;

use bluegreen::record::Records;
use bluegreen::steps::approval::{self, RequestInput};
use bluegreen_tests::World;
use bluegreen_tests::function_url::{IamFunctionUrl, Principal};
use bluegreen_tests::iam;
use bluegreen_tests::recorder::AwsCallRecorder;
use bluegreen_tests::stepfunctions::Waiting;
use common::*;

/// Runs `bluegreen` as `who`, with the operator API at `api` and every AWS call going to `aws`
/// (asynchronously: the API stand-in is served by this test's runtime).
async fn bluegreen_as(
    who: &Principal,
    api: &str,
    aws: &str,
    args: &[&str],
) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bluegreen"))
        .args(args)
        .env("BLUEGREEN_API_URL", api)
        .env("AWS_ENDPOINT_URL", aws)
        .env("AWS_ACCESS_KEY_ID", &who.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &who.secret_key)
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .output()
        .await
        .expect("bluegreen runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The approver, a principal who is not one, and a world whose service lists the approver.
struct Setup {
    world: World,
    id: String,
    waiting: Waiting,
    alice: Principal,
    mallory: Principal,
    api: bluegreen_tests::serving::Served,
    recorder: AwsCallRecorder,
    /// Every request the operator API function made (IAM by execution).
    calls: iam::CallLog,
}

impl Setup {
    /// Every request the operator API function made was allowed by its role in
    /// infra/template.yaml (issue 22, IAM by execution).
    fn assert_allowed_by_its_role(&self) {
        let calls = self.calls.calls();
        assert!(!calls.is_empty(), "the API made no request");
        assert!(calls.iter().all(|c| c.function == "OperatorApiFunction"));
        let denied = iam::Grants::of_the_stack().denied(&calls);
        assert!(
            denied.is_empty(),
            "requests the operator API's role does not allow: {denied:#?}"
        );
    }
}

/// A deployment awaiting approval whose token belongs to an execution waiting in moto, and
/// the operator API over the world's context.
async fn setup() -> Setup {
    let world = World::build().await;
    let alice = Principal::user("alice");
    let mallory = Principal::user("mallory");
    let mut config = world.config();
    config.approval.approvers = vec![alice.arn.clone()];
    world.put_config(&config).await;
    let id = deploy_to_health(&world).await;
    let waiting = Waiting::start(&world, &id).await;
    approval::request(
        &world.ctx,
        &RequestInput {
            deployment_id: id.clone(),
            task_token: waiting.token.clone(),
        },
    )
    .await
    .expect("request approval");
    let (ctx, calls) = iam::recorded(&world.ctx);
    let api = IamFunctionUrl::serve(
        bluegreen_console::lambda_app(ctx),
        &[alice.clone(), mallory.clone()],
    )
    .await;
    Setup {
        world,
        id,
        waiting,
        alice,
        mallory,
        api,
        recorder: AwsCallRecorder::start().await,
        calls,
    }
}

#[tokio::test]
async fn an_approvers_decision_goes_through_the_api_and_the_cli_makes_no_aws_call() {
    let s = setup().await;
    assert!(s.waiting.running().await);
    let (code, stdout, stderr) =
        bluegreen_as(&s.alice, &s.api.url, &s.recorder.url, &["approve", &s.id]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(&format!(
            "approved {} as {}; Step Functions has been told",
            s.id, s.alice.arn
        )),
        "{stdout}"
    );
    assert_eq!(
        s.recorder.calls(),
        Vec::<String>::new(),
        "the CLI called AWS itself"
    );
    assert_eq!(s.waiting.ended().await.0, "SUCCEEDED");
    s.assert_allowed_by_its_role();
    assert!(
        s.calls
            .calls()
            .iter()
            .any(|c| c.action == "states:SendTaskSuccess"),
        "the decision's own call was checked"
    );
    let approval = Records::new(&s.world.ctx)
        .get(&s.id)
        .await
        .unwrap()
        .approval
        .unwrap();
    assert_eq!(
        approval.decision,
        Some(bluegreen::record::Verdict::Approved)
    );
    assert_eq!(approval.approver.as_deref(), Some(s.alice.arn.as_str()));
    assert_eq!(approval.channel.as_deref(), Some("api"));
    assert!(approval.delivered_at.is_some());

    // Delivered once: the same approval again is refused, not re-sent.
    let (code, _, stderr) =
        bluegreen_as(&s.alice, &s.api.url, &s.recorder.url, &["approve", &s.id]).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("NotAwaitingApproval"), "{stderr}");
    assert_eq!(s.recorder.calls(), Vec::<String>::new());
}

#[tokio::test]
async fn a_non_approver_an_approver_removed_since_the_start_and_unsigned_calls_are_refused() {
    let s = setup().await;
    let (code, _, stderr) =
        bluegreen_as(&s.mallory, &s.api.url, &s.recorder.url, &["approve", &s.id]).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("NotAnApprover"), "{stderr}");

    // Alice is taken off the service's config after the deployment started; the record's
    // copy of the config still lists her, and must not count.
    let mut config = s.world.config();
    config.approval.approvers = vec!["someone-else@example.com".into()];
    s.world.put_config(&config).await;
    let (code, _, stderr) =
        bluegreen_as(&s.alice, &s.api.url, &s.recorder.url, &["approve", &s.id]).await;
    assert_eq!(code, 1);
    assert!(
        stderr.contains("NotAnApprover") && stderr.contains("current config"),
        "{stderr}"
    );

    // Not signed, or signed with a key AWS does not know: refused before the function runs.
    let unsigned = reqwest::Client::new()
        .post(format!("{}/api/v1/deployments/{}/approve", s.api.url, s.id))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 403);
    let stranger = Principal {
        secret_key: "guessed".into(),
        ..s.alice.clone()
    };
    let (code, _, stderr) =
        bluegreen_as(&stranger, &s.api.url, &s.recorder.url, &["approve", &s.id]).await;
    assert_eq!(code, 1);
    assert!(
        stderr.contains("Forbidden") && stderr.contains("OperatorPolicy"),
        "{stderr}"
    );

    let d = Records::new(&s.world.ctx).get(&s.id).await.unwrap();
    assert!(
        d.config.approval.approvers.contains(&s.alice.arn),
        "the record's copy still names alice"
    );
    assert_eq!(d.approval.unwrap().decision, None, "nothing was decided");
    assert!(s.waiting.running().await, "the execution still waits");
    assert_eq!(s.recorder.calls(), Vec::<String>::new());
}

#[tokio::test]
async fn a_decision_recorded_but_not_delivered_is_sent_again_by_the_same_approver() {
    let s = setup().await;
    // The first API instance cannot reach Step Functions (a closed port, no retries).
    let cut_off = bluegreen_tests::stepfunctions::cut_off_from_step_functions(&s.world.ctx);
    let broken = IamFunctionUrl::serve(
        bluegreen_console::lambda_app(cut_off),
        std::slice::from_ref(&s.alice),
    )
    .await;
    let (code, _, stderr) =
        bluegreen_as(&s.alice, &broken.url, &s.recorder.url, &["approve", &s.id]).await;
    assert_eq!(code, 1, "{stderr}");
    let recorded = Records::new(&s.world.ctx)
        .get(&s.id)
        .await
        .unwrap()
        .approval
        .unwrap();
    assert_eq!(
        recorded.decision,
        Some(bluegreen::record::Verdict::Approved)
    );
    assert_eq!(recorded.delivered_at, None);
    assert!(
        s.waiting.running().await,
        "nothing reached the execution yet"
    );

    // Someone else cannot push the recorded decision through, nor decide otherwise.
    let (code, _, stderr) = bluegreen_as(
        &s.mallory,
        &s.api.url,
        &s.recorder.url,
        &["reject", &s.id, "--reason", "no"],
    )
    .await;
    assert_eq!(code, 1);
    assert!(
        stderr.contains("NotAnApprover") || stderr.contains("NotAwaitingApproval"),
        "{stderr}"
    );

    let (code, stdout, stderr) =
        bluegreen_as(&s.alice, &s.api.url, &s.recorder.url, &["approve", &s.id]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Step Functions has been told"), "{stdout}");
    let (status, _, _, output) = s.waiting.ended().await;
    assert_eq!(status, "SUCCEEDED");
    assert!(output.unwrap().contains(&s.alice.arn));
    bluegreen_tests::stepfunctions::assert_approved_once_and_delivered(
        &Records::new(&s.world.ctx).get(&s.id).await.unwrap(),
    );
    assert_eq!(s.recorder.calls(), Vec::<String>::new());
}

#[tokio::test]
async fn an_operator_action_goes_through_the_api_as_the_verified_principal() {
    let s = setup().await;
    // Refusals come back with their stable names: the deployment still holds the lock and
    // does not need attention (the lock is unchanged by them: the abort below still works).
    for (args, refusal) in [
        (["--output", "json", "unlock", "shop"], "UnlockRefused"),
        (["--output", "json", "retry", s.id.as_str()], "RetryRefused"),
        // The world's live image is a tag (`:v1`), not a digest: nothing to redeploy.
        (["--output", "json", "redeploy", "shop"], "ReleaseRefused"),
    ] {
        let (code, _, stderr) = bluegreen_as(&s.mallory, &s.api.url, &s.recorder.url, &args).await;
        assert_eq!(code, 1, "{stderr}");
        let error: serde_json::Value = serde_json::from_str(stderr.trim()).expect("JSON error");
        assert_eq!(error["error"], refusal, "{stderr}");
    }
    // `deploy`: a tag ECR does not hold is refused by name; one it holds queues behind the
    // running deployment, as the caller, and the CLI made no AWS call of its own.
    let digest = s.world.push_image("v3", "app-3").await;
    for (tag, refusal) in [("v9", Some("ReleaseRefused")), ("v3", None)] {
        let args = ["--output", "json", "deploy", "shop", "--tag", tag];
        let (code, stdout, stderr) =
            bluegreen_as(&s.mallory, &s.api.url, &s.recorder.url, &args).await;
        match refusal {
            Some(refusal) => {
                assert_eq!(code, 1, "{stderr}");
                let error: serde_json::Value = serde_json::from_str(stderr.trim()).unwrap();
                assert_eq!(error["error"], refusal, "{stderr}");
            }
            None => {
                assert_eq!(code, 0, "{stderr}");
                let started: serde_json::Value = serde_json::from_str(&stdout).unwrap();
                assert_eq!(started["outcome"], "queued", "{stdout}");
                assert_eq!(started["operator"], s.mallory.arn.as_str());
                assert!(started["image"].as_str().unwrap().ends_with(&digest));
                let lock = s.world.lock("shop").await.unwrap();
                assert_eq!(
                    lock.queued.as_ref(),
                    started["deployment_id"]
                        .as_str()
                        .map(str::to_owned)
                        .as_ref()
                );
            }
        }
    }
    // Back to a deployment that did not succeed: refused by name, through the API.
    let (code, _, stderr) = bluegreen_as(
        &s.mallory,
        &s.api.url,
        &s.recorder.url,
        &["--output", "json", "rollback", "shop", "--to", &s.id],
    )
    .await;
    assert_eq!(code, 1, "{stderr}");
    let error: serde_json::Value = serde_json::from_str(stderr.trim()).expect("JSON error");
    assert_eq!(error["error"], "ReleaseRefused", "{stderr}");
    assert!(
        error["message"].as_str().unwrap().contains("not succeeded"),
        "{stderr}"
    );
    let (code, stdout, stderr) = bluegreen_as(
        &s.mallory,
        &s.api.url,
        &s.recorder.url,
        &["--output", "json", "abort", &s.id],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let aborted: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(aborted["operator"], s.mallory.arn.as_str());
    let d = Records::new(&s.world.ctx).get(&s.id).await.unwrap();
    assert_eq!(d.status, bluegreen::record::Status::Aborted);
    assert!(
        d.failure.unwrap_or_default().contains(&s.mallory.arn),
        "the record names who aborted"
    );
    // The queued deploy was handed the lock; starting its execution failed here (the world
    // has no deployment machine), which the abort's answer does not turn into a failure: the
    // reconciler's sweep starts it.
    let next = aborted["next_deployment"].as_str().expect("handed over");
    assert_eq!(s.world.lock_holder().await.as_deref(), Some(next));
    assert_eq!(s.recorder.calls(), Vec::<String>::new());
    s.assert_allowed_by_its_role();
}

/// Issue 22 item 4: a service that lists its operators refuses every operator action by
/// anyone else, by name, before anything changes; a listed operator acts as before.
#[tokio::test]
async fn a_service_that_lists_its_operators_refuses_everyone_else_before_anything_changes() {
    let s = setup().await;
    let mut config = s.world.config();
    config.approval.approvers = vec![s.alice.arn.clone()];
    config.operators = vec![s.alice.arn.clone()];
    s.world.put_config(&config).await;
    let before = Records::new(&s.world.ctx).get(&s.id).await.unwrap();
    let lock_before = s.world.lock("shop").await;
    s.world.push_image("v3", "app-3").await;
    for args in [
        vec!["abort", s.id.as_str()],
        vec!["retry", s.id.as_str()],
        vec!["unlock", "shop"],
        vec!["rollback", "shop"],
        vec!["rollback", "shop", "--to", s.id.as_str()],
        vec!["deploy", "shop", "--tag", "v3"],
        vec!["redeploy", "shop"],
    ] {
        let mut full = vec!["--output", "json"];
        full.extend(&args);
        let (code, _, stderr) = bluegreen_as(&s.mallory, &s.api.url, &s.recorder.url, &full).await;
        assert_eq!(code, 1, "{args:?}: {stderr}");
        let error: serde_json::Value = serde_json::from_str(stderr.trim()).expect("JSON error");
        assert_eq!(error["error"], "NotAnOperator", "{args:?}: {stderr}");
        assert!(
            error["message"].as_str().unwrap().contains(&s.mallory.arn),
            "{stderr}"
        );
    }
    let after = Records::new(&s.world.ctx).get(&s.id).await.unwrap();
    assert_eq!(after.status, before.status, "nothing changed");
    assert_eq!(after.timeline.len(), before.timeline.len());
    assert_eq!(
        s.world.lock("shop").await,
        lock_before,
        "the lock is as it was"
    );

    let (code, stdout, stderr) = bluegreen_as(
        &s.alice,
        &s.api.url,
        &s.recorder.url,
        &["--output", "json", "abort", &s.id],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let aborted: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(aborted["operator"], s.alice.arn.as_str());
    assert_eq!(
        Records::new(&s.world.ctx).get(&s.id).await.unwrap().status,
        bluegreen::record::Status::Aborted
    );
    s.assert_allowed_by_its_role();
}

/// Runs `bluegreen` with `env`, against AWS (a non-loopback endpoint) and without the API.
async fn against_aws(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let nobody = Principal::user("alice");
    let out = Command::new(env!("CARGO_BIN_EXE_bluegreen"))
        .args(args)
        .env_remove("BLUEGREEN_API_URL")
        .env("AWS_ENDPOINT_URL", "https://bluegreen-test.invalid")
        .env("AWS_ACCESS_KEY_ID", &nobody.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &nobody.secret_key)
        .env("AWS_REGION", "us-east-1")
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn without_the_api_decisions_and_auto_approval_are_refused_against_aws() {
    let (code, stderr) = against_aws(&["approve", "shop-20261123T100000-abc"], &[]).await;
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("ApiNotConfigured") && stderr.contains("BLUEGREEN_API_URL"),
        "{stderr}"
    );

    let recorder = AwsCallRecorder::start().await;
    let event = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/ecr-push-tagged.json"
    );
    let (code, stderr) = against_aws(
        &["run", "--event", event, "--auto-approve"],
        &[("AWS_ENDPOINT_URL_DYNAMODB", recorder.url.as_str())],
    )
    .await;
    assert_eq!(code, Some(1));
    assert!(stderr.contains("--auto-approve is refused"), "{stderr}");
    assert_eq!(
        recorder.calls(),
        Vec::<String>::new(),
        "refused before any call"
    );
}
