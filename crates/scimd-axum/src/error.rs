//! Every failure as a SCIM Error response (RFC 7644 §3.12): `application/scim+json`,
//! `status` as a string, `scimType` where one applies.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use scimd_core::{EngineError, Outage};
use scimd_proto::ScimError;
use std::time::Duration;

pub const SCIM_JSON: &str = "application/scim+json";

/// An HTTP-layer failure.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Scim(#[from] ScimError),
    /// The store cannot serve now: logged with its cause, answered 503 (507 when storage
    /// is full) with `Retry-After`.
    #[error("{0}: {1}")]
    Unavailable(Outage, String),
    /// An internal failure: logged with its cause, answered with a generic 500.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Scim(s) => ApiError::Scim(s),
            EngineError::Unavailable(outage, why) => ApiError::Unavailable(outage, why),
            EngineError::Internal(why) => ApiError::Internal(why),
        }
    }
}

pub fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    json_text_response(status, serde_json::to_vec(body).unwrap_or_default())
}

/// A response whose JSON body is text rendered already.
pub fn json_text_response(status: StatusCode, text: impl Into<axum::body::Body>) -> Response {
    let mut resp = (status, text.into()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    resp
}

/// A response whose JSON body is written as the engine produces it. Its status is sent
/// first: should the answer fail or outlast `deadline` halfway, the connection is closed
/// without the rest, and the client sees an incomplete answer, never a wrong one.
pub fn streamed_response(status: StatusCode, body: scimd_core::answer::Streamed, deadline: Duration) -> Response {
    let until = tokio::time::Instant::now() + deadline;
    let chunks = futures_util::stream::unfold(Some(body), move |state| async move {
        let mut body = state?;
        let failed = match tokio::time::timeout_at(until, body.next_chunk()).await {
            Ok(Ok(Some(bytes))) => return Some((Ok(axum::body::Bytes::from(bytes)), Some(body))),
            Ok(Ok(None)) => return None,
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("not complete within {deadline:?}"),
        };
        tracing::error!(error = %failed, "a streamed answer failed; closing the connection");
        Some((Err(std::io::Error::other(failed)), None))
    });
    let mut resp = (status, axum::body::Body::from_stream(chunks)).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    resp
}

/// The response for a protocol error.
pub fn error_response(e: &ScimError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_value(e.to_body()).unwrap_or_default();
    let mut resp = json_response(status, &body);
    resp.extensions_mut()
        .insert(crate::metrics::ErrorInfo { scim_type: e.scim_type.map(|t| t.as_str()), detail: e.detail.clone() });
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"scimd\""));
    }
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Scim(e) => error_response(&e),
            ApiError::Unavailable(outage, why) => {
                tracing::warn!(%outage, cause = %why, "answered as unavailable");
                unavailable_response(outage)
            }
            ApiError::Internal(why) => {
                tracing::error!(error = %why, "internal error");
                error_response(&ScimError::new(500, None, "internal server error"))
            }
        }
    }
}

/// 503, or 507 when storage is full, with `Retry-After` (see `Outage::answer`).
pub fn unavailable_response(outage: Outage) -> Response {
    let (status, detail) = outage.answer();
    retry_later(&ScimError::new(status, None, detail), outage.retry_after())
}

/// The answer to a request to be sent again in `secs` seconds: the error, with `Retry-After`.
pub(crate) fn retry_later(e: &ScimError, secs: u64) -> Response {
    let mut resp = error_response(e);
    resp.headers_mut().insert(header::RETRY_AFTER, secs.into());
    resp
}

/// A SCIM error for a bare status produced by a layer (timeout, body limit, …).
pub fn for_status(status: StatusCode) -> ScimError {
    let detail = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is larger than this server accepts",
        StatusCode::REQUEST_TIMEOUT => "the request took too long",
        StatusCode::METHOD_NOT_ALLOWED => "this endpoint does not support that method",
        StatusCode::NOT_FOUND => "no such endpoint",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "send application/scim+json or application/json",
        StatusCode::TOO_MANY_REQUESTS => "too many requests",
        _ => status.canonical_reason().unwrap_or("error"),
    };
    ScimError::new(status.as_u16(), None, detail)
}
