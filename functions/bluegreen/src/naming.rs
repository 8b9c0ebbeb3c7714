//! Deterministic names and tags. Everything bluegreen creates is named from the deployment, so
//! a retried step finds what an earlier attempt created instead of creating it again.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// Tag on every resource bluegreen manages.
pub const TAG_MANAGED: &str = "bluegreen:managed";
/// Tag naming the deployment that created or last changed a resource.
pub const TAG_DEPLOYMENT: &str = "bluegreen:deployment-id";
/// Tag with the RFC 3339 time after which scheduled teardown may remove the resource.
pub const TAG_EXPIRES: &str = "bluegreen:expires-at";
/// Tag on a task definition revision bluegreen registered: `preprod` or `production`.
pub const TAG_PURPOSE: &str = "bluegreen:purpose";
/// Tag on a task definition revision bluegreen registered: the revision it was made from
/// (`task_definition.source = "family"` walks back to it instead of through every revision).
pub const TAG_BASE: &str = "bluegreen:base";
/// Tag with the role of a slot service (`preprod` or `warm`) or of a listener rule
/// (`maintenance`, `preview`).
pub const TAG_ROLE: &str = "bluegreen:role";
/// On a production database secret (`database.secret`): the stack's roles may read it. They
/// read no other secret but the link key and bluegreen's own clone secrets.
pub const TAG_DATABASE_SOURCE: &str = "bluegreen:database-source";
/// On a secret holding a smoke check's header value: the checking functions may read it.
pub const TAG_SMOKE_HEADER: &str = "bluegreen:smoke-header";
/// On the listener rules bluegreen adds for a deployment (the test rule and its probe): the
/// service, so a rule a deployment left behind is found by the service's next one.
pub const TAG_SERVICE: &str = "bluegreen:service";
/// `bluegreen:role` of a slot running a deployment's pre-prod.
pub const ROLE_PREPROD: &str = "preprod";
/// `bluegreen:role` of the service bluegreen creates to run a deployment's pre-prod on its own
/// (`isolated` on ECS's engine): the only services the stack's roles may delete.
pub const ROLE_OWN_PREPROD: &str = "own-preprod";
/// `bluegreen:role` of the old slot kept warm after a finish (for a quick manual rollback).
pub const ROLE_WARM: &str = "warm";
/// `bluegreen:role` of a maintenance page's listener rule (`crate::maintenance`).
pub const ROLE_MAINTENANCE: &str = "maintenance";
/// `bluegreen:role` of a test rule and of its probe (`crate::test_rule`).
pub const ROLE_PREVIEW: &str = "preview";

/// A resource's own tags with bluegreen's added: the team's (cost allocation, ownership — a
/// tag-on-create policy may require them) kept, bluegreen's from earlier uses and AWS's own
/// (`aws:`, not writable) dropped, `ours` winning a clash. The caller checks the count against
/// the service's limit.
pub fn merge_tags(own: &[(String, String)], ours: &[(String, String)]) -> Vec<(String, String)> {
    let mut merged: Vec<(String, String)> = own
        .iter()
        .filter(|(key, _)| {
            !key.starts_with("bluegreen:")
                && !key.starts_with("aws:")
                && !ours.iter().any(|(k, _)| k == key)
        })
        .cloned()
        .collect();
    merged.extend(ours.iter().cloned());
    merged
}

fn short_hash(parts: &[&str], hex_chars: usize) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hex::encode(hasher.finalize())[..hex_chars].to_owned()
}

/// `<service>-<yyyymmddThhmmss>-<6 hex>`: sortable, readable, and the same for the same event.
pub fn deployment_id(service: &str, event_id: &str, pushed_at: DateTime<Utc>) -> String {
    format!(
        "{service}-{}-{}",
        pushed_at.format("%Y%m%dT%H%M%S"),
        short_hash(&[service, event_id], 6)
    )
}

/// The event id of a push the missed-push sweep deploys (`crate::missed_pushes`): one per
/// digest, so every sweep, and intake when the push's event arrives late, finds its record.
pub fn missed_push_event_id(digest: &str) -> String {
    format!("missed-push-{digest}")
}

/// The kinds of a person's release request (`bluegreen deploy`, `redeploy`, `rollback --to`).
pub const REQUEST_KINDS: [&str; 3] = ["deploy", "redeploy", "rollback"];

/// The record's event id for a person's release request of `kind` (one of
/// [`REQUEST_KINDS`]): what makes a retried request find the deployment it started.
pub fn request_event_id(kind: &str, request_id: &str) -> String {
    format!("{kind}-{request_id}")
}

/// Whether a record's event id is a person's request rather than a push (EventBridge's event
/// ids are UUIDs, the sweep's start with `missed-push-`: neither starts with a request kind).
pub fn is_request_event_id(event_id: &str) -> bool {
    REQUEST_KINDS.iter().any(|kind| {
        event_id
            .strip_prefix(kind)
            .is_some_and(|rest| rest.starts_with('-'))
    })
}

/// The ECS `startedBy` value of a deployment's migration task (`kind` = `migrate`,
/// `rehearsal` or `rollback`). ECS allows at most 36 characters, so it is a hash.
pub fn started_by(deployment_id: &str, kind: &str) -> String {
    format!("bg-{}-{kind}", short_hash(&[deployment_id], 16))
}

/// The name of the service that runs `deployment_id`'s pre-prod beside `service` (`isolated`
/// on ECS's engine): [`CLONE_PREFIX`] first (the stack's roles create and delete only services
/// so named), then the service (ECS allows 255 characters), then a hash of the deployment —
/// one per deployment, so an earlier deployment's service still draining never blocks it.
pub fn preprod_service_name(service: &str, deployment_id: &str) -> String {
    format!(
        "{}{}",
        preprod_service_prefix(service),
        short_hash(&[deployment_id], 8)
    )
}

/// What every [`preprod_service_name`] of `service` starts with.
pub fn preprod_service_prefix(service: &str) -> String {
    let service: String = service.chars().take(200).collect();
    format!("{CLONE_PREFIX}{service}-preprod-")
}

/// Every clone bluegreen creates is named with this prefix (IAM policies and the guard that
/// keeps production off clones rely on it).
pub const CLONE_PREFIX: &str = "bg-";

/// The identifier of a database clone: lowercase, starts with a letter, at most 63 characters,
/// no double hyphens — valid for both RDS instances and Aurora clusters.
pub fn clone_identifier(service: &str, deployment_id: &str, purpose: &str) -> String {
    let service: String = service.chars().take(30).collect();
    let service = service.trim_end_matches('-');
    format!(
        "{CLONE_PREFIX}{service}-{}-{purpose}",
        short_hash(&[deployment_id], 8)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_ids_are_stable_for_the_same_event_and_differ_between_events() {
        let t = DateTime::parse_from_rfc3339("2026-11-21T10:00:00Z")
            .unwrap()
            .to_utc();
        let a = deployment_id("shop", "event-1", t);
        assert_eq!(a, deployment_id("shop", "event-1", t));
        assert_ne!(a, deployment_id("shop", "event-2", t));
        assert!(a.starts_with("shop-20261121T100000-"), "{a}");
    }

    #[test]
    fn started_by_fits_the_ecs_limit_and_clone_names_fit_rds_rules() {
        let id = deployment_id(&"s".repeat(40), "e", Utc::now());
        assert!(started_by(&id, "rehearsal").len() <= 36);
        let clone = clone_identifier(&"a-".repeat(30), &id, "rehearsal");
        assert!(clone.len() <= 63, "{clone}");
        assert!(!clone.contains("--"), "{clone}");
    }
}
