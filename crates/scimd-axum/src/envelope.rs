//! What every answer of a SCIM router passes through, as one layer, outermost first: the
//! request body watched (`unread`), the answer measured (`metrics`), a panic answered
//! (`panic`), a bare error status made a SCIM Error (below), the server's time limit
//! (`deadline`), the configured public URL handed to the extractors (`extract`), the
//! caller authenticated and rate-limited (the crate's `admit`), and the request recorded in
//! the activity log (`activity`). Each rule lives in its own module; this one only composes
//! them. One layer rather than eight because axum's `from_fn` clones the rest of the stack
//! and boxes a future for each layer on every request, which cost more than the rules
//! themselves.

use crate::error::{SCIM_JSON, error_response, for_status};
use crate::extract::ConfiguredBase;
use crate::metrics::{AnsweredFor, Measuring, Metrics};
use crate::{activity, deadline, panic, unread};
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
    /// Who may call, and the activity log; none in this module's tests.
    pub(crate) gate: Option<Gate>,
}

/// The service whose authenticator and rate limits admit a caller, and how requests are
/// recorded.
pub(crate) struct Gate {
    pub(crate) service: Arc<crate::Inner>,
    pub(crate) recording: activity::Recording,
}

/// Middleware: the rest of the stack inside the envelope.
pub(crate) async fn wrap(State(envelope): State<Arc<Envelope>>, req: Request, next: Next) -> Response {
    let (mut req, watch) = unread::watch(req);
    req.extensions_mut().insert(envelope.base.clone());
    let measuring = Measuring::start(&req, &envelope.kinds);
    let (id, reads, limit) = (panic::request_id(&req), deadline::reads(&req), envelope.limit);
    let gate = envelope.gate.as_ref();
    // Boxed: the future holds the whole request's state, kilobytes that each of the steps
    // below would otherwise copy as it takes the future in.
    let inside = Box::pin(async move {
        match gate {
            Some(g) => {
                crate::admit(&g.service, req, |req| activity::record(&g.recording, req, |req| next.run(req))).await
            }
            None => next.run(req).await,
        }
    });
    let answer = panic::guard(id, async move { scim_errors_only(deadline::within(limit, reads, inside).await) }).await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::{Body, Bytes};
    use axum::http::{HeaderValue, Method, StatusCode};
    use axum::routing::{get, post};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn app(metrics: Arc<Metrics>) -> Router {
        let envelope = Envelope {
            metrics,
            kinds: Arc::from(Vec::new()),
            limit: Duration::from_millis(100),
            base: ConfiguredBase(None),
            gate: None,
        };
        Router::new()
            .route("/read", post(|body: Bytes| async move { format!("{} bytes", body.len()) }))
            .route("/ignore", post(|| async { StatusCode::UNAUTHORIZED }))
            .route("/panic", get(|| async { if true { panic!("a bug") } else { "unreachable" } }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "late"
                }),
            )
            .layer(axum::middleware::from_fn_with_state(Arc::new(envelope), wrap))
    }

    async fn send(app: &Router, method: Method, path: &str, body: &'static str) -> (Response, serde_json::Value) {
        let mut req = Request::builder().method(method).uri(path).body(Body::from(body)).unwrap();
        req.headers_mut().insert(header::CONTENT_LENGTH, body.len().into());
        req.headers_mut().insert(panic::REQUEST_ID, HeaderValue::from_static("req-7"));
        let (parts, body) = app.clone().oneshot(req).await.unwrap().into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (Response::from_parts(parts, Body::empty()), json)
    }

    /// Every rule the envelope composes, through one layer: each answer as its own module
    /// would give it, and each one counted.
    #[tokio::test]
    async fn each_rule_holds_inside_the_one_layer() {
        let metrics = Arc::new(Metrics::default());
        let app = app(metrics.clone());

        let (read, _) = send(&app, Method::POST, "/read", "{}").await;
        assert_eq!((read.status(), read.headers().get(header::CONNECTION)), (StatusCode::OK, None));

        // A bare 401 without reading the body: a SCIM Error, and the connection closes.
        let (ignored, error) = send(&app, Method::POST, "/ignore", "{}").await;
        assert_eq!(ignored.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(ignored.headers()[header::CONNECTION], "close");
        assert_eq!(ignored.headers()[header::CONTENT_TYPE], SCIM_JSON);
        assert_eq!(error["status"], "401");

        // Routing's 405 becomes a SCIM Error that keeps its Allow header.
        let (wrong, error) = send(&app, Method::DELETE, "/read", "").await;
        assert_eq!(wrong.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(wrong.headers()[header::ALLOW], "POST");
        assert_eq!(error["status"], "405");

        let (panicked, error) = send(&app, Method::GET, "/panic", "").await;
        assert_eq!(panicked.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(error["detail"], "internal server error (request id req-7)");

        let (late, error) = send(&app, Method::GET, "/slow", "").await;
        assert_eq!(late.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(late.headers()[header::RETRY_AFTER], "1");
        assert_eq!(error["status"], "503");

        let mut text = String::new();
        metrics.render(&mut text);
        for (class, n) in [("2xx", 1), ("4xx", 1)] {
            let series = format!(
                "scimd_requests_total{{tenant=\"\",resource=\"other\",method=\"POST\",status=\"{class}\"}} {n}\n"
            );
            assert!(text.contains(&series), "{series} in:\n{text}");
        }
        assert!(
            text.contains("scimd_requests_total{tenant=\"\",resource=\"other\",method=\"GET\",status=\"5xx\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("scimd_scim_errors_total{status=\"405\",scim_type=\"\"} 1\n"), "{text}");
    }
}
