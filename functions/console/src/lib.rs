//! The bluegreen approval console: server-rendered pages that show what is about to go live
//! and let an approver approve or reject it, and the operator API behind IAM.
//!
//! The same pages run in Lambda (`src/main.rs`, [`lambda_app`]) and locally
//! (`bluegreen console`, [`local`]). Who is deciding is established in one of two ways:
//!
//! - a **signed link** (`?link=…`, see [`bluegreen::links`]) from the approver's notification:
//!   it names the approver and one deployment, expires with the approval window and works for
//!   one decision;
//! - a **[`CallerIdentity`]** that AWS established: the IAM principal a function URL with
//!   `AuthType AWS_IAM` (or API Gateway) verified with SigV4, inserted by [`lambda_app`] from
//!   the request context; or, on an emulator only, the local operator's credentials. Nothing a
//!   client sends can set it.
//!
//! A link's signature is checked before anything is read from DynamoDB, so forged links cost
//! the table nothing; a link holder sees their own deployment only (the list page sends them
//! there), so anonymous callers never cause a table-wide read. Server errors show a reference,
//! never AWS's error text; the text is logged with the reference.
//!
//! Every page is sent with `Cache-Control: no-store` and `Referrer-Policy: no-referrer`, so a
//! link never leaks to the test URL or the log console through a `Referer` header. Request
//! URIs are never logged (they carry links).

mod answer;
pub mod api;
mod caller;
mod charts;
mod delivery_pages;
pub mod front;
pub mod local;
mod pages;

pub use caller::{CallerIdentity, LocalRequest};

use std::sync::Arc;

use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use bluegreen::Context;
use bluegreen::links::{self, LinkClaims, LinkError};
use bluegreen::record::{Deployment, Records, Status, Verdict};
use bluegreen::steps::approval::{self, Decision, Delivered};

use crate::answer::{Refusal, security_headers};
use serde::Deserialize;
use tracing::info;

/// How many ended deployments the list page shows.
const RECENT: usize = 20;

/// The largest request body the console reads: a decision form (a reason of at most
/// [`bluegreen::text::REASON_MAX_CHARS`] characters and a link) or an operator API request.
/// Larger bodies are answered 413 with the console's headers.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The console's pages over `ctx`: list, deployment, decision form.
pub fn router(ctx: Context) -> Router {
    answered(pages_router())
        .with_state(Arc::new(ctx))
        .layer(axum::middleware::map_response(security_headers))
}

/// Every request gets a page that names the problem, even where no route matches (404), the
/// method is wrong (405) or the body is too large (413).
fn answered(routes: Router<Arc<Context>>) -> Router<Arc<Context>> {
    routes
        .fallback(|| async {
            Refusal::new(
                StatusCode::NOT_FOUND,
                "No such page",
                "nothing is served at this address",
            )
        })
        .method_not_allowed_fallback(|| async {
            Refusal::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed",
                "this address does not take that method",
            )
        })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
}

fn pages_router() -> Router<Arc<Context>> {
    Router::new()
        .route("/", get(list))
        .route("/metrics", get(metrics))
        .route("/services/{name}", get(service))
        .route("/deployments/{id}", get(detail))
        .route("/deployments/{id}/decision", post(decide))
}

/// What the Lambda binary serves: the pages and the operator API ([`api`]), with the IAM
/// principal a function URL (`AuthType AWS_IAM`) or API Gateway verified as the
/// [`CallerIdentity`]. Behind a function URL with `AuthType NONE` there never is one: pages
/// need a link and every API route answers 401.
pub fn lambda_app(ctx: Context) -> Router {
    answered(pages_router().merge(api::routes()))
        .with_state(Arc::new(ctx))
        .layer(axum::middleware::map_response(security_headers))
        .layer(axum::middleware::from_fn(identify))
}

/// The IAM principal API Gateway (REST or HTTP API) or a function URL authenticated, if the
/// route uses IAM authorization. Taken from the invocation's request context, which the client
/// cannot write.
fn iam_principal(request: &Request) -> Option<String> {
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;
    match request.extensions().request_context_ref()? {
        // Function URLs send API Gateway's payload format 2.0.
        RequestContext::ApiGatewayV2(context) => {
            context.authorizer.as_ref()?.iam.as_ref()?.user_arn.clone()
        }
        RequestContext::ApiGatewayV1(context) => context.identity.user_arn.clone(),
        // Other integrations carry no IAM identity: such requests need a link.
        _ => None,
    }
}

async fn identify(mut request: Request, next: Next) -> Response {
    // Only the request context says who is calling, whatever else the request carries.
    request.extensions_mut().remove::<CallerIdentity>();
    if let Some(arn) = iam_principal(&request) {
        request.extensions_mut().insert(CallerIdentity(arn));
    }
    next.run(request).await
}

type Shared = State<Arc<Context>>;
type Identity = Option<Extension<CallerIdentity>>;
type Local = Option<Extension<LocalRequest>>;

#[derive(Debug, Deserialize)]
struct LinkQuery {
    link: Option<String>,
}

/// Who may see or decide a deployment on this request.
#[derive(Debug, Clone)]
enum Viewer {
    /// Holder of a valid link for this deployment.
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

async fn key(ctx: &Context) -> Result<bluegreen::links::SigningKey, Refusal> {
    ctx.signing_key().await?.ok_or_else(|| {
        Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Links are not configured",
            "this console has no link signing secret (BLUEGREEN_LINK_SECRET_ID)",
        )
    })
}

/// Establishes who is asking about deployment `id` before anything is read: a link's
/// signature, expiry and deployment are checked here (whether it was used needs the record:
/// [`unused`]). Without a link, an AWS-authenticated identity is needed.
async fn viewer(
    ctx: &Context,
    id: &str,
    link: Option<&str>,
    identity: &Identity,
) -> Result<Viewer, Refusal> {
    match (link.filter(|l| !l.is_empty()), identity) {
        (Some(token), _) => Ok(Viewer::Link(links::verify(
            &key(ctx).await?,
            token,
            id,
            ctx.now(),
        )?)),
        (None, Some(Extension(CallerIdentity(arn)))) => Ok(Viewer::Principal(arn.clone())),
        (None, None) => Err(Refusal::new(
            StatusCode::UNAUTHORIZED,
            "Sign-in needed",
            "open the approval link from your notification, or use `bluegreen approve` with \
             your AWS credentials",
        )),
    }
}

/// Refuses a link whose nonce already decided `deployment`.
fn unused(viewer: &Viewer, deployment: &Deployment) -> Result<(), Refusal> {
    if let Viewer::Link(claims) = viewer {
        let used = deployment
            .approval
            .as_ref()
            .and_then(|a| a.link_nonce.as_deref())
            == Some(claims.nonce.as_str());
        if used {
            return Err(LinkError::Used.into());
        }
    }
    Ok(())
}

/// Whether a link that already decided `deployment` is used again to make the same decision
/// while Step Functions never received it (its `SendTaskSuccess` failed): that is the one way
/// a link holder re-sends their decision ([`approval::decide`] re-delivers it).
fn repeats_undelivered(viewer: &Viewer, deployment: &Deployment, approve: bool) -> bool {
    let (Viewer::Link(claims), Some(recorded)) = (viewer, deployment.approval.as_ref()) else {
        return false;
    };
    recorded.link_nonce.as_deref() == Some(claims.nonce.as_str())
        && recorded.delivered_at.is_none()
        && recorded.decision == Some(Verdict::of(approve))
}

async fn list(State(ctx): Shared, Query(query): Query<LinkQuery>, identity: Identity) -> Response {
    let listed = async {
        if let Some(token) = query.link.as_deref().filter(|l| !l.is_empty()) {
            // A link opens one deployment: send its holder there, reading nothing.
            let claims = links::verify_unscoped(&key(&ctx).await?, token, ctx.now())?;
            return Ok(Redirect::to(&format!(
                "/deployments/{}?link={token}",
                claims.deployment_id
            ))
            .into_response());
        }
        if identity.is_none() {
            return Err(Refusal::new(
                StatusCode::UNAUTHORIZED,
                "Sign-in needed",
                "open the approval link from your notification",
            ));
        }
        let records = Records::new(&ctx);
        let pending = records.with_status(Status::AwaitingApproval).await?;
        let recent = records.recent(RECENT).await?;
        Ok(pages::list(&pending, &recent).into_response())
    };
    listed.await.unwrap_or_else(IntoResponse::into_response)
}

#[derive(Debug, Deserialize)]
struct SinceQuery {
    /// The window's start (`30d`, a date; see `bluegreen::delivery::parse_since`).
    since: Option<String>,
}

/// Deployments of the last 30 days unless `?since=` says otherwise.
const DEFAULT_WINDOW: &str = "30d";
/// The window `?since=` asks for, or a page saying why it is not one.
fn window(ctx: &Context, query: &SinceQuery) -> Result<chrono::DateTime<chrono::Utc>, Refusal> {
    let since = query.since.as_deref().unwrap_or(DEFAULT_WINDOW);
    bluegreen::delivery::parse_since(since, ctx.now())
        .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, "Not a window", e))
}

/// A metrics page needs an AWS-authenticated viewer: a link opens only its own deployment.
fn signed_in(identity: &Identity) -> Result<(), Refusal> {
    match identity {
        Some(_) => Ok(()),
        None => Err(Refusal::new(
            StatusCode::UNAUTHORIZED,
            "Sign-in needed",
            "delivery metrics are for AWS-authenticated viewers (`bluegreen console`, or \
             `bluegreen metrics`)",
        )),
    }
}

/// A delivery page's window start, its records and what the numbers read of each.
type DeliveryWindow = (
    chrono::DateTime<chrono::Utc>,
    Vec<Deployment>,
    Vec<bluegreen::delivery::Delivered>,
);

/// What a delivery page reads, once its viewer is signed in: the window `?since=` asks for,
/// the records made in it (of `service`, or of every service), and what the numbers read of
/// each.
async fn delivery_window(
    ctx: &Context,
    query: &SinceQuery,
    identity: &Identity,
    service: Option<&str>,
) -> Result<DeliveryWindow, Refusal> {
    signed_in(identity)?;
    let since = window(ctx, query)?;
    let records = Records::new(ctx).created_since(service, since).await?;
    let delivered = records
        .iter()
        .map(bluegreen::delivery::Delivered::of)
        .collect();
    Ok((since, records, delivered))
}

async fn metrics(
    State(ctx): Shared,
    Query(query): Query<SinceQuery>,
    identity: Identity,
) -> Response {
    let shown = async {
        let (since, _, delivered) = delivery_window(&ctx, &query, &identity, None).await?;
        let all = bluegreen::delivery::by_service(&delivered, since, ctx.now());
        Ok::<_, Refusal>(delivery_pages::overview(&all, since).into_response())
    };
    shown.await.unwrap_or_else(IntoResponse::into_response)
}

async fn service(
    State(ctx): Shared,
    Path(name): Path<String>,
    Query(query): Query<SinceQuery>,
    identity: Identity,
) -> Response {
    let shown = async {
        let (since, records, delivered) =
            delivery_window(&ctx, &query, &identity, Some(&name)).await?;
        if records.is_empty() {
            return Err(Refusal::new(
                StatusCode::NOT_FOUND,
                "No deployments",
                format!("no deployment of {name} since {since}"),
            ));
        }
        let numbers = bluegreen::delivery::measure(&delivered, Some(&name), since, ctx.now());
        Ok(delivery_pages::service(&name, &numbers, &records, ctx.now()).into_response())
    };
    shown.await.unwrap_or_else(IntoResponse::into_response)
}

async fn detail(
    State(ctx): Shared,
    Path(id): Path<String>,
    Query(query): Query<LinkQuery>,
    identity: Identity,
    local: Local,
) -> Response {
    let shown = async {
        let viewer = viewer(&ctx, &id, query.link.as_deref(), &identity).await?;
        let deployment = Records::new(&ctx).get(&id).await?;
        unused(&viewer, &deployment)?;
        let link = query
            .link
            .as_deref()
            .filter(|_| matches!(viewer, Viewer::Link(_)));
        let form = match local.as_ref().map(|Extension(l)| l) {
            Some(l) if !l.decides => None,
            Some(l) => Some(pages::FormFields {
                link,
                csrf: Some(&l.csrf),
            }),
            None => Some(pages::FormFields { link, csrf: None }),
        };
        Ok::<_, Refusal>(
            pages::detail(
                &deployment,
                viewer.name(),
                matches!(viewer, Viewer::Principal(_)),
                form,
                ctx.region.as_deref(),
            )
            .into_response(),
        )
    };
    shown.await.unwrap_or_else(IntoResponse::into_response)
}

#[derive(Debug, Deserialize)]
struct DecisionForm {
    decision: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    link: Option<String>,
    /// The local console's per-process token ([`local`]); other consoles send none.
    #[serde(default)]
    csrf: Option<String>,
}

async fn decide(
    State(ctx): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
    identity: Identity,
    local: Local,
    Form(form): Form<DecisionForm>,
) -> Response {
    let local = local.map(|Extension(l)| l);
    decide_inner(&ctx, &id, &headers, &identity, local.as_ref(), form)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn decide_inner(
    ctx: &Context,
    id: &str,
    headers: &HeaderMap,
    identity: &Identity,
    local: Option<&LocalRequest>,
    form: DecisionForm,
) -> Result<Response, Refusal> {
    if let Some(local) = local {
        local.check_decision_form(form.csrf.as_deref())?;
    }
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
    let viewer = viewer(ctx, id, form.link.as_deref(), identity).await?;
    if matches!(viewer, Viewer::Principal(_)) && !same_origin(headers) {
        // An identity comes with every request (like a cookie); a form posted from another
        // site must not be able to use it. A link in the form is proof enough on its own.
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "Cross-site request refused",
            "decisions must be posted from the console's own page",
        ));
    }
    let deployment = Records::new(ctx).get(id).await?;
    if !repeats_undelivered(&viewer, &deployment, approve) {
        unused(&viewer, &deployment)?;
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
