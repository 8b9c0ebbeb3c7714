//! What `bluegreen status` shows for a service: production's routing read from AWS now, the
//! deployment holding the service (its lock) or else the newest one that ran, and the push
//! waiting behind it, and what the live-slot guard finds while nobody deploys. Every read is by
//! key or by index: the cost does not grow with the
//! service's history.

use serde::Serialize;

use bluegreen::config::ServiceConfig;
use bluegreen::context::Context;
use bluegreen::error::{StepError, StepResult};
use bluegreen::guard;
use bluegreen::lock::Locks;
use bluegreen::record::{Deployment, Records, Status};
use bluegreen::routes;
use bluegreen::routing::{self, RouteState};
use bluegreen::slot::Slot;

/// One service's line of `status`.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    /// The service.
    pub service: String,
    /// Production routing read from AWS now, e.g. `blue 100%`.
    pub production: String,
    /// Every other route to a slot (listener mode: host and path rules, other listeners), as
    /// `<route>: blue 100%`; whether the switch moves them is `traffic.routes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<String>,
    /// The deployment that holds the service (its lock), else the newest one that ran: not a
    /// queued push, which waits behind it.
    pub latest: Option<Deployment>,
    /// The push waiting for the service (the lock's queue holds one: the newest wins).
    pub queued: Vec<String>,
    /// What the live-slot guard finds now, with the repair, while no deployment holds the
    /// service (see [`bluegreen::guard`]); empty when all is well or a deployment holds it.
    pub guard: Vec<String>,
}

/// The status of the service `config` describes.
pub async fn of(ctx: &Context, config: ServiceConfig) -> StepResult<ServiceStatus> {
    let records = Records::new(ctx);
    let lock = Locks::new(ctx).read(&config.name).await?;
    let holder = match &lock {
        Some(lock) => match records.get(&lock.holder).await {
            Ok(d) => Some(d),
            Err(StepError::DeploymentNotFound(_)) => None, // an operator's hold
            Err(e) => return Err(e),
        },
        None => None,
    };
    let waiting = |d: &Deployment| matches!(d.status, Status::Queued | Status::Superseded);
    let latest = match holder {
        Some(d) => Some(d),
        None => match records
            .newest_for_service(&config.name, |d| !waiting(d))
            .await?
        {
            Some(d) => Some(d),
            None => records.for_service(&config.name, 1).await?.pop(),
        },
    };
    let guard = match &lock {
        Some(_) => Vec::new(),
        None => match guard::findings(ctx, &config).await {
            Ok(found) => found
                .into_iter()
                .map(|(_, problem, fix)| format!("{problem}: {fix}"))
                .collect(),
            Err(e) => vec![format!("live-slot guard could not check: {e}")],
        },
    };
    let routes = match routing::other_routes(ctx, &config).await {
        Ok(found) => found
            .into_iter()
            .map(|(route, weights)| {
                let text =
                    weights.map_or_else(|e| format!("unreadable: {e}"), |w| routing_text(Ok(w)));
                format!("{}: {text}", routes::describe(&route))
            })
            .collect(),
        Err(e) => vec![format!("other routes unreadable: {}", e.name())],
    };
    Ok(ServiceStatus {
        guard,
        routes,
        production: routing_text(routing::read_production(ctx, &config).await),
        service: config.name,
        latest,
        queued: lock.and_then(|l| l.queued).into_iter().collect(),
    })
}

/// `blue 100%`, `blue 90% / green 10%`, or why routing could not be read.
fn routing_text(state: StepResult<RouteState>) -> String {
    match state {
        Ok(state) => {
            let b = state.percent(Slot::Blue);
            let g = state.percent(Slot::Green);
            match (b, g) {
                (100, _) => "blue 100%".into(),
                (_, 100) => "green 100%".into(),
                _ => format!("blue {b}% / green {g}%"),
            }
        }
        Err(e) => format!("unreadable: {}", e.name()),
    }
}
