//! Test harness for bluegreen: a moto emulator per test ([`Emulator`]), a realistic AWS world
//! built in it ([`World`]), and a local HTTP app that stands in for pre-prod behind the test
//! listener ([`SmokeApp`]), and a [`Simulator`] that plays ECS while a state machine runs.

mod emulator;
pub mod function_url;
pub mod recorder;
pub mod serving;
mod simulator;
mod smoke_app;
pub mod stepfunctions;
mod world;

pub use emulator::{Control, Emulator};
pub use simulator::Simulator;
pub use smoke_app::SmokeApp;
pub use world::{LINK_SECRET, MOTO_CALLER, World, push_event};
