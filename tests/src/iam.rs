//! IAM by execution (issue 22): every AWS request a Lambda function makes while the tests run
//! it, checked against the actions its role allows in `infra/template.yaml`.
//!
//! The emulator allows everything, so a role that lacks a permission passes every other test
//! and fails in an account. Here the local runner's task handler is wrapped ([`AsFunction`]):
//! each step runs inside a task-local naming its stack function, and an interceptor on every
//! SDK client ([`CallLog`]) records the IAM action of each request with the function that
//! made it. [`Grants`] then says which were not allowed and which allowed actions no request
//! needed (least privilege, measured).
//!
//! Evaluated: actions, with the policies' wildcards, per function, from the role's inline and
//! managed policies; `TransactWriteItems` as the actions of its items (IAM authorises those).
//! Not evaluated: resources and conditions (`bluegreen:managed` tags, table ARNs) — the stack
//! tests hold the ones that matter by reading the statements.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use bluegreen::Context;
use bluegreen::steps::registry;
use bluegreen_statemachine::runner::{BoxFuture, Failure, TaskCall, TaskHandler};
use bluegreen_statemachine::validate::WAIT_FOR_TOKEN;
use serde_json::Value;

use crate::serving::intercept_all;
use crate::template::{role_statements, template};

tokio::task_local! {
    /// The stack function (`SwitchFunction`) the current step runs as.
    static FUNCTION: String;
}

/// The function a request made outside any step is recorded as.
pub const OUTSIDE_A_STEP: &str = "(outside a step)";

/// One request: the function that made it, the IAM action it needs and, where the checker
/// evaluates resources (DynamoDB), the resource's ARN.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Call {
    /// The stack function's logical name.
    pub function: String,
    /// `service:Action`.
    pub action: String,
    /// The ARN the request acts on, when evaluated.
    pub resource: Option<String>,
}

/// Records the IAM action of every request made through the recorded context, as the
/// function's whose step is running ([`AsFunction`]). A request made outside any step (a task
/// spawned by a step loses the task-local) is recorded as [`OUTSIDE_A_STEP`], which no role
/// allows: the check fails rather than pass without looking. The test's own arranging and
/// reading use other clients.
#[derive(Debug, Clone, Default)]
pub struct CallLog(Arc<Mutex<Vec<Call>>>);

impl CallLog {
    /// Every request recorded so far.
    pub fn calls(&self) -> Vec<Call> {
        self.0.lock().expect("call log").clone()
    }
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "bluegreen-test-iam-call-log"
    }

    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let function = FUNCTION
            .try_with(String::clone)
            .unwrap_or_else(|_| OUTSIDE_A_STEP.to_owned());
        let Some(metadata) = cfg.load::<Metadata>() else {
            return Ok(());
        };
        let prefix = iam_prefix(metadata.service());
        let input = context.input();
        let actions: Vec<(String, Option<String>)> =
            match input.downcast_ref::<TransactWriteItemsInput>() {
                // IAM authorises a transaction's items, each by its own action on its table.
                Some(transaction) => transaction
                    .transact_items()
                    .iter()
                    .map(|item| {
                        let (action, table) = if let Some(p) = &item.put {
                            ("PutItem", p.table_name())
                        } else if let Some(u) = &item.update {
                            ("UpdateItem", u.table_name())
                        } else if let Some(d) = &item.delete {
                            ("DeleteItem", d.table_name())
                        } else {
                            let check = item.condition_check.as_ref();
                            ("ConditionCheckItem", check.map_or("", |c| c.table_name()))
                        };
                        (format!("{prefix}:{action}"), Some(table_arn(table, None)))
                    })
                    .collect(),
                None => vec![(
                    format!("{prefix}:{}", metadata.name()),
                    dynamodb_resource(input),
                )],
            };
        let mut log = self.0.lock().expect("call log");
        for (action, resource) in actions {
            log.push(Call {
                function: function.clone(),
                action,
                resource,
            });
        }
        Ok(())
    }
}

/// The test world's account and region (the emulator's).
const ACCOUNT: &str = crate::ACCOUNT;
const REGION: &str = "us-east-1";

/// The ARN of a table (or one of its indexes).
fn table_arn(table: &str, index: Option<&str>) -> String {
    let arn = format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}");
    match index {
        Some(index) => format!("{arn}/index/{index}"),
        None => arn,
    }
}

/// The table (or index) a DynamoDB request acts on.
fn dynamodb_resource(
    input: &aws_smithy_runtime_api::client::interceptors::context::Input,
) -> Option<String> {
    use aws_sdk_dynamodb::operation::{
        delete_item::DeleteItemInput, get_item::GetItemInput, put_item::PutItemInput,
        query::QueryInput, scan::ScanInput, update_item::UpdateItemInput,
    };
    if let Some(i) = input.downcast_ref::<GetItemInput>() {
        return i.table_name().map(|t| table_arn(t, None));
    }
    if let Some(i) = input.downcast_ref::<PutItemInput>() {
        return i.table_name().map(|t| table_arn(t, None));
    }
    if let Some(i) = input.downcast_ref::<UpdateItemInput>() {
        return i.table_name().map(|t| table_arn(t, None));
    }
    if let Some(i) = input.downcast_ref::<DeleteItemInput>() {
        return i.table_name().map(|t| table_arn(t, None));
    }
    if let Some(i) = input.downcast_ref::<QueryInput>() {
        return i.table_name().map(|t| table_arn(t, i.index_name()));
    }
    if let Some(i) = input.downcast_ref::<ScanInput>() {
        return i.table_name().map(|t| table_arn(t, i.index_name()));
    }
    None
}

/// The IAM service prefix of an SDK's service name.
fn iam_prefix(sdk_service: &str) -> String {
    match sdk_service {
        "Elastic Load Balancing v2" => "elasticloadbalancing".into(),
        "Application Auto Scaling" => "application-autoscaling".into(),
        "SFN" => "states".into(),
        "Secrets Manager" => "secretsmanager".into(),
        "Route 53" => "route53".into(),
        other => other.to_ascii_lowercase(),
    }
}

/// `ctx` with every request recorded in a new [`CallLog`].
pub fn recorded(ctx: &Context) -> (Context, CallLog) {
    let log = CallLog::default();
    (intercept_all(ctx, log.clone()), log)
}

/// Runs `work` as stack function `function` (see [`FUNCTION`]): its requests through a
/// [`recorded`] context are that function's.
pub async fn as_function<F: std::future::Future>(function: &str, work: F) -> F::Output {
    FUNCTION.scope(function.to_owned(), work).await
}

/// A task handler that runs each step as its stack function (see [`FUNCTION`]).
pub struct AsFunction(pub Arc<dyn TaskHandler>);

impl TaskHandler for AsFunction {
    fn invoke(&self, call: TaskCall) -> BoxFuture<'_, Result<Value, Failure>> {
        // A waitForTaskToken task (the approval, a wait for an ECS event) names its function
        // in the parameters.
        let placeholder = if call.resource == WAIT_FOR_TOKEN {
            call.input["FunctionName"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        } else {
            call.resource.clone()
        };
        match registry::by_placeholder(&placeholder) {
            Some(step) => {
                Box::pin(FUNCTION.scope(format!("{}Function", step.function), self.0.invoke(call)))
            }
            None => self.0.invoke(call),
        }
    }
}

/// One `Allow` statement as the checker reads it: its action patterns and its resources
/// resolved against the test world (unresolvable parts of a `!Sub` become `*`).
#[derive(Debug, Clone)]
struct Statement {
    actions: Vec<String>,
    resources: Vec<String>,
}

/// What each function's role allows, read from the template.
pub struct Grants(BTreeMap<String, Vec<Statement>>);

impl Grants {
    /// The grants of every Lambda function of the stack.
    pub fn of_the_stack() -> Grants {
        let template = template();
        let functions: BTreeSet<String> = template["Resources"]
            .as_object()
            .expect("resources")
            .iter()
            .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function")
            .filter(|(_, r)| r["Properties"]["Role"]["!GetAtt"].is_string())
            .map(|(name, _)| name.clone())
            .collect();
        Grants(
            functions
                .into_iter()
                .map(|f| {
                    let statements = role_statements(&template, &f)
                        .into_iter()
                        .map(|s| Statement {
                            actions: strings(&s["Action"]),
                            resources: match &s["Resource"] {
                                Value::Array(items) => items.iter().map(resolve).collect(),
                                one => vec![resolve(one)],
                            },
                        })
                        .collect();
                    (f, statements)
                })
                .collect(),
        )
    }

    /// Whether `function`'s role allows the call: a statement with a matching action and,
    /// when the call's resource is known, a matching resource.
    pub fn allows(&self, call: &Call) -> bool {
        self.0.get(&call.function).is_some_and(|statements| {
            statements.iter().any(|s| {
                s.actions.iter().any(|p| matches(p, &call.action))
                    && call
                        .resource
                        .as_ref()
                        .is_none_or(|r| s.resources.iter().any(|p| matches(p, r)))
            })
        })
    }

    /// Each call its function's role does not allow, as `Function: action on resource`,
    /// once.
    pub fn denied(&self, calls: &[Call]) -> Vec<String> {
        calls
            .iter()
            .filter(|c| !self.allows(c))
            .map(|c| match &c.resource {
                Some(r) => format!("{}: {} on {r}", c.function, c.action),
                None => format!("{}: {}", c.function, c.action),
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// Each allowed action no call needed, as `Function: pattern` (of the functions that
    /// made at least one call), leaving out what AWS uses on the function's behalf rather
    /// than a request of its own: the runtime's logs, KMS for an encrypted topic, the role
    /// ECS receives.
    pub fn unused(&self, calls: &[Call]) -> Vec<String> {
        const ON_ITS_BEHALF: [&str; 3] = ["logs:", "kms:", "iam:PassRole"];
        let ran: BTreeSet<&str> = calls.iter().map(|c| c.function.as_str()).collect();
        let mut unused = BTreeSet::new();
        for (f, statements) in &self.0 {
            if !ran.contains(f.as_str()) {
                continue;
            }
            for pattern in statements.iter().flat_map(|s| &s.actions) {
                let needed = calls
                    .iter()
                    .any(|c| &c.function == f && matches(pattern, &c.action));
                if !needed && !ON_ITS_BEHALF.iter().any(|p| pattern.starts_with(p)) {
                    unused.insert(format!("{f}: {pattern}"));
                }
            }
        }
        unused.into_iter().collect()
    }
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str())
            .map(str::to_owned)
            .collect(),
        Value::String(one) => vec![one.clone()],
        _ => Vec::new(),
    }
}

/// The world's name of a table the template declares (the stack is named `bluegreen`).
fn table_named(logical: &str) -> Option<&'static str> {
    match logical {
        "DeploymentsTable" => Some("bluegreen-deployments"),
        "LocksTable" => Some("bluegreen-locks"),
        "ServicesTable" => Some("bluegreen-services"),
        _ => None,
    }
}

/// A statement's resource as an ARN pattern in the test world: `*`, a table's
/// `!GetAtt X.Arn`, or a `!Sub` with the tables' ARNs and the pseudo parameters filled in and
/// anything else a `*`.
fn resolve(value: &Value) -> String {
    if let Some(text) = value.as_str() {
        return text.to_owned();
    }
    if let Some(attribute) = value["!GetAtt"].as_str() {
        return match attribute.strip_suffix(".Arn").and_then(table_named) {
            Some(table) => table_arn(table, None),
            None => "*".into(),
        };
    }
    let sub = match &value["!Sub"] {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts[0].as_str().unwrap_or("*").to_owned(),
        _ => return "*".into(),
    };
    let mut out = String::new();
    let mut rest = sub.as_str();
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('}') else {
            break;
        };
        let variable = &rest[start + 2..start + end];
        out.push_str(&match variable {
            "AWS::Partition" => "aws".to_owned(),
            "AWS::Region" => REGION.to_owned(),
            "AWS::AccountId" => ACCOUNT.to_owned(),
            other => match other.strip_suffix(".Arn").and_then(table_named) {
                Some(table) => table_arn(table, None),
                None => "*".to_owned(),
            },
        });
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out
}

/// IAM's action matching: case-insensitive, `*` any run of characters, `?` one.
fn matches(pattern: &str, action: &str) -> bool {
    fn go(p: &[u8], a: &[u8]) -> bool {
        match (p.first(), a.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], a) || (!a.is_empty() && go(p, &a[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &a[1..]),
            (Some(x), Some(y)) if x.eq_ignore_ascii_case(y) => go(&p[1..], &a[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), action.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_match_as_iam_matches_them() {
        assert!(matches("ecs:Describe*", "ecs:DescribeServices"));
        assert!(matches("ECS:describeservices", "ecs:DescribeServices"));
        assert!(matches("*", "sns:Publish"));
        assert!(!matches("ecs:Describe*", "ecs:UpdateService"));
        assert!(!matches("ecs:DescribeServices", "ecs:DescribeServicesX"));
        assert!(matches("s?s:Publish", "sns:Publish"));
    }

    #[test]
    fn resources_resolve_to_the_test_worlds_arns() {
        let locks = table_arn("bluegreen-locks", None);
        assert_eq!(
            resolve(&serde_json::json!({"!GetAtt": "LocksTable.Arn"})),
            locks
        );
        let index = resolve(&serde_json::json!({"!Sub": "${DeploymentsTable.Arn}/index/*"}));
        assert!(matches(
            &index,
            &table_arn("bluegreen-deployments", Some("by_service"))
        ));
        assert!(!matches(&index, &locks));
        let parameter = resolve(&serde_json::json!({
            "!Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${ConfigPath}/*"
        }));
        assert_eq!(parameter, "arn:aws:ssm:us-east-1:123456789012:parameter*/*");
    }

    #[test]
    fn the_sdk_services_map_to_their_iam_prefixes() {
        assert_eq!(
            iam_prefix("Elastic Load Balancing v2"),
            "elasticloadbalancing"
        );
        assert_eq!(iam_prefix("SFN"), "states");
        assert_eq!(iam_prefix("DynamoDB"), "dynamodb");
        assert_eq!(
            iam_prefix("Application Auto Scaling"),
            "application-autoscaling"
        );
    }
}
