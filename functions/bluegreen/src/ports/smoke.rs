//! HTTP smoke checks against a slot's test endpoint.

use std::time::Duration;

/// An HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Its status code.
    pub status: u16,
    /// Its body as text.
    pub body: String,
}

/// One smoke-check request, its header values resolved (they may be secrets: never logged).
#[derive(Clone, PartialEq, Eq)]
pub struct SmokeRequest {
    /// `GET`, `POST`, ….
    pub method: String,
    /// The test URL and path the request goes to.
    pub url: String,
    /// `(name, value)`.
    pub headers: Vec<(String, String)>,
    /// The body, if any.
    pub body: Option<String>,
    /// Sent as `Host` and used as the TLS server name, while connecting to `url`'s address.
    pub host: Option<String>,
    /// Verify the TLS certificate.
    pub verify_tls: bool,
}

impl std::fmt::Debug for SmokeRequest {
    /// Header names only: their values may be tokens.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("SmokeRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &names)
            .field("body", &self.body.as_ref().map(String::len))
            .field("host", &self.host)
            .field("verify_tls", &self.verify_tls)
            .finish()
    }
}

impl SmokeRequest {
    /// `GET url`, nothing else set.
    pub fn get(url: &str) -> SmokeRequest {
        SmokeRequest {
            method: "GET".into(),
            url: url.to_owned(),
            headers: Vec::new(),
            body: None,
            host: None,
            verify_tls: true,
        }
    }
}

/// Sends smoke-check requests.
#[async_trait::async_trait]
pub trait SmokeClient: Send + Sync {
    /// Sends `request` (redirects not followed); `Err` says why nothing came back (timed out,
    /// refused, a DNS failure, a certificate that does not name the host, with its causes) —
    /// never a header value.
    async fn send(&self, request: &SmokeRequest, timeout: Duration) -> Result<Answer, String>;
}
