//! The server's time limit on a request (`request_timeout`). A request cut off by it was
//! slow on this side (a lock held elsewhere, a database that stopped answering), not on
//! the client's, so the answer is a 503 with `Retry-After` (try again shortly), not a 408
//! (which says the client was too slow to send its request).

use crate::error::retry_later;
use axum::extract::Request;
use axum::http::Method;
use axum::response::Response;
use scimd_proto::ScimError;
use std::time::Duration;

/// Seconds a client is asked to wait before sending a cut-off request again.
const RETRY_AFTER_SECS: u64 = 1;

/// Whether the request only reads (its answer to a cut-off says nothing of changes).
pub(crate) fn reads(req: &Request) -> bool {
    matches!(*req.method(), Method::GET | Method::HEAD)
}

/// Runs `answer` within `limit`. The cut-off work is dropped: a read ends there; a write's
/// transaction is rolled back, unless its commit was already on its way to the database,
/// which is why a write's answer says to read before retrying.
pub(crate) async fn within(limit: Duration, reads: bool, answer: impl Future<Output = Response>) -> Response {
    match tokio::time::timeout(limit, answer).await {
        Ok(response) => response,
        Err(_) => cut_off(limit, reads),
    }
}

fn cut_off(limit: Duration, reads: bool) -> Response {
    let mut detail = format!("the request did not finish within the server's limit of {} s", limit.as_secs_f64());
    if !reads {
        detail.push_str(
            "; a change it made was rolled back unless its commit had already been sent: read the resource \
             before sending the request again",
        );
    }
    detail.push_str(&format!(". Retry in {RETRY_AFTER_SECS} s."));
    retry_later(&ScimError::new(503, None, detail), RETRY_AFTER_SECS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::http::header;
    use axum::middleware::Next;
    use axum::routing::get;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    /// The rule as a layer of its own (in the service, `envelope` composes it).
    async fn enforce(limit: axum::extract::State<Duration>, req: Request, next: Next) -> Response {
        let reads = reads(&req);
        within(*limit, reads, next.run(req)).await
    }

    async fn answer(method: Method, handler_takes: Duration) -> (u16, Option<String>, String) {
        let app = Router::new()
            .route(
                "/slow",
                get(move || async move {
                    tokio::time::sleep(handler_takes).await;
                    "done"
                })
                .post(move || async move {
                    tokio::time::sleep(handler_takes).await;
                    "done"
                }),
            )
            .layer(axum::middleware::from_fn_with_state(Duration::from_millis(50), enforce));
        let req = Request::builder().method(method).uri("/slow").body(Body::empty()).unwrap();
        let resp = app.oneshot(req).await.unwrap();
        let retry = resp.headers().get(header::RETRY_AFTER).map(|v| v.to_str().unwrap().to_string());
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, retry, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn a_request_past_the_limit_is_a_503_to_retry() {
        let (status, retry, body) = answer(Method::GET, Duration::from_secs(5)).await;
        assert_eq!((status, retry.as_deref()), (503, Some("1")), "{body}");
        let error: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(error["status"], "503");
        assert!(!body.contains("read the resource"), "a read changed nothing: {body}");

        let (status, _, body) = answer(Method::POST, Duration::from_secs(5)).await;
        assert_eq!(status, 503);
        assert!(body.contains("read the resource before sending the request again"), "{body}");
    }

    #[tokio::test]
    async fn a_request_within_the_limit_is_untouched() {
        let (status, retry, body) = answer(Method::GET, Duration::ZERO).await;
        assert_eq!((status, retry, body.as_str()), (200, None, "done"));
    }
}
