//! Starts `tests/emulator/moto_harness.py` (moto in-process plus a loopback control API) and
//! talks to it. A test process keeps the harnesses its tests are done with, reset, and hands
//! them to the next tests: starting Python and importing moto costs about 1.6 s of CPU, paid
//! once per concurrent test instead of once per test.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_config::{BehaviorVersion, Region};

/// One emulator, fresh for its test: a new harness, or a used one reset (every moto backend
/// and the harness's own state emptied, served on a new port; its old port refuses whatever
/// the previous test still sends). Dropping it hands the harness back for the next test.
pub struct Emulator {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    harness: Option<Harness>,
    /// Cleared once a test changes moto's own settings (`/moto-api/…`), such as turning on
    /// the Step Functions interpreter, whose threads outlive a reset: that harness is stopped,
    /// not reused.
    reusable: AtomicBool,
    control: Control,
}

/// A running `moto_harness.py`: its stdin takes commands (`RESET`), its stdout says `PORT <n>`
/// whenever it serves on a new port.
struct Harness {
    process: Child,
    commands: ChildStdin,
    ports: BufReader<ChildStdout>,
}

/// Harnesses that finished a test and were told to reset, waiting for the next one. Each
/// stops when the test process exits (its stdin closes).
static IDLE: Mutex<Vec<Harness>> = Mutex::new(Vec::new());

impl Harness {
    fn spawn() -> Harness {
        let mut process = Command::new(python())
            .arg(repo_root().join("tests/emulator/moto_harness.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the emulator starts");
        Harness {
            commands: process.stdin.take().expect("piped stdin"),
            ports: BufReader::new(process.stdout.take().expect("piped stdout")),
            process,
        }
    }

    /// The port it serves on next: blocks until the harness says it (after its start or a
    /// reset). `None` if it exited instead.
    fn next_port(&mut self) -> Option<String> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.ports.read_line(&mut line).ok()? == 0 {
                return None;
            }
            if let Some(port) = line.strip_prefix("PORT ") {
                return Some(port.trim().to_owned());
            }
        }
    }

    /// A harness serving a fresh world, and its port: an idle one reset, else a new one.
    fn take() -> (Harness, String) {
        loop {
            let idle = idle().pop();
            let Some(mut harness) = idle else { break };
            match harness.next_port() {
                Some(port) => return (harness, port),
                None => harness.stop(),
            }
        }
        let mut harness = Harness::spawn();
        let port = harness
            .next_port()
            .expect("the emulator printed its port before exiting");
        (harness, port)
    }

    /// Tells it to empty itself and serve on a new port (`next_port` says which).
    fn reset(&mut self) -> std::io::Result<()> {
        writeln!(self.commands, "RESET")?;
        self.commands.flush()
    }

    fn stop(mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// A handle on the harness's control routes that background tasks can own.
#[derive(Clone)]
pub struct Control {
    endpoint: String,
    http: reqwest::Client,
}

impl Control {
    /// Calls a control route of the harness (see moto_harness.py).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let url = format!("{}{path}", self.endpoint);
        let request = match method {
            "GET" => self.http.get(url),
            _ => self.http.post(url).body(body.to_string()),
        };
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let value: serde_json::Value =
            serde_json::from_str(&response.text().await.unwrap_or_default())
                .unwrap_or(serde_json::Value::Null);
        if status.is_success() {
            Ok(value)
        } else {
            Err(format!("control {path} failed: {value}"))
        }
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

/// The Python with moto: `BLUEGREEN_PYTHON`, else the project's `.venv`.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("BLUEGREEN_PYTHON") {
        return p.into();
    }
    let venv = repo_root().join(".venv/bin/python");
    assert!(
        venv.exists(),
        "no emulator Python at {}: run `python3 -m venv .venv && .venv/bin/pip install -r tests/emulator/requirements.txt` (or set BLUEGREEN_PYTHON)",
        venv.display()
    );
    venv
}

impl Emulator {
    /// An emulator with nothing in it, listening: a used one reset, else a new one.
    pub async fn start() -> Emulator {
        // Reading the port blocks (a new harness takes ~2 s to print it).
        let (harness, port) = tokio::task::spawn_blocking(Harness::take)
            .await
            .expect("the emulator starts");
        Emulator::on(harness, port)
    }

    fn on(harness: Harness, port: String) -> Emulator {
        let endpoint = format!("http://127.0.0.1:{port}");
        Emulator {
            control: Control {
                endpoint: endpoint.clone(),
                http: reqwest::Client::new(),
            },
            endpoint,
            harness: Some(harness),
            reusable: AtomicBool::new(true),
        }
    }

    /// SDK config pointing every client at the emulator, with static test credentials.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "bluegreen-tests",
            ))
            .load()
            .await
    }

    /// Calls a control route of the harness; panics with the reason if it fails.
    pub async fn control(
        &self,
        method: &str,
        path: &str,
        body: serde_json::Value,
    ) -> serde_json::Value {
        if path.starts_with("/moto-api/") {
            self.reusable.store(false, Ordering::Relaxed);
        }
        self.control
            .call(method, path, body)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A handle on the control routes for background tasks.
    pub fn control_handle(&self) -> Control {
        self.control.clone()
    }

    /// This same harness, reset, as the next test would get it (what dropping does, without
    /// the pool in between: for the test of the reset itself).
    pub async fn renewed(mut self) -> Emulator {
        let mut harness = self.harness.take().expect("a harness until dropped");
        let (harness, port) = tokio::task::spawn_blocking(move || {
            harness.reset().expect("the harness takes commands");
            let port = harness.next_port().expect("the harness serves again");
            (harness, port)
        })
        .await
        .expect("the emulator resets");
        Emulator::on(harness, port)
    }
}

impl Drop for Emulator {
    /// Tells the harness to reset and keeps it for the next test (the reset runs while this
    /// test's runtime winds down; the next `start` waits for its new port).
    fn drop(&mut self) {
        let Some(mut harness) = self.harness.take() else {
            return;
        };
        if self.reusable.load(Ordering::Relaxed) && harness.reset().is_ok() {
            idle().push(harness);
        } else {
            harness.stop();
        }
    }
}

/// The idle harnesses, even after a test panicked while holding them (the list stays valid).
fn idle() -> std::sync::MutexGuard<'static, Vec<Harness>> {
    IDLE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
