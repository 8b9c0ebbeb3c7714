//! Waits ECS's events end (`bluegreen::wakes`) on the emulator's DynamoDB, through the local
//! runner's task handler: the `.waitForTaskToken` task of a migration wait ends when the wake
//! function is given the task's stop event, at once when the event came first, and not for a
//! change that ends nothing. (The simulator's tests run the same on virtual time with Step
//! Functions' tokens; these hold the conditional writes to DynamoDB's own semantics.)

use std::sync::Arc;
use std::time::Duration;

use bluegreen::steps::registry::{self, MIGRATE, WAKE};
use bluegreen::wakes;
use bluegreen_statemachine::local::LocalTasks;
use bluegreen_statemachine::validate::WAIT_FOR_TOKEN;
use bluegreen_statemachine::{ScaledClock, TaskCall, TaskHandler};
use bluegreen_tests::World;
use serde_json::{Value, json};

const STARTED_BY: &str = "bg-3f9a1c2d4e5b6a70-migrate";

/// The stop of the task started by `started_by` (events/ecs-task-stopped.json), with
/// `last_status`.
fn task_event(started_by: &str, last_status: &str) -> Value {
    let mut event: Value =
        serde_json::from_str(include_str!("../../events/ecs-task-stopped.json")).unwrap();
    event["detail"]["startedBy"] = json!(started_by);
    event["detail"]["lastStatus"] = json!(last_status);
    event
}

/// The migrate step's wait for its task's event, as the definition's `MigrateWaitForEvent`
/// task calls it, run by the local runner's handler (looking at its wait item every virtual
/// second of a clock a thousand times faster than real time).
async fn wait_for_event(world: &World, token: &str) -> Result<Value, String> {
    let tasks = LocalTasks::new(world.ctx.clone(), Arc::new(ScaledClock::new(0.001)), 1.0);
    let call = TaskCall {
        state: "MigrateWaitForEvent".into(),
        resource: WAIT_FOR_TOKEN.into(),
        input: json!({
            "FunctionName": MIGRATE.placeholder(),
            "Payload": {
                "action": "await",
                "deployment_id": "shop-1",
                "wake_on": wakes::task_key(STARTED_BY),
                "task_token": token,
            },
        }),
        task_token: Some(token.into()),
        execution_id: "shop-1".into(),
    };
    tasks.invoke(call).await.map_err(|f| format!("{f:?}"))
}

/// A task token as the local runner makes them.
fn local_token(n: u32) -> String {
    format!(
        "{}shop-1:MigrateWaitForEvent:{n}",
        bluegreen::steps::approval::LOCAL_TOKEN_PREFIX
    )
}

async fn deliver(world: &World, event: &Value) -> Value {
    registry::invoke(&world.ctx, &WAKE, event.clone())
        .await
        .unwrap()
}

/// Waits (in real time, at most 10 s) until the wait item holds `token`: the await stored it.
async fn stored(world: &World, token: &str) {
    let key = wakes::task_key(STARTED_BY);
    for _ in 0..200 {
        if wakes::still_waiting(&world.ctx, &key, token).await.unwrap() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the await never stored its token");
}

/// Whether `wait` is still waiting after a real 200 ms (two hundred virtual seconds of looks).
async fn still_waits<F: std::future::Future>(wait: &mut std::pin::Pin<Box<F>>) -> bool {
    tokio::time::timeout(Duration::from_millis(200), wait.as_mut())
        .await
        .is_err()
}

#[tokio::test]
async fn a_task_stop_event_ends_the_wait_and_a_running_change_does_not() {
    let world = World::build().await;
    let token = local_token(1);
    let mut wait = Box::pin(wait_for_event(&world, &token));
    assert!(still_waits(&mut wait).await, "nothing came yet");
    // The await ran within the wait's first poll; the item holds its token before any event.
    tokio::select! {
        biased;
        () = stored(&world, &token) => {}
        ended = wait.as_mut() => panic!("the wait ended before any event: {ended:?}"),
    }

    let ignored = deliver(&world, &task_event(STARTED_BY, "RUNNING")).await;
    assert_eq!(ignored["outcome"], "ignored", "{ignored}");
    let other = deliver(
        &world,
        &task_event("bg-0000000000000000-migrate", "STOPPED"),
    )
    .await;
    assert_eq!(other["outcome"], "noted", "another task's stop: {other}");
    assert!(still_waits(&mut wait).await, "neither ended the wait");

    let woke = deliver(&world, &task_event(STARTED_BY, "STOPPED")).await;
    assert_eq!(woke["outcome"], "woke", "{woke}");
    assert_eq!(woke["deployment_id"], "shop-1");
    let ended = tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .expect("the wait ended after the event");
    assert_eq!(
        ended.unwrap()["woken_by"],
        json!(wakes::task_key(STARTED_BY))
    );

    // The same stop again: nobody waits, the news is kept for the next wait (which then runs
    // its check at once: the check decides).
    let again = deliver(&world, &task_event(STARTED_BY, "STOPPED")).await;
    assert_eq!(again["outcome"], "noted", "{again}");
}

/// The await fails with `Woken`, which the definition catches into the check.
#[tokio::test]
async fn a_stop_that_came_before_the_wait_ends_it_at_once() {
    let world = World::build().await;
    let noted = deliver(&world, &task_event(STARTED_BY, "STOPPED")).await;
    assert_eq!(noted["outcome"], "noted", "{noted}");
    let token = local_token(2);
    let ended = tokio::time::timeout(Duration::from_secs(10), wait_for_event(&world, &token))
        .await
        .expect("woken at once");
    let failed = ended.unwrap_err();
    assert!(failed.contains("\"Woken\""), "{failed}");
    // The news was taken with it: the next wait waits.
    let next = local_token(3);
    let mut later = Box::pin(wait_for_event(&world, &next));
    assert!(still_waits(&mut later).await);
}

#[tokio::test]
async fn an_event_that_is_not_ecs_is_malformed_for_the_wake_function() {
    let world = World::build().await;
    let ssm: Value =
        serde_json::from_str(include_str!("../../events/ssm-config-change.json")).unwrap();
    let err = registry::invoke(&world.ctx, &WAKE, ssm).await.unwrap_err();
    assert_eq!(err.name(), "EventMalformed", "{err}");
}
