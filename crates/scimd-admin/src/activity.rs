//! A tenant's provisioning activity in the admin API: what its identity provider sent and
//! what it was answered, newest first, with filters.

use crate::{AdminError, Inner, Result};
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use scimd_core::activity::{ActivityQuery, StatusFilter};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

type St = State<Arc<Inner>>;

pub(crate) fn routes() -> Router<Arc<Inner>> {
    Router::new().route("/tenants/{slug}/activity", get(activity))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Filters {
    /// `2xx`, `3xx`, `4xx`, `5xx`, or `failed` (4xx and 5xx).
    status: Option<String>,
    resource_id: Option<String>,
    since: Option<String>,
    until: Option<String>,
    /// The `next` of the previous page.
    before: Option<i64>,
    limit: Option<u32>,
}

fn invalid(msg: impl Into<String>) -> AdminError {
    AdminError::new(StatusCode::BAD_REQUEST, "invalid_request", msg)
}

/// A time filter: RFC 3339, compared as the log stores times (UTC, microseconds).
fn time_filter(name: &str, v: Option<String>) -> Result<Option<String>> {
    v.map(|t| {
        time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339)
            .map(scimd_proto::value::format_datetime)
            .map_err(|_| invalid(format!("{name} is a time such as 2026-11-30T09:00:00Z")))
    })
    .transpose()
}

async fn activity(
    State(inner): St,
    Path(slug): Path<String>,
    q: std::result::Result<Query<Filters>, QueryRejection>,
) -> Result<Response> {
    let log = inner
        .activity
        .as_ref()
        .ok_or_else(|| AdminError::new(StatusCode::NOT_FOUND, "not_found", "the activity log is not served here"))?;
    inner.dir.tenant(&slug).await?;
    let Ok(Query(f)) = q else {
        return Err(invalid("filters: status (2xx, 4xx, 5xx, failed), resource_id, since, until, before, limit"));
    };
    let status = match f.status.as_deref() {
        None => None,
        Some(text) => Some(
            StatusFilter::parse(text)
                .ok_or_else(|| invalid(format!("status is 2xx, 3xx, 4xx, 5xx or failed, not '{text}'")))?,
        ),
    };
    let limit = f.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(invalid("limit is from 1 to 1000"));
    }
    let query = ActivityQuery {
        status,
        resource_id: f.resource_id,
        since: time_filter("since", f.since)?,
        until: time_filter("until", f.until)?,
        before: f.before,
        limit,
    };
    let records = log.activity(&slug, &query).await.map_err(crate::ops::OpError::Store)?;
    let next = (records.len() == limit as usize).then(|| records.last().map(|(id, _)| *id)).flatten();
    let items: Vec<Value> = records
        .into_iter()
        .map(|(id, a)| {
            let mut v = serde_json::to_value(&a).unwrap_or_default();
            v["id"] = json!(id);
            v
        })
        .collect();
    Ok(axum::Json(json!({"activity": items, "next": next})).into_response())
}
