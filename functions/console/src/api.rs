//! The operator API: the only place decisions and operator actions are taken against AWS.
//!
//! Served by the console function behind a function URL with `AuthType AWS_IAM` (see
//! docs/console.md for why not API Gateway): AWS verifies the caller's SigV4 signature and
//! puts the principal in the request context, which [`crate::lambda_app`] turns into the
//! [`CallerIdentity`]. A request without one is answered 401 before anything is read. So a
//! person needs `lambda:InvokeFunctionUrl` on this function and nothing else: no DynamoDB write,
//! no `states:SendTask*` (the stack's `OperatorPolicy`).
//!
//! Routes (JSON in, JSON out; errors are `{"error": <stable name>, "message": …}`):
//!
//! | route | does |
//! | --- | --- |
//! | `POST /api/v1/deployments/{id}/approve` `{"reason"?}` | approve as the caller |
//! | `POST /api/v1/deployments/{id}/reject` `{"reason"}` | reject as the caller |
//! | `POST /api/v1/deployments/{id}/abort` | [`operator::abort`] |
//! | `POST /api/v1/deployments/{id}/retry` | [`operator::retry`] |
//! | `POST /api/v1/services/{service}/rollback` | [`operator::manual_rollback`] |
//! | `POST /api/v1/services/{service}/rollback-to` `{"to", "request_id"?}` | [`release::roll_back_to`] |
//! | `POST /api/v1/services/{service}/unlock` | [`operator::unlock`] |
//! | `POST /api/v1/services/{service}/redeploy` `{"request_id"?}` | [`release::redeploy`] |
//! | `POST /api/v1/services/{service}/deploy` `{"tag" \| "digest", "request_id"?}` | [`release::deploy`] |
//!
//! Approvals check the caller against the approvers of the service's current config
//! ([`approval::decide`]); operator actions against its `operators` when it lists any
//! ([`operator::authorize`]), else they are open to every caller the IAM policy admits.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use bluegreen::ports::registry::ImageReference;
use bluegreen::record::Verdict;
use bluegreen::steps::approval::{self, Decided, Decision};
use bluegreen::{Context, StepError, StepResult, operator, release};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::answer::{reference, status_of};
use crate::caller::CallerIdentity;

/// How long `retry` may wait for a rollback migration inside one API call: under the
/// function's 15-minute limit, with room to answer.
const API_RETRY_WAIT_LIMIT: Duration = Duration::from_secs(12 * 60);

/// The body of every API request (`{}` when there is nothing to say).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ActionRequest {
    /// Why (required to reject).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Makes a request that starts something idempotent (`redeploy`): the same id again
    /// answers what the first request started. The CLI sends a fresh UUID per command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// `rollback-to` only: the earlier deployment to deploy again through the full flow
    /// ([`release::roll_back_to`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// `deploy` only: the tag of the service's repository to deploy (resolved to its digest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// `deploy` only: the digest (`sha256:…`) of the service's repository to deploy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl ActionRequest {
    /// The image a `deploy` request names: exactly one of `tag` and `digest`.
    pub fn image(&self) -> StepResult<ImageReference> {
        match (&self.tag, &self.digest) {
            (Some(tag), None) => Ok(ImageReference::Tag(tag.clone())),
            (None, Some(digest)) => Ok(ImageReference::Digest(digest.clone())),
            _ => Err(StepError::EventMalformed(
                "name the image to deploy with exactly one of \"tag\" and \"digest\"".into(),
            )),
        }
    }
}

/// An API error body.
#[derive(Debug, Serialize, Deserialize)]
pub struct ApiError {
    /// The stable error name ([`StepError::name`], or `Unauthenticated`).
    pub error: String,
    /// What happened, for people.
    pub message: String,
}

pub(crate) fn routes() -> Router<Arc<Context>> {
    Router::new()
        .route("/api/v1/deployments/{id}/approve", post(approve))
        .route("/api/v1/deployments/{id}/reject", post(reject))
        .route("/api/v1/deployments/{id}/abort", post(abort))
        .route("/api/v1/deployments/{id}/retry", post(retry))
        .route("/api/v1/services/{service}/rollback", post(rollback))
        .route("/api/v1/services/{service}/unlock", post(unlock))
        .route("/api/v1/services/{service}/redeploy", post(redeploy))
        .route("/api/v1/services/{service}/deploy", post(deploy))
        .route("/api/v1/services/{service}/rollback-to", post(rollback_to))
}

type Caller = Option<Extension<CallerIdentity>>;
type Shared = State<Arc<Context>>;

/// Runs `action` as the authenticated caller and answers with its JSON, or the error's.
async fn as_caller<T, F, Fut>(caller: Caller, action: F) -> Response
where
    T: Serialize,
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = StepResult<T>>,
{
    let Some(Extension(CallerIdentity(arn))) = caller else {
        return (
            StatusCode::UNAUTHORIZED,
            Json(ApiError {
                error: "Unauthenticated".into(),
                message: "the operator API needs a SigV4-signed request (function URL with \
                          AuthType AWS_IAM)"
                    .into(),
            }),
        )
            .into_response();
    };
    match action(arn.clone()).await {
        Ok(done) => Json(done).into_response(),
        Err(e) => {
            let (status, _) = status_of(&e);
            if status.is_server_error() {
                warn!(reference = %reference(), caller = %arn, error = %e, name = e.name(), "API request failed");
            }
            // Callers are authenticated operators: they see the whole message.
            (
                status,
                Json(ApiError {
                    error: e.name().into(),
                    message: e.to_string(),
                }),
            )
                .into_response()
        }
    }
}

async fn decide(
    ctx: &Context,
    id: &str,
    approve: bool,
    approver: String,
    reason: Option<String>,
) -> StepResult<Decided> {
    let decision = Decision {
        approve,
        approver,
        reason: reason
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty()),
        channel: "api".into(),
        link_nonce: None,
    };
    let delivered = approval::decide_and_send(ctx, id, &decision).await?;
    info!(deployment_id = %id, approver = %decision.approver, approve, delivered = ?delivered, "decision recorded");
    Ok(Decided {
        deployment_id: id.to_owned(),
        decision: Verdict::of(approve),
        approver: decision.approver,
        delivered,
    })
}

async fn approve(
    State(ctx): Shared,
    Path(id): Path<String>,
    caller: Caller,
    body: Body,
) -> Response {
    decision(ctx, id, true, caller, body).await
}

async fn reject(
    State(ctx): Shared,
    Path(id): Path<String>,
    caller: Caller,
    body: Body,
) -> Response {
    decision(ctx, id, false, caller, body).await
}

type Body = Option<Json<ActionRequest>>;

async fn decision(
    ctx: Arc<Context>,
    id: String,
    approve: bool,
    caller: Caller,
    body: Body,
) -> Response {
    let reason = body.and_then(|Json(b)| b.reason);
    as_caller(caller, |who| async move {
        decide(&ctx, &id, approve, who, reason).await
    })
    .await
}

async fn abort(State(ctx): Shared, Path(id): Path<String>, caller: Caller) -> Response {
    as_caller(caller, |who| async move {
        operator::abort(&ctx, &id, &who).await
    })
    .await
}

async fn retry(State(ctx): Shared, Path(id): Path<String>, caller: Caller) -> Response {
    as_caller(caller, |who| async move {
        operator::retry(&ctx, &id, &who, API_RETRY_WAIT_LIMIT).await
    })
    .await
}

async fn rollback(State(ctx): Shared, Path(service): Path<String>, caller: Caller) -> Response {
    as_caller(caller, |who| async move {
        operator::manual_rollback(&ctx, &service, &who).await
    })
    .await
}

/// Its own route, not a body field of `rollback`: a request whose body is lost or misspelt
/// must not turn into an immediate traffic switch.
async fn rollback_to(
    State(ctx): Shared,
    Path(service): Path<String>,
    caller: Caller,
    body: Body,
) -> Response {
    let ActionRequest { to, request_id, .. } = body.map(|Json(b)| b).unwrap_or_default();
    let request_id = request_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    as_caller(caller, |who| async move {
        let to = to.ok_or_else(|| {
            bluegreen::StepError::EventMalformed(
                "rollback-to needs {\"to\": \"<deployment id>\"}".into(),
            )
        })?;
        release::roll_back_to(&ctx, &service, &to, &who, &request_id).await
    })
    .await
}

async fn unlock(State(ctx): Shared, Path(service): Path<String>, caller: Caller) -> Response {
    as_caller(caller, |who| async move {
        operator::unlock(&ctx, &service, &who).await
    })
    .await
}

async fn deploy(
    State(ctx): Shared,
    Path(service): Path<String>,
    caller: Caller,
    body: Body,
) -> Response {
    let body = body.map(|Json(b)| b).unwrap_or_default();
    // Without an id (a hand-made request) every request is a new one.
    let request_id = body
        .request_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    as_caller(caller, |who| async move {
        release::deploy(&ctx, &service, &body.image()?, &who, &request_id).await
    })
    .await
}

async fn redeploy(
    State(ctx): Shared,
    Path(service): Path<String>,
    caller: Caller,
    body: Body,
) -> Response {
    // Without an id (a hand-made request) every request is a new one.
    let request_id = body
        .and_then(|Json(b)| b.request_id)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    as_caller(caller, |who| async move {
        release::redeploy(&ctx, &service, &who, &request_id).await
    })
    .await
}
