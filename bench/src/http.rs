//! A lean HTTP/1.1 client: each load-generating task owns one keep-alive connection and
//! sends its requests on it one after another, as `wrk` does. There is no pool to search,
//! no URL to parse per request and no header map to merge, so the tool spends little CPU
//! per request and leaves the machine to the server it measures.

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

/// Where requests go and how they are signed; shared by every connection.
#[derive(Debug)]
pub struct Target {
    addr: SocketAddr,
    host: HeaderValue,
    /// The base path without a trailing slash, e.g. `/scim/v2`.
    base_path: String,
    auth: HeaderValue,
    timeout: Duration,
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
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or(host);
        Ok(Target {
            addr,
            host: HeaderValue::from_str(authority)?,
            base_path: uri.path().trim_end_matches('/').to_string(),
            auth: HeaderValue::from_str(&format!("Bearer {token}")).context("the token is not a valid header value")?,
            timeout,
        })
    }

    /// Whether the target is this machine (127.0.0.0/8, ::1).
    pub fn is_loopback(&self) -> bool {
        match self.addr.ip() {
            IpAddr::V4(ip) => ip.is_loopback(),
            IpAddr::V6(ip) => ip.is_loopback(),
        }
    }
}

/// One keep-alive connection, opened on first use and again after a failure.
pub struct Conn {
    target: Arc<Target>,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    pub fn new(target: Arc<Target>) -> Conn {
        Conn { target, sender: None }
    }

    /// Sends one request (`path` relative to the base URL) and reads the whole answer.
    /// On a transport failure or timeout the connection is dropped; the next request
    /// opens a new one.
    pub async fn send(&mut self, method: Method, path: &str, body: Option<Bytes>) -> Result<(u16, Bytes)> {
        let result = tokio::time::timeout(self.target.timeout, self.exchange(method, path, body)).await;
        match result {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => {
                self.sender = None;
                Err(e)
            }
            Err(_) => {
                self.sender = None;
                bail!("timed out after {:?}", self.target.timeout)
            }
        }
    }

    async fn exchange(&mut self, method: Method, path: &str, body: Option<Bytes>) -> Result<(u16, Bytes)> {
        if self.sender.as_ref().is_none_or(SendRequest::is_closed) {
            self.sender = Some(connect(&self.target).await?);
        }
        let sender = self.sender.as_mut().expect("connected above");
        sender.ready().await?;
        let t = &self.target;
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", t.base_path))
            .header(HOST, t.host.clone())
            .header(AUTHORIZATION, t.auth.clone());
        if body.is_some() {
            req = req.header(CONTENT_TYPE, HeaderValue::from_static("application/scim+json"));
        }
        let resp = sender.send_request(req.body(Full::new(body.unwrap_or_default()))?).await?;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }
}

async fn connect(target: &Target) -> Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(target.addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}
