//! Service configs in SSM Parameter Store: one JSON parameter per service under one prefix,
//! found by repository through the service index ([`crate::service_index`]), so reading the
//! configs a push can match costs the same with one service or a thousand.

use crate::config::ServiceConfig;
use crate::context::Context;
use crate::error::{StepError, StepResult};
use crate::ports::parameters::Parameter;
use crate::service_index::ServiceIndex;

/// `GetParameters` takes at most ten names a call.
const GET_PARAMETERS_MAX: usize = 10;

/// What `reindex` changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Reindexed {
    /// Configs under the prefix (valid or not).
    pub configs: usize,
    /// `service -> repository` entries written (missing or moved).
    pub indexed: Vec<String>,
    /// Entries removed (their config is gone or watches another repository).
    pub removed: Vec<String>,
    /// Parameters whose repository cannot be read: not indexed, listed for people.
    pub unreadable: Vec<String>,
}

/// Reads and writes service configs under the context's prefix.
pub struct ConfigStore<'a> {
    ctx: &'a Context,
}

impl<'a> ConfigStore<'a> {
    /// Configs under `ctx.settings.config_prefix`.
    pub fn new(ctx: &'a Context) -> Self {
        ConfigStore { ctx }
    }

    /// The parameter name of a service's config.
    pub fn parameter_name(&self, service: &str) -> String {
        format!("{}{service}", self.ctx.settings.config_prefix)
    }

    /// Loads every config under the prefix. A config that does not parse or validate fails the
    /// whole load with every problem listed, naming the parameter: a broken config must be
    /// fixed, not silently skipped.
    pub async fn load_all(&self) -> StepResult<Vec<ServiceConfig>> {
        let mut configs = Vec::new();
        let mut problems = Vec::new();
        for stored in self.load_each().await? {
            match stored {
                Ok(config) => configs.push(config),
                Err(invalid) => problems.extend(invalid.problems),
            }
        }
        if !problems.is_empty() {
            return Err(StepError::ConfigInvalid(problems));
        }
        configs.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(configs)
    }

    /// Loads every config under the prefix, each on its own: a config that does not parse or
    /// validate is returned as [`InvalidConfig`] beside the good ones, so one team's broken
    /// config stops only that team's deployments. Reads every parameter: for people's
    /// commands and the reindex, never a request path (intake reads [`ConfigStore::watching`]).
    pub async fn load_each(&self) -> StepResult<Vec<Result<ServiceConfig, InvalidConfig>>> {
        let parameters = self
            .ctx
            .ports
            .parameters
            .by_path(self.ctx.settings.config_prefix.trim_end_matches('/'))
            .await?;
        let mut configs = Vec::new();
        for parameter in parameters {
            configs.push(stored(parameter)?);
        }
        Ok(configs)
    }

    /// The configs of the services the index names for `repository`, each on its own as in
    /// [`ConfigStore::load_each`]. Index entries whose config is gone or watches another
    /// repository now are skipped (the index may name more than is true, never less).
    pub async fn watching(
        &self,
        repository: &str,
    ) -> StepResult<Vec<Result<ServiceConfig, InvalidConfig>>> {
        let services = ServiceIndex::new(self.ctx).watching(repository).await?;
        let mut found = Vec::new();
        for stored in self.load_many(&services).await? {
            let watches = match &stored {
                Ok(config) => config.source.repository == repository,
                Err(bad) => bad.repository.as_deref() == Some(repository),
            };
            if watches {
                found.push(stored);
            } else {
                tracing::info!(%repository, "index entry of a config that moved skipped");
            }
        }
        Ok(found)
    }

    /// The configs of `services` (ten a `GetParameters` call), each on its own; a service
    /// without a parameter is left out.
    pub async fn load_many(
        &self,
        services: &[String],
    ) -> StepResult<Vec<Result<ServiceConfig, InvalidConfig>>> {
        let mut configs = Vec::new();
        for chunk in services.chunks(GET_PARAMETERS_MAX) {
            let names: Vec<String> = chunk.iter().map(|s| self.parameter_name(s)).collect();
            let mut parameters = self.ctx.ports.parameters.get_many(&names).await?;
            // GetParameters answers in no particular order: sorted by name, the same push
            // prepares its services in the same order every time.
            parameters.sort_by(|a, b| a.name.cmp(&b.name));
            for parameter in parameters {
                configs.push(stored(parameter)?);
            }
        }
        Ok(configs)
    }

    /// Makes the index agree with the parameters under the prefix: every config indexed
    /// under the repository it names, every other entry removed. For configs written by
    /// other tools than `bluegreen config put`; the `index_config` function does the same for
    /// one parameter on each SSM change event.
    pub async fn reindex(&self) -> StepResult<Reindexed> {
        let index = ServiceIndex::new(self.ctx);
        let mut report = Reindexed::default();
        let mut listed = Vec::new();
        for stored in self.load_each().await? {
            report.configs += 1;
            let (service, repository) = match &stored {
                Ok(c) => (c.name.clone(), Some(c.source.repository.clone())),
                Err(bad) => (bad.service.clone(), bad.repository.clone()),
            };
            let Some(repository) = repository else {
                let parameter = stored.err().map(|b| b.parameter).unwrap_or_default();
                report.unreadable.push(parameter);
                continue;
            };
            if self.index_one(&service, &repository).await? {
                report.indexed.push(format!("{service} -> {repository}"));
            }
            report
                .removed
                .extend(self.forget_others(&service, &repository).await?);
            listed.push(service);
        }
        let mut after: Option<String> = None;
        loop {
            let page = index.services_after(after.as_deref(), 100).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.service.clone());
            for known in page {
                if !listed.contains(&known.service) {
                    index.remove(&known.service).await?;
                    report
                        .removed
                        .push(format!("{} (no config)", known.service));
                }
            }
        }
        Ok(report)
    }

    /// Indexes one parameter as it is now (the SSM change event's handler): its repository's
    /// entry written, any other removed; a deleted parameter is removed from the index.
    pub async fn reindex_parameter(&self, parameter: &str) -> StepResult<Reindexed> {
        let Some(service) = parameter.strip_prefix(&self.ctx.settings.config_prefix) else {
            return Ok(Reindexed::default()); // not a service config
        };
        let mut report = Reindexed::default();
        match self.load_many(&[service.to_owned()]).await?.pop() {
            None => {
                ServiceIndex::new(self.ctx).remove(service).await?;
                report.removed.push(format!("{service} (no config)"));
            }
            Some(stored) => {
                report.configs = 1;
                let repository = match &stored {
                    Ok(c) => Some(c.source.repository.clone()),
                    Err(bad) => bad.repository.clone(),
                };
                match repository {
                    Some(repository) => {
                        if self.index_one(service, &repository).await? {
                            report.indexed.push(format!("{service} -> {repository}"));
                        }
                        report
                            .removed
                            .extend(self.forget_others(service, &repository).await?);
                    }
                    None => report.unreadable.push(parameter.to_owned()),
                }
            }
        }
        Ok(report)
    }

    /// Writes `service -> repository` unless the index has it already; `true` if written.
    async fn index_one(&self, service: &str, repository: &str) -> StepResult<bool> {
        let index = ServiceIndex::new(self.ctx);
        let known = index.service(service).await?;
        if known.as_ref().is_some_and(|k| {
            k.repository == repository && k.repositories.iter().any(|r| r == repository)
        }) {
            return Ok(false);
        }
        index.add(service, repository).await?;
        Ok(true)
    }

    /// Removes `service`'s entries under every repository but `keep`.
    async fn forget_others(&self, service: &str, keep: &str) -> StepResult<Vec<String>> {
        let index = ServiceIndex::new(self.ctx);
        let mut removed = Vec::new();
        let Some(known) = index.service(service).await? else {
            return Ok(removed);
        };
        for old in known.repositories.iter().filter(|r| r.as_str() != keep) {
            if index.forget_repository(service, old).await? {
                removed.push(format!("{service} -> {old}"));
            }
        }
        Ok(removed)
    }

    /// Deletes a service's config and its index entries. Deleting a config that is not there
    /// is [`StepError::ServiceNotFound`]; its index entries are removed all the same.
    pub async fn delete(&self, service: &str) -> StepResult<()> {
        // The parameter first: an entry without a config is skipped by readers, a config
        // without an entry would be missed.
        let missing = !self
            .ctx
            .ports
            .parameters
            .delete(&self.parameter_name(service))
            .await?;
        ServiceIndex::new(self.ctx).remove(service).await?;
        if missing {
            return Err(StepError::ServiceNotFound(service.to_owned()));
        }
        Ok(())
    }

    /// Loads one service's config; [`StepError::ServiceNotFound`] if there is none.
    pub async fn load(&self, service: &str) -> StepResult<ServiceConfig> {
        let name = self.parameter_name(service);
        match self.ctx.ports.parameters.get(&name).await? {
            Some(parameter) => parse(&name, &parameter.value),
            None => Err(StepError::ServiceNotFound(service.to_owned())),
        }
    }

    /// Validates and stores a config (overwriting the previous version). Nothing is written
    /// when validation fails.
    ///
    /// The index entry is written before the parameter, and the entry of a repository the
    /// service watched before is removed after: stopped anywhere, the index names at least
    /// what SSM holds (a config is never missed by intake; a stale entry is skipped).
    pub async fn put(&self, config: &ServiceConfig) -> StepResult<()> {
        config.validate()?;
        let repository = &config.source.repository;
        self.index_one(&config.name, repository).await?;
        self.store(config).await?;
        self.forget_others(&config.name, repository).await?;
        Ok(())
    }

    async fn store(&self, config: &ServiceConfig) -> StepResult<()> {
        self.ctx
            .ports
            .parameters
            .put(&self.parameter_name(&config.name), &config.to_json())
            .await
    }
}

/// One stored parameter, parsed: the config, or what can be read of an invalid one.
fn stored(parameter: Parameter) -> StepResult<Result<ServiceConfig, InvalidConfig>> {
    let Parameter {
        name,
        value,
        version,
    } = parameter;
    match parse(&name, &value) {
        Ok(config) => Ok(Ok(config)),
        Err(StepError::ConfigInvalid(problems)) => {
            Ok(Err(InvalidConfig::new(&name, version, &value, problems)))
        }
        Err(other) => Err(other),
    }
}

/// A stored config that does not parse or validate, with what can still be read from it.
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidConfig {
    /// The SSM parameter.
    pub parameter: String,
    /// The service it is for: its `name` if that much is readable, else the parameter's last
    /// path segment.
    pub service: String,
    /// The repository it watches, if that much is readable: an invalid config whose push
    /// arrives is reported for that service, not ignored.
    pub repository: Option<String>,
    /// Every problem, prefixed with the parameter name.
    pub problems: Vec<String>,
    /// The parameter's version: people are told once per version.
    pub version: i64,
}

impl InvalidConfig {
    fn new(parameter: &str, version: i64, value: &str, problems: Vec<String>) -> Self {
        let raw: serde_json::Value = serde_json::from_str(value).unwrap_or_default();
        InvalidConfig {
            parameter: parameter.to_owned(),
            service: raw["name"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| parameter.rsplit('/').next().unwrap_or_default().to_owned()),
            repository: raw["source"]["repository"].as_str().map(str::to_owned),
            problems,
            version,
        }
    }

    /// The error a push for this service gets.
    pub fn error(&self) -> StepError {
        StepError::ConfigInvalid(self.problems.clone())
    }
}

/// Parses and validates one stored config, prefixing problems with the parameter name.
fn parse(parameter: &str, value: &str) -> StepResult<ServiceConfig> {
    let config = ServiceConfig::from_json(value).map_err(|e| prefix(parameter, e))?;
    config.validate().map_err(|e| prefix(parameter, e))?;
    Ok(config)
}

fn prefix(parameter: &str, err: StepError) -> StepError {
    match err {
        StepError::ConfigInvalid(problems) => StepError::ConfigInvalid(
            problems
                .into_iter()
                .map(|p| format!("{parameter}: {p}"))
                .collect(),
        ),
        other => other,
    }
}
