//! The simulator's [`Conductor`]: every AWS call waits a random virtual latency (so calls of
//! concurrent actors interleave differently for every seed), may be faulted, and is followed
//! by the invariant checks on the state it left.

use std::future::Future;
use std::pin::Pin;
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

/// An action that runs to its end before the `at`-th changing call of a step invocation
/// (the interleaving campaign, [`super::race`]).
pub struct Racer {
    /// Before which changing step call (1-based).
    pub at: u64,
    /// The action.
    pub run: Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>,
}

/// Conducts the in-memory AWS for one seed.
pub struct SimConductor {
    /// Changing calls made by step invocations so far.
    step_changes: Mutex<u64>,
    /// The armed racer, until it ran.
    racer: Mutex<Option<Racer>>,
    /// Where the racer ran: the paused invocation and its call.
    raced_at: Mutex<Option<String>>,
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
            step_changes: Mutex::new(0),
            racer: Mutex::new(None),
            raced_at: Mutex::new(None),
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

    /// Arms `racer`.
    pub fn race(&self, racer: Racer) {
        *self.racer.lock().expect("racer") = Some(racer);
    }

    /// Changing calls made by step invocations so far.
    pub fn step_changes(&self) -> u64 {
        *self.step_changes.lock().expect("step changes")
    }

    /// The paused invocation and call the racer ran before, once it ran.
    pub fn raced_at(&self) -> Option<String> {
        self.raced_at.lock().expect("raced at").clone()
    }

    /// Runs the racer when this is the changing step call it waits for.
    async fn maybe_race(&self, operation: &'static str) {
        let actor = super::executions::actor();
        if !actor.contains('@') || !super::race::changes(operation) {
            return;
        }
        let seen = {
            let mut seen = self.step_changes.lock().expect("step changes");
            *seen += 1;
            *seen
        };
        let racer = {
            let mut racer = self.racer.lock().expect("racer");
            match racer.as_ref() {
                Some(r) if r.at == seen => racer.take(),
                _ => None,
            }
        };
        if let Some(racer) = racer {
            *self.raced_at.lock().expect("raced at") = Some(format!("{actor} {operation}"));
            // Its own task: the action runs to its end even if the paused invocation reaches
            // its Lambda timeout meanwhile (then the invocation dies there, as a Lambda would).
            let _ = tokio::spawn((racer.run)()).await;
        }
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
        self.maybe_race(operation).await;
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
