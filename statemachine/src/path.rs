//! JSONPath in ASL: reading paths (with `serde_json_path`), writing reference paths
//! (`ResultPath`), and evaluating payload templates (`Parameters`, `ResultSelector`,
//! `ItemSelector`), where keys ending in `.$` take their value from a path.

use serde_json::{Map, Value};
use serde_json_path::JsonPath;

/// A path that cannot be evaluated: `States.Runtime` in Step Functions terms.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct PathError(pub String);

/// Whether a path selects many nodes (and so yields an array) rather than one.
fn is_wildcard(path: &str) -> bool {
    path.contains('*') || path.contains("..") || path.contains("[?")
}

fn parse(path: &str) -> Result<JsonPath, PathError> {
    JsonPath::parse(path).map_err(|e| PathError(format!("invalid JSONPath {path:?}: {e}")))
}

/// Checks that `path` (or a `$$` context path) is valid JSONPath, without evaluating it.
pub fn check(path: &str) -> Result<(), PathError> {
    let path = match path.strip_prefix("$$") {
        Some(rest) => format!("${rest}"),
        None => path.to_owned(),
    };
    parse(&path).map(|_| ())
}

/// Reads `path` from `input`, or from `context` when it starts with `$$`. A definite path must
/// select exactly one node; a wildcard path yields an array of what it selects.
pub fn read(path: &str, input: &Value, context: &Value) -> Result<Value, PathError> {
    let (path, document) = match path.strip_prefix("$$") {
        Some(rest) => (format!("${rest}"), context),
        None => (path.to_owned(), input),
    };
    let query = parse(&path)?;
    let nodes = query.query(document);
    if is_wildcard(&path) {
        return Ok(Value::Array(nodes.all().into_iter().cloned().collect()));
    }
    nodes
        .exactly_one()
        .cloned()
        .map_err(|_| PathError(format!("path {path:?} does not select a value")))
}

/// Whether `path` selects anything (for `IsPresent`).
pub fn is_present(path: &str, input: &Value, context: &Value) -> bool {
    read(path, input, context)
        .is_ok_and(|v| !(is_wildcard(path) && v.as_array().is_some_and(Vec::is_empty)))
}

/// The field names of a reference path: `$` → none, `$.a.b` / `$['a']['b']` → `["a", "b"]`.
/// Indices and wildcards are not reference paths and are rejected.
pub fn reference_segments(path: &str) -> Result<Vec<String>, PathError> {
    let query = parse(path)?;
    if is_wildcard(path) || path.contains('[') && !path.contains("['") {
        return Err(PathError(format!(
            "{path:?} is not a reference path of field names"
        )));
    }
    // A scratch document in which the path exists tells us its normalised location.
    let mut scratch = Value::Null;
    let mut segments = Vec::new();
    let mut rest = path.strip_prefix('$').unwrap_or(path);
    while !rest.is_empty() {
        let (name, tail) = if let Some(r) = rest.strip_prefix("['") {
            let end = r
                .find("']")
                .ok_or_else(|| PathError(format!("unclosed bracket in {path:?}")))?;
            (r[..end].to_owned(), &r[end + 2..])
        } else if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            (r[..end].to_owned(), &r[end..])
        } else {
            return Err(PathError(format!("{path:?} is not a reference path")));
        };
        if name.is_empty() {
            return Err(PathError(format!("{path:?} has an empty field name")));
        }
        segments.push(name);
        rest = tail;
    }
    for segment in segments.iter().rev() {
        scratch = Value::Object(Map::from_iter([(segment.clone(), scratch)]));
    }
    // The maintained parser must agree that the path selects exactly this location.
    if query.query(&scratch).exactly_one().is_err() {
        return Err(PathError(format!("{path:?} is not a reference path")));
    }
    Ok(segments)
}

/// Writes `value` at reference path `path` in `document`, creating objects on the way.
pub fn write(document: Value, path: &str, value: Value) -> Result<Value, PathError> {
    let segments = reference_segments(path)?;
    if segments.is_empty() {
        return Ok(value);
    }
    let mut root = document;
    if !root.is_object() {
        return Err(PathError(format!(
            "cannot write {path:?} into a non-object input"
        )));
    }
    let mut cursor = &mut root;
    for (i, segment) in segments.iter().enumerate() {
        let object = cursor
            .as_object_mut()
            .ok_or_else(|| PathError(format!("{path:?}: {segment:?} is inside a non-object")))?;
        if i == segments.len() - 1 {
            object.insert(segment.clone(), value);
            break;
        }
        cursor = object
            .entry(segment.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    Ok(root)
}

/// Evaluates a payload template: `"key.$": "<path>"` becomes `"key": <value at path>`;
/// everything else is copied, recursively.
pub fn template(template: &Value, input: &Value, context: &Value) -> Result<Value, PathError> {
    match template {
        Value::Object(fields) => {
            let mut out = Map::new();
            for (key, value) in fields {
                match key.strip_suffix(".$") {
                    Some(name) => {
                        let path = value
                            .as_str()
                            .ok_or_else(|| PathError(format!("{key:?} must be a path string")))?;
                        out.insert(name.to_owned(), read(path, input, context)?);
                    }
                    None => {
                        out.insert(key.clone(), template_value(value, input, context)?);
                    }
                }
            }
            Ok(Value::Object(out))
        }
        other => template_value(other, input, context),
    }
}

fn template_value(value: &Value, input: &Value, context: &Value) -> Result<Value, PathError> {
    match value {
        Value::Object(_) => template(value, input, context),
        Value::Array(items) => items
            .iter()
            .map(|i| template_value(i, input, context))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}

/// Every path string a template uses (for load-time validation).
pub fn template_paths(template: &Value) -> Vec<String> {
    let mut paths = Vec::new();
    collect_paths(template, &mut paths);
    paths
}

fn collect_paths(value: &Value, paths: &mut Vec<String>) {
    match value {
        Value::Object(fields) => {
            for (key, v) in fields {
                if key.ends_with(".$") {
                    if let Some(p) = v.as_str() {
                        paths.push(p.to_owned());
                    }
                } else {
                    collect_paths(v, paths);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_paths(i, paths)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_definite_paths_wildcards_and_the_context() {
        let input =
            json!({"poll": {"deadline": "2026-01-01T00:00:00Z"}, "items": [{"id": 1}, {"id": 2}]});
        let context = json!({"Task": {"Token": "t-1"}});
        assert_eq!(
            read("$.poll.deadline", &input, &context).unwrap(),
            json!("2026-01-01T00:00:00Z")
        );
        assert_eq!(
            read("$.items[*].id", &input, &context).unwrap(),
            json!([1, 2])
        );
        assert_eq!(
            read("$$.Task.Token", &input, &context).unwrap(),
            json!("t-1")
        );
        assert!(read("$.missing", &input, &context).is_err());
        assert!(is_present("$.poll", &input, &context) && !is_present("$.nope", &input, &context));
    }

    #[test]
    fn writes_reference_paths_creating_objects_and_rejects_other_paths() {
        let out = write(json!({"a": 1}), "$.b.c", json!(2)).unwrap();
        assert_eq!(out, json!({"a": 1, "b": {"c": 2}}));
        assert_eq!(write(json!({"a": 1}), "$", json!(3)).unwrap(), json!(3));
        assert_eq!(
            write(json!({}), "$['x']", json!(true)).unwrap(),
            json!({"x": true})
        );
        assert!(write(json!({}), "$.items[*]", json!(1)).is_err());
        assert!(write(json!({}), "$.items[0]", json!(1)).is_err());
    }

    #[test]
    fn templates_take_dollar_keys_from_paths_and_copy_the_rest() {
        let input = json!({"deployment_id": "d-1", "poll": {"attempt": 2}});
        let context = json!({"Task": {"Token": "tok"}});
        let out = template(
            &json!({"action": "check", "deployment_id.$": "$.deployment_id", "nested": {"token.$": "$$.Task.Token", "n": [1]}}),
            &input,
            &context,
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"action": "check", "deployment_id": "d-1", "nested": {"token": "tok", "n": [1]}})
        );
        assert!(template(&json!({"x.$": "$.nope"}), &input, &context).is_err());
    }
}
