//! Test harness for bluegreen: a moto emulator per test ([`Emulator`]), a realistic AWS world
//! built in it ([`World`]), and a local HTTP app that stands in for pre-prod behind the test
//! listener ([`SmokeApp`]).

mod emulator;
mod smoke_app;
mod world;

pub use emulator::Emulator;
pub use smoke_app::SmokeApp;
pub use world::{World, push_event};
