//! Abort: the failure path before the switch. Puts the pre-prod slot back the way it was,
//! stops a running migration, runs the rollback migration when the production migration had
//! succeeded (and waits for it), then the shared ending: maintenance off, clones deleted, DNS
//! TTL restored, lock released.
//!
//! Abort never touches production routing, and refuses to act if production no longer runs
//! entirely on the old slot — scaling down a slot that serves traffic would leave production
//! without a healthy side.

use crate::context::Context;
use crate::ending::{self, Ended};
use crate::error::StepResult;

use super::FailureInput;

/// Aborts the deployment (the sequence lives in [`crate::ending::abort`], which the
/// reconciler runs too).
pub async fn run(ctx: &Context, input: &FailureInput) -> StepResult<Ended> {
    ending::abort(ctx, input).await
}
