//! The console over real HTTP: who may open it, what its forms need, and that what an
//! identity provider sent is shown as text. (The walk through its pages in a real browser
//! is `.ci/console_check.py`.)

mod common;

use common::{Db, TestServer};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use scimd_core::tokens::{NewToken, Scope, TokenRequest, create_token};
use serde_json::json;
use std::time::Duration;

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

async fn admin_token(s: &TestServer, name: &str) -> NewToken {
    let req = TokenRequest { scope: Scope::Admin, tenant: "", name, secret: None, expires: None };
    create_token(s.backend.tokens.as_ref(), req, &scimd_proto::value::now()).await.unwrap()
}

/// A client that shows redirects instead of following them.
fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

struct Page {
    status: StatusCode,
    location: Option<String>,
    cookies: Vec<String>,
    body: String,
}

async fn send(s: &TestServer, method: Method, path: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> Page {
    let mut req = client().request(method.clone(), format!("{}{path}", s.root));
    if let Some(c) = cookie {
        req = req.header(COOKIE, c);
    }
    if method != Method::GET {
        req = req.form(form);
    }
    let resp = req.send().await.unwrap();
    Page {
        status: resp.status(),
        location: resp.headers().get(LOCATION).map(|l| l.to_str().unwrap().to_string()),
        cookies: resp.headers().get_all(SET_COOKIE).iter().map(|c| c.to_str().unwrap().to_string()).collect(),
        body: resp.text().await.unwrap(),
    }
}

/// The value of a form's hidden CSRF field on a page.
fn csrf(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a form with a CSRF field") + 19;
    page[at..at + 64].to_string()
}

/// `name=value` of a Set-Cookie.
fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

/// Signs in as a browser does; the session's cookie (`scimd_session=…`) and its form token.
async fn sign_in(s: &TestServer, admin: &str) -> (String, String) {
    let form = send(s, Method::GET, "/admin/sign-in", None, &[]).await;
    let nonce = csrf(&form.body);
    let signed =
        send(s, Method::POST, "/admin/sign-in", Some(&pair(&form.cookies[0])), &[("token", admin), ("csrf", &nonce)])
            .await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    let session = signed.cookies.iter().find(|c| c.starts_with("scimd_session=")).expect("a session cookie");
    let cookie = pair(session);
    let page = send(s, Method::GET, "/admin/tenants", Some(&cookie), &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    (cookie, csrf(&page.body))
}

fn asks_to_sign_in(p: &Page) -> bool {
    p.status == StatusCode::SEE_OTHER && p.location.as_deref().is_some_and(|l| l.starts_with("/admin/sign-in"))
}

async fn sessions_end_when_they_should(db: Db) {
    let s = TestServer::on_db(db, "console_sessions", |_| {}).await;
    let ops = admin_token(&s, "ops").await;
    assert!(asks_to_sign_in(&send(&s, Method::GET, "/admin/tenants", None, &[]).await));
    let (cookie, form) = sign_in(&s, &ops.secret).await;
    // The session opens the console, not the admin API.
    let api =
        s.request(Method::GET, &format!("{}/admin/v1/tenants", s.root), None, None, None, &[("Cookie", &cookie)]).await;
    assert_eq!(api.status, 401);
    // Signing out ends it.
    let out = send(&s, Method::POST, "/admin/sign-out", Some(&cookie), &[("csrf", &form)]).await;
    assert_eq!(out.location.as_deref(), Some("/admin/sign-in?notice=signed-out"));
    assert!(
        out.cookies.iter().any(|c| c.starts_with("scimd_session=;") && c.contains("Max-Age=0")),
        "{:?}",
        out.cookies
    );
    assert!(asks_to_sign_in(&send(&s, Method::GET, "/admin/tenants", Some(&cookie), &[]).await));
    // Revoking the admin token ends every session it opened, at once.
    let (first, _) = sign_in(&s, &ops.secret).await;
    let (second, _) = sign_in(&s, &ops.secret).await;
    let other = admin_token(&s, "other").await;
    let (unrelated, _) = sign_in(&s, &other.secret).await;
    // (As `scimd admin-token revoke` does.)
    s.backend.tokens.revoke_token(Scope::Admin, "", &ops.info.id, &scimd_proto::value::now()).await.unwrap();
    for cookie in [&first, &second] {
        assert!(asks_to_sign_in(&send(&s, Method::GET, "/admin/tenants", Some(cookie), &[]).await));
    }
    assert_eq!(send(&s, Method::GET, "/admin/tenants", Some(&unrelated), &[]).await.status, 200);
    // A revoked admin token signs nobody in.
    let form = send(&s, Method::GET, "/admin/sign-in", None, &[]).await;
    let again = send(
        &s,
        Method::POST,
        "/admin/sign-in",
        Some(&pair(&form.cookies[0])),
        &[("token", &ops.secret), ("csrf", &csrf(&form.body))],
    )
    .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert!(again.cookies.iter().all(|c| !c.starts_with("scimd_session=")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_end_when_they_should_on_sqlite() {
    sessions_end_when_they_should(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn sessions_end_when_they_should_on_postgres() {
    sessions_end_when_they_should(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_form_needs_the_session_and_its_csrf_token() {
    let s = TestServer::start().await;
    let ops = admin_token(&s, "ops").await;
    let (cookie, form) = sign_in(&s, &ops.secret).await;
    let (other_cookie, other_form) = sign_in(&s, &ops.secret).await;
    assert_ne!(form, other_form, "each session has its own form token");
    for (cookie, fields) in [
        (Some(cookie.as_str()), vec![("slug", "forged")]),
        (Some(cookie.as_str()), vec![("slug", "forged"), ("csrf", other_form.as_str())]),
        (Some(other_cookie.as_str()), vec![("slug", "forged"), ("csrf", form.as_str())]),
        (None, vec![("slug", "forged"), ("csrf", form.as_str())]),
    ] {
        let p = send(&s, Method::POST, "/admin/tenants", cookie, &fields).await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{fields:?}");
    }
    assert!(s.backend.tenants.tenant("forged").await.unwrap().is_none());
    // The same form with its own token creates the tenant and shows its token once.
    let made = send(&s, Method::POST, "/admin/tenants", Some(&cookie), &[("slug", "acme"), ("csrf", &form)]).await;
    assert_eq!(made.status, StatusCode::CREATED);
    let at = made.body.find("<code id=\"token\">").unwrap() + 17;
    let token = &made.body[at..at + made.body[at..].find("</code>").unwrap()];
    assert!(token.starts_with("scimd_") && !token.starts_with("scimd_admin_"), "{token}");
    let works = s.request(Method::GET, &format!("{}/t/acme/scim/v2/Users", s.root), Some(token), None, None, &[]).await;
    assert_eq!(works.status, 200);
    // Signing in needs the sign-in form's own cookie.
    let page = send(&s, Method::GET, "/admin/sign-in", None, &[]).await;
    let forged =
        send(&s, Method::POST, "/admin/sign-in", None, &[("token", &ops.secret), ("csrf", &csrf(&page.body))]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    // Forms too large are refused before anything is read from them.
    let big = "x".repeat(64 * 1024);
    let p = send(&s, Method::POST, "/admin/tenants", Some(&cookie), &[("slug", &big), ("csrf", &form)]).await;
    assert_eq!(p.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_identity_providers_send_is_shown_as_text() {
    let s = TestServer::with(|c| c.activity_log = true).await;
    let ops = admin_token(&s, "ops").await;
    let (cookie, _) = sign_in(&s, &ops.secret).await;
    let hostile = "<script>alert(1)</script>";
    let created = s
        .call(
            Method::POST,
            "/Users",
            Some(json!({"schemas": [USER], "userName": format!("{hostile}@x.example"),
                "displayName": "\"><img src=x onerror=alert(2)>", "externalId": "a&b"})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap();
    let refused =
        s.call(Method::POST, "/Users", Some(json!({"schemas": [USER], "userName": 7, "nickName": hostile}))).await;
    assert_eq!(refused.status, 400);
    // The log is written a moment after the answers (bounded wait).
    for _ in 0..100 {
        let failed = send(&s, Method::GET, "/admin/tenants/default/activity?status=failed", Some(&cookie), &[]).await;
        if failed.body.contains("nickName") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for path in [
        "/admin/tenants/default/users".to_string(),
        format!("/admin/tenants/default/users/{id}"),
        "/admin/tenants/default/activity?status=failed".to_string(),
    ] {
        let p = send(&s, Method::GET, &path, Some(&cookie), &[]).await;
        assert_eq!(p.status, 200, "{path}");
        assert!(!p.body.contains("<script>alert") && !p.body.contains("<img src=x"), "{path}: markup from data");
        assert!(p.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{path}: the value is shown as text");
    }
    // The detail shows the resource exactly as SCIM returns it, with its activity.
    let detail = send(&s, Method::GET, &format!("/admin/tenants/default/users/{id}"), Some(&cookie), &[]).await;
    assert!(detail.body.contains("a&amp;b") && detail.body.contains("201"), "{}", detail.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_are_secure_behind_https_and_the_console_can_be_off() {
    let s = TestServer::with(|c| c.base_url = Some("https://scim.example.com/scim/v2".into())).await;
    let form = send(&s, Method::GET, "/admin/sign-in", None, &[]).await;
    let cookie = &form.cookies[0];
    for attribute in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/admin"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let off = TestServer::with(|c| c.console = false).await;
    assert_eq!(send(&off, Method::GET, "/admin/sign-in", None, &[]).await.status, 404);
    assert_eq!(send(&off, Method::GET, "/admin/tenants", None, &[]).await.status, 404);
}
