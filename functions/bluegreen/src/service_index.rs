//! The service index (DynamoDB, [`crate::tables::SERVICES`]): which services watch an ECR
//! repository, so intake reads only the configs a push can match — one Query and one
//! `GetParameters` per ten matching services, however many services the account has.
//!
//! Items (`pk`, `sk`):
//! - `repository#<repository>`, `<service>`: the service watches the repository.
//! - `service`, `<service>`: every indexed service, with `repository` (what it watches now)
//!   and `repositories` (every repository entry written for it and not yet removed), so a
//!   service that moved repository has its old entry found and removed without a scan.
//! - `cursor`, `<name>`: where a bounded sweep (the teardown) stopped.
//!
//! SSM stays the source of truth. The index may name more than is true (an entry whose
//! config moved or went: readers check every config they load against the repository, and
//! skip it), never less: `ConfigStore::put` writes the entry before the parameter and removes
//! the old one after, and a parameter written by any other tool is indexed by the
//! `index_config` function on SSM's change event (or `bluegreen config reindex`).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};

use aws_sdk_dynamodb::error::SdkError;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::context::Context;
use crate::error::{StepError, StepResult, in_table};

const SERVICE_PARTITION: &str = "service";
const CURSOR_PARTITION: &str = "cursor";

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn repository_partition(repository: &str) -> String {
    format!("repository#{repository}")
}

fn key(pk: &str, sk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

/// What the index knows of one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedService {
    /// The service.
    pub service: String,
    /// The repository it watches, as last indexed.
    pub repository: String,
    /// Every repository it has an entry under (normally just `repository`).
    pub repositories: Vec<String>,
}

impl IndexedService {
    fn from_item(item: &HashMap<String, AttributeValue>) -> Option<Self> {
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        Some(IndexedService {
            service: text("sk")?,
            repository: text("repository").unwrap_or_default(),
            repositories: item
                .get("repositories")
                .and_then(|v| v.as_ss().ok())
                .cloned()
                .unwrap_or_default(),
        })
    }
}

/// The service index table of the context.
pub struct ServiceIndex<'a> {
    ctx: &'a Context,
}

impl<'a> ServiceIndex<'a> {
    /// The index in `ctx.settings.services_table`.
    pub fn new(ctx: &'a Context) -> Self {
        ServiceIndex { ctx }
    }

    fn table(&self) -> &str {
        &self.ctx.settings.services_table
    }

    fn error<E>(&self, operation: &'static str, e: SdkError<E, HttpResponse>) -> StepError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        in_table(StepError::from_sdk(operation, e), self.table())
    }

    /// Every service indexed under `repository`, in name order (consistent reads: a config
    /// put a moment ago is seen).
    pub async fn watching(&self, repository: &str) -> StepResult<Vec<String>> {
        let items = self
            .query(&repository_partition(repository), None, None)
            .await?;
        Ok(items
            .iter()
            .filter_map(|item| item.get("sk")?.as_s().ok().cloned())
            .collect())
    }

    /// Up to `limit` indexed services after `after` in name order (all of them from the
    /// start when `after` is `None`): a bounded sweep's page.
    pub async fn services_after(
        &self,
        after: Option<&str>,
        limit: i32,
    ) -> StepResult<Vec<IndexedService>> {
        let items = self.query(SERVICE_PARTITION, after, Some(limit)).await?;
        Ok(items.iter().filter_map(IndexedService::from_item).collect())
    }

    /// What the index knows of `service`, if anything.
    pub async fn service(&self, service: &str) -> StepResult<Option<IndexedService>> {
        Ok(self
            .get(SERVICE_PARTITION, service)
            .await?
            .as_ref()
            .and_then(IndexedService::from_item))
    }

    /// Records that `service` watches `repository` (the entry and the service's item, in one
    /// transaction). Writing what is already there changes nothing.
    pub async fn add(&self, service: &str, repository: &str) -> StepResult<()> {
        let entry = Put::builder()
            .table_name(self.table())
            .set_item(Some(key(&repository_partition(repository), service)))
            .build()
            .map_err(|e| StepError::Internal(format!("index entry: {e}")))?;
        let item = Update::builder()
            .table_name(self.table())
            .set_key(Some(key(SERVICE_PARTITION, service)))
            .update_expression("SET repository = :r ADD repositories :rs")
            .expression_attribute_values(":r", s(repository))
            .expression_attribute_values(":rs", AttributeValue::Ss(vec![repository.to_owned()]))
            .build()
            .map_err(|e| StepError::Internal(format!("index service item: {e}")))?;
        self.transact(vec![
            TransactWriteItem::builder().put(entry).build(),
            TransactWriteItem::builder().update(item).build(),
        ])
        .await
        .map(|_| ())
    }

    /// Removes `service`'s entry under `repository`, unless `repository` is what the service
    /// watches now (a concurrent put moved it back). `Ok(false)` when it was kept.
    pub async fn forget_repository(&self, service: &str, repository: &str) -> StepResult<bool> {
        let entry = Delete::builder()
            .table_name(self.table())
            .set_key(Some(key(&repository_partition(repository), service)))
            .build()
            .map_err(|e| StepError::Internal(format!("index entry: {e}")))?;
        let item = Update::builder()
            .table_name(self.table())
            .set_key(Some(key(SERVICE_PARTITION, service)))
            .update_expression("DELETE repositories :rs")
            // Kept when the service watches `repository` again, or is gone from the index
            // (an Update would create its item again).
            .condition_expression("attribute_exists(pk) AND repository <> :r")
            .expression_attribute_values(":r", s(repository))
            .expression_attribute_values(":rs", AttributeValue::Ss(vec![repository.to_owned()]))
            .build()
            .map_err(|e| StepError::Internal(format!("index service item: {e}")))?;
        self.transact(vec![
            TransactWriteItem::builder().delete(entry).build(),
            TransactWriteItem::builder().update(item).build(),
        ])
        .await
    }

    /// Removes `service` from the index: every entry it has, then its item.
    pub async fn remove(&self, service: &str) -> StepResult<()> {
        let Some(known) = self.service(service).await? else {
            return Ok(());
        };
        // Each item once: a transaction refuses two operations on the same item.
        let repositories: std::collections::BTreeSet<&String> = known
            .repositories
            .iter()
            .chain([&known.repository])
            .filter(|r| !r.is_empty())
            .collect();
        let mut writes: Vec<TransactWriteItem> = Vec::new();
        for repository in repositories {
            let delete = Delete::builder()
                .table_name(self.table())
                .set_key(Some(key(&repository_partition(repository), service)))
                .build()
                .map_err(|e| StepError::Internal(format!("index entry: {e}")))?;
            writes.push(TransactWriteItem::builder().delete(delete).build());
        }
        let item = Delete::builder()
            .table_name(self.table())
            .set_key(Some(key(SERVICE_PARTITION, service)))
            .build()
            .map_err(|e| StepError::Internal(format!("index service item: {e}")))?;
        writes.push(TransactWriteItem::builder().delete(item).build());
        // A transaction holds at most 100 items; a service never had that many repositories.
        self.transact(writes).await.map(|_| ())
    }

    /// Where the sweep `name` stopped (the last service it handled), if it did.
    pub async fn cursor(&self, name: &str) -> StepResult<Option<String>> {
        Ok(self
            .get(CURSOR_PARTITION, name)
            .await?
            .and_then(|item| item.get("resume_after")?.as_s().ok().cloned()))
    }

    /// Records where the sweep `name` stopped; `None` starts the next run from the beginning.
    pub async fn set_cursor(&self, name: &str, after: Option<&str>) -> StepResult<()> {
        let request = self
            .ctx
            .dynamodb
            .update_item()
            .table_name(self.table())
            .set_key(Some(key(CURSOR_PARTITION, name)));
        let request = match after {
            Some(after) => request
                .update_expression("SET resume_after = :a")
                .expression_attribute_values(":a", s(after)),
            None => request.update_expression("REMOVE resume_after"),
        };
        request
            .send()
            .await
            .map_err(|e| self.error("dynamodb:UpdateItem", e))?;
        Ok(())
    }

    async fn get(&self, pk: &str, sk: &str) -> StepResult<Option<HashMap<String, AttributeValue>>> {
        let out = self
            .ctx
            .dynamodb
            .get_item()
            .table_name(self.table())
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error("dynamodb:GetItem", e))?;
        Ok(out.item)
    }

    /// The items of partition `pk` in sort order, after `after`, up to `limit` (all pages
    /// when `None`).
    async fn query(
        &self,
        pk: &str,
        after: Option<&str>,
        limit: Option<i32>,
    ) -> StepResult<Vec<HashMap<String, AttributeValue>>> {
        let mut items = Vec::new();
        let mut start = after.map(|a| key(pk, a));
        loop {
            let out = self
                .ctx
                .dynamodb
                .query()
                .table_name(self.table())
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(pk))
                .consistent_read(true)
                .set_limit(limit.map(|l| l - items.len() as i32))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| self.error("dynamodb:Query", e))?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            let full = limit.is_some_and(|l| items.len() as i32 >= l);
            if start.is_none() || full {
                return Ok(items);
            }
        }
    }

    /// Runs a transaction; `Ok(false)` when a condition in it did not hold (nothing written).
    async fn transact(&self, items: Vec<TransactWriteItem>) -> StepResult<bool> {
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
        match self
            .ctx
            .dynamodb
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c))
                    if c.cancellation_reasons()
                        .iter()
                        .any(|r| r.code() == Some("ConditionalCheckFailed")) =>
                {
                    Ok(false)
                }
                _ => Err(self.error("dynamodb:TransactWriteItems", e)),
            },
        }
    }
}
