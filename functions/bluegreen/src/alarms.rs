//! The CloudWatch adapter: which of a service's alarms are firing, and which do not exist.

use crate::context::Context;
use crate::error::StepResult;

/// Of `names`, the alarms in state ALARM, each with CloudWatch's reason.
pub async fn firing(ctx: &Context, names: &[String]) -> StepResult<Vec<String>> {
    ctx.ports.alarms.firing(names).await
}

/// Of `names`, the alarms that do not exist.
pub async fn missing(ctx: &Context, names: &[String]) -> StepResult<Vec<String>> {
    ctx.ports.alarms.missing(names).await
}
