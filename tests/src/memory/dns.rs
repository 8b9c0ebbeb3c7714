//! Route 53 in memory: weighted records and changes that reach INSYNC when the simulated AWS
//! says so.

use std::collections::BTreeMap;

use bluegreen::StepError;
use bluegreen::ports::Dns;
use bluegreen::ports::dns::WeightedRecord;

use super::{MemoryAws, not_found};

/// Route 53's state.
#[derive(Debug, Clone, Default)]
pub struct DnsState {
    /// Record sets by zone.
    pub zones: BTreeMap<String, Vec<WeightedRecord>>,
    /// Changes by id: whether each is INSYNC.
    pub changes: BTreeMap<String, bool>,
}

fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

impl DnsState {
    /// Marks every pending change INSYNC (Route 53's propagation, played by a simulator).
    pub fn sync_all(&mut self) {
        for insync in self.changes.values_mut() {
            *insync = true;
        }
    }
}

#[async_trait::async_trait]
impl Dns for MemoryAws {
    async fn cname_records(
        &self,
        zone: &str,
        name: &str,
    ) -> Result<Vec<WeightedRecord>, StepError> {
        self.call("route53:ListResourceRecordSets", |s| {
            let records = s
                .dns
                .zones
                .get(zone)
                .ok_or_else(|| not_found("hosted zone", zone))?;
            Ok(records
                .iter()
                .filter(|r| same_name(&r.name, name))
                .cloned()
                .collect())
        })
        .await
    }

    async fn upsert(
        &self,
        zone: &str,
        records: &[WeightedRecord],
        _comment: &str,
    ) -> Result<String, StepError> {
        self.call("route53:ChangeResourceRecordSets", |s| {
            let existing = s
                .dns
                .zones
                .get_mut(zone)
                .ok_or_else(|| not_found("hosted zone", zone))?;
            for record in records {
                existing.retain(|r| {
                    !(same_name(&r.name, &record.name) && r.set_identifier == record.set_identifier)
                });
                existing.push(record.clone());
            }
            let id = format!("/change/C{:08}", s.dns.changes.len() + 1);
            s.dns.changes.insert(id.clone(), false);
            Ok(id)
        })
        .await
    }

    async fn change_in_sync(&self, change_id: &str) -> Result<bool, StepError> {
        self.call("route53:GetChange", |s| {
            s.dns
                .changes
                .get(change_id)
                .copied()
                .ok_or_else(|| not_found("Route 53 change", change_id))
        })
        .await
    }
}
