//! Who is deciding: an approver named by a signed link, or an IAM principal established by
//! AWS itself (SigV4) — the CLI and the local console ask STS, the deployed console reads the
//! identity API Gateway verified. Service configs list approvers as e-mail addresses (for links)
//! and/or IAM principal ARNs (for the CLI and API clients).

use crate::context::Context;
use crate::error::StepResult;

/// The ARN of the credentials in use (STS `GetCallerIdentity`, which needs no permission).
pub async fn caller_arn(ctx: &Context) -> StepResult<String> {
    ctx.ports.identity.caller_arn().await
}

/// Refuses (`NotAnOperator`) an operator action on `config`'s service by `who` when the
/// service lists its operators and `who` is none of them (a role admits its sessions). An
/// empty list leaves it to the stack's operator policy.
pub fn ensure_operator(config: &crate::config::ServiceConfig, who: &str) -> StepResult<()> {
    if config.operators.is_empty() || listed_approver(&config.operators, who).is_some() {
        return Ok(());
    }
    Err(crate::error::StepError::NotAnOperator(format!(
        "{who} is not among the operators of {} (its config's `operators`)",
        config.name
    )))
}

/// The entry of `approvers` (or of any list of principals) that `who` is, if any. An assumed-role session
/// (`arn:aws:sts::<account>:assumed-role/<role>/<session>`) also matches its role
/// (`arn:aws:iam::<account>:role/<role>`), so teams can list a role instead of every session.
pub fn listed_approver<'a>(approvers: &'a [String], who: &str) -> Option<&'a String> {
    let role = role_of_session(who);
    approvers
        .iter()
        .find(|entry| entry.as_str() == who || role.as_deref() == Some(entry.as_str()))
}

/// `arn:aws:iam::<account>:role/<role>` for an assumed-role session ARN. Role paths are not part
/// of a session ARN, so a role with a path must be listed by its session ARN pattern instead.
fn role_of_session(arn: &str) -> Option<String> {
    let rest = arn.strip_prefix("arn:")?;
    let mut parts = rest.splitn(5, ':');
    let partition = parts.next()?;
    let service = parts.next()?;
    let _region = parts.next()?;
    let account = parts.next()?;
    let resource = parts.next()?;
    if service != "sts" {
        return None;
    }
    let role = resource.strip_prefix("assumed-role/")?.split('/').next()?;
    Some(format!("arn:{partition}:iam::{account}:role/{role}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approvers() -> Vec<String> {
        vec![
            "alice@example.com".into(),
            "arn:aws:iam::123456789012:role/Releasers".into(),
            "arn:aws:iam::123456789012:user/bob".into(),
        ]
    }

    #[test]
    fn users_match_by_arn_and_sessions_by_their_role() {
        let list = approvers();
        assert_eq!(
            listed_approver(&list, "arn:aws:iam::123456789012:user/bob"),
            Some(&list[2])
        );
        assert_eq!(
            listed_approver(
                &list,
                "arn:aws:sts::123456789012:assumed-role/Releasers/alice-laptop"
            ),
            Some(&list[1])
        );
        assert_eq!(listed_approver(&list, "alice@example.com"), Some(&list[0]));
    }

    #[test]
    fn other_principals_do_not_match() {
        let list = approvers();
        for who in [
            "arn:aws:iam::123456789012:user/mallory",
            "arn:aws:sts::999999999999:assumed-role/Releasers/x",
            "arn:aws:sts::123456789012:assumed-role/ReleasersX/x",
            "arn:aws:iam::123456789012:role/Releasers/extra",
            "ALICE@example.com",
        ] {
            assert_eq!(listed_approver(&list, who), None, "{who}");
        }
    }

    #[test]
    fn a_service_that_lists_operators_admits_them_and_their_sessions_only() {
        let mut config = crate::config::ServiceConfig::from_toml(include_str!(
            "../../../docs/example-service.toml"
        ))
        .unwrap();
        let anyone = "arn:aws:iam::123456789012:user/mallory";
        assert!(
            ensure_operator(&config, anyone).is_ok(),
            "no list: the policy decides"
        );
        config.operators = vec!["arn:aws:iam::123456789012:role/Oncall".into()];
        let err = ensure_operator(&config, anyone).unwrap_err();
        assert_eq!(err.name(), "NotAnOperator");
        assert!(err.to_string().contains(anyone), "{err}");
        assert!(
            ensure_operator(&config, "arn:aws:sts::123456789012:assumed-role/Oncall/pat").is_ok()
        );
        assert!(
            ensure_operator(
                &config,
                "arn:aws:sts::123456789012:assumed-role/Oncall2/pat"
            )
            .is_err()
        );
    }
}
