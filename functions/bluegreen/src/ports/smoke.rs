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

/// Sends smoke-check requests.
#[async_trait::async_trait]
pub trait SmokeClient: Send + Sync {
    /// `GET url` (redirects not followed); `Err` says why nothing came back (timed out,
    /// refused, a DNS failure, with its causes).
    async fn get(&self, url: &str, timeout: Duration) -> Result<Answer, String>;
}
