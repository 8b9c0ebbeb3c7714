//! # bluegreen
//!
//! Blue/green deployments of ECS services, one step at a time. Each step in [`steps`] is an
//! idempotent async function over a [`Context`] of AWS clients; the Lambda handlers in
//! `functions/*` and the local runner call the same functions.
//!
//! Errors are [`StepError`]s whose [`StepError::name`] is the stable error type the state
//! machine's `Retry` and `Catch` clauses match.

pub mod admit;
pub mod alarms;
pub mod app_containers;
pub mod autoscaling;
pub mod aws;
pub mod capacity;
pub mod clone_secret;
pub mod config;
pub mod config_check;
pub mod config_store;
pub mod context;
pub mod db_guard;
pub mod db_plan;
pub mod delivery;
pub mod ecs;
pub mod ecs_hook;
pub mod ending;
pub mod endpoint;
pub mod engine;
pub mod error;
pub mod event;
pub mod executions;
pub mod fence;
pub mod guard;
pub mod health;
pub mod identity;
pub mod lambda;
pub mod links;
pub mod lock;
pub mod looks;
pub mod maintenance;
pub mod metrics;
pub mod migration;
pub mod missed_pushes;
pub mod naming;
pub mod notify;
pub mod operator;
pub mod poll;
pub mod ports;
pub mod queue;
pub mod record;
pub mod release;
pub mod retirement;
pub mod revisions;
pub mod routes;
pub mod routing;
pub mod secret_reference;
pub mod service_index;
pub mod signing_key;
pub mod slot;
pub mod step_input;
pub(crate) mod step_log;
pub mod step_table;
pub mod steps;
pub mod tables;
pub mod test_rule;
pub mod text;
pub mod traffic_mode;
pub mod wakes;

pub use context::{Context, Settings};
pub use error::{StepError, StepResult};
pub use slot::Slot;

#[cfg(test)]
mod architecture_tests;
