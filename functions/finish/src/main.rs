//! Lambda handler for the **finish** step. Input: `{"deployment_id": …}`; see
//! `bluegreen::steps::finish`.

use bluegreen::steps::{DeploymentRef, finish};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bluegreen::lambda::serve(
        |ctx, input: DeploymentRef| async move { finish::run(&ctx, &input).await },
    )
    .await
}
