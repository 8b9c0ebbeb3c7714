//! Route 53 calls of the set-up commands (`adopt` turning a simple record into the weighted
//! pair and back). The steps reach Route 53 through the `Dns` port; the listing is shared
//! with its adapter.

use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecordSet, RrType};

use bluegreen::aws;
use bluegreen::aws::dns::batch_error;
use bluegreen::context::Context;
use bluegreen::error::{StepError, StepResult};
use bluegreen::ports::dns::WeightedRecord;

/// Applies a change batch; returns the change id to follow with [`change_in_sync`].
pub async fn change_record_sets(
    ctx: &Context,
    zone: &str,
    batch: ChangeBatch,
) -> StepResult<String> {
    let out = ctx
        .sdk()?
        .route53
        .change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(batch)
        .send()
        .await
        .map_err(|e| StepError::from_sdk("route53:ChangeResourceRecordSets", e))?;
    Ok(out.change_info.map(|c| c.id).unwrap_or_default())
}

/// Every CNAME record set of `name` in the zone (names compared without the trailing dot).
pub async fn cname_records(
    ctx: &Context,
    zone: &str,
    name: &str,
) -> StepResult<Vec<ResourceRecordSet>> {
    aws::dns::cname_record_sets(&ctx.sdk()?.route53, zone, name).await
}

/// The names, in every hosted zone the caller can list, that point at `target` (a load
/// balancer's DNS name): A/AAAA aliases (`dualstack.` and case ignored) and CNAMEs. Sorted,
/// without the trailing dot; wildcard names left out (no host to send).
pub async fn names_pointing_at(ctx: &Context, target: &str) -> StepResult<Vec<String>> {
    let route53 = &ctx.sdk()?.route53;
    let bare = |name: &str| {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        name.strip_prefix("dualstack.")
            .map(str::to_owned)
            .unwrap_or(name)
    };
    let wanted = bare(target);
    let mut zones = Vec::new();
    let mut pages = route53.list_hosted_zones().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| StepError::from_sdk("route53:ListHostedZones", e))?;
        zones.extend(page.hosted_zones.into_iter().map(|z| z.id));
    }
    let mut names = Vec::new();
    for zone in zones {
        let mut start: Option<(String, RrType, Option<String>)> = None;
        loop {
            let (name, kind, id) = match start.take() {
                Some((name, kind, id)) => (Some(name), Some(kind), id),
                None => (None, None, None),
            };
            let out = route53
                .list_resource_record_sets()
                .hosted_zone_id(&zone)
                .set_start_record_name(name)
                .set_start_record_type(kind)
                .set_start_record_identifier(id)
                .send()
                .await
                .map_err(|e| StepError::from_sdk("route53:ListResourceRecordSets", e))?;
            for record in &out.resource_record_sets {
                let points = match (&record.r#type, &record.alias_target) {
                    (RrType::A | RrType::Aaaa, Some(alias)) => bare(&alias.dns_name) == wanted,
                    (RrType::Cname, None) => record
                        .resource_records()
                        .iter()
                        .any(|r| bare(&r.value) == wanted),
                    _ => false,
                };
                let name = record.name.trim_end_matches('.').to_ascii_lowercase();
                if points && !name.starts_with('*') && !names.contains(&name) {
                    names.push(name);
                }
            }
            match (out.is_truncated, out.next_record_name, out.next_record_type) {
                (true, Some(name), Some(kind)) => {
                    start = Some((name, kind, out.next_record_identifier));
                }
                _ => break,
            }
        }
    }
    names.sort();
    Ok(names)
}

/// A weighted CNAME record set: `name` → `value` for set `set` at `weight`.
pub fn weighted(
    name: &str,
    set: &str,
    weight: i64,
    value: &str,
    ttl: i64,
) -> StepResult<ResourceRecordSet> {
    aws::dns::record_set(&WeightedRecord {
        name: name.to_owned(),
        set_identifier: Some(set.to_owned()),
        weight: Some(weight),
        value: value.to_owned(),
        ttl: Some(ttl),
    })
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
