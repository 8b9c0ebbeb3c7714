//! The simulator's [`Conductor`]: every AWS call waits a random virtual latency (so calls of
//! concurrent actors interleave differently for every seed), may be faulted, and is followed
//! by the invariant checks on the state it left.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::memory::{Conductor, Fate, State};

use super::invariants::Invariants;
use super::rng::Rng;

/// How often calls are faulted, per thousand.
#[derive(Debug, Clone, Copy)]
pub struct FaultRates {
    /// Throttled (nothing applied).
    pub throttle: u32,
    /// Applied, answer lost.
    pub lose_answer: u32,
    /// Applied, the invocation crashed.
    pub crash: u32,
}

impl FaultRates {
    /// No faults.
    pub const NONE: FaultRates = FaultRates {
        throttle: 0,
        lose_answer: 0,
        crash: 0,
    };
}

/// Conducts the in-memory AWS for one seed.
pub struct SimConductor {
    rng: Rng,
    faults: Mutex<FaultRates>,
    invariants: Arc<Invariants>,
    trace: Arc<Mutex<Vec<String>>>,
    calls: Mutex<u64>,
    /// Whether every call that changed AWS goes into the trace (`--calls`).
    trace_calls: bool,
}

impl SimConductor {
    /// A conductor drawing from `rng`, checking `invariants`, writing to `trace`.
    /// With `trace_calls`, every call that changed AWS is traced with its actor.
    pub fn new(
        rng: Rng,
        invariants: Arc<Invariants>,
        trace: Arc<Mutex<Vec<String>>>,
        trace_calls: bool,
    ) -> Self {
        SimConductor {
            rng,
            faults: Mutex::new(FaultRates::NONE),
            invariants,
            trace,
            calls: Mutex::new(0),
            trace_calls,
        }
    }

    /// From now on, calls are faulted at `rates`.
    pub fn arm(&self, rates: FaultRates) {
        *self.faults.lock().expect("faults") = rates;
    }

    /// Calls made so far.
    pub fn calls(&self) -> u64 {
        *self.calls.lock().expect("calls")
    }

    fn fate(&self) -> Fate {
        let rates = *self.faults.lock().expect("faults");
        let roll = self.rng.below(1000) as u32;
        if roll < rates.throttle {
            Fate::Throttle
        } else if roll < rates.throttle + rates.lose_answer {
            Fate::LoseAnswer
        } else if roll < rates.throttle + rates.lose_answer + rates.crash {
            Fate::Crash
        } else {
            Fate::Answer
        }
    }
}

#[async_trait::async_trait]
impl Conductor for SimConductor {
    async fn before(&self, operation: &'static str) -> Fate {
        // Most calls take tens of milliseconds; a few take seconds (a slow API, a cold
        // connection): the order of concurrent actors' calls changes with them.
        let latency = match self.rng.below(100) {
            0..=89 => 5 + self.rng.below(150),
            90..=98 => 200 + self.rng.below(2_000),
            _ => 2_000 + self.rng.below(8_000),
        };
        tokio::time::sleep(Duration::from_millis(latency)).await;
        let fate = self.fate();
        *self.calls.lock().expect("calls") += 1;
        if fate != Fate::Answer {
            self.trace
                .lock()
                .expect("trace")
                .push(format!("{} {operation}: {fate:?}", super::clock::stamp()));
        }
        fate
    }

    fn applied(&self, operation: &'static str, state: &State) {
        if self.trace_calls {
            self.trace.lock().expect("trace").push(format!(
                "{} {} {operation}",
                super::clock::stamp(),
                super::executions::actor()
            ));
        }
        self.invariants.check(operation, state);
    }
}
