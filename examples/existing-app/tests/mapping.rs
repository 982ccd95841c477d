//! The mapped mode over real HTTP: SCIM onto the example application's own tables, on
//! SQLite, and PostgreSQL with `SCIMD_TEST_POSTGRES_URL` (without it, reported as ignored).

use axum::http::request::Parts;
use existing_app::{APP_EXTENSION, Db, ProfileLinks, app, registry, scim_store};
use scimd_axum::auth::{AuthError, FnAuthenticator, Principal};
use scimd_axum::{ScimConfig, ScimService};
use scimd_core::{Engine, Settings};
use serde_json::{Value, json};
use sqlx::Row;
use std::sync::Arc;

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const TOKEN: &str = "app-secret";

struct Running {
    base: String,
    client: reqwest::Client,
    db: Db,
    _dir: Option<tempfile::TempDir>,
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

async fn on_sqlite() -> Running {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("app.db").display());
    let (router, db) = app(&url, TOKEN).await.unwrap();
    Running { base: serve(router).await, client: reqwest::Client::new(), db, _dir: Some(dir) }
}

async fn on_postgres(name: &str) -> Running {
    let admin = std::env::var("SCIMD_TEST_POSTGRES_URL").expect("SCIMD_TEST_POSTGRES_URL names a PostgreSQL database");
    let db_name = format!("ea_{name}_{}", std::process::id());
    let pool = sqlx::PgPool::connect(&admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {db_name}"))).execute(&pool).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db_name}"))).execute(&pool).await.unwrap();
    let url = format!("{}/{db_name}", admin.rsplit_once('/').unwrap().0);
    let (router, db) = app(&url, TOKEN).await.unwrap();
    Running { base: serve(router).await, client: reqwest::Client::new(), db, _dir: None }
}

impl Running {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base)).bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.header("Content-Type", "application/scim+json").body(b.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    }
    async fn app_users(&self) -> Vec<Value> {
        self.db.users().await.unwrap()
    }
    async fn app_count(&self, sql: &'static str) -> i64 {
        match &self.db {
            Db::Sqlite(p) => sqlx::query(sql).fetch_one(p).await.unwrap().get(0),
            Db::Postgres(p) => sqlx::query(sql).fetch_one(p).await.unwrap().get(0),
        }
    }
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Everything the application keeps about its users, as its own endpoint shows it.
async fn full_cycle(r: Running) {
    let seeded = r.app_users().await;
    assert_eq!(seeded.len(), 3);

    // The application's rows are SCIM resources, with the row's key as id.
    let ada = r.get("/scim/v2/Users/1").await;
    assert_eq!(ada["userName"], "ada@app.example");
    assert_eq!(ada["name"], json!({"givenName": "Ada", "familyName": "Lovelace"}));
    assert_eq!(ada["active"], true);
    assert_eq!(ada["emails"], json!([{"value": "ada@app.example", "type": "work", "primary": true}]));
    assert_eq!(ada["groups"][0]["display"], "Founders");
    assert_eq!(r.get("/scim/v2/Users/3").await["active"], false);

    // Filters on mapped columns (case-insensitively where SCIM says so), and sorting.
    let count = |q: String| {
        let r = &r;
        async move { r.get(&format!("/scim/v2/Users?filter={}", enc(&q))).await["totalResults"].as_u64().unwrap() }
    };
    assert_eq!(count(r#"userName eq "ADA@APP.EXAMPLE""#.into()).await, 1);
    assert_eq!(count(r#"name.familyName sw "hop""#.into()).await, 1);
    assert_eq!(count("active eq false".into()).await, 1);
    assert_eq!(count(r#"groups.display eq "founders""#.into()).await, 2);
    let sorted = r.get("/scim/v2/Users?sortBy=name.familyName&sortOrder=descending&attributes=name.familyName").await;
    let names: Vec<&str> =
        sorted["Resources"].as_array().unwrap().iter().map(|u| u["name"]["familyName"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["Turing", "Lovelace", "Hopper"]);

    // Provisioning writes the application's row; what it has no column for goes aside.
    let (status, created) = r
        .call(
            reqwest::Method::POST,
            "/scim/v2/Users",
            Some(json!({"schemas": [USER, APP_EXTENSION], "userName": "Linus@App.Example", "externalId": "idp-7",
                "name": {"givenName": "Linus", "familyName": "Torvalds"}, "title": "Kernel",
                APP_EXTENSION: {"slackHandle": "@linus"}})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let row =
        r.app_users().await.into_iter().find(|u| u["email"] == "Linus@App.Example").expect("a row in the app's table");
    assert_eq!(
        (row["first_name"].as_str(), row["last_name"].as_str(), row["is_active"].as_bool()),
        (Some("Linus"), Some("Torvalds"), Some(true))
    );
    assert_eq!(row["id"].to_string(), id, "the SCIM id is the row's key");
    assert!(created.get("active").is_none(), "active was not given: SCIM reads what it wrote");
    assert_eq!(count(r#"title eq "kernel""#.into()).await, 1, "unmapped attributes filter through the side table");
    assert_eq!(count(format!(r#"{APP_EXTENSION}:slackHandle eq "@linus""#)).await, 1);
    assert_eq!(count(r#"externalId eq "idp-7""#.into()).await, 1);
    let (status, dup) = r
        .call(reqwest::Method::POST, "/scim/v2/Users", Some(json!({"schemas": [USER], "userName": "ADA@app.example"})))
        .await;
    assert_eq!((status, dup["scimType"].as_str()), (409, Some("uniqueness")));

    // Groups and memberships land in the application's tables.
    let (status, group) = r
        .call(
            reqwest::Method::POST,
            "/scim/v2/Groups",
            Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Kernel Team", "members": [{"value": id}, {"value": "2"}]})),
        )
        .await;
    assert_eq!(status, 201, "{group}");
    assert_eq!(group["members"].as_array().unwrap().len(), 2);
    assert_eq!(
        r.app_count(
            "SELECT COUNT(*) FROM group_members WHERE group_id = (SELECT id FROM groups WHERE name = 'Kernel Team')"
        )
        .await,
        2
    );
    let (status, _) = r.call(reqwest::Method::PATCH, &format!("/scim/v2/Groups/{}", group["id"].as_str().unwrap()),
        Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "remove", "path": "members[value eq \"2\"]"}]}))).await;
    assert_eq!(status, 204, "a group PATCH without attributes answers No Content");
    assert_eq!(
        r.app_count("SELECT COUNT(*) FROM group_members WHERE user_id = 2").await,
        1,
        "Grace is still a Founder"
    );

    // Deactivation and deletion: the application's row stays, with is_active false.
    let (status, patched) = r.call(reqwest::Method::PATCH, &format!("/scim/v2/Users/{id}"),
        Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "value": {"active": false}}]}))).await;
    assert_eq!((status, &patched["active"]), (200, &json!(false)));
    let (status, _) = r.call(reqwest::Method::DELETE, &format!("/scim/v2/Users/{id}"), None).await;
    assert_eq!(status, 204);
    let (status, _) = r.call(reqwest::Method::GET, &format!("/scim/v2/Users/{id}"), None).await;
    assert_eq!(status, 404);
    let row = r.app_users().await.into_iter().find(|u| u["email"] == "Linus@App.Example").expect("the row is kept");
    assert_eq!(row["is_active"], false);
    assert_eq!(r.app_count("SELECT COUNT(*) FROM group_members WHERE user_id NOT IN (1, 2)").await, 0);

    // The application heard of both through its event tail, once each, in order.
    let mut revoked = Value::Null;
    for _ in 0..50 {
        revoked = r.get("/access-revocations").await;
        if revoked.as_array().is_some_and(|a| a.len() == 2) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let reasons: Vec<(&str, &str)> = revoked
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["user_id"].as_str().unwrap(), v["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(reasons, vec![(id.as_str(), "deactivated"), (id.as_str(), "deleted")], "{revoked}");

    // The application's own rows are as they were (Grace left a SCIM group, not Founders).
    let after = r.app_users().await;
    for before in &seeded {
        let now = after.iter().find(|u| u["id"] == before["id"]).unwrap();
        assert_eq!(now, before);
    }
}

/// Each organisation's identity provider sees and writes its organisation's rows only.
async fn organisations_are_tenants(r: Running) {
    const GLOBEX: &str = "globex-secret";
    let globex = r.db.add_organization("Globex", GLOBEX).await.unwrap();
    let call = |token: &'static str, method: reqwest::Method, path: String, body: Option<Value>| {
        let r = &r;
        async move {
            let mut req = r.client.request(method, format!("{}{path}", r.base)).bearer_auth(token);
            if let Some(b) = body {
                req = req.header("Content-Type", "application/scim+json").body(b.to_string());
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, serde_json::from_str::<Value>(&resp.text().await.unwrap()).unwrap_or(Value::Null))
        }
    };
    let list = call(GLOBEX, reqwest::Method::GET, "/scim/v2/Users".into(), None).await;
    assert_eq!(list.1["totalResults"], 0, "a new organisation sees none of Acme's users");
    // The same email in two organisations: the application's unique index is per organisation.
    let ada = json!({"schemas": [USER], "userName": "ada@app.example"});
    let (status, created) = call(GLOBEX, reqwest::Method::POST, "/scim/v2/Users".into(), Some(ada)).await;
    assert_eq!(status, 201, "{created}");
    let globex_ada = created["id"].as_str().unwrap().to_string();
    let row = r.app_users().await.into_iter().find(|u| u["id"].as_i64() == globex_ada.parse().ok()).unwrap();
    assert_eq!(row["organization_id"], globex, "written with the organisation the token names");
    let filter = format!("/scim/v2/Users?filter={}", enc(r#"userName eq "ada@app.example""#));
    let acme = r.get(&filter).await;
    assert_eq!((acme["totalResults"].clone(), acme["Resources"][0]["id"].clone()), (json!(1), json!("1")));
    let theirs = call(GLOBEX, reqwest::Method::GET, filter, None).await.1;
    assert_eq!(theirs["Resources"][0]["id"], json!(globex_ada));
    // Acme's rows are not Globex's to read, change, delete or make members.
    for (method, path) in [
        (reqwest::Method::GET, "/scim/v2/Users/1"),
        (reqwest::Method::DELETE, "/scim/v2/Users/2"),
        (reqwest::Method::GET, "/scim/v2/Groups/1"),
    ] {
        assert_eq!(call(GLOBEX, method, path.into(), None).await.0, 404, "{path}");
    }
    let group = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Founders",
                       "members": [{"value": "1"}]});
    let (status, body) = call(GLOBEX, reqwest::Method::POST, "/scim/v2/Groups".into(), Some(group)).await;
    assert_eq!((status, body["scimType"].as_str()), (400, Some("invalidValue")), "{body}");
    let group = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Founders",
                       "members": [{"value": globex_ada}]});
    let (status, body) = call(GLOBEX, reqwest::Method::POST, "/scim/v2/Groups".into(), Some(group)).await;
    assert_eq!(status, 201, "a group name of Acme's is free in Globex: {body}");
    assert_eq!(r.get("/scim/v2/Groups").await["totalResults"], 1, "Acme still has only its Founders");
    assert_eq!(r.get("/scim/v2/Users/2").await["userName"], "grace@app.example");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organisations_on_sqlite() {
    organisations_are_tenants(on_sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn organisations_on_postgres() {
    organisations_are_tenants(on_postgres("orgs").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapped_mode_on_sqlite() {
    full_cycle(on_sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn mapped_mode_on_postgres() {
    full_cycle(on_postgres("cycle").await).await;
}

/// An adapter that adds an attribute of the application's own, published in `/Schemas`.
#[tokio::test]
async fn an_adapter_adds_an_attribute() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("app.db").display());
    let db = Db::open(&url).await.unwrap();
    db.seed().await.unwrap();
    let mut reg = registry();
    reg.add_schema_json(
        r#"{"id": "urn:example:links:1.0:User", "name": "Links",
            "attributes": [{"name": "profilePage", "type": "reference", "referenceTypes": ["external"], "mutability": "readOnly"}]}"#,
    )
    .unwrap();
    reg.add_extension("User", "urn:example:links:1.0:User", false).unwrap();
    let (store, _) = scim_store(&url, &reg).await.unwrap();
    struct Links;
    impl scimd_core::Adapter for Links {
        fn to_scim(&self, kind: scimd_core::Kind, id: &str, attributes: &mut serde_json::Map<String, Value>) {
            if kind == scimd_core::Kind::User {
                attributes.insert(
                    "urn:example:links:1.0:User".into(),
                    json!({"profilePage": format!("https://app.example/users/{id}")}),
                );
            }
        }
    }
    let engine = Engine::new(Arc::new(reg), store, Settings::default()).with_adapter(Arc::new(Links));
    let auth = FnAuthenticator(|_: &Parts| Ok(Principal::new("1", "test")));
    let base = serve(
        axum::Router::new()
            .nest("/scim/v2", ScimService::new(Arc::new(engine), Arc::new(auth), ScimConfig::default()).router()),
    )
    .await;
    let user: Value = reqwest::get(format!("{base}/scim/v2/Users/2")).await.unwrap().json().await.unwrap();
    assert_eq!(user["urn:example:links:1.0:User"]["profilePage"], "https://app.example/users/2");
    assert!(user["schemas"].as_array().unwrap().contains(&json!("urn:example:links:1.0:User")));
    let schema: Value =
        reqwest::get(format!("{base}/scim/v2/Schemas/urn:example:links:1.0:User")).await.unwrap().json().await.unwrap();
    assert_eq!(schema["attributes"][0]["name"], "profilePage");
    // The example's own adapter does the same with its extension.
    let mut attrs = serde_json::Map::new();
    scimd_core::Adapter::to_scim(&ProfileLinks { base: "https://x".into() }, scimd_core::Kind::User, "9", &mut attrs);
    assert_eq!(attrs[APP_EXTENSION]["profilePage"], "https://x/users/9");
}

/// Authenticators: the example's token, and a closure that refuses.
#[tokio::test]
async fn authenticators_reject() {
    let r = on_sqlite().await;
    let resp = r.client.get(format!("{}/scim/v2/Users", r.base)).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    let resp = r.client.get(format!("{}/scim/v2/Users", r.base)).send().await.unwrap();
    assert_eq!(resp.status(), 401);

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("app.db").display());
    Db::open(&url).await.unwrap();
    let reg = registry();
    let (store, _) = scim_store(&url, &reg).await.unwrap();
    let engine = Engine::new(Arc::new(reg), store, Settings::default());
    let only_admins =
        FnAuthenticator(|parts: &Parts| match parts.headers.get("x-role").and_then(|v| v.to_str().ok()) {
            Some("admin") => Ok(Principal::new("1", "admin")),
            _ => Err(AuthError::Forbidden("SCIM is for administrators".into())),
        });
    let base =
        serve(axum::Router::new().nest(
            "/scim/v2",
            ScimService::new(Arc::new(engine), Arc::new(only_admins), ScimConfig::default()).router(),
        ))
        .await;
    let client = reqwest::Client::new();
    let denied = client.get(format!("{base}/scim/v2/Users")).send().await.unwrap();
    assert_eq!(denied.status(), 403);
    let body: Value = denied.json().await.unwrap();
    assert_eq!(body["status"], "403");
    let allowed = client.get(format!("{base}/scim/v2/Users")).header("x-role", "admin").send().await.unwrap();
    assert_eq!(allowed.status(), 200);
}

/// Until the application chooses an authenticator, the library lets nobody in.
#[tokio::test]
async fn the_library_default_denies() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("app.db").display());
    Db::open(&url).await.unwrap();
    let engine = Arc::new(Engine::new(
        Arc::new(registry()),
        scim_store(&url, &registry()).await.unwrap().0,
        Settings::default(),
    ));
    let base = serve(axum::Router::new().nest("/scim/v2", ScimService::from_engine(engine.clone()).router())).await;
    assert_eq!(reqwest::get(format!("{base}/scim/v2/Users")).await.unwrap().status(), 403);
    let open = FnAuthenticator(|_: &Parts| Ok(Principal::new("1", "t")));
    let scim = ScimService::from_engine(engine).with_authenticator(Arc::new(open));
    let base = serve(axum::Router::new().nest("/scim/v2", scim.router())).await;
    assert_eq!(reqwest::get(format!("{base}/scim/v2/Users")).await.unwrap().status(), 200);
}

/// `/Me` (RFC 7644 §3.11): an application whose authenticator knows which user is calling
/// lets that user read and change itself through `/Me`; a caller that is no user gets 501.
#[tokio::test]
async fn me_is_the_principals_user() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("app.db").display());
    Db::open(&url).await.unwrap().seed().await.unwrap();
    let engine = Engine::new(Arc::new(registry()), scim_store(&url, &registry()).await.unwrap().0, Settings::default());
    let users = FnAuthenticator(|parts: &Parts| {
        let principal = Principal::new("1", "session");
        Ok(match parts.headers.get("x-user").and_then(|v| v.to_str().ok()) {
            Some(id) => principal.with_user(id),
            None => principal,
        })
    });
    let scim = ScimService::new(Arc::new(engine), Arc::new(users), ScimConfig::default());
    let base = format!("{}/scim/v2", serve(axum::Router::new().nest("/scim/v2", scim.router())).await);
    let client = reqwest::Client::new();
    let direct: Value = client.get(format!("{base}/Users/2")).send().await.unwrap().json().await.unwrap();
    let me = client.get(format!("{base}/Me")).header("x-user", "2").send().await.unwrap();
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["id"], "2");
    assert_eq!(me["userName"], direct["userName"]);
    assert!(me["meta"]["location"].as_str().unwrap().ends_with("/Users/2"), "{me}");

    let patched = client
        .patch(format!("{base}/Me"))
        .header("x-user", "2")
        .header("content-type", "application/scim+json")
        .body(
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                   "Operations": [{"op": "replace", "path": "displayName", "value": "Me Myself"}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let after: Value = client.get(format!("{base}/Users/2")).send().await.unwrap().json().await.unwrap();
    assert_eq!(after["displayName"], "Me Myself");
    // Another user's /Me is that user.
    let other: Value =
        client.get(format!("{base}/Me")).header("x-user", "3").send().await.unwrap().json().await.unwrap();
    assert_eq!(other["id"], "3");

    let anonymous = client.get(format!("{base}/Me")).send().await.unwrap();
    assert_eq!(anonymous.status(), 501);
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(body["status"], "501");
    assert_eq!(body["schemas"], json!(["urn:ietf:params:scim:api:messages:2.0:Error"]));
}
