//! SNS (each approver's own message, filtered by attributes) and the chat webhook.

use crate::error::StepResult;

/// One message to the topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// One line, at most 100 characters.
    pub subject: String,
    /// The text.
    pub body: String,
    /// String message attributes, `(name, value)`.
    pub attributes: Vec<(String, String)>,
}

/// Where notifications go.
#[async_trait::async_trait]
pub trait Notifications: Send + Sync {
    /// Publishes to the topic.
    async fn publish(&self, topic_arn: &str, message: &Message) -> StepResult<()>;

    /// Posts `{"text": …}` to the webhook; best effort (a failure is logged, never raised).
    async fn post_webhook(&self, url: &str, text: &str);
}
