//! Production and test routing: reading which slot is live from AWS (never from a cached
//! flag) and moving traffic between slots, in listener mode (ALB) or DNS mode (Route 53).

use tracing::warn;

use crate::config::{ServiceConfig, TestRoute};
use crate::context::Context;
use crate::error::{StepError, StepResult};
use crate::ports::load_balancing::Route;
use crate::routes::{self, weights_of};
use crate::slot::Slot;
use crate::traffic_mode::{self, forward, reweigh};

pub use crate::routes::RouteState;

/// Reads production routing from the listener (or rule) or the Route 53 records.
pub async fn read_production(ctx: &Context, config: &ServiceConfig) -> StepResult<RouteState> {
    traffic_mode::of(config).read(ctx).await
}

/// Which slot the test listener sends to; `None` with a test rule (each deployment adds its
/// own, see [`crate::test_rule`]) and in DNS mode.
pub async fn read_test(ctx: &Context, config: &ServiceConfig) -> StepResult<Option<Slot>> {
    match config.traffic.test_route() {
        TestRoute::Listener(arn) => {
            let route = Route::Listener(arn.to_owned());
            let state = weights_of(config, forward(ctx, &route).await?)?;
            state.live().map(Some)
        }
        TestRoute::Rule(_) | TestRoute::SlotUrls | TestRoute::Ecs => Ok(None),
    }
}

/// Sends `percent` of production traffic to `slot` and the rest to the other slot, in one API
/// call. Returns the Route 53 change id in DNS mode (wait for it with [`change_in_sync`]).
pub async fn set_production(
    ctx: &Context,
    config: &ServiceConfig,
    slot: Slot,
    percent: i64,
) -> StepResult<Option<String>> {
    traffic_mode::of(config).write(ctx, slot, percent).await
}

/// Sends `percent` of production traffic to `slot` unless it already gets exactly that, then
/// reads production back and compares: bluegreen's one "write traffic, read it back,
/// compare". `Ok(Err(mismatch))` describes a read-back that differs (the caller names the
/// error: a switch, a rollback); `Ok(Ok(change))` carries the Route 53 change id when DNS was
/// written (wait for it with [`change_in_sync`]).
pub async fn set_production_verified(
    ctx: &Context,
    config: &ServiceConfig,
    slot: Slot,
    percent: i64,
    way: Move,
) -> StepResult<Result<Option<String>, String>> {
    let mode = traffic_mode::of(config);
    // A move forward finds and judges the other routes before anything moves; a move back
    // moves production first (nothing may hold it up) and looks for them after.
    let judged = match way {
        Move::Forward => Some(companions_for(ctx, config, way).await?),
        Move::Back => None,
    };
    let change = if mode.read(ctx).await?.percent(slot) != percent {
        mode.write(ctx, slot, percent).await?
    } else {
        None
    };
    // Once production moved back, every other route is tried: one that cannot be moved is
    // logged and left (and keeps its slot from scaling down); a failure worth retrying is
    // answered once the rest was tried, so the retry — which finds production back — moves
    // what is left.
    let mut retry_later = None;
    let mut tolerate = |what: String, result: StepResult<()>| match (result, way) {
        (Err(e), Move::Back) => {
            warn!(service = %config.name, error = %e, "{what}: left where it is");
            if e.is_retryable() && retry_later.is_none() {
                retry_later = Some(e);
            }
            Ok(())
        }
        (result, _) => result,
    };
    tolerate(
        "the production listener's default action".into(),
        mode.follow(ctx, slot, percent).await,
    )?;
    let companions = match judged {
        Some(companions) => companions,
        None => match companions_for(ctx, config, way).await {
            Ok(companions) => companions,
            Err(e) => {
                tolerate("the other routes".into(), Err(e))?;
                Vec::new()
            }
        },
    };
    // The other routes at the same share, each checked also when production was already
    // right (a retry after a crash between the writes).
    for (route, state) in &companions {
        if state.percent(slot) != percent {
            let written = reweigh(ctx, config, route, slot, percent).await;
            tolerate(routes::describe(route), written)?;
        }
    }
    if let Some(e) = retry_later {
        return Err(e);
    }
    Ok(
        read_back(ctx, config, mode.as_ref(), &companions, slot, percent, way)
            .await?
            .map(|()| change),
    )
}

/// Reads production and the other routes back after a move: `Ok(Err(mismatch))` when
/// production, or (moving forward) another route, is not at `percent` on `slot`; a route left
/// behind by a move back is logged.
async fn read_back(
    ctx: &Context,
    config: &ServiceConfig,
    mode: &dyn traffic_mode::TrafficMode,
    companions: &[(Route, RouteState)],
    slot: Slot,
    percent: i64,
    way: Move,
) -> StepResult<Result<(), String>> {
    let after = mode.read(ctx).await?;
    if after.percent(slot) != percent {
        return Ok(Err(format!(
            "wrote {percent}% to {slot} but read back {}%",
            after.percent(slot)
        )));
    }
    for (route, _) in companions {
        // A read that failed for now is retried, not taken for a route left behind.
        let read = match forward(ctx, route).await {
            Err(e) if e.is_retryable() => return Err(e),
            read => read.and_then(|g| weights_of(config, g)),
        };
        let mismatch = match read {
            Ok(read) if read.percent(slot) == percent => continue,
            Ok(read) => format!(
                "wrote {percent}% to {slot} on {} but read back {}%",
                routes::describe(route),
                read.percent(slot)
            ),
            Err(e) => format!("{}: {e}", routes::describe(route)),
        };
        match way {
            Move::Forward => return Ok(Err(mismatch)),
            Move::Back => warn!(service = %config.name, %mismatch, "a route left where it is"),
        }
    }
    Ok(Ok(()))
}

/// The other routes a move takes along ([`Move`]): a move forward refuses on any route that
/// cannot be moved; a move back takes what it can and logs the rest.
async fn companions_for(
    ctx: &Context,
    config: &ServiceConfig,
    way: Move,
) -> StepResult<Vec<(Route, RouteState)>> {
    Ok(match way {
        // Found and judged before anything moves: a route bluegreen may not move refuses the
        // whole move forward, not half of it.
        Move::Forward => {
            let (movable, problems) = companion_routes(ctx, config).await?;
            if !problems.is_empty() {
                return Err(StepError::UnexpectedRouting(problems.join("; ")));
            }
            movable
        }
        // Back to the release that served (production has moved already): what can be moved;
        // the caller decides what a failure to read them means.
        Move::Back => {
            let (movable, problems) = companion_routes(ctx, config).await?;
            for problem in problems {
                warn!(service = %config.name, %problem, "a route left where it is");
            }
            movable
        }
    })
}

/// Which way a move of production goes, which decides what a route that cannot be moved does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    /// Toward the new release (the switch): a route that cannot be moved refuses the move
    /// before anything moves.
    Forward,
    /// Back to the release that served (rollback): production first, then every other route
    /// that can be moved; one that cannot is left and logged, and no slot it forwards to is
    /// scaled down ([`ensure_unrouted`]).
    Back,
}

/// The routes that move with production and their weights now, and the problems of those
/// that cannot ([`routes::companions`]); by default none, without a call.
async fn companion_routes(
    ctx: &Context,
    config: &ServiceConfig,
) -> StepResult<(Vec<(Route, RouteState)>, Vec<String>)> {
    if !routes::move_with_production(config) {
        return Ok((Vec::new(), Vec::new()));
    }
    let observed = traffic_mode::of(config).observed_routes(ctx).await?;
    Ok(routes::companions(config, &observed))
}

/// Every other route to a slot on the slots' load balancers, with its weights
/// ([`routes::others`]); none in DNS mode.
pub async fn other_routes(
    ctx: &Context,
    config: &ServiceConfig,
) -> StepResult<Vec<(Route, Result<RouteState, String>)>> {
    Ok(routes::others(config, &observed_routes(ctx, config).await?))
}

/// Every route to a slot on the slots' load balancers (listener mode; none in DNS mode).
pub async fn observed_routes(
    ctx: &Context,
    config: &ServiceConfig,
) -> StepResult<Vec<crate::ports::load_balancing::RouteForward>> {
    traffic_mode::of(config).observed_routes(ctx).await
}

/// Refuses (`UnexpectedRouting`, naming each route) while any route but the test listener
/// still sends `slot` traffic — on every load balancer of the slots' target groups, whether or
/// not the config names it — so `doing` (scaling `slot` to 0) never takes a route's traffic
/// down. Listener mode; in DNS mode each slot has its own load balancer and production is the
/// records.
pub async fn ensure_unrouted(
    ctx: &Context,
    config: &ServiceConfig,
    slot: Slot,
    doing: &str,
) -> StepResult<()> {
    let observed = observed_routes(ctx, config).await?;
    let still = routes::still_on(config, &observed, slot);
    if still.is_empty() {
        return Ok(());
    }
    Err(StepError::UnexpectedRouting(format!(
        "{doing} refused: {slot} still receives traffic from {}: move those routes first, or \
         let the switch move them (traffic.routes = \"auto\", or list them)",
        still
            .iter()
            .map(routes::describe)
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// Points the test listener at `slot`. Nothing to do with a test rule (the deployment's rule
/// is added at the health check and removed at its ending) or in DNS mode (each slot has its
/// own test endpoint).
pub async fn point_test_listener(
    ctx: &Context,
    config: &ServiceConfig,
    slot: Slot,
) -> StepResult<()> {
    if let TestRoute::Listener(arn) = config.traffic.test_route()
        && read_test(ctx, config).await? != Some(slot)
    {
        let route = Route::Listener(arn.to_owned());
        reweigh(ctx, config, &route, slot, 100).await?;
    }
    Ok(())
}

/// DNS mode: sets the TTL of both weighted records, keeping their weights.
pub async fn set_dns_ttl(
    ctx: &Context,
    config: &ServiceConfig,
    ttl: i64,
) -> StepResult<Option<String>> {
    traffic_mode::dns(config)?.set_ttl(ctx, ttl).await
}

/// Whether a Route 53 change has propagated to all authoritative servers.
pub async fn change_in_sync(ctx: &Context, change_id: &str) -> StepResult<bool> {
    ctx.ports.dns.change_in_sync(change_id).await
}
