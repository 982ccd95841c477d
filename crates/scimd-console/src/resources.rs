//! A tenant's users and groups: search, pages, and a resource's detail (its SCIM JSON as a
//! GET returns it, its groups or members, its recent activity and events). Everything is
//! read through the SCIM engine, so the console shows exactly what an identity provider
//! would see.

use crate::error::{ConsoleError, Result};
use crate::page::{self, when};
use crate::session::Operator;
use crate::tenants::{tabs, tenant_path};
use crate::{Inner, St};
use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use maud::{Markup, html};
use scimd_core::activity::ActivityQuery;
use scimd_core::events::payload;
use scimd_core::{Body, Ctx, Kind, Returning};
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<Inner>> {
    Router::new()
        .route("/admin/tenants/{slug}/{endpoint}", get(search))
        .route("/admin/tenants/{slug}/{endpoint}/{id}", get(detail))
}

/// Rows on a page of results.
const PER_PAGE: u64 = 50;
/// Events of the tenant looked through for a resource's recent ones.
const EVENTS_SCANNED: u32 = 2_000;

/// `users` or `groups` (the console's paths), and what each lists.
fn kind_of(endpoint: &str) -> Result<Kind> {
    match endpoint {
        "users" => Ok(Kind::User),
        "groups" => Ok(Kind::Group),
        _ => Err(ConsoleError::not_found("page")),
    }
}

fn path_of(kind: Kind) -> &'static str {
    if kind == Kind::User { "users" } else { "groups" }
}

/// A SCIM string literal (JSON's escaping is SCIM's).
fn literal(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

/// What a search box's text matches: names, external id, e-mail addresses.
fn search_filter(kind: Kind, q: &str) -> String {
    let v = literal(q);
    if kind == Kind::User {
        format!(
            "userName co {v} or name.formatted co {v} or displayName co {v} or externalId eq {v} or emails.value co {v}"
        )
    } else {
        format!("displayName co {v} or externalId eq {v}")
    }
}

fn resources(body: &Body) -> (u64, Vec<Value>) {
    let Some(v) = body.json() else { return (0, Vec::new()) };
    let total = v["totalResults"].as_u64().unwrap_or(0);
    (total, v["Resources"].as_array().cloned().unwrap_or_default())
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

fn primary_email(u: &Value) -> &str {
    let emails = u["emails"].as_array().map(Vec::as_slice).unwrap_or_default();
    emails
        .iter()
        .find(|e| e["primary"] == Value::Bool(true))
        .or_else(|| emails.first())
        .map_or("", |e| text(e, "value"))
}

fn active(u: &Value) -> Markup {
    match u["active"].as_bool() {
        Some(false) => page::badge("inactive", "bad"),
        _ => page::badge("active", "ok"),
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct SearchQuery {
    q: Option<String>,
    page: Option<u64>,
}

async fn search(
    axum::extract::State(inner): St,
    Extension(op): Extension<Operator>,
    Path((slug, endpoint)): Path<(String, String)>,
    Query(sq): Query<SearchQuery>,
) -> Result<Response> {
    let kind = kind_of(&endpoint)?;
    let t = inner.parts.dir.tenant(&slug).await?;
    let q = sq.q.as_deref().map(str::trim).unwrap_or("");
    let page_no = sq.page.unwrap_or(1).max(1);
    let base_url = inner.parts.dir.urls.scim_base(&slug);
    let ctx = Ctx::new(&slug, &base_url);
    let query = scimd_core::Query {
        filter: (!q.is_empty()).then(|| search_filter(kind, q)),
        attributes: Some(if kind == Kind::User {
            "userName,name.formatted,displayName,externalId,active,emails,meta.lastModified".into()
        } else {
            "displayName,externalId,meta.lastModified".into()
        }),
        sort_by: Some(kind.name_attribute().into()),
        start_index: Some(((page_no - 1) * PER_PAGE + 1).to_string()),
        count: Some(PER_PAGE.to_string()),
        ..Default::default()
    };
    let (total, rows) = resources(&inner.parts.engine.list(&ctx, Some(kind), &query).await?);
    let pages = total.div_ceil(PER_PAGE).max(1);
    let title = if kind == Kind::User { "Users" } else { "Groups" };
    let here = format!("{}/{}", tenant_path(&slug), path_of(kind));
    let link = |n: u64| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        if !q.is_empty() {
            s.append_pair("q", q);
        }
        s.append_pair("page", &n.to_string());
        format!("{here}?{}", s.finish())
    };
    let content = html! {
        p.crumbs { a href="/admin/tenants" { "Tenants" } " / " a href=(tenant_path(&slug)) { (t.slug) } " / " (title) }
        h1 { (t.name) ": " (title) }
        (tabs(&slug, title))
        form.row role="search" method="get" action=(here) {
            label { "Search"
                input type="search" name="q" value=(q) placeholder=(if kind == Kind::User { "userName, name, externalId or e-mail" } else { "displayName or externalId" });
            }
            button.primary type="submit" { "Search" }
        }
        p.muted { (total) " " (title.to_lowercase()) @if !q.is_empty() { " match “" (q) "”" } }
        div.scroll { table {
            @if kind == Kind::User {
                thead { tr { th { "userName" } th { "Name" } th { "E-mail" } th { "externalId" } th { "State" } th { "Changed" } } }
                tbody { @for u in &rows { tr {
                    td { a href={ (here) "/" (text(u, "id")) } { (text(u, "userName")) } }
                    td { (u["name"]["formatted"].as_str().unwrap_or(text(u, "displayName"))) }
                    td { (primary_email(u)) } td { (text(u, "externalId")) } td { (active(u)) }
                    td { (when(u["meta"]["lastModified"].as_str())) }
                } } }
            } @else {
                thead { tr { th { "displayName" } th { "externalId" } th { "Changed" } } }
                tbody { @for g in &rows { tr {
                    td { a href={ (here) "/" (text(g, "id")) } { (text(g, "displayName")) } }
                    td { (text(g, "externalId")) } td { (when(g["meta"]["lastModified"].as_str())) }
                } } }
            }
        } }
        @if pages > 1 {
            nav.pages {
                @if page_no > 1 { a href=(link(page_no - 1)) { "← Previous" } }
                span { "Page " (page_no.min(pages)) " of " (pages) }
                @if page_no < pages { a href=(link(page_no + 1)) { "Next →" } }
            }
        }
    };
    Ok(page::page(&op, title, content).into_response())
}

/// The other side of a resource's relation: a user's groups, a group's members (users).
async fn related(inner: &Inner, ctx: &Ctx<'_>, kind: Kind, id: &str) -> Result<(u64, Vec<Value>)> {
    let (other, filter, attributes) = if kind == Kind::User {
        (Kind::Group, format!("members.value eq {}", literal(id)), "displayName")
    } else {
        (Kind::User, format!("groups.value eq {}", literal(id)), "userName,displayName")
    };
    let query = scimd_core::Query {
        filter: Some(filter),
        attributes: Some(attributes.into()),
        count: Some("100".into()),
        ..Default::default()
    };
    Ok(resources(&inner.parts.engine.list(ctx, Some(other), &query).await?))
}

/// What an event says happened, in a few words.
fn event_summary(p: &Value) -> String {
    let mut words = vec![p[payload::OP].as_str().unwrap_or("change").to_string()];
    if let Some(a) = p[payload::ACTIVATION].as_str() {
        words.push(a.to_string());
    }
    if let Some(attrs) = p[payload::TOP_LEVEL].as_array().filter(|a| !a.is_empty()) {
        let names: Vec<&str> = attrs.iter().filter_map(Value::as_str).collect();
        words.push(format!("({})", names.join(", ")));
    }
    let members = &p[payload::MEMBERS];
    for (key, label) in [("added", "added"), ("removed", "removed")] {
        if let Some(n) = members[key].as_array().map(Vec::len).filter(|n| *n > 0) {
            words.push(format!("{n} member(s) {label}"));
        }
    }
    words.join(" ")
}

async fn detail(
    axum::extract::State(inner): St,
    Extension(op): Extension<Operator>,
    Path((slug, endpoint, id)): Path<(String, String, String)>,
) -> Result<Response> {
    let kind = kind_of(&endpoint)?;
    let p = &inner.parts;
    let t = p.dir.tenant(&slug).await?;
    let base_url = p.dir.urls.scim_base(&slug);
    let ctx = Ctx::new(&slug, &base_url);
    // The relation is listed below, paged by the engine: a group of 100,000 members stays
    // a small page.
    let returning = Returning { attributes: None, excluded_attributes: kind.relation() };
    let rendered = p.engine.get(&ctx, kind, &id, returning).await?;
    let resource = rendered.body.json().map(Cow::into_owned).unwrap_or_default();
    let (related_total, related_rows) = related(&inner, &ctx, kind, &id).await?;
    let activity = p
        .activity
        .activity(&slug, &ActivityQuery { resource_id: Some(id.clone()), limit: 20, ..Default::default() })
        .await?;
    let log = &p.streams.log;
    let last = log.last_seq(&slug).await?;
    let mut events = log.events_after(&slug, (last - i64::from(EVENTS_SCANNED)).max(0), EVENTS_SCANNED).await?;
    events.retain(|e| e.resource_id == id);
    events.reverse();
    events.truncate(20);
    let name = text(&resource, kind.name_attribute());
    let list_title = if kind == Kind::User { "Users" } else { "Groups" };
    let other_path =
        format!("{}/{}", tenant_path(&slug), path_of(if kind == Kind::User { Kind::Group } else { Kind::User }));
    let content = html! {
        p.crumbs {
            a href="/admin/tenants" { "Tenants" } " / " a href=(tenant_path(&slug)) { (t.slug) } " / "
            a href={ (tenant_path(&slug)) "/" (path_of(kind)) } { (list_title) } " / " (name)
        }
        h1 { (name) @if kind == Kind::User { " " (active(&resource)) } }
        (tabs(&slug, list_title))
        div.columns {
            section {
                h2 { "As SCIM returns it" }
                p.muted { "GET " code { (rendered.location) } " · version " (rendered.version) }
                (page::json(&resource))
            }
            section {
                h2 { @if kind == Kind::User { "Groups (" (related_total) ")" } @else { "Members (" (related_total) " users)" } }
                @if related_rows.is_empty() { p.muted { "None." } }
                ul.plain { @for r in &related_rows {
                    li { a href={ (other_path) "/" (text(r, "id")) } {
                        @if kind == Kind::User { (text(r, "displayName")) } @else { (text(r, "userName")) }
                    } }
                } }
                @if related_total > related_rows.len() as u64 { p.muted { "The first " (related_rows.len()) " are shown." } }
                h2 { "Recent activity" }
                @if !p.recording { p.muted { "Requests are not being recorded (activity_log = false)." } }
                @if activity.is_empty() { p.muted { "No requests about it in the log." } }
                ul.plain { @for (_, a) in &activity {
                    li { (when(Some(&a.time))) " " (a.method) " " (page::status(a.status))
                        @if let Some(c) = &a.client { " " span.muted { (c) } }
                        @if let Some(d) = &a.detail { br; span.error-text { (d) } } }
                } }
                a href={ (tenant_path(&slug)) "/activity?resource_id=" (id) } { "All its activity" }
                h2 { "Recent events" }
                @if events.is_empty() { p.muted { "None among the tenant's latest events." } }
                ul.plain { @for e in &events {
                    li { (when(Some(&e.time))) " " code { "#" (e.seq) } " " (event_summary(&e.payload)) }
                } }
            }
        }
    };
    Ok(page::page(&op, name, content).into_response())
}
