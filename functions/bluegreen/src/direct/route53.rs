//! The Route 53 adapter: every Route 53 call bluegreen makes (reading one name's record sets,
//! changing them, following a change to INSYNC). What the records mean (the weighted split
//! between the slots) is decided by `routing`.

use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord, ResourceRecordSet, RrType,
};

use crate::context::Context;
use crate::error::{StepError, StepResult};

/// Every record set of `name` and `record_type` in the zone (all set identifiers), following
/// the listing's pages until it moves past the name. `same_name` compares names as Route 53
/// returns them (trailing dot, case).
pub async fn record_sets(
    ctx: &Context,
    zone: &str,
    name: &str,
    record_type: RrType,
    same_name: impl Fn(&str) -> bool,
) -> StepResult<Vec<ResourceRecordSet>> {
    let mut found = Vec::new();
    let mut start_name = Some(name.to_owned());
    let mut start_type = Some(record_type);
    let mut start_id = None;
    while let Some(record_name) = start_name.take() {
        let out = ctx
            .route53
            .list_resource_record_sets()
            .hosted_zone_id(zone)
            .start_record_name(record_name)
            .set_start_record_type(start_type.take())
            .set_start_record_identifier(start_id.take())
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(s) if s.is_no_such_hosted_zone() => StepError::ResourceNotFound {
                    kind: "hosted zone",
                    id: zone.to_owned(),
                },
                _ => StepError::from_sdk("route53:ListResourceRecordSets", e),
            })?;
        let mut past_name = false;
        for record in out.resource_record_sets {
            if !same_name(&record.name) {
                past_name = true;
                break;
            }
            found.push(record);
        }
        if out.is_truncated && !past_name {
            start_name = out.next_record_name;
            start_type = out.next_record_type;
            start_id = out.next_record_identifier;
        }
    }
    Ok(found)
}

/// Applies a change batch; returns the change id to follow with [`change_in_sync`].
pub async fn change_record_sets(
    ctx: &Context,
    zone: &str,
    batch: ChangeBatch,
) -> StepResult<String> {
    let out = ctx
        .route53
        .change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(batch)
        .send()
        .await
        .map_err(|e| StepError::from_sdk("route53:ChangeResourceRecordSets", e))?;
    Ok(out.change_info.map(|c| c.id).unwrap_or_default())
}

/// Whether a Route 53 change has propagated to all authoritative servers.
pub async fn change_in_sync(ctx: &Context, change_id: &str) -> StepResult<bool> {
    let out = ctx
        .route53
        .get_change()
        .id(change_id)
        .send()
        .await
        .map_err(|e| StepError::from_sdk("route53:GetChange", e))?;
    Ok(out
        .change_info
        .is_some_and(|c| c.status == ChangeStatus::Insync))
}

/// Every CNAME record set of `name` in the zone (names compared without the trailing dot).
pub async fn cname_records(
    ctx: &Context,
    zone: &str,
    name: &str,
) -> StepResult<Vec<ResourceRecordSet>> {
    let bare = name.trim_end_matches('.');
    record_sets(ctx, zone, name, RrType::Cname, |n| {
        n.trim_end_matches('.').eq_ignore_ascii_case(bare)
    })
    .await
}

fn batch_error(e: impl std::fmt::Display) -> StepError {
    StepError::Internal(format!("a Route 53 change is incomplete: {e}"))
}

/// A weighted CNAME record set: `name` → `value` for set `set` at `weight`.
pub fn weighted(
    name: &str,
    set: &str,
    weight: i64,
    value: &str,
    ttl: i64,
) -> StepResult<ResourceRecordSet> {
    ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::Cname)
        .set_identifier(set)
        .weight(weight)
        .ttl(ttl)
        .resource_records(
            ResourceRecord::builder()
                .value(value)
                .build()
                .map_err(batch_error)?,
        )
        .build()
        .map_err(batch_error)
}

/// One change of a batch.
pub fn change(action: ChangeAction, record: ResourceRecordSet) -> StepResult<Change> {
    Change::builder()
        .action(action)
        .resource_record_set(record)
        .build()
        .map_err(batch_error)
}

/// One batch that replaces the simple record `simple` with the weighted pair: `blue` at
/// weight 100 with `simple`'s value and TTL, `green` at 0 with `green_value`.
pub fn weighted_pair_for(simple: &ResourceRecordSet, green_value: &str) -> StepResult<ChangeBatch> {
    let value = simple
        .resource_records()
        .first()
        .map(|r| r.value.clone())
        .unwrap_or_default();
    let ttl = simple.ttl.unwrap_or_default();
    ChangeBatch::builder()
        .changes(change(ChangeAction::Delete, simple.clone())?)
        .changes(change(
            ChangeAction::Create,
            weighted(&simple.name, "blue", 100, &value, ttl)?,
        )?)
        .changes(change(
            ChangeAction::Create,
            weighted(&simple.name, "green", 0, green_value, ttl)?,
        )?)
        .build()
        .map_err(batch_error)
}

/// One batch that replaces the weighted `pair` with one simple record of `blue`'s value and
/// TTL (undoing [`weighted_pair_for`]).
pub fn simple_for(pair: &[ResourceRecordSet], blue: &ResourceRecordSet) -> StepResult<ChangeBatch> {
    let simple = ResourceRecordSet::builder()
        .name(&blue.name)
        .r#type(RrType::Cname)
        .set_ttl(blue.ttl)
        .set_resource_records(Some(blue.resource_records().to_vec()))
        .build()
        .map_err(batch_error)?;
    let mut batch = ChangeBatch::builder();
    for record in pair {
        batch = batch.changes(change(ChangeAction::Delete, record.clone())?);
    }
    batch
        .changes(change(ChangeAction::Create, simple)?)
        .build()
        .map_err(batch_error)
}
