//! The first hour, as a new user runs it: `init --local` on an empty emulator, and `wait`
//! following a deployment from a CI pipeline's point of view (exit 0, 1, 2, 3).

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

/// Runs `bluegreen args` to its end without blocking the test's runtime (a simulator may be
/// playing ECS on it meanwhile).
async fn finished(endpoint: &str, args: &[&str]) -> Output {
    spawn(endpoint, args).await.await.expect("bluegreen ran")
}

/// [`finished`] with extra environment variables.
async fn finished_with(endpoint: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = command(endpoint, args);
    command.envs(env.iter().copied());
    bounded(command).await.await.expect("bluegreen ran")
}

/// Runs `bluegreen args` in the background; its output once it exits (bounded: a wait that
/// never ends fails the test instead of hanging it).
async fn spawn(endpoint: &str, args: &[&str]) -> tokio::task::JoinHandle<Output> {
    bounded(command(endpoint, args)).await
}

/// Runs `command` in the background, bounded to two minutes.
async fn bounded(command: Command) -> tokio::task::JoinHandle<Output> {
    let mut command = tokio::process::Command::from(command);
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
        .sdk()
        .unwrap()
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
    // Without --local: a usage error (2), as issue 29 item 9 asks, not a refusal (1).
    let out = command("http://127.0.0.1:9", &["init"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
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
    let out = finished(
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
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains(&format!("{id} is still awaiting_approval")),
        "{}",
        text(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["outcome"], "timed_out");
    // A tag nobody pushed is not found, and says so.
    let out = finished(
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
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no deployment of that push was found"),
        "{}",
        text(&out.stderr)
    );
}

/// `bluegreen args` against the world, to its end: (exit code, stdout, stderr).
fn run_cli(world: &World, args: &[&str]) -> (i32, String, String) {
    let out = command(&world.emulator.endpoint, args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

/// The world as a team has it before bluegreen: one ECS service (`shop-blue`) behind the
/// ALB's production listener — no second slot, no test listener, no tags, no config.
async fn single_service_world() -> World {
    let world = World::build().await;
    let ctx = &world.ctx;
    bluegreen_ops::direct::ecs::delete_service(ctx, "shop-cluster", "shop-green")
        .await
        .unwrap();
    bluegreen_ops::direct::elb::delete_listener(ctx, &world.test_listener)
        .await
        .unwrap();
    bluegreen_ops::direct::elb::delete_target_group(ctx, world.tg(bluegreen::Slot::Green))
        .await
        .unwrap();
    bluegreen::config_store::ConfigStore::new(ctx)
        .delete("shop")
        .await
        .unwrap();
    let blue = world.service_arn(bluegreen::Slot::Blue).await;
    bluegreen_ops::direct::ecs::untag_resource(ctx, &blue, &["bluegreen:managed"])
        .await
        .unwrap();
    bluegreen_ops::direct::elb::remove_tags(
        ctx,
        &world.production_listener,
        &["bluegreen:managed"],
    )
    .await
    .unwrap();
    world
}

/// The ARN of the world's ALB (the production listener's load balancer).
async fn alb_arn(world: &World) -> String {
    world
        .aws
        .elb
        .describe_listeners()
        .listener_arns(&world.production_listener)
        .send()
        .await
        .unwrap()
        .listeners
        .unwrap()[0]
        .load_balancer_arn
        .clone()
        .unwrap()
}

/// What makes up the service's blue/green shape in AWS now, to compare before and after.
async fn shape(world: &World) -> (bool, Vec<i32>, bool, bool, bool) {
    let ctx = &world.ctx;
    let green = bluegreen::ecs::describe_service(ctx, "shop-cluster", "shop-green")
        .await
        .is_ok();
    let lb = alb_arn(world).await;
    let mut ports: Vec<i32> = bluegreen_ops::direct::elb::listeners_of(ctx, &lb)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|l| l.port)
        .collect();
    ports.sort();
    let green_tg = bluegreen_ops::direct::elb::target_group_named(ctx, "shop-green")
        .await
        .unwrap()
        .is_some();
    let config = bluegreen::config_store::ConfigStore::new(ctx)
        .load("shop")
        .await
        .is_ok();
    let tagged =
        bluegreen_ops::direct::ecs::tags_of(ctx, &world.service_arn(bluegreen::Slot::Blue).await)
            .await
            .unwrap()
            .iter()
            .any(|(k, _)| k == "bluegreen:managed");
    (green, ports, green_tg, config, tagged)
}

/// The target groups production forwards to with a weight.
async fn serving(world: &World) -> Vec<String> {
    let production =
        bluegreen_ops::direct::elb::listener_actions(&world.ctx, &world.production_listener)
            .await
            .unwrap();
    production[0]
        .forward_config
        .as_ref()
        .map(|f| {
            f.target_groups()
                .iter()
                .filter(|g| g.weight.unwrap_or(1) > 0)
                .filter_map(|g| g.target_group_arn.clone())
                .collect::<Vec<_>>()
        })
        .unwrap_or_else(|| production[0].target_group_arn.clone().into_iter().collect())
}

/// Runs `events/ecr-push-tagged.json` through `bluegreen run --auto-approve` against an adopted
/// world (the simulator plays ECS for blue's target group and adopt's green one) and asserts it
/// deployed; the callers then check where production traffic went.
async fn deploy_the_tagged_push(world: &World, green_target_group: &str) {
    let event = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/ecr-push-tagged.json"
    );
    run_with_ecs_played(
        world,
        green_target_group,
        &[
            "run",
            "--event",
            event,
            "--auto-approve",
            "--time-scale",
            "0.01",
        ],
    )
    .await;
}

/// Runs `bluegreen <args>` (a `run`) to a successful end while the simulator plays ECS for
/// blue's target group and adopt's green one.
async fn run_with_ecs_played(world: &World, green_target_group: &str, args: &[&str]) {
    let _ecs = bluegreen_tests::Simulator::start_with(
        world,
        [
            (
                bluegreen::Slot::Blue,
                world.tg(bluegreen::Slot::Blue).to_owned(),
            ),
            (bluegreen::Slot::Green, green_target_group.to_owned()),
        ],
    );
    // In the background: the simulator plays ECS on this runtime meanwhile.
    let out = finished(&world.emulator.endpoint, args).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[tokio::test]
async fn adopt_turns_one_service_into_blue_green_that_deploys_and_undo_restores_it() {
    // The README's first hour: an emulator with the team's one service and nothing of
    // bluegreen's — `init --local` creates its tables, then adopt, doctor, a push, wait.
    let world = single_service_world().await;
    for table in bluegreen::tables::TABLES {
        world
            .aws
            .dynamodb
            .delete_table()
            .table_name(table.name(&world.ctx.settings))
            .send()
            .await
            .unwrap();
    }
    let (code, _, stderr) = run_cli(&world, &["init", "--local"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stderr.matches(": created").count(),
        3,
        "the 3 tables: {stderr}"
    );
    let before = shape(&world).await;
    assert_eq!(before, (false, vec![80], false, false, false));
    let smoke = world.smoke.url.clone();
    let adopt = |extra: &'static [&'static str]| {
        let mut args = vec![
            "adopt",
            "--cluster",
            "shop-cluster",
            "--service",
            "shop-blue",
            "--test-port",
            "8443",
            "--repository",
            "shop/web",
            "--tag",
            "v*",
            "--approver",
            bluegreen_tests::MOTO_CALLER,
            "--test-url",
            smoke.as_str(),
        ];
        args.extend_from_slice(extra);
        args
    };
    let dir = std::env::temp_dir().join(format!("bluegreen-adopt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let toml_path = dir.join("shop.toml");
    let toml_arg = toml_path.to_str().unwrap().to_owned();

    // The plan changes nothing.
    let (code, stdout, stderr) = run_cli(&world, &adopt(&[]));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("would create target group shop-green"),
        "{stdout}"
    );
    assert!(
        stdout.contains("would create ECS service shop-cluster/shop-green"),
        "{stdout}"
    );
    assert!(
        stdout.contains("would create test listener :8443"),
        "{stdout}"
    );
    assert_eq!(shape(&world).await, before, "a plan creates nothing");

    // Applied, then applied again: the second run changes nothing and says so.
    let mut apply = adopt(&["--apply", "--config-out"]);
    apply.push(&toml_arg);
    let (code, stdout, stderr) = run_cli(&world, &apply);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        shape(&world).await,
        (true, vec![80, 8443], true, true, true)
    );
    let written =
        bluegreen::config::ServiceConfig::from_toml(&std::fs::read_to_string(&toml_path).unwrap())
            .expect("the written TOML is a valid config");
    let (code, stdout, _) = run_cli(&world, &apply);
    assert_eq!(code, 0);
    assert!(stdout.contains("nothing to change"), "{stdout}");
    assert_eq!(
        bluegreen::config_store::ConfigStore::new(&world.ctx)
            .load("shop")
            .await
            .unwrap(),
        written,
        "SSM holds what was written to disk"
    );
    // Production still forwards to the existing service's group.
    let production =
        bluegreen_ops::direct::elb::listener_actions(&world.ctx, &world.production_listener)
            .await
            .unwrap();
    assert_eq!(
        production[0].target_group_arn.as_deref(),
        Some(world.tg(bluegreen::Slot::Blue))
    );

    // Undone before anything was deployed: the world is as it was.
    let (code, stdout, stderr) = run_cli(&world, &["adopt", "--undo", "shop"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(shape(&world).await, before, "{stdout}");

    // Adopted again, checked, deployed.
    let (code, _, stderr) = run_cli(&world, &apply);
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, stderr) = run_cli(&world, &["doctor", "shop"]);
    assert_eq!(code, 0, "doctor finds nothing to fix: {stdout}{stderr}");
    let config = bluegreen::config_store::ConfigStore::new(&world.ctx)
        .load("shop")
        .await
        .unwrap();
    let green_tg = config.slots.green.target_group_arn.clone();
    deploy_the_tagged_push(&world, &green_tg).await;
    assert_eq!(
        serving(&world).await,
        std::slice::from_ref(&green_tg),
        "production serves the adopted green slot"
    );
    let green = bluegreen::ecs::describe_service(&world.ctx, "shop-cluster", "shop-green")
        .await
        .unwrap();
    assert!(
        green
            .task_definition
            .as_deref()
            .is_some_and(|td| td != "arn:aws:ecs:us-east-1:123456789012:task-definition/shop:1"),
        "green runs the pushed image's revision: {:?}",
        green.task_definition
    );

    // What a CI pipeline does after its push: wait for the outcome.
    let (code, stdout, stderr) = run_cli(
        &world,
        &[
            "wait",
            "--service",
            "shop",
            "--digest",
            // events/ecr-push-tagged.json's image.
            "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd12345678",
            "--timeout",
            "10s",
        ],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("succeeded"), "{stdout}");

    // A config-only release: the live image through the whole flow again, run on this machine.
    let (code, stdout, stderr) = run_cli(&world, &["--output", "json", "redeploy", "shop"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let requested: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    let id = requested["deployment_id"].as_str().unwrap().to_owned();
    let live_image = bluegreen::ecs::describe_task_definition(
        &world.ctx,
        green.task_definition.as_deref().unwrap(),
    )
    .await
    .unwrap()
    .container("web")
    .unwrap()
    .image
    .clone();
    assert_eq!(requested["image"], live_image.as_str(), "the live digest");
    run_with_ecs_played(
        &world,
        &green_tg,
        &[
            "run",
            "--deployment",
            &id,
            "--auto-approve",
            "--time-scale",
            "0.01",
        ],
    )
    .await;
    assert_eq!(
        serving(&world).await,
        [world.tg(bluegreen::Slot::Blue).to_owned()],
        "production back on blue, through the full flow"
    );
    let redeployed = bluegreen::record::Records::new(&world.ctx)
        .get(&id)
        .await
        .unwrap();
    assert_eq!(redeployed.status, bluegreen::record::Status::Succeeded);
    assert!(
        redeployed.approval.is_some_and(|a| a.decision.is_some()),
        "it was approved"
    );

    // Once deployed, undo is refused and changes nothing; it says why (not "its slots serve
    // production now", false when production is on the original service) and where the way
    // back to one service is written down.
    let (code, _, stderr) = run_cli(&world, &["adopt", "--undo", "shop"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("SetupRefused"), "{stderr}");
    assert!(
        stderr.contains("either slot may be production's") && stderr.contains("Back to one"),
        "{stderr}"
    );
    assert!(shape(&world).await.0, "the green slot is still there");
}

/// What adopt could create or change, to compare before and after a refusal: the cluster's
/// services, the account's target groups, the ALB's listener ports and every stored config.
async fn adoptable_state(world: &World) -> (Vec<String>, Vec<String>, Vec<i32>, usize) {
    let mut services = world
        .aws
        .ecs
        .list_services()
        .cluster("shop-cluster")
        .send()
        .await
        .unwrap()
        .service_arns()
        .to_vec();
    services.sort();
    let mut groups: Vec<String> = world
        .aws
        .elb
        .describe_target_groups()
        .send()
        .await
        .unwrap()
        .target_groups()
        .iter()
        .filter_map(|g| g.target_group_arn.clone())
        .collect();
    groups.sort();
    let (_, ports, ..) = shape(world).await;
    let configs = bluegreen::config_store::ConfigStore::new(&world.ctx)
        .load_each()
        .await
        .unwrap()
        .len();
    (services, groups, ports, configs)
}

#[tokio::test]
async fn adopt_refuses_services_it_cannot_take_over_and_changes_nothing() {
    let world = World::build().await;
    // A worker without a load balancer.
    world
        .aws
        .ecs
        .create_service()
        .cluster("shop-cluster")
        .service_name("shop-worker")
        .task_definition("shop:1")
        .desired_count(1)
        .send()
        .await
        .unwrap();
    let (code, _, stderr) = run_cli(
        &world,
        &[
            "adopt",
            "--cluster",
            "shop-cluster",
            "--service",
            "shop-worker",
            "--test-port",
            "9443",
            "--repository",
            "shop/web",
            "--apply",
        ],
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("SetupRefused") && stderr.contains("no load balancer"),
        "{stderr}"
    );
    // Shapes adopt cannot switch between two slots: each refused by name, nothing created.
    let lb = |tg: &str| {
        aws_sdk_ecs::types::LoadBalancer::builder()
            .target_group_arn(tg)
            .container_name("web")
            .container_port(8080)
            .build()
    };
    let blue_tg = world.tg(bluegreen::Slot::Blue).to_owned();
    let green_tg = world.tg(bluegreen::Slot::Green).to_owned();
    let classic = aws_sdk_ecs::types::LoadBalancer::builder()
        .load_balancer_name("shop-classic-elb")
        .container_name("web")
        .container_port(8080)
        .build();
    let code_deploy = aws_sdk_ecs::types::DeploymentController::builder()
        .r#type(aws_sdk_ecs::types::DeploymentControllerType::CodeDeploy)
        .build()
        .unwrap();
    let shapes = [
        (
            "shop-codedeploy",
            vec![lb(&blue_tg)],
            Some(code_deploy),
            "a deployment controller already",
        ),
        ("shop-classic", vec![classic], None, "classic ELB"),
        (
            "shop-two-groups",
            vec![lb(&blue_tg), lb(&green_tg)],
            None,
            "registers in 2 target groups",
        ),
    ];
    for (service, balancers, controller, refusal) in shapes {
        world
            .aws
            .ecs
            .create_service()
            .cluster("shop-cluster")
            .service_name(service)
            .task_definition("shop:1")
            .desired_count(1)
            .set_load_balancers(Some(balancers))
            .set_deployment_controller(controller)
            .send()
            .await
            .unwrap();
        let before = adoptable_state(&world).await;
        let args = [
            "adopt",
            "--cluster",
            "shop-cluster",
            "--service",
            service,
            "--test-port",
            "9443",
            "--repository",
            "shop/web",
            "--apply",
        ];
        let (code, _, stderr) = run_cli(&world, &args);
        assert_eq!(code, 1, "{service}: {stderr}");
        assert!(
            stderr.contains("SetupRefused") && stderr.contains(refusal),
            "{service}: {stderr}"
        );
        assert_eq!(
            adoptable_state(&world).await,
            before,
            "{service}: adopt created nothing"
        );
    }

    // A name adopt would create that someone else's resource already has: shop-blue's green
    // twin exists and was not made by adopt.
    let (code, _, stderr) = run_cli(
        &world,
        &[
            "adopt",
            "--cluster",
            "shop-cluster",
            "--service",
            "shop-blue",
            "--test-port",
            "9443",
            "--repository",
            "shop/web",
            "--approver",
            "a@example.com",
            "--apply",
        ],
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("SetupRefused") && stderr.contains("was not created by adopting"),
        "{stderr}"
    );
    assert!(
        bluegreen_ops::direct::elb::tags_of(&world.ctx, &world.production_listener)
            .await
            .unwrap()
            .unwrap()
            .iter()
            .all(|(k, _)| k != "bluegreen:adopt-tagged"),
        "nothing was tagged"
    );
}

/// The DNS name of the world's ALB.
async fn alb_dns(world: &World) -> String {
    let lb = alb_arn(world).await;
    bluegreen_ops::direct::elb::load_balancer_dns(&world.ctx, &lb)
        .await
        .unwrap()
        .unwrap()
}

/// `shop.example.com`'s CNAME records as `(set identifier, weight, value)`, sorted.
async fn records(world: &World) -> Vec<(Option<String>, Option<i64>, String)> {
    let mut found: Vec<_> = bluegreen_ops::direct::route53::cname_records(
        &world.ctx,
        &world.zone_id,
        "shop.example.com",
    )
    .await
    .unwrap()
    .into_iter()
    .map(|r| {
        let value = r.resource_records()[0].value.clone();
        (r.set_identifier, r.weight, value)
    })
    .collect();
    found.sort();
    found
}

#[tokio::test]
async fn adopt_in_dns_mode_adds_a_load_balancer_and_weighted_records_that_deploy_and_undo() {
    use aws_sdk_route53::types::{
        Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
    };
    // One service, its name a simple CNAME to its ALB.
    let world = single_service_world().await;
    let dns = alb_dns(&world).await;
    let mut batch = ChangeBatch::builder();
    for record in bluegreen_ops::direct::route53::cname_records(
        &world.ctx,
        &world.zone_id,
        "shop.example.com",
    )
    .await
    .unwrap()
    {
        batch = batch.changes(
            Change::builder()
                .action(ChangeAction::Delete)
                .resource_record_set(record)
                .build()
                .unwrap(),
        );
    }
    let simple = ResourceRecordSet::builder()
        .name("shop.example.com.")
        .r#type(RrType::Cname)
        .ttl(120)
        .resource_records(ResourceRecord::builder().value(&dns).build().unwrap())
        .build()
        .unwrap();
    // UPSERT, not CREATE: moto would refuse undo's CREATE of the same record as already in
    // its journal (see below).
    batch = batch.changes(
        Change::builder()
            .action(ChangeAction::Upsert)
            .resource_record_set(simple)
            .build()
            .unwrap(),
    );
    bluegreen_ops::direct::route53::change_record_sets(
        &world.ctx,
        &world.zone_id,
        batch.build().unwrap(),
    )
    .await
    .unwrap();
    let before = records(&world).await;
    assert_eq!(before, [(None, None, dns.clone())]);

    let zone = world.zone_id.clone();
    let smoke = world.smoke.url.clone();
    let apply = [
        "adopt",
        "--cluster",
        "shop-cluster",
        "--service",
        "shop-blue",
        "--dns-zone",
        zone.as_str(),
        "--dns-record",
        "shop.example.com",
        "--repository",
        "shop/web",
        "--approver",
        bluegreen_tests::MOTO_CALLER,
        "--test-url",
        smoke.as_str(),
        "--config-out",
        "/dev/null",
        "--apply",
    ];
    let (code, stdout, stderr) = run_cli(&world, &apply);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let green_dns = bluegreen_ops::direct::elb::load_balancer_named(&world.ctx, "shop-alb-green")
        .await
        .unwrap()
        .and_then(|lb| lb.dns_name)
        .expect("a green load balancer");
    assert_eq!(
        records(&world).await,
        [
            (Some("blue".into()), Some(100), dns.clone()),
            (Some("green".into()), Some(0), green_dns.clone())
        ],
        "resolvers still get blue's load balancer"
    );
    let (code, stdout, _) = run_cli(&world, &apply);
    assert_eq!(code, 0);
    assert!(stdout.contains("nothing to change"), "{stdout}");

    // Undone: the simple record, no green load balancer.
    let (code, stdout, stderr) = run_cli(&world, &["adopt", "--undo", "shop"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(records(&world).await, before);
    assert!(
        bluegreen_ops::direct::elb::load_balancer_named(&world.ctx, "shop-alb-green")
            .await
            .unwrap()
            .is_none()
    );
    assert!(!shape(&world).await.0, "no green service");

    // Adopted again and deployed: DNS moves to green. (moto refuses a CREATE identical to one
    // in its change journal while a record of that name exists — the first adopt's — though
    // the same batch deletes it; Route 53 applies a batch as one transaction. A new TTL makes
    // the second adopt's changes new to moto.)
    let upsert = ResourceRecordSet::builder()
        .name("shop.example.com.")
        .r#type(RrType::Cname)
        .ttl(90)
        .resource_records(ResourceRecord::builder().value(&dns).build().unwrap())
        .build()
        .unwrap();
    let batch = ChangeBatch::builder()
        .changes(
            Change::builder()
                .action(ChangeAction::Upsert)
                .resource_record_set(upsert)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    bluegreen_ops::direct::route53::change_record_sets(&world.ctx, &world.zone_id, batch)
        .await
        .unwrap();
    let (code, _, stderr) = run_cli(&world, &apply);
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, stderr) = run_cli(&world, &["doctor", "shop"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let config = bluegreen::config_store::ConfigStore::new(&world.ctx)
        .load("shop")
        .await
        .unwrap();
    deploy_the_tagged_push(&world, &config.slots.green.target_group_arn).await;
    let weights: Vec<(Option<String>, Option<i64>)> = records(&world)
        .await
        .into_iter()
        .map(|(id, weight, _)| (id, weight))
        .collect();
    assert_eq!(
        weights,
        [
            (Some("blue".into()), Some(0)),
            (Some("green".into()), Some(100))
        ]
    );
}

#[tokio::test]
async fn config_reindex_and_delete_keep_the_service_index_with_ssm() {
    let world = World::build().await;
    let mut admin = world.config();
    admin.name = "admin".into();
    // Written by another tool, its change event never handled.
    world
        .aws
        .ssm
        .put_parameter()
        .name("/bluegreen/services/admin")
        .value(admin.to_json())
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();
    let (code, stdout, stderr) = run_cli(&world, &["config", "reindex"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("indexed admin -> shop/web"), "{stdout}");
    let (code, stdout, _) = run_cli(&world, &["config", "reindex"]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("0 entr(ies) written, 0 removed"),
        "{stdout}"
    );
    let (code, stdout, stderr) = run_cli(&world, &["config", "delete", "admin"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("deleted admin"), "{stdout}");
    assert_eq!(
        bluegreen::service_index::ServiceIndex::new(&world.ctx)
            .watching("shop/web")
            .await
            .unwrap(),
        ["shop"]
    );
    let (code, _, stderr) = run_cli(&world, &["config", "delete", "admin"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("ServiceNotFound"), "{stderr}");
}

/// What a pipeline cannot mistake for a failed deployment: a malformed `--digest` is bad usage
/// (2) at once; a service that is not configured, a missing table and an AWS that stays
/// unreachable are "cannot read" (3) — the first two at once, not after the whole `--timeout`
/// (the runs here would take ten minutes otherwise, past the two-minute bound), the last after
/// retrying until the timeout.
#[tokio::test]
async fn wait_tells_set_up_errors_from_a_failed_deployment() {
    let world = World::build().await;
    let endpoint = world.emulator.endpoint.as_str();
    let digest = ["wait", "--service", "shop", "--digest", "sha256:abc"];
    let out = finished(endpoint, &digest).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--digest \"sha256:abc\" is not an image digest"),
        "{}",
        text(&out.stderr)
    );

    let unknown = [
        "wait",
        "--service",
        "nosuch",
        "--tag",
        "v1",
        "--timeout",
        "10m",
    ];
    let out = finished(endpoint, &unknown).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("ServiceNotFound"),
        "{}",
        text(&out.stderr)
    );

    let missing = ["wait", "--deployment", "shop-1", "--timeout", "10m"];
    let out = finished_with(
        endpoint,
        &missing,
        &[("BLUEGREEN_DEPLOYMENTS_TABLE", "not-installed")],
    )
    .await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("ResourceNotFound")
            && text(&out.stderr).contains("not-installed"),
        "{}",
        text(&out.stderr)
    );

    // A deployment already running is followed even when its service's stored config went
    // (it carries its own copy): the timeout ends it (2), not "cannot read" (3).
    let id = deploy_to_approval(&world).await;
    let prefix = world.ctx.settings.config_prefix.trim_end_matches('/');
    aws_sdk_ssm::Client::new(&world.sdk)
        .delete_parameter()
        .name(format!("{prefix}/shop"))
        .send()
        .await
        .expect("the config goes");
    let running = [
        "wait",
        "--service",
        "shop",
        "--tag",
        "v2",
        "--timeout",
        "1s",
        "--interval",
        "200ms",
    ];
    let out = finished(endpoint, &running).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{id} is still awaiting_approval")),
        "{stderr}"
    );

    // Nothing listens on the endpoint: every look fails to connect (one attempt each: the SDK's own
    // retries are switched off, so each look is quick), is retried, and the timeout ends it as
    // "cannot read" with the cause, not as a timed-out deployment.
    let unreachable = [
        "wait",
        "--deployment",
        "shop-1",
        "--timeout",
        "3s",
        "--interval",
        "200ms",
    ];
    // A port just freed: nothing listens on it.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nothing = format!("http://{}", free.local_addr().unwrap());
    drop(free);
    let out = finished_with(&nothing, &unreachable, &[("AWS_MAX_ATTEMPTS", "1")]).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("trying again") && stderr.contains("AwsTransient"),
        "{stderr}"
    );
}

/// The lines of the README's first-hour walk: the `bash` block after its marker.
fn readme_walk() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README");
    let marker = "<!-- first-hour walk:";
    let after = &readme[readme.find(marker).expect("the walk's marker")..];
    let block = after
        .split_once("```bash\n")
        .expect("a bash block after the marker")
        .1
        .split_once("\n```")
        .expect("the block ends")
        .0;
    block.lines().map(str::to_owned).collect()
}

/// Stops what the walk's `local up` started, however the walk ended.
struct LocalDown(std::path::PathBuf);

impl Drop for LocalDown {
    fn drop(&mut self) {
        let _ = std::process::Command::new(env!("CARGO_BIN_EXE_bluegreen"))
            .args(["local", "down"])
            .env("TMPDIR", &self.0)
            .output();
    }
}

/// Issue 29 item 1: the README's first-hour walk, line by line as written, in `bash -e` from
/// the repository's root with no `AWS_*` in the environment, ends with production on the
/// adopted green slot, `doctor` exiting 0 on the way.
#[test]
fn the_readmes_first_hour_walk_runs_as_written() {
    let lines = readme_walk();
    assert!(
        lines.iter().any(|l| l.starts_with("bluegreen adopt")),
        "{lines:?}"
    );
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .canonicalize()
        .unwrap();
    let tmp = std::env::temp_dir().join(format!("bluegreen-walk-{}", std::process::id()));
    // The walk's working directory looks like the repository's root for its lines (events/,
    // .venv, target/debug with the binary under test), so adopt's shop.toml and `local up`'s
    // files land in the test's own directory, not in the repository.
    let work = tmp.join("repository");
    let _ = std::fs::remove_dir_all(&tmp); // a failed run's, of a process with this id
    std::fs::create_dir_all(work.join("target")).unwrap();
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_bluegreen"));
    let links = [
        (root.join("events"), work.join("events")),
        (root.join(".venv"), work.join(".venv")),
        (
            binary.parent().unwrap().to_owned(),
            work.join("target/debug"),
        ),
    ];
    for (from, to) in links {
        std::os::unix::fs::symlink(from, to).unwrap();
    }
    let _down = LocalDown(tmp.clone());
    let script = format!("set -euo pipefail\nset -x\n{}\n", lines.join("\n"));
    let mut command = std::process::Command::new("bash");
    command
        .arg("-c")
        .arg(&script)
        .current_dir(&work)
        .env("TMPDIR", &tmp);
    for (name, _) in std::env::vars() {
        if name.starts_with("AWS_") || name.starts_with("BLUEGREEN_") {
            command.env_remove(name);
        }
    }
    let out = command.output().expect("bash runs");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("production traffic: blue 0%, green 100%"),
        "{stdout}"
    );
    let status = stdout
        .lines()
        .find(|l| l.starts_with("shop "))
        .unwrap_or_default();
    assert!(
        status.contains("green"),
        "status shows production on green: {stdout}"
    );
    assert!(
        work.join("shop.toml").exists(),
        "adopt wrote the config file here"
    );
    let _ = std::fs::remove_dir_all(&tmp);
}
