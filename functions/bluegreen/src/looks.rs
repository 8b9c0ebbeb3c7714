//! How a check looks while AWS works: every second or two within one invocation, so a
//! deployment moves on about a second after AWS finished, not 25–30 s later.
//!
//! A polling step's `check` looks once (see [`crate::poll`]). Looked at only from the state
//! machine's Wait states with backoff (5, 10, 20, 40, 60 s …), a completion is noticed on
//! average half a backoff late — minutes per deployment. So each invocation of a check looks
//! again every [`Looks::every_seconds`] for up to [`Looks::window_seconds`], then answers
//! pending with a wait of at most `every_seconds`: the state machine invokes it again almost
//! at once. Deadlines, evidence and the steps' verdicts are the check's own, unchanged; only
//! how often it is asked changes. Between looks the invocation reads the record and stops
//! looking when an abort was requested, so an abort waits for one look, not a window.
//!
//! [`Pacing::Once`] is the old behaviour (one look per invocation, the backoff the check
//! answers): tests that call a check to see one answer use it, and the lead-time benchmark
//! compares the two.

use std::future::Future;
use std::time::Duration;

use tracing::{info, warn};

use crate::context::Context;
use crate::error::StepResult;
use crate::fence;
pub use crate::poll::Pacing;
use crate::poll::Poll;

/// How one polling step looks (each step module's `LOOKS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Looks {
    /// Seconds between two looks: the worst lag between AWS finishing and the step noticing.
    /// Chosen per wait from what the look costs and the API's rate limits (README, "Lead
    /// time").
    pub every_seconds: u64,
    /// How long one invocation keeps looking before it answers pending (0: one look).
    pub window_seconds: u64,
    /// The longest one look may take (its own bounded work: a round of smoke checks, SDK
    /// calls): a look begun at the end of the window must still end within the function's
    /// timeout. A test holds `window_seconds + look_bound_seconds` within every step's timeout.
    pub look_bound_seconds: u64,
    /// The EventBridge detail types that end this step's waits (`crate::wakes`): its pending
    /// answers may carry `wake_on`, and the definition waits for the event between checks.
    /// Empty: the step's waits are looked at only.
    pub woken_by: &'static [&'static str],
}

/// What a paced check does after a look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Give this look's answer to the state machine.
    Answer,
    /// Look again after this long, within the same invocation.
    LookAgainIn(Duration),
}

/// The decision after a look that began `began` into the invocation, now `now` into it, and
/// answered `answer`. Done (and every error, which never reaches here) is answered at once, as
/// is a wait that is a schedule; pending is looked at again the shorter of the check's own
/// wait and `every_seconds` after that look began (at once if the look took longer), as long
/// as that next look begins within the window: so the last look begins by the window's end,
/// and the invocation ends by `window_seconds + look_bound_seconds`. A wait an ECS event ends
/// (`wake_on`) has a window of [`crate::wakes::EVENT_LOOK_WINDOW_SECONDS`]: after a wake,
/// ECS's describe may lag its event by a moment; then the state machine waits for the next.
pub fn after_look(
    looks: &Looks,
    pacing: Pacing,
    began: Duration,
    now: Duration,
    answer: &Poll,
) -> Next {
    let Poll::Pending {
        wait_seconds,
        scheduled: false,
        wake_on,
        ..
    } = answer
    else {
        return Next::Answer;
    };
    if pacing == Pacing::Once {
        return Next::Answer;
    }
    // A wait an event ends is looked at only briefly: the event wakes the next check.
    let window = match wake_on {
        Some(_) => looks
            .window_seconds
            .min(crate::wakes::EVENT_LOOK_WINDOW_SECONDS),
        None => looks.window_seconds,
    };
    let next = (began + Duration::from_secs(gap_seconds(looks, *wait_seconds))).max(now);
    if next <= Duration::from_secs(window) {
        Next::LookAgainIn(next - now)
    } else {
        Next::Answer
    }
}

/// Seconds between two looks: the check's own wait (a deadline) when it is sooner, never less
/// than a second (a check answering "look at once" must not spin).
fn gap_seconds(looks: &Looks, wait_seconds: u64) -> u64 {
    wait_seconds.min(looks.every_seconds).max(1)
}

/// A pending answer as a paced invocation hands it to the state machine: its Wait is at
/// most `every_seconds`, so the next invocation looks about when the next look would have. A
/// schedule's wait is kept, and so is a wait an event ends (`wake_on`: the slow path).
pub fn handed_back(looks: &Looks, pacing: Pacing, mut answer: Poll) -> Poll {
    if let (
        Pacing::Paced,
        Poll::Pending {
            wait_seconds,
            scheduled: false,
            wake_on: None,
            ..
        },
    ) = (pacing, &mut answer)
    {
        *wait_seconds = (*wait_seconds).min(looks.every_seconds);
    }
    answer
}

/// Runs `look` (one look of a step's check on `deployment_id`) as [`after_look`] decides,
/// and hands the last answer back. Between looks the record is read ([`fence::guard`]): once
/// an abort was requested or the deployment ended, the invocation stops looking and answers,
/// so the ending does not wait for the window (a failed read also just answers). A later
/// look failing for now (throttled) answers the pending one before it, with the check's own
/// wait: the state machine then invokes the check again after that backoff, instead of
/// retrying a failure.
pub async fn watch<F, Fut>(
    ctx: &Context,
    deployment_id: &str,
    looks: Looks,
    mut look: F,
) -> StepResult<Poll>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = StepResult<Poll>>,
{
    let pacing = ctx.settings.pacing;
    let start = ctx.now();
    let since_start = |ctx: &Context| (ctx.now() - start).to_std().unwrap_or_default();
    let mut last: Option<Poll> = None;
    loop {
        let began = since_start(ctx);
        let answer = match (look().await, last.take()) {
            (Ok(answer), _) => answer,
            // With the check's own wait (its backoff), not the pace: a throttled API is not
            // asked again within a second.
            (Err(e), Some(pending)) if e.is_retryable() => {
                warn!(%deployment_id, error = %e, "a look failed for now; answering the one before it");
                return Ok(pending);
            }
            (Err(e), _) => return Err(e),
        };
        let decided = since_start(ctx);
        match after_look(&looks, pacing, began, decided, &answer) {
            Next::Answer => return Ok(handed_back(&looks, pacing, answer)),
            Next::LookAgainIn(gap) => {
                if let Err(e) = fence::guard(ctx, deployment_id, "another look").await {
                    info!(%deployment_id, why = %e, "stopped looking");
                    return Ok(handed_back(&looks, pacing, answer));
                }
                // The guard's read took some of the gap.
                ctx.sleep((decided + gap).saturating_sub(since_start(ctx)))
                    .await;
                last = Some(answer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOOKS: Looks = Looks {
        every_seconds: 1,
        window_seconds: 30,
        look_bound_seconds: 20,
        woken_by: &[],
    };

    fn pending(wait_seconds: u64) -> Poll {
        Poll::Pending {
            wait_seconds,
            attempt: 3,
            detail: "rolling out".into(),
            scheduled: false,
            wake_on: None,
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn a_pending_look_is_looked_at_again_a_second_after_it_began_until_the_window_ends() {
        let again = after_look(&LOOKS, Pacing::Paced, secs(0), ms(300), &pending(40));
        assert_eq!(again, Next::LookAgainIn(ms(700)));
        let last = after_look(&LOOKS, Pacing::Paced, secs(29), ms(29_100), &pending(40));
        assert_eq!(last, Next::LookAgainIn(ms(900)));
        let over = after_look(&LOOKS, Pacing::Paced, secs(30), ms(30_100), &pending(40));
        assert_eq!(over, Next::Answer);
    }

    /// A look that took long (a slow call, a smoke round) is followed at once — but never by
    /// one beginning past the window: the invocation then ends within window + one look.
    #[test]
    fn a_slow_look_never_lets_the_next_one_begin_past_the_window() {
        let soon = after_look(&LOOKS, Pacing::Paced, secs(5), secs(12), &pending(40));
        assert_eq!(soon, Next::LookAgainIn(Duration::ZERO));
        let late = after_look(&LOOKS, Pacing::Paced, secs(0), secs(31), &pending(40));
        assert_eq!(late, Next::Answer);
    }

    #[test]
    fn done_once_and_schedules_answer_after_one_look() {
        let done = Poll::Done {
            detail: "settled".into(),
        };
        assert_eq!(
            after_look(&LOOKS, Pacing::Paced, secs(0), secs(0), &done),
            Next::Answer
        );
        assert_eq!(
            after_look(&LOOKS, Pacing::Once, secs(0), secs(0), &pending(40)),
            Next::Answer
        );
        let no_window = Looks {
            window_seconds: 0,
            ..LOOKS
        };
        assert_eq!(
            after_look(&no_window, Pacing::Paced, secs(0), secs(0), &pending(40)),
            Next::Answer
        );
        let ttl = pending(300).on_schedule();
        assert_eq!(
            after_look(&LOOKS, Pacing::Paced, secs(0), secs(0), &ttl),
            Next::Answer
        );
        assert_eq!(
            handed_back(&LOOKS, Pacing::Paced, ttl.clone()),
            ttl,
            "its wait kept"
        );
    }

    #[test]
    fn a_sooner_wait_of_the_check_is_kept_and_at_once_does_not_spin() {
        let slow = Looks {
            every_seconds: 10,
            ..LOOKS
        };
        assert_eq!(
            after_look(&slow, Pacing::Paced, secs(0), secs(0), &pending(3)),
            Next::LookAgainIn(secs(3))
        );
        assert_eq!(
            after_look(&slow, Pacing::Paced, secs(0), secs(0), &pending(0)),
            Next::LookAgainIn(secs(1))
        );
        // The next look would begin past the window: answer now.
        assert_eq!(
            after_look(&slow, Pacing::Paced, secs(25), secs(25), &pending(40)),
            Next::Answer
        );
    }

    #[test]
    fn a_paced_answer_is_looked_at_again_within_every_seconds() {
        assert_eq!(
            handed_back(&LOOKS, Pacing::Paced, pending(40)),
            Poll::Pending {
                wait_seconds: 1,
                attempt: 3,
                detail: "rolling out".into(),
                scheduled: false,
                wake_on: None,
            }
        );
        assert_eq!(handed_back(&LOOKS, Pacing::Once, pending(40)), pending(40));
    }

    fn awaiting(wait_seconds: u64) -> Poll {
        match pending(wait_seconds) {
            Poll::Pending {
                wait_seconds,
                attempt,
                detail,
                scheduled,
                ..
            } => Poll::Pending {
                wait_seconds,
                attempt,
                detail,
                scheduled,
                wake_on: Some("ecs-task:bg-shop-1-migrate".into()),
            },
            done => done,
        }
    }

    /// A wait an ECS event ends keeps its wait (the slow path, waited for in the state
    /// machine) and is looked at only for the short window after a wake.
    #[test]
    fn a_wait_an_event_ends_is_looked_at_briefly_and_handed_back_whole() {
        let short = crate::wakes::EVENT_LOOK_WINDOW_SECONDS;
        let look =
            |began, now, answer: &Poll| after_look(&LOOKS, Pacing::Paced, began, now, answer);
        let within = look(secs(short - 1), ms(100), &awaiting(30));
        assert!(matches!(within, Next::LookAgainIn(_)), "{within:?}");
        let past = look(secs(short), ms(short * 1000 + 100), &awaiting(30));
        assert_eq!(past, Next::Answer);
        // The same look without an event keeps looking for the step's window.
        let plain = look(secs(short), ms(short * 1000 + 100), &pending(30));
        assert!(matches!(plain, Next::LookAgainIn(_)), "{plain:?}");
        assert_eq!(
            handed_back(&LOOKS, Pacing::Paced, awaiting(30)),
            awaiting(30)
        );
    }
}
