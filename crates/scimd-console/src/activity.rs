//! A tenant's provisioning activity: each SCIM request and its answer, newest first, failed
//! ones alone on request, each with what was sent (credentials removed) and what was
//! answered.

use crate::error::{ConsoleError, Result};
use crate::page::{self, when};
use crate::session::Operator;
use crate::tenants::{tabs, tenant_path};
use crate::{Inner, St};
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use maud::html;
use scimd_core::activity::{Activity, ActivityQuery, StatusFilter};
use serde::Deserialize;
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<Inner>> {
    Router::new().route("/admin/tenants/{slug}/activity", get(activity))
}

const PER_PAGE: u32 = 50;

#[derive(Deserialize, Default)]
pub(crate) struct Filters {
    /// `failed`, `2xx`, `4xx`, `5xx`, or all.
    status: Option<String>,
    resource_id: Option<String>,
    before: Option<i64>,
}

fn resource_link(slug: &str, a: &Activity) -> maud::Markup {
    let (Some(kind), Some(id)) = (a.resource_type.as_deref(), a.resource_id.as_deref()) else { return html! {} };
    let endpoint = if kind == "Group" { "groups" } else { "users" };
    html! { a href={ (tenant_path(slug)) "/" (endpoint) "/" (id) } { (kind) " " code { (id.get(..8).unwrap_or(id)) "…" } } }
}

async fn activity(
    axum::extract::State(inner): St,
    Extension(op): Extension<Operator>,
    Path(slug): Path<String>,
    Query(f): Query<Filters>,
) -> Result<Response> {
    let p = &inner.parts;
    let t = p.dir.tenant(&slug).await?;
    let status = f.status.as_deref().filter(|s| !s.is_empty());
    let status_filter = match status {
        None => None,
        Some(text) => Some(StatusFilter::parse(text).ok_or_else(|| {
            ConsoleError::new(StatusCode::BAD_REQUEST, "Show all requests, failed ones, or a status class.")
        })?),
    };
    let resource_id = f.resource_id.as_deref().map(str::trim).filter(|r| !r.is_empty());
    let query = ActivityQuery {
        status: status_filter,
        resource_id: resource_id.map(str::to_string),
        before: f.before,
        limit: PER_PAGE,
        ..Default::default()
    };
    let records = p.activity.activity(&slug, &query).await?;
    let older = (records.len() == PER_PAGE as usize).then(|| records.last().map(|(id, _)| *id)).flatten();
    let here = format!("{}/activity", tenant_path(&slug));
    let older_link = older.map(|id| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        if let Some(st) = status {
            s.append_pair("status", st);
        }
        if let Some(r) = resource_id {
            s.append_pair("resource_id", r);
        }
        s.append_pair("before", &id.to_string());
        format!("{here}?{}", s.finish())
    });
    let options =
        [("", "all requests"), ("failed", "failed (4xx and 5xx)"), ("2xx", "2xx"), ("4xx", "4xx"), ("5xx", "5xx")];
    let content = html! {
        p.crumbs { a href="/admin/tenants" { "Tenants" } " / " a href=(tenant_path(&slug)) { (t.slug) } " / Activity" }
        h1 { (t.name) ": activity" }
        (tabs(&slug, "Activity"))
        @if !p.recording {
            p.notice { "Requests are not being recorded: set " code { "activity_log = true" } " (or SCIMD_ACTIVITY_LOG=true) to record them." }
        }
        form.row method="get" action=(here) {
            label { "Show"
                select name="status" {
                    @for (value, label) in options {
                        option value=(value) selected[status.unwrap_or("") == value] { (label) }
                    }
                }
            }
            label { "Resource id" input name="resource_id" value=(resource_id.unwrap_or("")); }
            button.primary type="submit" { "Filter" }
        }
        @if records.is_empty() { p.muted { "No requests recorded match." } }
        ol.activity {
            @for (id, a) in &records {
                li id={ "r" (id) } {
                    details {
                        summary {
                            (when(Some(&a.time))) " "
                            strong { (a.method) } " " code.path { (a.path) } " "
                            (page::status(a.status))
                            @if let Some(st) = &a.scim_type { " " span.badge.warn { (st) } }
                            " " span.muted { (format!("{:.1} ms", a.latency_us as f64 / 1000.0)) }
                            @if let Some(c) = &a.client { " " span.muted { (c) } }
                        }
                        dl.facts {
                            @if let Some(d) = &a.detail { dt { "Answer" } dd.error-text { (a.status) " " (d) } }
                            @else { dt { "Answer" } dd { (a.status) } }
                            @if a.resource_id.is_some() { dt { "Resource" } dd { (resource_link(&slug, a)) } }
                            dt { "Request id" } dd { code { (a.request_id.as_deref().unwrap_or("—")) } }
                            dt { "User-Agent" } dd { (a.user_agent.as_deref().unwrap_or("—")) }
                        }
                        @if let Some(body) = &a.request_body {
                            h3 { "Request body" }
                            @match serde_json::from_str::<serde_json::Value>(body) {
                                Ok(v) => (page::json(&v)),
                                Err(_) => pre.json { (body) },
                            }
                        }
                    }
                }
            }
        }
        @if let Some(link) = older_link { nav.pages { a href=(link) { "Older →" } } }
    };
    Ok(page::page(&op, "Activity", content).into_response())
}
