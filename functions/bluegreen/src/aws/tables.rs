//! [`Tables`] over DynamoDB: typed conditions and updates rendered as expressions, every name
//! and value through a placeholder (no attribute can collide with a reserved word, no value is
//! ever spliced into an expression).

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue as Av, Delete, Put, ReturnValue, TransactWriteItem, Update as SdkUpdate,
};
use serde_dynamo::{AttributeValue, Item};

use crate::error::{Conditional, StepError, StepResult, conditional, in_table};
use crate::ports::tables::{
    Cancelled, Cond, Page, Path, Query, Returns, Tables, Update, Write, WriteOp, Written,
};

/// DynamoDB through the SDK.
pub struct DynamoDb(pub aws_sdk_dynamodb::Client);

fn sdk_item(item: Item) -> HashMap<String, Av> {
    item.into()
}

fn item(sdk: HashMap<String, Av>) -> Item {
    sdk.into()
}

/// Placeholders for one request's expressions.
#[derive(Default)]
struct Expressions {
    names: HashMap<String, String>,
    values: HashMap<String, Av>,
}

impl Expressions {
    fn path(&mut self, path: &Path) -> String {
        path.0
            .iter()
            .map(|part| {
                let placeholder = format!("#n{}", self.names.len());
                self.names.insert(placeholder.clone(), part.clone());
                placeholder
            })
            .collect::<Vec<_>>()
            .join(".")
    }

    fn value(&mut self, value: &AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values
            .insert(placeholder.clone(), value.clone().into());
        placeholder
    }

    /// The condition expression; an empty `And`/`Or` is refused (it means nothing in
    /// DynamoDB's grammar, and bluegreen never builds one on purpose).
    fn condition(&mut self, cond: &Cond) -> StepResult<String> {
        let compare = |e: &mut Self, path: &Path, op: &str, value: &AttributeValue| {
            format!("{} {op} {}", e.path(path), e.value(value))
        };
        Ok(match cond {
            Cond::Exists(p) => format!("attribute_exists({})", self.path(p)),
            Cond::Absent(p) => format!("attribute_not_exists({})", self.path(p)),
            Cond::Eq(p, v) => compare(self, p, "=", v),
            Cond::Ne(p, v) => compare(self, p, "<>", v),
            Cond::Lt(p, v) => compare(self, p, "<", v),
            Cond::Le(p, v) => compare(self, p, "<=", v),
            Cond::And(_) => self.joined(&flattened(cond), " AND ")?,
            Cond::Or(_) => self.joined(&flattened(cond), " OR ")?,
        })
    }

    fn joined(&mut self, parts: &[&Cond], with: &str) -> StepResult<String> {
        if let [only] = parts {
            // DynamoDB refuses redundant parentheses: `((a))`.
            return self.condition(only);
        }
        if parts.is_empty() {
            return Err(StepError::Internal("an empty AND/OR condition".into()));
        }
        let rendered = parts
            .iter()
            .map(|c| self.condition(c))
            .collect::<StepResult<Vec<_>>>()?;
        Ok(format!("({})", rendered.join(with)))
    }

    fn update(&mut self, updates: &[Update]) -> String {
        let (mut set, mut remove, mut add, mut delete) = (vec![], vec![], vec![], vec![]);
        for update in updates {
            match update {
                Update::Set(p, v) => set.push(format!("{} = {}", self.path(p), self.value(v))),
                Update::SetIfAbsent(p, v) => {
                    let path = self.path(p);
                    set.push(format!("{path} = if_not_exists({path}, {})", self.value(v)));
                }
                Update::Copy { to, from } => {
                    set.push(format!("{} = {}", self.path(to), self.path(from)))
                }
                Update::Append(p, items) => {
                    let path = self.path(p);
                    let empty = self.value(&AttributeValue::L(vec![]));
                    let items = self.value(&AttributeValue::L(items.clone()));
                    set.push(format!(
                        "{path} = list_append(if_not_exists({path}, {empty}), {items})"
                    ));
                }
                Update::Remove(p) => remove.push(self.path(p)),
                Update::AddToSet(p, members) => add.push(format!(
                    "{} {}",
                    self.path(p),
                    self.value(&AttributeValue::Ss(members.clone()))
                )),
                Update::DeleteFromSet(p, members) => delete.push(format!(
                    "{} {}",
                    self.path(p),
                    self.value(&AttributeValue::Ss(members.clone()))
                )),
            }
        }
        [
            ("SET", set),
            ("REMOVE", remove),
            ("ADD", add),
            ("DELETE", delete),
        ]
        .into_iter()
        .filter(|(_, parts)| !parts.is_empty())
        .map(|(clause, parts)| format!("{clause} {}", parts.join(", ")))
        .collect::<Vec<_>>()
        .join(" ")
    }

    fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    fn values(&self) -> Option<HashMap<String, Av>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

/// The attributes a written answer carries.
fn attributes_of<T>(
    written: Conditional<T>,
    attributes: impl FnOnce(T) -> Option<HashMap<String, Av>>,
) -> Conditional<Option<HashMap<String, Av>>> {
    match written {
        Conditional::Written(out) => Conditional::Written(attributes(out)),
        Conditional::ConditionFailed => Conditional::ConditionFailed,
    }
}

fn returns(returns: Returns) -> ReturnValue {
    match returns {
        Returns::Nothing => ReturnValue::None,
        Returns::Old => ReturnValue::AllOld,
        Returns::New => ReturnValue::AllNew,
    }
}

fn incomplete(e: impl std::fmt::Display) -> StepError {
    StepError::Internal(format!("a DynamoDB write is incomplete: {e}"))
}

/// One write as an item of a transaction.
fn transact_item(write: Write) -> StepResult<TransactWriteItem> {
    let mut e = Expressions::default();
    let condition = write
        .condition
        .as_ref()
        .map(|c| e.condition(c))
        .transpose()?;
    let key = sdk_item(write.key);
    Ok(match write.op {
        WriteOp::Put(item) => TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(write.table)
                    .set_item(Some(sdk_item(item)))
                    .set_condition_expression(condition)
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values())
                    .build()
                    .map_err(incomplete)?,
            )
            .build(),
        WriteOp::Update(updates) => {
            let expression = e.update(&updates);
            TransactWriteItem::builder()
                .update(
                    SdkUpdate::builder()
                        .table_name(write.table)
                        .set_key(Some(key))
                        .update_expression(expression)
                        .set_condition_expression(condition)
                        .set_expression_attribute_names(e.names())
                        .set_expression_attribute_values(e.values())
                        .build()
                        .map_err(incomplete)?,
                )
                .build()
        }
        WriteOp::Delete => TransactWriteItem::builder()
            .delete(
                Delete::builder()
                    .table_name(write.table)
                    .set_key(Some(key))
                    .set_condition_expression(condition)
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values())
                    .build()
                    .map_err(incomplete)?,
            )
            .build(),
    })
}

#[async_trait::async_trait]
impl Tables for DynamoDb {
    async fn get(
        &self,
        table: &str,
        key: &Item,
        projection: Option<&[&str]>,
    ) -> StepResult<Option<Item>> {
        let mut request = self
            .0
            .get_item()
            .table_name(table)
            .set_key(Some(sdk_item(key.clone())))
            .consistent_read(true);
        if let Some(names) = projection {
            let mut e = Expressions::default();
            let rendered: Vec<String> = names.iter().map(|n| e.path(&Path::of(n))).collect();
            request = request
                .projection_expression(rendered.join(", "))
                .set_expression_attribute_names(e.names());
        }
        let out = request
            .send()
            .await
            .map_err(|e| in_table(StepError::from_sdk("dynamodb:GetItem", e), table))?;
        Ok(out.item.map(item))
    }

    async fn write(&self, write: Write, wanted: Returns) -> StepResult<Written> {
        let mut e = Expressions::default();
        let condition = write
            .condition
            .as_ref()
            .map(|c| e.condition(c))
            .transpose()?;
        let table = write.table.clone();
        let result = match write.op {
            WriteOp::Put(put) => conditional(
                "dynamodb:PutItem",
                self.0
                    .put_item()
                    .table_name(&table)
                    .set_item(Some(sdk_item(put)))
                    .set_condition_expression(condition)
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values())
                    .return_values(match wanted {
                        Returns::Old => ReturnValue::AllOld,
                        _ => ReturnValue::None,
                    })
                    .send()
                    .await,
            )
            .map(|c| attributes_of(c, |out| out.attributes)),
            WriteOp::Update(updates) => {
                let expression = e.update(&updates);
                conditional(
                    "dynamodb:UpdateItem",
                    self.0
                        .update_item()
                        .table_name(&table)
                        .set_key(Some(sdk_item(write.key)))
                        .update_expression(expression)
                        .set_condition_expression(condition)
                        .set_expression_attribute_names(e.names())
                        .set_expression_attribute_values(e.values())
                        .return_values(returns(wanted))
                        .send()
                        .await,
                )
                .map(|c| attributes_of(c, |out| out.attributes))
            }
            WriteOp::Delete => conditional(
                "dynamodb:DeleteItem",
                self.0
                    .delete_item()
                    .table_name(&table)
                    .set_key(Some(sdk_item(write.key)))
                    .set_condition_expression(condition)
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values())
                    .return_values(match wanted {
                        Returns::Old => ReturnValue::AllOld,
                        _ => ReturnValue::None,
                    })
                    .send()
                    .await,
            )
            .map(|c| attributes_of(c, |out| out.attributes)),
        }
        .map_err(|e| in_table(e, &table))?;
        Ok(match result {
            Conditional::Written(attributes) => {
                Written::Applied(attributes.filter(|a| !a.is_empty()).map(item))
            }
            Conditional::ConditionFailed => Written::ConditionFailed,
        })
    }

    async fn transact(&self, writes: Vec<Write>) -> StepResult<Result<(), Cancelled>> {
        let table = writes.first().map(|w| w.table.clone()).unwrap_or_default();
        let count = writes.len();
        let items = writes
            .into_iter()
            .map(transact_item)
            .collect::<StepResult<Vec<_>>>()?;
        match self
            .0
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(Ok(())),
            Err(e) => match e.as_service_error() {
                // Every cancellation is the caller's to judge: a failed condition is an
                // answer, a conflict with another write (no condition failed) is retried.
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
                    let reasons = c.cancellation_reasons();
                    Ok(Err(Cancelled {
                        failed: (0..count)
                            .map(|i| {
                                reasons.get(i).and_then(|r| r.code())
                                    == Some("ConditionalCheckFailed")
                            })
                            .collect(),
                    }))
                }
                _ => Err(in_table(
                    StepError::from_sdk("dynamodb:TransactWriteItems", e),
                    &table,
                )),
            },
        }
    }

    async fn query(&self, query: &Query) -> StepResult<Page> {
        let mut e = Expressions::default();
        let (name, value) = &query.partition;
        let key_condition = format!("{} = {}", e.path(&Path::of(name)), e.value(value));
        let out = self
            .0
            .query()
            .table_name(&query.table)
            .set_index_name(query.index.clone())
            .key_condition_expression(key_condition)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .scan_index_forward(!query.descending)
            .set_limit(query.limit.map(|l| l as i32))
            .set_exclusive_start_key(query.start_after.clone().map(sdk_item))
            .consistent_read(query.consistent && query.index.is_none())
            .send()
            .await
            .map_err(|e| in_table(StepError::from_sdk("dynamodb:Query", e), &query.table))?;
        Ok(Page {
            items: out
                .items
                .unwrap_or_default()
                .into_iter()
                .map(item)
                .collect(),
            last_key: out.last_evaluated_key.map(item),
        })
    }

    async fn scan(
        &self,
        table: &str,
        filter: Option<&Cond>,
        start_after: Option<Item>,
    ) -> StepResult<Page> {
        let mut e = Expressions::default();
        let filter = filter.map(|f| e.condition(f)).transpose()?;
        let out = self
            .0
            .scan()
            .table_name(table)
            .set_filter_expression(filter)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .set_exclusive_start_key(start_after.map(sdk_item))
            .send()
            .await
            .map_err(|e| in_table(StepError::from_sdk("dynamodb:Scan", e), table))?;
        Ok(Page {
            items: out
                .items
                .unwrap_or_default()
                .into_iter()
                .map(item)
                .collect(),
            last_key: out.last_evaluated_key.map(item),
        })
    }
}

/// The parts of an AND (or OR) with nested ANDs (ORs) lifted into it: `a AND (b AND c)` is
/// `(a AND b AND c)`, which DynamoDB takes (it refuses the redundant parentheses otherwise).
fn flattened(condition: &Cond) -> Vec<&Cond> {
    let (Cond::And(parts) | Cond::Or(parts)) = condition else {
        return vec![condition];
    };
    let mut lifted = Vec::new();
    for part in parts {
        if std::mem::discriminant(part) == std::mem::discriminant(condition) {
            lifted.extend(flattened(part));
        } else {
            lifted.push(part);
        }
    }
    lifted
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DynamoDB refuses `((a))` ("redundant parentheses"): nested ANDs are lifted and a lone
    /// part is not wrapped. (Found when the fence nested the record's conditions.)
    #[test]
    fn nested_and_single_conditions_render_without_redundant_parentheses() {
        let mut e = Expressions::default();
        let nested = Cond::And(vec![
            Cond::exists("a"),
            Cond::And(vec![Cond::And(vec![Cond::absent("b")]), Cond::absent("c")]),
        ]);
        assert_eq!(
            e.condition(&nested).unwrap(),
            "(attribute_exists(#n0) AND attribute_not_exists(#n1) AND attribute_not_exists(#n2))"
        );
        let mut e = Expressions::default();
        assert_eq!(
            e.condition(&Cond::And(vec![Cond::absent("b")])).unwrap(),
            "attribute_not_exists(#n0)"
        );
        let mut e = Expressions::default();
        let mixed = Cond::And(vec![
            Cond::exists("a"),
            Cond::Or(vec![Cond::absent("b"), Cond::Or(vec![Cond::absent("c")])]),
        ]);
        assert_eq!(
            e.condition(&mixed).unwrap(),
            "(attribute_exists(#n0) AND (attribute_not_exists(#n1) OR attribute_not_exists(#n2)))"
        );
    }
}
