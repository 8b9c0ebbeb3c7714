//! Lambda handler for the **request approval** step, invoked by the state machine's
//! `waitForTaskToken` task with `{"deployment_id": …, "task_token": "$$.Task.Token"}`.

use bluegreen::steps::approval;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bluegreen::lambda::serve(|ctx, input: approval::RequestInput| async move {
        approval::request(&ctx, &input).await
    })
    .await
}
