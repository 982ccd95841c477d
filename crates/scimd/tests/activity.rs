//! The provisioning activity log: what an identity provider sent and what it was answered,
//! per tenant, with failed requests' bodies (credentials removed), filters and a bounded
//! history; read through the admin API.

mod common;

use common::{Db, TestServer};
use reqwest::Method;
use scimd_core::tokens::{Scope, TokenRequest, create_token};
use serde_json::{Value, json};
use std::time::Duration;

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const OKTA: &str = "Okta SCIM Client 1.0.0";

async fn admin_token(s: &TestServer) -> String {
    let req = TokenRequest { scope: Scope::Admin, tenant: "", name: "ops", secret: None, expires: None };
    create_token(s.backend.tokens.as_ref(), req, "2026-01-01T00:00:00.000000Z").await.unwrap().secret
}

/// The activity of `tenant` with `query`, once it holds at least `n` records (bounded wait:
/// records are written a moment after their answers).
async fn activity(s: &TestServer, admin: &str, tenant: &str, query: &str, n: usize) -> Value {
    let url = format!("{}/admin/v1/tenants/{tenant}/activity?{query}", s.root);
    for _ in 0..50 {
        let r = s.at(Method::GET, &url, admin, None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        if r.body["activity"].as_array().unwrap().len() >= n {
            return r.body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("fewer than {n} records for {query}");
}

async fn send(s: &TestServer, method: Method, path: &str, body: Option<Value>) -> common::Reply {
    let bytes = body.map(|b| serde_json::to_vec(&b).unwrap());
    let ct = bytes.as_ref().map(|_| "application/scim+json");
    s.raw(method, path, Some(&s.token), ct, bytes, &[("User-Agent", OKTA)]).await
}

async fn what_the_log_keeps(db: Db) {
    let s = TestServer::on_db(db, "activity", |c| c.activity_log = true).await;
    let admin = admin_token(&s).await;
    let created =
        send(&s, Method::POST, "/Users", Some(json!({"schemas": [USER], "userName": "ann", "password": "Secret-1!"})))
            .await;
    assert_eq!(created.status, 201);
    let id = created.body["id"].as_str().unwrap().to_string();
    let dup =
        send(&s, Method::POST, "/Users", Some(json!({"schemas": [USER], "userName": "ANN", "password": "Secret-2!"})))
            .await;
    assert_eq!(dup.status, 409);
    let bad = send(&s, Method::PATCH, &format!("/Users/{id}"),
        Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "explode", "path": "password", "value": "Secret-3!"}]}))).await;
    assert_eq!(bad.status, 400);
    assert_eq!(send(&s, Method::GET, &format!("/Users/{id}?attributes=userName"), None).await.status, 200);
    assert_eq!(send(&s, Method::DELETE, &format!("/Users/{id}"), None).await.status, 204);
    // Not authenticated: not in any tenant's log (counted in the metrics instead).
    assert_eq!(s.raw(Method::GET, "/Users", Some("wrong"), None, None, &[]).await.status, 401);

    let all = activity(&s, &admin, "default", "", 5).await;
    let records = all["activity"].as_array().unwrap();
    assert_eq!(records.len(), 5, "{all:#}");
    let methods: Vec<(&str, u64)> =
        records.iter().map(|r| (r["method"].as_str().unwrap(), r["status"].as_u64().unwrap())).collect();
    assert_eq!(methods, [("DELETE", 204), ("GET", 200), ("PATCH", 400), ("POST", 409), ("POST", 201)], "newest first");
    let (get, patch, conflict, create) = (&records[1], &records[2], &records[3], &records[4]);
    // A success: what it touched, how long it took, who sent it; no body kept.
    assert_eq!((create["resource_type"].as_str(), create["resource_id"].as_str()), (Some("User"), Some(id.as_str())));
    assert!(create["request_body"].is_null());
    assert_eq!(create["client"], "Okta");
    assert_eq!(create["user_agent"], OKTA);
    assert!(create["latency_us"].as_u64().unwrap() > 0);
    assert_eq!(create["request_id"].as_str(), created.headers["x-request-id"].to_str().ok());
    assert_eq!(get["path"], format!("/scim/v2/Users/{id}?attributes=userName"));
    // Failures: their scimType, detail and body, without a single credential.
    assert_eq!(conflict["scim_type"], "uniqueness");
    assert!(conflict["detail"].as_str().unwrap().contains("userName"), "{conflict}");
    let body = conflict["request_body"].as_str().unwrap();
    assert!(body.contains("ANN") && !body.contains("Secret-2!"), "{body}");
    assert_eq!(patch["scim_type"], "invalidSyntax");
    assert!(!patch["request_body"].as_str().unwrap().contains("Secret-3!"));
    assert!(!all.to_string().contains("Secret-"), "no password anywhere");

    // Filters, and pages.
    let failed = activity(&s, &admin, "default", "status=failed", 2).await;
    assert_eq!(failed["activity"].as_array().unwrap().len(), 2);
    let ok = activity(&s, &admin, "default", "status=2xx", 3).await;
    assert!(ok["activity"].as_array().unwrap().iter().all(|r| r["status"].as_u64().unwrap() < 300));
    let of_ann = activity(&s, &admin, "default", &format!("resource_id={id}"), 4).await;
    assert_eq!(of_ann["activity"].as_array().unwrap().len(), 4, "create, patch, get, delete: {of_ann:#}");
    let page1 = activity(&s, &admin, "default", "limit=2", 2).await;
    let next = page1["next"].as_i64().expect("a next page");
    let page2 = activity(&s, &admin, "default", &format!("limit=2&before={next}"), 2).await;
    assert_eq!(page2["activity"][0]["method"], "PATCH");
    let later = activity(&s, &admin, "default", "since=2999-01-01T00:00:00Z", 0).await;
    assert!(later["activity"].as_array().unwrap().is_empty());
    for bad in ["status=6xx", "limit=0", "since=yesterday", "colour=red"] {
        let r = s.at(Method::GET, &format!("{}/admin/v1/tenants/default/activity?{bad}", s.root), &admin, None).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }

    // Another tenant sees none of it.
    let r = s.at(Method::POST, &format!("{}/admin/v1/tenants", s.root), &admin, Some(json!({"slug": "other"}))).await;
    assert_eq!(r.status, 201);
    let other = activity(&s, &admin, "other", "", 0).await;
    assert!(other["activity"].as_array().unwrap().is_empty());

    // Erasing a tenant erases its records: a new tenant of the same slug starts with none.
    let made = s.at(Method::POST, &format!("{}/admin/v1/tenants/other/tokens", s.root), &admin, Some(json!({}))).await;
    let other_token = made.body["secret"].as_str().unwrap().to_string();
    let users_url = format!("{}/t/other/scim/v2/Users", s.root);
    assert_eq!(s.request(Method::GET, &users_url, Some(&other_token), None, None, &[]).await.status, 200);
    activity(&s, &admin, "other", "", 1).await;
    assert_eq!(s.at(Method::DELETE, &format!("{}/admin/v1/tenants/other", s.root), &admin, None).await.status, 204);
    let r = s.at(Method::POST, &format!("{}/admin/v1/tenants", s.root), &admin, Some(json!({"slug": "other"}))).await;
    assert_eq!(r.status, 201);
    assert!(activity(&s, &admin, "other", "", 0).await["activity"].as_array().unwrap().is_empty());

    // A bounded history: the newest N of each tenant.
    s.backend.activity.prune_activity(2, "2000-01-01T00:00:00.000000Z").await.unwrap();
    let kept = activity(&s, &admin, "default", "", 2).await;
    let kept: Vec<&str> = kept["activity"].as_array().unwrap().iter().map(|r| r["method"].as_str().unwrap()).collect();
    assert_eq!(kept, ["DELETE", "GET"]);
    s.backend.activity.prune_activity(100, "2999-01-01T00:00:00.000000Z").await.unwrap();
    assert!(
        activity(&s, &admin, "default", "", 0).await["activity"].as_array().unwrap().is_empty(),
        "and none too old"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_log_keeps_on_sqlite() {
    what_the_log_keeps(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn what_the_log_keeps_on_postgres() {
    what_the_log_keeps(Db::Postgres).await;
}

#[tokio::test]
async fn the_log_is_off_unless_asked_for() {
    let s = TestServer::start().await;
    let admin = admin_token(&s).await;
    s.user("quiet").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(activity(&s, &admin, "default", "", 0).await["activity"].as_array().unwrap().is_empty());
}
