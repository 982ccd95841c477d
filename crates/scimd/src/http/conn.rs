//! One client connection's transport: what hyper reads and writes goes through here.
//!
//! - hyper answers a request it cannot parse with a bare status (`connection: close`,
//!   `content-length: 0`, no content type). No scimd response has that shape, so such a
//!   head, always the last thing written on a connection, is recognised exactly and
//!   replaced with the same status carrying a SCIM Error body.
//! - When the connection ends, its socket lingers: the write side is shut down and
//!   whatever the client still sends is read and dropped for a moment. Closing with unread
//!   data would reset the connection, and the client could lose the answer (a 413 sent
//!   before the body was read, say).
//! - A new connection has the header timeout to send its first bytes. (hyper's own header
//!   timeout starts only once the HTTP version is known, and telling HTTP/1.1 from
//!   HTTP/2 waits for those bytes without any limit.)
//! - The connection's slot (`super::HttpSettings::max_connections`) is held until then.

use scimd_proto::ScimError;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

/// How long, and how much, a closing connection keeps reading before it is dropped.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 4 * 1024 * 1024;

/// The bytes that tell HTTP/2's connection preface from an HTTP/1.1 request line.
const OPENING_BYTES: usize = 24;

pub struct Refusals {
    stream: Option<TcpStream>,
    /// Until `OPENING_BYTES` have arrived: when they must have.
    opening: Option<Pin<Box<tokio::time::Sleep>>>,
    received: usize,
    slot: Option<OwnedSemaphorePermit>,
    /// A rewritten answer still to be written, and how much of it was.
    pending: Vec<u8>,
    written: usize,
}

impl Refusals {
    pub fn new(stream: TcpStream, slot: OwnedSemaphorePermit, opening_timeout: Duration) -> Refusals {
        Refusals {
            stream: Some(stream),
            opening: Some(Box::pin(tokio::time::sleep(opening_timeout))),
            received: 0,
            slot: Some(slot),
            pending: Vec::new(),
            written: 0,
        }
    }

    fn stream(&mut self) -> Pin<&mut TcpStream> {
        Pin::new(self.stream.as_mut().expect("the stream lives until drop"))
    }

    /// Writes what is pending; ready when nothing is.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let (written, pending) = (self.written, std::mem::take(&mut self.pending));
            let result = self.stream().poll_write(cx, &pending[written..]);
            self.pending = pending;
            match result {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => self.written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for Refusals {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match self.stream().poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                self.received += buf.filled().len() - before;
                if self.received >= OPENING_BYTES {
                    self.opening = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match self.opening.as_mut().map(|deadline| deadline.as_mut().poll(cx)) {
                Some(Poll::Ready(())) => {
                    Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "no request within the header timeout")))
                }
                _ => Poll::Pending,
            },
            other => other,
        }
    }
}

impl AsyncWrite for Refusals {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        std::task::ready!(self.poll_pending(cx))?;
        match bare_refusal(buf) {
            Some((start, head)) => {
                self.pending = buf[..start].to_vec();
                self.pending.extend_from_slice(&scim_refusal(&head));
                self.written = 0;
                // All of `buf` is taken: what it became is written before anything else.
                let _ = self.poll_pending(cx)?;
                Poll::Ready(Ok(buf.len()))
            }
            None => self.stream().poll_write(cx, buf),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_pending(cx))?;
        self.stream().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_pending(cx))?;
        self.stream().poll_shutdown(cx)
    }
}

impl Drop for Refusals {
    fn drop(&mut self) {
        let (Some(stream), slot) = (self.stream.take(), self.slot.take()) else { return };
        // Outside a runtime (it is shutting down) the socket simply closes.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(linger(stream, slot));
        }
    }
}

/// Shuts the write side, then reads and drops what the client still sends, bounded in
/// time and bytes, so that closing does not reset the connection under an unread answer.
async fn linger(mut stream: TcpStream, slot: Option<OwnedSemaphorePermit>) {
    let _ = stream.shutdown().await;
    let drain = async {
        let mut buf = [0u8; 8192];
        let mut total = 0;
        while total < LINGER_BYTES {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
    drop(slot);
}

/// The head of hyper's own answer to a request it could not parse, when `buf` ends with
/// one: where it starts, and its status line.
fn bare_refusal(buf: &[u8]) -> Option<(usize, String)> {
    const SUFFIX: &[u8] = b"\r\n\r\n";
    const FIELDS: &[u8] = b"\r\nconnection: close\r\ncontent-length: 0\r\ndate: ";
    if !buf.ends_with(SUFFIX) {
        return None;
    }
    let start = find_last(buf, b"HTTP/1.1 ")?;
    let head = &buf[start..buf.len() - SUFFIX.len()];
    let line_end = find_first(head, b"\r\n")?;
    let (status_line, rest) = head.split_at(line_end);
    // Exactly the status line, the two fields, and a date: no content type, no body.
    let date = rest.strip_prefix(FIELDS)?;
    if date.contains(&b'\r') || date.contains(&b'\n') {
        return None;
    }
    let status_line = std::str::from_utf8(status_line).ok()?;
    let code: u16 = status_line.get(9..12)?.parse().ok()?;
    (400..600).contains(&code).then(|| (start, status_line.to_string()))
}

fn find_last(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

fn find_first(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A complete HTTP/1.1 response carrying a SCIM error, that closes the connection.
fn error_response(status_line: &str, error: &ScimError, extra: &str) -> Vec<u8> {
    let body = serde_json::to_vec(&error.to_body()).unwrap_or_default();
    let mut out = format!(
        "{status_line}\r\ncontent-type: application/scim+json\r\n{extra}connection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    out
}

/// The SCIM answer for hyper's status line `HTTP/1.1 <code> <reason>`.
fn scim_refusal(status_line: &str) -> Vec<u8> {
    let code: u16 = status_line.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(400);
    let detail = match code {
        414 => "the request URI is longer than this server accepts".to_string(),
        431 => format!(
            "the request line and headers are larger than this server accepts ({} bytes)",
            super::MAX_HEAD_BYTES
        ),
        _ => "the request is not valid HTTP/1.1 (its request line, URI or a header could not be parsed; \
              a query string must percent-encode characters such as '\"', '<', '>' and spaces)"
            .to_string(),
    };
    error_response(status_line, &ScimError::new(code, None, detail), "")
}

/// Answers a connection over the cap with a 503, then closes it.
pub async fn refuse_busy(mut stream: TcpStream) {
    let error = ScimError::new(503, None, "this server has as many connections open as it allows; retry shortly");
    let response = error_response("HTTP/1.1 503 Service Unavailable", &error, "retry-after: 1\r\n");
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&response)).await;
    linger(stream, None).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYPER_400: &[u8] = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: Mon, 30 Nov 2026 06:15:45 GMT\r\n\r\n";

    #[test]
    fn recognises_only_hypers_bare_refusal() {
        assert_eq!(bare_refusal(HYPER_400), Some((0, "HTTP/1.1 400 Bad Request".into())));
        // After a complete earlier answer on the same connection.
        let mut two = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi".to_vec();
        two.extend_from_slice(HYPER_400);
        assert_eq!(bare_refusal(&two).map(|(at, _)| at), Some(two.len() - HYPER_400.len()));
        // scimd's own answers carry a type and a body; an empty 204 is not an error.
        for not in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/scim+json\r\ncontent-length: 2\r\n\r\n{}"[..],
            b"HTTP/1.1 204 No Content\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\nx-y: z\r\n\r\n",
            b"{\"detail\": \"HTTP/1.1 400 Bad Request\"}",
        ] {
            assert_eq!(bare_refusal(not), None, "{}", String::from_utf8_lossy(not));
        }
    }

    #[test]
    fn refusals_become_scim_errors() {
        let out = String::from_utf8(scim_refusal("HTTP/1.1 431 Request Header Fields Too Large")).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"), "{head}");
        assert!(head.contains("content-type: application/scim+json") && head.contains("connection: close"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["status"], "431");
        assert_eq!(body["schemas"][0], scimd_proto::ERROR_URN);
    }
}
