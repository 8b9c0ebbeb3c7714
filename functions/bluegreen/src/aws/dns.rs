//! [`Dns`] over Route 53.

use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord, ResourceRecordSet, RrType,
};

use crate::error::{StepError, StepResult};
use crate::ports::dns::{Dns, WeightedRecord};

/// Route 53 through the SDK.
pub struct Route53(pub aws_sdk_route53::Client);

/// A Route 53 change that could not be built (a record missing a field the SDK requires).
pub fn batch_error(e: impl std::fmt::Display) -> StepError {
    StepError::Internal(format!("a Route 53 change is incomplete: {e}"))
}

fn weighted(record: ResourceRecordSet) -> WeightedRecord {
    WeightedRecord {
        value: record
            .resource_records()
            .first()
            .map(|r| r.value.clone())
            .unwrap_or_default(),
        name: record.name,
        set_identifier: record.set_identifier,
        weight: record.weight,
        ttl: record.ttl,
    }
}

/// `record` as Route 53's CNAME record set.
pub fn record_set(record: &WeightedRecord) -> StepResult<ResourceRecordSet> {
    ResourceRecordSet::builder()
        .name(&record.name)
        .r#type(RrType::Cname)
        .set_set_identifier(record.set_identifier.clone())
        .set_weight(record.weight)
        .set_ttl(record.ttl)
        .resource_records(
            ResourceRecord::builder()
                .value(&record.value)
                .build()
                .map_err(batch_error)?,
        )
        .build()
        .map_err(batch_error)
}

/// Every CNAME record set of `name` in the zone (all set identifiers; names compared as
/// Route 53 returns them, without the trailing dot and ignoring case), following the
/// listing's pages until it moves past the name. Shared by the port and by `adopt`, which
/// needs the SDK's record sets to rewrite them.
pub async fn cname_record_sets(
    client: &aws_sdk_route53::Client,
    zone: &str,
    name: &str,
) -> StepResult<Vec<ResourceRecordSet>> {
    let bare = name.trim_end_matches('.');
    let same_name = |n: &str| n.trim_end_matches('.').eq_ignore_ascii_case(bare);
    let mut found = Vec::new();
    let mut start_name = Some(name.to_owned());
    let mut start_type = Some(RrType::Cname);
    let mut start_id = None;
    while let Some(record_name) = start_name.take() {
        let out = client
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
            if record.r#type == RrType::Cname {
                found.push(record);
            }
        }
        if out.is_truncated && !past_name {
            start_name = out.next_record_name;
            start_type = out.next_record_type;
            start_id = out.next_record_identifier;
        }
    }
    Ok(found)
}

#[async_trait::async_trait]
impl Dns for Route53 {
    async fn cname_records(&self, zone: &str, name: &str) -> StepResult<Vec<WeightedRecord>> {
        let records = cname_record_sets(&self.0, zone, name).await?;
        Ok(records.into_iter().map(weighted).collect())
    }

    async fn upsert(
        &self,
        zone: &str,
        records: &[WeightedRecord],
        comment: &str,
    ) -> StepResult<String> {
        let mut batch = ChangeBatch::builder().comment(comment);
        for record in records {
            batch = batch.changes(
                Change::builder()
                    .action(ChangeAction::Upsert)
                    .resource_record_set(record_set(record)?)
                    .build()
                    .map_err(batch_error)?,
            );
        }
        let out = self
            .0
            .change_resource_record_sets()
            .hosted_zone_id(zone)
            .change_batch(batch.build().map_err(batch_error)?)
            .send()
            .await
            .map_err(|e| StepError::from_sdk("route53:ChangeResourceRecordSets", e))?;
        Ok(out.change_info.map(|c| c.id).unwrap_or_default())
    }

    async fn change_in_sync(&self, change_id: &str) -> StepResult<bool> {
        let out = self
            .0
            .get_change()
            .id(change_id)
            .send()
            .await
            .map_err(|e| StepError::from_sdk("route53:GetChange", e))?;
        Ok(out
            .change_info
            .is_some_and(|c| c.status == ChangeStatus::Insync))
    }
}
