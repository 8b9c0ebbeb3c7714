//! The local console's front door: every request head is read here, with the console's own
//! limits, before the HTTP server sees it, so that a refusal at the HTTP layer (a URL too
//! long, too many or too large headers, a request line that is not HTTP, a client that never
//! finishes its head) is answered like every other refusal: the console's security headers
//! and a short body that names the problem.
//!
//! hyper answers such requests itself (414, 431, 400) with a bare status line and no way to
//! add headers; its limits are larger than ours, so a head that passes here never reaches
//! them. Each connection serves one request (every local response says `Connection: close`,
//! [`crate::local`]), so no later request on a kept-alive connection can bypass the door.
//! Behind a function URL (the Lambda console) these refusals are AWS's, outside the function.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use axum::body::to_bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::answer::{Refusal, security_headers};

/// The longest request target accepted, in bytes (a console URL with a link is ~400).
pub const MAX_TARGET_BYTES: usize = 8 * 1024;
/// The largest request head (request line and headers) accepted, in bytes.
pub const MAX_HEAD_BYTES: usize = 32 * 1024;
/// The most header fields accepted.
pub const MAX_HEADERS: usize = 64;
/// How long a client may take to send its request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections whose heads were accepted and not yet taken by the server.
const ACCEPTED_QUEUE: usize = 64;

/// A listener whose connections have passed the front door: each comes with its request head
/// already read (and replayed to the server) and the peer's address.
pub struct CheckedListener {
    accepted: mpsc::Receiver<(Replayed, SocketAddr)>,
    local: SocketAddr,
    doorman: tokio::task::JoinHandle<()>,
}

impl Drop for CheckedListener {
    fn drop(&mut self) {
        self.doorman.abort();
    }
}

impl CheckedListener {
    /// Starts reading request heads from `listener`'s connections, each on its own task (a
    /// slow client delays only itself).
    pub fn new(listener: TcpListener) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (sender, accepted) = mpsc::channel(ACCEPTED_QUEUE);
        let doorman = tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    // Out of descriptors, say: the next accept may succeed.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let sender = sender.clone();
                tokio::spawn(async move {
                    if let Some(replayed) = admit(stream).await {
                        let _ = sender.send((replayed, peer)).await;
                    }
                });
            }
        });
        Ok(CheckedListener {
            accepted,
            local,
            doorman,
        })
    }
}

impl axum::serve::Listener for CheckedListener {
    type Io = Replayed;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(accepted) => accepted,
            // The doorman never stops while the listener lives.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Why a request head was refused at the door.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    TargetTooLong,
    HeadTooLarge,
    NotHttp,
    TooSlow,
}

impl Refused {
    fn refusal(self) -> Refusal {
        match self {
            Refused::TargetTooLong => Refusal::new(
                StatusCode::URI_TOO_LONG,
                "Address too long",
                format!("the request's URL is longer than {MAX_TARGET_BYTES} bytes"),
            ),
            Refused::HeadTooLarge => Refusal::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "Headers too large",
                format!(
                    "the request's headers are larger than {MAX_HEAD_BYTES} bytes or more than \
                     {MAX_HEADERS} fields"
                ),
            ),
            Refused::NotHttp => Refusal::new(
                StatusCode::BAD_REQUEST,
                "Not an HTTP request",
                "the request line or a header could not be read as HTTP/1.1",
            ),
            Refused::TooSlow => Refusal::new(
                StatusCode::REQUEST_TIMEOUT,
                "Request too slow",
                format!(
                    "the request's headers did not arrive within {} seconds",
                    HEAD_TIMEOUT.as_secs()
                ),
            ),
        }
    }
}

/// Reads the request head of `stream` and hands the connection on, or answers the refusal and
/// closes it. `None` when the connection is done with (refused, or closed by the client).
async fn admit(mut stream: TcpStream) -> Option<Replayed> {
    let verdict = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream))
        .await
        .unwrap_or(Err(Some(Refused::TooSlow)));
    match verdict {
        Ok(head) => Some(Replayed {
            head,
            offset: 0,
            stream,
        }),
        Err(Some(refused)) => {
            answer(&mut stream, refused).await;
            None
        }
        Err(None) => None,
    }
}

/// The request head's bytes (and whatever followed them in the same reads), or why it is
/// refused (`None`: the client closed the connection first).
async fn read_head(stream: &mut TcpStream) -> Result<Vec<u8>, Option<Refused>> {
    let mut head = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let read = stream.read(&mut chunk).await.map_err(|_| None)?;
        if read == 0 {
            return Err(None);
        }
        head.extend_from_slice(&chunk[..read]);
        match judge(&head) {
            Judgement::Complete => return Ok(head),
            Judgement::Refused(refused) => return Err(Some(refused)),
            Judgement::Partial => {}
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Judgement {
    Complete,
    Partial,
    Refused(Refused),
}

/// What the bytes of a request head so far say (`httparse`, the parser hyper itself uses).
fn judge(bytes: &[u8]) -> Judgement {
    let request_line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    // Method, spaces and "HTTP/1.1\r" beside the target: a line this long holds a target too
    // long, whether or not it has ended yet.
    if request_line.len() > MAX_TARGET_BYTES + 32 {
        return Judgement::Refused(Refused::TargetTooLong);
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let parsed = request.parse(bytes);
    if request.path.is_some_and(|p| p.len() > MAX_TARGET_BYTES) {
        return Judgement::Refused(Refused::TargetTooLong);
    }
    match parsed {
        Ok(httparse::Status::Complete(end)) if end <= MAX_HEAD_BYTES => {
            if as_hyper_reads_it(&request) {
                Judgement::Complete
            } else {
                Judgement::Refused(Refused::NotHttp)
            }
        }
        Ok(_) if bytes.len() >= MAX_HEAD_BYTES => Judgement::Refused(Refused::HeadTooLarge),
        Ok(_) => Judgement::Partial,
        Err(httparse::Error::TooManyHeaders) => Judgement::Refused(Refused::HeadTooLarge),
        Err(_) => Judgement::Refused(Refused::NotHttp),
    }
}

/// Whether hyper will take a head httparse parsed: it builds the method, the target and every
/// header with the `http` crate's types, which refuse what httparse lets through (a backtick in
/// a path, say), and answers a bare 400 for those. Checked here, so the door answers instead.
fn as_hyper_reads_it(request: &httparse::Request<'_, '_>) -> bool {
    use axum::http::{HeaderName, HeaderValue, Method, Uri};
    request
        .method
        .is_some_and(|m| Method::from_bytes(m.as_bytes()).is_ok())
        && request.path.is_some_and(|p| p.parse::<Uri>().is_ok())
        && request.headers.iter().all(|h| {
            HeaderName::from_bytes(h.name.as_bytes()).is_ok()
                && HeaderValue::from_bytes(h.value).is_ok()
        })
}

/// What every local answer carries besides the security headers: `Connection: close`, so
/// each connection serves one request and every request head passes the front door
/// (this front door).
pub(crate) fn with_local_headers(mut response: Response) -> Response {
    response.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    response
}

/// Writes the refusal as the router would answer it (same page, same headers), then closes.
async fn answer(stream: &mut TcpStream, refused: Refused) {
    let response = with_local_headers(security_headers(refused.refusal().into_response()).await);
    let bytes = serialise(response).await;
    let _ = stream.write_all(&bytes).await;
    let _ = stream.shutdown().await;
    // Read what the client is still sending for a moment, so closing does not reset the
    // connection before it has read the answer.
    let mut sink = [0u8; 4096];
    let drain = async { while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {} };
    let _ = tokio::time::timeout(Duration::from_millis(500), drain).await;
}

/// An HTTP/1.1 response as bytes: status line, the response's headers, a content length, the
/// body.
async fn serialise(response: Response) -> Vec<u8> {
    let (parts, body) = response.into_parts();
    let body = to_bytes(body, MAX_HEAD_BYTES).await.unwrap_or_default();
    let mut bytes = format!(
        "HTTP/1.1 {} {}\r\n",
        parts.status.as_u16(),
        parts.status.canonical_reason().unwrap_or("Refused")
    )
    .into_bytes();
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONTENT_LENGTH {
            bytes.extend_from_slice(name.as_str().as_bytes());
            bytes.extend_from_slice(b": ");
            bytes.extend_from_slice(value.as_bytes());
            bytes.extend_from_slice(b"\r\n");
        }
    }
    bytes.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    bytes.extend_from_slice(&body);
    bytes
}

/// A connection whose first bytes (the request head the door read) are read again by the
/// server before the rest of the stream.
pub struct Replayed {
    head: Vec<u8>,
    offset: usize,
    stream: TcpStream,
}

impl AsyncRead for Replayed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.offset < self.head.len() {
            let n = buf.remaining().min(self.head.len() - self.offset);
            let start = self.offset;
            buf.put_slice(&self.head[start..start + n]);
            self.offset += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Replayed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_judged_by_the_consoles_limits() {
        let ok = b"GET /deployments/x?link=abc HTTP/1.1\r\nHost: 127.0.0.1:8088\r\n\r\n";
        assert_eq!(judge(ok), Judgement::Complete);
        assert_eq!(judge(&ok[..20]), Judgement::Partial);
        let long = format!("GET /?x={} HTTP/1.1\r\n\r\n", "a".repeat(MAX_TARGET_BYTES));
        assert_eq!(
            judge(long.as_bytes()),
            Judgement::Refused(Refused::TargetTooLong)
        );
        let unfinished = format!("GET /?x={}", "a".repeat(MAX_TARGET_BYTES + 40));
        assert_eq!(
            judge(unfinished.as_bytes()),
            Judgement::Refused(Refused::TargetTooLong),
            "known too long before the line ends"
        );
        let big = format!(
            "GET / HTTP/1.1\r\nX-Big: {}\r\n",
            "b".repeat(MAX_HEAD_BYTES)
        );
        assert_eq!(
            judge(big.as_bytes()),
            Judgement::Refused(Refused::HeadTooLarge)
        );
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: v\r\n")).collect();
        let many = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(
            judge(many.as_bytes()),
            Judgement::Refused(Refused::HeadTooLarge)
        );
        assert_eq!(
            judge(b"BLAH BLAH\x01 nonsense\r\n\r\n"),
            Judgement::Refused(Refused::NotHttp)
        );
        // Found by the fuzz campaign: httparse takes a backtick in a path, hyper does not.
        assert_eq!(
            judge(b"GET /` HTTP/1.1\r\n\r\n"),
            Judgement::Refused(Refused::NotHttp)
        );
    }
}
