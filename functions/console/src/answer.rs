//! What every answer of the console carries: a refusal page with its status (for step errors,
//! links and requests the console will not take), the reference that ties it to the log
//! line, and the security headers. Below the router, the operator API and the front door,
//! which all answer with it.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bluegreen::StepError;
use bluegreen::links::LinkError;
use tracing::warn;

use crate::pages;

/// Sets the headers every answer carries (no caching, no referrer, no framing, a strict
/// content security policy): a link in a URL never leaks through a `Referer`.
pub(crate) async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// A page that explains why nothing happened.
pub(crate) struct Refusal {
    status: StatusCode,
    title: &'static str,
    message: String,
}

impl Refusal {
    pub(crate) fn new(status: StatusCode, title: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            status,
            title,
            message: message.into(),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.status, pages::refusal(self.title, &self.message)).into_response()
    }
}

impl From<LinkError> for Refusal {
    fn from(e: LinkError) -> Self {
        let status = match e {
            LinkError::Expired(_) => StatusCode::GONE,
            LinkError::Used => StatusCode::CONFLICT,
            _ => StatusCode::FORBIDDEN,
        };
        Refusal::new(status, "This link cannot be used", e.to_string())
    }
}

/// The HTTP status and page title for a step error.
pub(crate) fn status_of(e: &StepError) -> (StatusCode, &'static str) {
    match e {
        StepError::DeploymentNotFound(_) => (StatusCode::NOT_FOUND, "No such deployment"),
        StepError::ServiceNotFound(_) => (StatusCode::NOT_FOUND, "No such service"),
        StepError::NotAwaitingApproval(_) | StepError::DeploymentEnded { .. } => {
            (StatusCode::CONFLICT, "Nothing to decide")
        }
        StepError::ApprovalTimedOut => (StatusCode::GONE, "Too late"),
        StepError::NotAnApprover(_) => (StatusCode::FORBIDDEN, "Not an approver"),
        StepError::NotAnOperator(_) => (StatusCode::FORBIDDEN, "Not an operator"),
        StepError::EventMalformed(_) => (StatusCode::BAD_REQUEST, "Incomplete request"),
        StepError::InputRefused(_) => (StatusCode::BAD_REQUEST, "Text refused"),
        StepError::RollbackRefused(_)
        | StepError::UnlockRefused(_)
        | StepError::AbortRefused(_)
        | StepError::RetryRefused(_)
        | StepError::ReleaseRefused(_)
        | StepError::SetupRefused(_) => (StatusCode::CONFLICT, "Refused"),
        StepError::DecisionNotDelivered(_) => {
            (StatusCode::BAD_GATEWAY, "Decision recorded, not delivered")
        }
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong"),
    }
}

/// A short random reference that ties what a caller saw to the log line with the details.
pub(crate) fn reference() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

impl From<StepError> for Refusal {
    fn from(e: StepError) -> Self {
        let (status, title) = status_of(&e);
        if !status.is_server_error() {
            return Refusal::new(status, title, format!("{} ({})", e, e.name()));
        }
        // AWS's error text (ARNs, policy names, throttling detail) is for the log, not for
        // whoever holds a link.
        let reference = reference();
        warn!(%reference, error = %e, name = e.name(), "console request failed");
        let message = match e {
            StepError::DecisionNotDelivered(_) => format!(
                "the decision is recorded, but the deployment no longer waits for it (its \
                 approval window closed or it was stopped); it ends as the state machine decides \
                 (reference {reference})"
            ),
            // A decision may be recorded and not yet delivered: the same decision again (the
            // same link or identity) re-sends it.
            _ => format!(
                "the request failed (reference {reference}); if you were deciding, make the same \
                 decision again: a recorded decision is re-sent, never made twice"
            ),
        };
        Refusal::new(status, title, message)
    }
}
