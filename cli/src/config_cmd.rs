//! `bluegreen config validate|put|get|delete|reindex`: service configs are authored as TOML
//! files, validated with every problem listed, and stored as JSON in SSM under the config
//! prefix, with the service index (which services watch a repository) kept beside them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bluegreen::config::ServiceConfig;
use bluegreen::config_store::ConfigStore;
use bluegreen::{Context, StepError};
use serde::Serialize;

use crate::output::Output;

/// The `config` subcommands.
#[derive(clap::Subcommand)]
pub enum ConfigCommand {
    /// Validate TOML config files; lists every problem of every file.
    Validate {
        /// The files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Validate a TOML config file and store it in SSM (replacing the service's config).
    Put {
        /// The file.
        file: PathBuf,
    },
    /// Print a service's stored config as TOML (or JSON with --output json).
    Get {
        /// The service.
        service: String,
    },
    /// Delete a service's config and its index entries (its slots and records stay).
    Delete {
        /// The service.
        service: String,
    },
    /// Make the service index agree with the configs in SSM (after configs were written by
    /// another tool while the stack's index_config function was not there to see it).
    Reindex,
}

/// The config in the file at `path`, or every problem of it at once (schema and semantic).
fn load(path: &Path) -> Result<ServiceConfig, StepError> {
    // The caller names the file before each problem: not again here.
    let text = std::fs::read_to_string(path)
        .map_err(|e| StepError::ConfigInvalid(vec![format!("cannot be read: {e}")]))?;
    crate::config_problems::check(&text).map_err(StepError::ConfigInvalid)
}

/// Every problem of every file, each prefixed with its file.
pub fn problems_of(files: &[PathBuf]) -> Vec<String> {
    let mut problems = Vec::new();
    for path in files {
        match load(path) {
            Ok(_) => {}
            Err(StepError::ConfigInvalid(list)) => {
                problems.extend(list.into_iter().map(|p| format!("{}: {p}", path.display())))
            }
            Err(other) => problems.push(format!("{}: {other}", path.display())),
        }
    }
    problems
}

#[derive(Serialize)]
struct Validated<'a> {
    valid: bool,
    files: usize,
    problems: &'a [String],
}

#[derive(Serialize)]
struct Stored {
    service: String,
    parameter: String,
}

/// Runs a `config` subcommand.
pub async fn run(out: Output, command: ConfigCommand) -> ExitCode {
    match command {
        ConfigCommand::Validate { files } => {
            let problems = problems_of(&files);
            let report = Validated {
                valid: problems.is_empty(),
                files: files.len(),
                problems: &problems,
            };
            if problems.is_empty() {
                out.show(&report, |r| {
                    outln!("ok: {} config file(s) are valid", r.files)
                })
            } else {
                out.show(&report, |r| {
                    for p in r.problems {
                        errln!("{p}");
                    }
                });
                crate::fail(&format!("{} problem(s)", problems.len()))
            }
        }
        ConfigCommand::Put { file } => {
            let config = match load(&file) {
                Ok(c) => c,
                Err(StepError::ConfigInvalid(problems)) => {
                    let named = problems
                        .into_iter()
                        .map(|p| format!("{}: {p}", file.display()))
                        .collect();
                    return out.error(&StepError::ConfigInvalid(named));
                }
                Err(e) => return out.error(&e),
            };
            let ctx = Context::from_env().await;
            let store = ConfigStore::new(&ctx);
            match store.put(&config).await {
                Ok(()) => out.show(
                    &Stored {
                        parameter: store.parameter_name(&config.name),
                        service: config.name.clone(),
                    },
                    |s| outln!("stored {} in {}", s.service, s.parameter),
                ),
                Err(e) => out.error(&e),
            }
        }
        ConfigCommand::Delete { service } => {
            let ctx = Context::from_env().await;
            let store = ConfigStore::new(&ctx);
            match store.delete(&service).await {
                Ok(()) => out.show(
                    &Stored {
                        parameter: store.parameter_name(&service),
                        service: service.clone(),
                    },
                    |s| outln!("deleted {} ({})", s.service, s.parameter),
                ),
                Err(e) => out.error(&e),
            }
        }
        ConfigCommand::Reindex => reindex(out).await,
        ConfigCommand::Get { service } => {
            let ctx = Context::from_env().await;
            match ConfigStore::new(&ctx).load(&service).await {
                Ok(config) => out.show(&config, |c| match toml::to_string_pretty(c) {
                    Ok(text) => out!("{text}"),
                    Err(e) => errln!("bluegreen: cannot print TOML: {e}"),
                }),
                Err(e) => out.error(&e),
            }
        }
    }
}

/// `bluegreen config reindex`: the service index made to agree with SSM.
async fn reindex(out: Output) -> ExitCode {
    let ctx = Context::from_env().await;
    match ConfigStore::new(&ctx).reindex().await {
        Ok(report) => out.show(&report, |r| {
            for line in &r.indexed {
                outln!("indexed {line}");
            }
            for line in &r.removed {
                outln!("removed {line}");
            }
            for parameter in &r.unreadable {
                outln!("not indexed (no readable source.repository): {parameter}");
            }
            outln!(
                "{} config(s); {} entr(ies) written, {} removed",
                r.configs,
                r.indexed.len(),
                r.removed.len()
            )
        }),
        Err(e) => out.error(&e),
    }
}
