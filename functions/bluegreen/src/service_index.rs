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

use serde_dynamo::{AttributeValue, Item};

use crate::context::Context;
use crate::error::StepResult;
use crate::ports::tables::{Cond, Path, Query, Returns, Update, Write, WriteOp};

const SERVICE_PARTITION: &str = "service";
const CURSOR_PARTITION: &str = "cursor";

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn repository_partition(repository: &str) -> String {
    format!("repository#{repository}")
}

fn key(pk: &str, sk: &str) -> Item {
    let mut key = Item::default();
    key.insert("pk".into(), s(pk));
    key.insert("sk".into(), s(sk));
    key
}

/// The string attribute `name` of `item`.
fn text(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Some(value.clone()),
        _ => None,
    }
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
    fn from_item(item: &Item) -> Option<Self> {
        let mut repositories = match item.get("repositories") {
            Some(AttributeValue::Ss(set)) => set.clone(),
            _ => Vec::new(),
        };
        repositories.sort();
        Some(IndexedService {
            service: text(item, "sk")?,
            repository: text(item, "repository").unwrap_or_default(),
            repositories,
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

    /// Every service indexed under `repository`, in name order (consistent reads: a config
    /// put a moment ago is seen).
    pub async fn watching(&self, repository: &str) -> StepResult<Vec<String>> {
        let items = self
            .query(&repository_partition(repository), None, None)
            .await?;
        Ok(items.iter().filter_map(|item| text(item, "sk")).collect())
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

    /// The next page of a bounded sweep that keeps its place in cursor `name`: up to `limit`
    /// service names after where its last run stopped.
    pub async fn next_page(&self, name: &str, limit: i32) -> StepResult<Vec<String>> {
        let after = self.cursor(name).await?;
        let page = self.services_after(after.as_deref(), limit).await?;
        Ok(page.into_iter().map(|s| s.service).collect())
    }

    /// Moves cursor `name` past `page` (a [`ServiceIndex::next_page`] of `limit`): a full page
    /// may have more after it, so the next run starts after its last service; a short one was
    /// the end, so the next run starts over. Returns where the next run starts.
    pub async fn move_past(
        &self,
        name: &str,
        page: &[String],
        limit: i32,
    ) -> StepResult<Option<String>> {
        let next = match page.last() {
            Some(last) if page.len() as i32 == limit => Some(last.clone()),
            _ => None,
        };
        self.set_cursor(name, next.as_deref()).await?;
        Ok(next)
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
        let entry_key = key(&repository_partition(repository), service);
        self.transact(vec![
            self.write(entry_key.clone(), WriteOp::Put(entry_key), None),
            self.write(
                key(SERVICE_PARTITION, service),
                WriteOp::Update(vec![
                    Update::Set(Path::of("repository"), s(repository)),
                    Update::AddToSet(Path::of("repositories"), vec![repository.to_owned()]),
                ]),
                None,
            ),
        ])
        .await
        .map(|_| ())
    }

    /// Removes `service`'s entry under `repository`, unless `repository` is what the service
    /// watches now (a concurrent put moved it back). `Ok(false)` when it was kept.
    pub async fn forget_repository(&self, service: &str, repository: &str) -> StepResult<bool> {
        self.transact(vec![
            self.write(
                key(&repository_partition(repository), service),
                WriteOp::Delete,
                None,
            ),
            self.write(
                key(SERVICE_PARTITION, service),
                WriteOp::Update(vec![Update::DeleteFromSet(
                    Path::of("repositories"),
                    vec![repository.to_owned()],
                )]),
                // Kept when the service watches `repository` again, or is gone from the index
                // (an Update would create its item again).
                Some(Cond::And(vec![
                    Cond::exists("pk"),
                    Cond::Ne(Path::of("repository"), s(repository)),
                ])),
            ),
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
        let mut writes: Vec<Write> = repositories
            .into_iter()
            .map(|repository| {
                self.write(
                    key(&repository_partition(repository), service),
                    WriteOp::Delete,
                    None,
                )
            })
            .collect();
        writes.push(self.write(key(SERVICE_PARTITION, service), WriteOp::Delete, None));
        // A transaction holds at most 100 items; a service never had that many repositories.
        self.transact(writes).await.map(|_| ())
    }

    /// Where the sweep `name` stopped (the last service it handled), if it did.
    pub async fn cursor(&self, name: &str) -> StepResult<Option<String>> {
        Ok(self
            .get(CURSOR_PARTITION, name)
            .await?
            .and_then(|item| text(&item, "resume_after")))
    }

    /// Records where the sweep `name` stopped; `None` starts the next run from the beginning.
    pub async fn set_cursor(&self, name: &str, after: Option<&str>) -> StepResult<()> {
        let update = match after {
            Some(after) => Update::Set(Path::of("resume_after"), s(after)),
            None => Update::Remove(Path::of("resume_after")),
        };
        self.ctx
            .ports
            .tables
            .write(
                self.write(
                    key(CURSOR_PARTITION, name),
                    WriteOp::Update(vec![update]),
                    None,
                ),
                Returns::Nothing,
            )
            .await?;
        Ok(())
    }

    fn write(&self, key: Item, op: WriteOp, condition: Option<Cond>) -> Write {
        Write {
            table: self.table().to_owned(),
            key,
            op,
            condition,
        }
    }

    async fn get(&self, pk: &str, sk: &str) -> StepResult<Option<Item>> {
        self.ctx
            .ports
            .tables
            .get(self.table(), &key(pk, sk), None)
            .await
    }

    /// The items of partition `pk` in sort order, after `after`, up to `limit` (all pages
    /// when `None`).
    async fn query(
        &self,
        pk: &str,
        after: Option<&str>,
        limit: Option<i32>,
    ) -> StepResult<Vec<Item>> {
        let mut items: Vec<Item> = Vec::new();
        let mut query = Query {
            table: self.table().to_owned(),
            index: None,
            partition: ("pk".to_owned(), s(pk)),
            descending: false,
            limit: None,
            start_after: after.map(|a| key(pk, a)),
            consistent: true,
        };
        loop {
            query.limit = limit.map(|l| (l as usize).saturating_sub(items.len()));
            let page = self.ctx.ports.tables.query(&query).await?;
            items.extend(page.items);
            query.start_after = page.last_key;
            let full = limit.is_some_and(|l| items.len() as i32 >= l);
            if query.start_after.is_none() || full {
                return Ok(items);
            }
        }
    }

    /// Runs a transaction; `Ok(false)` when a condition in it did not hold (nothing written).
    /// Cancelled for a conflict with another write, it is retryable.
    async fn transact(&self, writes: Vec<Write>) -> StepResult<bool> {
        match self.ctx.ports.tables.transact(writes).await? {
            Ok(()) => Ok(true),
            Err(cancelled) if cancelled.failed.iter().any(|f| *f) => Ok(false),
            Err(cancelled) => Err(crate::error::StepError::AwsTransient {
                operation: "dynamodb:TransactWriteItems",
                message: format!("transaction cancelled: {:?}", cancelled.failed),
            }),
        }
    }
}
