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

/// The crate's modules (a file under `src/`, or a folder's files together: `steps`, `ports`,
/// `aws`) and, for each, the other modules its code names as `crate::<module>`. Comments and
/// the test module at a file's end are left out: a doc link or a test's import is no
/// dependency of the code.
fn module_imports(sources: &[(String, String)]) -> BTreeMap<String, BTreeSet<String>> {
    let module_of = |file: &str| {
        let first = file.split('/').next().unwrap_or(file);
        first.trim_end_matches(".rs").to_owned()
    };
    let modules: BTreeSet<String> = sources.iter().map(|(f, _)| module_of(f)).collect();
    let mut imports: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, text) in sources {
        let from = module_of(file);
        let code = text.split("#[cfg(test)]").next().unwrap_or(text);
        let code: String = code
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let names = imports.entry(from.clone()).or_default();
        // `crate::config::…` and every name inside `crate::{config, record::{…}}`.
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            let named: Vec<&str> = match rest.strip_prefix('{') {
                Some(group) => group[..group.find('}').unwrap_or(group.len())]
                    .split(',')
                    .map(|part| part.trim().split("::").next().unwrap_or(""))
                    .collect(),
                None => vec![
                    rest.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .next()
                        .unwrap_or(""),
                ],
            };
            for name in named {
                if name != from && modules.contains(name) {
                    names.insert(name.to_owned());
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
    for (crate_dir, at_least) in [("", 200), ("../console", 1), ("../../cli/ops", 3)] {
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
        (
            "a.rs",
            "use crate::b::X;\n// crate::c in a comment is no import\n",
        ),
        ("b/mod.rs", "use crate::{c, d::Y};\n"),
        ("c.rs", "fn f() { crate::a::g() }\n"),
        ("d.rs", "#[cfg(test)]\nmod tests { use crate::a; }\n"),
    ]
    .map(|(f, t)| (f.to_owned(), t.to_owned()));
    let imports = module_imports(&sources);
    assert_eq!(
        imports["b"],
        BTreeSet::from(["c".to_owned(), "d".to_owned()])
    );
    assert!(imports["d"].is_empty(), "a test module's import is none");
    assert_eq!(circle(&imports).unwrap(), ["a", "b", "c", "a"]);
    let mut broken = imports.clone();
    broken.get_mut("c").unwrap().clear();
    assert_eq!(circle(&broken), None);
}

/// The functions in `text` longer than `limit` lines, as `(name, lines)`: a function runs from
/// its `fn` line to the first line that closes it at its own indentation. The test module at
/// the end is left out.
fn long_functions(text: &str, limit: usize) -> Vec<(String, usize)> {
    let code = text.split("#[cfg(test)]").next().unwrap_or(text);
    let lines: Vec<&str> = code.lines().collect();
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
        if line.trim_end().ends_with(';') {
            continue; // a trait's declaration, no body
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
         trait T {{\n    fn declared(&self);\n}}\n#[cfg(test)]\nfn in_tests() {{\n{body}{body}}}\n"
    );
    assert_eq!(long_functions(&text, 7), [("long".to_owned(), 12)]);
    assert_eq!(
        long_functions(&text, 6),
        [("short".to_owned(), 7), ("long".to_owned(), 12)]
    );
}

#[test]
fn no_step_module_imports_another_step() {
    for (file, text) in sources().iter().filter(|(f, _)| f.starts_with("steps/")) {
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

#[test]
fn each_aws_client_is_called_from_its_adapter_only() {
    let adapters: &[(&str, &[&str])] = &[
        ("ecs", &["ecs.rs"]),
        ("elb", &["elb.rs"]),
        ("rds", &["rds.rs"]),
        ("route53", &["route53.rs"]),
        (
            "dynamodb",
            &[
                "record/repository.rs",
                "lock.rs",
                "service_index.rs",
                "tables.rs",
            ],
        ),
        ("ssm", &["config_store.rs"]),
        ("cloudwatch", &["alarms.rs"]),
        ("sfn", &["executions.rs"]),
        ("sts", &["identity.rs"]),
        ("secrets", &["links.rs"]),
        ("sns", &["notify.rs"]),
    ];
    for (file, text) in sources() {
        if file == "context.rs" || file == "architecture_tests.rs" {
            continue; // builds the clients; this test names them
        }
        // Whitespace removed: a call chain is split over lines by rustfmt.
        let compact: String = text.split_whitespace().collect();
        for (client, allowed) in adapters {
            let calls = compact.contains(&format!("ctx.{client}."));
            assert!(
                !calls || allowed.contains(&file.as_str()),
                "{file} calls the {client} client; only {allowed:?} may"
            );
        }
    }
}

/// A step module without a registry row is never dispatched, generated or deployed: every
/// `pub mod` of steps/ (but the registry) is a registered step.
#[test]
fn every_step_module_is_registered() {
    let mod_rs = sources()
        .into_iter()
        .find(|(f, _)| f == "steps/mod.rs")
        .expect("steps/mod.rs")
        .1;
    let modules: Vec<&str> = mod_rs
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod ")?.strip_suffix(';'))
        .filter(|m| *m != "registry")
        .collect();
    // Not vacuous: the steps are found (a changed layout of mod.rs must not pass silently).
    assert!(modules.len() >= 13, "{modules:?}");
    for module in modules {
        assert!(
            crate::steps::registry::by_name(module).is_some(),
            "steps/{module}.rs has no row in the step registry"
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
