//! `bluegreen local up|down`: what the README's first-hour walk needs on a machine without an
//! AWS account — the emulator with its control routes, a stand-in for the parts of AWS that
//! act on their own (the ECS scheduler, the container runtime, ELB registering targets), and a
//! small app answering the smoke checks — started in the background, stopped by process id.
//!
//! The emulator is the test suite's own (`tests/emulator/moto_harness.py`, built into the
//! binary and written out at start): the walk runs on what the tests run on. It needs Python
//! with moto (`tests/emulator/requirements.txt`, the README's set-up).

pub mod app;
pub mod example;
pub mod player;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

/// The emulator, as the tests run it.
const HARNESS: &str = include_str!("../../../../tests/emulator/moto_harness.py");

/// What `local up` started, kept for `local down`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Running {
    /// The emulator's endpoint (`AWS_ENDPOINT_URL`).
    pub endpoint: String,
    /// The smoke checks' app (`BLUEGREEN_LOCAL_APP`).
    pub app_url: String,
    /// The emulator's process id.
    pub emulator_pid: u32,
    /// The player's (ECS stand-in and app) process id.
    pub player_pid: u32,
    /// Where the processes log.
    pub logs: PathBuf,
}

/// Where `local up` keeps its state and logs.
pub fn directory() -> PathBuf {
    std::env::temp_dir().join("bluegreen-local")
}

fn state_file() -> PathBuf {
    directory().join("running.json")
}

/// What runs, as `local up` recorded it — if at least one of its processes still runs (a
/// record outliving both, after a crash or a reboot, is forgotten).
pub fn running() -> Option<Running> {
    let text = std::fs::read_to_string(state_file()).ok()?;
    let running: Running = serde_json::from_str(&text).ok()?;
    if ours(running.emulator_pid, "moto_harness.py") || ours(running.player_pid, "local play") {
        return Some(running);
    }
    let _ = std::fs::remove_file(state_file());
    None
}

/// Whether process `pid` still runs the program `local up` started as it (its command line
/// names `marker`): a process id reused by another program is never signalled.
fn ours(pid: u32, marker: &str) -> bool {
    let line = match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(line) => line,
        // No /proc (macOS): ps says what the process runs.
        Err(_) if !Path::new("/proc/self").exists() => Command::new("ps")
            .args(["-p", &pid.to_string(), "-o", "command="])
            .output()
            .map(|out| out.stdout)
            .unwrap_or_default(),
        Err(_) => return false,
    };
    // /proc separates the arguments with NULs, ps with spaces.
    String::from_utf8_lossy(&line)
        .replace('\0', " ")
        .contains(marker)
}

/// Ends process `pid` if it still runs what `local up` started as it; whether it did.
pub fn stop(pid: u32, marker: &str) -> bool {
    ours(pid, marker)
        && Command::new("kill")
            .arg(pid.to_string())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// Records what runs.
pub fn record(running: &Running) -> Result<(), String> {
    let text = serde_json::to_string_pretty(running).map_err(|e| e.to_string())?;
    std::fs::write(state_file(), text).map_err(|e| format!("{}: {e}", state_file().display()))
}

/// Ends what `local up` started (each process by its id); what it stopped.
pub fn down() -> Result<Vec<String>, String> {
    let Some(running) = running() else {
        return Ok(Vec::new());
    };
    let mut stopped = Vec::new();
    for (what, pid, marker) in [
        ("player", running.player_pid, "local play"),
        ("emulator", running.emulator_pid, "moto_harness.py"),
    ] {
        if stop(pid, marker) {
            stopped.push(format!("{what} (process {pid})"));
        }
    }
    std::fs::remove_file(state_file()).map_err(|e| e.to_string())?;
    Ok(stopped)
}

/// The Python that runs the emulator: `BLUEGREEN_PYTHON`, else `.venv/bin/python` here (the
/// README's set-up), else `python3`.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("BLUEGREEN_PYTHON") {
        return p.into();
    }
    let venv = Path::new(".venv/bin/python");
    if venv.exists() {
        return venv.to_owned();
    }
    PathBuf::from("python3")
}

/// Starts the emulator in the background on `port` (0: any free one); its process id and
/// endpoint. It outlives this process (its own process group, no terminal).
pub fn start_emulator(port: u16) -> Result<(u32, String), String> {
    let dir = directory();
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let script = dir.join("moto_harness.py");
    std::fs::write(&script, HARNESS).map_err(|e| format!("{}: {e}", script.display()))?;
    let log = dir.join("emulator.log");
    let log_file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let python = python();
    let mut child = detached(Command::new(&python).arg(&script))
        .env("BLUEGREEN_HARNESS_PORT", port.to_string())
        .env("BLUEGREEN_HARNESS_DETACHED", "1")
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    let stdout = child.stdout.take().ok_or("the emulator's output")?;
    let port_line = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix("PORT ").map(|p| p.trim().to_owned()));
    match port_line {
        Some(port) => Ok((child.id(), format!("http://127.0.0.1:{port}"))),
        None => Err(format!(
            "the emulator did not start ({} {}; its log: {}). It needs Python with moto: \
             `python3 -m venv .venv && .venv/bin/pip install -r tests/emulator/requirements.txt`, \
             or BLUEGREEN_PYTHON naming such a Python",
            python.display(),
            script.display(),
            log.display()
        )),
    }
}

/// `command` in its own process group, without a terminal's input: a Ctrl-C in the shell
/// that ran `local up` does not stop it, and it outlives `local up`.
pub fn detached(command: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    command.stdin(Stdio::null()).process_group(0)
}
