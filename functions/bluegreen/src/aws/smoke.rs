//! [`SmokeClient`] over reqwest.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::ports::smoke::{Answer, SmokeClient, SmokeRequest};

/// How long a client made for a `host` (with the test URL's addresses resolved into it) is
/// reused: the rounds of one look share it, and a load balancer's addresses, which change,
/// are looked up again after this.
const DEDICATED_CLIENT_SECONDS: u64 = 60;

/// Which dedicated client: the host name, the test URL's host and port, TLS verification.
type DedicatedKey = (String, String, u16, bool);

/// HTTP over reqwest, the client built on first use: building it loads the system's root
/// certificates, which most steps never need and a cold start should not pay for.
#[derive(Default)]
pub struct Reqwest {
    shared: OnceLock<reqwest::Client>,
    dedicated: Mutex<HashMap<DedicatedKey, (Instant, reqwest::Client)>>,
}

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        // A smoke check judges the answer it gets.
        .redirect(reqwest::redirect::Policy::none())
        // Straight to the test listener: a proxy would resolve a `host` itself — production.
        .no_proxy()
}

impl Reqwest {
    fn shared(&self) -> &reqwest::Client {
        self.shared.get_or_init(|| {
            builder()
                .build()
                .expect("the HTTP client builds with static settings")
        })
    }

    /// A client for a request with its own host name or without TLS verification, and the
    /// URL to request: with `host`, the URL names it (so it is the `Host` header and the TLS
    /// server name the certificate is checked against) and the client resolves it to the
    /// test URL's own addresses.
    async fn dedicated(
        &self,
        request: &SmokeRequest,
        timeout: Duration,
    ) -> Result<(reqwest::Client, String), String> {
        let mut url = url::Url::parse(&request.url)
            .map_err(|e| format!("the test URL {} is not a URL ({e})", request.url))?;
        let port = url.port_or_known_default().unwrap_or(80);
        let target = url.host_str().unwrap_or_default().to_owned();
        let host = request.host.clone().unwrap_or_default();
        let key = (host.clone(), target, port, request.verify_tls);
        if !host.is_empty() {
            url.set_host(Some(&host))
                .map_err(|e| format!("{host} does not fit the test URL ({e})"))?;
        }
        let cached = self
            .dedicated
            .lock()
            .expect("clients lock")
            .get(&key)
            .filter(|(made, _)| made.elapsed() < Duration::from_secs(DEDICATED_CLIENT_SECONDS))
            .map(|(_, client)| client.clone());
        if let Some(client) = cached {
            return Ok((client, url.to_string()));
        }
        let mut builder = builder().tls_danger_accept_invalid_certs(!request.verify_tls);
        if !host.is_empty() {
            let addresses = addresses_of(&request.url, port, timeout).await?;
            builder = builder.resolve_to_addrs(&host, &addresses);
        }
        let client = builder.build().map_err(|e| crate::error::error_chain(&e))?;
        self.dedicated
            .lock()
            .expect("clients lock")
            .insert(key, (Instant::now(), client.clone()));
        Ok((client, url.to_string()))
    }
}

/// The addresses the test URL's host stands for (an IP address is itself), looked up within
/// `timeout`.
async fn addresses_of(url: &str, port: u16, timeout: Duration) -> Result<Vec<SocketAddr>, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url} is not a URL ({e})"))?;
    match parsed.host() {
        Some(url::Host::Ipv4(ip)) => Ok(vec![SocketAddr::from((ip, port))]),
        Some(url::Host::Ipv6(ip)) => Ok(vec![SocketAddr::from((ip, port))]),
        Some(url::Host::Domain(name)) => {
            let found = tokio::time::timeout(timeout, tokio::net::lookup_host((name, port)))
                .await
                .map_err(|_| format!("resolving {name} timed out"))?
                .map_err(|e| format!("cannot resolve {name}: {e}"))?;
            Ok(found.collect())
        }
        None => Err(format!("{url} names no host")),
    }
}

#[async_trait::async_trait]
impl SmokeClient for Reqwest {
    async fn send(&self, request: &SmokeRequest, timeout: Duration) -> Result<Answer, String> {
        let (client, url) = if request.host.is_none() && request.verify_tls {
            (self.shared().clone(), request.url.clone())
        } else {
            self.dedicated(request, timeout).await?
        };
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| format!("{} is not an HTTP method", request.method))?;
        let mut call = client.request(method, url).timeout(timeout);
        for (name, value) in &request.headers {
            call = call.header(name, value);
        }
        if let Some(body) = &request.body {
            call = call.body(body.clone());
        }
        let response = call.send().await.map_err(|e| {
            if e.is_timeout() {
                "timed out".to_owned()
            } else {
                crate::error::error_chain(&e)
            }
        })?;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        Ok(Answer { status, body })
    }
}
