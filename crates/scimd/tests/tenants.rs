//! Tenants as a B2B application uses them: created through the admin API, each with its own
//! URL, tokens and settings, none seeing another's data.

mod common;

use common::{Db, Reply, TestServer};
use reqwest::Method;
use scimd_core::tokens::{Scope, TokenRequest, create_token};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// The admin API of a test server, with an admin token.
struct Admin<'a> {
    s: &'a TestServer,
    token: String,
}

impl Admin<'_> {
    async fn new(s: &TestServer) -> Admin<'_> {
        let req = TokenRequest { scope: Scope::Admin, tenant: "", name: "test", secret: None, expires: None };
        let token = create_token(s.backend.tokens.as_ref(), req, &now()).await.unwrap().secret;
        Admin { s, token }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.s.at(method, &format!("{}/admin/v1{path}", self.s.root), &self.token, body).await
    }

    /// Creates a tenant; returns its SCIM base URL and first token.
    async fn tenant(&self, slug: &str) -> (String, String) {
        let r = self.call(Method::POST, "/tenants", Some(json!({"slug": slug}))).await;
        assert_eq!(r.status, 201, "{}", r.body);
        (r.body["scim_base_url"].as_str().unwrap().into(), r.body["token"]["secret"].as_str().unwrap().into())
    }
}

fn now() -> String {
    scimd_proto::value::format_datetime(time::OffsetDateTime::now_utc())
}

/// Asserts the admin API's error shape.
fn admin_error(r: &Reply, status: u16, code: &str) {
    assert_eq!(r.status.as_u16(), status, "{}", r.body);
    assert_eq!(r.headers["content-type"], "application/json", "{}", r.body);
    assert_eq!(r.body["status"], status, "{}", r.body);
    assert_eq!(r.body["code"], code, "{}", r.body);
    assert!(r.body["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", r.body);
}

async fn scim(s: &TestServer, method: Method, url: &str, token: &str, body: Option<Value>) -> Reply {
    let bytes = body.map(|b| serde_json::to_vec(&b).unwrap());
    let ct = bytes.as_ref().map(|_| "application/scim+json");
    s.request(method, url, Some(token), ct, bytes, &[]).await
}

fn user(name: &str) -> Value {
    json!({"schemas": [USER], "userName": name})
}

// ---------------------------------------------------------------- the admin API

async fn admin_routes(db: Db) {
    let s = TestServer::on_db(db, "admin_routes", |_| {}).await;
    let admin = Admin::new(&s).await;

    // Only admin tokens open it; an answer without one says nothing else.
    let url = format!("{}/admin/v1/tenants", s.root);
    let anonymous = s.request(Method::GET, &url, None, None, None, &[]).await;
    admin_error(&anonymous, 401, "unauthorized");
    assert_eq!(anonymous.headers["www-authenticate"], "Bearer realm=\"scimd-admin\"");
    admin_error(&s.at(Method::GET, &url, &s.token, None).await, 401, "unauthorized");
    admin_error(&s.at(Method::GET, &url, "scimd_admin_wrong", None).await, 401, "unauthorized");
    // …and admin tokens open nothing else.
    scim(&s, Method::GET, &format!("{}/Users", s.base), &admin.token, None).await.assert_error(401, None);

    // The OpenAPI document is public and describes every route served here.
    let doc = s.request(Method::GET, &format!("{}/admin/v1/openapi.json", s.root), None, None, None, &[]).await;
    assert_eq!(doc.status, 200);
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc.body["openapi"]);
    let mut paths: Vec<&str> = doc.body["paths"].as_object().unwrap().keys().map(String::as_str).collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "/openapi.json",
            "/tenants",
            "/tenants/{slug}",
            "/tenants/{slug}/activity",
            "/tenants/{slug}/disable",
            "/tenants/{slug}/enable",
            "/tenants/{slug}/events",
            "/tenants/{slug}/stats",
            "/tenants/{slug}/streams",
            "/tenants/{slug}/streams/{id}",
            "/tenants/{slug}/streams/{id}/pause",
            "/tenants/{slug}/streams/{id}/replay",
            "/tenants/{slug}/streams/{id}/resume",
            "/tenants/{slug}/streams/{id}/rotate-secret",
            "/tenants/{slug}/tokens",
            "/tenants/{slug}/tokens/{id}",
        ]
    );

    // Create: the SCIM base URL and the first token, which works there at once.
    let created = admin.call(Method::POST, "/tenants", Some(json!({"slug": "acme", "name": "  Acme Corp "}))).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.headers["location"], "/admin/v1/tenants/acme");
    assert_eq!(created.headers["cache-control"], "no-store", "a secret must not be cached");
    let b = &created.body;
    assert_eq!(
        (b["slug"].as_str(), b["name"].as_str(), b["state"].as_str()),
        (Some("acme"), Some("Acme Corp"), Some("active"))
    );
    assert_eq!(b["scim_base_url"], format!("{}/t/acme/scim/v2", s.root));
    let acme_token = b["token"]["secret"].as_str().unwrap().to_string();
    assert!(acme_token.starts_with("scimd_") && !acme_token.starts_with("scimd_admin_"));
    let acme = b["scim_base_url"].as_str().unwrap().to_string();
    let users = scim(&s, Method::GET, &format!("{acme}/Users"), &acme_token, None).await;
    assert_eq!((users.status.as_u16(), users.body["totalResults"].clone()), (200, json!(0)));

    // Refusals, each with its code.
    let post = |body: Value| admin.call(Method::POST, "/tenants", Some(body));
    admin_error(&post(json!({"slug": "acme"})).await, 409, "slug_taken");
    for bad in ["Acme", "-acme", "acme corp", "", "a/b", &"a".repeat(64)] {
        admin_error(&post(json!({"slug": bad})).await, 400, "invalid_slug");
    }
    admin_error(&post(json!({"slug": "ok", "colour": "red"})).await, 400, "invalid_request");
    admin_error(&post(json!({"slug": "ok", "name": ""})).await, 400, "invalid_name");
    admin_error(&post(json!({"slug": "ok", "settings": {"delete_policy": "shred"}})).await, 400, "invalid_request");
    admin_error(&post(json!({"slug": "ok", "settings": {"rate_limit_burst": 0}})).await, 400, "invalid_settings");
    let raw = |ct: Option<&'static str>, body: &'static str| {
        s.request(Method::POST, &url, Some(&admin.token), ct, Some(body.as_bytes().to_vec()), &[])
    };
    admin_error(&raw(Some("application/json"), "{\"slug\": ").await, 400, "invalid_request");
    admin_error(&raw(Some("text/plain"), "{\"slug\": \"ok\"}").await, 415, "unsupported_media_type");
    admin_error(&raw(None, "{\"slug\": \"ok\"}").await, 415, "unsupported_media_type");
    let huge = format!("{{\"slug\": \"ok\", \"name\": \"{}\"}}", "x".repeat(100_000));
    let r = s.request(Method::POST, &url, Some(&admin.token), Some("application/json"), Some(huge.into()), &[]).await;
    admin_error(&r, 413, "too_large");
    assert!(admin.call(Method::GET, "/tenants/ok", None).await.status == 404, "a refused tenant was created");

    // Read and list.
    let one = admin.call(Method::GET, "/tenants/acme", None).await;
    assert_eq!((one.status.as_u16(), one.body["name"].as_str()), (200, Some("Acme Corp")));
    assert!(one.body.get("token").is_none());
    admin_error(&admin.call(Method::GET, "/tenants/nobody", None).await, 404, "not_found");
    let list = admin.call(Method::GET, "/tenants", None).await;
    let slugs: Vec<&str> =
        list.body["tenants"].as_array().unwrap().iter().map(|t| t["slug"].as_str().unwrap()).collect();
    assert_eq!(slugs, ["acme", "default"]);

    // Update: the name and settings; null returns a setting to the server's.
    let patch = |body: Value| admin.call(Method::PATCH, "/tenants/acme", Some(body));
    let r =
        patch(json!({"name": "Acme Inc.", "settings": {"delete_policy": "deactivate", "rate_limit_per_second": 50}}))
            .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["name"], "Acme Inc.");
    assert_eq!(r.body["settings"], json!({"delete_policy": "deactivate", "rate_limit_per_second": 50.0}));
    let r = patch(json!({"settings": {"rate_limit_per_second": null}})).await;
    assert_eq!(r.body["settings"], json!({"delete_policy": "deactivate"}), "{}", r.body);
    admin_error(&patch(json!({"settings": {"delete_policy": "shred"}})).await, 400, "invalid_settings");
    admin_error(&patch(json!({"settings": {"colour": "red"}})).await, 400, "invalid_settings");
    admin_error(&patch(json!({"slug": "renamed"})).await, 400, "invalid_request");
    admin_error(&patch(json!({"name": "\u{7}"})).await, 400, "invalid_name");
    admin_error(&admin.call(Method::PATCH, "/tenants/nobody", Some(json!({"name": "x"}))).await, 404, "not_found");
    assert_eq!(
        admin.call(Method::GET, "/tenants/acme", None).await.body["name"],
        "Acme Inc.",
        "a refused update wrote"
    );

    // Stats: the tenant's own counts and its last SCIM request.
    for (name, active) in [("ada", true), ("grace", false)] {
        let body = json!({"schemas": [USER], "userName": name, "active": active});
        assert_eq!(scim(&s, Method::POST, &format!("{acme}/Users"), &acme_token, Some(body)).await.status, 201);
    }
    let g = json!({"schemas": [GROUP], "displayName": "Staff"});
    assert_eq!(scim(&s, Method::POST, &format!("{acme}/Groups"), &acme_token, Some(g)).await.status, 201);
    assert_eq!(s.post("/Users", user("default-only")).await.status, 201);
    let stats = admin.call(Method::GET, "/tenants/acme/stats", None).await;
    assert_eq!(stats.status, 200, "{}", stats.body);
    assert_eq!(
        (&stats.body["users"], &stats.body["active_users"], &stats.body["groups"]),
        (&json!(2), &json!(1), &json!(1))
    );
    let last = poll(
        || async { admin.call(Method::GET, "/tenants/acme/stats", None).await.body["last_request"].clone() },
        |v| v.is_string(),
    )
    .await;
    assert!(last.as_str().unwrap().starts_with(&now()[..10]), "{last}");
    admin_error(&admin.call(Method::GET, "/tenants/nobody/stats", None).await, 404, "not_found");

    // Tokens: a second one for rotation, with an expiry; listed without secrets; revoked.
    let r =
        admin.call(Method::POST, "/tenants/acme/tokens", Some(json!({"name": "rotation", "expires_in": "90d"}))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let second = r.body["secret"].as_str().unwrap().to_string();
    let expires = time::OffsetDateTime::parse(
        r.body["expires"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let days = (expires - time::OffsetDateTime::now_utc()).whole_hours();
    assert!((89 * 24..=90 * 24).contains(&days), "expires in {days} hours");
    assert_eq!(scim(&s, Method::GET, &format!("{acme}/Users"), &second, None).await.status, 200);
    assert_eq!(
        scim(&s, Method::GET, &format!("{acme}/Users"), &acme_token, None).await.status,
        200,
        "rotation keeps the first"
    );
    let listed = admin.call(Method::GET, "/tenants/acme/tokens", None).await;
    let tokens = listed.body["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 2);
    assert!(!listed.body.to_string().contains(&second) && !listed.body.to_string().contains(&acme_token));
    assert!(tokens.iter().all(|t| t.get("secret").is_none() && t.get("hash").is_none()));
    let first_id = tokens.iter().find(|t| t["name"] == "initial").unwrap()["id"].as_str().unwrap().to_string();
    let used = poll(
        || async {
            let l = admin.call(Method::GET, "/tenants/acme/tokens", None).await;
            l.body["tokens"].as_array().unwrap().iter().find(|t| t["name"] == "initial").unwrap()["last_used"].clone()
        },
        |v| v.is_string(),
    )
    .await;
    assert!(used.as_str().unwrap().starts_with(&now()[..10]));
    let revoke = admin.call(Method::DELETE, &format!("/tenants/acme/tokens/{first_id}"), None).await;
    assert_eq!(revoke.status, 204);
    scim(&s, Method::GET, &format!("{acme}/Users"), &acme_token, None).await.assert_error(401, None);
    assert_eq!(scim(&s, Method::GET, &format!("{acme}/Users"), &second, None).await.status, 200);
    admin_error(&admin.call(Method::DELETE, &format!("/tenants/acme/tokens/{first_id}"), None).await, 404, "not_found");
    admin_error(
        &admin.call(Method::DELETE, &format!("/tenants/default/tokens/{first_id}"), None).await,
        404,
        "not_found",
    );
    for bad in ["forever", "90", "0d", "-1d", "99999999999999w", "3651d"] {
        let r = admin.call(Method::POST, "/tenants/acme/tokens", Some(json!({"expires_in": bad}))).await;
        admin_error(&r, 400, "invalid_expiry");
    }
    admin_error(&admin.call(Method::POST, "/tenants/nobody/tokens", Some(json!({}))).await, 404, "not_found");
    admin_error(&admin.call(Method::GET, "/tenants/nobody/tokens", None).await, 404, "not_found");

    // Disable and enable: the token answers as a wrong one meanwhile; the data stays.
    let r = admin.call(Method::POST, "/tenants/acme/disable", None).await;
    assert_eq!((r.status.as_u16(), r.body["state"].as_str()), (200, Some("disabled")));
    let refused = scim(&s, Method::GET, &format!("{acme}/Users"), &second, None).await;
    let wrong = scim(&s, Method::GET, &format!("{acme}/Users"), "scimd_wrong", None).await;
    assert_eq!((refused.status, &refused.body), (wrong.status, &wrong.body));
    assert_eq!(refused.headers.get("www-authenticate"), wrong.headers.get("www-authenticate"));
    let r = admin.call(Method::POST, "/tenants/acme/enable", None).await;
    assert_eq!((r.status.as_u16(), r.body["state"].as_str()), (200, Some("active")));
    assert_eq!(scim(&s, Method::GET, &format!("{acme}/Users"), &second, None).await.body["totalResults"], 2);
    admin_error(&admin.call(Method::POST, "/tenants/nobody/disable", None).await, 404, "not_found");
    admin_error(&admin.call(Method::POST, "/tenants/nobody/enable", None).await, 404, "not_found");

    // Anything else is a JSON error too.
    let r = admin.call(Method::PUT, "/tenants/acme", Some(json!({}))).await;
    admin_error(&r, 405, "method_not_allowed");
    admin_error(&admin.call(Method::GET, "/nothing", None).await, 404, "not_found");

    // Delete erases the tenant and nothing of another's.
    assert_eq!(admin.call(Method::DELETE, "/tenants/acme", None).await.status, 204);
    scim(&s, Method::GET, &format!("{acme}/Users"), &second, None).await.assert_error(401, None);
    admin_error(&admin.call(Method::GET, "/tenants/acme", None).await, 404, "not_found");
    admin_error(&admin.call(Method::DELETE, "/tenants/acme", None).await, 404, "not_found");
    assert_eq!(s.get("/Users").await.body["totalResults"], 1);
    // The slug can be taken again, and the new tenant starts empty.
    let (again, token) = admin.tenant("acme").await;
    assert_eq!(scim(&s, Method::GET, &format!("{again}/Users"), &token, None).await.body["totalResults"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_on_sqlite() {
    admin_routes(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn admin_api_on_postgres() {
    admin_routes(Db::Postgres).await;
}

/// Calls `read` until `done` holds of its answer, for up to two seconds (writes that happen
/// off the request's path); returns the last answer.
async fn poll<F, Fut>(read: F, done: impl Fn(&Value) -> bool) -> Value
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Value>,
{
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let v = read().await;
        if done(&v) || Instant::now() > deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn the_admin_api_can_be_switched_off() {
    let s = TestServer::with(|c| c.admin_api = false).await;
    let admin = Admin::new(&s).await;
    let r = admin.call(Method::GET, "/tenants", None).await;
    assert_eq!(r.status, 404);
    assert_eq!(admin.call(Method::GET, "/openapi.json", None).await.status, 404);
}

// ---------------------------------------------------------------- URLs and isolation

#[tokio::test]
async fn each_tenant_has_its_url_and_sees_only_its_data() {
    let s = TestServer::start().await;
    let admin = Admin::new(&s).await;
    let (acme, acme_token) = admin.tenant("acme").await;
    let default = format!("{}/t/default/scim/v2", s.root);

    // The same userName in two tenants.
    let ours =
        s.post("/Users", json!({"schemas": [USER], "userName": "ada@example.com", "title": "default-only"})).await;
    assert_eq!(ours.status, 201);
    let ours_id = ours.body["id"].as_str().unwrap().to_string();
    let theirs = scim(&s, Method::POST, &format!("{acme}/Users"), &acme_token, Some(user("ADA@example.com"))).await;
    assert_eq!(theirs.status, 201, "{}", theirs.body);
    let theirs_id = theirs.body["id"].as_str().unwrap().to_string();

    // Locations carry the URL the request came in on, `$ref`s too.
    assert_eq!(theirs.headers["location"], format!("{acme}/Users/{theirs_id}"));
    let team = json!({"schemas": [GROUP], "displayName": "Team", "members": [{"value": theirs_id}]});
    let team = scim(&s, Method::POST, &format!("{acme}/Groups"), &acme_token, Some(team)).await;
    assert_eq!(team.body["members"][0]["$ref"], format!("{acme}/Users/{theirs_id}"), "{}", team.body);
    let team_id = team.body["id"].as_str().unwrap().to_string();
    let via_root = scim(&s, Method::GET, &format!("{}/Groups/{team_id}", s.base), &acme_token, None).await;
    assert_eq!(via_root.body["members"][0]["$ref"], format!("{}/Users/{theirs_id}", s.base));
    assert_eq!(theirs.body["meta"]["location"], format!("{acme}/Users/{theirs_id}"));
    let via_root = scim(&s, Method::GET, &format!("{}/Users/{theirs_id}", s.base), &acme_token, None).await;
    assert_eq!(
        via_root.body["meta"]["location"],
        format!("{}/Users/{theirs_id}", s.base),
        "/scim/v2 serves the token's tenant"
    );
    let via_tenant = scim(&s, Method::GET, &format!("{default}/Users/{ours_id}"), &s.token, None).await;
    assert_eq!(via_tenant.body["meta"]["location"], format!("{default}/Users/{ours_id}"), "{}", via_tenant.body);

    // A token on another tenant's URL (or an unknown one's) is a wrong token.
    let wrong = scim(&s, Method::GET, &format!("{acme}/Users"), "scimd_nope", None).await;
    wrong.assert_error(401, None);
    for (url, token) in [
        (format!("{acme}/Users"), &s.token),
        (format!("{default}/Users"), &acme_token),
        (format!("{}/t/nobody/scim/v2/Users", s.root), &acme_token),
        (format!("{acme}/Users/{theirs_id}"), &s.token),
        (format!("{acme}/ServiceProviderConfig"), &s.token),
    ] {
        let r = scim(&s, Method::GET, &url, token, None).await;
        assert_eq!((r.status, &r.body), (wrong.status, &wrong.body), "{url}");
        assert_eq!(r.headers.get("www-authenticate"), wrong.headers.get("www-authenticate"));
    }

    // Reads, filters, searches and sorts see the tenant's own.
    let get = async |url: String| scim(&s, Method::GET, &url, &acme_token, None).await;
    assert_eq!(get(format!("{acme}/Users/{ours_id}")).await.status, 404);
    let all = get(format!("{acme}/Users?sortBy=userName")).await;
    assert_eq!(all.body["totalResults"], 1);
    assert_eq!(all.body["Resources"][0]["id"], json!(theirs_id));
    let filtered = get(format!("{acme}/Users?filter=title%20eq%20%22default-only%22")).await;
    assert_eq!(filtered.body["totalResults"], 0);
    let by_id = get(format!("{acme}/Users?filter=id%20eq%20%22{ours_id}%22")).await;
    assert_eq!(by_id.body["totalResults"], 0);
    let search = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "userName pr"});
    for path in ["/.search", "/Users/.search"] {
        let r = scim(&s, Method::POST, &format!("{acme}{path}"), &acme_token, Some(search.clone())).await;
        assert_eq!(r.body["totalResults"], 1, "{path}: {}", r.body);
        assert!(!r.body.to_string().contains(&ours_id));
    }

    // Another tenant's id as a member is an unknown id, in every form.
    let unknown = uuid::Uuid::new_v4().to_string();
    let group = |members: &[&str]| {
        let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
        json!({"schemas": [GROUP], "displayName": "Admins", "members": members})
    };
    let foreign = scim(&s, Method::POST, &format!("{acme}/Groups"), &acme_token, Some(group(&[&ours_id]))).await;
    let random = scim(&s, Method::POST, &format!("{acme}/Groups"), &acme_token, Some(group(&[&unknown]))).await;
    assert_eq!(foreign.status, random.status);
    assert_eq!(foreign.body["scimType"], random.body["scimType"]);
    let g = scim(&s, Method::POST, &format!("{acme}/Groups"), &acme_token, Some(group(&[&theirs_id]))).await;
    let g_id = g.body["id"].as_str().unwrap_or_else(|| panic!("{}", g.body)).to_string();
    let add = |value: &str| {
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
               "Operations": [{"op": "add", "path": "members", "value": [{"value": value}]}]})
    };
    let foreign = scim(&s, Method::PATCH, &format!("{acme}/Groups/{g_id}"), &acme_token, Some(add(&ours_id))).await;
    let random = scim(&s, Method::PATCH, &format!("{acme}/Groups/{g_id}"), &acme_token, Some(add(&unknown))).await;
    assert_eq!((foreign.status, &foreign.body["scimType"]), (random.status, &random.body["scimType"]));
    let members = get(format!("{acme}/Groups/{g_id}")).await.body["members"].clone();
    assert_eq!(members.as_array().map(Vec::len), Some(1), "{members}");
    assert!(!s.get(&format!("/Users/{ours_id}")).await.body.to_string().contains(&g_id));

    // Writes to another tenant's ids find nothing.
    let r = scim(&s, Method::DELETE, &format!("{acme}/Users/{ours_id}"), &acme_token, None).await;
    r.assert_error(404, None);
    let r = scim(&s, Method::PUT, &format!("{acme}/Users/{ours_id}"), &acme_token, Some(user("x"))).await;
    r.assert_error(404, None);
    assert_eq!(s.get(&format!("/Users/{ours_id}")).await.body["userName"], "ada@example.com");
}

/// Behind a proxy (`base_url`), a tenant's locations are the public URL with `/t/{tenant}`
/// before the prefix, in `meta.location`, `Location` and every `$ref`.
#[tokio::test]
async fn a_configured_base_url_holds_for_tenant_urls() {
    let s = TestServer::with(|c| c.base_url = Some("https://scim.example.com/scim/v2".into())).await;
    let admin = Admin::new(&s).await;
    let created = admin.call(Method::POST, "/tenants", Some(json!({"slug": "acme"}))).await;
    assert_eq!(created.body["scim_base_url"], "https://scim.example.com/t/acme/scim/v2");
    let token = created.body["token"]["secret"].as_str().unwrap().to_string();
    let local = format!("{}/t/acme/scim/v2", s.root);
    let public = "https://scim.example.com/t/acme/scim/v2";
    let u = scim(&s, Method::POST, &format!("{local}/Users"), &token, Some(user("ada"))).await;
    let id = u.body["id"].as_str().unwrap().to_string();
    assert_eq!(u.headers["location"], format!("{public}/Users/{id}"));
    assert_eq!(u.body["meta"]["location"], format!("{public}/Users/{id}"));
    let g = json!({"schemas": [GROUP], "displayName": "Staff", "members": [{"value": id}]});
    let g = scim(&s, Method::POST, &format!("{local}/Groups"), &token, Some(g)).await;
    assert_eq!(g.body["members"][0]["$ref"], format!("{public}/Users/{id}"));
    let read = scim(&s, Method::GET, &format!("{local}/Users/{id}"), &token, None).await;
    assert_eq!(read.body["groups"][0]["$ref"], format!("{public}/Groups/{}", g.body["id"].as_str().unwrap()));
    // /scim/v2 keeps the configured URL as it is.
    let root = scim(&s, Method::GET, &format!("{}/Users/{id}", s.base), &token, None).await;
    assert_eq!(root.body["meta"]["location"], format!("https://scim.example.com/scim/v2/Users/{id}"));
    let spc = scim(&s, Method::GET, &format!("{local}/ServiceProviderConfig"), &token, None).await;
    assert_eq!(spc.body["meta"]["location"], format!("{public}/ServiceProviderConfig"));
}

#[tokio::test]
async fn tenant_settings_apply_to_its_requests_only() {
    let s = TestServer::start().await;
    let admin = Admin::new(&s).await;
    let (acme, token) = admin.tenant("acme").await;
    let (beta, beta_token) = admin.tenant("beta").await;
    let settings = json!({"settings": {"delete_policy": "deactivate"}});
    assert_eq!(admin.call(Method::PATCH, "/tenants/acme", Some(settings)).await.status, 200);
    let settings = json!({"settings": {"rate_limit_per_second": 0.5, "rate_limit_burst": 4}});
    assert_eq!(admin.call(Method::PATCH, "/tenants/beta", Some(settings)).await.status, 200);
    // No wait: settings are read with the token, on every request.

    // Its delete policy: a deleted user stays, deactivated. The server's (retire) elsewhere.
    let id = scim(&s, Method::POST, &format!("{acme}/Users"), &token, Some(user("ada"))).await.body["id"].clone();
    let url = format!("{acme}/Users/{}", id.as_str().unwrap());
    let deleted = scim(&s, Method::DELETE, &url, &token, None).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    let kept = scim(&s, Method::GET, &url, &token, None).await;
    assert_eq!((kept.status.as_u16(), &kept.body["active"]), (200, &json!(false)));
    let ours = s.user("grace").await;
    assert_eq!(s.delete(&format!("/Users/{ours}")).await.status, 204);
    s.get(&format!("/Users/{ours}")).await.assert_error(404, None);

    // Its rate limit: a burst of four, then 429 with Retry-After; other tenants are not
    // slowed.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(scim(&s, Method::GET, &format!("{beta}/Users"), &beta_token, None).await.status.as_u16());
    }
    let limited = scim(&s, Method::GET, &format!("{beta}/Users"), &beta_token, None).await;
    assert_eq!(statuses, [200, 200, 200, 200]);
    limited.assert_error(429, None);
    assert!(limited.headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    for _ in 0..20 {
        assert_eq!(s.get("/Users").await.status, 200);
        assert_eq!(scim(&s, Method::GET, &format!("{acme}/Users"), &token, None).await.status, 200);
    }
}

#[tokio::test]
async fn tokens_expire() {
    let s = TestServer::start().await;
    let soon = time::OffsetDateTime::now_utc() + Duration::from_millis(1500);
    let expires = Some(scimd_proto::value::format_datetime(soon));
    let req = TokenRequest { scope: Scope::Scim, tenant: "default", name: "short", secret: None, expires };
    let token = create_token(s.backend.tokens.as_ref(), req, &now()).await.unwrap().secret;
    let url = format!("{}/Users", s.base);
    let get = || s.request(Method::GET, &url, Some(&token), None, None, &[]);
    assert_eq!(get().await.status, 200);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    get().await.assert_error(401, None);
    assert_eq!(s.get("/Users").await.status, 200, "another token is not affected");
}

/// Two replicas on one PostgreSQL database: a token revoked through one is refused by the
/// other within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn revocation_reaches_every_replica_within_a_second() {
    let a = TestServer::on_db(Db::Postgres, "revocation", |_| {}).await;
    let b = TestServer::on(a.config.clone(), tempfile::tempdir().unwrap(), Some(a.token.clone())).await;
    let admin = Admin::new(&a).await;
    let (_, token) = admin.tenant("acme").await;
    let on_b = format!("{}/t/acme/scim/v2/Users", b.root);
    assert_eq!(scim(&b, Method::GET, &on_b, &token, None).await.status, 200);
    let tokens = admin.call(Method::GET, "/tenants/acme/tokens", None).await;
    let id = tokens.body["tokens"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(admin.call(Method::DELETE, &format!("/tenants/acme/tokens/{id}"), None).await.status, 204);
    let revoked = Instant::now();
    loop {
        let status = scim(&b, Method::GET, &on_b, &token, None).await.status;
        if status == 401 {
            break;
        }
        assert!(revoked.elapsed() < Duration::from_secs(1), "replica b still accepts the token: {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Disabling the tenant, too.
    let (_, token) = admin.tenant("beta").await;
    let on_b = format!("{}/t/beta/scim/v2/Users", b.root);
    assert_eq!(scim(&b, Method::GET, &on_b, &token, None).await.status, 200);
    assert_eq!(admin.call(Method::POST, "/tenants/beta/disable", None).await.status, 200);
    let disabled = Instant::now();
    while scim(&b, Method::GET, &on_b, &token, None).await.status != 401 {
        assert!(disabled.elapsed() < Duration::from_secs(1), "replica b still serves a disabled tenant");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A request of a tenant's that was under way when the tenant was deleted, and wrote after
/// the erasure (here: a user written straight to the store after the deletion), leaves
/// nothing for long: the servers' upkeep erases it once no such request can still be running
/// (`request_timeout_secs`, on PostgreSQL `pg_idle_in_transaction_timeout_secs`, plus ten
/// seconds: 12 s here), and not before.
async fn late_writes_of_a_deleted_tenant_are_swept(db: Db) {
    use scimd_core::Kind;
    use scimd_core::events::no_events;
    use scimd_core::store::NewResource;
    let s = TestServer::on_db(db, "late_writes_swept", |c| {
        c.request_timeout_secs = 1;
        c.pg_idle_in_transaction_timeout_secs = 2;
    })
    .await;
    let admin = Admin::new(&s).await;
    admin.tenant("leaving").await;
    let r = admin.call(Method::DELETE, "/tenants/leaving", None).await;
    assert_eq!(r.status, 204, "{}", r.body);
    let deleted = Instant::now();
    let attributes = json!({"userName": "late"}).as_object().unwrap().clone();
    let late = NewResource { id: "late-user".into(), attributes, members: vec![], now: now() };
    s.backend.store.create("leaving", Kind::User, late, &no_events).await.unwrap();
    let there = || async { s.backend.store.get("leaving", Kind::User, "late-user", false).await.unwrap().is_some() };

    // The upkeep runs its jobs when started, then every minute: started at once, too early.
    let upkeep = |stop: &tokio::sync::watch::Receiver<bool>| scimd::upkeep::spawn(&s.config, &s.backend, stop);
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let early = upkeep(&stopping);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(there().await, "not swept while a request of the tenant could still be running");
    stop.send(true).unwrap();
    for job in early {
        job.await.unwrap();
    }

    let wait = Duration::from_secs(13).saturating_sub(deleted.elapsed());
    tokio::time::sleep(wait).await;
    let (_stop, stopping) = tokio::sync::watch::channel(false);
    let _late = upkeep(&stopping);
    let deadline = Instant::now() + Duration::from_secs(10);
    while there().await {
        assert!(Instant::now() < deadline, "the leftover was not swept");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The default tenant's data is untouched.
    assert_eq!(s.get("/Users").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_writes_of_a_deleted_tenant_are_swept_on_sqlite() {
    late_writes_of_a_deleted_tenant_are_swept(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn late_writes_of_a_deleted_tenant_are_swept_on_postgres() {
    late_writes_of_a_deleted_tenant_are_swept(Db::Postgres).await;
}
