//! moto's Step Functions interpreter as a test peer: executions really run (Choice, Wait,
//! Retry, Catch, `waitForTaskToken`), Lambda tasks answer from queued results.

use serde_json::{Value, json};

use crate::Emulator;

/// Turns on moto's interpreter for this emulator (off by default: executions stay RUNNING).
pub async fn interpret_state_machines(emulator: &Emulator) {
    emulator
        .control(
            "POST",
            "/moto-api/config",
            json!({"stepfunctions": {"execute_state_machine": true}, "lambda": {"use_docker": false}}),
        )
        .await;
}

/// Creates a state machine from `definition` and starts one execution named `name`; returns
/// the client and the execution ARN.
pub async fn start_execution(
    emulator: &Emulator,
    machine_name: &str,
    definition: &str,
    name: &str,
    input: &Value,
) -> (aws_sdk_sfn::Client, String) {
    let sfn = aws_sdk_sfn::Client::new(&emulator.sdk_config().await);
    let machine = sfn
        .create_state_machine()
        .name(machine_name)
        .definition(definition)
        .role_arn("arn:aws:iam::123456789012:role/bluegreen-states")
        .send()
        .await
        .expect("create state machine")
        .state_machine_arn;
    let execution = sfn
        .start_execution()
        .state_machine_arn(machine)
        .name(name)
        .input(input.to_string())
        .send()
        .await
        .expect("start execution")
        .execution_arn;
    (sfn, execution)
}

/// The `task_token` a `waitForTaskToken` task passed in its Lambda payload, once scheduled.
pub fn scheduled_task_token(
    history: &aws_sdk_sfn::operation::get_execution_history::GetExecutionHistoryOutput,
) -> Option<String> {
    history.events.iter().find_map(|e| {
        let parameters = &e.task_scheduled_event_details.as_ref()?.parameters;
        let parameters: Value = serde_json::from_str(parameters).ok()?;
        parameters["Payload"]["task_token"]
            .as_str()
            .map(str::to_owned)
    })
}
