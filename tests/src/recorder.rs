//! An AWS endpoint that records every call made to it and answers each with a 500: point a
//! process's `AWS_ENDPOINT_URL` at it to list the AWS calls that process makes.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;

/// The recorder, serving on a loopback port until dropped.
pub struct AwsCallRecorder {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    calls: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AwsCallRecorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl AwsCallRecorder {
    /// Starts recording.
    pub async fn start() -> Self {
        let calls: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = calls.clone();
        let app = Router::new().fallback(move |request: Request| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(describe(&request));
                (StatusCode::INTERNAL_SERVER_ERROR, "recorded, not served")
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("recorder serves");
        });
        AwsCallRecorder { url, calls, task }
    }

    /// Every call so far: the JSON protocols' `X-Amz-Target` (e.g.
    /// `DynamoDB_20120810.UpdateItem`), else the signing scope's service and the path.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

fn describe(request: &Request) -> String {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    if let Some(target) = header("x-amz-target") {
        return target;
    }
    let service = header("authorization")
        .and_then(|a| Some(a.split("Credential=").nth(1)?.split('/').nth(3)?.to_owned()))
        .unwrap_or_else(|| "unsigned".into());
    format!("{service} {} {}", request.method(), request.uri().path())
}
