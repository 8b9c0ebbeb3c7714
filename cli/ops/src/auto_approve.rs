//! `bluegreen run --auto-approve`: approves, as the caller, each deployment that awaits
//! approval, once. Only the local runner uses it, against an emulator on this machine.
//!
//! A decision is recorded at once, but the record stays `awaiting_approval` until the approval
//! step takes the decision (the local runner looks every few virtual seconds): a deployment
//! this approver has approved is not asked again, so the second look is not refused with
//! "already approved by" the same approver.

use std::collections::BTreeSet;

use bluegreen::record::{Records, Status, Verdict};
use bluegreen::steps::approval::{self, Decision};
use bluegreen::{Context, StepError, StepResult};

/// The approver and what it has done so far.
#[derive(Debug)]
pub struct AutoApprover {
    approver: String,
    approved: BTreeSet<String>,
    refused: BTreeSet<String>,
}

impl AutoApprover {
    /// Approves as `approver` (the caller's identity).
    pub fn new(approver: String) -> Self {
        AutoApprover {
            approver,
            approved: BTreeSet::new(),
            refused: BTreeSet::new(),
        }
    }

    /// One look: approves each deployment awaiting approval that it has not approved or been
    /// refused before; the lines to print (an approval, or why one was refused, once per
    /// deployment). A read that fails is tried again at the next look.
    pub async fn look(&mut self, ctx: &Context) -> Vec<String> {
        let awaiting = Records::new(ctx)
            .with_status(Status::AwaitingApproval)
            .await
            .unwrap_or_default();
        let mut lines = Vec::new();
        for deployment in awaiting {
            let id = deployment.deployment_id;
            if self.approved.contains(&id) || self.refused.contains(&id) {
                continue;
            }
            let decision = Decision {
                approve: true,
                approver: self.approver.clone(),
                reason: None,
                channel: "cli".into(),
                link_nonce: None,
            };
            let refused = match approval::decide(ctx, &id, &decision).await {
                Ok(_) => None,
                // Throttled or a 5xx: the next look asks again.
                Err(e) if e.is_retryable() => continue,
                // Our own approval, recorded before this look: the step took it since (the
                // index still lists the record), or the answer to our write was lost.
                Err(StepError::NotAwaitingApproval(why)) => {
                    match self.approved_by_me(ctx, &id).await {
                        Ok(true) => None,
                        Ok(false) => Some(StepError::NotAwaitingApproval(why)),
                        Err(e) if e.is_retryable() => continue,
                        Err(e) => Some(e),
                    }
                }
                Err(e) => Some(e),
            };
            match refused {
                None => {
                    lines.push(format!(
                        "approved {id} as {} (--auto-approve)",
                        self.approver
                    ));
                    self.approved.insert(id);
                }
                Some(e) => {
                    lines.push(format!(
                        "--auto-approve could not approve {id}: {}: {e}",
                        e.name()
                    ));
                    self.refused.insert(id);
                }
            }
        }
        lines
    }

    /// Whether the record shows this approver's approval (read again: the decision's answer
    /// may have been lost after it was recorded).
    async fn approved_by_me(&self, ctx: &Context, id: &str) -> StepResult<bool> {
        let d = Records::new(ctx).get(id).await?;
        Ok(d.approval.is_some_and(|a| {
            a.decision == Some(Verdict::Approved) && a.approver.as_deref() == Some(&self.approver)
        }))
    }
}
