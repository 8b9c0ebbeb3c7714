//! `bluegreen run --auto-approve`: approves, as the caller, each deployment *of this run* that
//! awaits approval, once — never another service's or another terminal's. Only the local
//! runner uses it, against an emulator on this machine. Before anything starts, the run checks
//! that the caller may approve every service the push deploys ([`may_approve`]), so a caller
//! who is not listed is told at once instead of waiting out the approval window.
//!
//! A decision is recorded at once, but the record stays `awaiting_approval` until the approval
//! step takes the decision (the local runner looks every few virtual seconds): a deployment
//! this approver has approved is not asked again, so the second look is not refused with
//! "already approved by" the same approver.

use std::collections::BTreeSet;

use bluegreen::config::{ApprovalPolicy, ServiceConfig};
use bluegreen::identity::listed_approver;
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

    /// One look: approves each deployment of `this_run` awaiting approval that it has not
    /// approved or been refused before; the lines to print (an approval, or why one was
    /// refused, once per deployment). A read that fails is tried again at the next look.
    pub async fn look(&mut self, ctx: &Context, this_run: &BTreeSet<String>) -> Vec<String> {
        let awaiting = Records::new(ctx)
            .with_status(Status::AwaitingApproval)
            .await
            .unwrap_or_default();
        let mut lines = Vec::new();
        for deployment in awaiting {
            let id = deployment.deployment_id;
            let seen = self.approved.contains(&id) || self.refused.contains(&id);
            if seen || !this_run.contains(&id) {
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

/// Whether `caller` can approve deployments of `config`: a service whose approval is
/// automatic needs nobody; otherwise `caller` (or the role of its session) must be listed.
/// The refusal says who can, and what to do instead.
pub fn may_approve(config: &ServiceConfig, caller: &str) -> Result<(), String> {
    let approval = &config.approval;
    if approval.policy == ApprovalPolicy::Auto
        || listed_approver(&approval.approvers, caller).is_some()
    {
        return Ok(());
    }
    Err(format!(
        "--auto-approve approves as {caller}, who is not an approver of {} (its approvers: \
         {}); nothing was started. Add {caller} to approval.approvers, or run without \
         --auto-approve and approve as a listed approver (`bluegreen approve <deployment-id>`)",
        config.name,
        if approval.approvers.is_empty() {
            "none".to_owned()
        } else {
            approval.approvers.join(", ")
        }
    ))
}
