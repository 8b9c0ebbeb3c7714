//! The simulator's one source of randomness: a seeded PRNG, shared by every actor of one run
//! (one thread), so a seed replays the same run.

use std::sync::{Arc, Mutex};

/// A seeded PRNG (fastrand's wyrand).
#[derive(Clone)]
pub struct Rng(Arc<Mutex<fastrand::Rng>>);

impl Rng {
    /// The generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(Arc::new(Mutex::new(fastrand::Rng::with_seed(seed))))
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&self, n: u64) -> u64 {
        self.0.lock().expect("rng").u64(0..n.max(1))
    }

    /// True `per_thousand` times in a thousand.
    pub fn chance(&self, per_thousand: u64) -> bool {
        self.below(1000) < per_thousand
    }

    /// A factor in `0..1` for each FULL-jitter retry delay of a state machine.
    pub fn jitter(&self) -> bluegreen_statemachine::runner::Jitter {
        let rng = self.clone();
        std::sync::Arc::new(move || rng.0.lock().expect("rng").f64())
    }

    /// One of `items`.
    pub fn pick<'a, T>(&self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}
