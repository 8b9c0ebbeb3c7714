//! Virtual time: the simulator runs on tokio's paused clock, which jumps ahead whenever every
//! actor waits; bluegreen's clock and the state machines' read it from a fixed epoch.

use std::cell::Cell;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Where every run's clock starts.
pub const EPOCH: &str = "2026-11-21T09:00:00Z";

thread_local! {
    static START: Cell<Option<tokio::time::Instant>> = const { Cell::new(None) };
}

/// Starts the clock at [`EPOCH`] (inside the run's runtime).
pub fn start() {
    START.with(|s| s.set(Some(tokio::time::Instant::now())));
}

/// Virtual time elapsed since the start.
pub fn elapsed() -> Duration {
    START.with(|s| s.get().map(|t| t.elapsed()).unwrap_or_default())
}

/// The virtual now.
pub fn now() -> DateTime<Utc> {
    let epoch: DateTime<Utc> = EPOCH.parse().expect("the epoch parses");
    epoch + chrono::Duration::from_std(elapsed()).expect("a short run")
}

/// `+h:mm:ss.mmm` since the start, for traces.
pub fn stamp() -> String {
    let t = elapsed();
    let s = t.as_secs();
    format!(
        "+{}:{:02}:{:02}.{:03}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        t.subsec_millis()
    )
}

/// The runner's clock: virtual now, virtual sleeps.
pub struct SimClock;

impl bluegreen_statemachine::runner::Clock for SimClock {
    fn now(&self) -> DateTime<Utc> {
        now()
    }

    fn sleep(&self, seconds: f64) -> bluegreen_statemachine::runner::BoxFuture<'_, ()> {
        Box::pin(tokio::time::sleep(Duration::from_secs_f64(
            seconds.max(0.0),
        )))
    }

    fn timer(&self, seconds: f64) -> bluegreen_statemachine::runner::BoxFuture<'_, ()> {
        self.sleep(seconds)
    }
}
