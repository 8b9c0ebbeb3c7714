//! The start/check shape of long-running steps.
//!
//! Waiting happens in the state machine, not in Lambda: a step's `start` begins the work and
//! returns a deadline; `check` looks once and returns [`Poll::Done`] or [`Poll::Pending`] with
//! the delay before the next look (exponential backoff on the attempt number). Failures are
//! errors. Deadlines travel in the execution input, so a retried check sees the same deadline.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Input of a check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CheckInput {
    /// The deployment.
    pub deployment_id: String,
    /// When the work must have finished.
    pub deadline: DateTime<Utc>,
    /// How many checks came before this one (drives the backoff).
    #[serde(default)]
    pub attempt: u32,
}

/// What `start` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Started {
    /// The deployment.
    pub deployment_id: String,
    /// When the work must have finished; pass it to every check.
    pub deadline: DateTime<Utc>,
    /// When the definition's poll loop gives up on a step that never gave its verdict
    /// (`States.Timeout`): [`BACKSTOP_GRACE_SECONDS`] after `deadline`. A check that began
    /// before the deadline and answered "pending" after it (a slow round of smoke checks)
    /// then gets one more look, at the deadline, and fails with its own error and evidence —
    /// had the loop compared the deadline itself, which error ended the deployment would
    /// depend on how long that check took.
    pub backstop: DateTime<Utc>,
    /// Seconds to wait before the first check.
    pub wait_seconds: u64,
    /// The attempt number of the first check (always 0); the state machine's poll loop passes
    /// it on like a check's answer.
    #[serde(default)]
    pub attempt: u32,
}

/// How long after a step's deadline the definition's poll loop waits before it gives up on
/// the step (`Started::backstop`): longer than the slowest check (the health check and
/// promote functions' 150 s timeout) plus the one-second wait to the deadline's look.
pub const BACKSTOP_GRACE_SECONDS: i64 = 300;

/// What a check returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Poll {
    /// Finished successfully.
    Done {
        /// Human-readable result.
        detail: String,
    },
    /// Not yet; look again after `wait_seconds`.
    Pending {
        /// Seconds to wait.
        wait_seconds: u64,
        /// Next attempt number.
        attempt: u32,
        /// What is being waited for.
        detail: String,
        /// The wait is a schedule, not AWS's work: a TTL, a canary step, a settle time, a
        /// failed smoke round's backoff. Nothing will be different before it ends, so a paced
        /// check does not look again in between (`crate::looks`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        scheduled: bool,
        /// The wait ends with an ECS event under this key (see `crate::wakes`): the state
        /// machine waits for it, up to `wait_seconds` (the slow path when it is lost).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wake_on: Option<String>,
    },
}

impl Poll {
    /// This answer, a pending one's wait made a schedule (see `Poll::Pending::scheduled`).
    pub fn on_schedule(mut self) -> Poll {
        if let Poll::Pending { scheduled, .. } = &mut self {
            *scheduled = true;
        }
        self
    }
}

/// Backoff for check loops: 5, 10, 20, 40, 60, 60, … seconds, never past the deadline by more
/// than a second. The remaining time is rounded up, so the last look lands at or just after
/// the deadline: the step itself gives the verdict there, with its evidence. (Rounded down,
/// the last look landed a fraction of a second before the deadline, answered "pending", and
/// the definition's deadline exit then failed the step as a bare `States.Timeout`.)
pub fn backoff(attempt: u32, now: DateTime<Utc>, deadline: DateTime<Utc>) -> u64 {
    const FIRST: u64 = 5;
    const MAX: u64 = 60;
    // 16 doublings are far past MAX; the cap keeps the shift from overflowing.
    let delay = FIRST.saturating_mul(1u64 << attempt.min(16)).min(MAX);
    let remaining = ((deadline - now).num_milliseconds().max(0) as u64).div_ceil(1000);
    delay.min(remaining.max(1))
}

/// A pending answer for the next attempt.
pub fn pending(input: &CheckInput, now: DateTime<Utc>, detail: impl Into<String>) -> Poll {
    Poll::Pending {
        wait_seconds: backoff(input.attempt, now, input.deadline),
        attempt: input.attempt + 1,
        detail: detail.into(),
        scheduled: false,
        wake_on: None,
    }
}

/// A pending answer whose wait an ECS event under `key` ends (see `crate::wakes`): the state
/// machine waits for the event up to `slow_path_seconds` — never past the deadline — and the
/// check looks again either way.
pub fn awaiting_event(
    input: &CheckInput,
    now: DateTime<Utc>,
    detail: impl Into<String>,
    key: String,
    slow_path_seconds: u64,
) -> Poll {
    let remaining = ((input.deadline - now).num_milliseconds().max(0) as u64).div_ceil(1000);
    Poll::Pending {
        wait_seconds: slow_path_seconds.min(remaining).max(1),
        attempt: input.attempt + 1,
        detail: detail.into(),
        scheduled: false,
        wake_on: Some(key),
    }
}

/// Whether a check looks again within one invocation (`BLUEGREEN_CHECK_PACING`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pacing {
    /// Look every [`crate::looks::Looks::every_seconds`] for up to the window (Lambda, the local runner; see `crate::looks`).
    #[default]
    Paced,
    /// One look per invocation, answered as the check answers it (tests that want one answer).
    Once,
}

impl Pacing {
    /// Reads `BLUEGREEN_CHECK_PACING`: `once` is [`Pacing::Once`], anything else (or unset)
    /// [`Pacing::Paced`].
    pub fn parse(value: Option<&str>) -> Self {
        match value.map(str::trim) {
            Some(v) if v.eq_ignore_ascii_case("once") => Pacing::Once,
            _ => Pacing::Paced,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    /// A wait for an event lasts its slow path, never past the deadline, and never 0 s (Step
    /// Functions refuses a timeout that is not a positive whole number: the execution would
    /// fail uncaught).
    #[test]
    fn a_wait_for_an_event_is_at_least_a_second_and_never_past_the_deadline() {
        let now = Utc::now();
        let input = |deadline| CheckInput {
            deployment_id: "shop-1".into(),
            deadline,
            attempt: 2,
        };
        let wait = |deadline| match awaiting_event(&input(deadline), now, "", "k".into(), 30) {
            Poll::Pending {
                wait_seconds,
                wake_on: Some(_),
                attempt: 3,
                ..
            } => wait_seconds,
            other => panic!("{other:?}"),
        };
        assert_eq!(wait(now + Duration::hours(1)), 30);
        assert_eq!(wait(now + Duration::milliseconds(12_300)), 13);
        assert_eq!(wait(now), 1);
        assert_eq!(wait(now - Duration::minutes(5)), 1);
    }

    #[test]
    fn backoff_doubles_then_caps_at_a_minute() {
        let now = Utc::now();
        let far = now + Duration::hours(1);
        let delays: Vec<u64> = (0..6).map(|a| backoff(a, now, far)).collect();
        assert_eq!(delays, vec![5, 10, 20, 40, 60, 60]);
    }

    #[test]
    fn backoff_never_waits_past_the_deadline() {
        let now = Utc::now();
        assert_eq!(backoff(5, now, now + Duration::seconds(7)), 7);
        assert_eq!(backoff(5, now, now - Duration::seconds(7)), 1);
        // A fraction of a second left rounds up: the next look is past the deadline.
        assert_eq!(backoff(5, now, now + Duration::milliseconds(1_400)), 2);
    }
}
