//! Checks a loaded definition: ASL structure (every `Next` exists, every state is reachable, an
//! end is reachable) and bluegreen's own rules (every step Task catches into Abort, Rollback or
//! a Fail state; nothing after the switch catches into Abort; every loop has a deadline exit;
//! every resource maps to a known step; every path parses).

use std::collections::{BTreeMap, BTreeSet};

use bluegreen::steps::registry::{self, ABORT, RECONCILE, ROLLBACK, SWITCH};

use crate::definition::{Definition, State};
use crate::path;

/// The service integrations the definitions may use.
pub const WAIT_FOR_TOKEN: &str = "arn:aws:states:::lambda:invoke.waitForTaskToken";
/// Starting another execution (the deployment machine, or the next queued deployment).
pub const START_EXECUTION: &str = "arn:aws:states:::states:startExecution";

/// The step a Task state runs (its registry name), if it runs one (also for
/// waitForTaskToken tasks): resources are `${…FunctionArn}` placeholders of
/// [`bluegreen::steps::registry::STEPS`].
pub fn step_of(task: &crate::definition::Task) -> Option<&'static str> {
    let resource = if task.resource == WAIT_FOR_TOKEN {
        task.parameters
            .as_ref()
            .and_then(|p| p.get("FunctionName"))
            .and_then(|f| f.as_str())
            .unwrap_or_default()
    } else {
        task.resource.as_str()
    };
    registry::by_placeholder(resource).map(|s| s.name)
}

/// Every problem found, as `state: message`; empty when the definition is sound.
pub fn validate(definition: &Definition) -> Vec<String> {
    let mut problems = Vec::new();
    check_machine(definition, "", &mut problems);
    problems
}

fn successors(state: &State) -> Vec<String> {
    let mut next: Vec<String> = Vec::new();
    match state {
        State::Task(t) => {
            next.extend(t.flow.transition.next.clone());
            next.extend(t.catch.iter().map(|c| c.next.clone()));
        }
        State::Map(m) => {
            next.extend(m.flow.transition.next.clone());
            next.extend(m.catch.iter().map(|c| c.next.clone()));
        }
        State::Pass(p) => next.extend(p.flow.transition.next.clone()),
        State::Wait(w) => next.extend(w.transition.next.clone()),
        State::Choice(c) => {
            next.extend(c.choices.iter().map(|r| r.next.clone()));
            next.extend(c.default.clone());
        }
        State::Succeed(_) | State::Fail(_) => {}
    }
    next
}

fn is_terminal(state: &State) -> bool {
    match state {
        State::Succeed(_) | State::Fail(_) => true,
        State::Task(t) => t.flow.transition.end,
        State::Map(m) => m.flow.transition.end,
        State::Pass(p) => p.flow.transition.end,
        State::Wait(w) => w.transition.end,
        State::Choice(_) => false,
    }
}

fn reachable(definition: &Definition, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from.to_owned()];
    while let Some(name) = stack.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(state) = definition.states.get(&name) {
            stack.extend(successors(state));
        }
    }
    seen
}

fn check_machine(definition: &Definition, scope: &str, problems: &mut Vec<String>) {
    let mut problem =
        |state: &str, message: String| problems.push(format!("{scope}{state}: {message}"));
    if !definition.states.contains_key(&definition.start_at) {
        problem(
            "StartAt",
            format!("{:?} does not exist", definition.start_at),
        );
        return;
    }
    for (name, state) in &definition.states {
        for next in successors(state) {
            if !definition.states.contains_key(&next) {
                problem(name, format!("Next {next:?} does not exist"));
            }
        }
        let (transition_next, end) = match state {
            State::Task(t) => (&t.flow.transition.next, t.flow.transition.end),
            State::Map(m) => (&m.flow.transition.next, m.flow.transition.end),
            State::Pass(p) => (&p.flow.transition.next, p.flow.transition.end),
            State::Wait(w) => (&w.transition.next, w.transition.end),
            _ => (&None, true),
        };
        if transition_next.is_some() == end {
            problem(name, "needs exactly one of Next or End".into());
        }
        for p in paths_of(state) {
            if let Some(rest) = p.strip_prefix("States.") {
                problem(
                    name,
                    format!("intrinsic function States.{rest} is not supported"),
                );
            } else if let Err(e) = path::check(&p) {
                problem(name, e.0);
            }
        }
    }
    let from_start = reachable(definition, &definition.start_at);
    for name in definition.states.keys() {
        if !from_start.contains(name) {
            problem(name, "is unreachable".into());
        }
    }
    for name in &from_start {
        let can_end = reachable(definition, name)
            .iter()
            .any(|n| definition.states.get(n).is_some_and(is_terminal));
        if !can_end {
            problem(name, "no terminal state is reachable from here".into());
        }
    }
    check_steps(definition, &mut problem);
    check_loops(definition, &mut problem);
    let mut nested = Vec::new();
    for (name, state) in &definition.states {
        if let State::Map(map) = state {
            match Definition::from_value(&map.item_processor) {
                Ok(inner) => check_machine(&inner, &format!("{scope}{name}/"), &mut nested),
                Err(e) => problem(name, e.to_string()),
            }
        }
    }
    problems.extend(nested);
}

fn paths_of(state: &State) -> Vec<String> {
    let mut paths: Vec<String> = Vec::new();
    match state {
        State::Task(t) => {
            paths.extend(t.flow.io.input_path.clone());
            paths.extend(t.flow.io.output_path.clone());
            paths.extend(t.timeout_seconds_path.clone());
            if let Some(Some(p)) = &t.flow.io.result_path {
                paths.push(p.clone());
            }
            for template in [&t.parameters, &t.result_selector].into_iter().flatten() {
                paths.extend(path::template_paths(template));
            }
        }
        State::Pass(p) => {
            paths.extend(p.flow.io.input_path.clone());
            paths.extend(p.flow.io.output_path.clone());
            if let Some(t) = &p.parameters {
                paths.extend(path::template_paths(t));
            }
        }
        State::Map(m) => {
            paths.extend(m.items_path.clone());
            if let Some(t) = &m.item_selector {
                paths.extend(path::template_paths(t));
            }
        }
        State::Wait(w) => paths.extend(w.seconds_path.clone()),
        State::Choice(c) => {
            for rule in &c.choices {
                paths.push(rule.variable.clone());
                paths.extend(rule.timestamp_greater_than_equals_path.clone());
            }
        }
        State::Fail(f) => {
            paths.extend(f.error_path.clone());
            paths.extend(f.cause_path.clone());
        }
        State::Succeed(_) => {}
    }
    paths
}

/// Every resource is known; every Task (steps, endings, starts of other executions) catches
/// `States.ALL` into a path that reaches Abort, Rollback or a Fail state — nothing can fail
/// out of a definition without passing a handler; nothing reachable from the switch catches
/// into Abort (after the switch, failures must roll back).
fn check_steps(definition: &Definition, problem: &mut dyn FnMut(&str, String)) {
    // A step's failure must end the deployment as a failure; a hand-over start or the
    // reconciler may end in Succeed (the deployment itself has ended by then).
    let reaches_handler = |from: &str, lenient: bool| {
        reachable(definition, from).iter().any(|n| {
            matches!(definition.states.get(n), Some(State::Fail(_)))
                || (lenient && matches!(definition.states.get(n), Some(State::Succeed(_))))
                || matches!(definition.states.get(n), Some(State::Task(t)) if step_of(t).is_some_and(|s| s == ABORT.name || s == ROLLBACK.name))
        })
    };
    let mut switch_states = Vec::new();
    for (name, state) in &definition.states {
        let State::Task(task) = state else { continue };
        let step = step_of(task);
        if step.is_none() && task.resource != START_EXECUTION {
            problem(
                name,
                format!("resource {:?} is not a known bluegreen step", task.resource),
            );
            continue;
        }
        if step == Some(SWITCH.name) {
            switch_states.push(name.clone());
        }
        let catch_all = task
            .catch
            .iter()
            .find(|c| c.error_equals.iter().any(|e| e == "States.ALL"));
        match catch_all {
            None => problem(name, "has no Catch for States.ALL".into()),
            Some(c) if !reaches_handler(&c.next, step.is_none_or(|s| s == RECONCILE.name)) => {
                problem(
                    name,
                    format!(
                        "Catch -> {:?} never reaches Abort, Rollback or an end state",
                        c.next
                    ),
                )
            }
            Some(_) => {}
        }
    }
    for switch in switch_states {
        for name in reachable(definition, &switch) {
            if let Some(State::Task(task)) = definition.states.get(&name) {
                for catcher in &task.catch {
                    let into_abort = reachable(definition, &catcher.next).iter().any(|n| {
                        matches!(definition.states.get(n), Some(State::Task(t)) if step_of(t) == Some(ABORT.name))
                    });
                    if into_abort {
                        problem(
                            &name,
                            "runs after the switch but catches into Abort (must roll back)".into(),
                        );
                    }
                }
            }
        }
    }
}

/// Every cycle must contain a Choice with a `TimestampGreaterThanEqualsPath` rule on
/// `$$.State.EnteredTime` whose target leaves the cycle: the deadline exit.
fn check_loops(definition: &Definition, problem: &mut dyn FnMut(&str, String)) {
    let names: Vec<&String> = definition.states.keys().collect();
    // For each state, everything reachable in one or more transitions.
    let reach: BTreeMap<&String, BTreeSet<String>> = names
        .iter()
        .map(|n| {
            let after: BTreeSet<String> = successors(&definition.states[*n])
                .iter()
                .flat_map(|s| reachable(definition, s))
                .collect();
            (*n, after)
        })
        .collect();
    let mut reported = BTreeSet::new();
    for name in &names {
        if !reach[name].contains(*name) {
            continue; // not on a cycle
        }
        let cycle: BTreeSet<&String> = names
            .iter()
            .copied()
            .filter(|m| reach[name].contains(*m) && reach[*m].contains(*name))
            .collect();
        let key: Vec<&String> = cycle.iter().copied().collect();
        if !reported.insert(key) {
            continue;
        }
        let has_exit = cycle.iter().any(|m| match &definition.states[*m] {
            State::Choice(choice) => choice.choices.iter().any(|r| {
                r.variable == "$$.State.EnteredTime"
                    && r.timestamp_greater_than_equals_path.is_some()
                    && !cycle.contains(&r.next)
            }),
            _ => false,
        });
        if !has_exit {
            problem(name, "is on a loop without a deadline exit".into());
        }
    }
}
