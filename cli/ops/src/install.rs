//! `bluegreen init --local`: everything the stack would create that the CLI and the steps
//! need — the three tables with their keys and indexes, the link-signing secret, the topic —
//! created in a local emulator, so `config put`, `adopt` and `run` work on a user's own
//! emulator world without the test fixture. Refused for anything but a loopback endpoint: in
//! an AWS account the SAM stack owns these resources.

use serde::Serialize;

use bluegreen::context::Context;
use bluegreen::error::{StepError, StepResult};
use bluegreen::links::SigningKey;
use bluegreen::notify;
use bluegreen::tables::{self, TABLES};

/// The link secret's name when `BLUEGREEN_LINK_SECRET_ID` names none (the stack's is
/// `<stack>/link-signing-key`).
pub const DEFAULT_LINK_SECRET: &str = "bluegreen/link-signing-key";

/// The topic's name when `BLUEGREEN_TOPIC_ARN` names none (the stack's is
/// `<stack>-notifications`).
pub const DEFAULT_TOPIC: &str = "bluegreen-notifications";

/// What `init --local` found or created.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Installed {
    /// Each table by name, and whether this run created it.
    pub tables: Vec<(String, bool)>,
    /// The notification topic.
    pub topic_arn: String,
    /// The link-signing secret, and whether this run created it.
    pub link_secret: (String, bool),
    /// The environment the CLI and the steps read, to export.
    pub environment: Vec<(String, String)>,
}

/// Creates what is missing in the emulator the context points at (`AWS_ENDPOINT_URL` on
/// loopback); a second run creates nothing and answers the same.
pub async fn init_local(ctx: &Context) -> StepResult<Installed> {
    if !ctx.on_loopback_emulator() {
        return Err(StepError::SetupRefused(format!(
            "init --local creates resources only in a local emulator (AWS_ENDPOINT_URL on \
             localhost), not in {}; in an AWS account, deploy the stack (docs/deploy.md)",
            ctx.endpoint_url
                .as_deref()
                .unwrap_or("the AWS account of your credentials")
        )));
    }
    let mut created = Vec::new();
    for table in TABLES {
        let name = table.name(&ctx.settings).to_owned();
        created.push((name, tables::create(ctx, table).await?));
    }
    let topic_name = ctx
        .settings
        .topic_arn
        .as_deref()
        .and_then(|arn| arn.rsplit(':').next())
        .unwrap_or(DEFAULT_TOPIC)
        .to_owned();
    let topic_arn = notify::create_topic(ctx, &topic_name).await?;
    let secret_name = ctx
        .settings
        .link_secret_id
        .clone()
        .unwrap_or_else(|| DEFAULT_LINK_SECRET.into());
    let (secret_arn, secret_created) = SigningKey::create_secret(ctx, &secret_name).await?;
    let settings = &ctx.settings;
    let environment = [
        (
            "BLUEGREEN_DEPLOYMENTS_TABLE",
            settings.deployments_table.clone(),
        ),
        ("BLUEGREEN_LOCKS_TABLE", settings.locks_table.clone()),
        ("BLUEGREEN_SERVICES_TABLE", settings.services_table.clone()),
        ("BLUEGREEN_CONFIG_PREFIX", settings.config_prefix.clone()),
        ("BLUEGREEN_TOPIC_ARN", topic_arn.clone()),
        ("BLUEGREEN_LINK_SECRET_ID", secret_name),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Ok(Installed {
        tables: created,
        topic_arn,
        link_secret: (secret_arn, secret_created),
        environment,
    })
}
