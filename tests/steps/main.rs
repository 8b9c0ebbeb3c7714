//! Every deployment step against an empty moto emulator per test (a new one, or a used one
//! reset: tests/src/emulator.rs): happy path, idempotence (asserted by reading AWS state), each
//! failure outcome, and bad input.

mod common;

mod abort;
mod adopt_all_or_nothing;
mod adopt_copies;
mod adopt_ecs;
mod approval;
mod autoscaling;
mod bake;
mod cloud_map;
mod containers;
mod database;
mod database_secrets;
mod database_urls;
mod doctor;
mod ecs_service_deployments;
mod emulator_reuse;
mod faults;
mod finish;
mod guard;
mod health_check;
mod intake;
mod launch_preprod;
mod migrate;
mod missed_pushes;
mod nlb;
mod pipeline;
mod prepare;
mod reconcile;
mod revisions;
mod rollback;
mod routes;
mod service_index;
mod switch;
mod sync_db;
mod teardown;
mod test_rule;
mod wakes;
