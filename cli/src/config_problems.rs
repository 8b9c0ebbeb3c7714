//! Every problem of a TOML service config at once, each naming its field.
//!
//! The TOML parser stops at the first problem; the config schema names them all, and the
//! semantic checks ([`ServiceConfig::problems`]) find what a schema cannot (globs, ARN kinds,
//! budgets). A schema problem used to hide every semantic one, so a person fixed a file in
//! rounds: here the fields the schema refused are set aside, the rest is read with their
//! defaults, and its semantic problems are listed too (except those about the set-aside fields,
//! which would only repeat them).
//!
//! A schema error for a field that takes one of several forms (`traffic` by `mode`, a shift by
//! `kind`, an optional table) names the form that was meant — the one whose tag matches — and
//! that form's own problems, never "is not valid under any of the schemas" with the whole
//! table printed as JSON.

use bluegreen::config::ServiceConfig;
use jsonschema::ValidationError;
use jsonschema::error::ValidationErrorKind;
use serde_json::Value;

/// The config in `text`, or every problem of it (schema and semantic), each as `field: problem`.
pub fn check(text: &str) -> Result<ServiceConfig, Vec<String>> {
    let instance = match toml::from_str::<toml::Value>(text) {
        Ok(value) => serde_json::to_value(value).map_err(|e| vec![e.to_string()])?,
        // Not TOML at all: the parser's error says where.
        Err(e) => return Err(vec![e.to_string()]),
    };
    let schema = bluegreen::config::json_schema();
    let mut problems = Vec::new();
    let mut set_aside = Vec::new();
    if let Ok(validator) = jsonschema::validator_for(&schema) {
        for error in validator.iter_errors(&instance) {
            describe(&error, &mut problems, &mut set_aside);
        }
    }
    let mut readable = instance;
    for path in &set_aside {
        remove(&mut readable, path);
    }
    match serde_json::from_value::<ServiceConfig>(readable) {
        Ok(config) => {
            let aside: Vec<String> = set_aside.iter().map(|p| p.join(".")).collect();
            problems.extend(config.problems().into_iter().filter(|p| {
                !aside
                    .iter()
                    .any(|a| !a.is_empty() && p.starts_with(a.as_str()))
            }));
            if problems.is_empty() {
                return Ok(config);
            }
        }
        // What is left cannot be read (a required field missing or refused): the schema's
        // problems say why; without any, the parser's own error does.
        Err(e) if problems.is_empty() => problems.push(e.to_string()),
        Err(_) => {}
    }
    problems.dedup();
    Err(problems)
}

/// The field an error is about, as path segments (`["approval", "timeout_seconds"]`).
fn segments(error: &ValidationError) -> Vec<String> {
    error
        .instance_path()
        .to_string()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Adds `error`'s problems (a one-of error: the meant form's), and the fields to set aside.
fn describe(error: &ValidationError, problems: &mut Vec<String>, set_aside: &mut Vec<Vec<String>>) {
    let at = segments(error);
    let field = if at.is_empty() {
        "(top level)".to_owned()
    } else {
        at.join(".")
    };
    match error.kind() {
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context } => {
            match meant_form(error, context) {
                Some(form) => {
                    for sub in form {
                        describe(sub, problems, set_aside);
                    }
                }
                None => problems.push(format!(
                    "{field}: matches none of the forms it takes{}",
                    tags_expected(context)
                )),
            }
            set_aside.push(at);
            return;
        }
        // Missing: nothing to set aside (reading fails unless the field has a default).
        ValidationErrorKind::Required { .. } => {}
        // Unknown keys (a misspelt `helth`): each set aside, so the rest is still read.
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            for key in unexpected {
                let mut path = at.clone();
                path.push(key.clone());
                set_aside.push(array_of(path));
            }
        }
        _ => set_aside.push(array_of(at)),
    }
    // A table or list is not printed whole: its field says where.
    let message = match error.instance().as_ref() {
        Value::Object(_) | Value::Array(_) => error.masked().to_string(),
        _ => error.to_string(),
    };
    problems.push(format!("{field}: {message}"));
}

/// The one form of a one-of that was meant: not one whose tag (`mode`, `kind`) is another
/// value, not the "absent" (`null`) form of an optional table. `None` when that leaves not
/// exactly one.
fn meant_form<'e>(
    error: &ValidationError,
    forms: &'e [Vec<ValidationError<'static>>],
) -> Option<&'e Vec<ValidationError<'static>>> {
    let here = error.instance_path().to_string();
    let other_tag = |e: &ValidationError| {
        matches!(
            e.kind(),
            ValidationErrorKind::Constant { .. } | ValidationErrorKind::Enum { .. }
        ) && e.instance_path().to_string() != here
    };
    let wrong_type_here = |e: &ValidationError| {
        matches!(e.kind(), ValidationErrorKind::Type { .. })
            && e.instance_path().to_string() == here
    };
    let meant: Vec<&Vec<ValidationError<'static>>> = forms
        .iter()
        .filter(|form| !form.iter().any(other_tag))
        .filter(|form| !(form.len() == 1 && wrong_type_here(&form[0])))
        .collect();
    match meant.as_slice() {
        [one] => Some(one),
        _ => None,
    }
}

/// ` (mode: "listener" or "dns")`: the tag values the forms take, when they have one.
fn tags_expected(forms: &[Vec<ValidationError<'static>>]) -> String {
    let mut tags = Vec::new();
    for form in forms {
        for e in form {
            if let ValidationErrorKind::Constant { expected_value } = e.kind() {
                let field = segments(e).pop().unwrap_or_default();
                tags.push(format!("{field} = {expected_value}"));
            }
        }
    }
    if tags.is_empty() {
        String::new()
    } else {
        format!(" ({})", tags.join(" or "))
    }
}

/// An array element's problem sets the whole array aside (removing one element would
/// renumber the others).
fn array_of(mut at: Vec<String>) -> Vec<String> {
    if let Some(index) = at.iter().position(|s| s.parse::<usize>().is_ok()) {
        at.truncate(index);
    }
    at
}

/// Removes the field at `path` from `doc` (nothing when it is not there).
fn remove(doc: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = doc;
    for segment in parents {
        match at.get_mut(segment.as_str()) {
            Some(next) => at = next,
            None => return,
        }
    }
    if let Some(table) = at.as_object_mut() {
        table.remove(last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = include_str!("../../docs/example-service.toml");

    #[test]
    fn the_documented_config_has_no_problem() {
        check(GOOD).expect("valid");
    }
}
