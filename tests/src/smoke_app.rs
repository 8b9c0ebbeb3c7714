//! A tiny HTTP app on loopback that plays pre-prod behind the test listener: smoke checks hit
//! it, and tests change what it answers.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;

type Answers = Arc<Mutex<std::collections::HashMap<String, (u16, String)>>>;

/// The running app; it stops when the test's runtime ends.
pub struct SmokeApp {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    answers: Answers,
}

impl SmokeApp {
    /// Serves `200 ok` on every path until told otherwise.
    pub async fn start() -> SmokeApp {
        let answers: Answers = Arc::default();
        let app = Router::new()
            .route("/{*path}", get(answer))
            .with_state(answers.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().expect("bound address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        SmokeApp { url, answers }
    }

    /// Makes `path` (without the leading `/`) answer `status` with `body`.
    pub fn answer(&self, path: &str, status: u16, body: &str) {
        self.answers.lock().expect("answers lock").insert(
            path.trim_start_matches('/').to_owned(),
            (status, body.to_owned()),
        );
    }
}

async fn answer(State(answers): State<Answers>, Path(path): Path<String>) -> (StatusCode, String) {
    let (status, body) = answers
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
