//! Tenants: the list with what each holds and how its provisioning is going, creating one
//! (its URL and first token shown once), disabling and enabling; a tenant's page with its
//! SCIM tokens, settings and event streams.

use crate::error::{ConsoleError, Result};
use crate::page::{self, action, badge, copyable, csrf, when};
use crate::session::Operator;
use crate::{Inner, St};
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use maud::{Markup, html};
use scimd_core::activity::ActivitySummary;
use scimd_core::streams::{Delivery, Stream, StreamState};
use scimd_core::tenants::{Tenant, TenantSettings, TenantState};
use scimd_core::tokens::NewToken;
use scimd_events::manage::Start;
use serde::Deserialize;
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<Inner>> {
    Router::new()
        .route("/admin/tenants", get(list).post(create))
        .route("/admin/tenants/{slug}", get(show))
        .route("/admin/tenants/{slug}/disable", post(disable))
        .route("/admin/tenants/{slug}/enable", post(enable))
        .route("/admin/tenants/{slug}/tokens", post(create_token))
        .route("/admin/tenants/{slug}/tokens/{id}/revoke", post(revoke_token))
        .route("/admin/tenants/{slug}/streams/{id}/{verb}", post(stream_action))
}

/// Tenants shown on one page of the list.
const PER_PAGE: usize = 50;

pub(crate) fn tenant_path(slug: &str) -> String {
    format!("/admin/tenants/{slug}")
}

fn state_badge(state: TenantState) -> Markup {
    match state {
        TenantState::Active => badge("active", "ok"),
        TenantState::Disabled => badge("disabled", "bad"),
    }
}

fn error_rate(s: &ActivitySummary) -> Markup {
    if s.requests == 0 {
        return html! { span.muted { "no requests" } };
    }
    let rate = s.failed as f64 * 100.0 / s.requests as f64;
    let class = if s.failed == 0 {
        "ok"
    } else if rate < 5.0 {
        "warn"
    } else {
        "bad"
    };
    html! { span class={ "badge " (class) } { (format!("{rate:.1}%")) } " " span.muted { "of " (s.requests) } }
}

#[derive(Deserialize, Default)]
pub(crate) struct ListQuery {
    page: Option<usize>,
}

async fn list(
    axum::extract::State(inner): St,
    Extension(op): Extension<Operator>,
    q: Query<ListQuery>,
) -> Result<Response> {
    list_page(&inner, &op, q.page.unwrap_or(1), None).await
}

async fn list_page(inner: &Inner, op: &Operator, page_no: usize, error: Option<ConsoleError>) -> Result<Response> {
    let p = &inner.parts;
    let all = p.dir.tenants().await?;
    let pages = all.len().div_ceil(PER_PAGE).max(1);
    let page_no = page_no.clamp(1, pages);
    let since = scimd_proto::value::days_ago(1);
    let mut rows = Vec::new();
    for t in all.iter().skip((page_no - 1) * PER_PAGE).take(PER_PAGE) {
        let stats = p.dir.tenants.tenant_stats(&t.slug).await?;
        // (Without recording, the column says so: no query for it.)
        let summary = match p.recording {
            true => p.activity.activity_summary(&t.slug, &since).await?,
            false => ActivitySummary::default(),
        };
        rows.push((t, stats, summary));
    }
    let status = error.as_ref().map_or(StatusCode::OK, |e| e.status);
    let content = html! {
        h1 { "Tenants" }
        @if let Some(e) = &error { p.error role="alert" { (e.message) } }
        div.scroll {
            table {
                thead { tr {
                    th { "Tenant" } th { "State" } th.num { "Users" } th.num { "Active" } th.num { "Groups" }
                    th { "Last request" } th { "Errors, 24 h" } th { span.sr { "Actions" } }
                } }
                tbody {
                    @for (t, stats, summary) in &rows {
                        tr {
                            td { a href=(tenant_path(&t.slug)) { (t.name) } br; span.muted { (t.slug) } }
                            td { (state_badge(t.state)) }
                            td.num { (stats.users) } td.num { (stats.active_users) } td.num { (stats.groups) }
                            td { (when(t.last_request.as_deref())) }
                            td { @if p.recording { (error_rate(summary)) } @else { span.muted { "not recorded" } } }
                            td { (state_action(op, t)) }
                        }
                    }
                    @if rows.is_empty() { tr { td colspan="8" { "No tenants yet: create one below." } } }
                }
            }
        }
        @if pages > 1 {
            nav.pages {
                @if page_no > 1 { a href={ "?page=" (page_no - 1) } { "← Previous" } }
                span { "Page " (page_no) " of " (pages) }
                @if page_no < pages { a href={ "?page=" (page_no + 1) } { "Next →" } }
            }
        }
        section {
            h2 { "Create a tenant" }
            form.row method="post" action="/admin/tenants" {
                (csrf(op))
                label { "Slug" input name="slug" required pattern="[a-z0-9][a-z0-9\\-]{0,62}" placeholder="acme"
                    title="1 to 63 lower-case letters, digits and '-', not starting with '-'"; }
                label { "Name" input name="name" placeholder="Acme Corporation"; }
                button.primary type="submit" { "Create" }
            }
        }
    };
    Ok((status, page::page(op, "Tenants", content)).into_response())
}

fn state_action(op: &Operator, t: &Tenant) -> Markup {
    let path = tenant_path(&t.slug);
    match t.state {
        TenantState::Active => action(
            op,
            &format!("{path}/disable"),
            "Disable",
            Some("Disable this tenant? Its tokens stop working until it is enabled."),
        ),
        TenantState::Disabled => action(op, &format!("{path}/enable"), "Enable", None),
    }
}

#[derive(Deserialize)]
pub(crate) struct NewTenant {
    slug: String,
    name: Option<String>,
}

/// A token just made: the one time its secret is shown.
fn shown_once(token: &NewToken, scim_base_url: &str) -> Markup {
    html! {
        div.secret {
            p { strong { "Copy the token now." } " It is shown this once; only its hash is kept." }
            dl {
                dt { "SCIM base URL" } dd { (copyable("scim-url", scim_base_url)) }
                dt { "Bearer token" } dd { (copyable("token", &token.secret)) }
            }
            p.muted { "Entra ID: Tenant URL and Secret Token. Okta: SCIM connector base URL and API token." }
        }
    }
}

async fn create(
    axum::extract::State(inner): St,
    Extension(op): Extension<Operator>,
    Form(f): Form<NewTenant>,
) -> Result<Response> {
    let name = f.name.as_deref().map(str::trim).filter(|n| !n.is_empty());
    let created = match inner.parts.dir.create_tenant(f.slug.trim(), name, TenantSettings::default()).await {
        Ok(c) => c,
        Err(e) => return list_page(&inner, &op, 1, Some(e.into())).await,
    };
    let t = &created.tenant;
    let content = html! {
        h1 { "Tenant " (t.name) " created" }
        (shown_once(&created.token, &created.scim_base_url))
        p { a href=(tenant_path(&t.slug)) { "Go to the tenant" } }
    };
    Ok((StatusCode::CREATED, page::page(&op, "Tenant created", content)).into_response())
}

async fn set_state(inner: &Inner, slug: &str, state: TenantState) -> Result<Response> {
    inner.parts.dir.update_tenant(slug, None, Some(state), None).await?;
    let notice = if state == TenantState::Active { "enabled" } else { "disabled" };
    Ok(page::see_other(&format!("{}?notice={notice}", tenant_path(slug))))
}

async fn disable(axum::extract::State(inner): St, Path(slug): Path<String>) -> Result<Response> {
    set_state(&inner, &slug, TenantState::Disabled).await
}

async fn enable(axum::extract::State(inner): St, Path(slug): Path<String>) -> Result<Response> {
    set_state(&inner, &slug, TenantState::Active).await
}

#[derive(Deserialize, Default)]
pub(crate) struct ShowQuery {
    notice: Option<String>,
}

/// The tabs of a tenant's pages.
pub(crate) fn tabs(slug: &str, current: &str) -> Markup {
    let path = tenant_path(slug);
    let items = [("Overview", path.clone()), ("Users", format!("{path}/users")), ("Groups", format!("{path}/groups"))];
    let activity = ("Activity", format!("{path}/activity"));
    html! {
        nav.tabs aria-label="Tenant" {
            @for (label, href) in items.iter().chain(std::iter::once(&activity)) {
                @if *label == current { a href=(href) aria-current="page" { (label) } }
                @else { a href=(href) { (label) } }
            }
        }
    }
}

async fn show(
    axum::extract::State(inner): St,
    Extension(op): Extension<Operator>,
    Path(slug): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Result<Response> {
    tenant_page(&inner, &op, &slug, q.notice.as_deref(), None, None).await
}

async fn tenant_page(
    inner: &Inner,
    op: &Operator,
    slug: &str,
    notice: Option<&str>,
    new_token: Option<&NewToken>,
    error: Option<ConsoleError>,
) -> Result<Response> {
    let p = &inner.parts;
    let (t, stats) = p.dir.stats(slug).await?;
    let tokens = p.dir.tokens(slug).await?;
    let streams = p.streams.list(slug).await?;
    let mut backlogs = Vec::with_capacity(streams.len());
    for s in &streams {
        backlogs.push(p.streams.backlog(s).await?);
    }
    let base_url = p.dir.urls.scim_base(slug);
    let path = tenant_path(slug);
    let settings = serde_json::to_value(&t.settings).unwrap_or_default();
    let settings = settings.as_object().cloned().unwrap_or_default();
    let status = match (&error, new_token) {
        (Some(e), _) => e.status,
        (None, Some(_)) => StatusCode::CREATED,
        _ => StatusCode::OK,
    };
    let content = html! {
        p.crumbs { a href="/admin/tenants" { "Tenants" } " / " (t.slug) }
        h1 { (t.name) " " (state_badge(t.state)) }
        (tabs(slug, "Overview"))
        (page::notice(notice))
        @if let Some(e) = &error { p.error role="alert" { (e.message) } }
        @if let Some(token) = new_token { (shown_once(token, &base_url)) }
        dl.facts {
            dt { "SCIM base URL" } dd { (copyable("base-url", &base_url)) }
            dt { "Users" } dd { (stats.users) " (" (stats.active_users) " active)" }
            dt { "Groups" } dd { (stats.groups) }
            dt { "Created" } dd { (when(Some(&t.created))) }
            dt { "Last request" } dd { (when(t.last_request.as_deref())) }
            dt { "State" } dd { (state_action(op, &t)) }
        }
        section {
            h2 { "SCIM tokens" }
            div.scroll { table {
                thead { tr { th { "Name" } th { "Id" } th { "Created" } th { "Expires" } th { "Last used" } th { "State" } th { span.sr { "Actions" } } } }
                tbody {
                    @for k in &tokens {
                        tr {
                            td { (k.name) } td { code { (k.id) } } td { (when(Some(&k.created))) }
                            td { @if let Some(e) = &k.expires { (when(Some(e))) } @else { span.muted { "does not expire" } } }
                            td { (when(k.last_used.as_deref())) }
                            td { @if let Some(r) = &k.revoked { (badge("revoked", "bad")) " " (when(Some(r))) } @else { (badge("active", "ok")) } }
                            td { @if k.revoked.is_none() {
                                (action(op, &format!("{path}/tokens/{}/revoke", k.id), "Revoke",
                                    Some("Revoke this token? The identity provider using it is refused from now on.")))
                            } }
                        }
                    }
                    @if tokens.is_empty() { tr { td colspan="7" { "No tokens." } } }
                }
            } }
            form.row method="post" action={ (path) "/tokens" } {
                (csrf(op))
                label { "Name" input name="name" required value="api"; }
                label { "Expires after"
                    select name="expires_in" {
                        option value="" { "never" } option value="30d" { "30 days" }
                        option value="90d" selected { "90 days" } option value="365d" { "a year" }
                    }
                }
                button.primary type="submit" { "Create a token" }
            }
        }
        section {
            h2 { "Settings" }
            @if settings.is_empty() { p.muted { "The server's defaults." } }
            @else { dl.facts { @for (k, v) in &settings { dt { (k) } dd { code { (v) } } } } }
            p.muted { "Change them with the admin API (" code { "PATCH /admin/v1/tenants/" (slug) } ")." }
        }
        section {
            h2 { "Event streams" }
            @if streams.is_empty() { p.muted { "No streams: the admin API and " code { "scimd stream create" } " add them." } }
            @else { div.scroll { table {
                thead { tr { th { "Stream" } th { "State" } th.num { "Backlog" } th { "Last delivered" } th { "Last error" } th { "Next attempt" } th { span.sr { "Actions" } } } }
                tbody { @for (s, backlog) in streams.iter().zip(&backlogs) { (stream_row(op, &path, s, *backlog)) } }
            } } }
        }
    };
    Ok((status, page::page(op, &t.name, content)).into_response())
}

fn stream_row(op: &Operator, tenant_path: &str, s: &Stream, backlog: u64) -> Markup {
    let d = &s.delivery_state;
    let base = format!("{tenant_path}/streams/{}", s.id);
    let state = match s.state {
        StreamState::Active => badge("active", "ok"),
        StreamState::Paused => badge("paused", "warn"),
        StreamState::Failing => badge("failing", "bad"),
    };
    html! {
        tr {
            td { (s.name) br; span.muted { (s.delivery.as_str()) @if s.delivery == Delivery::Push { " to " (s.endpoint.as_deref().unwrap_or("")) } } }
            td { (state) @if d.attempts > 0 { br; span.muted { (d.attempts) " failed attempts" } } }
            td.num { (backlog) }
            td { (when(d.delivered.as_deref())) }
            td { @if let Some(e) = &d.last_error { span.error-text { (e) } } @else { span.muted { "none" } } }
            td { @if let Some(n) = &d.next_attempt { (when(Some(n))) } @else { span.muted { "—" } } }
            td.actions {
                @if s.state == StreamState::Active { (action(op, &format!("{base}/pause"), "Pause", None)) }
                @else { (action(op, &format!("{base}/resume"), "Resume", None)) }
                form.inline method="post" action={ (base) "/replay" } {
                    (csrf(op))
                    select name="from" aria-label="Replay from" {
                        option value="beginning" { "from the oldest event kept" }
                        option value="now" { "from now (skip the backlog)" }
                    }
                    button type="submit" data-confirm="Move this stream? Events are delivered again (or skipped) from there." { "Replay" }
                }
            }
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct NewTokenForm {
    name: String,
    expires_in: Option<String>,
}

async fn create_token(
    axum::extract::State(inner): St,
    Extension(op): Extension<Operator>,
    Path(slug): Path<String>,
    Form(f): Form<NewTokenForm>,
) -> Result<Response> {
    let lifetime = f.expires_in.as_deref().filter(|e| !e.is_empty());
    match inner.parts.dir.create_token(&slug, &f.name, lifetime).await {
        Ok(token) => tenant_page(&inner, &op, &slug, None, Some(&token), None).await,
        Err(e @ scimd_admin::ops::OpError::Invalid(..)) => {
            tenant_page(&inner, &op, &slug, None, None, Some(e.into())).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn revoke_token(axum::extract::State(inner): St, Path((slug, id)): Path<(String, String)>) -> Result<Response> {
    inner.parts.dir.revoke_token(&slug, &id).await?;
    Ok(page::see_other(&format!("{}?notice=revoked", tenant_path(&slug))))
}

#[derive(Deserialize, Default)]
pub(crate) struct ReplayForm {
    from: Option<String>,
}

async fn stream_action(
    axum::extract::State(inner): St,
    Path((slug, id, verb)): Path<(String, String, String)>,
    Form(f): Form<ReplayForm>,
) -> Result<Response> {
    let streams = &inner.parts.streams;
    let notice = match verb.as_str() {
        "pause" => streams.pause(&slug, &id).await.map(|_| "paused")?,
        "resume" => streams.resume(&slug, &id).await.map(|_| "resumed")?,
        "replay" => {
            let start =
                f.from.as_deref().and_then(Start::parse).ok_or_else(|| {
                    ConsoleError::new(StatusCode::BAD_REQUEST, "Replay from the beginning or from now.")
                })?;
            streams.replay(&slug, &id, start).await.map(|_| "replaying")?
        }
        _ => return Err(ConsoleError::not_found("action")),
    };
    Ok(page::see_other(&format!("{}?notice={notice}", tenant_path(&slug))))
}
