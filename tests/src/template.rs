//! `infra/template.yaml` as JSON (CloudFormation's short intrinsic tags kept as
//! `{"!Tag": value}`), and what its roles grant: read by the stack tests and by the
//! IAM-by-execution check.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::{Value, json};
use serde_norway::Value as Yaml;

/// The repository's root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The template, with CloudFormation's short intrinsic tags kept as `{"!Tag": value}`.
pub fn template() -> Value {
    let text = std::fs::read_to_string(repo().join("infra/template.yaml")).expect("template");
    let yaml: Yaml = serde_norway::from_str(&text).expect("template is YAML");
    to_json(yaml)
}

fn to_json(yaml: Yaml) -> Value {
    match yaml {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => json!(b),
        Yaml::Number(n) => serde_json::to_value(n).expect("number"),
        Yaml::String(s) => json!(s),
        Yaml::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Yaml::Mapping(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k.as_str().expect("string keys").to_owned(), to_json(v)))
                .collect(),
        ),
        Yaml::Tagged(tagged) => {
            json!({ tagged.tag.to_string(): to_json(tagged.value) })
        }
    }
}

/// A resource of the template by its logical name.
pub fn resource<'a>(template: &'a Value, name: &str) -> &'a Value {
    &template["Resources"][name]
}

/// Every `Allow` statement of a function's role, from its inline and managed policies.
pub fn role_statements(template: &Value, function: &str) -> Vec<Value> {
    let role = resource(template, function)["Properties"]["Role"]["!GetAtt"]
        .as_str()
        .unwrap_or_else(|| panic!("{function} has no role"))
        .trim_end_matches(".Arn")
        .to_owned();
    let role = &resource(template, &role)["Properties"];
    let mut documents: Vec<&Value> = role["Policies"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| &p["PolicyDocument"])
        .collect();
    for arn in role["ManagedPolicyArns"].as_array().into_iter().flatten() {
        if let Some(name) = arn["!Ref"].as_str() {
            documents.push(&resource(template, name)["Properties"]["PolicyDocument"]);
        }
    }
    documents
        .iter()
        .flat_map(|d| d["Statement"].as_array().into_iter().flatten())
        .filter(|s| s["Effect"] != "Deny")
        .cloned()
        .collect()
}

/// Every IAM action (pattern, like `ecs:Describe*`) a function's role allows.
pub fn role_actions(template: &Value, function: &str) -> BTreeSet<String> {
    role_statements(template, function)
        .iter()
        .flat_map(|s| match &s["Action"] {
            Value::Array(a) => a
                .iter()
                .filter_map(|v| v.as_str())
                .map(str::to_owned)
                .collect(),
            Value::String(a) => vec![a.clone()],
            _ => vec![],
        })
        .collect()
}
