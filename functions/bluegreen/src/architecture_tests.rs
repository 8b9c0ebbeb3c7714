//! The library's shape, held by tests: no import circles between modules (here and in the
//! console), steps never import each other, and each AWS client is called from its one adapter
//! module (DynamoDB from the record, lock and service-index modules, and the table definitions
//! that create them).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::steps::registry::STEPS;

fn source_files(dir: &Path, into: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("source directory") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            source_files(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push(path);
        }
    }
}

fn sources() -> Vec<(String, String)> {
    sources_of(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
}

/// Every `.rs` file under `root`, by its path from there, with its text.
fn sources_of(root: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    source_files(root, &mut files);
    files
        .into_iter()
        .map(|p| {
            let name = p
                .strip_prefix(root)
                .expect("under src")
                .to_string_lossy()
                .replace('\\', "/");
            (name, std::fs::read_to_string(&p).expect("readable source"))
        })
        .collect()
}

/// `text` without its test module (`#[cfg(test)] mod …`, at a file's end by convention):
/// a test's import is no dependency of the code. A `#[cfg(test)]` item elsewhere is kept.
fn without_tests(text: &str) -> &str {
    let mut from = 0;
    while let Some(at) = text[from..].find("#[cfg(test)]") {
        let at = from + at;
        if text[at + "#[cfg(test)]".len()..]
            .trim_start()
            .starts_with("mod ")
        {
            return &text[..at];
        }
        from = at + 1;
    }
    text
}

/// The first segment of each path in `rest`, the text after `crate::`: one for
/// `config::ServiceConfig`, one per part of a group `{config, record::{A, B}}` (nested groups
/// read to their matching brace).
fn first_segments(rest: &str) -> Vec<&str> {
    fn ident(s: &str) -> &str {
        let s = s.trim_start();
        let end = s
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(s.len());
        &s[..end]
    }
    let Some(group) = rest.strip_prefix('{') else {
        return vec![ident(rest)];
    };
    let (mut depth, mut start, mut parts) = (0usize, 0, Vec::new());
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                parts.push(ident(&group[start..i]));
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(ident(&group[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    parts
}

/// The crate's modules (a file under `src/`, or a folder's files together: `steps`, `ports`,
/// `aws`; `lib.rs` is the root) and, for each, the modules its code depends on. A module's
/// `crate::<module>` paths name modules; a `crate::<Item>` path names the module the root
/// re-exports it from (`pub use context::Context`), or the root itself when the root defines
/// it. The root's own paths into its modules (`api::routes()`) count too; its `mod` and
/// `pub use` lines do not (a root that only declares and re-exports is a face, not a module
/// in a circle). Comments and test modules are left out.
fn module_imports(sources: &[(String, String)]) -> BTreeMap<String, BTreeSet<String>> {
    const ROOT: &str = "lib";
    let module_of = |file: &str| {
        let first = file.split('/').next().unwrap_or(file);
        first.trim_end_matches(".rs").to_owned()
    };
    let code_of = |text: &str| -> String {
        without_tests(text)
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let modules: BTreeSet<String> = sources.iter().map(|(f, _)| module_of(f)).collect();
    let root = sources
        .iter()
        .find(|(f, _)| module_of(f) == ROOT)
        .map(|(_, t)| code_of(t))
        .unwrap_or_default();
    // The root's face: `pub use <module>::{A, B};` → A and B are that module's.
    let mut face: BTreeMap<&str, &str> = BTreeMap::new();
    for line in root.lines() {
        if let Some(path) = line.trim().strip_prefix("pub use ")
            && let Some((module, names)) = path.split_once("::")
        {
            for name in first_segments(names) {
                face.insert(name, module);
            }
            let name = names.trim_end_matches(';');
            if !name.starts_with('{') {
                face.insert(name.rsplit("::").next().unwrap_or(name), module);
            }
        }
    }
    let mut imports: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, text) in sources {
        let from = module_of(file);
        let code = code_of(text);
        let names = imports.entry(from.clone()).or_default();
        let mut add = |name: &str| {
            let to = if modules.contains(name) {
                name
            } else if let Some(module) = face.get(name) {
                module
            } else if name.chars().next().is_some_and(char::is_alphabetic) {
                ROOT
            } else {
                return;
            };
            if to != from {
                names.insert(to.to_owned());
            }
        };
        for (i, _) in code.match_indices("crate::") {
            for name in first_segments(&code[i + "crate::".len()..]) {
                add(name);
            }
        }
        if from == ROOT {
            for line in code.lines() {
                let line = line.trim();
                if line.starts_with("pub use ")
                    || line.starts_with("mod ")
                    || line.starts_with("pub mod ")
                {
                    continue;
                }
                for module in &modules {
                    let found = line.match_indices(&format!("{module}::")).any(|(i, _)| {
                        !line[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':')
                    });
                    if found {
                        add(module);
                    }
                }
            }
        }
    }
    imports
}

/// A circle of modules that import each other, if there is one (a depth-first search).
fn circle(imports: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        module: &str,
        imports: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|m| m == module) {
            let mut circle = path[at..].to_vec();
            circle.push(module.to_owned());
            return Some(circle);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_owned());
        for next in imports.get(module).into_iter().flatten() {
            if let Some(circle) = visit(next, imports, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(module.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    imports
        .keys()
        .find_map(|m| visit(m, imports, &mut Vec::new(), &mut done))
}

/// Modules form layers: a module never depends, through any chain, on a module that depends
/// on it. (Config types below their checks, the record below the database plan, the step table
/// and inputs below the endings and the fence, the signing key below the context.)
#[test]
fn no_module_imports_a_module_that_imports_it() {
    // (crate, imports at least): the library's modules import each other hundreds of times,
    // the console's local server imports its front door, adopt and doctor the direct calls.
    for (crate_dir, at_least) in [("", 200), ("../console", 1), ("../../cli/ops", 1)] {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(crate_dir)
            .join("src");
        let imports = module_imports(&sources_of(&root));
        // Not vacuous: the graph is read.
        let read = imports.values().map(BTreeSet::len).sum::<usize>();
        assert!(read >= at_least, "{read} imports read: {imports:?}");
        if let Some(circle) = circle(&imports) {
            panic!("{}: import circle {}", root.display(), circle.join(" -> "));
        }
    }
}

#[test]
fn a_circle_is_found_where_two_modules_import_each_other() {
    let sources = [
        ("a.rs", "use crate::b::X;\n// crate::c in a comment is no import\n"),
        ("b/mod.rs", "use crate::{c::{P, Q}, d::Y};\n"),
        ("c.rs", "fn f() { crate::a::g() }\n"),
        (
            "d.rs",
            "#[cfg(test)]\nfn helper() {}\nuse crate::Made;\n#[cfg(test)]\nmod tests { use crate::a; }\n",
        ),
        ("e.rs", "use crate::Face;\n"),
        ("lib.rs", "pub mod a;\npub use e::Face;\nstruct Made;\n"),
    ]
    .map(|(f, t)| (f.to_owned(), t.to_owned()));
    let imports = module_imports(&sources);
    // Both parts of a group, the nested one read to its matching brace.
    assert_eq!(
        imports["b"],
        BTreeSet::from(["c".to_owned(), "d".to_owned()])
    );
    // A root item is the root's; a re-export is its module's; only the test module is left out.
    assert_eq!(imports["d"], BTreeSet::from(["lib".to_owned()]));
    assert!(
        imports["e"].is_empty(),
        "e names its own item through the root's face"
    );
    assert!(
        imports["lib"].is_empty(),
        "mod and pub use lines are no dependency"
    );
    assert_eq!(circle(&imports).unwrap(), ["a", "b", "c", "a"]);
    let mut broken = imports.clone();
    broken.get_mut("c").unwrap().clear();
    assert_eq!(circle(&broken), None);
    // The root's own path into a module counts: lib -> a -> lib once `a` names a root item.
    let mut rooted = sources.to_vec();
    rooted[2].1 = "fn f() {}\n".to_owned();
    assert_eq!(circle(&module_imports(&rooted)), None);
    rooted[5].1.push_str("fn g() { a::f() }\n");
    rooted[0]
        .1
        .push_str("fn h() -> crate::Made { crate::Made }\n");
    let found = circle(&module_imports(&rooted)).expect("a circle through the root");
    assert!(found.contains(&"lib".to_owned()), "{found:?}");
}

/// The functions in `text` longer than `limit` lines, as `(name, lines)`: a function runs from
/// its `fn` line to the first line that closes it at its own indentation. The test module at
/// the end is left out.
fn long_functions(text: &str, limit: usize) -> Vec<(String, usize)> {
    let lines: Vec<&str> = without_tests(text).lines().collect();
    let mut long = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let signature = ["pub(crate) ", "pub(super) ", "pub ", "async ", "const "]
            .iter()
            .fold(trimmed, |rest, word| {
                rest.strip_prefix(word).unwrap_or(rest)
            });
        let Some(name) = signature.strip_prefix("fn ") else {
            continue;
        };
        // A trait's declaration has no body: its signature, on one line or several, ends with
        // `;` before any `{`.
        let signature_end = lines[i..]
            .iter()
            .map(|l| l.trim_end())
            .find(|l| l.ends_with(';') || l.ends_with('{'));
        if signature_end.is_some_and(|l| l.ends_with(';')) {
            continue;
        }
        let indent = &line[..line.len() - trimmed.len()];
        let closing = format!("{indent}}}");
        if let Some(end) = lines[i..].iter().position(|l| l.trim_end() == closing) {
            let name = name.split(['(', '<']).next().unwrap_or(name).to_owned();
            if end + 1 > limit {
                long.push((name, end + 1));
            }
        }
    }
    long
}

/// Functions stay short enough to read at once (80 lines), in every crate but the tests':
/// a longer one is split into named steps.
#[test]
fn no_function_is_longer_than_80_lines() {
    let mut long = Vec::new();
    for dir in [
        "src",
        "../console/src",
        "../step/src",
        "../../cli/src",
        "../../cli/ops/src",
        "../../statemachine/src",
    ] {
        for (file, text) in sources_of(&Path::new(env!("CARGO_MANIFEST_DIR")).join(dir)) {
            for (name, lines) in long_functions(&text, 80) {
                long.push(format!("{dir}/{file}: {name} ({lines} lines)"));
            }
        }
    }
    assert!(long.is_empty(), "functions over 80 lines: {long:#?}");
}

#[test]
fn a_long_function_is_measured_from_its_fn_line_to_its_closing_brace() {
    let body = "    let x = 1;\n".repeat(5);
    let text = format!(
        "pub async fn short() {{\n{body}}}\n\nimpl A {{\n    fn long(&self) {{\n{body}{body}    }}\n}}\n\
         trait T {{\n    fn declared(&self);\n    fn declared_on_lines(\n        &self,\n    ) -> u8;\n}}\n\
         fn after() {{\n{body}}}\n#[cfg(test)]\nmod tests {{\n    fn in_tests() {{\n{body}{body}    }}\n}}\n"
    );
    assert_eq!(long_functions(&text, 7), [("long".to_owned(), 12)]);
    // A declaration over several lines is no function: nothing is measured from it.
    assert_eq!(
        long_functions(&text, 6),
        [
            ("short".to_owned(), 7),
            ("long".to_owned(), 12),
            ("after".to_owned(), 7)
        ]
    );
}

#[test]
fn no_step_module_imports_another_step() {
    // The registry (steps/mod.rs, steps/registry.rs) names every step: it is not a step.
    let registry = ["steps/mod.rs", "steps/registry.rs"];
    let steps = sources()
        .into_iter()
        .filter(|(f, _)| f.starts_with("steps/") && !registry.contains(&f.as_str()));
    for (file, text) in steps {
        for step in STEPS {
            for import in [
                format!("super::{}", step.name),
                format!("steps::{}", step.name),
            ] {
                let found = text.match_indices(&import).any(|(i, _)| {
                    !text[i + import.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
                });
                assert!(!found, "{file} imports the {} step ({import})", step.name);
            }
        }
    }
}

/// The AWS SDK is reached only by the adapters (`aws/`, the ports over it), the context that
/// builds them, and the set-up calls the CLI makes through `Context::sdk` (the link key's
/// secret, the tables, approvers' subscriptions): no step calls AWS but through a port, so the
/// in-memory world and the simulator see every call a step makes.
#[test]
fn the_sdk_is_reached_through_the_ports_only() {
    let setup = ["links.rs", "notify.rs", "tables.rs"];
    let mut found = BTreeSet::new();
    for (file, text) in sources() {
        if file.starts_with("aws/") || file == "context.rs" || file == "architecture_tests.rs" {
            continue;
        }
        let code = without_tests(&text);
        let compact: String = code.split_whitespace().collect();
        if compact.contains("sdk()") || code.contains("aws_sdk_") {
            assert!(
                setup.contains(&file.as_str()),
                "{file} reaches the AWS SDK itself; only the adapters in aws/ may (and {setup:?} \
                 for set-up)"
            );
            found.insert(file);
        }
    }
    // Not vacuous: the set-up calls are found where they are.
    assert_eq!(found, setup.map(str::to_owned).into_iter().collect());
}

/// The traffic mode (listener or DNS) is chosen in one place ([`crate::traffic_mode::of`]):
/// outside the config's types and checks, only the listener-only features (the maintenance
/// page, the test rule, the other routes) read the listener's fields, and nothing but the mode
/// names DNS mode — a behaviour that differs between listener and DNS mode is a method of
/// `TrafficMode`. (Within listener mode, the config's own accessors answer what differs on an
/// NLB — `on_nlb`, `settle_seconds` — and how pre-prod is reached — `test_route`.) A text
/// search: it holds the spelled-out variants, not a glob import.
#[test]
fn the_traffic_mode_is_matched_in_one_place() {
    let config = ["config.rs", "config_check.rs", "traffic_mode.rs"];
    let listener_only = ["maintenance.rs", "routes.rs", "test_rule.rs"];
    let mut naming = BTreeSet::new();
    for (file, text) in sources() {
        if file == "architecture_tests.rs" {
            continue;
        }
        let code = without_tests(&text);
        let dns = code.contains("Traffic::Dns");
        let listener = code.contains("Traffic::Listener");
        if dns || listener {
            naming.insert(file.clone());
        }
        assert!(
            !dns || config.contains(&file.as_str()),
            "{file} matches on DNS mode; ask traffic_mode::of(config) instead"
        );
        assert!(
            !listener || config.contains(&file.as_str()) || listener_only.contains(&file.as_str()),
            "{file} matches on listener mode; ask traffic_mode::of(config) instead"
        );
    }
    // Not vacuous: the mode's own module and the config are found naming the modes.
    assert!(
        naming.contains("traffic_mode.rs") && naming.contains("config.rs"),
        "{naming:?}"
    );
}

/// A step module without a registry row is never compiled, dispatched, generated or
/// deployed: every file of steps/ (but the registry and mod.rs) is a registered step.
#[test]
fn every_step_module_is_registered() {
    let modules: Vec<String> = sources()
        .into_iter()
        .filter_map(|(f, _)| {
            f.strip_prefix("steps/")?
                .strip_suffix(".rs")
                .map(str::to_owned)
        })
        .filter(|m| m != "mod" && m != "registry")
        .collect();
    // Not vacuous: the steps are found (a changed layout of steps/ must not pass silently).
    assert!(modules.len() >= 15, "{modules:?}");
    for module in modules {
        assert!(
            crate::steps::registry::by_name(&module).is_some(),
            "steps/{module}.rs has no row in the step registry (steps/mod.rs)"
        );
    }
}

/// Nothing in a request path scans a table (intake, steps, the console, the CLI's reads): the
/// one scan is the reconciler's sweep over the locks table, one small item per service, on a
/// schedule. (The DynamoDB adapter's `.scan()` implements the port's scan; the port's one
/// caller is what is checked.)
#[test]
fn the_only_scan_is_the_sweep_over_the_locks_table() {
    let mut scans = Vec::new();
    for (file, text) in sources() {
        if file == "architecture_tests.rs" || file.starts_with("aws/") || file.starts_with("ports/")
        {
            continue;
        }
        let compact: String = text.split_whitespace().collect();
        for _ in compact.matches(".scan(") {
            scans.push(file.clone());
        }
    }
    assert_eq!(scans, ["lock.rs"], "scans outside the sweep");
    let adapters: Vec<String> = sources()
        .into_iter()
        .filter(|(f, text)| f.starts_with("aws/") && text.contains(".scan()"))
        .map(|(f, _)| f)
        .collect();
    assert_eq!(adapters, ["aws/tables.rs"], "only the table port scans");
    let lock = sources()
        .into_iter()
        .find(|(f, _)| f == "lock.rs")
        .expect("lock.rs")
        .1;
    let held = lock.find("pub async fn held(").expect("the sweep's held()");
    let scan = lock.find(".scan(").expect("its scan");
    let next_fn = lock[held + 1..].find("pub async fn").map(|i| i + held + 1);
    assert!(
        scan > held && next_fn.is_none_or(|n| scan < n),
        "the locks table's scan is in held() only"
    );
}
