//! [`SmokeClient`] over reqwest.

use std::sync::OnceLock;
use std::time::Duration;

use crate::ports::smoke::{Answer, SmokeClient, SmokeRequest};

/// HTTP over reqwest, the client built on first use: building it loads the system's root
/// certificates, which most steps never need and a cold start should not pay for.
#[derive(Default)]
pub struct Reqwest(OnceLock<reqwest::Client>);

fn builder() -> reqwest::ClientBuilder {
    // A smoke check judges the answer it gets.
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none())
}

impl Reqwest {
    fn shared(&self) -> &reqwest::Client {
        self.0.get_or_init(|| {
            builder()
                .build()
                .expect("the HTTP client builds with static settings")
        })
    }

    /// A client for a request with its own host name or without TLS verification, and the
    /// URL to request: with `host`, the URL names it (so it is the `Host` header and the TLS
    /// server name the certificate is checked against) and the client resolves it to the
    /// test URL's own addresses.
    async fn dedicated(&self, request: &SmokeRequest) -> Result<(reqwest::Client, String), String> {
        let mut builder = builder().tls_danger_accept_invalid_certs(!request.verify_tls);
        let mut url = request.url.clone();
        if let Some(host) = &request.host {
            let mut parsed = url::Url::parse(&request.url)
                .map_err(|e| format!("the test URL {} is not a URL ({e})", request.url))?;
            let target = parsed.host_str().unwrap_or_default().to_owned();
            let port = parsed.port_or_known_default().unwrap_or(80);
            let addresses: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((target.as_str(), port))
                    .await
                    .map_err(|e| format!("cannot resolve {target}: {e}"))?
                    .collect();
            builder = builder.resolve_to_addrs(host, &addresses);
            parsed
                .set_host(Some(host))
                .map_err(|e| format!("{host} does not fit the test URL ({e})"))?;
            url = parsed.to_string();
        }
        let client = builder.build().map_err(|e| crate::error::error_chain(&e))?;
        Ok((client, url))
    }
}

#[async_trait::async_trait]
impl SmokeClient for Reqwest {
    async fn send(&self, request: &SmokeRequest, timeout: Duration) -> Result<Answer, String> {
        let (client, url) = if request.host.is_none() && request.verify_tls {
            (self.shared().clone(), request.url.clone())
        } else {
            self.dedicated(request).await?
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
