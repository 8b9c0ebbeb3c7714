//! The Lambda binary of every bluegreen step. Each function in the stack runs this same
//! binary with `BLUEGREEN_STEP` naming its step (`sync_db`, `bake`, …); the step registry
//! (`bluegreen::steps::registry`) dispatches to the step's code.
//!
//! One binary rather than one crate per step: adding a step needs no new crate, `sam build`
//! builds one artifact for all step functions, and the release build links one binary
//! instead of fourteen. The cost is a binary that contains every step's code (all steps
//! already link the same library and SDK clients, so the zip barely grows).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bluegreen::lambda::serve_registered_step().await
}
