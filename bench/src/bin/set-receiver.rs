//! `set-receiver`: a push receiver (RFC 8935) for benchmarks. It answers every POST 202 and
//! writes one line per SET received, `<arrival, µs since the Unix epoch> <jti>`, to a file,
//! so that delivery lag can be computed against the events' commit times. It does not verify
//! signatures (the tests do): it measures delivery, and must cost the machine little.
//!
//! Usage: set-receiver LISTEN_ADDR OUT_FILE

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use std::io::Write;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest request accepted (a SET of a large create is a few KiB).
const MAX_REQUEST: usize = 1 << 20;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, listen, out] = args.as_slice() else { bail!("usage: set-receiver LISTEN_ADDR OUT_FILE") };
    let addr: std::net::SocketAddr = listen.parse().context("LISTEN_ADDR is ip:port")?;
    if !addr.ip().is_loopback() {
        bail!("set-receiver listens on loopback addresses only");
    }
    let file = std::fs::File::create(out).with_context(|| format!("creating {out}"))?;
    let out = Arc::new(Mutex::new(std::io::LineWriter::new(file)));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    loop {
        let (socket, _) = listener.accept().await?;
        let out = out.clone();
        tokio::spawn(async move {
            let _ = serve(socket, out).await;
        });
    }
}

/// One keep-alive connection: requests until the peer closes it.
async fn serve(mut socket: tokio::net::TcpStream, out: Arc<Mutex<std::io::LineWriter<std::fs::File>>>) -> Result<()> {
    let mut buf = Vec::with_capacity(8192);
    loop {
        // The head.
        let (head_len, body_len) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            if let httparse::Status::Complete(n) = req.parse(&buf)? {
                let length = req
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                break (n, length);
            }
            if buf.len() > MAX_REQUEST || socket.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        };
        if head_len + body_len > MAX_REQUEST {
            bail!("request too large");
        }
        while buf.len() < head_len + body_len {
            if socket.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        }
        let arrived = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_micros();
        if let Some(jti) = jti(&buf[head_len..head_len + body_len]) {
            let mut w = out.lock().unwrap_or_else(|e| e.into_inner());
            writeln!(w, "{arrived} {jti}")?;
        }
        buf.drain(..head_len + body_len);
        socket.write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n").await?;
    }
}

/// The `jti` claim of a compact JWS, unverified.
fn jti(jws: &[u8]) -> Option<String> {
    let payload = std::str::from_utf8(jws).ok()?.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("jti")?.as_str().map(str::to_string)
}
