//! The bluegreen approval console: server-rendered pages that show what is about to go live
//! and let an approver approve or reject it.
//!
//! The same [`router`] runs in Lambda (`src/main.rs`, behind a function URL or API Gateway) and
//! locally (`bluegreen console`). Who is deciding is established in one of two ways:
//!
//! - a **signed link** (`?link=…`, see [`bluegreen::links`]) from the approver's notification:
//!   it names the approver and one deployment, expires with the approval window and works for
//!   one decision;
//! - a **[`CallerIdentity`]** that AWS established: the IAM principal API Gateway or a function
//!   URL verified with SigV4 (inserted by the Lambda binary), or the operator's own credentials
//!   for the local console (STS, inserted by `bluegreen console`). Nothing a client sends can
//!   set it.
//!
//! Every page is sent with `Cache-Control: no-store` and `Referrer-Policy: no-referrer`, so a
//! link never leaks to the test URL or the log console through a `Referer` header. Request
//! URIs are never logged (they carry links).

mod pages;

use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use bluegreen::links::{self, LinkClaims, LinkError};
use bluegreen::record::{Deployment, Records, Status};
use bluegreen::steps::approval::{self, Decision, Delivered};
use bluegreen::{Context, StepError};
use serde::Deserialize;
use tracing::{info, warn};

/// How many ended deployments the list page shows.
const RECENT: usize = 20;

/// A principal AWS authenticated (SigV4 through API Gateway or a function URL, or the local
/// operator's credentials). Only server code inserts it; requests cannot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity(pub String);

/// The console's router over `ctx`.
pub fn router(ctx: Context) -> Router {
    Router::new()
        .route("/", get(list))
        .route("/deployments/{id}", get(detail))
        .route("/deployments/{id}/decision", post(decide))
        .with_state(Arc::new(ctx))
        .layer(axum::middleware::map_response(security_headers))
}

async fn security_headers(mut response: Response) -> Response {
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

type Shared = State<Arc<Context>>;
type Identity = Option<Extension<CallerIdentity>>;

#[derive(Debug, Deserialize)]
struct LinkQuery {
    link: Option<String>,
}

/// Who may see or decide a deployment on this request.
#[derive(Debug, Clone)]
enum Viewer {
    /// Holder of a valid, unused link for this deployment.
    Link(LinkClaims),
    /// An AWS-authenticated principal.
    Principal(String),
}

impl Viewer {
    fn name(&self) -> &str {
        match self {
            Viewer::Link(claims) => &claims.approver,
            Viewer::Principal(arn) => arn,
        }
    }
}

/// A page that explains why nothing happened.
struct Refusal {
    status: StatusCode,
    title: &'static str,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, title: &'static str, message: impl Into<String>) -> Self {
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

impl From<StepError> for Refusal {
    fn from(e: StepError) -> Self {
        let (status, title) = match &e {
            StepError::DeploymentNotFound(_) => (StatusCode::NOT_FOUND, "No such deployment"),
            StepError::NotAwaitingApproval(_) | StepError::DeploymentEnded { .. } => {
                (StatusCode::CONFLICT, "Nothing to decide")
            }
            StepError::ApprovalTimedOut => (StatusCode::GONE, "Too late"),
            StepError::NotAnApprover(_) => (StatusCode::FORBIDDEN, "Not an approver"),
            StepError::EventMalformed(_) => (StatusCode::BAD_REQUEST, "Incomplete decision"),
            StepError::DecisionNotDelivered(_) => {
                (StatusCode::BAD_GATEWAY, "Decision recorded, not delivered")
            }
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong"),
        };
        if status.is_server_error() {
            warn!(error = %e, name = e.name(), "console request failed");
        }
        Refusal::new(status, title, format!("{} ({})", e, e.name()))
    }
}

async fn key(ctx: &Context) -> Result<bluegreen::links::SigningKey, Refusal> {
    ctx.signing_key().await?.ok_or_else(|| {
        Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Links are not configured",
            "this console has no link signing secret (BLUEGREEN_LINK_SECRET_ID)",
        )
    })
}

/// Establishes the viewer of `deployment`: a link must be valid for it and unused; without a
/// link, an AWS-authenticated identity is needed.
async fn viewer(
    ctx: &Context,
    deployment: &Deployment,
    link: Option<&str>,
    identity: &Identity,
) -> Result<Viewer, Refusal> {
    match (link.filter(|l| !l.is_empty()), identity) {
        (Some(token), _) => {
            let claims = links::verify(
                &key(ctx).await?,
                token,
                &deployment.deployment_id,
                ctx.now(),
            )?;
            let used = deployment
                .approval
                .as_ref()
                .and_then(|a| a.link_nonce.as_deref())
                == Some(claims.nonce.as_str());
            if used {
                return Err(LinkError::Used.into());
            }
            Ok(Viewer::Link(claims))
        }
        (None, Some(Extension(CallerIdentity(arn)))) => Ok(Viewer::Principal(arn.clone())),
        (None, None) => Err(Refusal::new(
            StatusCode::UNAUTHORIZED,
            "Sign-in needed",
            "open the approval link from your notification, or use `bluegreen approve` with \
             your AWS credentials",
        )),
    }
}

async fn list(State(ctx): Shared, Query(query): Query<LinkQuery>, identity: Identity) -> Response {
    let link_holder = match query.link.as_deref().filter(|l| !l.is_empty()) {
        Some(token) => match link_claims(&ctx, token).await {
            Ok(claims) => Some((claims, token.to_owned())),
            Err(refusal) => return refusal.into_response(),
        },
        None => None,
    };
    if link_holder.is_none() && identity.is_none() {
        return Refusal::new(
            StatusCode::UNAUTHORIZED,
            "Sign-in needed",
            "open the approval link from your notification",
        )
        .into_response();
    }
    let records = Records::new(&ctx);
    let pending = records.with_status(Status::AwaitingApproval).await;
    let recent = records.recent(RECENT).await;
    match (pending, recent) {
        (Ok(pending), Ok(recent)) => {
            let own = link_holder
                .as_ref()
                .map(|(claims, token)| (claims.deployment_id.as_str(), token.as_str()));
            pages::list(&pending, &recent, own).into_response()
        }
        (Err(e), _) | (_, Err(e)) => Refusal::from(e).into_response(),
    }
}

/// A link's claims for the list page: signature and expiry (it may name any deployment).
async fn link_claims(ctx: &Context, token: &str) -> Result<LinkClaims, Refusal> {
    Ok(links::verify_unscoped(&key(ctx).await?, token, ctx.now())?)
}

async fn detail(
    State(ctx): Shared,
    Path(id): Path<String>,
    Query(query): Query<LinkQuery>,
    identity: Identity,
) -> Response {
    let deployment = match Records::new(&ctx).get(&id).await {
        Ok(d) => d,
        Err(e) => return Refusal::from(e).into_response(),
    };
    match viewer(&ctx, &deployment, query.link.as_deref(), &identity).await {
        Ok(viewer) => pages::detail(
            &deployment,
            viewer.name(),
            query
                .link
                .as_deref()
                .filter(|_| matches!(viewer, Viewer::Link(_))),
            ctx.region.as_deref(),
        )
        .into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct DecisionForm {
    decision: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    link: Option<String>,
}

async fn decide(
    State(ctx): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
    identity: Identity,
    Form(form): Form<DecisionForm>,
) -> Response {
    match decide_inner(&ctx, &id, &headers, &identity, form).await {
        Ok(page) => page,
        Err(refusal) => refusal.into_response(),
    }
}

async fn decide_inner(
    ctx: &Context,
    id: &str,
    headers: &HeaderMap,
    identity: &Identity,
    form: DecisionForm,
) -> Result<Response, Refusal> {
    let approve = match form.decision.as_str() {
        "approve" => true,
        "reject" => false,
        other => {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "Incomplete decision",
                format!("unknown decision {other:?}; expected approve or reject"),
            ));
        }
    };
    let deployment = Records::new(ctx).get(id).await?;
    let viewer = viewer(ctx, &deployment, form.link.as_deref(), identity).await?;
    if matches!(viewer, Viewer::Principal(_)) && !same_origin(headers) {
        // An identity comes with every request (like a cookie); a form posted from another
        // site must not be able to use it. A link in the form is proof enough on its own.
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "Cross-site request refused",
            "decisions must be posted from the console's own page",
        ));
    }
    let decision = Decision {
        approve,
        approver: viewer.name().to_owned(),
        reason: form
            .reason
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty()),
        channel: "console".into(),
        link_nonce: match &viewer {
            Viewer::Link(claims) => Some(claims.nonce.clone()),
            Viewer::Principal(_) => None,
        },
    };
    let delivered = approval::decide_and_send(ctx, id, &decision).await?;
    info!(
        deployment_id = %id,
        approver = %decision.approver,
        approve,
        delivered = ?delivered,
        "decision recorded"
    );
    let deployment = Records::new(ctx).get(id).await?;
    Ok(pages::decided(&deployment, approve, delivered == Delivered::StepFunctions).into_response())
}

/// Whether a POST came from a page of this origin: `Origin` (sent by browsers with form
/// posts) must name the `Host` the request was sent to. Non-browser clients send no `Origin`.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    origin
        .split_once("://")
        .map(|(_, rest)| rest == host)
        .unwrap_or(false)
}
