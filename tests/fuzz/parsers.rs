//! The parsers: ECR events, service configs (as stored JSON and as TOML files), signed links.

use bluegreen::config::ServiceConfig;
use bluegreen::event::{self, Intake};
use bluegreen::links::{self, LinkClaims, SigningKey};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::{Verdict, acted_on, campaign, hostile_string, stores_refused};

/// Any JSON value, strings hostile, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        hostile_string(40).prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(hostile_string(12), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A field's value: kept as in a genuine push (`None`), or replaced.
fn replacement() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        24 => Just(None),
        2 => hostile_string(80).prop_map(|s| Some(Value::String(s))),
        1 => any_json().prop_map(Some),
    ]
}

const EVENT_FIELDS: [&str; 11] = [
    "/id",
    "/source",
    "/detail-type",
    "/account",
    "/region",
    "/time",
    "/detail/action-type",
    "/detail/result",
    "/detail/repository-name",
    "/detail/image-digest",
    "/detail/image-tag",
];

/// A genuine tagged push with some fields replaced, or any JSON at all.
fn event() -> impl Strategy<Value = Value> {
    let genuine: Value = serde_json::from_str(include_str!("../../events/ecr-push-tagged.json"))
        .expect("the sample event is JSON");
    prop_oneof![
        5 => prop::collection::vec(replacement(), EVENT_FIELDS.len()).prop_map(move |values| {
            let mut event = genuine.clone();
            for (field, value) in EVENT_FIELDS.iter().zip(values) {
                if let (Some(value), Some(slot)) = (value, event.pointer_mut(field)) {
                    *slot = value;
                }
            }
            event
        }),
        1 => any_json(),
    ]
}

#[test]
fn the_event_parser_returns_a_clean_push_or_a_typed_answer() {
    campaign("event parser", event(), |event| {
        match event::parse(&event) {
            Ok(Intake::Push(push)) => {
                let stored = serde_json::to_value(&push).unwrap();
                prop_assert!(!stores_refused(&stored), "{push:?}");
                prop_assert_eq!(acted_on(&stored.to_string()), None);
                Ok(Verdict::Accepted)
            }
            Ok(Intake::Ignored(reason)) => {
                prop_assert_eq!(acted_on(&reason), None, "{}", reason);
                Ok(Verdict::Rejected)
            }
            Err(e) => {
                prop_assert_eq!(e.name(), "EventMalformed");
                prop_assert_eq!(acted_on(&e.to_string()), None, "{}", e);
                Ok(Verdict::Rejected)
            }
        }
    });
}

/// The documented example config in its stored (JSON) form.
fn example_config() -> Value {
    let config = ServiceConfig::from_toml(include_str!("../../docs/example-service.toml"))
        .expect("the example config parses");
    serde_json::to_value(&config).unwrap()
}

/// Every string leaf of `value`, as JSON pointers.
fn string_pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::String(_) => out.push(at),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                string_pointers(item, format!("{at}/{i}"), out);
            }
        }
        Value::Object(fields) => {
            for (key, item) in fields {
                string_pointers(item, format!("{at}/{key}"), out);
            }
        }
        _ => {}
    }
}

/// The example config with up to four of its strings replaced by hostile ones.
fn mutated_config() -> impl Strategy<Value = Value> {
    let example = example_config();
    let mut pointers = Vec::new();
    string_pointers(&example, String::new(), &mut pointers);
    prop::collection::vec((prop::sample::select(pointers), hostile_string(60)), 1..5).prop_map(
        move |changes| {
            let mut config = example.clone();
            for (pointer, value) in changes {
                *config
                    .pointer_mut(&pointer)
                    .expect("a pointer of the example") = Value::String(value);
            }
            config
        },
    )
}

#[test]
fn a_config_with_hostile_strings_is_refused_naming_fields_or_stores_none() {
    campaign("config validator", mutated_config(), |doc| {
        let config = match ServiceConfig::from_json(&doc.to_string()) {
            Ok(config) => config,
            Err(e) => {
                prop_assert_eq!(e.name(), "ConfigInvalid");
                return Ok(Verdict::Rejected);
            }
        };
        let problems = config.problems();
        for problem in &problems {
            prop_assert_eq!(
                acted_on(problem),
                None,
                "a problem quotes raw text: {}",
                problem
            );
        }
        if problems.is_empty() {
            let stored: Value = serde_json::from_str(&config.to_json()).unwrap();
            prop_assert!(!stores_refused(&stored), "accepted: {stored}");
            Ok(Verdict::Accepted)
        } else {
            Ok(Verdict::Rejected)
        }
    });
}

#[test]
fn config_files_of_any_text_parse_or_fail_typed() {
    let example = include_str!("../../docs/example-service.toml");
    let text = prop_oneof![
        hostile_string(400),
        (0..example.len(), hostile_string(20)).prop_map(move |(at, insert)| {
            let at = (0..=at)
                .rev()
                .find(|i| example.is_char_boundary(*i))
                .unwrap_or(0);
            format!("{}{insert}{}", &example[..at], &example[at..])
        }),
    ];
    campaign(
        "config file parser",
        text,
        |text| match ServiceConfig::from_toml(&text) {
            Ok(config) => {
                if config.problems().is_empty() {
                    let stored: Value = serde_json::from_str(&config.to_json()).unwrap();
                    prop_assert!(!stores_refused(&stored));
                }
                Ok(Verdict::Accepted)
            }
            Err(e) => {
                prop_assert_eq!(e.name(), "ConfigInvalid");
                Ok(Verdict::Rejected)
            }
        },
    );
}

#[test]
fn the_link_verifier_accepts_only_the_genuine_link() {
    let key = SigningKey::new(vec![7u8; 32]).unwrap();
    let now = chrono::Utc::now();
    let claims = LinkClaims::new(
        "shop-20261121T100000-8da979",
        "alice@example.com",
        now + chrono::Duration::hours(1),
    );
    let genuine = links::sign(&key, &claims);
    let token = prop_oneof![
        hostile_string(300),
        // One character of the genuine link changed, or cut short, or extended.
        (0..genuine.len(), any::<char>()).prop_map({
            let genuine = genuine.clone();
            move |(at, c)| {
                let mut chars: Vec<char> = genuine.chars().collect();
                chars[at] = c;
                chars.into_iter().collect::<String>()
            }
        }),
        (0..genuine.len()).prop_map({
            let genuine = genuine.clone();
            move |at| genuine[..at].to_owned()
        }),
        hostile_string(20).prop_map({
            let genuine = genuine.clone();
            move |tail| format!("{genuine}{tail}")
        }),
    ];
    campaign("link verifier", token, |token| {
        let scoped = links::verify(&key, &token, &claims.deployment_id, now);
        let unscoped = links::verify_unscoped(&key, &token, now);
        prop_assert_eq!(scoped.is_ok(), unscoped.is_ok());
        match scoped {
            Ok(verified) => {
                // Whitespace around a link (a mail client's line end) is not part of it.
                prop_assert_eq!(token.trim(), genuine.as_str(), "a changed link verified");
                prop_assert_eq!(verified, claims.clone());
                Ok(Verdict::Accepted)
            }
            Err(e) => {
                prop_assert_eq!(acted_on(&e.to_string()), None, "{}", e);
                Ok(Verdict::Rejected)
            }
        }
    });
}
