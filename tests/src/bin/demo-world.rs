//! The demo world for `scripts/demo`: starts the emulator, builds the same world the tests use
//! (ALB with production and test listeners, blue and green target groups and services, the
//! config in SSM, a local HTTP app behind the test endpoint), and plays ECS while deployments
//! run. Prints `AWS_ENDPOINT_URL=<url>` and `READY`, then serves until its stdin closes.

use bluegreen_tests::{Simulator, World};
use tokio::io::AsyncReadExt;

#[tokio::main]
async fn main() {
    let world = World::build().await;
    let mut config = world.config();
    // The demo approves as "demo" (scripts/demo sets BLUEGREEN_APPROVER) and bakes for a minute.
    config.approval.approvers.push("demo".into());
    config.bake.seconds = 60;
    world.put_config(&config).await;
    let _simulator = Simulator::start(&world);
    println!("AWS_ENDPOINT_URL={}", world.emulator.endpoint);
    println!("READY");
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
}
