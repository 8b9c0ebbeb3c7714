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

/// A state machine whose one task waits for the approval token, like the deployment
/// definition's `Approval` state.
const WAITING: &str = r#"{
  "StartAt": "Approval",
  "States": {
    "Approval": {
      "Type": "Task",
      "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
      "Parameters": {
        "FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:bluegreen-request-approval",
        "Payload": {"deployment_id.$": "$.deployment_id", "task_token.$": "$$.Task.Token"}
      },
      "ResultPath": "$.approval",
      "Next": "Switch"
    },
    "Switch": {"Type": "Succeed"}
  }
}"#;

/// An execution in moto's interpreter waiting in an approval task, and the token it waits
/// with: decisions sent to Step Functions must reach it.
pub struct Waiting {
    /// The emulator's Step Functions client.
    pub sfn: aws_sdk_sfn::Client,
    /// The execution's ARN.
    pub execution: String,
    /// The task token it waits with.
    pub token: String,
}

impl Waiting {
    /// Starts the waiting execution for `deployment_id` and reads its token.
    pub async fn start(world: &crate::World, deployment_id: &str) -> Self {
        interpret_state_machines(&world.emulator).await;
        let (sfn, execution) = start_execution(
            &world.emulator,
            "approval-wait",
            WAITING,
            deployment_id,
            &json!({ "deployment_id": deployment_id }),
        )
        .await;
        // Bounded wait (30 s) for the interpreter to schedule the task: generous, because the
        // tests run beside another test binary and moto shares two cores with them.
        for _ in 0..600 {
            let history = sfn
                .get_execution_history()
                .execution_arn(&execution)
                .send()
                .await
                .expect("history");
            if let Some(token) = scheduled_task_token(&history) {
                return Waiting {
                    sfn,
                    execution,
                    token,
                };
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("moto never scheduled the waiting task");
    }

    /// The execution's final status, error, cause and output, once it has left RUNNING.
    pub async fn ended(&self) -> (String, Option<String>, Option<String>, Option<String>) {
        for _ in 0..600 {
            let d = self
                .sfn
                .describe_execution()
                .execution_arn(&self.execution)
                .send()
                .await
                .expect("describe");
            if d.status.as_str() != "RUNNING" {
                return (d.status.as_str().to_owned(), d.error, d.cause, d.output);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the execution is still waiting");
    }

    /// Whether it still waits.
    pub async fn running(&self) -> bool {
        self.sfn
            .describe_execution()
            .execution_arn(&self.execution)
            .send()
            .await
            .expect("describe")
            .status
            .as_str()
            == "RUNNING"
    }
}

/// `ctx` whose Step Functions calls fail at once (a closed port, no retries): a decision is
/// recorded and its delivery fails, as when `SendTaskSuccess` is throttled or times out.
pub fn cut_off_from_step_functions(ctx: &bluegreen::Context) -> bluegreen::Context {
    let mut clients = ctx.sdk().expect("SDK clients").clone();
    clients.sfn = aws_sdk_sfn::Client::from_conf(
        clients
            .sfn
            .config()
            .to_builder()
            .endpoint_url("http://127.0.0.1:9")
            .retry_config(aws_sdk_sfn::config::retry::RetryConfig::disabled())
            .build(),
    );
    ctx.clone().with_sdk(clients)
}

/// Asserts that `deployment`'s approval was recorded once and delivered.
pub fn assert_approved_once_and_delivered(deployment: &bluegreen::record::Deployment) {
    let approval = deployment.approval.as_ref().expect("an approval");
    assert!(
        approval.delivered_at.is_some(),
        "not delivered: {approval:?}"
    );
    let approvals = deployment
        .timeline
        .iter()
        .filter(|e| e.outcome == bluegreen::record::StepOutcome::Approved)
        .count();
    assert_eq!(approvals, 1, "recorded once: {:?}", deployment.timeline);
}
