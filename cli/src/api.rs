//! The operator API client: `approve`, `reject`, `rollback`, `unlock`, `abort` and `retry`
//! are requests to the stack's operator API (a Lambda function URL with `AuthType AWS_IAM`),
//! signed with SigV4 by the SDK's signer using the credentials the default chain finds. The
//! function decides as the principal AWS verified, so the caller needs
//! `lambda:InvokeFunctionUrl` on that function and nothing else.
//!
//! Where there is no API: against an emulator on this machine the CLI takes the action itself
//! (development); against AWS without `BLUEGREEN_API_URL` it refuses.

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use bluegreen::Context;
use bluegreen_console::api::{ActionRequest, ApiError};
use serde::de::DeserializeOwned;

/// The environment variable that names the operator API (the stack's `OperatorApiUrl`).
pub const API_URL_ENV: &str = "BLUEGREEN_API_URL";

/// The service name a function URL's SigV4 signature is made for.
const SIGNING_SERVICE: &str = "lambda";

/// An operator action can take minutes (a DNS rollback waits for Route 53; a retry for a
/// rollback migration); the function's own limit is 15 minutes.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Why an API call failed: a stable name and a message, like a step error.
#[derive(Debug)]
pub struct Failure {
    /// Stable name (`NotAnApprover`, `Forbidden`, `ApiUnreachable`, …).
    pub name: String,
    /// For people.
    pub message: String,
}

impl Failure {
    fn new(name: &str, message: impl Into<String>) -> Self {
        Failure {
            name: name.into(),
            message: message.into(),
        }
    }
}

/// Where an operator action is carried out.
pub enum Route {
    /// The stack's operator API.
    Api(Client),
    /// In this process, against an emulator on this machine.
    Direct(Box<Context>),
}

/// Chooses the route: the API when `BLUEGREEN_API_URL` is set; this process when every client
/// talks to a loopback emulator; otherwise a refusal that says what to set.
pub async fn route() -> Result<Route, Failure> {
    if let Some(url) = std::env::var(API_URL_ENV).ok().filter(|u| !u.is_empty()) {
        return Client::from_env(&url).await.map(Route::Api);
    }
    let ctx = Context::from_env().await;
    if ctx.on_loopback_emulator() {
        return Ok(Route::Direct(Box::new(ctx)));
    }
    Err(Failure::new(
        "ApiNotConfigured",
        format!(
            "decisions and operator actions go through the stack's operator API: set {API_URL_ENV} \
             to the stack's OperatorApiUrl output (your principal needs the OperatorPolicy \
             output's managed policy)"
        ),
    ))
}

/// A SigV4-signing client of the operator API.
pub struct Client {
    base: String,
    region: String,
    credentials: aws_credential_types::provider::SharedCredentialsProvider,
    http: reqwest::Client,
}

impl Client {
    /// A client for the API at `base`, with the region and credentials of the SDK's default
    /// chain (`AWS_REGION`, `AWS_PROFILE`, …).
    pub async fn from_env(base: &str) -> Result<Self, Failure> {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let region = sdk.region().map(|r| r.to_string()).ok_or_else(|| {
            Failure::new(
                "RegionMissing",
                "no AWS region: set AWS_REGION to the stack's region",
            )
        })?;
        let credentials = sdk
            .credentials_provider()
            .ok_or_else(|| Failure::new("CredentialsMissing", "no AWS credentials found"))?;
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Failure::new("ApiUnreachable", e.to_string()))?;
        Ok(Client {
            base: base.trim_end_matches('/').to_owned(),
            region,
            credentials,
            http,
        })
    }

    /// POSTs `body` to `path` (`/api/v1/…`), signed, and reads the answer as `T`.
    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &ActionRequest,
    ) -> Result<T, Failure> {
        let url = format!("{}{path}", self.base);
        let body = serde_json::to_vec(body).expect("a request body serialises");
        let request = self.signed(&url, body).await?;
        let response = self.http.execute(request).await.map_err(|e| {
            Failure::new(
                "ApiUnreachable",
                format!("the operator API at {} did not answer: {e}", self.base),
            )
        })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| Failure::new("ApiUnreachable", e.to_string()))?;
        if status.is_success() {
            return serde_json::from_str(&text).map_err(|e| {
                Failure::new(
                    "ApiAnswerUnreadable",
                    format!("the operator API answered {status} with {e}"),
                )
            });
        }
        Err(match serde_json::from_str::<ApiError>(&text) {
            Ok(error) => Failure::new(&error.error, error.message),
            // AWS itself refused before the function ran: signature, permission, throttling.
            Err(_) => match status.as_u16() {
                403 => Failure::new(
                    "Forbidden",
                    format!(
                        "AWS refused the call to the operator API ({}): your principal needs the \
                         stack's OperatorPolicy (lambda:InvokeFunctionUrl on the console function)",
                        text.trim()
                    ),
                ),
                429 => Failure::new(
                    "Throttled",
                    "the operator API is at its concurrency limit; try again in a moment",
                ),
                _ => Failure::new("ApiFailed", format!("{status}: {}", text.trim())),
            },
        })
    }

    async fn signed(&self, url: &str, body: Vec<u8>) -> Result<reqwest::Request, Failure> {
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| Failure::new("CredentialsMissing", e.to_string()))?;
        let identity = credentials.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(SIGNING_SERVICE)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| Failure::new("SigningFailed", e.to_string()))?
            .into();
        let headers = [("content-type", "application/json")];
        let signable =
            SignableRequest::new("POST", url, headers.into_iter(), SignableBody::Bytes(&body))
                .map_err(|e| Failure::new("SigningFailed", e.to_string()))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| Failure::new("SigningFailed", e.to_string()))?
            .into_parts();
        let mut request = http::Request::builder()
            .method("POST")
            .uri(url)
            .header("content-type", "application/json")
            .body(body)
            .map_err(|e| Failure::new("ApiUrlInvalid", format!("{url}: {e}")))?;
        instructions.apply_to_request_http1x(&mut request);
        reqwest::Request::try_from(request)
            .map_err(|e| Failure::new("ApiUrlInvalid", format!("{url}: {e}")))
    }
}
