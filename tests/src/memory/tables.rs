//! A small DynamoDB: bluegreen's three tables with their keys and indexes, conditional writes,
//! transactions, queries and scans — the typed conditions and updates of
//! [`bluegreen::ports::tables`] evaluated on items held in order.
//!
//! Where DynamoDB would refuse (a nested path under a missing parent, `Copy` from a missing
//! attribute, one item twice in a transaction) this refuses too, with DynamoDB's error code.
//! Index reads here are consistent; DynamoDB's are eventually consistent (listed in
//! docs/simulation.md as a known divergence).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use bluegreen::StepError;
use bluegreen::ports::tables::{
    Cancelled, Cond, Page, Path, Query, Returns, Update, Write, WriteOp, Written,
};
use bluegreen::tables::Table;
use serde_dynamo::{AttributeValue, Item};

/// One table: its declaration and its items by key (partition, sort).
#[derive(Debug, Clone)]
pub struct MemoryTable {
    declaration: Table,
    items: BTreeMap<(String, String), Item>,
}

/// Every table by name.
#[derive(Debug, Clone, Default)]
pub struct MemoryTables {
    tables: BTreeMap<String, MemoryTable>,
}

fn validation(message: impl Into<String>) -> StepError {
    StepError::Aws {
        operation: "dynamodb",
        code: "ValidationException".into(),
        message: message.into(),
    }
}

fn string_of(value: Option<&AttributeValue>) -> Option<String> {
    match value {
        Some(AttributeValue::S(s)) => Some(s.clone()),
        _ => None,
    }
}

/// The attribute at `path`, following nested maps.
fn lookup<'a>(item: &'a Item, path: &Path) -> Option<&'a AttributeValue> {
    let (first, rest) = path.0.split_first()?;
    let mut value = item.get(first)?;
    for part in rest {
        match value {
            AttributeValue::M(map) => value = map.get(part)?,
            _ => return None,
        }
    }
    Some(value)
}

/// Compares two values as DynamoDB orders them: strings by bytes, numbers as numbers; other
/// pairs do not compare.
fn compare(a: &AttributeValue, b: &AttributeValue) -> Option<Ordering> {
    match (a, b) {
        (AttributeValue::S(a), AttributeValue::S(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        (AttributeValue::N(a), AttributeValue::N(b)) => {
            a.parse::<f64>().ok()?.partial_cmp(&b.parse::<f64>().ok()?)
        }
        _ => None,
    }
}

/// Whether `cond` holds on `item` (an absent item has no attributes).
pub fn holds(cond: &Cond, item: &Item) -> bool {
    match cond {
        Cond::Exists(p) => lookup(item, p).is_some(),
        Cond::Absent(p) => lookup(item, p).is_none(),
        Cond::Eq(p, v) => lookup(item, p).is_some_and(|a| a == v),
        Cond::Ne(p, v) => lookup(item, p).is_none_or(|a| a != v),
        Cond::Lt(p, v) => lookup(item, p).and_then(|a| compare(a, v)) == Some(Ordering::Less),
        Cond::Le(p, v) => matches!(
            lookup(item, p).and_then(|a| compare(a, v)),
            Some(Ordering::Less | Ordering::Equal)
        ),
        Cond::And(all) => all.iter().all(|c| holds(c, item)),
        Cond::Or(any) => any.iter().any(|c| holds(c, item)),
    }
}

/// The map that holds `path`'s last part, creating nothing: a missing parent is DynamoDB's
/// "document path invalid" refusal.
fn parent_mut<'a>(
    item: &'a mut Item,
    path: &Path,
) -> Result<
    (
        &'a mut std::collections::HashMap<String, AttributeValue>,
        String,
    ),
    StepError,
> {
    let (last, parents) = path
        .0
        .split_last()
        .ok_or_else(|| validation("an empty attribute path"))?;
    let mut map = item.inner_mut();
    for part in parents {
        map = match map.get_mut(part) {
            Some(AttributeValue::M(inner)) => inner,
            _ => {
                return Err(validation(format!(
                    "The document path provided in the update expression is invalid for \
                     update: {path}"
                )));
            }
        };
    }
    Ok((map, last.clone()))
}

/// Applies one update action to `item`.
fn apply(item: &mut Item, update: &Update) -> Result<(), StepError> {
    match update {
        Update::Set(p, v) => {
            let (map, last) = parent_mut(item, p)?;
            map.insert(last, v.clone());
        }
        Update::SetIfAbsent(p, v) => {
            if lookup(item, p).is_none() {
                let (map, last) = parent_mut(item, p)?;
                map.insert(last, v.clone());
            }
        }
        Update::Copy { to, from } => {
            let value = lookup(item, from).cloned().ok_or_else(|| {
                validation(format!(
                    "The provided expression refers to an attribute that does not exist in \
                     the item: {from}"
                ))
            })?;
            let (map, last) = parent_mut(item, to)?;
            map.insert(last, value);
        }
        Update::Append(p, values) => {
            let mut list = match lookup(item, p) {
                Some(AttributeValue::L(list)) => list.clone(),
                None => Vec::new(),
                Some(_) => return Err(validation(format!("{p} is not a list"))),
            };
            list.extend(values.iter().cloned());
            let (map, last) = parent_mut(item, p)?;
            map.insert(last, AttributeValue::L(list));
        }
        Update::Remove(p) => {
            let (map, last) = parent_mut(item, p)?;
            map.remove(&last);
        }
        Update::AddToSet(p, members) => {
            if members.is_empty() {
                return Err(validation("An string set may not be empty"));
            }
            let mut set = match lookup(item, p) {
                Some(AttributeValue::Ss(set)) => set.clone(),
                None => Vec::new(),
                Some(_) => return Err(validation(format!("{p} is not a string set"))),
            };
            for member in members {
                if !set.contains(member) {
                    set.push(member.clone());
                }
            }
            let (map, last) = parent_mut(item, p)?;
            map.insert(last, AttributeValue::Ss(set));
        }
        Update::DeleteFromSet(p, members) => {
            if let Some(other) = lookup(item, p)
                && !matches!(other, AttributeValue::Ss(_))
            {
                return Err(validation(format!("{p} is not a string set")));
            }
            if let Some(AttributeValue::Ss(set)) = lookup(item, p) {
                let left: Vec<String> = set
                    .iter()
                    .filter(|m| !members.contains(m))
                    .cloned()
                    .collect();
                let (map, last) = parent_mut(item, p)?;
                // DynamoDB keeps no empty sets: the attribute goes.
                if left.is_empty() {
                    map.remove(&last);
                } else {
                    map.insert(last, AttributeValue::Ss(left));
                }
            }
        }
    }
    Ok(())
}

impl MemoryTables {
    /// The declared tables under the names `name` gives them.
    pub fn new(tables: &[Table], name: impl Fn(&Table) -> String) -> Self {
        MemoryTables {
            tables: tables
                .iter()
                .map(|t| {
                    (
                        name(t),
                        MemoryTable {
                            declaration: *t,
                            items: BTreeMap::new(),
                        },
                    )
                })
                .collect(),
        }
    }

    fn table(&self, name: &str) -> Result<&MemoryTable, StepError> {
        self.tables
            .get(name)
            .ok_or_else(|| StepError::ResourceNotFound {
                kind: "DynamoDB table",
                id: name.to_owned(),
            })
    }

    fn table_mut(&mut self, name: &str) -> Result<&mut MemoryTable, StepError> {
        self.tables
            .get_mut(name)
            .ok_or_else(|| StepError::ResourceNotFound {
                kind: "DynamoDB table",
                id: name.to_owned(),
            })
    }

    /// One item, only the attributes in `projection` when given.
    pub fn get(
        &self,
        table: &str,
        key: &Item,
        projection: Option<&[&str]>,
    ) -> Result<Option<Item>, StepError> {
        let table = self.table(table)?;
        let found = table.items.get(&table.key_of(key)?).cloned();
        Ok(found.map(|item| match projection {
            None => item,
            Some(names) => {
                let mut projected = Item::default();
                for name in names {
                    if let Some(value) = item.get(*name) {
                        projected.insert((*name).to_owned(), value.clone());
                    }
                }
                projected
            }
        }))
    }

    /// One conditional write.
    pub fn write(&mut self, write: &Write, returns: Returns) -> Result<Written, StepError> {
        let table = self.table_mut(&write.table)?;
        let key = table.key_of(&write.key)?;
        let old = table.items.get(&key).cloned();
        let current = old.clone().unwrap_or_default();
        if let Some(condition) = &write.condition
            && !holds(condition, &current)
        {
            return Ok(Written::ConditionFailed);
        }
        let new = table.applied(&write.key, old.clone(), &write.op)?;
        match &new {
            Some(item) => table.items.insert(key, item.clone()),
            None => table.items.remove(&key),
        };
        Ok(Written::Applied(match returns {
            Returns::Nothing => None,
            Returns::Old => old,
            Returns::New => new,
        }))
    }

    /// Writes that all apply or none do.
    pub fn transact(&mut self, writes: &[Write]) -> Result<Result<(), Cancelled>, StepError> {
        let mut seen = Vec::new();
        let mut failed = Vec::new();
        for write in writes {
            let table = self.table(&write.table)?;
            let key = (write.table.clone(), table.key_of(&write.key)?);
            if seen.contains(&key) {
                return Err(validation(
                    "Transaction request cannot include multiple operations on one item",
                ));
            }
            seen.push(key.clone());
            let current = table.items.get(&key.1).cloned().unwrap_or_default();
            failed.push(
                write
                    .condition
                    .as_ref()
                    .is_some_and(|c| !holds(c, &current)),
            );
        }
        if failed.iter().any(|f| *f) {
            return Ok(Err(Cancelled { failed }));
        }
        // Every item's new state first, then all of them at once: a refused update leaves
        // every item as it was.
        let mut applied = Vec::new();
        for write in writes {
            let table = self.table(&write.table)?;
            let key = table.key_of(&write.key)?;
            let old = table.items.get(&key).cloned();
            applied.push((
                write.table.clone(),
                key,
                table.applied(&write.key, old, &write.op)?,
            ));
        }
        for (table, key, new) in applied {
            let items = &mut self.table_mut(&table)?.items;
            match new {
                Some(item) => items.insert(key, item),
                None => items.remove(&key),
            };
        }
        Ok(Ok(()))
    }

    /// One page of a query, in sort order.
    pub fn query(&self, query: &Query) -> Result<Page, StepError> {
        let table = self.table(&query.table)?;
        let (hash, range) = match &query.index {
            None => (table.declaration.hash, table.declaration.range),
            Some(name) => {
                let index = table
                    .declaration
                    .indexes
                    .iter()
                    .find(|i| i.name == name)
                    .ok_or_else(|| validation(format!("no index {name}")))?;
                (index.hash, Some(index.range))
            }
        };
        let (partition_name, partition_value) = &query.partition;
        if partition_name != hash {
            return Err(validation(format!(
                "the key condition names {partition_name}, not the key {hash}"
            )));
        }
        let mut matching: Vec<&Item> = table
            .items
            .values()
            .filter(|item| item.get(hash) == Some(partition_value))
            // An index holds only the items that have its keys.
            .filter(|item| range.is_none_or(|r| item.contains_key(r)))
            .collect();
        let sort_key = |item: &Item| {
            (
                range
                    .and_then(|r| string_of(item.get(r)))
                    .unwrap_or_default(),
                table.key_of(item).unwrap_or_default(),
            )
        };
        let sort_key = &sort_key;
        matching.sort_by_key(|item| sort_key(item));
        if query.descending {
            matching.reverse();
        }
        if let Some(start) = &query.start_after {
            // DynamoDB goes on from the start key's place in the order, whether or not an item
            // is still there.
            let start = sort_key(start);
            matching.retain(|item| {
                let key = sort_key(item);
                if query.descending {
                    key < start
                } else {
                    key > start
                }
            });
        }
        if query.limit == Some(0) {
            return Err(validation("Limit must be at least 1"));
        }
        let mut page = table.page(matching, query.limit);
        // An index page's key carries the index's keys too, as DynamoDB's does.
        if let (Some(last), Some(range)) = (page.last_key.as_mut(), range)
            && let Some(item) = page.items.last()
        {
            for name in [hash, range] {
                if let Some(value) = item.get(name) {
                    last.insert(name.to_owned(), value.clone());
                }
            }
        }
        Ok(page)
    }

    /// One page of a scan (the filter applies after the read, as in DynamoDB).
    pub fn scan(
        &self,
        table: &str,
        filter: Option<&Cond>,
        start_after: Option<&Item>,
    ) -> Result<Page, StepError> {
        let table = self.table(table)?;
        let start = start_after.map(|s| table.key_of(s)).transpose()?;
        let items: Vec<&Item> = table
            .items
            .iter()
            .filter(|(key, _)| start.as_ref().is_none_or(|s| *key > s))
            .map(|(_, item)| item)
            .filter(|item| filter.is_none_or(|f| holds(f, item)))
            .collect();
        Ok(table.page(items, None))
    }

    /// Every item of `table`, in key order (what a test compares).
    pub fn items(&self, table: &str) -> Vec<Item> {
        self.tables
            .get(table)
            .map(|t| t.items.values().cloned().collect())
            .unwrap_or_default()
    }
}

impl MemoryTable {
    /// The item's key as (partition, sort) strings; a missing key attribute is refused.
    fn key_of(&self, item: &Item) -> Result<(String, String), StepError> {
        let part = |name: &str| {
            string_of(item.get(name))
                .ok_or_else(|| validation(format!("the key attribute {name} is missing")))
        };
        Ok((
            part(self.declaration.hash)?,
            match self.declaration.range {
                Some(range) => part(range)?,
                None => String::new(),
            },
        ))
    }

    /// The item after `op` (`None`: deleted).
    fn applied(
        &self,
        key: &Item,
        old: Option<Item>,
        op: &WriteOp,
    ) -> Result<Option<Item>, StepError> {
        Ok(match op {
            WriteOp::Put(item) => {
                if self.key_of(item)? != self.key_of(key)? {
                    return Err(validation("the item's key differs from the write's key"));
                }
                Some(item.clone())
            }
            WriteOp::Delete => None,
            WriteOp::Update(updates) => {
                let mut item = old.unwrap_or_else(|| key.clone());
                for update in updates {
                    apply(&mut item, update)?;
                }
                Some(item)
            }
        })
    }

    /// `items` as one page of at most `limit`, with the key to continue from.
    fn page(&self, items: Vec<&Item>, limit: Option<usize>) -> Page {
        let more = limit.is_some_and(|l| items.len() > l);
        let taken: Vec<Item> = items
            .into_iter()
            .take(limit.unwrap_or(usize::MAX))
            .cloned()
            .collect();
        let last_key = more
            .then(|| taken.last().map(|item| self.key_item(item)))
            .flatten();
        Page {
            items: taken,
            last_key,
        }
    }

    /// The key attributes of `item`.
    fn key_item(&self, item: &Item) -> Item {
        let mut key = Item::default();
        for name in [Some(self.declaration.hash), self.declaration.range]
            .into_iter()
            .flatten()
        {
            if let Some(value) = item.get(name) {
                key.insert(name.to_owned(), value.clone());
            }
        }
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bluegreen::tables::{LOCKS, SERVICES};

    fn item(pairs: &[(&str, &str)]) -> Item {
        let mut item = Item::default();
        for (k, v) in pairs {
            item.insert((*k).to_owned(), AttributeValue::S((*v).to_owned()));
        }
        item
    }

    fn tables() -> MemoryTables {
        MemoryTables::new(&[LOCKS, SERVICES], |t| t.resource.to_owned())
    }

    fn write(table: &str, key: Item, op: WriteOp, condition: Option<Cond>) -> Write {
        Write {
            table: table.into(),
            key,
            op,
            condition,
        }
    }

    #[test]
    fn comparisons_with_an_absent_attribute_are_false_and_not_equal_is_true() {
        let it = item(&[("service", "shop")]);
        assert!(!holds(&Cond::eq_s("deployment_id", "d"), &it));
        assert!(holds(
            &Cond::Ne(Path::of("deployment_id"), AttributeValue::S("d".into())),
            &it
        ));
        assert!(!holds(
            &Cond::Le(Path::of("started_order"), AttributeValue::S("9".into())),
            &it
        ));
        assert!(holds(&Cond::absent("approval.decision"), &it));
    }

    #[test]
    fn a_transaction_with_one_failed_condition_writes_nothing() {
        let mut t = tables();
        let lock = item(&[("service", "shop")]);
        let set = |v: &str| {
            WriteOp::Update(vec![Update::Set(
                Path::of("deployment_id"),
                AttributeValue::S(v.into()),
            )])
        };
        let cancelled = t
            .transact(&[
                write("LocksTable", lock.clone(), set("a"), None),
                write(
                    "LocksTable",
                    item(&[("service", "cart")]),
                    set("b"),
                    Some(Cond::exists("deployment_id")),
                ),
            ])
            .unwrap()
            .unwrap_err();
        assert_eq!(cancelled.failed, [false, true]);
        assert_eq!(t.get("LocksTable", &lock, None).unwrap(), None);
        let twice = t.transact(&[
            write("LocksTable", lock.clone(), set("a"), None),
            write("LocksTable", lock, set("b"), None),
        ]);
        assert!(twice.is_err(), "one item twice is refused");
    }

    #[test]
    fn a_nested_path_under_a_missing_parent_and_an_empty_set_are_refused() {
        let mut t = tables();
        let key = item(&[("service", "shop")]);
        for update in [
            Update::Set(Path::of("approval.decision"), AttributeValue::S("x".into())),
            Update::Remove(Path::of("approval.decision")),
            Update::AddToSet(Path::of("repositories"), Vec::new()),
        ] {
            let refused = t.write(
                &write(
                    "LocksTable",
                    key.clone(),
                    WriteOp::Update(vec![update.clone()]),
                    None,
                ),
                Returns::Nothing,
            );
            assert!(refused.is_err(), "{update:?}");
        }
    }

    #[test]
    fn a_query_goes_on_from_a_start_key_whose_item_is_gone() {
        let mut t = tables();
        for sk in ["a", "b", "c", "d"] {
            let key = item(&[("pk", "service"), ("sk", sk)]);
            t.write(
                &write("ServicesTable", key.clone(), WriteOp::Put(key), None),
                Returns::Nothing,
            )
            .unwrap();
        }
        let query = |start: Option<Item>| Query {
            table: "ServicesTable".into(),
            index: None,
            partition: ("pk".into(), AttributeValue::S("service".into())),
            descending: false,
            limit: Some(2),
            start_after: start,
            consistent: true,
        };
        let first = t.query(&query(None)).unwrap();
        assert_eq!(first.items.len(), 2);
        let last = first.last_key.clone().expect("more to read");
        t.write(
            &write("ServicesTable", last.clone(), WriteOp::Delete, None),
            Returns::Nothing,
        )
        .unwrap();
        let next = t.query(&query(Some(last))).unwrap();
        let sks: Vec<String> = next
            .items
            .iter()
            .filter_map(|i| string_of(i.get("sk")))
            .collect();
        assert_eq!(sks, ["c", "d"]);
    }
}
