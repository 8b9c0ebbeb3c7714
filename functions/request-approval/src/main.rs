//! Lambda handler for the **request approval** step: invoked by the state machine's
//! `waitForTaskToken` task with `{"deployment_id": …, "task_token": "$$.Task.Token"}`, and by
//! the wait's timeout path with `{"deployment_id": …, "timed_out": true}` (settle from the
//! record: a decision recorded in time but never delivered still counts).

use bluegreen::steps::approval::{self, ApprovalCall};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bluegreen::lambda::serve(|ctx, input: ApprovalCall| async move {
        match input {
            ApprovalCall::Request(request) => approval::request(&ctx, &request)
                .await
                .map(|r| serde_json::to_value(r).expect("answers serialise")),
            ApprovalCall::TimedOut(timed_out) => approval::settle_timeout(&ctx, &timed_out)
                .await
                .map(|s| serde_json::to_value(s).expect("answers serialise")),
        }
    })
    .await
}
