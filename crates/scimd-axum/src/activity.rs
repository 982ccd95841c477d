//! Recording each authenticated SCIM request in the activity log, without making it wait:
//! the request hands its record to a bounded queue, and one task writes the queue in
//! batches, a few times a second. When the database falls behind and the queue is full,
//! records are dropped (and counted), never the requests.

use crate::auth::Principal;
use crate::metrics::{ErrorInfo, Metrics};
use axum::extract::{OriginalUri, Request};
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use scimd_core::Kind;
use scimd_core::activity::{Activity, ActivityLog, client_of, redact};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Records waiting to be written, at most.
const QUEUE: usize = 20_000;
/// Records written in one transaction, at most.
const BATCH: usize = 2_000;
/// How long the writer lets records gather before a write. Each commit costs about the
/// same whatever it carries (the pages it touched go to the log file whole), so fewer,
/// larger commits are what keeps the log cheap; records appear this much later.
const LINGER: Duration = Duration::from_millis(200);
/// How often the writer looks at the queue while a batch gathers.
const GATHER_STEP: Duration = Duration::from_millis(10);
/// The most of a failed request's body the log keeps, in bytes.
const MAX_BODY: usize = 8 * 1024;

/// The recorder of one process: the queue, and its writer task.
pub struct ActivityRecorder {
    queue: mpsc::Sender<Activity>,
    /// Where dropped records are counted (`scimd_activity_dropped_total`).
    metrics: Arc<Metrics>,
}

impl ActivityRecorder {
    /// Starts the writer, on the current Tokio runtime.
    pub fn spawn(log: Arc<dyn ActivityLog>, metrics: Arc<Metrics>) -> Arc<ActivityRecorder> {
        let (queue, mut rx) = mpsc::channel::<Activity>(QUEUE);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                // Until the batch is full or has waited long enough: under load a full
                // batch goes at once, so the writer keeps up with any rate it can insert.
                // It looks at the queue now and then rather than waking for each record.
                let deadline = tokio::time::Instant::now() + LINGER;
                while rx.len() < BATCH - batch.len() && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(GATHER_STEP).await;
                }
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(a) => batch.push(a),
                        Err(_) => break,
                    }
                }
                if let Err(e) = log.record_activity(&batch).await {
                    tracing::warn!(error = %e, records = batch.len(), "could not write the activity log");
                }
                batch.clear();
            }
        });
        Arc::new(ActivityRecorder { queue, metrics })
    }

    fn push(&self, a: Activity) {
        if self.queue.try_send(a).is_err() {
            self.metrics.activity_dropped();
        }
    }
}

/// The resource a request touched: from its path below the SCIM root (the metrics' own
/// reading of it), or for a creation from its `Location`.
fn touched(path: &str, resp: &Response, kinds: &[Kind]) -> (Option<String>, Option<String>) {
    let Some(kind) = crate::metrics::served(path, kinds) else {
        return (None, None);
    };
    let id = match path.trim_start_matches('/').split('/').nth(1).filter(|p| !p.is_empty() && *p != ".search") {
        Some(id) => Some(id.to_string()),
        None => resp
            .headers()
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| l.rsplit('/').next())
            .map(str::to_string),
    };
    (Some(kind.name().to_string()), id)
}

/// What `record` works with: the recorder (none: the log is off), the largest body it keeps,
/// and the resource types served (what it names a request's resource by).
pub(crate) type Recording = (Option<Arc<ActivityRecorder>>, usize, Arc<[Kind]>);

/// Runs `inner` on the request, recording both in the activity log. Runs inside
/// authentication: the request's tenant is known. Without a recorder, it only passes the
/// request on.
pub(crate) async fn record<F, Fut>((recorder, max_body, kinds): &Recording, req: Request, inner: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let started = Instant::now();
    let (Some(recorder), Some(tenant)) = (recorder, req.extensions().get::<Principal>().map(|p| p.tenant.clone()))
    else {
        return inner(req).await;
    };
    let headers = req.headers();
    let user_agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_string);
    let request_id = headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
    let method = req.method().clone();
    let uri = req.extensions().get::<OriginalUri>().map(|u| u.0.clone()).unwrap_or_else(|| req.uri().clone());
    let path = uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
    let below_root = req.uri().path().to_string();
    // A body is kept only if the request fails; it is read here (as the handler would)
    // and handed on.
    let (req, body) = if matches!(method, Method::POST | Method::PUT | Method::PATCH) {
        let (parts, body) = req.into_parts();
        match axum::body::to_bytes(body, *max_body).await {
            Ok(bytes) => (Request::from_parts(parts, axum::body::Body::from(bytes.clone())), Some(bytes)),
            Err(e) => {
                let e = e.into_inner();
                let err = if e.is::<http_body_util::LengthLimitError>() {
                    crate::error::for_status(axum::http::StatusCode::PAYLOAD_TOO_LARGE)
                } else {
                    scimd_proto::ScimError::invalid_syntax(format!("could not read the request body: {e}"))
                };
                return crate::error::error_response(&err).into_response();
            }
        }
    } else {
        (req, None)
    };
    let resp = inner(req).await;
    let status = resp.status().as_u16();
    let error = resp.extensions().get::<ErrorInfo>();
    let (resource_type, resource_id) = touched(&below_root, &resp, kinds);
    recorder.push(Activity {
        tenant,
        time: scimd_proto::value::now(),
        method: method.as_str().to_string(),
        path,
        status,
        scim_type: error.and_then(|e| e.scim_type).map(str::to_string),
        detail: error.map(|e| e.detail.clone()).filter(|_| status >= 400),
        latency_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        resource_type,
        resource_id,
        client: user_agent.as_deref().and_then(client_of).map(str::to_string),
        user_agent,
        request_id,
        request_body: body.filter(|_| status >= 400).map(|b| redact(&b, MAX_BODY)),
    });
    resp
}
