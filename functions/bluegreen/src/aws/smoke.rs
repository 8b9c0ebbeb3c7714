//! [`SmokeClient`] over reqwest.

use std::sync::OnceLock;
use std::time::Duration;

use crate::ports::smoke::{Answer, SmokeClient};

/// HTTP over reqwest, the client built on first use: building it loads the system's root
/// certificates, which most steps never need and a cold start should not pay for.
#[derive(Default)]
pub struct Reqwest(OnceLock<reqwest::Client>);

impl Reqwest {
    fn client(&self) -> &reqwest::Client {
        self.0.get_or_init(|| {
            reqwest::Client::builder()
                // A smoke check judges the answer it gets.
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("the HTTP client builds with static settings")
        })
    }
}

#[async_trait::async_trait]
impl SmokeClient for Reqwest {
    async fn get(&self, url: &str, timeout: Duration) -> Result<Answer, String> {
        let response = self
            .client()
            .get(url)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| {
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
