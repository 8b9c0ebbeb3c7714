//! [`Parameters`] over SSM Parameter Store.

use aws_sdk_ssm::types::{ParameterTier, ParameterType};

use crate::error::{StepError, StepResult};
use crate::ports::parameters::{Parameter, Parameters};

/// Standard-tier parameters hold at most 4 KiB; larger configs need the advanced tier.
const STANDARD_TIER_LIMIT: usize = 4096;

/// SSM through the SDK.
pub struct Ssm(pub aws_sdk_ssm::Client);

fn parameter(p: aws_sdk_ssm::types::Parameter) -> Parameter {
    Parameter {
        name: p.name.unwrap_or_default(),
        value: p.value.unwrap_or_default(),
        version: p.version,
    }
}

#[async_trait::async_trait]
impl Parameters for Ssm {
    async fn get(&self, name: &str) -> StepResult<Option<Parameter>> {
        match self
            .0
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
        {
            Ok(out) => Ok(out.parameter.map(parameter)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_parameter_not_found()) =>
            {
                Ok(None)
            }
            Err(e) => Err(StepError::from_sdk("ssm:GetParameter", e)),
        }
    }

    async fn get_many(&self, names: &[String]) -> StepResult<Vec<Parameter>> {
        let out = self
            .0
            .get_parameters()
            .set_names(Some(names.to_vec()))
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| StepError::from_sdk("ssm:GetParameters", e))?;
        Ok(out
            .parameters
            .unwrap_or_default()
            .into_iter()
            .map(parameter)
            .collect())
    }

    async fn by_path(&self, path: &str) -> StepResult<Vec<Parameter>> {
        let mut pages = self
            .0
            .get_parameters_by_path()
            .path(path)
            .recursive(false)
            .with_decryption(true)
            .into_paginator()
            .send();
        let mut all = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| StepError::from_sdk("ssm:GetParametersByPath", e))?;
            all.extend(
                page.parameters
                    .unwrap_or_default()
                    .into_iter()
                    .map(parameter),
            );
        }
        Ok(all)
    }

    async fn put(&self, name: &str, value: &str) -> StepResult<()> {
        let tier = if value.len() > STANDARD_TIER_LIMIT {
            ParameterTier::Advanced
        } else {
            ParameterTier::Standard
        };
        self.0
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(ParameterType::String)
            .tier(tier)
            .overwrite(true)
            .send()
            .await
            .map_err(|e| StepError::from_sdk("ssm:PutParameter", e))?;
        Ok(())
    }

    async fn delete(&self, name: &str) -> StepResult<bool> {
        match self.0.delete_parameter().name(name).send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_parameter_not_found()) =>
            {
                Ok(false)
            }
            Err(e) => Err(StepError::from_sdk("ssm:DeleteParameter", e)),
        }
    }
}
