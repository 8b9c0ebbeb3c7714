//! The demo world for `scripts/demo`: starts the emulator, builds the same world the tests use
//! (ALB with production and test listeners, blue and green target groups and services, the
//! config in SSM, a local HTTP app behind the test endpoint), and plays ECS while deployments
//! run. Prints `AWS_ENDPOINT_URL=<url>` and `READY`, then serves until its stdin closes.

use bluegreen_tests::{MOTO_CALLER, Simulator, World};
use tokio::io::AsyncReadExt;

#[tokio::main]
async fn main() {
    let world = World::build().await;
    let mut config = world.config();
    // The demo approves with `run --auto-approve`, as the emulator's caller identity (an
    // approver in the test world's config), and bakes for a minute.
    assert!(config.approval.approvers.iter().any(|a| a == MOTO_CALLER));
    config.bake.seconds = 60;
    world.put_config(&config).await;
    let _simulator = Simulator::start(&world);
    println!("AWS_ENDPOINT_URL={}", world.emulator.endpoint);
    println!("READY");
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
}
