//! `/Bulk` (RFC 7644 §3.7), `/Me` (§3.11) and cursor paging (RFC 9865) over real HTTP, with
//! the RFCs' examples where they have some (their fixed ids and versions replaced by those of
//! resources made for the test).
//! The PostgreSQL tests need `SCIMD_TEST_POSTGRES_URL`; without it they are reported as
//! ignored.

mod common;

use common::{Db, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

const BULK: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

async fn bulk(s: &TestServer, body: Value) -> common::Reply {
    s.post("/Bulk", body).await
}

fn ops(r: &common::Reply) -> Vec<Value> {
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["schemas"], json!(["urn:ietf:params:scim:api:messages:2.0:BulkResponse"]));
    r.body["Operations"].as_array().unwrap().clone()
}

fn id_of(location: &Value) -> String {
    location.as_str().unwrap().rsplit('/').next().unwrap().to_string()
}

async fn etag(s: &TestServer, path: &str) -> String {
    let r = s.get(path).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.headers["etag"].to_str().unwrap().to_string()
}

async fn members(s: &TestServer, group: &str) -> Vec<String> {
    let r = s.get(&format!("/Groups/{group}")).await;
    let mut ids: Vec<String> = r.body["members"]
        .as_array()
        .map(|m| m.iter().map(|m| m["value"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    ids.sort();
    ids
}

/// RFC 7644 §3.7's first example: a POST, a PUT, a PATCH and a DELETE in one request.
async fn the_four_methods(db: Db) {
    let s = TestServer::on_db(db, "bulk_four", |_| {}).await;
    let bob = s.user("bob").await;
    let dave = s.user("dave").await;
    let eve = s.user("eve").await;
    s.patch(&format!("/Users/{dave}"), json!([{"op": "add", "path": "nickName", "value": "Dee"}])).await;
    let (v_bob, v_dave, v_eve) = (
        etag(&s, &format!("/Users/{bob}")).await,
        etag(&s, &format!("/Users/{dave}")).await,
        etag(&s, &format!("/Users/{eve}")).await,
    );
    let r = bulk(&s, json!({"schemas": [BULK], "Operations": [
        {"method": "POST", "path": "/Users", "bulkId": "qwerty", "data": {"schemas": [USER], "userName": "Alice"}},
        {"method": "PUT", "path": format!("/Users/{bob}"), "version": v_bob,
         "data": {"schemas": [USER], "id": bob, "userName": "Bob"}},
        {"method": "PATCH", "path": format!("/Users/{dave}"), "version": v_dave,
         "data": {"schemas": [PATCH], "Operations": [{"op": "remove", "path": "nickName"}, {"op": "replace", "path": "userName", "value": "Dave"}]}},
        {"method": "DELETE", "path": format!("/Users/{eve}"), "version": v_eve},
    ]})).await;
    let results = ops(&r);
    assert_eq!(results.len(), 4);
    let statuses: Vec<&str> = results.iter().map(|o| o["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["201", "200", "200", "204"], "{}", r.body);
    assert_eq!(results[0]["bulkId"], "qwerty");
    assert_eq!(results[0]["method"], "POST");
    let alice = id_of(&results[0]["location"]);
    assert!(results[0]["location"].as_str().unwrap().ends_with(&format!("/Users/{alice}")));
    assert!(results.iter().take(3).all(|o| o["version"].as_str().unwrap().starts_with("W/\"")));
    assert!(results.iter().all(|o| o.get("response").is_none()), "no body for success: {}", r.body);
    assert_eq!(results[3]["location"].as_str().unwrap(), format!("{}/Users/{eve}", s.base));
    // The changes are there, each as its own request would have made it.
    assert_eq!(s.get(&format!("/Users/{alice}")).await.body["userName"], "Alice");
    assert_eq!(s.get(&format!("/Users/{bob}")).await.body["userName"], "Bob");
    let d = s.get(&format!("/Users/{dave}")).await.body;
    assert_eq!(d["userName"], "Dave");
    assert!(d.get("nickName").is_none());
    assert_eq!(s.get(&format!("/Users/{eve}")).await.status, 404);
    assert_eq!(results[1]["version"].as_str().unwrap(), etag(&s, &format!("/Users/{bob}")).await);
}

#[tokio::test]
async fn the_four_methods_sqlite() {
    the_four_methods(Db::Sqlite).await;
}

#[tokio::test]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn the_four_methods_postgres() {
    the_four_methods(Db::Postgres).await;
}

/// RFC 7644 §3.7.2: a group whose members are users created in the same request, with the
/// references before and after the POSTs that create them, and a PATCH of a group by its
/// bulkId.
async fn bulk_id_references(db: Db) {
    let s = TestServer::on_db(db, "bulk_refs", |_| {}).await;
    let r = bulk(&s, json!({"schemas": [BULK], "Operations": [
        {"method": "POST", "path": "/Users", "bulkId": "qwerty", "data": {"schemas": [USER], "userName": "Alice"}},
        {"method": "POST", "path": "/Groups", "bulkId": "ytrewq",
         "data": {"schemas": [GROUP], "displayName": "Tour Guides", "members": [{"type": "User", "value": "bulkId:qwerty"}, {"type": "User", "value": "bulkId:later"}]}},
        {"method": "PATCH", "path": "/Groups/bulkId:ytrewq",
         "data": {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": "bulkId:last"}]}]}},
        {"method": "POST", "path": "/Users", "bulkId": "later", "data": {"schemas": [USER], "userName": "Bob"}},
        {"method": "POST", "path": "/Users", "bulkId": "last", "data": {"schemas": [USER], "userName": "Carol"}},
    ]})).await;
    let results = ops(&r);
    let statuses: Vec<&str> = results.iter().map(|o| o["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["201", "201", "200", "201", "201"], "{}", r.body);
    let group = id_of(&results[1]["location"]);
    let mut expected: Vec<String> = [0, 3, 4].iter().map(|i| id_of(&results[*i]["location"])).collect();
    expected.sort();
    assert_eq!(members(&s, &group).await, expected);
    // The user's `groups` shows the group: the reference became a real member.
    let alice = s.get(&format!("/Users/{}", expected[0])).await.body;
    assert!(alice["groups"].as_array().is_some_and(|g| !g.is_empty()), "{alice}");
    assert_eq!(results[2]["location"].as_str().unwrap(), format!("{}/Groups/{group}", s.base));
}

#[tokio::test]
async fn bulk_id_references_sqlite() {
    bulk_id_references(Db::Sqlite).await;
}

#[tokio::test]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn bulk_id_references_postgres() {
    bulk_id_references(Db::Postgres).await;
}

/// RFC 7644 §3.7.1's example: two groups that are members of each other are both created,
/// each with the other as its member; a cycle that cannot be broken is refused with 409.
#[tokio::test]
async fn circular_references() {
    let s = TestServer::start().await;
    let r = bulk(&s, json!({"schemas": [BULK], "Operations": [
        {"method": "POST", "path": "/Groups", "bulkId": "qwerty",
         "data": {"schemas": [GROUP], "displayName": "Group A", "members": [{"type": "Group", "value": "bulkId:ytrewq"}]}},
        {"method": "POST", "path": "/Groups", "bulkId": "ytrewq",
         "data": {"schemas": [GROUP], "displayName": "Group B", "members": [{"type": "Group", "value": "bulkId:qwerty"}]}},
    ]})).await;
    let results = ops(&r);
    assert_eq!(results.len(), 2);
    assert!(results.iter().all(|o| o["status"] == "201"), "{}", r.body);
    let (a, b) = (id_of(&results[0]["location"]), id_of(&results[1]["location"]));
    assert_eq!(members(&s, &a).await, vec![b.clone()]);
    assert_eq!(members(&s, &b).await, vec![a.clone()]);
    // The version reported is the group's version after its members were completed.
    assert_eq!(results[1]["version"].as_str().unwrap(), etag(&s, &format!("/Groups/{b}")).await);

    // Users whose attributes name each other cannot be created one without the other.
    let r = bulk(&s, json!({"schemas": [BULK], "Operations": [
        {"method": "POST", "path": "/Users", "bulkId": "u1", "data": {"schemas": [USER], "userName": "one", "nickName": "bulkId:u2"}},
        {"method": "POST", "path": "/Users", "bulkId": "u2", "data": {"schemas": [USER], "userName": "two", "nickName": "bulkId:u1"}},
        {"method": "POST", "path": "/Groups", "bulkId": "g", "data": {"schemas": [GROUP], "displayName": "Self", "members": [{"value": "bulkId:g"}]}},
    ]})).await;
    let results = ops(&r);
    for o in &results {
        assert_eq!(o["status"], "409", "{}", r.body);
        assert_eq!(o["response"]["status"], "409");
        assert!(o.get("location").is_none(), "a failed POST has no location: {o}");
    }
    assert_eq!(s.get("/Users?filter=userName eq \"one\" or userName eq \"two\"").await.body["totalResults"], 0);
    assert_eq!(s.get("/Groups?filter=displayName eq \"Self\"").await.body["totalResults"], 0);
}

/// RFC 7644 §3.7.3: failures are reported per operation, the others still run; with
/// `failOnErrors` the request stops after that many, and what was not run is not listed.
#[tokio::test]
async fn errors_and_fail_on_errors() {
    let s = TestServer::start().await;
    let taken = s.user("Alice").await;
    let bob = s.user("bob").await;
    let missing = "e9025315-6bea-44e1-899c-1e07454e468b";
    let all_fail = |fail_on_errors: Option<u64>| {
        let mut body = json!({"schemas": [BULK], "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "qwerty", "data": {"schemas": [USER], "userName": "alice"}},
            {"method": "PUT", "path": format!("/Users/{bob}"), "version": "W/\"999\"", "data": {"schemas": [USER], "userName": "Bob"}},
            {"method": "PATCH", "path": format!("/Users/{bob}"), "version": "W/\"999\"",
             "data": {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "nickName", "value": "B"}]}},
            {"method": "DELETE", "path": format!("/Users/{missing}")},
            {"method": "POST", "path": "/Groups", "bulkId": "g", "data": {"schemas": [GROUP], "displayName": "G", "members": [{"value": "bulkId:qwerty"}]}},
        ]});
        if let Some(n) = fail_on_errors {
            body["failOnErrors"] = json!(n);
        }
        body
    };
    let r = bulk(&s, all_fail(None)).await;
    let results = ops(&r);
    let statuses: Vec<&str> = results.iter().map(|o| o["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["409", "412", "412", "404", "409"], "{}", r.body);
    assert_eq!(results[0]["response"]["scimType"], "uniqueness");
    assert_eq!(results[0]["response"]["schemas"], json!(["urn:ietf:params:scim:api:messages:2.0:Error"]));
    assert!(results[0].get("location").is_none());
    assert_eq!(results[1]["location"].as_str().unwrap(), format!("{}/Users/{bob}", s.base));
    assert_eq!(results[3]["location"].as_str().unwrap(), format!("{}/Users/{missing}", s.base));
    assert!(results[4]["response"]["detail"].as_str().unwrap().contains("qwerty"), "{}", r.body);
    assert_eq!(s.get(&format!("/Users/{bob}")).await.body["userName"], "bob");
    let _ = taken;

    let r = bulk(&s, all_fail(Some(1))).await;
    let results = ops(&r);
    assert_eq!(results.len(), 1, "stops after the first error: {}", r.body);
    assert_eq!(results[0]["status"], "409");
    let r = bulk(&s, all_fail(Some(2))).await;
    assert_eq!(ops(&r).len(), 2);

    // A success before the limit is kept; what comes after it is not run.
    let r = bulk(
        &s,
        json!({"schemas": [BULK], "failOnErrors": 1, "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "a", "data": {"schemas": [USER], "userName": "new-one"}},
            {"method": "DELETE", "path": format!("/Users/{missing}")},
            {"method": "POST", "path": "/Users", "bulkId": "b", "data": {"schemas": [USER], "userName": "never"}},
        ]}),
    )
    .await;
    let results = ops(&r);
    assert_eq!(results.len(), 2);
    assert_eq!(s.get("/Users?filter=userName eq \"new-one\"").await.body["totalResults"], 1);
    assert_eq!(s.get("/Users?filter=userName eq \"never\"").await.body["totalResults"], 0);
}

/// Malformed operations fail alone with a SCIM error; requests that cannot run at all are
/// refused whole and change nothing.
#[tokio::test]
async fn malformed_requests_and_limits() {
    let s = TestServer::with(|c| c.bulk_max_operations = 50).await;
    let spc = s.get("/ServiceProviderConfig").await.body;
    assert_eq!(spc["bulk"], json!({"supported": true, "maxOperations": 50, "maxPayloadSize": 1048576}));

    let r = bulk(&s, json!({"schemas": [BULK], "Operations": [
        {"method": "GET", "path": "/Users"},
        {"method": "POST", "path": "/Users/abc", "bulkId": "x", "data": {"schemas": [USER], "userName": "x"}},
        {"method": "PUT", "path": "/Users"},
        {"method": "POST", "path": "/Widgets", "bulkId": "w", "data": {}},
        {"method": "PATCH", "path": "/Users/some-id", "data": {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "nickName", "value": "n"}]}},
        {"method": "DELETE", "path": "/Users/bulkId:unknown"},
        "not an object",
        {"method": "POST", "path": "/Users", "bulkId": "ok", "data": {"schemas": [USER], "userName": "fine"}},
    ]})).await;
    let results = ops(&r);
    let statuses: Vec<&str> = results.iter().map(|o| o["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["400", "400", "400", "404", "404", "409", "400", "201"], "{}", r.body);
    for o in &results[..7] {
        let status = o["status"].as_str().unwrap();
        assert_eq!(o["response"]["status"], status);
    }

    let too_many: Vec<Value> = (0..51)
        .map(|i| json!({"method": "POST", "path": "/Users", "bulkId": format!("b{i}"), "data": {"schemas": [USER], "userName": format!("many{i}")}}))
        .collect();
    let r = bulk(&s, json!({"schemas": [BULK], "Operations": too_many})).await;
    r.assert_error(413, None);
    assert_eq!(s.get("/Users?filter=userName sw \"many\"").await.body["totalResults"], 0);

    let twice = json!({"schemas": [BULK], "Operations": [
        {"method": "POST", "path": "/Users", "bulkId": "same", "data": {"schemas": [USER], "userName": "first"}},
        {"method": "POST", "path": "/Users", "bulkId": "same", "data": {"schemas": [USER], "userName": "second"}},
    ]});
    bulk(&s, twice).await.assert_error(400, Some("invalidValue"));
    assert_eq!(s.get("/Users?filter=userName eq \"first\"").await.body["totalResults"], 0);
    bulk(&s, json!({"schemas": ["urn:x"], "Operations": []})).await.assert_error(400, Some("invalidSyntax"));
    bulk(&s, json!({"schemas": [BULK]})).await.assert_error(400, Some("invalidSyntax"));
    bulk(&s, json!({"schemas": [BULK], "failOnErrors": -1, "Operations": []}))
        .await
        .assert_error(400, Some("invalidValue"));
    let r = s.call(Method::GET, "/Bulk", None).await;
    r.assert_error(405, None);

    // Larger than maxPayloadSize: 413 before anything is read.
    let s = TestServer::with(|c| c.max_body_bytes = 4096).await;
    let big: Vec<Value> = (0..100)
        .map(|i| json!({"method": "POST", "path": "/Users", "bulkId": format!("b{i}"), "data": {"schemas": [USER], "userName": format!("big{i}")}}))
        .collect();
    bulk(&s, json!({"schemas": [BULK], "Operations": big})).await.assert_error(413, None);
    assert_eq!(s.get("/Users").await.body["totalResults"], 0);

    // Turned off: not advertised, and answered 501.
    let s = TestServer::with(|c| c.bulk_max_operations = 0).await;
    assert_eq!(s.get("/ServiceProviderConfig").await.body["bulk"]["supported"], false);
    bulk(&s, json!({"schemas": [BULK], "Operations": []})).await.assert_error(501, None);
}

/// A hostile body: 10,000 operations get 413 at once; a full request of the allowed size
/// runs, and each of its operations is atomic on its own.
#[tokio::test]
async fn hostile_sizes() {
    let s = TestServer::with(|c| c.max_body_bytes = 4 * 1024 * 1024).await;
    let ten_thousand: Vec<Value> =
        (0..10_000).map(|i| json!({"method": "DELETE", "path": format!("/Users/{i}")})).collect();
    let started = std::time::Instant::now();
    bulk(&s, json!({"schemas": [BULK], "Operations": ten_thousand})).await.assert_error(413, None);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));

    let mut full: Vec<Value> = (0..999)
        .map(|i| json!({"method": "POST", "path": "/Users", "bulkId": format!("u{i}"), "data": {"schemas": [USER], "userName": format!("u{i:04}")}}))
        .collect();
    let all: Vec<Value> = (0..999).map(|i| json!({"value": format!("bulkId:u{i}")})).collect();
    full.insert(0, json!({"method": "POST", "path": "/Groups", "bulkId": "everyone", "data": {"schemas": [GROUP], "displayName": "Everyone", "members": all}}));
    let r = bulk(&s, json!({"schemas": [BULK], "Operations": full})).await;
    let results = ops(&r);
    assert_eq!(results.len(), 1000);
    assert!(results.iter().all(|o| o["status"] == "201"), "{}", r.body);
    assert_eq!(s.get("/Users?count=0").await.body["totalResults"], 999);
    assert_eq!(members(&s, &id_of(&results[0]["location"])).await.len(), 999);
}

/// `/Me` with a provisioning token, which is no user: 501 as RFC 7644 §3.11 allows, for
/// every method.
#[tokio::test]
async fn me_without_a_user() {
    let s = TestServer::start().await;
    for method in [Method::GET, Method::PUT, Method::PATCH, Method::DELETE, Method::POST] {
        let body = (method != Method::GET && method != Method::DELETE).then(|| json!({"schemas": [USER]}));
        s.call(method, "/Me", body).await.assert_error(501, None);
    }
    let r = s.raw(Method::GET, "/Me", None, None, None, &[]).await;
    r.assert_error(401, None);
}

/// Creates `n` users named `{prefix}{i:05}` through `/Bulk`, 1,000 a request.
async fn many_users(s: &TestServer, prefix: &str, n: usize) {
    for start in (0..n).step_by(1000) {
        let list: Vec<Value> = (start..n.min(start + 1000))
            .map(|i| {
                json!({"method": "POST", "path": "/Users", "bulkId": format!("u{i}"),
                            "data": {"schemas": [USER], "userName": format!("{prefix}{i:05}")}})
            })
            .collect();
        let r = bulk(s, json!({"schemas": [BULK], "Operations": list})).await;
        assert!(ops(&r).iter().all(|o| o["status"] == "201"), "{}", r.body);
    }
}

fn ids(page: &Value) -> Vec<String> {
    page["Resources"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect()
}

/// RFC 9865 over 10,000 users, in the default order and sorted: every user seen exactly
/// once while users are created and deleted between pages; the last page has no
/// `nextCursor`.
async fn cursor_paging(db: Db) {
    let s = TestServer::on_db(db, "cursor_paging", |_| {}).await;
    many_users(&s, "p", 10_000).await;
    let spc = s.get("/ServiceProviderConfig").await.body;
    assert_eq!(spc["pagination"]["cursor"], true);
    assert_eq!(spc["pagination"]["index"], true);
    assert_eq!(spc["pagination"]["defaultPaginationMethod"], "index");
    assert_eq!(spc["pagination"]["maxPageSize"], 1000);
    page_through(&s, "", "a").await;
    page_through(&s, "&sortBy=userName&sortOrder=descending", "b").await;
}

/// Pages through all users by cursor (with `extra` query parameters), deleting a user
/// already served and one not yet served, and creating one, between pages.
async fn page_through(s: &TestServer, extra: &str, round: &str) {
    use std::collections::{HashMap, HashSet};
    // Every user by index paging, to pick victims from.
    let mut all = Vec::new();
    let total = s.get("/Users?count=0").await.body["totalResults"].as_u64().unwrap();
    for start in (1..=total).step_by(1000) {
        all.extend(ids(&s.get(&format!("/Users?startIndex={start}&count=1000&attributes=id")).await.body));
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut deleted_unseen = HashSet::new();
    let mut deleted_seen = HashSet::new();
    let mut created = Vec::new();
    let mut url = format!("/Users?cursor&count=700&attributes=userName{extra}");
    let mut pages = 0;
    let mut previous: Option<String> = None;
    loop {
        let r = s.get(&url).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body.get("startIndex").is_none(), "cursor pages have no startIndex: {}", r.body);
        assert!(r.body["totalResults"].as_u64().is_some());
        for res in r.body["Resources"].as_array().unwrap() {
            *seen.entry(res["id"].as_str().unwrap().to_string()).or_default() += 1;
            if !extra.is_empty() {
                let name = res["userName"].as_str().unwrap().to_lowercase();
                assert!(previous.as_ref().is_none_or(|p| *p >= name), "descending: {previous:?} then {name}");
                previous = Some(name);
            }
        }
        pages += 1;
        let Some(next) = r.body.get("nextCursor").and_then(Value::as_str) else { break };
        assert!(next.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)), "unreserved: {next}");
        assert!(pages < 40, "the paging never ends");
        let seen_one = all.iter().find(|id| seen.contains_key(*id) && !deleted_seen.contains(*id)).cloned().unwrap();
        assert_eq!(s.delete(&format!("/Users/{seen_one}")).await.status, 204);
        deleted_seen.insert(seen_one);
        let ahead = all.iter().find(|id| !seen.contains_key(*id) && !deleted_unseen.contains(*id)).cloned();
        if let Some(ahead) = ahead {
            assert_eq!(s.delete(&format!("/Users/{ahead}")).await.status, 204);
            deleted_unseen.insert(ahead);
        }
        // Sorted descending, `new…` comes after every `p…`: it is served in its place.
        created.push(s.user(&format!("new-{round}{pages:03}")).await);
        url = format!("/Users?cursor={next}&count=700&attributes=userName{extra}");
    }
    assert!(seen.values().all(|n| *n == 1), "a user was served twice");
    for id in &all {
        assert_eq!(seen.contains_key(id), !deleted_unseen.contains(id), "user {id}");
    }
    assert!(deleted_unseen.len() > 5);
    if extra.is_empty() {
        // Created after the paging began: served at the end, once.
        for id in &created {
            assert_eq!(seen.get(id), Some(&1), "a user created during the paging is served once");
        }
    }
}

#[tokio::test]
async fn cursor_paging_sqlite() {
    cursor_paging(Db::Sqlite).await;
}

#[tokio::test]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn cursor_paging_postgres() {
    cursor_paging(Db::Postgres).await;
}

/// Cursors with a filter, a sort, across resource types (`POST /.search`), and the errors
/// of RFC 9865.
#[tokio::test]
async fn cursor_variants_and_errors() {
    let s = TestServer::with(|c| c.cursor_timeout_secs = 1).await;
    many_users(&s, "v", 25).await;
    for g in 0..4 {
        s.group(&format!("team{g}"), &[]).await;
    }
    // A filter and a sort: the same resources, in the same order, as by index.
    let by_index =
        ids(&s.get("/Users?filter=userName ew \"1\"&sortBy=userName&sortOrder=descending&count=100").await.body);
    assert_eq!(by_index.len(), 3);
    let mut by_cursor = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = s
            .get(&format!(
                "/Users?filter=userName ew \"1\"&sortBy=userName&sortOrder=descending&count=1&cursor={cursor}"
            ))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["totalResults"], 3);
        by_cursor.extend(ids(&r.body));
        match r.body.get("nextCursor").and_then(Value::as_str) {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    assert_eq!(by_cursor, by_index);

    // Across types: 25 users then 4 groups, 10 at a time.
    let mut seen = Vec::new();
    let mut body =
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "cursor": "", "count": 10});
    let mut pages = 0;
    loop {
        let r = s.post("/.search", body.clone()).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["totalResults"], 29);
        seen.extend(ids(&r.body));
        pages += 1;
        match r.body.get("nextCursor").and_then(Value::as_str) {
            Some(next) => body["cursor"] = json!(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let unique: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!((seen.len(), unique.len()), (29, 29));
    // A page that ends exactly at the last user still leads on to the groups.
    let r = s.get("/Users?cursor&count=25").await;
    assert!(r.body.get("nextCursor").is_none(), "25 users on one page: the last page");
    let r = s.post("/.search", json!({"cursor": "", "count": 25})).await;
    let next = r.body["nextCursor"].as_str().expect("the groups follow").to_string();
    let r = s.post("/.search", json!({"cursor": next, "count": 25})).await;
    assert_eq!(ids(&r.body).len(), 4);
    assert!(r.body.get("nextCursor").is_none());

    // Errors.
    let first = s.get("/Users?cursor&count=5").await.body;
    let next = first["nextCursor"].as_str().unwrap().to_string();
    let mut altered = next.clone().into_bytes();
    altered[10] = if altered[10] == b'a' { b'b' } else { b'a' };
    let altered = String::from_utf8(altered).unwrap();
    s.get(&format!("/Users?cursor={altered}&count=5")).await.assert_error(400, Some("invalidCursor"));
    s.get(&format!("/Users?cursor={next}&count=5&filter=userName pr")).await.assert_error(400, Some("invalidCursor"));
    s.get(&format!("/Groups?cursor={next}&count=5")).await.assert_error(400, Some("invalidCursor"));
    s.get("/Users?cursor=not-a-cursor").await.assert_error(400, Some("invalidCursor"));
    s.get("/Users?cursor&count=1001").await.assert_error(400, Some("invalidCount"));
    s.get("/Users?cursor&count=-1").await.assert_error(400, Some("invalidCount"));
    s.get("/Users?cursor&startIndex=5").await.assert_error(400, Some("invalidValue"));
    // A cursor of another tenant's server key is not one of this server's.
    let other = TestServer::start().await;
    other.get(&format!("/Users?cursor={next}&count=5")).await.assert_error(400, Some("invalidCursor"));
    // Still good within its lifetime, expired after.
    assert_eq!(s.get(&format!("/Users?cursor={next}&count=5")).await.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    s.get(&format!("/Users?cursor={next}&count=5")).await.assert_error(400, Some("expiredCursor"));
    // Index paging is untouched: startIndex without cursor.
    let r = s.get("/Users?startIndex=2&count=3").await;
    assert_eq!(r.body["startIndex"], 2);
    assert!(r.body.get("nextCursor").is_none());
}
