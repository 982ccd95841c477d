//! The HTTP server: accepting connections and bounding what each may cost.
//!
//! - A client has `header_read_timeout` to send a request's headers, on a new connection
//!   and between requests on a kept-alive one; a stalled or idle connection is closed then.
//! - At most `max_connections` connections are open at once; past that, a new connection
//!   gets a 503 SCIM error with `Retry-After` and is closed.
//! - Request heads are bounded (`MAX_HEAD_BYTES`); the HTTP parser's own refusals (a
//!   malformed request line, an oversized head) are answered with SCIM error bodies
//!   (`conn::Refusals`).
//! - On shutdown, no connection is accepted any more, requests in progress finish, idle
//!   connections close, and after `shutdown_grace` whatever is left is dropped: the process
//!   always exits.

mod conn;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The largest request head (request line and headers) read, in bytes.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Connection-level limits.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
}

/// The default connection cap: half the process's open-file limit (the rest is for the
/// database, logs and the listener), at most 4,096.
pub fn default_max_connections() -> usize {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct it is given and reads nothing else.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX)
    } else {
        1024
    };
    (soft / 2).clamp(64, 4096)
}

/// Serves `app` on `listener` until `shutdown` completes, then drains as described above.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    settings: HttpSettings,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    builder.http2().timer(TokioTimer::new()).max_header_list_size(MAX_HEAD_BYTES as u32);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(settings.max_connections.max(1)));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // pause briefly rather than spin, and go on.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Answers go out as soon as they are written: without TCP_NODELAY the last segment
        // of a large answer can wait for the client's delayed acknowledgement.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tokio::spawn(conn::refuse_busy(stream));
            continue;
        };
        let io = hyper_util::rt::TokioIo::new(conn::Refusals::new(stream, slot, settings.header_read_timeout));
        let connection = builder.serve_connection(io, TowerToHyperService::new(app.clone())).into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let open = graceful.count();
    tracing::info!(connections = open, grace_secs = settings.shutdown_grace.as_secs_f64(), "draining connections");
    if tokio::time::timeout(settings.shutdown_grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("shutdown grace period over: closing the connections still open");
    }
    Ok(())
}
