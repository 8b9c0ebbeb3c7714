//! DynamoDB, as far as bluegreen's three tables use it: items read consistently, written with
//! conditions, in transactions, and read back through indexes.
//!
//! Conditions and updates are typed ([`Cond`], [`Update`]) rather than expression strings:
//! the DynamoDB adapter renders them (every name and value through a placeholder), the
//! in-memory world evaluates them. Everything the lock, the queue and the records promise
//! (a decision recorded once, a lock handed over with its holder's record in one transaction)
//! is built from these, in shared code, so both worlds run the same algorithms.

use serde_dynamo::{AttributeValue, Item};

use crate::error::StepResult;

/// A path to an attribute: `status`, or `approval.decision` for a nested one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Path(pub Vec<String>);

impl Path {
    /// `a.b.c` as a path.
    pub fn of(dotted: &str) -> Self {
        Path(dotted.split('.').map(str::to_owned).collect())
    }
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

/// A condition on an item, as DynamoDB's condition expressions state them. A comparison with
/// an absent attribute is false (as in DynamoDB).
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// `attribute_exists(path)`.
    Exists(Path),
    /// `attribute_not_exists(path)`.
    Absent(Path),
    /// `path = value`.
    Eq(Path, AttributeValue),
    /// `path <> value` (true when the attribute is absent, as in DynamoDB).
    Ne(Path, AttributeValue),
    /// `path < value` (strings and numbers).
    Lt(Path, AttributeValue),
    /// `path <= value`.
    Le(Path, AttributeValue),
    /// All of them.
    And(Vec<Cond>),
    /// Any of them.
    Or(Vec<Cond>),
}

impl Cond {
    /// `path = "value"`.
    pub fn eq_s(path: &str, value: &str) -> Self {
        Cond::Eq(Path::of(path), AttributeValue::S(value.to_owned()))
    }

    /// `attribute_exists(path)`.
    pub fn exists(path: &str) -> Self {
        Cond::Exists(Path::of(path))
    }

    /// `attribute_not_exists(path)`.
    pub fn absent(path: &str) -> Self {
        Cond::Absent(Path::of(path))
    }
}

/// One action of an update expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// `SET path = value` (a nested path's parent must exist).
    Set(Path, AttributeValue),
    /// `SET path = if_not_exists(path, value)`.
    SetIfAbsent(Path, AttributeValue),
    /// `SET to = from` (from another attribute of the same item; absent `from` fails).
    Copy {
        /// The attribute written.
        to: Path,
        /// The attribute read.
        from: Path,
    },
    /// `SET path = list_append(if_not_exists(path, []), values)`.
    Append(Path, Vec<AttributeValue>),
    /// `REMOVE path`.
    Remove(Path),
    /// `ADD path :set` on a string set.
    AddToSet(Path, Vec<String>),
    /// `DELETE path :set` on a string set.
    DeleteFromSet(Path, Vec<String>),
}

/// What a write does to its item.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    /// Replaces (or creates) the whole item.
    Put(Item),
    /// Changes attributes (creating the item when it does not exist).
    Update(Vec<Update>),
    /// Deletes the item (deleting a missing item is fine).
    Delete,
}

/// One write to one item, applied only if `condition` holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    /// The table's name.
    pub table: String,
    /// The item's key attributes.
    pub key: Item,
    /// What happens to it.
    pub op: WriteOp,
    /// Applied only if this holds (on the item as it was; absent item: no attributes).
    pub condition: Option<Cond>,
}

/// Which version of the item a write returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returns {
    /// Nothing.
    Nothing,
    /// The item before the write.
    Old,
    /// The item after the write.
    New,
}

/// The outcome of a conditional write.
#[derive(Debug, Clone, PartialEq)]
pub enum Written {
    /// Applied; the item asked for by [`Returns`] (`None` when it did not exist, or
    /// [`Returns::Nothing`]).
    Applied(Option<Item>),
    /// The condition did not hold: nothing was written.
    ConditionFailed,
}

/// A transaction that did not apply: which writes' conditions failed (by position). None of
/// them failed when DynamoDB cancelled it for a conflict with another write in flight (retry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancelled {
    /// For each write, whether its condition failed.
    pub failed: Vec<bool>,
}

/// A query of one partition of a table or index, in sort-key order.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The table's name.
    pub table: String,
    /// The index, or the table itself when `None`.
    pub index: Option<String>,
    /// The partition key's attribute name and value.
    pub partition: (String, AttributeValue),
    /// Descending sort-key order (newest first for time-sorted keys).
    pub descending: bool,
    /// At most this many items in the page.
    pub limit: Option<usize>,
    /// The page starts after this key (a previous page's [`Page::last_key`]).
    pub start_after: Option<Item>,
    /// Strongly consistent (tables only; index reads are eventually consistent in AWS).
    pub consistent: bool,
}

/// One page of a query or scan.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page {
    /// The items.
    pub items: Vec<Item>,
    /// Where the next page starts; `None` when this was the last.
    pub last_key: Option<Item>,
}

/// DynamoDB, as far as bluegreen's tables use it.
#[async_trait::async_trait]
pub trait Tables: Send + Sync {
    /// One item, read consistently (only the attributes named in `projection`, when given);
    /// `None` when there is none.
    async fn get(
        &self,
        table: &str,
        key: &Item,
        projection: Option<&[&str]>,
    ) -> StepResult<Option<Item>>;

    /// One conditional write.
    async fn write(&self, write: Write, returns: Returns) -> StepResult<Written>;

    /// Writes that all apply or none do (at most 100, each item once).
    async fn transact(&self, writes: Vec<Write>) -> StepResult<Result<(), Cancelled>>;

    /// One page of a query.
    async fn query(&self, query: &Query) -> StepResult<Page>;

    /// One page of a scan of the whole table, filtered (the filter applies after the read).
    async fn scan(
        &self,
        table: &str,
        filter: Option<&Cond>,
        start_after: Option<Item>,
    ) -> StepResult<Page>;
}
