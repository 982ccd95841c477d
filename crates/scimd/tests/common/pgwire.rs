//! A TCP proxy in front of PostgreSQL that reads the client's side of the wire protocol and
//! logs every round trip scimd makes, per connection: a simple query, an extended-protocol
//! statement (`Parse`/`Bind`/`Execute` up to `Sync`), a statement only prepared, or a bare
//! `Sync` (a ping). What the server's statement log shows, plus the pings it does not.
//! Needs a connection without TLS (`sslmode=disable`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One round trip: one message the client waits on an answer for.
#[derive(Debug, Clone, PartialEq)]
pub enum Trip {
    /// A simple-protocol query (`BEGIN`, `COMMIT`, …).
    Simple(String),
    /// A prepared statement run.
    Execute(String),
    /// A statement prepared (and described) without running it.
    Prepare(String),
    /// A `Sync` alone.
    Ping,
}

impl Trip {
    pub fn sql(&self) -> &str {
        match self {
            Trip::Simple(s) | Trip::Execute(s) | Trip::Prepare(s) => s,
            Trip::Ping => "",
        }
    }
}

/// The round trips seen, in order, as (connection number, trip).
pub type Log = Arc<Mutex<Vec<(usize, Trip)>>>;

pub struct WireLog {
    pub port: u16,
    pub log: Log,
    accepting: tokio::task::JoinHandle<()>,
}

impl WireLog {
    pub async fn start(target: String) -> WireLog {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Log::default();
        let sink = log.clone();
        let accepting = tokio::spawn(async move {
            let mut next = 0;
            while let Ok((inbound, _)) = listener.accept().await {
                let Ok(outbound) = TcpStream::connect(&target).await else { continue };
                next += 1;
                tokio::spawn(link(next, inbound, outbound, sink.clone()));
            }
        });
        WireLog { port, log, accepting }
    }

    /// Takes what was logged so far.
    pub fn take(&self) -> Vec<(usize, Trip)> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }
}

impl Drop for WireLog {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

async fn link(conn: usize, inbound: TcpStream, outbound: TcpStream, log: Log) {
    let (mut client_read, mut client_write) = inbound.into_split();
    let (mut server_read, mut server_write) = outbound.into_split();
    let answers = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
    });
    let mut reader = Reader { conn, log, buf: Vec::new(), started: false, ..Reader::default() };
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match client_read.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if server_write.write_all(&chunk[..n]).await.is_err() {
            break;
        }
        reader.feed(&chunk[..n]);
    }
    let _ = server_write.shutdown().await;
    answers.abort();
}

/// The client's messages of one connection, parsed as they pass.
#[derive(Default)]
struct Reader {
    conn: usize,
    log: Log,
    buf: Vec<u8>,
    /// Past the start-up message (the only one without a type byte, with TLS off).
    started: bool,
    /// Prepared statements by name.
    statements: HashMap<String, String>,
    /// Since the last `Sync`: the statement bound to run, or only prepared.
    bound: Option<String>,
    parsed: Option<String>,
}

impl Reader {
    fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        loop {
            let header = if self.started { 5 } else { 4 };
            if self.buf.len() < header {
                return;
            }
            let at = header - 4;
            let len = u32::from_be_bytes(self.buf[at..at + 4].try_into().unwrap()) as usize;
            let total = at + len;
            if self.buf.len() < total {
                return;
            }
            let message: Vec<u8> = self.buf.drain(..total).collect();
            if !self.started {
                self.started = true;
                continue;
            }
            self.message(message[0], &message[5..]);
        }
    }

    fn message(&mut self, kind: u8, body: &[u8]) {
        let mut fields = body.split(|b| *b == 0).map(|f| String::from_utf8_lossy(f).into_owned());
        let trip = match kind {
            b'Q' => Trip::Simple(fields.next().unwrap_or_default()),
            b'P' => {
                let (name, sql) = (fields.next().unwrap_or_default(), fields.next().unwrap_or_default());
                self.statements.insert(name, sql.clone());
                self.parsed = Some(sql);
                return;
            }
            b'B' => {
                let _portal = fields.next();
                let name = fields.next().unwrap_or_default();
                self.bound = self.statements.get(&name).cloned();
                return;
            }
            b'S' => match (self.bound.take(), self.parsed.take()) {
                (Some(sql), _) => Trip::Execute(sql),
                (None, Some(sql)) => Trip::Prepare(sql),
                (None, None) => Trip::Ping,
            },
            _ => return,
        };
        self.log.lock().unwrap().push((self.conn, trip));
    }
}
