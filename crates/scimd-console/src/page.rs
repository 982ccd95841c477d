//! The pages' frame and the small pieces every page uses. Markup is built with `maud`,
//! which escapes every value it is given: nothing a tenant or an identity provider sent can
//! become markup.

use crate::session::Operator;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

const CSS: &str = include_str!("../assets/console.css");
const JS: &str = include_str!("../assets/console.js");
const ICON: &str = include_str!("../assets/icon.svg");

/// The assets change only with the binary; their URLs carry its version.
const ASSET_VERSION: &str = env!("CARGO_PKG_VERSION");

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    r
}

pub(crate) async fn stylesheet() -> Response {
    asset(CSS, "text/css; charset=utf-8")
}

pub(crate) async fn script() -> Response {
    asset(JS, "text/javascript; charset=utf-8")
}

pub(crate) async fn icon() -> Response {
    asset(ICON, "image/svg+xml")
}

fn document(title: &str, nav: Option<Markup>, content: Markup) -> Html<String> {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · scimd" }
                link rel="icon" href={ "/admin/assets/icon.svg?v=" (ASSET_VERSION) } type="image/svg+xml";
                link rel="stylesheet" href={ "/admin/assets/console.css?v=" (ASSET_VERSION) };
                script src={ "/admin/assets/console.js?v=" (ASSET_VERSION) } defer {}
            }
            body {
                header.top {
                    a.brand href="/admin/tenants" { "scimd" }
                    @if let Some(nav) = nav { (nav) }
                }
                main { (content) }
            }
        }
    };
    Html(markup.into_string())
}

/// A page for a signed-in operator: the navigation and sign-out come with it.
pub(crate) fn page(op: &Operator, title: &str, content: Markup) -> Html<String> {
    let nav = html! {
        nav {
            a href="/admin/tenants" { "Tenants" }
            form.inline method="post" action="/admin/sign-out" {
                (csrf(op))
                button.link type="submit" { "Sign out" }
            }
        }
    };
    document(title, Some(nav), content)
}

/// A page without navigation: signing in, errors.
pub(crate) fn bare(title: &str, content: Markup) -> Html<String> {
    document(title, None, content)
}

pub(crate) fn problem(message: &str) -> Markup {
    html! {
        h1 { "Something is wrong" }
        p.error role="alert" { (message) }
        p { a href="/admin/tenants" { "Back to the tenants" } }
    }
}

/// A redirect after a form: the browser GETs the next page.
pub(crate) fn see_other(location: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// The hidden field every form carries.
pub(crate) fn csrf(op: &Operator) -> Markup {
    html! { input type="hidden" name="csrf" value=(op.csrf); }
}

/// A one-button form (an action on one thing); `confirm` asks first.
pub(crate) fn action(op: &Operator, to: &str, label: &str, confirm: Option<&str>) -> Markup {
    html! {
        form.inline method="post" action=(to) {
            (csrf(op))
            button type="submit" data-confirm=[confirm] { (label) }
        }
    }
}

/// A time as stored (RFC 3339, UTC), shown to the second; "never" without one.
pub(crate) fn when(t: Option<&str>) -> Markup {
    match t {
        Some(t) => {
            let short = t.get(..19).unwrap_or(t).replace('T', " ");
            html! { time datetime=(t) title=(t) { (short) } }
        }
        None => html! { span.muted { "never" } },
    }
}

/// A value to copy: shown in full, with a button that copies it.
pub(crate) fn copyable(id: &str, value: &str) -> Markup {
    html! {
        span.copyable {
            code id=(id) { (value) }
            button type="button" data-copy=(id) { "Copy" }
        }
    }
}

/// A status code, coloured by class.
pub(crate) fn status(code: u16) -> Markup {
    let class = match code {
        200..=399 => "ok",
        400..=499 => "warn",
        _ => "bad",
    };
    html! { span class={ "badge " (class) } { (code) } }
}

pub(crate) fn badge(text: &str, class: &str) -> Markup {
    html! { span class={ "badge " (class) } { (text) } }
}

/// The messages a redirect may ask a page to show (by code, so that no link can make the
/// console say something it did not).
pub(crate) fn notice(code: Option<&str>) -> Markup {
    let text = match code {
        Some("revoked") => "The token is revoked: it opens nothing from now on.",
        Some("disabled") => "The tenant is disabled: its tokens open nothing until it is enabled again.",
        Some("enabled") => "The tenant is enabled.",
        Some("paused") => "The stream is paused.",
        Some("resumed") => "The stream is delivering again.",
        Some("replaying") => "The stream starts over from the point you chose.",
        Some("signed-out") => "You are signed out.",
        _ => return html! {},
    };
    html! { p.notice role="status" { (text) } }
}

/// Pretty JSON, escaped, for a `<pre>`.
pub(crate) fn json(v: &serde_json::Value) -> Markup {
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    html! { pre.json { (text) } }
}
