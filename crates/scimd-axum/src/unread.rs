//! Answers given before the request's body was read to its end.
//!
//! HTTP/1.1 finds where the next request on a connection starts by reading the previous
//! one's body. An answer given without reading it (a 401 before the body arrives, a 404 or
//! 405 from routing, a 413, a 415) leaves the server unable to reuse the connection: it
//! closes it after the answer. A client not told so sends its next request into a closing
//! connection and meets a reset for a request the server never saw. This layer watches
//! each request body and, when the answer leaves it unread, says `Connection: close`.
//!
//! One layer for every route, whatever answered: the rule lives here and nowhere else.

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

/// Middleware: runs the rest of the stack with the request body watched, and marks an
/// answer that left it unread `Connection: close`. Requests without a body pass untouched;
/// a body already watched by an outer use of this layer is not watched twice.
pub async fn close_if_body_unread(req: Request, next: Next) -> Response {
    let (req, watch) = watch(req);
    let resp = next.run(req).await;
    mark(resp, watch)
}

/// Whether a watched request body was read to its end.
pub(crate) struct Watch(Arc<AtomicBool>);

/// The request with its body watched, if it has one not watched already.
pub(crate) fn watch(req: Request) -> (Request, Option<Watch>) {
    if !has_body(req.headers()) || req.extensions().get::<Watched>().is_some() {
        return (req, None);
    }
    let read = Arc::new(AtomicBool::new(false));
    let (mut parts, body) = req.into_parts();
    parts.extensions.insert(Watched);
    let body = Body::new(WatchedBody { inner: body, read: read.clone() });
    (Request::from_parts(parts, body), Some(Watch(read)))
}

/// The answer, said to close the connection if it left the watched body unread.
pub(crate) fn mark(mut resp: Response, watch: Option<Watch>) -> Response {
    if watch.is_some_and(|Watch(read)| !read.load(Ordering::Acquire)) {
        resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// Whether the request announces a body: chunked, or a non-zero length.
fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().parse::<u64>() != Ok(0))
}

/// Marks a request whose body is already watched.
#[derive(Clone, Copy)]
struct Watched;

/// A request body that records reaching its end.
struct WatchedBody {
    inner: Body,
    read: Arc<AtomicBool>,
}

impl HttpBody for WatchedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        // A reader may stop at the last frame without polling for the end; the body says
        // it has ended then too.
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.read.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::post;
    use tower::ServiceExt;

    fn app() -> Router {
        Router::new()
            .route("/read", post(|body: Bytes| async move { format!("{} bytes", body.len()) }))
            .route("/ignore", post(|| async { "not read" }))
            .layer(axum::middleware::from_fn(close_if_body_unread))
    }

    /// The `Connection` header of the answer to a POST of `body` to `path`.
    async fn connection(app: &Router, path: &str, body: &'static str) -> Option<HeaderValue> {
        let mut req = Request::post(path).body(Body::from(body)).unwrap();
        req.headers_mut().insert(header::CONTENT_LENGTH, body.len().into());
        app.clone().oneshot(req).await.unwrap().headers().get(header::CONNECTION).cloned()
    }

    #[tokio::test]
    async fn a_read_body_keeps_the_connection_and_an_unread_one_closes_it() {
        let app = app();
        assert_eq!(connection(&app, "/read", "{}").await, None, "read to its end");
        assert_eq!(connection(&app, "/ignore", "{}").await.unwrap(), "close", "the handler ignored it");
        assert_eq!(connection(&app, "/nowhere", "{}").await.unwrap(), "close", "no route");
        assert_eq!(connection(&app, "/ignore", "").await, None, "no body to read");
    }

    #[tokio::test]
    async fn nested_uses_agree() {
        let outer = Router::new().nest("/in", app()).layer(axum::middleware::from_fn(close_if_body_unread));
        assert_eq!(connection(&outer, "/in/ignore", "{}").await.unwrap(), "close");
        assert_eq!(connection(&outer, "/in/read", "{}").await, None);
    }
}
