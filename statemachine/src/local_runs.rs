//! The local runs alive on this machine. `bluegreen run` writes one file per deployment
//! execution it runs — its process id, in a directory per emulator endpoint — and removes it
//! when the execution ends, so other commands can tell a run that waits from one that died:
//! `bluegreen reconcile` (the stack's reconciler, run locally over [`LocalWorkflow`]) ends or
//! continues a deployment whose run was killed, and `approve` says whether a run will pick the
//! decision up. On AWS Step Functions answers these questions; here the files do.

use std::path::PathBuf;
use std::sync::Mutex;

use bluegreen::StepError;
use bluegreen::StepResult;
use bluegreen::ports::workflow::{Execution, Workflow};

/// The deployment machine's ARN in a local context (no such machine exists on AWS).
pub const LOCAL_DEPLOYMENT_MACHINE: &str = "arn:local:stateMachine:bluegreen-deployment";

/// Where the runs against `endpoint` (the emulator's URL) are written: one directory per
/// emulator, however its URL is spelt (`http://localhost:5000/` and `http://127.0.0.1:5000`
/// are one).
fn directory(endpoint: Option<&str>) -> PathBuf {
    let endpoint = endpoint.unwrap_or("aws");
    let host_port = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest)
        .trim_end_matches('/');
    let host_port = host_port
        .strip_prefix("localhost")
        .map_or(host_port.to_owned(), |port| format!("127.0.0.1{port}"));
    let endpoint: String = host_port
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    std::env::temp_dir().join("bluegreen-runs").join(endpoint)
}

/// A run's file, removed when the run's execution ends (dropped).
#[derive(Debug)]
pub struct RunFile(PathBuf);

impl RunFile {
    /// Marks the deployment's execution as started by this run (it was only queued in it):
    /// from now on, if this process dies, its execution died with it.
    pub fn started(&self) {
        let _ = std::fs::write(&self.0, std::process::id().to_string());
    }
}

impl Drop for RunFile {
    /// Removes the file if it still names this process (another run may have taken it over
    /// since: its file is left alone).
    fn drop(&mut self) {
        let ours = std::fs::read_to_string(&self.0).is_ok_and(|text| {
            text.split_whitespace().next() == Some(&std::process::id().to_string())
        });
        if ours {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// What recording a run of a deployment found.
#[derive(Debug)]
pub enum Registration {
    /// This process runs it now (its file, removed when dropped).
    Ours(RunFile),
    /// Another live process runs it (its id): this one must not.
    Elsewhere(u32),
    /// The file could not be written: the run goes on, other commands cannot see it.
    Unrecorded,
}

/// Writes that this process will run `deployment_id`'s execution — queued behind others of
/// this run until [`RunFile::started`] — unless another live process runs it already.
pub fn register(endpoint: Option<&str>, deployment_id: &str) -> Registration {
    if let Some(run) = run_of(endpoint, deployment_id)
        && run.alive
        && run.pid != std::process::id()
    {
        return Registration::Elsewhere(run.pid);
    }
    let dir = directory(endpoint);
    let path = dir.join(deployment_id);
    let queued = format!("{} queued", std::process::id());
    match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, queued)) {
        Ok(()) => Registration::Ours(RunFile(path)),
        Err(e) => {
            eprintln!(
                "bluegreen: cannot record this run in {}: {e}",
                dir.display()
            );
            Registration::Unrecorded
        }
    }
}

/// The run of `deployment_id` that was recorded on this machine, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalRun {
    /// Its process id.
    pub pid: u32,
    /// Whether that process still runs.
    pub alive: bool,
    /// Whether it started the deployment's execution (else it only had it queued).
    pub started: bool,
}

/// The recorded run of `deployment_id`, if one was recorded and not removed.
pub fn run_of(endpoint: Option<&str>, deployment_id: &str) -> Option<LocalRun> {
    let text = std::fs::read_to_string(directory(endpoint).join(deployment_id)).ok()?;
    let mut words = text.split_whitespace();
    let pid: u32 = words.next()?.parse().ok()?;
    Some(LocalRun {
        pid,
        alive: alive(pid),
        started: words.next() != Some("queued"),
    })
}

/// Whether process `pid` runs (Linux's `/proc`; elsewhere `kill -0`).
fn alive(pid: u32) -> bool {
    if std::path::Path::new("/proc/self").exists() {
        return std::path::Path::new(&format!("/proc/{pid}")).exists();
    }
    std::process::Command::new("kill")
        .args(["-0", &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// Step Functions' place for the reconciler run locally: an execution runs while its
/// `bluegreen run` process does; starting one is noted for the caller to run in-process.
#[derive(Debug, Default)]
pub struct LocalWorkflow {
    endpoint: Option<String>,
    started: Mutex<Vec<String>>,
}

impl LocalWorkflow {
    /// Over the runs against `endpoint`.
    pub fn new(endpoint: Option<String>) -> Self {
        LocalWorkflow {
            endpoint,
            started: Mutex::new(Vec::new()),
        }
    }

    /// The executions the reconciler asked to start since the last call, oldest first.
    pub fn take_started(&self) -> Vec<String> {
        std::mem::take(&mut *self.started.lock().expect("started lock"))
    }
}

#[async_trait::async_trait]
impl Workflow for LocalWorkflow {
    async fn status(&self, _machine: &str, name: &str) -> StepResult<Execution> {
        Ok(match run_of(self.endpoint.as_deref(), name) {
            Some(run) if run.alive => Execution::Running,
            // Queued in a run that died before starting it: never started.
            Some(run) if !run.started => Execution::Missing,
            Some(run) => Execution::Ended(format!(
                "FAILED (its local run, process {}, exited without ending it)",
                run.pid
            )),
            None => Execution::Missing,
        })
    }

    async fn start(&self, _machine: &str, name: &str, _input: &str) -> StepResult<()> {
        self.started
            .lock()
            .expect("started lock")
            .push(name.to_owned());
        Ok(())
    }

    /// A local run is not stopped from outside: it stops at its approval wait once the
    /// deployment has ended; a step it runs after an abort is fenced out, and its own ending
    /// then finds the deployment ended (endings are idempotent).
    async fn stop(
        &self,
        _machine: &str,
        _name: &str,
        _error: &str,
        _cause: &str,
    ) -> StepResult<()> {
        Ok(())
    }

    async fn send_task_success(&self, _token: &str, _output: &str) -> StepResult<()> {
        Err(local_decision())
    }

    async fn send_task_failure(&self, _token: &str, _error: &str, _cause: &str) -> StepResult<()> {
        Err(local_decision())
    }

    async fn machine_exists(&self, _machine: &str) -> StepResult<bool> {
        Ok(true)
    }
}

/// Local runs read decisions from the record; there is no task token to send them to.
fn local_decision() -> StepError {
    StepError::Internal("a local run reads approval decisions from the record".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_run_is_running_while_its_process_lives_and_missing_once_its_file_is_gone() {
        let endpoint = Some("http://127.0.0.1:1/local-runs-test");
        let workflow = LocalWorkflow::new(endpoint.map(str::to_owned));
        let Registration::Ours(file) = register(endpoint, "shop-test-1") else {
            panic!("written");
        };
        file.started();
        assert_eq!(
            workflow.status("m", "shop-test-1").await.unwrap(),
            Execution::Running,
            "this process"
        );
        drop(file);
        assert_eq!(
            workflow.status("m", "shop-test-1").await.unwrap(),
            Execution::Missing
        );
        // A process that no longer runs: a pid beyond Linux's pid_max.
        std::fs::write(directory(endpoint).join("shop-test-2"), "4194305").unwrap();
        assert!(matches!(
            workflow.status("m", "shop-test-2").await.unwrap(),
            Execution::Ended(why) if why.contains("exited")
        ));
        // Queued in a run that died before starting it: never started, the reconciler
        // starts it; another live process's file is not taken over.
        std::fs::write(directory(endpoint).join("shop-test-2"), "4194305 queued").unwrap();
        assert_eq!(
            workflow.status("m", "shop-test-2").await.unwrap(),
            Execution::Missing
        );
        std::fs::remove_file(directory(endpoint).join("shop-test-2")).unwrap();
        let init = Some("http://localhost:1/local-runs-test/");
        std::fs::write(directory(init).join("shop-test-3"), "1").unwrap();
        assert!(
            matches!(
                register(endpoint, "shop-test-3"),
                Registration::Elsewhere(1)
            ),
            "process 1 runs it (one directory for localhost and 127.0.0.1)"
        );
        std::fs::remove_file(directory(endpoint).join("shop-test-3")).unwrap();
    }
}
