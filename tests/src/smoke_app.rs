//! A tiny HTTP app on loopback that plays pre-prod behind the test listener: smoke checks hit
//! it, tests change what it answers, and it keeps every request it got (method, path, `Host`,
//! headers, body) so a test can assert what a check sent.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::any;

/// One request the app got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// `GET`, `POST`, ….
    pub method: String,
    /// The path without its leading `/`.
    pub path: String,
    /// Every header, names lowercase.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
}

impl Seen {
    /// The value of header `name` (lowercase), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Default)]
struct Shared {
    answers: Arc<Mutex<std::collections::HashMap<String, (u16, String)>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// The running app; it stops when the test's runtime ends.
pub struct SmokeApp {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    shared: Shared,
}

impl SmokeApp {
    /// Serves `200 ok` on every path, to every method, until told otherwise.
    pub async fn start() -> SmokeApp {
        let shared = Shared::default();
        let app = Router::new()
            .route("/{*path}", any(answer))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().expect("bound address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        SmokeApp { url, shared }
    }

    /// Makes `path` (without the leading `/`) answer `status` with `body`.
    pub fn answer(&self, path: &str, status: u16, body: &str) {
        self.shared.answers.lock().expect("answers lock").insert(
            path.trim_start_matches('/').to_owned(),
            (status, body.to_owned()),
        );
    }

    /// Every request so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().expect("seen lock").clone()
    }
}

async fn answer(
    State(shared): State<Shared>,
    method: Method,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    shared.seen.lock().expect("seen lock").push(Seen {
        method: method.to_string(),
        path: path.clone(),
        headers: headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let (status, body) = shared
        .answers
        .lock()
        .expect("answers lock")
        .get(&path)
        .cloned()
        .unwrap_or((200, "ok version=new".into()));
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body,
    )
}
