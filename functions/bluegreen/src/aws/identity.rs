//! [`Identity`] over STS.

use crate::error::{StepError, StepResult};
use crate::ports::identity::Identity;

/// STS through the SDK.
pub struct Sts(pub aws_sdk_sts::Client);

#[async_trait::async_trait]
impl Identity for Sts {
    async fn caller_arn(&self) -> StepResult<String> {
        let out = self
            .0
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| StepError::from_sdk("sts:GetCallerIdentity", e))?;
        out.arn.ok_or_else(|| StepError::Aws {
            operation: "sts:GetCallerIdentity",
            code: "NoArn".into(),
            message: "STS returned no caller ARN".into(),
        })
    }
}
