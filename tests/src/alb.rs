//! A stand-in for one ALB listener answering HTTP. The emulator stores listeners and rules
//! but routes no request, so a test could not otherwise see where a request goes. For each
//! request the stand-in reads the listener's rules from the emulator, evaluates them in
//! priority order as ALB does (every condition must match, any of a condition's values;
//! `host-header` and `http-header` values case-insensitive with `*` and `?`, `path-pattern`
//! case-sensitive, `http-request-method`, `query-string`, `source-ip` against the peer), and
//! answers from the target group the first matching rule — or the default action — forwards
//! to: what the test set for that group ([`ListenerFront::answer_from`]; by default
//! `200 ok version=new target-group=<ARN>`), with the ARN in `x-target-group`. A rule that
//! answers by itself (a fixed response: a test rule's probe, a maintenance page) answers its
//! own status and text.
//!
//! Left out of the model: TLS and certificates, stickiness, and weighted randomness — a
//! weighted forward answers from its heaviest group (the tests assert where all of a route's
//! traffic goes, never a split).

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use bluegreen::Context;
use bluegreen::ports::load_balancing::{Condition, Route, RuleState, WeightedGroup};

use crate::serving::{Served, loopback_listener, serve};

/// One request the stand-in routed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// The request's path.
    pub path: String,
    /// Its `X-Bluegreen-Preview` header, if any.
    pub preview: Option<String>,
    /// The target group that answered (`None`: no route forwarded it).
    pub target_group: Option<String>,
}

#[derive(Clone)]
struct Shared {
    ctx: Context,
    listener_arn: String,
    routed: Arc<Mutex<Vec<Routed>>>,
    answers: Arc<Mutex<std::collections::HashMap<String, (u16, String)>>>,
}

/// Where the listener sent a request.
enum Destination {
    /// A target group.
    Group(String),
    /// A rule's fixed response: status and text.
    Fixed(u16, String),
    /// Nothing forwards it (ALB answers 503).
    Nowhere,
}

/// The running stand-in; it stops when dropped.
pub struct ListenerFront {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    shared: Shared,
    _served: Served,
}

impl ListenerFront {
    /// Serves `listener_arn` as the emulator's ELB has it, read through `ctx`'s ports.
    pub async fn start(ctx: &Context, listener_arn: &str) -> ListenerFront {
        let shared = Shared {
            ctx: ctx.clone(),
            listener_arn: listener_arn.to_owned(),
            routed: Arc::default(),
            answers: Arc::default(),
        };
        let app = Router::new().fallback(answer).with_state(shared.clone());
        let served = serve(app, loopback_listener().await);
        ListenerFront {
            url: served.url.clone(),
            shared,
            _served: served,
        }
    }

    /// Makes target group `arn` answer `status` with `body` (the release it runs, say).
    pub fn answer_from(&self, arn: &str, status: u16, body: &str) {
        self.shared
            .answers
            .lock()
            .expect("answers lock")
            .insert(arn.to_owned(), (status, body.to_owned()));
    }

    /// Every request routed so far, in order.
    pub fn routed(&self) -> Vec<Routed> {
        self.shared.routed.lock().expect("routed lock").clone()
    }

    /// Sends `GET path` with `headers` (and `Host: host`, when given) and returns the target
    /// group that answered.
    pub async fn get(
        &self,
        path: &str,
        host: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Option<String> {
        let mut request = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("an HTTP client")
            .get(format!("{}{path}", self.url));
        if let Some(host) = host {
            request = request.header("host", host);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("the stand-in answers");
        response
            .headers()
            .get("x-target-group")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

/// What a rule is matched against.
struct Request<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    peer: IpAddr,
}

async fn answer(
    State(shared): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> axum::response::Response {
    let request = Request {
        method: &method,
        uri: &uri,
        headers: &headers,
        peer: peer.ip(),
    };
    let destination = match route(&shared, &request).await {
        Ok(destination) => destination,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    };
    let target_group = match &destination {
        Destination::Group(group) => Some(group.clone()),
        Destination::Fixed(..) | Destination::Nowhere => None,
    };
    shared.routed.lock().expect("routed lock").push(Routed {
        path: uri.path().to_owned(),
        preview: headers
            .get(bluegreen::config::PREVIEW_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        target_group,
    });
    match destination {
        Destination::Group(group) => {
            let (status, body) = shared
                .answers
                .lock()
                .expect("answers lock")
                .get(&group)
                .cloned()
                .unwrap_or_else(|| (200, format!("ok version=new target-group={group}")));
            (
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                [("x-target-group", group)],
                body,
            )
                .into_response()
        }
        Destination::Fixed(status, body) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body,
        )
            .into_response(),
        // ALB answers 503 when a forward has no group to send to.
        Destination::Nowhere => (StatusCode::SERVICE_UNAVAILABLE, "no route").into_response(),
    }
}

/// Where ALB would send `request`.
async fn route(shared: &Shared, request: &Request<'_>) -> Result<Destination, String> {
    let balancing = &shared.ctx.ports.load_balancing;
    let mut rules: Vec<RuleState> = balancing
        .rules(&shared.listener_arn)
        .await
        .map_err(|e| e.to_string())?;
    rules.sort_by_key(|r| r.priority.unwrap_or(i32::MAX));
    let matched = rules
        .iter()
        .find(|r| r.conditions.iter().all(|c| matches(c, request)));
    if let Some(rule) = matched.filter(|r| r.answers_itself) {
        return fixed_response(shared, &rule.arn).await;
    }
    let route = matched.map_or_else(
        || Route::Listener(shared.listener_arn.clone()),
        |r| Route::Rule(r.arn.clone()),
    );
    let groups = balancing
        .forward(&route)
        .await
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    Ok(heaviest(&groups).map_or(Destination::Nowhere, Destination::Group))
}

/// A rule's fixed response, as the emulator holds it.
async fn fixed_response(shared: &Shared, rule_arn: &str) -> Result<Destination, String> {
    let sdk = shared.ctx.sdk().map_err(|e| e.to_string())?;
    let rules = sdk
        .elb
        .describe_rules()
        .rule_arns(rule_arn)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .rules
        .unwrap_or_default();
    let fixed = rules
        .iter()
        .flat_map(|r| r.actions.as_deref().unwrap_or_default())
        .find_map(|a| a.fixed_response_config.clone())
        .ok_or("a rule that answers by itself without a fixed response")?;
    Ok(Destination::Fixed(
        fixed
            .status_code
            .as_deref()
            .unwrap_or("500")
            .parse()
            .unwrap_or(500),
        fixed.message_body.unwrap_or_default(),
    ))
}

/// The group with the most weight (a one-group forward without a weight takes everything).
fn heaviest(groups: &[WeightedGroup]) -> Option<String> {
    groups
        .iter()
        .map(|g| (g.weight.unwrap_or(1), &g.target_group_arn))
        .filter(|(weight, _)| *weight > 0)
        .max_by_key(|(weight, _)| *weight)
        .map(|(_, arn)| arn.clone())
}

/// Whether `request` meets one condition (any of its values).
fn matches(condition: &Condition, request: &Request<'_>) -> bool {
    let header = |name: &str| {
        request
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let values = &condition.values;
    match condition.field.as_str() {
        "host-header" => {
            let hosts = header("host");
            let host = hosts.first().map(|h| h.split(':').next().unwrap_or(h));
            host.is_some_and(|h| values.iter().any(|v| glob(v, h, false)))
        }
        "path-pattern" => values.iter().any(|v| glob(v, request.uri.path(), true)),
        "http-header" => {
            let sent = header(condition.header_name.as_deref().unwrap_or_default());
            sent.iter()
                .any(|s| values.iter().any(|v| glob(v, s, false)))
        }
        "http-request-method" => values.iter().any(|v| v == request.method.as_str()),
        "query-string" => {
            let query = request.uri.query().unwrap_or_default();
            let pairs: Vec<(&str, &str)> = query
                .split('&')
                .map(|p| p.split_once('=').unwrap_or((p, "")))
                .collect();
            values.iter().any(|v| {
                let (key, value) = v.split_once('=').unwrap_or(("", v));
                pairs.iter().any(|(k, val)| {
                    (key.is_empty() || glob(key, k, false)) && glob(value, val, false)
                })
            })
        }
        "source-ip" => values.iter().any(|cidr| contains(cidr, request.peer)),
        _ => false,
    }
}

/// ALB's wildcard match: `*` any run of characters, `?` exactly one.
fn glob(pattern: &str, text: &str, case_sensitive: bool) -> bool {
    let fold = |s: &str| {
        if case_sensitive {
            s.chars().collect::<Vec<_>>()
        } else {
            s.to_lowercase().chars().collect()
        }
    };
    let (p, t) = (fold(pattern), fold(text));
    // Classic two-pointer wildcard match with backtracking to the last `*`.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < t.len() {
        if i < p.len() && (p[i] == '?' || p[i] == t[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

/// Whether the IPv4 or IPv6 block `cidr` holds `ip`.
fn contains(cidr: &str, ip: IpAddr) -> bool {
    let Some((network, bits)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(network), Ok(bits)) = (network.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    let prefix = |a: u128, width: u32| {
        if bits == 0 {
            0
        } else {
            a >> (width - bits.min(width))
        }
    };
    match (network, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            prefix(u32::from(n).into(), 32) == prefix(u32::from(a).into(), 32)
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => prefix(n.into(), 128) == prefix(a.into(), 128),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_as_alb_matches_them() {
        assert!(glob("*.example.com", "shop.example.com", false));
        assert!(glob("SHOP.example.com", "shop.EXAMPLE.com", false));
        assert!(!glob("/API/*", "/api/x", true));
        assert!(glob("/api/?", "/api/x", true));
        assert!(!glob("/api/?", "/api/xy", true));
        assert!(!glob("shop.example.com", "shop.example.co", false));
    }

    #[test]
    fn source_blocks_hold_their_addresses() {
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(contains("127.0.0.0/8", loopback));
        assert!(!contains("10.0.0.0/8", loopback));
        assert!(contains("0.0.0.0/0", loopback));
        assert!(!contains("::/0", loopback));
    }
}
