//! A real browser (Debian's Chromium, headless, driven by playwright-core) opens the approval
//! link a person was sent, sees the pending deployment with its evidence, approves it, and the
//! deployment — run by the local runner with the committed definitions — continues through the
//! switch to success.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bluegreen::Slot;
use bluegreen::record::{Records, Status};
use bluegreen_statemachine::local::LocalTasks;
use bluegreen_statemachine::{
    DEPLOYMENT_ASL, Definition, INTAKE_ASL, Outcome, Runner, ScaledClock,
};
use bluegreen_tests::{Simulator, push_event};

use crate::*;

fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// Runs the browser script `script` (in `tests/browser`) on `url`, saving its screenshot to
/// `screenshot`: what it printed, once it succeeded.
async fn browse(script: &str, url: &str, screenshot: &std::path::Path) -> String {
    let browser = tokio::process::Command::new("node")
        .arg(browser_dir().join(script))
        .arg(url)
        .arg(screenshot)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&browser.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&browser.stderr);
    assert!(browser.status.success(), "browser: {stderr}\n{stdout}");
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_approves_in_a_real_browser_and_the_deployment_switches() {
    assert!(
        browser_dir().join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run `npm ci --prefix tests/browser` (scripts/test does)"
    );
    let (listener, url) = listener().await;
    let world = world_with_console(&url).await;
    let _simulator = Simulator::start(&world);
    let _console = serve(world.ctx.clone(), listener, None);

    // A virtual second lasts 10 ms: the one-hour approval window stays open for 36 s.
    let clock = ScaledClock::new(0.01);
    let ctx = world.ctx.clone().with_clock(Arc::new(clock.shared_now()));
    let tasks = Arc::new(LocalTasks::new(ctx, Arc::new(clock.clone()), 5.0));
    let deployment = tokio::spawn(async move {
        let intake = Runner::new(
            Definition::parse(INTAKE_ASL).unwrap(),
            "arn:local:intake",
            tasks.clone(),
            Arc::new(clock.clone()),
        );
        let event = push_event("v2", 'e', "browser-1", "2026-11-21T10:00:00Z");
        let intake = intake.run("intake-1", event).await;
        assert!(
            matches!(intake.outcome, Outcome::Succeeded(_)),
            "{:?}",
            intake.outcome
        );
        let start = tasks
            .take_started()
            .pop()
            .expect("the intake started a deployment");
        Runner::new(
            Definition::parse(DEPLOYMENT_ASL).unwrap(),
            "arn:local:deployment",
            tasks.clone(),
            Arc::new(clock),
        )
        .run(&start.name, start.input)
        .await
    });

    let mut pending = None;
    // Bounded: pre-prod is healthy and Alice notified within a few real seconds. The status
    // is written before the notification is published, so wait for the link itself.
    for _ in 0..600 {
        let waiting = Records::new(&world.ctx)
            .with_status(Status::AwaitingApproval)
            .await
            .unwrap();
        if let Some(d) = waiting.into_iter().next() {
            let sent = links_sent(&world, &d.deployment_id).await;
            if let Some((_, link)) = sent.into_iter().find(|(who, _)| who == "alice@example.com") {
                pending = Some((d.deployment_id, link));
                break;
            }
        }
        assert!(
            !deployment.is_finished(),
            "the deployment ended before its approval"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (id, link) = pending.expect("a deployment awaits approval");

    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-pending.png");
    let stdout = browse("approve.mjs", &link, &screenshot).await;
    assert!(stdout.contains("continues to the switch"), "{stdout}");
    assert!(screenshot.is_file(), "no screenshot");

    let finished = deployment.await.unwrap();
    assert!(
        matches!(finished.outcome, Outcome::Succeeded(_)),
        "{:?}",
        finished.outcome
    );
    let entered = finished.states_entered();
    let approval = entered.iter().position(|s| s == "Approval").unwrap();
    assert!(
        entered[approval..].iter().any(|s| s.starts_with("Switch")),
        "{entered:?}"
    );
    assert_eq!(world.production().await.live().unwrap(), Slot::Green);
    let d = stored(&world, &id).await;
    assert_eq!(d.status, Status::Succeeded);
    let approval = d.approval.unwrap();
    assert_eq!(
        (approval.approver.as_deref(), approval.channel.as_deref()),
        (Some("alice@example.com"), Some("console"))
    );
}

/// A person opens the delivery metrics in a real browser, follows the service's link and sees
/// its numbers and three charts drawn with bars, and the steps' legend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_reads_a_services_delivery_metrics_and_charts_in_a_real_browser() {
    let (listener, url) = listener().await;
    let world = World::build().await;
    let past = bluegreen_tests::history::standard(chrono::Utc::now());
    bluegreen_tests::history::seed(&world.ctx, &world.config(), &past).await;
    let _console = serve(
        world.ctx.clone(),
        listener,
        Some("arn:aws:iam::123456789012:user/oncall"),
    );
    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-metrics.png");
    let stdout = browse("metrics.mjs", &url, &screenshot).await;
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).expect(&stdout);
    assert_eq!(seen["charts"], 3, "{seen}");
    let drawn = seen["drawn"].as_array().unwrap();
    // Per day: the two days with a success have a bar; lead time: three deployments reached
    // production; per step: every deployment's steps.
    let bars: Vec<u64> = drawn.iter().map(|c| c["bars"].as_u64().unwrap()).collect();
    assert_eq!(bars[..2], [2, 3], "{seen}");
    assert!(bars[2] >= 4 * 5, "{seen}");
    assert!(
        drawn.iter().all(|c| c["width"].as_u64().unwrap() > 300),
        "charts are drawn at the page's width: {seen}"
    );
    let legend: Vec<&str> = seen["legend"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l.as_str())
        .collect();
    assert!(
        legend.contains(&"bake") && legend.contains(&"approval"),
        "{seen}"
    );
    assert!(screenshot.is_file(), "no screenshot");
}
