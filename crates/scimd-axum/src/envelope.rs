//! What every answer of a SCIM router passes through, as one layer, outermost first: the
//! request body watched (`unread`), the answer measured (`metrics`), a panic answered
//! (`panic`), a bare error status made a SCIM Error (below), the server's time limit
//! (`deadline`), and the configured public URL handed to the extractors (`extract`). Each rule lives in its own module; this one only composes them. One layer
//! rather than five because axum's `from_fn` clones the rest of the stack and boxes a future
//! for each layer on every request, which cost more than the rules themselves.

use crate::error::{SCIM_JSON, error_response, for_status};
use crate::extract::ConfiguredBase;
use crate::metrics::{AnsweredFor, Measuring, Metrics};
use crate::{deadline, panic, unread};
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use scimd_core::Kind;
use std::sync::Arc;
use std::time::Duration;

/// What the envelope needs: where answers are counted, the resource types served (to name
/// them in the counts), the time limit, and the public URL configured, if any.
pub(crate) struct Envelope {
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) kinds: Arc<[Kind]>,
    pub(crate) limit: Duration,
    pub(crate) base: ConfiguredBase,
}

/// Middleware: the rest of the stack inside the envelope.
pub(crate) async fn wrap(State(envelope): State<Arc<Envelope>>, req: Request, next: Next) -> Response {
    let (mut req, watch) = unread::watch(req);
    req.extensions_mut().insert(envelope.base.clone());
    let measuring = Measuring::start(&req, &envelope.kinds);
    let (id, reads, limit) = (panic::request_id(&req), deadline::reads(&req), envelope.limit);
    let answer =
        panic::guard(id, async move { scim_errors_only(deadline::within(limit, reads, next.run(req)).await) }).await;
    measuring.finish(&envelope.metrics, &answer);
    unread::mark(answer, watch)
}

/// Replaces any error response that is not already a SCIM Error (a 405 from routing, a
/// 413 from the body limit, …) with one.
fn scim_errors_only(resp: Response) -> Response {
    let status = resp.status();
    let is_scim =
        resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(SCIM_JSON.as_bytes()));
    if !(status.is_client_error() || status.is_server_error()) || is_scim {
        return resp;
    }
    let allow = resp.headers().get(header::ALLOW).cloned();
    let mut out = error_response(&for_status(status));
    if let Some(allow) = allow {
        out.headers_mut().insert(header::ALLOW, allow);
    }
    if let Some(tenant) = resp.extensions().get::<AnsweredFor>().cloned() {
        out.extensions_mut().insert(tenant);
    }
    out
}
