//! Paced looks (`bluegreen::looks`) on virtual time: a check notices AWS finishing within the
//! invocation that was looking, and stops looking once an abort is requested.

use std::sync::Arc;
use std::time::Duration;

use bluegreen::looks::Pacing;
use bluegreen::record::Records;
use bluegreen::steps::migrate;

use bluegreen_tests::memory::{Conductor, Fate, Immediate, MemoryAws, State};
use bluegreen_tests::sim::clock;
use serde_json::Value;

/// A deployment whose migration task runs, in a world on the virtual clock whose checks look
/// as in Lambda: the world, its context, the deployment and the task.
async fn migrating() -> (MemoryAws, bluegreen::Context, String, String) {
    migrating_under(Arc::new(Immediate)).await
}

/// [`migrating`] under `conductor`.
async fn migrating_under(
    conductor: Arc<dyn Conductor>,
) -> (MemoryAws, bluegreen::Context, String, String) {
    let (aws, mut ctx, id, task) = super::migration_running(conductor).await;
    ctx.settings.pacing = Pacing::Paced;
    // Looks alone (`BLUEGREEN_WAKE_ON_EVENTS=off`): the waits ECS's events end are in wakes.rs.
    ctx.settings.wake_on_events = false;
    (aws, ctx, id, task)
}

/// One invocation of the migrate function's check.
async fn check(ctx: &bluegreen::Context, id: &str) -> Value {
    super::migrate_check(ctx, id).await
}

#[test]
fn a_paced_check_answers_done_in_the_invocation_during_which_the_migration_ended() {
    super::block_on(async {
        let (aws, ctx, id, task) = migrating().await;
        let began = clock::elapsed();
        let ends = Duration::from_millis(7_400);
        let world = aws.clone();
        tokio::spawn(async move {
            tokio::time::sleep(ends).await;
            super::stopped(&world, &task, "EssentialContainerExited", Some(0));
        });
        let answer = check(&ctx, &id).await;
        assert_eq!(answer["status"], "done", "{answer}");
        // Looks begin a second apart: the one after the task stopped saw it.
        let noticed = clock::elapsed() - began;
        assert!(
            noticed >= ends && noticed < ends + Duration::from_secs(1),
            "noticed {noticed:?} into the invocation, the task ended at {ends:?}"
        );
        let record = Records::new(&ctx).get(&id).await.unwrap();
        assert_eq!(record.inflight, None, "the invocation released its lease");
    });
}

#[test]
fn a_paced_check_looks_for_its_window_then_asks_to_be_invoked_again_within_a_second() {
    super::block_on(async {
        let (_aws, ctx, id, _task) = migrating().await;
        let began = clock::elapsed();
        let answer = check(&ctx, &id).await;
        assert_eq!(answer["status"], "pending", "{answer}");
        assert_eq!(answer["wait_seconds"], 1, "{answer}");
        let looked = clock::elapsed() - began;
        let window = Duration::from_secs(migrate::LOOKS.window_seconds);
        assert!(
            looked >= window - Duration::from_secs(1) && looked <= window + Duration::from_secs(1),
            "looked for {looked:?}, the window is {window:?}"
        );
    });
}

#[test]
fn a_paced_check_stops_looking_once_an_abort_is_requested() {
    super::block_on(async {
        let (_aws, ctx, id, _task) = migrating().await;
        let began = clock::elapsed();
        let requested_at = Duration::from_millis(3_300);
        let operator = ctx.clone();
        let aborted = id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(requested_at).await;
            bluegreen::fence::request_abort(&operator, &aborted, "bob", &[])
                .await
                .unwrap();
        });
        let answer = check(&ctx, &id).await;
        assert_eq!(answer["status"], "pending", "{answer}");
        let stopped = clock::elapsed() - began;
        assert!(
            stopped < requested_at + Duration::from_secs(1),
            "stopped looking {stopped:?} into the invocation; the abort came at {requested_at:?}"
        );
        let record = Records::new(&ctx).get(&id).await.unwrap();
        assert_eq!(
            record.inflight, None,
            "the ending need not wait for the window"
        );
    });
}

/// Throttles the `nth` call of `operation` (counting from 1), answers every other call.
struct ThrottleNth {
    operation: &'static str,
    left: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl Conductor for ThrottleNth {
    async fn before(&self, operation: &'static str) -> Fate {
        use std::sync::atomic::Ordering;
        if operation == self.operation && self.left.fetch_sub(1, Ordering::SeqCst) == 1 {
            return Fate::Throttle;
        }
        Fate::Answer
    }

    fn applied(&self, _operation: &'static str, _state: &State) {}
}

/// A look throttled after a pending one answers that pending one, with the check's own wait
/// (the state machine invokes the check again after it), instead of failing the invocation
/// into the task's retries.
#[test]
fn a_throttled_look_after_a_pending_one_answers_the_pending_one() {
    super::block_on(async {
        let conductor = Arc::new(ThrottleNth {
            operation: "ecs:DescribeTasks",
            left: std::sync::atomic::AtomicUsize::new(3),
        });
        let (_aws, ctx, id, _task) = migrating_under(conductor.clone()).await;
        let began = clock::elapsed();
        let answer = check(&ctx, &id).await;
        assert_eq!(answer["status"], "pending", "{answer}");
        // The check's own backoff, not the pace: a throttled API is not asked again at once.
        assert_eq!(answer["wait_seconds"], 5, "{answer}");
        assert!(
            clock::elapsed() - began < Duration::from_secs(5),
            "answered at the throttled look, not after the window"
        );
        let left = conductor.left.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(left, 0, "the throttled look was the last call of its kind");
    });
}
