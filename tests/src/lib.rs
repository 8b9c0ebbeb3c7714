//! Test harness for bluegreen: an empty moto emulator per test ([`Emulator`], reused after a
//! reset), a realistic AWS world built in it ([`World`]), a local HTTP app that stands in for
//! pre-prod behind the test listener ([`SmokeApp`]), and a [`Simulator`] that plays ECS while a
//! state machine runs.

pub mod alb;
pub mod ecs_world;
pub mod emf;
mod emulator;
pub mod function_url;
pub mod history;
pub mod iam;
pub mod memory;
pub mod recorder;
pub mod serving;
pub mod sim;
mod simulator;
mod smoke_app;
pub mod stepfunctions;
pub mod template;
mod world;

pub use emulator::{Control, Emulator};
pub use simulator::Simulator;
pub use smoke_app::{Seen, SmokeApp};
pub use world::{
    ACCOUNT, CLUSTER, DEPLOYMENT_MACHINE_ARN, LINK_SECRET, MOTO_CALLER, Names, REPOSITORY, World,
    push_event, service_config, standard_settings,
};

/// `ctx` with some of its SDK clients replaced (scripted answers with `aws-smithy-mocks`,
/// interceptors): every port is rebuilt over the changed clients.
pub fn with_client(
    ctx: &bluegreen::Context,
    change: impl FnOnce(&mut bluegreen::aws::Sdk),
) -> bluegreen::Context {
    let mut clients = ctx.sdk().expect("SDK clients").clone();
    change(&mut clients);
    ctx.clone().with_sdk(clients)
}
