//! The HTTP endpoints receivers call: a poll stream's endpoint (RFC 8936), opened by the
//! stream's own bearer token, and the JWK Set that verifies ES256 SETs.

use crate::keys::KeyRing;
use crate::poll::{LONG_POLL, PollRequest, Poller};
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use scimd_core::tokens::{bearer_token, hash_secret, hashes_match};
use serde_json::json;
use std::sync::Arc;

/// Largest poll request body: acknowledgements of `MAX_EVENTS` SETs fit easily.
const MAX_BODY: usize = 256 * 1024;

struct Endpoints {
    poller: Poller,
    keys: Arc<KeyRing>,
}

/// `POST /events/streams/{id}/poll` and `GET /events/jwks.json`, to be merged at the root.
pub fn router(poller: Poller, keys: Arc<KeyRing>) -> Router {
    Router::new()
        .route("/events/streams/{id}/poll", post(poll))
        .route("/events/jwks.json", get(jwks))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(Arc::new(Endpoints { poller, keys }))
}

/// An error as RFC 8935 §2.3 shapes them (`err`, `description`).
fn error(status: StatusCode, err: &str, description: &str) -> Response {
    let mut resp = (status, axum::Json(json!({"err": err, "description": description}))).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"scimd-events\""));
    }
    resp
}

fn unavailable(e: &scimd_core::StoreError) -> Response {
    tracing::warn!(error = %e, "event poll: database error");
    let mut resp = error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the event log is unavailable; retry shortly");
    resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    resp
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    bearer_token(headers.get(header::AUTHORIZATION)?.to_str().ok()?)
}

async fn poll(
    State(ep): State<Arc<Endpoints>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let unauthorized = || error(StatusCode::UNAUTHORIZED, "authentication_failed", "missing or invalid poll token");
    let Some(token) = bearer(&headers) else { return unauthorized() };
    let hash = hash_secret(token);
    let stream = match ep.poller.streams.poll_stream(&id, &hash).await {
        Ok(Some((stream, stored))) if hashes_match(&stored, &hash) => stream,
        Ok(_) => return unauthorized(),
        Err(e) => return unavailable(&e),
    };
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return error(e.status(), "invalid_request", &format!("poll requests are at most {MAX_BODY} bytes"));
        }
        Err(e) => return error(e.status(), "invalid_request", &e.body_text()),
    };
    // An empty body is a poll with every default (RFC 8936 §2.4).
    let req = if body.iter().all(u8::is_ascii_whitespace) {
        PollRequest::default()
    } else {
        match serde_json::from_slice::<PollRequest>(&body) {
            Ok(r) => r,
            Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_request", &format!("invalid poll request: {e}")),
        }
    };
    match ep.poller.poll(&stream, req, LONG_POLL).await {
        Ok(answer) => {
            let mut resp = axum::Json(answer).into_response();
            resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => unavailable(&e),
    }
}

async fn jwks(State(ep): State<Arc<Endpoints>>) -> Response {
    match ep.keys.jwks().await {
        Ok(set) => {
            let mut resp = ([(header::CONTENT_TYPE, "application/jwk-set+json")], set.to_string()).into_response();
            // Keys change rarely; a receiver may keep them a few minutes.
            resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
            resp
        }
        Err(e) => unavailable(&e),
    }
}
