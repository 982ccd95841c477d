//! A lean HTTP/1.1 client, written for load generation as `wrk` is: each client task owns
//! one keep-alive TCP connection, writes each request from one reused buffer in one system
//! call and reads the answer into another, on the task itself (no connection task to wake,
//! no pool, no header map). On this tool's single thread that keeps its own CPU per request
//! low, so that the machine is left to the server being measured.
//!
//! Answers are framed as RFC 9112 §6 says: `Content-Length`, `chunked` transfer coding, or
//! the end of the connection; 1xx interim answers are skipped. Response heads are parsed by
//! `httparse`.

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http::{Method, Uri};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The largest response head accepted, and the most headers in it.
const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 64;
/// Room made in the read buffer before each read.
const READ_CHUNK: usize = 16 * 1024;

/// Where requests go and how they are signed; shared by every connection.
#[derive(Debug)]
pub struct Target {
    addr: SocketAddr,
    /// The `Host` header's value.
    authority: String,
    /// The base URL and token given (`--url`, `--token`) first; then, if any, those of
    /// further tenants on the same server (`--tenants-file`).
    endpoints: Vec<Endpoint>,
    timeout: Duration,
}

/// A base path and the token that goes with it.
#[derive(Debug)]
struct Endpoint {
    /// `Host` and `Authorization` header lines, ready to copy into every request.
    fixed_headers: String,
    /// The base path without a trailing slash, e.g. `/scim/v2`.
    base_path: String,
}

impl Target {
    /// Parses `http://HOST[:PORT]/PATH`. Only plain HTTP: the tool measures servers on
    /// this machine or behind a load balancer's plain-text port.
    pub fn new(url: &str, token: &str, timeout: Duration) -> Result<Target> {
        let uri: Uri = url.parse().context("--url is not a URL")?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => bail!("--url: only http:// is supported, not {other}://"),
            None => bail!("--url needs a scheme, e.g. http://127.0.0.1:8080/scim/v2"),
        }
        let host = uri.host().context("--url has no host")?;
        let port = uri.port_u16().unwrap_or(80);
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addr = (bare, port)
            .to_socket_addrs()
            .with_context(|| format!("resolving {host}"))?
            .next()
            .with_context(|| format!("{host} has no address"))?;
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or(host).to_string();
        let mut target = Target { addr, authority, endpoints: Vec::new(), timeout };
        target.endpoints.push(target.endpoint(&uri, token)?);
        Ok(target)
    }

    fn endpoint(&self, uri: &Uri, token: &str) -> Result<Endpoint> {
        if token.bytes().any(|b| b.is_ascii_control() || b == b' ') || token.is_empty() {
            bail!("a token must be non-empty printable text without spaces");
        }
        Ok(Endpoint {
            fixed_headers: format!("Host: {}\r\nAuthorization: Bearer {token}\r\n", self.authority),
            base_path: uri.path().trim_end_matches('/').to_string(),
        })
    }

    /// Adds the base URL and token of another tenant on the same server (same scheme, host
    /// and port); returns its index for `Conn::send_to`.
    pub fn add_endpoint(&mut self, url: &str, token: &str) -> Result<usize> {
        let uri: Uri = url.parse().with_context(|| format!("'{url}' is not a URL"))?;
        if uri.scheme_str() != Some("http") || uri.authority().map(|a| a.as_str()) != Some(self.authority.as_str()) {
            bail!("{url}: every tenant must be on the server of --url (http://{})", self.authority);
        }
        self.endpoints.push(self.endpoint(&uri, token)?);
        Ok(self.endpoints.len() - 1)
    }

    /// How many endpoints there are (`--url` and the tenants).
    pub fn endpoints(&self) -> usize {
        self.endpoints.len()
    }

    /// Whether the target is this machine (127.0.0.0/8, ::1).
    pub fn is_loopback(&self) -> bool {
        match self.addr.ip() {
            IpAddr::V4(ip) => ip.is_loopback(),
            IpAddr::V6(ip) => ip.is_loopback(),
        }
    }
}

/// One keep-alive connection, opened on first use and again after a failure or after the
/// server closed it.
pub struct Conn {
    target: Arc<Target>,
    stream: Option<TcpStream>,
    /// The request being written; its allocation is reused.
    out: Vec<u8>,
    /// Bytes read and not yet consumed.
    inbuf: Vec<u8>,
}

impl Conn {
    pub fn new(target: Arc<Target>) -> Conn {
        Conn { target, stream: None, out: Vec::with_capacity(1024), inbuf: Vec::with_capacity(READ_CHUNK) }
    }

    /// Sends one request (`path` relative to the base URL) and reads the whole answer.
    /// On a transport failure, a malformed answer or a timeout the connection is dropped;
    /// the next request opens a new one.
    pub async fn send(&mut self, method: Method, path: &str, body: Option<Bytes>) -> Result<(u16, Bytes)> {
        self.send_to(0, method, path, body).await
    }

    /// `send`, relative to the base URL and with the token of endpoint `at`.
    pub async fn send_to(
        &mut self,
        at: usize,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<(u16, Bytes)> {
        let timeout = self.target.timeout;
        match tokio::time::timeout(timeout, self.exchange(at, &method, path, body.as_deref())).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => {
                self.stream = None;
                Err(e)
            }
            Err(_) => {
                self.stream = None;
                bail!("timed out after {timeout:?}")
            }
        }
    }

    async fn exchange(&mut self, at: usize, method: &Method, path: &str, body: Option<&[u8]>) -> Result<(u16, Bytes)> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(self.target.addr).await?;
            stream.set_nodelay(true)?;
            self.stream = Some(stream);
            self.inbuf.clear();
        }
        self.write_request(at, method, path, body);
        let stream = self.stream.as_mut().expect("connected above");
        stream.write_all(&self.out).await?;
        let answer = read_response(stream, &mut self.inbuf, method == Method::HEAD).await?;
        if answer.close || !self.inbuf.is_empty() {
            // Closing, or bytes beyond the answer to a request that was not pipelined.
            self.stream = None;
        }
        Ok((answer.status, answer.body))
    }

    fn write_request(&mut self, at: usize, method: &Method, path: &str, body: Option<&[u8]>) {
        let e = &self.target.endpoints[at];
        let out = &mut self.out;
        out.clear();
        for part in [method.as_str(), " ", &e.base_path, path, " HTTP/1.1\r\n", &e.fixed_headers] {
            out.extend_from_slice(part.as_bytes());
        }
        if let Some(body) = body {
            out.extend_from_slice(b"Content-Type: application/scim+json\r\nContent-Length: ");
            out.extend_from_slice(body.len().to_string().as_bytes());
            out.extend_from_slice(b"\r\n\r\n");
            out.extend_from_slice(body);
        } else {
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// A complete answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Bytes,
    /// The server will close the connection (or already has).
    close: bool,
}

/// How the body of an answer is delimited.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

/// The parsed head of an answer.
#[derive(Debug)]
struct Head {
    status: u16,
    len: usize,
    framing: Framing,
    close: bool,
}

/// Reads more bytes into `buf`; fails at the end of the stream.
async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<()> {
    buf.reserve(READ_CHUNK);
    if stream.read_buf(buf).await? == 0 {
        bail!("the server closed the connection mid-answer");
    }
    Ok(())
}

/// Parses the head at the start of `buf`, if it is all there.
fn parse_head(buf: &[u8], head_request: bool) -> Result<Option<Head>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf).context("malformed response head")? {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial if buf.len() > MAX_HEAD => bail!("response head larger than {MAX_HEAD} bytes"),
        httparse::Status::Partial => return Ok(None),
    };
    let status = resp.code.context("no status code")?;
    let mut close = resp.version == Some(0);
    let (mut length, mut chunked) = (None, false);
    for h in resp.headers.iter() {
        let value = std::str::from_utf8(h.value).unwrap_or("").trim();
        if h.name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().context("bad Content-Length")?);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.rsplit(',').next().is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        } else if h.name.eq_ignore_ascii_case("connection") {
            let mut tokens = value.split(',').map(str::trim);
            if resp.version == Some(0) {
                close = !tokens.any(|t| t.eq_ignore_ascii_case("keep-alive"));
            } else {
                close |= tokens.any(|t| t.eq_ignore_ascii_case("close"));
            }
        }
    }
    let framing = if head_request || status == 204 || status == 304 || (100..200).contains(&status) {
        Framing::Length(0)
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    Ok(Some(Head { status, len, framing, close: close || framing == Framing::UntilClose }))
}

/// Reads one answer (skipping 1xx interim ones); what follows it stays in `buf`.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>, head_request: bool) -> Result<Answer> {
    loop {
        let head = loop {
            if let Some(head) = parse_head(buf, head_request)? {
                break head;
            }
            fill(stream, buf).await?;
        };
        buf.drain(..head.len);
        if (100..200).contains(&head.status) {
            continue;
        }
        let body = match head.framing {
            Framing::Length(n) => {
                while buf.len() < n {
                    fill(stream, buf).await?;
                }
                let body = Bytes::copy_from_slice(&buf[..n]);
                buf.drain(..n);
                body
            }
            Framing::Chunked => read_chunked(stream, buf).await?,
            Framing::UntilClose => {
                buf.reserve(READ_CHUNK);
                while stream.read_buf(buf).await? > 0 {
                    buf.reserve(READ_CHUNK);
                }
                Bytes::from(std::mem::take(buf))
            }
        };
        return Ok(Answer { status: head.status, body, close: head.close });
    }
}

/// Reads until `buf` holds a whole line; returns the position of its CRLF.
async fn read_line(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<usize> {
    loop {
        if let Some(end) = buf.windows(2).position(|w| w == b"\r\n") {
            return Ok(end);
        }
        if buf.len() > MAX_HEAD {
            bail!("line in a chunked body longer than {MAX_HEAD} bytes");
        }
        fill(stream, buf).await?;
    }
}

/// Decodes a `chunked` body (RFC 9112 §7.1), trailers read and dropped.
async fn read_chunked(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Bytes> {
    let mut body = Vec::new();
    loop {
        let end = read_line(stream, buf).await?;
        let line = std::str::from_utf8(&buf[..end]).context("chunk size line is not text")?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).with_context(|| format!("bad chunk size '{size_text}'"))?;
        buf.drain(..end + 2);
        if size == 0 {
            // Trailer fields, then an empty line.
            loop {
                let end = read_line(stream, buf).await?;
                buf.drain(..end + 2);
                if end == 0 {
                    return Ok(Bytes::from(body));
                }
            }
        }
        while buf.len() < size + 2 {
            fill(stream, buf).await?;
        }
        if &buf[size..size + 2] != b"\r\n" {
            bail!("chunk not followed by CRLF");
        }
        body.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A server on loopback that answers each request with the next canned answer.
    async fn canned(answers: Vec<&'static [u8]>) -> (Arc<Target>, tokio::task::JoinHandle<Vec<Vec<u8>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/scim/v2", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            for answer in answers {
                let mut req = vec![0u8; 4096];
                let n = s.read(&mut req).await.unwrap();
                seen.push(req[..n].to_vec());
                s.write_all(answer).await.unwrap();
            }
            seen
        });
        (Arc::new(Target::new(&url, "tok", Duration::from_secs(5)).unwrap()), server)
    }

    #[tokio::test]
    async fn frames_answers_by_length_chunks_and_close_on_one_connection() {
        let (target, server) = canned(vec![
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\ngone",
        ])
        .await;
        let mut c = Conn::new(target);
        assert_eq!(c.send(Method::GET, "/Users/1", None).await.unwrap(), (200, Bytes::from_static(b"hello")));
        let body = Some(Bytes::from_static(b"{}"));
        assert_eq!(c.send(Method::POST, "/Users", body).await.unwrap(), (201, Bytes::from_static(b"abcde")));
        assert_eq!(c.send(Method::DELETE, "/Users/1", None).await.unwrap(), (204, Bytes::new()));
        assert_eq!(c.send(Method::GET, "/Users/2", None).await.unwrap(), (404, Bytes::from_static(b"gone")));
        assert!(c.stream.is_none(), "a connection the server closes is not reused");
        let seen = server.await.unwrap();
        let first = String::from_utf8(seen[0].clone()).unwrap();
        assert!(first.starts_with("GET /scim/v2/Users/1 HTTP/1.1\r\n"), "{first}");
        assert!(first.contains("\r\nAuthorization: Bearer tok\r\n") && first.ends_with("\r\n\r\n"), "{first}");
        let second = String::from_utf8(seen[1].clone()).unwrap();
        assert!(second.contains("Content-Type: application/scim+json\r\nContent-Length: 2\r\n\r\n{}"), "{second}");
    }

    #[tokio::test]
    async fn a_truncated_answer_is_an_error_and_the_connection_is_dropped() {
        let (target, server) = canned(vec![b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"]).await;
        let mut c = Conn::new(target);
        let sent = c.send(Method::GET, "/Users", None);
        let (result, _) = tokio::join!(sent, server);
        assert!(result.is_err());
        assert!(c.stream.is_none());
    }
}
