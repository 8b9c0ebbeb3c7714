//! The SAM stack in infra/template.yaml, checked against the code it deploys: the ECR rule's
//! pattern against every sample event (through EventBridge's TestEventPattern on the emulator),
//! the state machines' substitutions against their definitions' placeholders, and the functions
//! against the workspace's Lambda crates.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use bluegreen_tests::Emulator;
use bluegreen_tests::template::{repo, resource, role_actions, template};
use serde_json::{Value, json};

/// Replaces `{"!Ref": parameter}` with the value given for that parameter, and the parameters
/// of a `{"!Sub": "…${Parameter}…"}` string.
fn resolve(value: &Value, parameters: &BTreeMap<&str, Value>) -> Value {
    match value {
        Value::Object(map) if map.len() == 1 && map.contains_key("!Sub") => {
            let mut text = map["!Sub"].as_str().expect("a !Sub string").to_owned();
            for (name, value) in parameters {
                if let Some(v) = value.as_str() {
                    text = text.replace(&format!("${{{name}}}"), v);
                }
            }
            assert!(
                !text.contains("${"),
                "no test value for a parameter of {text}"
            );
            json!(text)
        }
        // `!If [condition, then, else]`, the condition read from the template's `Conditions`
        // (the forms the template uses: `!Not`, `!Equals`, `!Ref`).
        Value::Object(map) if map.len() == 1 && map.contains_key("!If") => {
            let [name, then, otherwise] = map["!If"].as_array().expect("!If list").as_slice()
            else {
                panic!("!If takes three items")
            };
            let name = name.as_str().expect("a condition name");
            let condition = &template()["Conditions"][name];
            assert!(!condition.is_null(), "no condition {name}");
            if holds(condition, parameters) {
                resolve(then, parameters)
            } else {
                resolve(otherwise, parameters)
            }
        }
        Value::Object(map) if map.len() == 1 && map.contains_key("!Ref") => {
            let name = map["!Ref"].as_str().expect("Ref names a parameter");
            parameters
                .get(name)
                .cloned()
                .unwrap_or_else(|| panic!("no test value for parameter {name}"))
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), resolve(v, parameters)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| resolve(v, parameters)).collect()),
        other => other.clone(),
    }
}

/// Whether a template condition holds for `parameters`.
fn holds(condition: &Value, parameters: &BTreeMap<&str, Value>) -> bool {
    match condition {
        Value::Object(map) if map.contains_key("!Not") => !holds(&map["!Not"][0], parameters),
        Value::Object(map) if map.contains_key("!Equals") => {
            let pair = map["!Equals"].as_array().expect("!Equals list");
            resolve(&pair[0], parameters) == resolve(&pair[1], parameters)
        }
        other => panic!("condition form not handled here: {other}"),
    }
}

/// Each EventBridge rule's pattern against every sample event (through EventBridge's
/// TestEventPattern on the emulator): the ECR rule starts the intake only for tagged pushes to
/// watched repositories; the SSM rule re-indexes only changes under the config path.
#[tokio::test]
async fn the_event_rules_match_exactly_the_events_they_are_for() {
    let template = template();
    // The stack's default: pushes of every repository go to the intake, which decides through
    // the service index (no per-service parameter).
    let parameters = BTreeMap::from([
        ("RepositoryPrefix", json!("")),
        ("ConfigPath", json!("/bluegreen/services")),
    ]);
    let pattern_of = |function: &str, event: &str, parameters: &BTreeMap<&str, Value>| {
        let pattern =
            &resource(&template, function)["Properties"]["Events"][event]["Properties"]["Pattern"];
        assert!(pattern.is_object(), "{function} has no {event} rule");
        resolve(pattern, parameters).to_string()
    };
    let intake = pattern_of("IntakeStateMachine", "EcrPush", &parameters);
    let index = pattern_of("IndexConfigFunction", "ConfigChanged", &parameters);
    let task_stopped = pattern_of("WakeFunction", "TaskStopped", &parameters);
    let deployment_settled = pattern_of("WakeFunction", "DeploymentSettled", &parameters);
    let mut with_prefix = parameters.clone();
    with_prefix.insert("RepositoryPrefix", json!("shop/"));
    let shop_only = pattern_of("IntakeStateMachine", "EcrPush", &with_prefix);

    // Every sample must be decided here: adding one to events/ without deciding fails.
    // (sample, starts the intake, re-indexes a config, a task stop wakes, a settled deployment
    // wakes)
    let expected = BTreeMap::from([
        ("ecr-push-tagged.json", (true, false, false, false)),
        ("ecr-push-tagged-v3.json", (true, false, false, false)),
        ("ecr-push-digest-only.json", (false, false, false, false)),
        ("ecr-push-failed.json", (false, false, false, false)),
        ("ecr-delete.json", (false, false, false, false)),
        // Every repository by default: the service index decides in prepare.
        (
            "ecr-push-other-repository.json",
            (true, false, false, false),
        ),
        // Decided in prepare by the service's source.registry and pull_from.
        ("ecr-push-foreign-account.json", (true, false, false, false)),
        ("ecr-push-other-region.json", (true, false, false, false)),
        ("ecr-replication-action.json", (true, false, false, false)),
        ("scheduled-teardown.json", (false, false, false, false)),
        ("ssm-config-change.json", (false, true, false, false)),
        ("ecs-task-stopped.json", (false, false, true, false)),
        ("ecs-deployment-completed.json", (false, false, false, true)),
    ]);
    let samples: BTreeSet<String> = std::fs::read_dir(repo().join("events"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    assert_eq!(
        samples,
        expected.keys().map(|k| k.to_string()).collect(),
        "events/ and this table differ"
    );

    let emulator = Emulator::start().await;
    let events = aws_sdk_eventbridge::Client::new(&emulator.sdk_config().await);
    let matches = |pattern: String, event: String| {
        let events = events.clone();
        async move {
            events
                .test_event_pattern()
                .event_pattern(pattern)
                .event(event)
                .send()
                .await
                .expect("TestEventPattern")
                .result
        }
    };
    let mut seen = BTreeMap::new();
    for name in expected.keys() {
        let event = std::fs::read_to_string(repo().join("events").join(name)).unwrap();
        let decided = (
            matches(intake.clone(), event.clone()).await,
            matches(index.clone(), event.clone()).await,
            matches(task_stopped.clone(), event.clone()).await,
            matches(deployment_settled.clone(), event.clone()).await,
        );
        seen.insert(*name, decided);
    }
    assert_eq!(
        seen, expected,
        "patterns: {intake} / {index} / {task_stopped}"
    );
    // The wake function sees only what ends a wait: a task still running, another team's
    // task (not started by bluegreen) and a deployment in progress do not invoke it.
    let sample = |name: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(repo().join("events").join(name)).unwrap())
            .unwrap()
    };
    let mut running = sample("ecs-task-stopped.json");
    running["detail"]["lastStatus"] = json!("RUNNING");
    let mut theirs = sample("ecs-task-stopped.json");
    theirs["detail"]["startedBy"] = json!("ecs-svc/123");
    let mut in_progress = sample("ecs-deployment-completed.json");
    in_progress["detail"]["eventName"] = json!("SERVICE_DEPLOYMENT_IN_PROGRESS");
    for (event, pattern) in [
        (running, &task_stopped),
        (theirs, &task_stopped),
        (in_progress, &deployment_settled),
    ] {
        assert!(
            !matches(pattern.clone(), event.to_string()).await,
            "{event}"
        );
    }
    // With RepositoryPrefix, only the repositories under it reach the intake.
    for (name, starts) in [
        ("ecr-push-tagged.json", true),
        ("ecr-push-other-repository.json", false),
        ("ecr-push-digest-only.json", false),
    ] {
        let event = std::fs::read_to_string(repo().join("events").join(name)).unwrap();
        assert_eq!(
            matches(shop_only.clone(), event).await,
            starts,
            "{name} with prefix shop/: {shop_only}"
        );
    }

    // A parameter outside the config path (another team's, or a sibling path) is not ours.
    let mut outside: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("events/ssm-config-change.json")).unwrap(),
    )
    .unwrap();
    outside["detail"]["name"] = json!("/bluegreen/services-old/shop");
    assert!(!matches(index.clone(), outside.to_string()).await);
}

fn placeholders(path: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(path).unwrap();
    text.split("${")
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_owned()))
        .collect()
}

#[test]
fn each_state_machine_substitutes_exactly_its_definitions_placeholders() {
    let template = template();
    for machine in ["DeploymentStateMachine", "IntakeStateMachine"] {
        let properties = &resource(&template, machine)["Properties"];
        let uri = properties["DefinitionUri"].as_str().unwrap();
        let definition = repo().join("infra").join(uri);
        let substituted: BTreeSet<String> = properties["DefinitionSubstitutions"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(substituted, placeholders(&definition), "{machine}");
    }
}

#[test]
fn every_lambda_crate_is_a_function_with_its_own_log_group_and_role() {
    let template = template();
    let resources = template["Resources"].as_object().unwrap();
    let mut binaries = BTreeSet::new();
    for (name, r) in resources {
        if r["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        assert_eq!(r["Metadata"]["BuildMethod"], "rust-cargolambda", "{name}");
        binaries.insert(
            r["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        let properties = &r["Properties"];
        let group = properties["LoggingConfig"]["LogGroup"]["!Ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} logs to an undeclared group"));
        let group_name = resources[group]["Properties"]["LogGroupName"]["!Sub"]
            .as_str()
            .unwrap();
        let function_name = properties["FunctionName"]["!Sub"].as_str().unwrap();
        assert_eq!(group_name, format!("/aws/lambda/{function_name}"), "{name}");
        assert!(
            properties["Role"]["!GetAtt"].is_string(),
            "{name} has no role of its own"
        );
    }
    let crates: BTreeSet<String> = std::fs::read_dir(repo().join("functions"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("src/main.rs").is_file())
        .map(|p| {
            let manifest = std::fs::read_to_string(p.join("Cargo.toml")).unwrap();
            let name = manifest
                .lines()
                .find_map(|l| l.strip_prefix("name = \""))
                .unwrap();
            name.trim_end_matches('"').to_owned()
        })
        .collect();
    assert_eq!(binaries, crates);
}

/// The stack and the step registry agree: each registered step is a function running the step
/// binary with `BLUEGREEN_STEP` naming it, every function running the step binary is a
/// registered step, and the deployment machine substitutes each step in its definition with
/// that step's function. Forgetting the stack when adding a step fails here.
#[test]
fn every_registered_step_is_a_function_of_the_stack_and_nothing_else_runs_the_step_binary() {
    use bluegreen::steps::registry::{STEP_BINARY, STEP_VARIABLE, STEPS, Shape};
    let template = template();
    let resources = template["Resources"].as_object().unwrap();
    let serving: BTreeMap<String, String> = resources
        .iter()
        .filter(|(_, r)| r["Metadata"]["BuildProperties"]["Binary"] == STEP_BINARY)
        .map(|(name, r)| {
            let step = r["Properties"]["Environment"]["Variables"][STEP_VARIABLE]
                .as_str()
                .unwrap_or_else(|| panic!("{name} runs {STEP_BINARY} without {STEP_VARIABLE}"));
            (name.clone(), step.to_owned())
        })
        .collect();
    let registered: BTreeMap<String, String> = STEPS
        .iter()
        .map(|s| (format!("{}Function", s.function), s.name.to_owned()))
        .collect();
    assert_eq!(serving, registered);

    // The fence's lease lasts a step's Lambda timeout: the registry's must be the stack's.
    let default_timeout = template["Globals"]["Function"]["Timeout"].as_u64().unwrap();
    for step in STEPS {
        let function = resource(&template, &format!("{}Function", step.function));
        let timeout = function["Properties"]["Timeout"]
            .as_u64()
            .unwrap_or(default_timeout);
        assert_eq!(timeout, step.timeout_seconds, "{}", step.function);
    }

    let substitutions =
        &resource(&template, "DeploymentStateMachine")["Properties"]["DefinitionSubstitutions"];
    for step in STEPS.iter().filter(|s| s.shape != Shape::Standalone) {
        let placeholder = step.placeholder();
        let key = placeholder.trim_start_matches("${").trim_end_matches('}');
        assert_eq!(
            substitutions[key]["!GetAtt"],
            format!("{}Function.Arn", step.function),
            "{key}"
        );
    }
}

/// Each state machine's role may invoke exactly the functions its definition calls (its
/// `…FunctionArn` substitutions): a step added to the registry, the stack and the definition
/// but not to the role would fail on AWS at its first state with `Lambda.AWSLambdaException`
/// (access denied), which no local run shows.
#[test]
fn each_state_machines_role_invokes_exactly_the_functions_its_definition_calls() {
    let template = template();
    let get_att = |value: &Value| {
        value["!GetAtt"]
            .as_str()
            .map(|a| a.trim_end_matches(".Arn").to_owned())
    };
    let mut checked = 0;
    for (name, machine) in template["Resources"].as_object().unwrap() {
        if machine["Type"] != "AWS::Serverless::StateMachine" {
            continue;
        }
        let properties = &machine["Properties"];
        let called: BTreeSet<String> = properties["DefinitionSubstitutions"]
            .as_object()
            .unwrap()
            .values()
            .filter_map(get_att)
            .filter(|r| resource(&template, r)["Type"] == "AWS::Serverless::Function")
            .collect();
        let role = get_att(&properties["Role"]).unwrap_or_else(|| panic!("{name} has no role"));
        let role_properties = &resource(&template, &role)["Properties"];
        assert!(
            role_properties["ManagedPolicyArns"].is_null(),
            "{role}: a managed policy's grants cannot be read here"
        );
        // Every statement that can invoke a function: `lambda:InvokeFunction` itself or a
        // pattern that covers it (`lambda:*`, `*`), as one action or in a list.
        let invokes = |action: &Value| {
            let covers = |a: &str| matches!(a, "lambda:InvokeFunction" | "lambda:*" | "*");
            match action {
                Value::String(a) => covers(a),
                Value::Array(all) => all.iter().filter_map(Value::as_str).any(covers),
                _ => false,
            }
        };
        let mut invokable = BTreeSet::new();
        for policy in role_properties["Policies"].as_array().unwrap() {
            let statements = policy["PolicyDocument"]["Statement"]
                .as_array()
                .unwrap_or_else(|| panic!("{role}: a policy without inline statements"));
            for statement in statements {
                if statement["Effect"] != "Allow" || !invokes(&statement["Action"]) {
                    continue;
                }
                let resources = match &statement["Resource"] {
                    Value::Array(all) => all.clone(),
                    one => vec![one.clone()],
                };
                for r in resources {
                    // A `*`, a `!Sub` or any other form than a function's ARN may invoke more
                    // than the definition calls.
                    let function = get_att(&r)
                        .unwrap_or_else(|| panic!("{role} may invoke {r}, not one function"));
                    invokable.insert(function);
                }
            }
        }
        assert!(!called.is_empty(), "{name} calls no function");
        assert_eq!(invokable, called, "{name}'s role {role}");
        checked += 1;
    }
    assert_eq!(checked, 2, "the intake and deployment machines");
}

/// The README's step table is the registry's: one row per step, in the registry's order,
/// naming its function and every error name the step raises (so a new step or error cannot
/// be left out of the table people read).
#[test]
fn the_readmes_step_table_lists_every_registered_step_and_its_errors() {
    use bluegreen::steps::registry::STEPS;
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let table = readme
        .split("| step (`BLUEGREEN_STEP`) | function |")
        .nth(1)
        .expect("the README's step table");
    let rows: Vec<&str> = table
        .lines()
        .skip(2) // the header's end and its separator
        .take_while(|l| l.starts_with('|'))
        .collect();
    let named: Vec<String> = rows
        .iter()
        .map(|r| r.split('`').nth(1).unwrap_or_default().to_owned())
        .collect();
    let registered: Vec<String> = STEPS.iter().map(|s| s.name.to_owned()).collect();
    assert_eq!(named, registered, "the README's step table rows");
    for (row, step) in rows.iter().zip(STEPS) {
        assert!(
            row.contains(&format!("`{}Function`", step.function)),
            "{}: {row}",
            step.name
        );
        for error in step.raises {
            assert!(
                row.contains(&format!("`{error}`")),
                "the README's row for {} does not name {error}",
                step.name
            );
        }
    }
}

/// The stack's two alarms watch exactly the metrics the code writes (metrics.rs): the
/// needs-attention endings and the live-slot guard's violations — not AWS/States
/// ExecutionsFailed, which counts every ordinary abort.
#[test]
fn the_alarms_watch_the_metrics_the_code_emits() {
    let template = template();
    let mut watched: Vec<(String, String)> = template["Resources"]
        .as_object()
        .unwrap()
        .values()
        .filter(|r| r["Type"] == "AWS::CloudWatch::Alarm")
        .map(|r| {
            let p = &r["Properties"];
            (
                p["Namespace"].as_str().unwrap().to_owned(),
                p["MetricName"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    watched.sort();
    let ns = bluegreen::metrics::NAMESPACE.to_owned();
    assert_eq!(
        watched,
        vec![
            (
                ns.clone(),
                bluegreen::metrics::LIVE_SLOT_VIOLATIONS.to_owned()
            ),
            (ns.clone(), bluegreen::metrics::NEEDS_ATTENTION.to_owned()),
        ]
    );
    for line in [
        bluegreen::metrics::needs_attention_line("shop", "shop-1", chrono::Utc::now()),
        bluegreen::metrics::live_slot_violations_line("shop", 1, chrono::Utc::now()),
    ] {
        let doc: Value = serde_json::from_str(&line).unwrap();
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], ns);
        let name = directive["Metrics"][0]["Name"].as_str().unwrap();
        assert!(
            watched.iter().any(|(_, m)| m == name),
            "{name} has no alarm"
        );
    }
}

#[test]
fn the_reconciler_hears_every_way_a_deployment_execution_can_end_badly() {
    let template = template();
    let events = &resource(&template, "ReconcileFunction")["Properties"]["Events"];
    let pattern = &events["ExecutionEnded"]["Properties"]["Pattern"];
    assert_eq!(pattern["source"][0], "aws.states");
    let statuses: BTreeSet<&str> = pattern["detail"]["status"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(statuses, BTreeSet::from(["FAILED", "TIMED_OUT", "ABORTED"]));
    assert_eq!(events["Sweep"]["Type"], "ScheduleV2");
    // The machine's ARN the functions are given is the machine the rule listens to.
    let environment = &template["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(
        environment["BLUEGREEN_DEPLOYMENT_MACHINE_ARN"],
        pattern["detail"]["stateMachineArn"][0]
    );
}

#[test]
fn people_decide_only_through_the_iam_authenticated_operator_api() {
    let template = template();
    let api = resource(&template, "OperatorApiFunction");
    let console = resource(&template, "ConsoleFunction");
    // The operator API is the console's binary behind a URL only SigV4-signed calls reach.
    assert_eq!(
        api["Metadata"]["BuildProperties"]["Binary"],
        console["Metadata"]["BuildProperties"]["Binary"]
    );
    assert_eq!(
        api["Properties"]["FunctionUrlConfig"]["AuthType"],
        "AWS_IAM"
    );
    assert_eq!(
        console["Properties"]["FunctionUrlConfig"]["AuthType"],
        "NONE"
    );
    // Both are capped, so a flood is throttled and never takes the steps' concurrency.
    for (function, parameter) in [
        (api, "OperatorApiConcurrency"),
        (console, "ConsoleConcurrency"),
    ] {
        assert_eq!(
            function["Properties"]["ReservedConcurrentExecutions"],
            json!({ "!Ref": parameter })
        );
        assert!(template["Parameters"][parameter]["Default"].is_number());
    }
    // What people are given: invoke that URL (IAM-authenticated only), and read.
    let policy = resource(&template, "OperatorPolicy");
    assert_eq!(policy["Metadata"]["bluegreen"]["audience"], "people");
    let statements = policy["Properties"]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap();
    let invoke = statements
        .iter()
        .find(|s| s["Action"] == "lambda:InvokeFunctionUrl")
        .expect("the policy lets people call the operator API");
    assert_eq!(
        invoke["Resource"],
        json!({ "!GetAtt": "OperatorApiFunction.Arn" })
    );
    assert_eq!(
        invoke["Condition"]["StringEquals"]["lambda:FunctionUrlAuthType"],
        "AWS_IAM"
    );
    let actions: Vec<String> = statements
        .iter()
        .flat_map(|s| match &s["Action"] {
            Value::Array(a) => a.iter().map(|v| v.as_str().unwrap().to_owned()).collect(),
            v => vec![v.as_str().unwrap().to_owned()],
        })
        .collect();
    for action in &actions {
        let read = action.starts_with("dynamodb:")
            && ["GetItem", "Query", "Scan"]
                .iter()
                .any(|r| action.ends_with(r));
        assert!(
            !action.starts_with("states:") && (read || !action.starts_with("dynamodb:")),
            "people may not {action}"
        );
    }
    // The functions that decide read the approvers from the current config.
    for role in ["ConsoleRole", "OperatorApiRole"] {
        assert!(
            resource(&template, role)["Properties"]["ManagedPolicyArns"]
                .as_array()
                .unwrap()
                .contains(&json!({ "!Ref": "ConfigReadPolicy" })),
            "{role} cannot read the current approvers"
        );
    }
    assert_eq!(
        template["Outputs"]["OperatorApiUrl"]["Value"],
        json!({ "!GetAtt": "OperatorApiFunctionUrl.FunctionUrl" })
    );
}

/// Calls the steps make that an earlier version's roles lacked (the switch's capacity check
/// once ran without ECS rights at all): promote reads the alarms
/// before the switch (without the grant, every deployment with alarms would abort with
/// AccessDenied); in rule mode, the switch and the endings move the listener's default action
/// along with the rule.
#[test]
fn the_roles_grant_what_the_steps_call() {
    let template = template();
    for (function, action) in [
        ("PromoteFunction", "cloudwatch:DescribeAlarms"),
        ("BakeFunction", "cloudwatch:DescribeAlarms"),
        // ECS's lifecycle hook finds the deployment a revision belongs to (tests/simulation,
        // ecs_engine: it runs on the in-memory AWS, outside IAM by execution).
        ("EcsHookFunction", "ecs:DescribeServiceRevisions"),
        ("EcsHookFunction", "ecs:DescribeTaskDefinition"),
        ("EcsHookFunction", "dynamodb:GetItem"),
        ("SwitchFunction", "elasticloadbalancing:ModifyListener"),
        ("SwitchFunction", "elasticloadbalancing:ModifyRule"),
        ("RollbackFunction", "elasticloadbalancing:ModifyListener"),
        ("AbortFunction", "elasticloadbalancing:ModifyListener"),
        // Capacity follows production: the switch reads both slots and scales the new one.
        ("SwitchFunction", "ecs:DescribeServices"),
        ("SwitchFunction", "ecs:UpdateService"),
        // Production's autoscaling moves with it (docs/autoscaling.md).
        (
            "LaunchPreprodFunction",
            "application-autoscaling:PutScalingPolicy",
        ),
        (
            "LaunchPreprodFunction",
            "application-autoscaling:PutScheduledAction",
        ),
        (
            "SwitchFunction",
            "application-autoscaling:RegisterScalableTarget",
        ),
        (
            "FinishFunction",
            "application-autoscaling:RegisterScalableTarget",
        ),
        (
            "RollbackFunction",
            "application-autoscaling:RegisterScalableTarget",
        ),
        (
            "AbortFunction",
            "application-autoscaling:RegisterScalableTarget",
        ),
        (
            "TeardownFunction",
            "application-autoscaling:RegisterScalableTarget",
        ),
        (
            "ReconcileFunction",
            "application-autoscaling:RegisterScalableTarget",
        ),
        (
            "OperatorApiFunction",
            "application-autoscaling:RegisterScalableTarget",
        ),
        (
            "SwitchFunction",
            "application-autoscaling:DescribeScalingPolicies",
        ),
        ("SwitchFunction", "cloudwatch:PutMetricAlarm"),
        // `deploy --tag` resolves the tag in ECR; the missed-push sweep reads the repositories,
        // prepares as intake does and starts what it prepared.
        ("OperatorApiFunction", "ecr:DescribeImages"),
        ("MissedPushesFunction", "ecr:DescribeImages"),
        ("MissedPushesFunction", "states:StartExecution"),
        ("MissedPushesFunction", "dynamodb:UpdateItem"),
        // The live-slot guard in the sweep: configs, the index page and its cursor, the lock.
        ("ReconcileFunction", "ssm:GetParameters"),
        ("ReconcileFunction", "dynamodb:Query"),
    ] {
        assert!(
            role_actions(&template, function).contains(action),
            "{function}'s role does not grant {action}"
        );
    } // People's read-only policy: `bluegreen status` reads who holds each service.
    let people = resource(&template, "OperatorPolicy")["Properties"]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap();
    assert!(
        people.iter().any(|s| s["Action"] == "dynamodb:GetItem"
            && s["Resource"] == json!({ "!GetAtt": "LocksTable.Arn" })),
        "the operator policy cannot read the locks table"
    );
}

/// ECS's lifecycle hook only reads (it decides from the record and ECS's revision; a write
/// would let an ECS invocation change a deployment), and the role ECS invokes it with can do
/// nothing else, assumed only by ECS on this account's behalf.
#[test]
fn the_ecs_hook_reads_only_and_its_invoke_role_invokes_only_the_hook() {
    let template = template();
    let actions = role_actions(&template, "EcsHookFunction");
    let expected: BTreeSet<String> = [
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "dynamodb:GetItem",
        "ecs:DescribeServiceRevisions",
        "ecs:DescribeTaskDefinition",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(actions, expected);
    assert!(role_grants(
        "EcsHookRole",
        "dynamodb:GetItem",
        "DeploymentsTable.Arn"
    ));
    let invoke = resource(&template, "EcsHookInvokeRole");
    let trust = &invoke["Properties"]["AssumeRolePolicyDocument"]["Statement"][0];
    assert_eq!(trust["Principal"]["Service"], "ecs.amazonaws.com");
    assert!(trust["Condition"]["StringEquals"]["aws:SourceAccount"].is_object());
    let statements = &invoke["Properties"]["Policies"][0]["PolicyDocument"]["Statement"];
    assert_eq!(statements.as_array().unwrap().len(), 1);
    assert_eq!(statements[0]["Action"], "lambda:InvokeFunction");
    assert_eq!(
        statements[0]["Resource"],
        json!({ "!GetAtt": "EcsHookFunction.Arn" })
    );
    assert!(invoke["Properties"]["ManagedPolicyArns"].is_null());
}

/// Issue 22: teardown leaves locked services alone, so its role must read the locks table
/// itself — `dynamodb:GetItem` on the services table (which it has) is not enough. Without it
/// every service was "kept" with AccessDenied and expired pre-prod ran for ever.
#[test]
fn teardown_may_read_the_locks_table() {
    assert!(
        role_grants("TeardownRole", "dynamodb:GetItem", "LocksTable.Arn"),
        "TeardownRole cannot read the locks table"
    );
}

/// Issue 22 item 4: which services may skip approval is the stack's to say (a parameter every
/// function reads), not a config author's; the default is none.
#[test]
fn only_the_stack_allows_auto_approval() {
    let template = template();
    let parameter = &template["Parameters"]["AutoApproveServices"];
    assert_eq!(parameter["Default"], "none");
    assert_eq!(
        template["Globals"]["Function"]["Environment"]["Variables"]["BLUEGREEN_AUTO_APPROVE_SERVICES"],
        json!({ "!Ref": "AutoApproveServices" })
    );
    use bluegreen::context::AutoApprove;
    assert!(!AutoApprove::parse(Some("none")).allows("shop"));
    assert!(AutoApprove::parse(Some("billing,shop")).allows("shop"));
    assert!(!AutoApprove::parse(Some("billing")).allows("shop"));
}

/// Issue 22 item 4: Route 53 records may be changed only in the hosted zones the stack is
/// given (`DnsHostedZoneIds`), never in every zone of the account; without any, in none.
#[test]
fn route53_writes_are_limited_to_the_zones_the_stack_is_given() {
    let template = template();
    let statements = all_statements(&template);
    let writes: Vec<&&Value> = statements
        .iter()
        .filter(|s| {
            s["Action"]
                .to_string()
                .contains("route53:ChangeResourceRecordSets")
        })
        .collect();
    assert!(!writes.is_empty(), "no Route 53 write at all");
    for statement in writes {
        let resource = statement["Resource"].to_string();
        assert!(
            resource.contains("DnsHostedZoneIds")
                && resource.contains("HasDnsHostedZones")
                && !resource.contains("hostedzone/*"),
            "Route 53 write not limited to the given zones: {resource}"
        );
        // Only UPSERTs of CNAMEs, and only the named records when the stack names them.
        let condition = &statement["Condition"]["!If"];
        assert_eq!(condition[0], "HasDnsRecordNames", "{statement}");
        for (i, names) in [(1, true), (2, false)] {
            let keys = &condition[i]["ForAllValues:StringEquals"];
            assert_eq!(
                keys["route53:ChangeResourceRecordSetsActions"],
                json!(["UPSERT"])
            );
            assert_eq!(
                keys["route53:ChangeResourceRecordSetsRecordTypes"],
                json!(["CNAME"])
            );
            assert_eq!(
                keys["route53:ChangeResourceRecordSetsNormalizedRecordNames"],
                if names {
                    json!({"!Ref": "DnsRecordNames"})
                } else {
                    Value::Null
                },
                "{statement}"
            );
        }
    }
    assert_eq!(template["Parameters"]["DnsHostedZoneIds"]["Default"], "");
    // What the steps write is what the condition admits: one UPSERT of weighted CNAMEs.
    let dns = include_str!("../../functions/bluegreen/src/aws/dns.rs");
    assert!(dns.contains("ChangeAction::Upsert") && !dns.contains("ChangeAction::Delete"));
    assert!(!dns.contains("ChangeAction::Create"));
}

/// Every policy statement of the template: managed policies' and roles' inline ones.
fn all_statements(template: &Value) -> Vec<&Value> {
    let mut statements = Vec::new();
    for resource in template["Resources"].as_object().unwrap().values() {
        let properties = &resource["Properties"];
        let documents = std::iter::once(&properties["PolicyDocument"]).chain(
            properties["Policies"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| &p["PolicyDocument"]),
        );
        for document in documents {
            statements.extend(document["Statement"].as_array().into_iter().flatten());
        }
    }
    statements
}

/// Issue 24 (`database.secret`): the stack reads a production database secret only when it
/// is tagged `bluegreen:database-source = true`, and writes or deletes secrets only under
/// `bluegreen/clone/`, tagged as bluegreen's; besides, it reads only the link key and smoke
/// checks' header secrets tagged `bluegreen:smoke-header = true` (issue 25), the latter by
/// the functions that run smoke checks.
#[test]
fn secrets_are_read_only_when_tagged_and_written_only_under_bluegreen_clone() {
    let template = template();
    let statements = all_statements(&template);
    let of = |action: &str| -> Vec<&Value> {
        statements
            .iter()
            .copied()
            .filter(|s| s["Action"].to_string().contains(action))
            .collect()
    };
    for action in [
        "secretsmanager:CreateSecret",
        "secretsmanager:PutSecretValue",
        "secretsmanager:DeleteSecret",
        "secretsmanager:TagResource",
    ] {
        let grants = of(action);
        assert!(!grants.is_empty(), "nothing grants {action}");
        for statement in grants {
            assert!(
                statement["Resource"]
                    .to_string()
                    .contains("secret:bluegreen/clone/*")
                    && statement["Condition"]
                        .to_string()
                        .contains("bluegreen:managed"),
                "{action} beyond bluegreen's clone secrets: {statement}"
            );
        }
    }
    let reads = of("secretsmanager:GetSecretValue");
    assert!(reads.len() >= 3, "{reads:?}");
    for statement in reads {
        let resource = statement["Resource"].to_string();
        let condition = statement["Condition"].to_string();
        assert!(
            resource.contains("LinkSigningSecret")
                || (resource.contains("secret:bluegreen/clone/*")
                    && condition.contains("bluegreen:managed"))
                || condition.contains("/bluegreen:database-source\":\"true\"")
                || condition.contains("/bluegreen:smoke-header\":\"true\""),
            "a secret read beyond the link key, tagged sources and smoke headers, and clone \
             secrets: {statement}"
        );
    }
    for role in ["HealthCheckRole", "PromoteRole"] {
        assert!(
            role_grants_on(
                role,
                "secretsmanager:GetSecretValue",
                &json!({ "!Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:*" })
            ),
            "{role} runs smoke checks but cannot read their header secrets"
        );
    }
    // The functions that register pre-prod's and the rehearsal's revisions write them.
    for role in ["LaunchPreprodRole", "MigrateRole"] {
        assert!(
            role_grants_on(
                role,
                "secretsmanager:CreateSecret",
                &json!({ "!Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:bluegreen/clone/*" })
            ),
            "{role} cannot write a clone's secret"
        );
    }
}

/// Issue 25 (`traffic.test_rule`): listener rules are added only to bluegreen-managed
/// listeners, tagged at creation, and deleted only when they are a deployment's own (the
/// maintenance page, the test rule); the launch adds the test rule and the health check makes
/// sure of it, so both may.
#[test]
fn listener_rules_are_added_to_managed_listeners_and_deleted_only_when_bluegreens() {
    let template = template();
    let statements = all_statements(&template);
    let of = |action: &str| -> Vec<&Value> {
        statements
            .iter()
            .copied()
            .filter(|s| s["Action"].to_string().contains(action))
            .collect()
    };
    for statement in of("elasticloadbalancing:CreateRule") {
        assert!(
            statement["Condition"]
                .to_string()
                .contains("\"aws:ResourceTag/bluegreen:managed\":\"true\""),
            "CreateRule on listeners bluegreen does not manage: {statement}"
        );
    }
    let deletes = of("elasticloadbalancing:DeleteRule");
    assert!(!deletes.is_empty());
    for statement in deletes {
        let condition = &statement["Condition"]["StringEquals"]["aws:ResourceTag/bluegreen:role"];
        let roles: Vec<&str> = condition
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        assert_eq!(
            roles,
            ["maintenance", bluegreen::test_rule::ROLE],
            "DeleteRule beyond a deployment's own rules: {statement}"
        );
    }
    let rules = json!({ "!Sub": "arn:${AWS::Partition}:elasticloadbalancing:${AWS::Region}:${AWS::AccountId}:listener/*" });
    let tagged = json!({ "!Sub": "arn:${AWS::Partition}:elasticloadbalancing:${AWS::Region}:${AWS::AccountId}:listener-rule/*" });
    for role in ["LaunchPreprodRole", "HealthCheckRole"] {
        assert!(
            role_grants_on(role, "elasticloadbalancing:CreateRule", &rules)
                && role_grants_on(role, "elasticloadbalancing:AddTags", &tagged),
            "{role} cannot add the test rule"
        );
    }
    for role in [
        "EndingRole",
        "ReconcileRole",
        "TeardownRole",
        "OperatorApiRole",
    ] {
        assert!(
            role_grants_on(role, "elasticloadbalancing:DeleteRule", &tagged),
            "{role} ends deployments but cannot remove their test rule"
        );
    }
}

/// Issue 25 item 1: the functions that send smoke checks (health check, promote) run in the
/// subnets and security groups the stack is given (`CheckSubnetIds`, `CheckSecurityGroupIds`),
/// so an internal load balancer and a test port closed to the Internet are reachable; their
/// roles then carry the network-interface permissions Lambda needs. Without subnets they run
/// outside any VPC, as before.
#[test]
fn the_checking_functions_run_in_the_given_network_with_the_permissions_it_needs() {
    let template = template();
    assert_eq!(
        template["Conditions"]["ChecksInVpc"],
        json!({"!Not": [{"!Equals": [{"!Join": ["", {"!Ref": "CheckSubnetIds"}]}, ""]}]})
    );
    for (function, role) in [
        ("HealthCheckFunction", "HealthCheckRole"),
        ("PromoteFunction", "PromoteRole"),
    ] {
        assert_eq!(
            resource(&template, function)["Properties"]["VpcConfig"],
            json!({"!If": [
                "ChecksInVpc",
                {
                    "SubnetIds": {"!Ref": "CheckSubnetIds"},
                    "SecurityGroupIds": {"!Ref": "CheckSecurityGroupIds"}
                },
                {"!Ref": "AWS::NoValue"}
            ]}),
            "{function}"
        );
        let attached = resource(&template, role)["Properties"]["ManagedPolicyArns"]
            .as_array()
            .unwrap()
            .clone();
        assert!(
            attached.contains(&json!({"!If": [
                "ChecksInVpc",
                {"!Ref": "CheckNetworkPolicy"},
                {"!Ref": "AWS::NoValue"}
            ]})),
            "{role}: {attached:?}"
        );
    }
    let granted = resource(&template, "CheckNetworkPolicy")["Properties"]["PolicyDocument"]
        ["Statement"][0]["Action"]
        .clone();
    for action in [
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DeleteNetworkInterface",
    ] {
        assert!(
            granted.as_array().unwrap().contains(&json!(action)),
            "{action}: {granted}"
        );
    }
    // No other function runs in the VPC: they reach only AWS APIs.
    let in_vpc: Vec<&String> = template["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| !r["Properties"]["VpcConfig"].is_null())
        .map(|(name, _)| name)
        .collect();
    assert_eq!(in_vpc, ["HealthCheckFunction", "PromoteFunction"]);
}

/// Config validation bounds a look's smoke rounds by the health-check function's timeout
/// (issue 22): the constant it uses is the template's.
#[test]
fn the_smoke_budget_is_the_health_check_functions_timeout() {
    let template = template();
    let timeout = resource(&template, "HealthCheckFunction")["Properties"]["Timeout"].as_u64();
    assert_eq!(
        timeout,
        Some(bluegreen::config::HEALTH_CHECK_FUNCTION_TIMEOUT_SECONDS)
    );
}

/// `bluegreen redeploy` prepares its deployment in the operator API, which writes the record
/// as prepare does (a conditional `PutItem`); `RecordsPolicy` only reads and updates.
#[test]
fn the_operator_api_may_create_the_record_a_redeploy_starts() {
    assert!(
        role_grants(
            "OperatorApiRole",
            "dynamodb:PutItem",
            "DeploymentsTable.Arn"
        ),
        "OperatorApiRole cannot create deployment records"
    );
    assert!(role_grants(
        "OperatorApiRole",
        "ecs:DescribeTaskDefinition",
        "*"
    ));
}

/// The missed-push sweep creates records as intake's prepare does, and moves its cursor in
/// the services table (RecordsPolicy's `UpdateItem` is on the deployments table only).
#[test]
fn the_missed_push_sweep_may_create_records() {
    assert!(role_grants(
        "MissedPushesRole",
        "dynamodb:PutItem",
        "DeploymentsTable.Arn"
    ));
    assert!(role_grants(
        "MissedPushesRole",
        "dynamodb:UpdateItem",
        "ServicesTable.Arn"
    ));
}

/// Issue 22: CloudWatch cannot use the AWS-managed SNS key, so an alarm whose topic is
/// encrypted with `alias/aws/sns` never notifies anyone. Every alarm's topic is unencrypted or
/// encrypted with a key of the stack whose policy lets CloudWatch use it, and every role that
/// may publish to such a topic may use its key (SNS encrypts with a data key of it).
#[test]
fn the_alarms_can_publish_to_their_encrypted_topic() {
    let template = template();
    let resources = template["Resources"].as_object().unwrap();
    let of_type = |kind: &'static str| {
        resources
            .iter()
            .filter(move |(_, r)| r["Type"] == kind)
            .map(|(name, r)| (name.clone(), r))
    };
    let mut topics = BTreeSet::new();
    for (alarm, resource) in of_type("AWS::CloudWatch::Alarm") {
        for action in ["AlarmActions", "OKActions", "InsufficientDataActions"] {
            for target in resource["Properties"][action]
                .as_array()
                .into_iter()
                .flatten()
            {
                let topic = target["!Ref"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{alarm}'s {action} is not a topic of the stack"));
                topics.insert(topic.to_owned());
            }
        }
    }
    assert!(!topics.is_empty(), "no alarm notifies a topic");
    for topic in &topics {
        let key = &resource(&template, topic)["Properties"]["KmsMasterKeyId"];
        if key.is_null() {
            continue;
        }
        let key = key["!Ref"].as_str().unwrap_or_else(|| {
            panic!("{topic} is encrypted with {key}, not a key of the stack: CloudWatch cannot use an AWS-managed key")
        });
        let policy = &resource(&template, key)["Properties"]["KeyPolicy"]["Statement"];
        let cloudwatch_may = |action: &str| {
            policy.as_array().into_iter().flatten().any(|s| {
                s["Effect"] == "Allow"
                    && s["Principal"]["Service"] == "cloudwatch.amazonaws.com"
                    && s["Action"]
                        .as_array()
                        .is_some_and(|a| a.contains(&json!(action)))
            })
        };
        assert!(
            cloudwatch_may("kms:Decrypt") && cloudwatch_may("kms:GenerateDataKey*"),
            "{key}'s policy does not let CloudWatch publish to {topic}"
        );
        let publishers: Vec<String> = of_type("AWS::IAM::Role")
            .map(|(name, _)| name)
            .filter(|role| role_grants_on(role, "sns:Publish", &json!({ "!Ref": topic })))
            .collect();
        assert!(!publishers.is_empty(), "nobody publishes to {topic}");
        let key_arn = json!({ "!GetAtt": format!("{key}.Arn") });
        for role in &publishers {
            for action in ["kms:GenerateDataKey", "kms:Decrypt"] {
                assert!(
                    role_grants_on(role, action, &key_arn),
                    "{role} publishes to {topic} but may not use its key ({action})"
                );
            }
        }
    }
}

/// Whether `role` (its inline policies and the managed policies it references) allows
/// `action` on `on` (a `!GetAtt` name, or `*`).
fn role_grants(role: &str, action: &str, on: &str) -> bool {
    let wanted = if on == "*" {
        json!("*")
    } else {
        json!({ "!GetAtt": on })
    };
    role_grants_on(role, action, &wanted)
}

/// Whether `role` allows `action` on the resource written as `wanted` in the template.
fn role_grants_on(role: &str, action: &str, wanted: &Value) -> bool {
    let template = template();
    let role = resource(&template, role);
    role["Properties"]["Policies"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| {
            p["PolicyDocument"]["Statement"]
                .as_array()
                .into_iter()
                .flatten()
        })
        .chain(
            role["Properties"]["ManagedPolicyArns"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|arn| arn["!Ref"].as_str())
                .flat_map(|name| {
                    resource(&template, name)["Properties"]["PolicyDocument"]["Statement"]
                        .as_array()
                        .into_iter()
                        .flatten()
                }),
        )
        .any(|st| {
            let actions = match &st["Action"] {
                Value::Array(a) => a.iter().filter_map(|v| v.as_str()).collect(),
                Value::String(a) => vec![a.as_str()],
                _ => vec![],
            };
            actions.contains(&action) && st["Resource"] == *wanted
        })
}

/// `(attribute, key type)` pairs of a `KeySchema`.
fn key_schema(schema: &Value) -> Vec<(String, String)> {
    schema
        .as_array()
        .expect("a KeySchema")
        .iter()
        .map(|k| {
            (
                k["AttributeName"].as_str().unwrap().to_owned(),
                k["KeyType"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// An index as the template declares it: name, key schema, projection type.
type IndexShape = (String, Vec<(String, String)>, Value);

fn expected_keys(hash: &str, range: Option<&str>) -> Vec<(String, String)> {
    let mut keys = vec![(hash.to_owned(), "HASH".to_owned())];
    keys.extend(range.map(|r| (r.to_owned(), "RANGE".to_owned())));
    keys
}

/// The tables and indexes the code reads (functions/bluegreen/src/tables.rs, which the test
/// world and `init --local` create) are the ones the stack declares, and every function knows
/// each table's name. A Query on an index the stack lacks would fail only in a real account.
#[test]
fn the_stack_declares_the_tables_and_indexes_the_code_queries() {
    let template = template();
    let declared: BTreeSet<&str> = template["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::DynamoDB::Table")
        .map(|(name, _)| name.as_str())
        .collect();
    let known: BTreeSet<&str> = bluegreen::tables::TABLES
        .iter()
        .map(|t| t.resource)
        .collect();
    assert_eq!(declared, known);
    for table in bluegreen::tables::TABLES {
        let p = &resource(&template, table.resource)["Properties"];
        assert_eq!(
            key_schema(&p["KeySchema"]),
            expected_keys(table.hash, table.range),
            "{}",
            table.resource
        );
        let attributes: BTreeSet<&str> = p["AttributeDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                assert_eq!(a["AttributeType"], "S");
                a["AttributeName"].as_str().unwrap()
            })
            .collect();
        assert_eq!(
            attributes,
            table.key_attributes().into_iter().collect(),
            "{}",
            table.resource
        );
        let indexes: Vec<IndexShape> = p["GlobalSecondaryIndexes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| {
                (
                    i["IndexName"].as_str().unwrap().to_owned(),
                    key_schema(&i["KeySchema"]),
                    i["Projection"]["ProjectionType"].clone(),
                )
            })
            .collect();
        let wanted: Vec<IndexShape> = table
            .indexes
            .iter()
            .map(|i| {
                (
                    i.name.to_owned(),
                    expected_keys(i.hash, Some(i.range)),
                    json!("ALL"),
                )
            })
            .collect();
        assert_eq!(indexes, wanted, "{}", table.resource);
    }
    let variables = &template["Globals"]["Function"]["Environment"]["Variables"];
    for (variable, table) in [
        ("BLUEGREEN_DEPLOYMENTS_TABLE", "DeploymentsTable"),
        ("BLUEGREEN_LOCKS_TABLE", "LocksTable"),
        ("BLUEGREEN_SERVICES_TABLE", "ServicesTable"),
    ] {
        assert_eq!(variables[variable], json!({ "!Ref": table }), "{variable}");
    }
}

/// Readers query indexes; none may scan the deployments table (its history grows without
/// bound). Before the indexes, the console, the operator API and people's policy held Scan.
#[test]
fn no_role_or_policy_may_scan_the_deployments_table() {
    let template = template();
    for (name, r) in template["Resources"].as_object().unwrap() {
        let mut statements: Vec<&Value> = Vec::new();
        if r["Type"] == "AWS::IAM::ManagedPolicy" {
            statements.extend(
                r["Properties"]["PolicyDocument"]["Statement"]
                    .as_array()
                    .unwrap(),
            );
        }
        if r["Type"] == "AWS::IAM::Role" {
            for p in r["Properties"]["Policies"].as_array().into_iter().flatten() {
                statements.extend(p["PolicyDocument"]["Statement"].as_array().unwrap());
            }
        }
        for s in statements {
            let scans = match &s["Action"] {
                Value::Array(a) => a.contains(&json!("dynamodb:Scan")),
                action => action == "dynamodb:Scan",
            };
            assert!(
                !scans || s["Resource"] != json!({ "!GetAtt": "DeploymentsTable.Arn" }),
                "{name} may scan the deployments table"
            );
        }
    }
}
