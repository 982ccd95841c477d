//! Failures as the console shows them: a page that says what went wrong, with the status
//! that fits. Internal causes are logged, never shown.

use crate::page;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use scimd_admin::ops::OpError;
use scimd_core::EngineError;
use scimd_core::StoreError;
use scimd_events::manage::StreamError;

#[derive(Debug)]
pub(crate) struct ConsoleError {
    pub status: StatusCode,
    pub message: String,
}

pub(crate) type Result<T> = std::result::Result<T, ConsoleError>;

impl ConsoleError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ConsoleError {
        ConsoleError { status, message: message.into() }
    }

    pub fn not_found(what: impl std::fmt::Display) -> ConsoleError {
        ConsoleError::new(StatusCode::NOT_FOUND, format!("{what} not found"))
    }

    fn internal(cause: impl std::fmt::Display) -> ConsoleError {
        tracing::error!(error = %cause, "console: internal error");
        ConsoleError::new(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong on the server; it is in its log.")
    }

    fn unavailable(cause: impl std::fmt::Display) -> ConsoleError {
        tracing::warn!(cause = %cause, "console: database unavailable");
        ConsoleError::new(StatusCode::SERVICE_UNAVAILABLE, "The database is not answering; try again shortly.")
    }
}

impl From<StoreError> for ConsoleError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(outage, why) => ConsoleError::unavailable(format!("{outage}: {why}")),
            StoreError::NotFound => ConsoleError::not_found("resource"),
            other => ConsoleError::internal(other),
        }
    }
}

impl From<OpError> for ConsoleError {
    fn from(e: OpError) -> Self {
        match e {
            OpError::Invalid(_, why) => ConsoleError::new(StatusCode::BAD_REQUEST, why),
            OpError::NotFound(what) => ConsoleError::not_found(what),
            e @ OpError::SlugTaken(_) => ConsoleError::new(StatusCode::CONFLICT, e.to_string()),
            OpError::Store(e) => e.into(),
        }
    }
}

impl From<StreamError> for ConsoleError {
    fn from(e: StreamError) -> Self {
        match e {
            StreamError::Store(e) => e.into(),
            StreamError::NotFound(what) => ConsoleError::not_found(what),
            StreamError::Invalid(_, why) => ConsoleError::new(StatusCode::BAD_REQUEST, why),
        }
    }
}

impl From<EngineError> for ConsoleError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Scim(e) => {
                ConsoleError::new(StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST), e.detail)
            }
            EngineError::Unavailable(outage, why) => ConsoleError::unavailable(format!("{outage}: {why}")),
            EngineError::Internal(why) => ConsoleError::internal(why),
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        (self.status, page::bare(title, page::problem(&self.message))).into_response()
    }
}
