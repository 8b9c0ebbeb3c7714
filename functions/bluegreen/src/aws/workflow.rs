//! [`Workflow`] over Step Functions.

use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::error::{StepError, StepResult};
use crate::ports::workflow::{Execution, Workflow};

/// Step Functions through the SDK.
pub struct StepFunctions(pub aws_sdk_sfn::Client);

/// The ARN of execution `name` of `machine` (executions are named after their deployment).
fn execution_arn(machine: &str, name: &str) -> String {
    format!(
        "{}:{name}",
        machine.replacen(":stateMachine:", ":execution:", 1)
    )
}

/// A task-token error that means nothing waits for the decision any more.
fn undeliverable<E>(
    operation: &'static str,
    err: aws_smithy_runtime_api::client::result::SdkError<
        E,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
) -> StepError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let error = StepError::from_sdk(operation, err);
    match error.aws_code() {
        Some("TaskTimedOut" | "TaskDoesNotExist" | "InvalidToken") => {
            StepError::DecisionNotDelivered(format!(
                "the execution no longer waits for this decision: it timed out, was stopped, or \
                 already received it ({error})"
            ))
        }
        _ => error,
    }
}

#[async_trait::async_trait]
impl Workflow for StepFunctions {
    async fn status(&self, machine: &str, name: &str) -> StepResult<Execution> {
        let result = self
            .0
            .describe_execution()
            .execution_arn(execution_arn(machine, name))
            .send()
            .await;
        match result {
            Ok(out) => Ok(match out.status.as_str() {
                "RUNNING" | "PENDING_REDRIVE" => Execution::Running,
                other => Execution::Ended(other.to_owned()),
            }),
            Err(e) if e.code() == Some("ExecutionDoesNotExist") => Ok(Execution::Missing),
            Err(e) => Err(StepError::from_sdk("states:DescribeExecution", e)),
        }
    }

    async fn start(&self, machine: &str, name: &str, input: &str) -> StepResult<()> {
        self.0
            .start_execution()
            .state_machine_arn(machine)
            .name(name)
            .input(input)
            .send()
            .await
            .map_err(|e| StepError::from_sdk("states:StartExecution", e))?;
        Ok(())
    }

    async fn stop(&self, machine: &str, name: &str, error: &str, cause: &str) -> StepResult<()> {
        let result = self
            .0
            .stop_execution()
            .execution_arn(execution_arn(machine, name))
            .error(error)
            .cause(cause)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ExecutionDoesNotExist") => Ok(()),
            Err(e) => Err(StepError::from_sdk("states:StopExecution", e)),
        }
    }

    async fn send_task_success(&self, token: &str, output: &str) -> StepResult<()> {
        self.0
            .send_task_success()
            .task_token(token)
            .output(output)
            .send()
            .await
            .map_err(|e| undeliverable("states:SendTaskSuccess", e))?;
        Ok(())
    }

    async fn send_task_failure(&self, token: &str, error: &str, cause: &str) -> StepResult<()> {
        self.0
            .send_task_failure()
            .task_token(token)
            .error(error)
            .cause(cause)
            .send()
            .await
            .map_err(|e| undeliverable("states:SendTaskFailure", e))?;
        Ok(())
    }

    async fn machine_exists(&self, machine: &str) -> StepResult<bool> {
        match self
            .0
            .describe_state_machine()
            .state_machine_arn(machine)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("StateMachineDoesNotExist") => Ok(false),
            Err(e) => Err(StepError::from_sdk("states:DescribeStateMachine", e)),
        }
    }
}
