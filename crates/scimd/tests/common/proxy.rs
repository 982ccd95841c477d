//! A TCP proxy between scimd and a database server, to cut the server off mid-way.

use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A TCP proxy to `target` that can be cut (every connection dropped, nothing listening)
/// and restored on the same port.
pub struct Proxy {
    pub port: u16,
    target: String,
    accepting: Option<JoinHandle<()>>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    pub async fn start(target: String) -> Proxy {
        let mut p = Proxy { port: 0, target, accepting: None, links: Arc::default() };
        p.restore().await;
        p
    }

    pub async fn restore(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.port = listener.local_addr().unwrap().port();
        let (target, links) = (self.target.clone(), self.links.clone());
        self.accepting = Some(tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let Ok(mut outbound) = TcpStream::connect(&target).await else { continue };
                let link = tokio::spawn(async move {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
                links.lock().unwrap().push(link);
            }
        }));
    }

    /// Drops every proxied connection and goes on accepting new ones (a pooler, a load
    /// balancer or a firewall resetting its connections).
    pub fn reset(&self) {
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    /// Stops listening and drops every proxied connection.
    pub async fn cut(&mut self) {
        if let Some(a) = self.accepting.take() {
            a.abort();
            let _ = a.await;
        }
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }
}

/// The host:port and the rest of a `postgres://` URL, to put a proxy in between.
pub fn split_url(url: &str) -> (String, String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (auth, rest) = rest.rsplit_once('@').map(|(a, r)| (format!("{a}@"), r)).unwrap_or((String::new(), rest));
    let (host_port, path) = rest.split_once('/').unwrap();
    (format!("{scheme}://{auth}"), host_port.to_string(), format!("/{path}"))
}
