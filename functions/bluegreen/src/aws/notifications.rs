//! [`Notifications`] over SNS, and the chat webhook over HTTPS.

use std::sync::OnceLock;

use aws_sdk_sns::types::MessageAttributeValue;
use tracing::warn;

use crate::error::{StepError, StepResult};
use crate::ports::notifications::{Message, Notifications};

/// A chat webhook that does not answer in this time is given up on: it is best effort, and a
/// step must not spend its Lambda time on it.
const WEBHOOK_TIMEOUT_SECONDS: u64 = 5;

/// SNS through the SDK; the webhook through an HTTP client built on first use.
pub struct Sns {
    client: aws_sdk_sns::Client,
    http: OnceLock<reqwest::Client>,
}

impl Sns {
    /// Publishes with `client`.
    pub fn new(client: aws_sdk_sns::Client) -> Self {
        Sns {
            client,
            http: OnceLock::new(),
        }
    }
}

fn attribute(value: &str) -> StepResult<MessageAttributeValue> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| StepError::Internal(format!("SNS message attribute: {e}")))
}

#[async_trait::async_trait]
impl Notifications for Sns {
    async fn publish(&self, topic_arn: &str, message: &Message) -> StepResult<()> {
        let mut request = self
            .client
            .publish()
            .topic_arn(topic_arn)
            .subject(&message.subject)
            .message(&message.body);
        for (name, value) in &message.attributes {
            request = request.message_attributes(name, attribute(value)?);
        }
        request
            .send()
            .await
            .map_err(|e| StepError::from_sdk("sns:Publish", e))?;
        Ok(())
    }

    async fn post_webhook(&self, url: &str, text: &str) {
        let http = self.http.get_or_init(|| {
            reqwest::Client::builder()
                // A webhook URL answers itself; a redirect elsewhere is not followed.
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("the HTTP client builds with static settings")
        });
        let result = http
            .post(url)
            .timeout(std::time::Duration::from_secs(WEBHOOK_TIMEOUT_SECONDS))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(serde_json::json!({ "text": text }).to_string())
            .send()
            .await
            .and_then(|r| r.error_for_status());
        // The URL is a credential: never logged.
        if let Err(e) = result {
            warn!(status = ?e.status(), "the notification webhook did not accept the message");
        }
    }
}
