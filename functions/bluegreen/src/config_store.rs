//! Service configs in SSM Parameter Store: one JSON parameter per service under one prefix.

use aws_sdk_ssm::types::{ParameterTier, ParameterType};

use crate::config::ServiceConfig;
use crate::context::Context;
use crate::error::{StepError, StepResult};

/// Standard-tier parameters hold at most 4 KiB; larger configs need the advanced tier.
const STANDARD_TIER_LIMIT: usize = 4096;

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
    /// config stops only that team's deployments (intake and teardown use this).
    pub async fn load_each(&self) -> StepResult<Vec<Result<ServiceConfig, InvalidConfig>>> {
        let mut pages = self
            .ctx
            .ssm
            .get_parameters_by_path()
            .path(self.ctx.settings.config_prefix.trim_end_matches('/'))
            .recursive(false)
            .with_decryption(true)
            .into_paginator()
            .send();
        let mut configs = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| StepError::from_sdk("ssm:GetParametersByPath", e))?;
            for parameter in page.parameters.unwrap_or_default() {
                let name = parameter.name.unwrap_or_default();
                let value = parameter.value.unwrap_or_default();
                configs.push(match parse(&name, &value) {
                    Ok(config) => Ok(config),
                    Err(StepError::ConfigInvalid(problems)) => Err(InvalidConfig::new(
                        &name,
                        parameter.version,
                        &value,
                        problems,
                    )),
                    Err(other) => return Err(other),
                });
            }
        }
        Ok(configs)
    }

    /// Loads one service's config; [`StepError::ServiceNotFound`] if there is none.
    pub async fn load(&self, service: &str) -> StepResult<ServiceConfig> {
        let name = self.parameter_name(service);
        let out = self
            .ctx
            .ssm
            .get_parameter()
            .name(&name)
            .with_decryption(true)
            .send()
            .await;
        match out {
            Ok(out) => {
                let value = out.parameter.and_then(|p| p.value).unwrap_or_default();
                parse(&name, &value)
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_parameter_not_found()) =>
            {
                Err(StepError::ServiceNotFound(service.to_owned()))
            }
            Err(e) => Err(StepError::from_sdk("ssm:GetParameter", e)),
        }
    }

    /// Validates and stores a config (overwriting the previous version). Nothing is written
    /// when validation fails.
    pub async fn put(&self, config: &ServiceConfig) -> StepResult<()> {
        config.validate()?;
        let value = config.to_json();
        let tier = if value.len() > STANDARD_TIER_LIMIT {
            ParameterTier::Advanced
        } else {
            ParameterTier::Standard
        };
        self.ctx
            .ssm
            .put_parameter()
            .name(self.parameter_name(&config.name))
            .value(value)
            .r#type(ParameterType::String)
            .tier(tier)
            .overwrite(true)
            .send()
            .await
            .map_err(|e| StepError::from_sdk("ssm:PutParameter", e))?;
        Ok(())
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
