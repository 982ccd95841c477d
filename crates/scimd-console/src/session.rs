//! Signing in and out, and the check in front of every other page.
//!
//! A session is a console token (`Scope::Console`): 256 random bits in an `HttpOnly`,
//! `SameSite=Strict` cookie, stored as a hash, ending at its expiry, at sign-out, or with
//! the admin token that opened it. Forms carry a CSRF token derived from the session's
//! secret (so it needs no storage and dies with the session); the sign-in form, before any
//! session, carries a nonce that must match a short-lived cookie of its own.

use crate::error::ConsoleError;
use crate::page;
use crate::{Inner, St};
use axum::Form;
use axum::body::Body;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, Request};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use maud::html;
use scimd_core::tokens::{Scope, TokenInfo, TokenRequest, create_token, hashes_match, random_secret, verify_token};
use scimd_proto::value::now;
use serde::Deserialize;
use sha2::{Digest, Sha256};

const SESSION_COOKIE: &str = "scimd_session";
const SIGN_IN_COOKIE: &str = "scimd_sign_in";
/// The largest form the console accepts, in bytes.
const MAX_FORM: usize = 16 * 1024;

/// The signed-in operator of a request.
#[derive(Clone)]
pub(crate) struct Operator {
    /// What every form of this session must carry back.
    pub csrf: String,
    pub session: TokenInfo,
}

fn csrf_of(session_secret: &str) -> String {
    hex::encode(Sha256::digest(format!("scimd console form\0{session_secret}").as_bytes()))
}

/// A cookie's value from the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value for the console's path; `max_age` 0 removes the cookie.
fn set_cookie(inner: &Inner, name: &str, value: &str, max_age: u64) -> HeaderValue {
    let secure = if inner.secure { "; Secure" } else { "" };
    let text = format!("{name}={value}; Path=/admin; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

fn forbidden(message: &str) -> Response {
    (StatusCode::FORBIDDEN, page::bare("Forbidden", page::problem(message))).into_response()
}

/// In front of every page but signing in: the session must be valid, and a form (any
/// method but GET and HEAD) must carry the session's CSRF token. Without a session, a page
/// asks to sign in; a form is refused.
pub(crate) async fn guard(axum::extract::State(inner): St, req: Request, next: Next) -> Response {
    let secret = cookie(req.headers(), SESSION_COOKIE).map(str::to_string);
    let verified = match &secret {
        Some(s) => verify_token(inner.parts.dir.tokens.as_ref(), Scope::Console, s, &now()).await,
        None => Ok(None),
    };
    let reading = matches!(*req.method(), Method::GET | Method::HEAD);
    let (session, secret) = match (verified, secret) {
        (Ok(Some(v)), Some(secret)) => (v.info, secret),
        (Ok(_), _) if reading => {
            let here = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/admin");
            let to: String = form_urlencoded::Serializer::new(String::new()).append_pair("next", here).finish();
            return page::see_other(&format!("/admin/sign-in?{to}"));
        }
        (Ok(_), _) => return forbidden("Your session has ended: sign in again, then repeat what you did."),
        (Err(e), _) => return ConsoleError::from(e).into_response(),
    };
    let op = Operator { csrf: csrf_of(&secret), session };
    let mut req = req;
    if !reading {
        let (parts, body) = req.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM).await else {
            return ConsoleError::new(StatusCode::PAYLOAD_TOO_LARGE, "That form is larger than the console accepts.")
                .into_response();
        };
        let carried = form_urlencoded::parse(&bytes).find(|(k, _)| k == "csrf").map(|(_, v)| v.into_owned());
        if !carried.is_some_and(|c| hashes_match(&c, &op.csrf)) {
            return forbidden("The form's CSRF token is missing or wrong: reload the page and try again.");
        }
        req = Request::from_parts(parts, Body::from(bytes));
    }
    req.extensions_mut().insert(op);
    next.run(req).await
}

#[derive(Deserialize, Default)]
pub(crate) struct SignInQuery {
    next: Option<String>,
    notice: Option<String>,
}

/// Only the console's own pages: never another site, never `//host` or `/\host`.
fn next_page(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with("/admin/") && !n.contains("//") && !n.contains('\\') => n,
        _ => "/admin/tenants",
    }
}

fn sign_in_page(inner: &Inner, next: &str, notice: Option<&str>, error: Option<&str>, status: StatusCode) -> Response {
    let nonce = random_secret("");
    let content = html! {
        section.narrow {
            h1 { "Sign in" }
            (page::notice(notice))
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form method="post" action="/admin/sign-in" {
                input type="hidden" name="csrf" value=(nonce);
                input type="hidden" name="next" value=(next);
                label for="token" { "Admin token" }
                input #token type="password" name="token" autocomplete="off" required autofocus
                    placeholder="scimd_admin_…";
                button.primary type="submit" { "Sign in" }
            }
            p.muted { "Create an admin token with " code { "scimd admin-token create" } "." }
        }
    };
    let mut r = (status, page::bare("Sign in", content)).into_response();
    r.headers_mut().append(header::SET_COOKIE, set_cookie(inner, SIGN_IN_COOKIE, &nonce, 600));
    r
}

pub(crate) async fn sign_in_form(axum::extract::State(inner): St, Query(q): Query<SignInQuery>) -> Response {
    sign_in_page(&inner, next_page(q.next.as_deref()), q.notice.as_deref(), None, StatusCode::OK)
}

#[derive(Deserialize)]
pub(crate) struct SignIn {
    token: String,
    csrf: String,
    next: Option<String>,
}

pub(crate) async fn sign_in(
    axum::extract::State(inner): St,
    headers: HeaderMap,
    form: Result<Form<SignIn>, FormRejection>,
) -> Response {
    let Ok(Form(f)) = form else {
        return sign_in_page(&inner, "/admin/tenants", None, Some("Enter an admin token."), StatusCode::BAD_REQUEST);
    };
    let next = next_page(f.next.as_deref());
    if !cookie(&headers, SIGN_IN_COOKIE).is_some_and(|nonce| hashes_match(nonce, &f.csrf)) {
        return forbidden("The sign-in form expired or did not come from this console: reload it and try again.");
    }
    let tokens = inner.parts.dir.tokens.as_ref();
    let at = now();
    let admin = match verify_token(tokens, Scope::Admin, f.token.trim(), &at).await {
        Ok(Some(v)) => v.info,
        Ok(None) => {
            tracing::info!("console: sign-in refused");
            let why = "That is not a valid admin token (or it was revoked, or it expired).";
            return sign_in_page(&inner, next, None, Some(why), StatusCode::UNAUTHORIZED);
        }
        Err(e) => return ConsoleError::from(e).into_response(),
    };
    let lifetime = inner.parts.session_lifetime.as_secs().max(60);
    let expires = match scimd_admin::ops::expiry(Some(&format!("{lifetime}s"))) {
        Ok(e) => e,
        Err(e) => return ConsoleError::from(e).into_response(),
    };
    let req = TokenRequest { scope: Scope::Console, tenant: &admin.id, name: &admin.name, secret: None, expires };
    let session = match create_token(tokens, req, &at).await {
        Ok(s) => s,
        Err(e) => return ConsoleError::from(e).into_response(),
    };
    tracing::info!(admin_token = %admin.id, session = %session.info.id, "console: signed in");
    let mut r = page::see_other(next);
    r.headers_mut().append(header::SET_COOKIE, set_cookie(&inner, SESSION_COOKIE, &session.secret, lifetime));
    r.headers_mut().append(header::SET_COOKIE, set_cookie(&inner, SIGN_IN_COOKIE, "", 0));
    r
}

pub(crate) async fn sign_out(
    axum::extract::State(inner): St,
    axum::Extension(op): axum::Extension<Operator>,
) -> Response {
    if let Err(e) = inner.parts.dir.tokens.revoke_token(Scope::Console, "", &op.session.id, &now()).await {
        return ConsoleError::from(e).into_response();
    }
    tracing::info!(session = %op.session.id, "console: signed out");
    let mut r = page::see_other("/admin/sign-in?notice=signed-out");
    r.headers_mut().append(header::SET_COOKIE, set_cookie(&inner, SESSION_COOKIE, "", 0));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_consoles_own_pages_come_next() {
        assert_eq!(next_page(Some("/admin/tenants/acme?x=1")), "/admin/tenants/acme?x=1");
        for elsewhere in ["https://evil.example/", "//evil.example/admin/", "/admin//evil", "/admin/\\evil", "/scim/v2"]
        {
            assert_eq!(next_page(Some(elsewhere)), "/admin/tenants", "{elsewhere}");
        }
        assert_eq!(next_page(None), "/admin/tenants");
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; scimd_session_x=no"));
        h.append(header::COOKIE, HeaderValue::from_static("scimd_session=yes"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("yes"));
        assert_eq!(cookie(&h, "missing"), None);
    }

    #[test]
    fn each_session_has_its_own_form_token() {
        assert_ne!(csrf_of("a"), csrf_of("b"));
        assert_eq!(csrf_of("a"), csrf_of("a"));
        assert_eq!(csrf_of("a").len(), 64);
    }
}
