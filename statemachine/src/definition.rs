//! The Amazon States Language subset bluegreen's definitions use, as types.
//!
//! Loading is strict: a state type, field or comparison outside the subset is a load-time
//! [`LoadError`] naming the state and the field — never silently ignored.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// A loaded state machine (or a Map's item processor).
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    /// The first state.
    pub start_at: String,
    /// Execution timeout.
    pub timeout_seconds: Option<u64>,
    /// States by name.
    pub states: BTreeMap<String, State>,
}

/// One state.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "Type")]
pub enum State {
    /// A Lambda function, an optimised integration or a waitForTaskToken task.
    Task(Box<Task>),
    /// A branch on the input.
    Choice(Choice),
    /// A delay.
    Wait(Wait),
    /// Data shaping.
    Pass(Pass),
    /// Successful end.
    Succeed(Succeed),
    /// Failed end.
    Fail(Fail),
    /// Runs an item processor for each element of an array (inline mode only).
    Map(Box<MapState>),
}

/// How a state continues: `Next` or `End`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Transition {
    /// The next state.
    pub next: Option<String>,
    /// Whether this state ends the execution.
    #[serde(default)]
    pub end: bool,
}

/// Input and output processing shared by Task, Pass and Map.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Io {
    /// Selects the part of the input the state sees.
    pub input_path: Option<String>,
    /// Where the result goes in the input: absent = `$`, `null` discards it.
    #[serde(default, deserialize_with = "present")]
    pub result_path: Option<Option<String>>,
    /// Selects the part of the output passed on.
    pub output_path: Option<String>,
}

/// Tells a field set to `null` (`Some(None)`) from an absent one (`None`).
fn present<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(de).map(Some)
}

/// A retrier.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Retrier {
    /// Error names this retrier handles.
    pub error_equals: Vec<String>,
    /// First delay.
    #[serde(default = "one")]
    pub interval_seconds: u64,
    /// Attempts after the first (0 disables).
    #[serde(default = "three")]
    pub max_attempts: u32,
    /// Delay multiplier.
    #[serde(default = "two")]
    pub backoff_rate: f64,
    /// Delay cap.
    pub max_delay_seconds: Option<u64>,
    /// `FULL` or `NONE`.
    pub jitter_strategy: Option<String>,
}

fn one() -> u64 {
    1
}
fn three() -> u32 {
    3
}
fn two() -> f64 {
    2.0
}

/// A catcher.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Catcher {
    /// Error names this catcher handles.
    pub error_equals: Vec<String>,
    /// Where `{"Error", "Cause"}` goes: absent = `$`, `null` discards it.
    #[serde(default, deserialize_with = "present")]
    pub result_path: Option<Option<String>>,
    /// The state to go to.
    pub next: String,
}

/// What Task, Pass and Map states share: their input/output paths, where they go next, and
/// a free-text comment.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Flow {
    /// Input/output paths.
    #[serde(flatten)]
    pub io: Io,
    /// Next or End.
    #[serde(flatten)]
    pub transition: Transition,
    /// Free text.
    pub comment: Option<String>,
}

/// The fields of [`Flow`], as ASL spells them.
const FLOW_FIELDS: &[&str] = &[
    "InputPath",
    "ResultPath",
    "OutputPath",
    "Next",
    "End",
    "Comment",
];

/// A Task state.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Task {
    /// The resource (a `${…FunctionArn}` placeholder or an integration ARN).
    pub resource: String,
    /// Payload template.
    pub parameters: Option<Value>,
    /// Result template.
    pub result_selector: Option<Value>,
    /// Timeout from the input.
    pub timeout_seconds_path: Option<String>,
    /// Fixed timeout.
    pub timeout_seconds: Option<u64>,
    /// Retriers, in order.
    #[serde(default)]
    pub retry: Vec<Retrier>,
    /// Catchers, in order.
    #[serde(default)]
    pub catch: Vec<Catcher>,
    /// Paths, where to go, comment.
    #[serde(flatten)]
    pub flow: Flow,
}

/// A Choice state.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Choice {
    /// Rules, tried in order.
    pub choices: Vec<ChoiceRule>,
    /// Where to go when no rule matches.
    pub default: Option<String>,
    /// Input path.
    pub input_path: Option<String>,
    /// Output path.
    pub output_path: Option<String>,
    /// Free text.
    pub comment: Option<String>,
}

/// One rule of a Choice state: a variable and exactly one comparison.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ChoiceRule {
    /// The JSONPath compared.
    pub variable: String,
    /// Where to go when the rule matches.
    pub next: String,
    /// String equality.
    pub string_equals: Option<String>,
    /// Boolean equality.
    pub boolean_equals: Option<bool>,
    /// Whether the variable's path exists.
    pub is_present: Option<bool>,
    /// Timestamp comparison against another path.
    pub timestamp_greater_than_equals_path: Option<String>,
}

/// A Wait state.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Wait {
    /// Fixed seconds.
    pub seconds: Option<u64>,
    /// Seconds from the input.
    pub seconds_path: Option<String>,
    /// Input path.
    pub input_path: Option<String>,
    /// Output path.
    pub output_path: Option<String>,
    /// Next or End.
    #[serde(flatten)]
    pub transition: Transition,
    /// Free text.
    pub comment: Option<String>,
}

/// A Pass state.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Pass {
    /// Template for the result.
    pub parameters: Option<Value>,
    /// A fixed result.
    pub result: Option<Value>,
    /// Paths, where to go, comment.
    #[serde(flatten)]
    pub flow: Flow,
}

/// A Succeed state.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Succeed {
    /// Free text.
    pub comment: Option<String>,
}

/// A Fail state.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Fail {
    /// Fixed error name.
    pub error: Option<String>,
    /// Fixed cause.
    pub cause: Option<String>,
    /// Error name from the input.
    pub error_path: Option<String>,
    /// Cause from the input.
    pub cause_path: Option<String>,
    /// Free text.
    pub comment: Option<String>,
}

/// A Map state in inline mode.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MapState {
    /// The array to iterate.
    pub items_path: Option<String>,
    /// Template for each item (may use `$$.Map.Item.Value` / `Index`).
    pub item_selector: Option<Value>,
    /// The per-item state machine.
    pub item_processor: Value,
    /// Maximum parallel iterations (the local runner runs them one after another).
    pub max_concurrency: Option<u64>,
    /// Retriers.
    #[serde(default)]
    pub retry: Vec<Retrier>,
    /// Catchers.
    #[serde(default)]
    pub catch: Vec<Catcher>,
    /// Paths, where to go, comment.
    #[serde(flatten)]
    pub flow: Flow,
}

/// Why a definition did not load.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LoadError {
    /// Not JSON, or not an object with `StartAt` and `States`.
    #[error("definition: {0}")]
    Shape(String),
    /// A state uses something outside the supported subset.
    #[error("state {state:?}: {message}")]
    Unsupported {
        /// The state.
        state: String,
        /// What is unsupported (serde names the field).
        message: String,
    },
}

const TOP_LEVEL_FIELDS: &[&str] = &[
    "Comment",
    "StartAt",
    "States",
    "TimeoutSeconds",
    "QueryLanguage",
    "Version",
];

impl Definition {
    /// Parses a definition's JSON text, rejecting anything outside the subset.
    pub fn parse(text: &str) -> Result<Definition, LoadError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| LoadError::Shape(e.to_string()))?;
        Definition::from_value(&value)
    }

    /// Parses an already-decoded definition (also used for Map item processors).
    pub fn from_value(value: &Value) -> Result<Definition, LoadError> {
        let object = value
            .as_object()
            .ok_or_else(|| LoadError::Shape("not a JSON object".into()))?;
        for key in object.keys() {
            if !TOP_LEVEL_FIELDS.contains(&key.as_str()) && key != "ProcessorConfig" {
                return Err(LoadError::Shape(format!(
                    "unsupported top-level field {key:?}"
                )));
            }
        }
        if let Some(language) = object.get("QueryLanguage")
            && language != "JSONPath"
        {
            return Err(LoadError::Shape(format!(
                "QueryLanguage {language} is not supported (JSONPath only)"
            )));
        }
        if let Some(mode) = object.get("ProcessorConfig").and_then(|c| c.get("Mode"))
            && mode != "INLINE"
        {
            return Err(LoadError::Shape(format!(
                "Map processor mode {mode} is not supported (INLINE only)"
            )));
        }
        let start_at = object
            .get("StartAt")
            .and_then(Value::as_str)
            .ok_or_else(|| LoadError::Shape("StartAt is missing".into()))?
            .to_owned();
        let timeout_seconds = object.get("TimeoutSeconds").and_then(Value::as_u64);
        let raw_states = object
            .get("States")
            .and_then(Value::as_object)
            .ok_or_else(|| LoadError::Shape("States is missing".into()))?;
        let mut states = BTreeMap::new();
        for (name, raw) in raw_states {
            let state: State =
                serde_json::from_value(raw.clone()).map_err(|e| LoadError::Unsupported {
                    state: name.clone(),
                    message: e.to_string(),
                })?;
            check_state(name, &state, raw)?;
            states.insert(name.clone(), state);
        }
        Ok(Definition {
            start_at,
            timeout_seconds,
            states,
        })
    }
}

/// Checks what serde's flattening cannot: unknown fields next to flattened ones, and Choice
/// rules with exactly one comparison.
fn check_state(name: &str, state: &State, raw: &Value) -> Result<(), LoadError> {
    let unsupported = |message: String| LoadError::Unsupported {
        state: name.to_owned(),
        message,
    };
    let (own, flow) = allowed_fields(state);
    let allowed: Vec<&str> = own
        .iter()
        .chain(if flow { FLOW_FIELDS } else { &[] })
        .copied()
        .collect();
    if !allowed.is_empty() {
        for key in raw.as_object().into_iter().flat_map(|o| o.keys()) {
            if !allowed.contains(&key.as_str()) {
                return Err(unsupported(format!("unsupported field {key:?}")));
            }
        }
    }
    if let State::Choice(choice) = state {
        for (i, rule) in choice.choices.iter().enumerate() {
            let comparisons = [
                rule.string_equals.is_some(),
                rule.boolean_equals.is_some(),
                rule.is_present.is_some(),
                rule.timestamp_greater_than_equals_path.is_some(),
            ]
            .iter()
            .filter(|c| **c)
            .count();
            if comparisons != 1 {
                return Err(unsupported(format!(
                    "Choices[{i}] must have exactly one supported comparison"
                )));
            }
        }
    }
    if let State::Wait(wait) = state
        && wait.seconds.is_some() == wait.seconds_path.is_some()
    {
        return Err(unsupported(
            "Wait needs exactly one of Seconds or SecondsPath".into(),
        ));
    }
    if let State::Map(map) = state {
        Definition::from_value(&map.item_processor)
            .map_err(|e| unsupported(format!("ItemProcessor: {e}")))?;
    }
    Ok(())
}

/// The fields a state of this type may carry besides its flow fields, and whether it takes
/// the flow fields (`InputPath`, `Next`, …) at all; `&[]` when every field is checked by serde.
fn allowed_fields(state: &State) -> (&'static [&'static str], bool) {
    match state {
        State::Task(_) => (
            &[
                "Type",
                "Resource",
                "Parameters",
                "ResultSelector",
                "TimeoutSecondsPath",
                "TimeoutSeconds",
                "Retry",
                "Catch",
            ],
            true,
        ),
        State::Pass(_) => (&["Type", "Parameters", "Result"], true),
        State::Map(_) => (
            &[
                "Type",
                "ItemsPath",
                "ItemSelector",
                "ItemProcessor",
                "MaxConcurrency",
                "Retry",
                "Catch",
            ],
            true,
        ),
        State::Wait(_) => (
            &[
                "Type",
                "Seconds",
                "SecondsPath",
                "InputPath",
                "OutputPath",
                "Next",
                "End",
                "Comment",
            ],
            false,
        ),
        _ => (&[], false),
    }
}
