//! Index config: keeps the service index in step with SSM when a config parameter is written
//! by anything (`bluegreen config put`, the console, Terraform, a person in the AWS console).
//! Runs on EventBridge's "Parameter Store Change" events for the config prefix; each event
//! re-reads the parameter as it is now, so events delivered twice or out of order converge on
//! what SSM holds.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::Deserialize;
use tracing::info;

use crate::config_store::{ConfigStore, Reindexed};
use crate::context::Context;
use crate::error::{StepError, StepResult};

/// The part of a "Parameter Store Change" event's detail this step reads.
#[derive(Debug, Deserialize)]
struct ParameterChange {
    /// The parameter's full name.
    name: String,
    /// `Create`, `Update`, `Delete`, `LabelParameterVersion`, …: not used, the parameter is
    /// read again whatever happened to it.
    #[serde(default)]
    operation: String,
}

/// Re-indexes the parameter the event names. Parameters outside the config prefix change
/// nothing.
pub async fn run(ctx: &Context, input: &serde_json::Value) -> StepResult<Reindexed> {
    let event: EventBridgeEvent<serde_json::Value> = serde_json::from_value(input.clone())
        .map_err(|e| StepError::EventMalformed(format!("not an EventBridge event: {e}")))?;
    if event.source != "aws.ssm" || event.detail_type != "Parameter Store Change" {
        return Err(StepError::EventMalformed(format!(
            "index_config handles Parameter Store Change events, not {:?} from {:?}",
            event.detail_type, event.source
        )));
    }
    let change: ParameterChange = serde_json::from_value(event.detail)
        .map_err(|e| StepError::EventMalformed(format!("Parameter Store Change detail: {e}")))?;
    let report = ConfigStore::new(ctx)
        .reindex_parameter(&change.name)
        .await?;
    info!(
        parameter = %change.name,
        operation = %change.operation,
        indexed = ?report.indexed,
        removed = ?report.removed,
        "config indexed"
    );
    Ok(report)
}
