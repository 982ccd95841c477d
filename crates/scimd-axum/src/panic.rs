//! The last line of defence: a panic in a handler (a bug, or an application's adapter) is
//! answered with a SCIM 500 naming the request id, instead of a dropped connection. The
//! panic itself is logged by the process's panic hook, with its backtrace (see
//! `log_panics`); this layer logs that the request was answered.

use crate::error::error_response;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use futures_util::FutureExt;
use scimd_proto::ScimError;
use std::panic::AssertUnwindSafe;

/// The header request ids travel in.
pub const REQUEST_ID: &str = "x-request-id";

/// Middleware: runs the rest of the stack, turning a panic into a SCIM 500.
pub async fn catch_panic(req: Request, next: Next) -> Response {
    let id = request_id(&req);
    guard(id, next.run(req)).await
}

/// The request's id, for the answer to a panic (the header's value: a copy costs no
/// allocation, and it is read only if there is a panic).
pub(crate) fn request_id(req: &Request) -> Option<HeaderValue> {
    req.headers().get(REQUEST_ID).cloned()
}

/// Runs `answer`, turning a panic into a SCIM 500 naming the request `id`.
pub(crate) async fn guard(id: Option<HeaderValue>, answer: impl Future<Output = Response>) -> Response {
    // Unwind safety: the request's state is dropped with it; shared state is behind locks
    // that recover from poisoning or atomics.
    match AssertUnwindSafe(answer).catch_unwind().await {
        Ok(response) => response,
        Err(payload) => {
            let id = id.as_ref().and_then(|v| v.to_str().ok());
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            tracing::error!(request_id = id.unwrap_or("-"), panic = %what, "a request handler panicked; answered 500");
            let detail = match id {
                Some(id) => format!("internal server error (request id {id})"),
                None => "internal server error".to_string(),
            };
            error_response(&ScimError::new(500, None, detail))
        }
    }
}

/// Installs a panic hook that logs every panic through `tracing` with a backtrace, inside
/// the span it happened in (so with its request id). For binaries; a library leaves the
/// process's hook to the application.
pub fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let backtrace = std::backtrace::Backtrace::force_capture();
        tracing::error!(panic = %info, %backtrace, "panic");
    }));
}
