//! Deployment records in DynamoDB: one item per deployment, read by `status`, `history` and the
//! approval console, and written by every step.
//!
//! Steps change a record with targeted `UpdateItem` expressions (never a whole-item put), so a
//! step and the console writing an approval decision cannot overwrite each other.
//!
//! Readers go through the table's indexes ([`crate::tables::DEPLOYMENTS`]): by service, by
//! status, and all records newest first. Nothing here scans, so `history`, `status` and the
//! console cost the same with ten records or ten million.

//!
//! Three parts: the record's data ([`model`]), the change builder ([`change`]) and the table's
//! reads and writes ([`repository`]).

mod change;
mod model;
mod repository;

pub use change::Change;
pub(crate) use change::{ABORT_REQUESTED, RESUMED};
pub use model::*;
pub use repository::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_and_verdicts_are_stored_by_their_snake_names() {
        assert_eq!(
            serde_json::to_value(StepOutcome::TrafficMoving).unwrap(),
            "traffic_moving"
        );
        assert_eq!(StepOutcome::AutoApproved.to_string(), "auto_approved");
        assert_eq!(
            serde_json::to_value(Verdict::TimedOut).unwrap(),
            "timed_out"
        );
        assert_eq!(Verdict::of(false).outcome(), StepOutcome::Rejected);
    }

    #[test]
    fn statuses_read_in_messages_as_they_are_stored() {
        assert_eq!(Status::AwaitingApproval.to_string(), "awaiting_approval");
        assert_eq!(Status::Queued.to_string(), "queued");
    }

    #[test]
    fn an_outcome_a_newer_version_wrote_still_reads() {
        let entry: TimelineEntry = serde_json::from_value(serde_json::json!({
            "step": "switch", "at": "2026-11-23T10:00:00Z", "outcome": "paused_by_newer_version"
        }))
        .unwrap();
        assert_eq!(entry.outcome, StepOutcome::Other);
    }
}
