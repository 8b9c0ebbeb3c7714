//! What the state machine hands the steps: the deployment, the failure a `Catch` caught, and
//! the start/check call of a polling step. Plain data below every step, so the endings and
//! the fence read it without importing the steps.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::poll::CheckInput;

/// Input of steps that need only the deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DeploymentRef {
    /// The deployment.
    pub deployment_id: String,
}

/// Input of abort and rollback: the deployment and the failure that led here (the state
/// machine's `Catch` puts the error name and cause into `error`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FailureInput {
    /// The deployment.
    pub deployment_id: String,
    /// The caught error, as Step Functions reports it.
    #[serde(default)]
    pub error: Option<CaughtError>,
}

/// An error caught by the state machine (`{"Error": …, "Cause": …}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CaughtError {
    /// Error name, for example `MigrationFailed`.
    #[serde(rename = "Error")]
    pub error: String,
    /// Cause text.
    #[serde(rename = "Cause", default)]
    pub cause: String,
}

impl FailureInput {
    /// `Error: Cause`, or a default when the state machine gave none.
    pub fn describe(&self) -> String {
        match &self.error {
            Some(e) if e.cause.is_empty() => e.error.clone(),
            Some(e) => format!("{}: {}", e.error, e.cause),
            None => "no cause given".into(),
        }
    }
}

/// Input of the steps that have a start and a check (`{"action": "start" | "check" |
/// "await", …}`).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum StartOrCheck {
    /// Begin the work.
    Start(DeploymentRef),
    /// Look once.
    Check(CheckInput),
    /// Wait for the ECS event a check named (`crate::wakes`): store the task token.
    Await(AwaitInput),
}

/// The `await` action's input: the state machine's `.waitForTaskToken` task after a check
/// answered pending with `wake_on`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AwaitInput {
    /// The deployment.
    pub deployment_id: String,
    /// The check's wake key.
    pub wake_on: String,
    /// The waiting task's token.
    pub task_token: String,
}

/// Prefix of the task tokens the local runner issues. Step Functions never issues them: the
/// local runner watches the deployment record (an approval) or the wait item (a wake) instead
/// of receiving `SendTaskSuccess`.
pub const LOCAL_TOKEN_PREFIX: &str = "bluegreen-local:";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_and_check_inputs_are_told_apart_by_their_action() {
        let start: StartOrCheck = serde_json::from_value(
            serde_json::json!({"action": "start", "deployment_id": "shop-1"}),
        )
        .unwrap();
        assert!(matches!(start, StartOrCheck::Start(ref r) if r.deployment_id == "shop-1"));
        let check: StartOrCheck = serde_json::from_value(serde_json::json!({
            "action": "check", "deployment_id": "shop-1",
            "deadline": "2026-11-21T10:00:00Z", "attempt": 3
        }))
        .unwrap();
        assert!(matches!(check, StartOrCheck::Check(ref c) if c.attempt == 3));
        let missing_deadline = serde_json::from_value::<StartOrCheck>(
            serde_json::json!({"action": "check", "deployment_id": "shop-1"}),
        );
        assert!(missing_deadline.is_err());
        let unknown = serde_json::from_value::<StartOrCheck>(
            serde_json::json!({"action": "restart", "deployment_id": "shop-1"}),
        );
        assert!(unknown.is_err());
    }
}
