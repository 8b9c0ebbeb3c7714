//! The library's shape, held by tests: steps never import each other, and each AWS client is
//! called from its one adapter module (DynamoDB from the record, lock and service-index
//! modules, and the table definitions that create them).

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
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&root, &mut files);
    files
        .into_iter()
        .map(|p| {
            let name = p
                .strip_prefix(&root)
                .expect("under src")
                .to_string_lossy()
                .replace('\\', "/");
            (name, std::fs::read_to_string(&p).expect("readable source"))
        })
        .collect()
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
            &["record.rs", "lock.rs", "service_index.rs", "tables.rs"],
        ),
        ("ssm", &["config_store.rs"]),
        ("cloudwatch", &["alarms.rs"]),
        ("sfn", &["executions.rs"]),
        ("sts", &["identity.rs"]),
        ("secrets", &["links.rs"]),
        ("sns", &["notify.rs", "subscriptions.rs"]),
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
