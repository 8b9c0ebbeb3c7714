//! Starts `tests/emulator/moto_harness.py` (moto in-process plus a loopback control API) on a
//! free port and talks to it.

use std::path::PathBuf;
use std::process::Stdio;

use aws_config::{BehaviorVersion, Region};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// One running emulator, stopped when dropped.
pub struct Emulator {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    _child: Child,
    control: Control,
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
    /// Starts a fresh emulator and waits until it listens.
    pub async fn start() -> Emulator {
        let mut child = Command::new(python())
            .arg(repo_root().join("tests/emulator/moto_harness.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the emulator starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let port = loop {
            let line = lines
                .next_line()
                .await
                .expect("emulator stdout readable")
                .expect("the emulator printed its port before exiting");
            if let Some(port) = line.strip_prefix("PORT ") {
                break port.trim().to_owned();
            }
        };
        let endpoint = format!("http://127.0.0.1:{port}");
        Emulator {
            control: Control {
                endpoint: endpoint.clone(),
                http: reqwest::Client::new(),
            },
            endpoint,
            _child: child,
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
        self.control
            .call(method, path, body)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A handle on the control routes for background tasks.
    pub fn control_handle(&self) -> Control {
        self.control.clone()
    }
}
