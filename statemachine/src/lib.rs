//! # bluegreen-statemachine
//!
//! The Step Functions definitions in this folder (`intake.asl.json`, `deployment.asl.json`),
//! and a strict local runner for the subset of the Amazon States Language they use, so a
//! deployment can run end to end with no AWS account.
//!
//! - [`Definition::parse`] loads a definition; anything outside the subset is an error naming
//!   the state and field.
//! - [`validate::validate`] checks structure and bluegreen's own rules.
//! - [`Runner`] executes it with a [`TaskHandler`] and a [`Clock`], recording a history.

pub mod definition;
pub mod generate;
pub mod local;
pub mod local_runs;
pub mod path;
pub mod runner;
pub mod validate;

pub use definition::{Definition, LoadError};
pub use runner::{
    Clock, EventKind, Failure, Finished, HistoryEvent, Outcome, RealClock, Runner, ScaledClock,
    TaskCall, TaskHandler,
};

/// The deployment definition, as committed.
pub const DEPLOYMENT_ASL: &str = include_str!("../deployment.asl.json");
/// The intake definition, as committed.
pub const INTAKE_ASL: &str = include_str!("../intake.asl.json");

#[cfg(test)]
mod tests {
    #[test]
    fn the_deployment_timeout_is_the_one_config_validation_budgets_for() {
        let definition: serde_json::Value = serde_json::from_str(super::DEPLOYMENT_ASL).unwrap();
        assert_eq!(
            definition["TimeoutSeconds"].as_u64(),
            Some(bluegreen::config::EXECUTION_TIMEOUT_SECONDS)
        );
    }
}
