//! The fuzz campaign: generated input (proptest) for everything that reads text from outside —
//! the event parser, the config parser and validator, the link verifier, the console's request
//! handling (pages and operator API, on the emulator) and the local console's front door (raw
//! bytes on a socket).
//!
//! The properties, for every input: no panic; a typed error or a valid result; nothing stored
//! that holds a character the edge refuses ([`bluegreen::text::is_refused`]); nothing answered
//! or printed that holds a character a screen would act on ([`bluegreen::text::is_hidden`]);
//! every console answer carries its security headers.
//!
//! `BLUEGREEN_FUZZ_CASES` sets the inputs per property (256 here, as `scripts/test` runs it;
//! `scripts/fuzz` runs the long campaign), `BLUEGREEN_FUZZ_SEED` replays a run (the seed moves
//! each day and is printed). Each property prints `fuzz <property>: N inputs, M rejected, 0
//! failures`. A failure prints proptest's shrunk input; it becomes a regression test.

#[allow(dead_code)]
#[path = "../steps/common.rs"]
mod common;

mod console;
mod parsers;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// Inputs per property: `BLUEGREEN_FUZZ_CASES`, else 256.
pub fn cases() -> u32 {
    std::env::var("BLUEGREEN_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// The run's seed: `BLUEGREEN_FUZZ_SEED`, else the day number (UTC), so CI's sample moves.
pub fn seed() -> u64 {
    std::env::var("BLUEGREEN_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| chrono::Utc::now().timestamp() as u64 / 86_400)
}

/// A runner for `property`, seeded from [`seed`] (and the property's name, so properties do
/// not share inputs); no files are written on failure: the printed input is the regression.
pub fn runner(property: &str) -> TestRunner {
    let mut bytes = [0u8; 32];
    let salt = property
        .bytes()
        .fold(seed(), |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    bytes[..8].copy_from_slice(&salt.to_le_bytes());
    bytes[8..16].copy_from_slice(&seed().to_le_bytes());
    let config = Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// Runs `check` over `strategy`'s inputs, printing the count line; panics with the shrunk
/// input (and the seed that replays it) on the first failure.
pub fn campaign<S: Strategy>(
    property: &str,
    strategy: S,
    check: impl Fn(S::Value) -> Result<Verdict, TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let tried = std::sync::atomic::AtomicUsize::new(0);
    let rejected = std::sync::atomic::AtomicUsize::new(0);
    let result = runner(property).run(&strategy, |input| {
        tried.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if check(input)? == Verdict::Rejected {
            rejected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    });
    let tried = tried.into_inner();
    match result {
        Ok(()) => println!(
            "fuzz {property}: {tried} inputs, {} rejected, 0 failures (BLUEGREEN_FUZZ_SEED={})",
            rejected.into_inner(),
            seed()
        ),
        Err(e) => panic!(
            "fuzz {property}: failed after {tried} inputs (BLUEGREEN_FUZZ_SEED={}): {e}",
            seed()
        ),
    }
}

/// What became of one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted as valid.
    Accepted,
    /// Refused with a typed error.
    Rejected,
}

/// Characters that attack a terminal, a page or a parser, mixed with ordinary ones.
pub fn hostile_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => any::<char>(),
        3 => prop::sample::select(vec![
            '\0', '\x07', '\x08', '\x1b', '\r', '\n', '\t', '\x7f', '\u{85}', '\u{9b}',
            '\u{202e}', '\u{202c}', '\u{2066}', '\u{200f}', '\u{200b}', '\u{feff}', '\u{2028}',
            '\u{e0041}', '<', '>', '&', '"', '\'', '/', '\\', ';', '%', '?', '#', '=', ' ',
            '.', ':', '[', ']', '{', '}', 'é', '🚀',
        ]),
        4 => prop::char::range('a', 'z'),
    ]
}

/// A string of up to `max` [`hostile_char`]s, or (one time in three) of ordinary characters
/// only, so that inputs are also accepted and the paths past validation are fuzzed too.
pub fn hostile_string(max: usize) -> impl Strategy<Value = String> {
    let ordinary = prop_oneof![
        prop::char::range('a', 'z'),
        prop::char::range('0', '9'),
        prop::sample::select(vec!['-', '.', '_', '/', ' ', '@']),
    ];
    prop_oneof![
        2 => prop::collection::vec(hostile_char(), 0..max),
        1 => prop::collection::vec(ordinary, 1..max.max(2)),
    ]
    .prop_map(|chars| chars.into_iter().collect())
}

/// The first character of `s` a screen would act on or hide, other than a line feed.
pub fn acted_on(s: &str) -> Option<char> {
    s.chars()
        .find(|c| *c != '\n' && bluegreen::text::is_hidden(*c))
}

/// Whether any string in `value` holds a character the edge refuses.
pub fn stores_refused(value: &serde_json::Value) -> bool {
    !bluegreen::text::refused_strings(value, usize::MAX).is_empty()
}
