//! Who is asking: the IAM principal AWS authenticated, and what the local console attached to
//! a request it accepted. Only server code inserts either; requests cannot.

use axum::http::StatusCode;

use crate::answer::Refusal;

/// A principal AWS authenticated (SigV4 through a function URL or API Gateway, or the local
/// operator's credentials on an emulator). Only server code inserts it; requests cannot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity(pub String);

/// What the local console attaches to each request it accepted.
#[derive(Debug, Clone)]
pub struct LocalRequest {
    /// The token every decision form must carry back.
    pub(crate) csrf: String,
    /// Whether this console takes decisions (an emulator on this machine).
    pub(crate) decides: bool,
}

impl LocalRequest {
    /// Refuses a decision form without this process's token, or any decision against AWS.
    pub(crate) fn check_decision_form(&self, csrf: Option<&str>) -> Result<(), Refusal> {
        if !self.decides {
            return Err(Refusal::new(
                StatusCode::FORBIDDEN,
                "Decide with the CLI",
                "against AWS, decisions go through the operator API: use `bluegreen approve` or \
                 `bluegreen reject`",
            ));
        }
        if !csrf.is_some_and(|sent| constant_time_eq(sent.as_bytes(), self.csrf.as_bytes())) {
            return Err(Refusal::new(
                StatusCode::FORBIDDEN,
                "Form not from this console",
                "the decision form did not carry this console's token; open the deployment page \
                 again and decide there",
            ));
        }
        Ok(())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
