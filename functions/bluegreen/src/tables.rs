//! bluegreen's DynamoDB tables, declared once: their keys and the indexes every read in a
//! request path goes through (nothing there scans). The SAM template declares the same (a
//! stack test compares them), and `bluegreen init --local` and the test world create tables
//! from here, so the code, the stack and the emulator cannot disagree about a key.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::context::{Context, Settings};
use crate::error::{StepError, StepResult};

/// A global secondary index (every attribute projected: readers want whole records).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Index {
    /// The index name.
    pub name: &'static str,
    /// Its partition key.
    pub hash: &'static str,
    /// Its sort key.
    pub range: &'static str,
}

/// One table: its template resource, keys and indexes. Every key is a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    /// The `AWS::DynamoDB::Table` resource in `infra/template.yaml`.
    pub resource: &'static str,
    /// Partition key.
    pub hash: &'static str,
    /// Sort key, if any.
    pub range: Option<&'static str>,
    /// Global secondary indexes.
    pub indexes: &'static [Index],
}

/// Deployment records by service, newest first (`history`, `status`, manual rollback).
pub const BY_SERVICE: Index = Index {
    name: "by_service",
    hash: "service",
    range: "created_at",
};
/// Deployment records by status (the console's pending approvals).
pub const BY_STATUS: Index = Index {
    name: "by_status",
    hash: "status",
    range: "created_at",
};
/// Every deployment record in one partition, newest first (the console's recent list). One
/// partition takes ~1,000 writes a second; a bluegreen account writes a few a minute.
pub const RECENT: Index = Index {
    name: "recent",
    hash: "listed",
    range: "created_at",
};

/// Deployment records (see `crate::record`).
pub const DEPLOYMENTS: Table = Table {
    resource: "DeploymentsTable",
    hash: "deployment_id",
    range: None,
    indexes: &[BY_SERVICE, BY_STATUS, RECENT],
};
/// Per-service locks (see `crate::lock`).
pub const LOCKS: Table = Table {
    resource: "LocksTable",
    hash: "service",
    range: None,
    indexes: &[],
};
/// The service index: which services watch a repository, every service, and housekeeping
/// cursors (see `crate::service_index`).
pub const SERVICES: Table = Table {
    resource: "ServicesTable",
    hash: "pk",
    range: Some("sk"),
    indexes: &[],
};

/// Every table of the stack.
pub const TABLES: &[Table] = &[DEPLOYMENTS, LOCKS, SERVICES];

impl Table {
    /// This table's name in `settings`.
    pub fn name<'a>(&self, settings: &'a Settings) -> &'a str {
        match self.resource {
            "DeploymentsTable" => &settings.deployments_table,
            "LocksTable" => &settings.locks_table,
            _ => &settings.services_table,
        }
    }

    /// Every attribute a key of the table or of an index names, once.
    pub fn key_attributes(&self) -> Vec<&'static str> {
        let mut names = vec![self.hash];
        names.extend(self.range);
        for index in self.indexes {
            names.extend([index.hash, index.range]);
        }
        let mut seen = Vec::new();
        names.retain(|n| {
            let new = !seen.contains(n);
            seen.push(n);
            new
        });
        names
    }
}

fn key(name: &str, kind: KeyType) -> StepResult<KeySchemaElement> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(|e| StepError::Internal(format!("key {name}: {e}")))
}

/// Creates `table` under its name in the context's settings, on demand billing. `Ok(false)`
/// when a table of that name exists already (its keys are not compared: `bluegreen doctor`
/// does that).
pub async fn create(ctx: &Context, table: &Table) -> StepResult<bool> {
    let name = table.name(&ctx.settings);
    let mut request = ctx
        .sdk()?
        .dynamodb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(table.hash, KeyType::Hash)?);
    if let Some(range) = table.range {
        request = request.key_schema(key(range, KeyType::Range)?);
    }
    for attribute in table.key_attributes() {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attribute)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| StepError::Internal(format!("attribute {attribute}: {e}")))?,
        );
    }
    for index in table.indexes {
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(index.name)
                .key_schema(key(index.hash, KeyType::Hash)?)
                .key_schema(key(index.range, KeyType::Range)?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .map_err(|e| StepError::Internal(format!("index {}: {e}", index.name)))?,
        );
    }
    match request.send().await {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some("ResourceInUseException") => Ok(false),
        Err(e) => Err(StepError::from_sdk("dynamodb:CreateTable", e)),
    }
}

/// What is missing of `table` in the account: `None` when all of it is there, else the table
/// itself (`Some(vec![])`) or the names of its missing indexes.
pub async fn missing(ctx: &Context, table: &Table) -> StepResult<Option<Vec<&'static str>>> {
    let name = table.name(&ctx.settings);
    let out = ctx
        .sdk()?
        .dynamodb
        .describe_table()
        .table_name(name)
        .send()
        .await;
    let described = match out {
        Ok(out) => out.table,
        Err(e) if e.code() == Some("ResourceNotFoundException") => return Ok(Some(Vec::new())),
        Err(e) => return Err(StepError::from_sdk("dynamodb:DescribeTable", e)),
    };
    let Some(described) = described else {
        return Ok(Some(Vec::new()));
    };
    let present: Vec<&str> = described
        .global_secondary_indexes()
        .iter()
        .filter_map(|i| i.index_name.as_deref())
        .collect();
    let absent: Vec<&'static str> = table
        .indexes
        .iter()
        .map(|i| i.name)
        .filter(|n| !present.contains(n))
        .collect();
    Ok((!absent.is_empty()).then_some(absent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_attributes_name_each_attribute_once() {
        assert_eq!(
            DEPLOYMENTS.key_attributes(),
            ["deployment_id", "service", "created_at", "status", "listed"]
        );
        assert_eq!(SERVICES.key_attributes(), ["pk", "sk"]);
    }
}
