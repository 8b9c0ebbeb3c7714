//! A stand-in for a Lambda function URL with `AuthType AWS_IAM`, on loopback: it does what AWS
//! does in front of the console function — verifies the SigV4 signature (service `lambda`,
//! the region, a clock skew of at most 5 minutes) against the credentials it knows, refuses
//! with 403 otherwise, and invokes the function with a payload-format-2.0 event whose request
//! context names the principal (`requestContext.authorizer.iam.userArn`). The event goes
//! through `lambda_http`'s own conversion, as in Lambda.
//!
//! What it cannot stand in for: IAM policy evaluation (`lambda:InvokeFunctionUrl`), which AWS
//! does between the signature check and the invocation.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tower::ServiceExt;

/// The region the stand-in answers for.
pub const REGION: &str = "us-east-1";

/// A principal the stand-in knows: its access key pair and ARN.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Access key id.
    pub access_key: String,
    /// Secret key.
    pub secret_key: String,
    /// What AWS would put in `userArn`.
    pub arn: String,
}

impl Principal {
    /// A principal named `name` (an IAM user ARN in moto's account), with made-up keys.
    pub fn user(name: &str) -> Self {
        Principal {
            access_key: format!("AKIA{}", name.to_ascii_uppercase()),
            secret_key: format!("secret-of-{name}"),
            arn: format!("arn:aws:iam::123456789012:user/{name}"),
        }
    }
}

/// The stand-in ([`IamFunctionUrl::serve`]).
pub struct IamFunctionUrl;

impl IamFunctionUrl {
    /// Serves `function` (the console's Lambda app) behind IAM auth for `principals`.
    pub async fn serve(function: Router, principals: &[Principal]) -> crate::serving::Served {
        let known: Arc<HashMap<String, Principal>> = Arc::new(
            principals
                .iter()
                .map(|p| (p.access_key.clone(), p.clone()))
                .collect(),
        );
        let app = Router::new().fallback(move |request: Request| {
            let known = known.clone();
            let function = function.clone();
            async move { invoke(&known, function, request).await }
        });
        crate::serving::serve(app, crate::serving::loopback_listener().await)
    }
}

fn forbidden(message: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        axum::Json(json!({ "Message": message })),
    )
        .into_response()
}

async fn invoke(
    known: &HashMap<String, Principal>,
    function: Router,
    request: Request,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip().to_string())
        .unwrap_or_default();
    let (parts, body) = request.into_parts();
    let Ok(body) = to_bytes(body, 6 * 1024 * 1024).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "").into_response();
    };
    let principal = match verify(known, &parts.method, &parts.uri, &parts.headers, &body) {
        Ok(p) => p,
        Err(message) => return forbidden(message),
    };
    let headers: serde_json::Map<String, serde_json::Value> = parts
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), json!(v.to_str().ok()?))))
        .collect();
    let event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.uri.path(),
        "rawQueryString": parts.uri.query().unwrap_or_default(),
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bluegreenapi",
            "domainName": parts.headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or_default(),
            "domainPrefix": "bluegreenapi",
            "requestId": uuid_like(),
            "routeKey": "$default",
            "stage": "$default",
            "time": "23/Nov/2026:00:00:00 +0000",
            "timeEpoch": 0,
            "http": {
                "method": parts.method.as_str(),
                "path": parts.uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": peer,
                "userAgent": parts.headers.get("user-agent").and_then(|h| h.to_str().ok()).unwrap_or_default()
            },
            "authorizer": {
                "iam": {
                    "accessKey": principal.access_key,
                    "accountId": "123456789012",
                    "callerId": principal.access_key,
                    "userArn": principal.arn,
                    "userId": principal.access_key
                }
            }
        },
        "body": String::from_utf8_lossy(&body),
        "isBase64Encoded": false
    });
    let lambda_request: lambda_http::request::LambdaRequest =
        serde_json::from_value(event).expect("a function URL event deserialises");
    let request: http::Request<lambda_http::Body> = lambda_request.into();
    let (parts, body) = request.into_parts();
    let request = http::Request::from_parts(parts, Body::from(body.to_vec()));
    // The stack's operator API function: its requests are that function's (IAM by execution).
    match crate::iam::as_function("OperatorApiFunction", function.oneshot(request)).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

fn uuid_like() -> String {
    format!(
        "{:x}",
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
    )
}

/// Checks the request's SigV4 signature as AWS does: recomputes it with the secret of the
/// access key it names, over the headers it says it signed, and compares.
fn verify<'a>(
    known: &'a HashMap<String, Principal>,
    method: &http::Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<&'a Principal, &'static str> {
    const MISSING: &str = "Missing Authentication Token";
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or(MISSING)?;
    let fields = authorization
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or("Only AWS4-HMAC-SHA256 is accepted")?;
    let field = |name: &str| {
        fields
            .split(", ")
            .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
            .ok_or(MISSING)
    };
    let credential = field("Credential")?;
    let signed_headers = field("SignedHeaders")?;
    let signature = field("Signature")?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key, _date, region, service, "aws4_request"] = scope[..] else {
        return Err("Credential should be scoped correctly");
    };
    if service != "lambda" || region != REGION {
        return Err("Credential should be scoped to a valid region and service");
    }
    let principal = known
        .get(access_key)
        .ok_or("The security token included in the request is invalid.")?;
    let date = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .and_then(|d| chrono::NaiveDateTime::parse_from_str(d, "%Y%m%dT%H%M%SZ").ok())
        .ok_or(MISSING)?
        .and_utc();
    let time: SystemTime = date.into();
    let skew = match SystemTime::now().duration_since(time) {
        Ok(d) => d,
        Err(e) => e.duration(),
    };
    if skew > Duration::from_secs(300) {
        return Err("Signature expired");
    }
    let signed: Vec<(&str, &str)> = signed_headers
        .split(';')
        .filter(|h| !matches!(*h, "x-amz-date" | "x-amz-security-token"))
        .map(|h| {
            let value = headers
                .get(h)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            (h, value)
        })
        .collect();
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let url = format!(
        "http://{host}{}",
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    let identity = Credentials::new(
        &principal.access_key,
        &principal.secret_key,
        None,
        None,
        "function-url-stand-in",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|_| MISSING)?
        .into();
    let signable = SignableRequest::new(
        method.as_str(),
        &url,
        signed.into_iter(),
        SignableBody::Bytes(body),
    )
    .map_err(|_| MISSING)?;
    let (_, expected) = sign(signable, &params).map_err(|_| MISSING)?.into_parts();
    if expected.len() == signature.len()
        && expected
            .bytes()
            .zip(signature.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    {
        Ok(principal)
    } else {
        Err("The request signature we calculated does not match the signature you provided.")
    }
}
