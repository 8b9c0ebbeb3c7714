//! Cold start of the Lambda handlers (`bench/cold-start`): each release binary, as shipped in
//! its zip, started against a local Lambda Runtime API (this program answers
//! `/runtime/invocation/next` with one event and takes the answer), next to a Python boto3
//! handler built the same way (the same eleven clients at init) run against the same API.
//!
//! For each handler, the median of `--repeats` cold starts of: init (exec to the first
//! `GET …/next`: runtime start, clients built), the first invocation (event handed over to
//! answer posted; prepare and the Python handler make one DynamoDB Query against the emulator,
//! the console renders a page, other steps refuse the bench's input without calling AWS), and
//! peak RSS (`VmHWM` once the answer is posted). Zip sizes are read from the zips.
//!
//! Arguments: `--binaries DIR` (DIR/<function>/bootstrap, unpacked from the zips),
//! `--zips DIR` (DIR/<function>/bootstrap.zip), `--python PATH`, `[--repeats N]`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use bluegreen::steps::registry::{STEP_VARIABLE, STEPS};
use bluegreen_tests::World;
use serde_json::json;
use tokio::sync::Notify;

/// How long one cold start may take before the bench gives up on it.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// One run's Runtime API: hands out `event` once, records when it was asked and answered.
struct RuntimeApi {
    event: String,
    asked: Mutex<Option<Instant>>,
    answered: Mutex<Option<(Instant, &'static str)>>,
    done: Notify,
}

async fn next(State(api): State<Arc<RuntimeApi>>) -> impl IntoResponse {
    let first = {
        let mut asked = api.asked.lock().unwrap();
        let first = asked.is_none();
        if first {
            *asked = Some(Instant::now());
        }
        first
    };
    if !first {
        // The handler waits for its next event: there is none; the bench reads its memory
        // and stops it.
        std::future::pending::<()>().await;
    }
    let deadline = chrono::Utc::now().timestamp_millis() + 60_000;
    let mut headers = HeaderMap::new();
    for (name, value) in [
        (
            "lambda-runtime-aws-request-id",
            "bench-request-1".to_owned(),
        ),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:bench".to_owned(),
        ),
        (
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000".to_owned(),
        ),
        ("content-type", "application/json".to_owned()),
    ] {
        headers.insert(name, HeaderValue::from_str(&value).unwrap());
    }
    (headers, api.event.clone())
}

fn answered(api: &RuntimeApi, kind: &'static str) {
    *api.answered.lock().unwrap() = Some((Instant::now(), kind));
    api.done.notify_one();
}

async fn response(State(api): State<Arc<RuntimeApi>>) -> &'static str {
    answered(&api, "response");
    "{}"
}

async fn error(State(api): State<Arc<RuntimeApi>>) -> &'static str {
    answered(&api, "error");
    "{}"
}

/// A handler to start: its command and environment, and the event it gets.
struct Handler {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    event: serde_json::Value,
}

/// One cold start's figures.
#[derive(Debug, Clone, Copy)]
struct Start {
    init: Duration,
    invocation: Duration,
    rss_kib: u64,
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

async fn cold_start(handler: &Handler, common_env: &[(String, String)]) -> Start {
    let api = Arc::new(RuntimeApi {
        event: handler.event.to_string(),
        asked: Mutex::new(None),
        answered: Mutex::new(None),
        done: Notify::new(),
    });
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(error))
        .with_state(api.clone());
    let listener = bluegreen_tests::serving::loopback_listener().await;
    let address = listener.local_addr().unwrap();
    let _served = bluegreen_tests::serving::serve(app, listener);

    let mut command = tokio::process::Command::new(&handler.program);
    command
        .args(&handler.args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .envs(common_env.iter().cloned())
        .envs(handler.env.iter().cloned())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = command.spawn().expect("the handler starts");
    tokio::time::timeout(START_TIMEOUT, api.done.notified())
        .await
        .unwrap_or_else(|_| panic!("{} never answered its first event", handler.name));
    let pid = child.id().expect("still running");
    let rss_kib = peak_rss_kib(pid);
    child.kill().await.ok();
    let asked = api.asked.lock().unwrap().expect("asked for an event");
    let (answered_at, _) = api.answered.lock().unwrap().expect("answered");
    Start {
        init: asked - started,
        invocation: answered_at - asked,
        rss_kib,
    }
}

fn median<T: Copy>(mut values: Vec<T>, key: impl Fn(&T) -> Duration) -> T {
    values.sort_by_key(|v| key(v));
    values[values.len() / 2]
}

fn flag(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn zip_kib(zips: &Path, function: &str) -> String {
    std::fs::metadata(zips.join(function).join("bootstrap.zip"))
        .map(|m| format!("{}", m.len() / 1024))
        .unwrap_or_else(|_| "—".into())
}

/// A push nobody watches: prepare reads the service index once and answers "ignored".
fn unwatched_push() -> serde_json::Value {
    let mut event = bluegreen_tests::push_event("v2", 'a', "bench-push", "2026-11-21T10:00:00Z");
    event["detail"]["repository-name"] = "nobody/watches-this".into();
    event
}

/// A function URL request for the console's list page without an identity (answered 401).
fn console_request() -> serde_json::Value {
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": {"host": "console.example.com"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "bench", "domainName": "console.example.com",
            "domainPrefix": "bench", "requestId": "bench-1", "routeKey": "$default",
            "stage": "$default", "time": "23/Nov/2026:00:00:00 +0000", "timeEpoch": 0,
            "http": {"method": "GET", "path": "/", "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "bench"}
        },
        "isBase64Encoded": false
    })
}

#[tokio::main]
async fn main() {
    let binaries = PathBuf::from(flag("--binaries").expect("--binaries DIR"));
    let zips = PathBuf::from(flag("--zips").expect("--zips DIR"));
    let python = PathBuf::from(flag("--python").expect("--python PATH"));
    let repeats: usize = flag("--repeats").map_or(10, |r| r.parse().expect("--repeats N"));
    let handler_py = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/python_handler.py");

    let world = World::build().await;
    let endpoint = world.ctx.endpoint_url.clone().expect("the emulator's URL");
    let common_env: Vec<(String, String)> = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_LAMBDA_FUNCTION_NAME", "bench"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench"),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        ("BLUEGREEN_SERVICES_TABLE", "bluegreen-services"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();

    let mut handlers = vec![Handler {
        name: "python boto3 (prepare's work)".into(),
        program: python,
        args: vec![handler_py.display().to_string()],
        env: vec![],
        event: unwatched_push(),
    }];
    for step in STEPS {
        handlers.push(Handler {
            name: format!("bluegreen-step: {}", step.name),
            program: binaries.join("bluegreen-step/bootstrap"),
            args: vec![],
            env: vec![(STEP_VARIABLE.to_owned(), step.name.to_owned())],
            event: if step.name == "prepare" {
                unwatched_push()
            } else {
                json!(["not", "this", "step's", "input"])
            },
        });
    }
    handlers.push(Handler {
        name: "bluegreen-console".into(),
        program: binaries.join("bluegreen-console/bootstrap"),
        args: vec![],
        env: vec![],
        event: console_request(),
    });

    println!("Cold starts against a local Lambda Runtime API (median of {repeats}):\n");
    println!("| handler | init ms | × Python init | first invocation ms | peak RSS MiB |");
    println!("|---|---:|---:|---:|---:|");
    let mut python_init = None;
    for handler in &handlers {
        let mut starts = Vec::new();
        for _ in 0..repeats {
            starts.push(cold_start(handler, &common_env).await);
        }
        let init = median(starts.clone(), |s| s.init);
        let invocation = median(starts.clone(), |s| s.invocation);
        let rss = starts.iter().map(|s| s.rss_kib).max().unwrap_or(0);
        let python = *python_init.get_or_insert(init.init);
        println!(
            "| {} | {:.1} | {:.3} | {:.1} | {:.1} |",
            handler.name,
            init.init.as_secs_f64() * 1000.0,
            init.init.as_secs_f64() / python.as_secs_f64(),
            invocation.invocation.as_secs_f64() * 1000.0,
            rss as f64 / 1024.0
        );
    }
    println!("\n| zip | KiB |\n|---|---:|");
    for function in ["bluegreen-step", "bluegreen-console"] {
        println!("| {function} | {} |", zip_kib(&zips, function));
    }
}
