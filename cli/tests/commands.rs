//! The offline commands, run as a user would.

use std::process::Command;

fn bluegreen(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bluegreen"))
        .args(args)
        .output()
        .expect("bluegreen runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn repo(path: &str) -> String {
    format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn validate_accepts_the_definitions_and_the_documented_config() {
    let (ok, stdout, stderr) =
        bluegreen(&["validate", "--config", &repo("docs/example-service.toml")]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("2 definitions and 1 config file(s) are valid"),
        "{stdout}"
    );
}

#[test]
fn validate_lists_every_problem_of_a_bad_config_and_fails() {
    let dir = std::env::temp_dir().join(format!("bluegreen-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    let example = std::fs::read_to_string(repo("docs/example-service.toml")).unwrap();
    std::fs::write(
        &bad,
        example
            .replace("approvers = [", "approvers = [] # ")
            .replace("name = \"shop\"", "name = \"Shop!\""),
    )
    .unwrap();
    let (ok, _, stderr) = bluegreen(&["validate", "--config", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.contains("name:") && stderr.contains("approval.approvers:"),
        "{stderr}"
    );
    assert!(stderr.contains("2 problem(s)"), "{stderr}");
}

#[test]
fn graph_draws_every_state_and_the_catch_edges() {
    let (ok, stdout, _) = bluegreen(&["graph"]);
    assert!(ok);
    assert!(stdout.starts_with("flowchart TD"));
    for node in [
        "Resume",
        "LaunchPreprodCheck",
        "Approval",
        "Rollback",
        "Aborted",
    ] {
        assert!(
            stdout.contains(&format!("{node}["))
                || stdout.contains(&format!("{node}("))
                || stdout.contains(&format!("{node}{{")),
            "{node}"
        );
    }
    assert!(
        stdout.contains("-. \"States.ALL\" .-> Abort"),
        "catch edges are dotted"
    );
}

#[test]
fn run_with_a_missing_event_file_fails_clearly() {
    let (ok, _, stderr) = bluegreen(&["run", "--event", "/nonexistent/event.json"]);
    assert!(!ok);
    assert!(stderr.contains("/nonexistent/event.json"), "{stderr}");
}

#[test]
fn output_into_a_closed_pipe_ends_quietly_instead_of_panicking() {
    // The reader is gone before the command starts: every write meets a closed pipe, as in
    // `bluegreen graph | true`.
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_bluegreen"))
        .arg("graph")
        .stdout(writer)
        .output()
        .expect("bluegreen runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_rejection_without_a_reason_is_a_usage_error_naming_the_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_bluegreen"))
        .args(["reject", "shop-20261121T100000-8da979"])
        .output()
        .expect("bluegreen runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Usage errors exit 2 (as clap's, and the README says so); refusals exit 1.
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--reason"), "{stderr}");
}

#[test]
fn the_command_the_example_config_tells_people_to_run_validates_it() {
    let example = std::fs::read_to_string(repo("docs/example-service.toml")).unwrap();
    let quoted = example
        .lines()
        .take_while(|l| l.starts_with('#'))
        .find_map(|l| {
            l.split('`')
                .nth(1)
                .filter(|c| c.starts_with("bluegreen config validate"))
        })
        .expect("the header names the validate command");
    let args: Vec<String> = quoted
        .split_whitespace()
        .skip(1)
        .map(|a| {
            if a.starts_with("docs/") {
                repo(a)
            } else {
                a.to_owned()
            }
        })
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, stdout, stderr) = bluegreen(&args);
    assert!(ok, "`{quoted}`: {stdout}{stderr}");
}

#[test]
fn the_intake_graph_draws_the_maps_item_processor() {
    let (ok, stdout, stderr) = bluegreen(&["graph", "--intake"]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("subgraph StartDeployments_items")
            && stdout.contains("StartDeployments_StartDeployment")
            && stdout.contains("StartDeployments_StartLater"),
        "{stdout}"
    );
}

#[test]
fn a_time_scale_outside_zero_to_one_is_refused_before_anything_runs() {
    for scale in ["--time-scale=-1", "--time-scale=2", "--time-scale=fast"] {
        let out = Command::new(env!("CARGO_BIN_EXE_bluegreen"))
            .args(["run", "--event", "/nonexistent/event.json", scale])
            .output()
            .expect("bluegreen runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{scale}: {stderr}");
        assert!(stderr.contains("--time-scale"), "{scale}: {stderr}");
    }
}

#[test]
fn an_unreachable_endpoint_is_reported_as_its_causes_not_a_debug_dump() {
    // Nothing listens on the discard port: every call is refused.
    let out = Command::new(env!("CARGO_BIN_EXE_bluegreen"))
        .args(["history", "shop"])
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("bluegreen runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Connection refused"), "{stderr}");
    assert!(
        !stderr.contains("DispatchFailure {") && !stderr.contains("ConnectorError {"),
        "{stderr}"
    );
}

#[test]
fn config_validate_reports_every_schema_error_of_a_file_at_once() {
    let dir = std::env::temp_dir().join(format!("bluegreen-schema-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("schema.toml");
    let example = std::fs::read_to_string(repo("docs/example-service.toml")).unwrap();
    // An unknown key at the top, a misspelt key in a table, and a required field removed.
    let text = format!("colour = \"blue\"\n{example}")
        .replace("container = ", "containr = ")
        .replace("[bake]", "[bake]\nsecnds = 60");
    std::fs::write(&bad, text).unwrap();
    let (ok, _, stderr) = bluegreen(&["config", "validate", bad.to_str().unwrap()]);
    assert!(!ok);
    for needle in ["colour", "containr", "container", "secnds"] {
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    }
    let reported = stderr
        .lines()
        .filter(|l| l.contains("schema.toml:"))
        .count();
    assert!(reported >= 3, "one line a problem: {stderr}");
}

#[test]
fn config_validate_refuses_control_characters_naming_each_field_and_prints_none() {
    let dir = std::env::temp_dir().join(format!("bluegreen-controls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("controls.toml");
    let example = std::fs::read_to_string(repo("docs/example-service.toml")).unwrap();
    // TOML's own escapes write the raw characters into the parsed strings.
    let text = example
        .replace("name = \"shop\"", "name = \"shop\\u001b]0;pwned\\u0007\"")
        .replace(
            "approvers = [\"alice@example.com\"",
            "approvers = [\"alice@example.com\\u001b[8m\", \"   \"",
        );
    assert_ne!(text, example);
    std::fs::write(&bad, text).unwrap();
    let (ok, stdout, stderr) = bluegreen(&["config", "validate", bad.to_str().unwrap()]);
    assert!(!ok);
    for needle in [
        "name: contains the control character \\x1b at character 5",
        "approval.approvers[0]: contains the control character \\x1b at character 18",
        "approval.approvers[1]: must name an approver, not be blank",
    ] {
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    }
    let raw = |s: &str| {
        s.chars()
            .any(|c| c != '\n' && bluegreen::text::is_hidden(c))
    };
    assert!(!raw(&stderr) && !raw(&stdout), "{stderr}");
}

/// Issue 29 item 6: a schema problem no longer hides the semantic ones; each problem names its
/// field; a field of several forms names the meant form's problem (DNS mode's missing zone),
/// not "not valid under any of the schemas" with the table as JSON; `[health]` may be left
/// out (its fields have defaults); an empty tag pattern, blank approvers and a service's ARN
/// as the cluster are refused; a negative timeout reads the real minimum (1).
#[test]
fn config_validate_lists_schema_and_semantic_problems_together_each_naming_its_field() {
    let dir = std::env::temp_dir().join(format!("bluegreen-layers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let example = std::fs::read_to_string(repo("docs/example-service.toml")).unwrap();
    let health = example.find("[health]").unwrap();
    let after_health = health + example[health..].find("\n[approval]").unwrap();
    let text = format!("{}{}", &example[..health], &example[after_health..])
        .replace(
            "cluster = \"shop-cluster\"",
            "cluster = \"arn:aws:ecs:eu-west-1:123456789012:service/shop-cluster/shop-blue\"",
        )
        .replace("tags = [\"v*\", \"release-*\"]", "tags = [\"v*\", \"\"]")
        .replace("approvers = [", "approvers = [\"  \", ")
        .replace("timeout_seconds = 14400", "timeout_seconds = -5")
        // An unknown key at the top (the commonest typo) hides nothing either.
        .replacen("name = \"shop\"", "name = \"shop\"\ncolour = \"blue\"", 1);
    assert!(
        text.contains("timeout_seconds = -5"),
        "the example sets the approval timeout"
    );
    let bad = dir.join("layers.toml");
    std::fs::write(&bad, text).unwrap();
    let (ok, _, stderr) = bluegreen(&["config", "validate", bad.to_str().unwrap()]);
    assert!(!ok);
    for line in [
        // The schema's problems …
        "approval.timeout_seconds: -5 is less than the minimum of 1",
        "'colour' was unexpected",
        // … and the semantic ones beside it.
        "source.tags[1]: is empty",
        "approval.approvers[0]: must name an approver, not be blank",
        "cluster: \"arn:aws:ecs:eu-west-1:123456789012:service/shop-cluster/shop-blue\" is not a cluster's ARN",
        // [health] left out: not "required", but what it then lacks.
        "health.smoke: at least one smoke check is required",
    ] {
        assert!(stderr.contains(line), "{line}: {stderr}");
    }
    assert!(
        !stderr.contains("\"health\" is a required property"),
        "{stderr}"
    );

    let dns = example
        .replace(
            "mode = \"listener\"",
            "mode = \"dns\"\nrecord_name = \"shop.example.com\"",
        )
        .lines()
        .filter(|l| {
            !l.starts_with("production_listener_arn")
                && !l.starts_with("test_listener_arn")
                && !l.starts_with("routes =")
        })
        .collect::<Vec<_>>()
        .join("\n");
    let dns_file = dir.join("dns.toml");
    std::fs::write(&dns_file, dns).unwrap();
    let (ok, _, stderr) = bluegreen(&["config", "validate", dns_file.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.contains("traffic: \"hosted_zone_id\" is a required property"),
        "{stderr}"
    );
    assert!(!stderr.contains("oneOf"), "{stderr}");
    assert!(
        !stderr.contains("{\""),
        "no table printed as JSON: {stderr}"
    );
}

/// Issue 29 item 9: a command missing what it needs is a usage error (exit 2, as clap's), not
/// a failure (exit 1); a missing config file's path is printed once.
#[test]
fn usage_errors_exit_2_and_a_missing_file_is_named_once() {
    for args in [
        &[
            "adopt",
            "--cluster",
            "shop-cluster",
            "--service",
            "shop-blue",
        ][..],
        &["init"][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_bluegreen"))
            .args(args)
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .output()
            .expect("bluegreen runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    }
    let missing = std::env::temp_dir().join("bluegreen-no-such-config.toml");
    let (ok, _, stderr) = bluegreen(&["config", "validate", missing.to_str().unwrap()]);
    assert!(!ok);
    assert_eq!(
        stderr.matches("bluegreen-no-such-config.toml").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("cannot be read"), "{stderr}");
}
