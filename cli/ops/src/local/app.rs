//! The app the smoke checks reach on an emulator: every request is answered `200 ok` (the
//! service's real app does not run here; the emulator's tasks are records, not containers).

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Answers every request on `listener`, one connection at a time per task, until the process
/// ends.
pub async fn serve(listener: TcpListener) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            // Read the request head (the checks send small requests); the body is not needed.
            let mut buffer = [0u8; 8192];
            let mut read = 0;
            while read < buffer.len() {
                match stream.read(&mut buffer[read..]).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => read += n,
                }
                if buffer[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            let answer = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
            let _ = stream.write_all(answer.as_bytes()).await;
        });
    }
}
