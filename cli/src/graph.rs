//! A Mermaid flowchart of a definition: one node per state, solid edges for `Next`, `Choice`
//! rules and defaults, dotted edges for `Catch`; a Map's item processor is drawn inside it as a
//! subgraph.

use bluegreen_statemachine::Definition;
use bluegreen_statemachine::definition::{ChoiceRule, State};

fn id(name: &str) -> String {
    name.chars().filter(|c| c.is_ascii_alphanumeric()).collect()
}

/// Renders `definition` as a Mermaid `flowchart TD`.
pub fn mermaid(definition: &Definition) -> String {
    let mut out = String::from("flowchart TD\n");
    out.push_str(&format!(
        "    start(( )) --> {}\n",
        id(&definition.start_at)
    ));
    states(definition, "", &mut out);
    out
}

/// The states of `definition`, their node ids prefixed with `prefix` (a Map's item processor
/// is drawn with its Map's id as the prefix, so its names cannot collide with the outer ones).
fn states(definition: &Definition, prefix: &str, out: &mut String) {
    let id = |name: &str| format!("{prefix}{}", id(name));
    for (name, state) in &definition.states {
        let node = id(name);
        let shape = match state {
            State::Choice(_) => format!("{node}{{\"{name}\"}}"),
            State::Succeed(_) | State::Fail(_) => format!("{node}([\"{name}\"])"),
            State::Wait(_) => format!("{node}[/\"{name}\"/]"),
            _ => format!("{node}[\"{name}\"]"),
        };
        out.push_str(&format!("    {shape}\n"));
        let mut edge = |to: &str, label: Option<String>, dotted: bool| {
            let arrow = match (dotted, label) {
                (true, Some(l)) => format!("-. \"{l}\" .->"),
                (true, None) => "-.->".to_owned(),
                (false, Some(l)) => format!("-- \"{l}\" -->"),
                (false, None) => "-->".to_owned(),
            };
            out.push_str(&format!("    {node} {arrow} {}\n", id(to)));
        };
        match state {
            State::Task(t) => {
                if let Some(next) = &t.flow.transition.next {
                    edge(next, None, false);
                }
                for c in &t.catch {
                    edge(&c.next, Some(c.error_equals.join(", ")), true);
                }
            }
            State::Map(m) => {
                if let Some(next) = &m.flow.transition.next {
                    edge(next, None, false);
                }
                for c in &m.catch {
                    edge(&c.next, Some(c.error_equals.join(", ")), true);
                }
                if let Ok(processor) = Definition::from_value(&m.item_processor) {
                    item_processor(&node, name, &processor, out);
                }
            }
            State::Pass(p) => {
                if let Some(next) = &p.flow.transition.next {
                    edge(next, None, false);
                }
            }
            State::Wait(w) => {
                if let Some(next) = &w.transition.next {
                    edge(next, None, false);
                }
            }
            State::Choice(c) => {
                for rule in &c.choices {
                    edge(&rule.next, Some(condition(rule).replace('"', "'")), false);
                }
                if let Some(default) = &c.default {
                    edge(default, Some("otherwise".into()), false);
                }
            }
            State::Succeed(_) | State::Fail(_) => {}
        }
    }
}

/// A Map's item processor, drawn as a subgraph whose node ids start with the Map's.
fn item_processor(node: &str, name: &str, processor: &Definition, out: &mut String) {
    let inner = format!("{node}_");
    out.push_str(&format!(
        "    subgraph {inner}items [\"{name}: for each item\"]\n"
    ));
    out.push_str(&format!(
        "    {inner}start(( )) --> {inner}{}\n",
        id(&processor.start_at)
    ));
    states(processor, &inner, out);
    out.push_str("    end\n");
    out.push_str(&format!("    {node} -- \"each item\" --> {inner}items\n"));
}

/// What a Choice rule's edge says.
fn condition(rule: &ChoiceRule) -> String {
    if let Some(v) = &rule.string_equals {
        format!("{} = {v}", rule.variable)
    } else if let Some(v) = rule.boolean_equals {
        format!("{} = {v}", rule.variable)
    } else if rule.is_present.is_some() {
        format!("{} present", rule.variable)
    } else {
        "past deadline".to_owned()
    }
}
