//! A tenant's change events in the admin API: the JSON feed, and its event streams (create,
//! read, pause, resume, replay, rotate the secret, delete).

use crate::{AdminError, Inner, JsonBody, Result, created};
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use scimd_events::feed;
use scimd_events::manage::{Start, StreamError, StreamRequest, Streams};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

type St = State<Arc<Inner>>;

impl From<StreamError> for AdminError {
    fn from(e: StreamError) -> Self {
        match e {
            StreamError::Invalid(code, msg) => AdminError::new(StatusCode::BAD_REQUEST, code, msg),
            StreamError::NotFound(what) => {
                AdminError::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
            }
            StreamError::Store(e) => crate::ops::OpError::Store(e).into(),
        }
    }
}

/// The routes, under `/tenants/{slug}`.
pub(crate) fn routes() -> Router<Arc<Inner>> {
    Router::new()
        .route("/tenants/{slug}/events", get(events))
        .route("/tenants/{slug}/streams", get(list).post(create))
        .route("/tenants/{slug}/streams/{id}", get(one).delete(delete))
        .route("/tenants/{slug}/streams/{id}/pause", post(pause))
        .route("/tenants/{slug}/streams/{id}/resume", post(resume))
        .route("/tenants/{slug}/streams/{id}/replay", post(replay))
        .route("/tenants/{slug}/streams/{id}/rotate-secret", post(rotate))
}

fn streams(inner: &Inner) -> Result<&Streams> {
    inner
        .events
        .as_ref()
        .ok_or_else(|| AdminError::new(StatusCode::NOT_FOUND, "not_found", "events are not served here"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedQuery {
    #[serde(default)]
    after: i64,
    limit: Option<u32>,
}

/// `GET /tenants/{slug}/events?after=N&limit=M`: events after a cursor, oldest first.
async fn events(
    State(inner): St,
    Path(slug): Path<String>,
    q: std::result::Result<Query<FeedQuery>, QueryRejection>,
) -> Result<Response> {
    let s = streams(&inner)?;
    inner.dir.tenant(&slug).await?;
    let Ok(Query(q)) = q else {
        return Err(AdminError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "after is a sequence number (0 or more) and limit a number from 1 to 1000",
        ));
    };
    if q.after < 0 || q.limit.is_some_and(|l| l == 0 || l > feed::MAX_PAGE) {
        return Err(AdminError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("after is 0 or more and limit from 1 to {}", feed::MAX_PAGE),
        ));
    }
    let page = feed::page(s.log.as_ref(), &slug, q.after, q.limit.unwrap_or(100)).await.map_err(StreamError::from)?;
    Ok(axum::Json(page).into_response())
}

async fn create(
    State(inner): St,
    Path(slug): Path<String>,
    JsonBody(req): JsonBody<StreamRequest>,
) -> Result<Response> {
    let s = streams(&inner)?;
    let c = s.create(&slug, req).await?;
    Ok(created(s.created_view(&c).await?))
}

async fn list(State(inner): St, Path(slug): Path<String>) -> Result<Response> {
    let s = streams(&inner)?;
    let mut all = Vec::new();
    for stream in s.list(&slug).await? {
        all.push(s.view(&stream).await?);
    }
    Ok(axum::Json(json!({ "streams": all })).into_response())
}

async fn one(State(inner): St, Path((slug, id)): Path<(String, String)>) -> Result<Response> {
    let s = streams(&inner)?;
    let stream = s.get(&slug, &id).await?;
    Ok(axum::Json(s.view(&stream).await?).into_response())
}

async fn delete(State(inner): St, Path((slug, id)): Path<(String, String)>) -> Result<Response> {
    streams(&inner)?.delete(&slug, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn pause(State(inner): St, Path((slug, id)): Path<(String, String)>) -> Result<Response> {
    let s = streams(&inner)?;
    let stream = s.pause(&slug, &id).await?;
    Ok(axum::Json(s.view(&stream).await?).into_response())
}

async fn resume(State(inner): St, Path((slug, id)): Path<(String, String)>) -> Result<Response> {
    let s = streams(&inner)?;
    let stream = s.resume(&slug, &id).await?;
    Ok(axum::Json(s.view(&stream).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Replay {
    from: Start,
}

async fn replay(
    State(inner): St,
    Path((slug, id)): Path<(String, String)>,
    JsonBody(req): JsonBody<Replay>,
) -> Result<Response> {
    let s = streams(&inner)?;
    let stream = s.replay(&slug, &id, req.from).await?;
    Ok(axum::Json(s.view(&stream).await?).into_response())
}

async fn rotate(State(inner): St, Path((slug, id)): Path<(String, String)>) -> Result<Response> {
    let secret = streams(&inner)?.rotate_secret(&slug, &id).await?;
    Ok(axum::Json(json!({ "secret": Value::String(secret) })).into_response())
}
