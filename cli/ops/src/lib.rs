//! # bluegreen-ops
//!
//! The set-up and diagnosis commands of the `bluegreen` CLI: `adopt` (one service becomes a
//! blue/green pair), `doctor` (what is wrong with an installation or a service), `install`
//! (`init --local`), `status` and `follow` (what people watch), approvers' subscriptions,
//! `run --auto-approve`'s approver, and
//! the direct AWS calls they make (`direct`: whole resources created, copied and inspected,
//! which the steps never do). None of it runs in a Lambda function: the step functions link
//! the `bluegreen` library alone.

pub mod adopt;
pub mod auto_approve;
pub mod direct;
pub mod doctor;
pub mod follow;
pub mod install;
pub mod local;
pub mod status;
pub mod subscriptions;
