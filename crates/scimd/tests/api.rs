//! The server over real HTTP on a fresh SQLite database: every endpoint, every error
//! status, paging edge cases, delete policies, ETags, restarts.

mod common;

use common::{TestServer, urlencode};
use reqwest::Method;
use serde_json::{Value, json};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

#[tokio::test]
async fn discovery_endpoints() {
    let s = TestServer::start().await;
    let spc = s.get("/ServiceProviderConfig").await;
    assert_eq!(spc.status, 200);
    assert_eq!(spc.headers["content-type"], "application/scim+json");
    assert_eq!(spc.body["patch"]["supported"], true);
    assert_eq!(spc.body["filter"]["maxResults"], 1000);
    assert_eq!(spc.body["etag"]["supported"], true);
    assert_eq!(spc.body["authenticationSchemes"][0]["type"], "oauthbearertoken");

    let rts = s.get("/ResourceTypes").await;
    assert_eq!(rts.body["totalResults"], 2);
    let user_rt = s.get("/ResourceTypes/User").await;
    assert_eq!(user_rt.body["endpoint"], "/Users");
    assert_eq!(user_rt.body["schemaExtensions"][0]["schema"], ENTERPRISE);
    s.get("/ResourceTypes/Nope").await.assert_error(404, None);

    let schemas = s.get("/Schemas").await;
    assert_eq!(schemas.body["totalResults"], 3);
    let user = s.get(&format!("/Schemas/{USER}")).await;
    let names: Vec<&str> =
        user.body["attributes"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    // RFC 7643 §4.1 and §8.7.1: every core User attribute is published.
    for want in [
        "userName",
        "name",
        "displayName",
        "nickName",
        "profileUrl",
        "title",
        "userType",
        "preferredLanguage",
        "locale",
        "timezone",
        "active",
        "password",
        "emails",
        "phoneNumbers",
        "ims",
        "photos",
        "addresses",
        "groups",
        "entitlements",
        "roles",
        "x509Certificates",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let user_name = &user.body["attributes"][0];
    assert_eq!(user_name["uniqueness"], "server");
    assert_eq!(user_name["caseExact"], false);
    assert_eq!(user_name["required"], true);
    s.get("/Schemas/urn:nope").await.assert_error(404, None);
}

#[tokio::test]
async fn user_lifecycle_with_headers() {
    let s = TestServer::start().await;
    let r = s
        .post(
            "/Users",
            json!({
                "schemas": [USER, ENTERPRISE], "userName": "BJensen", "externalId": "ext-1",
                "name": {"givenName": "Barbara", "familyName": "Jensen"}, "password": "t1meMa$heen",
                "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}],
                ENTERPRISE: {"employeeNumber": "701984", "manager": "not-checked"}
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.headers["location"].to_str().unwrap(), r.body["meta"]["location"].as_str().unwrap());
    assert_eq!(r.body["meta"]["location"], format!("{}/Users/{id}", s.base));
    assert_eq!(r.headers["etag"].to_str().unwrap(), r.body["meta"]["version"].as_str().unwrap());
    assert_eq!(r.body["userName"], "BJensen", "case is preserved");
    assert!(r.body.get("password").is_none(), "password is never returned");
    assert_eq!(r.body[ENTERPRISE]["manager"], json!({"value": "not-checked"}));
    assert_eq!(r.body["meta"]["resourceType"], "User");
    assert_eq!(r.body["meta"]["created"], r.body["meta"]["lastModified"]);
    assert_eq!(r.body["schemas"], json!([USER, ENTERPRISE]));

    let g = s.get(&format!("/Users/{id}")).await;
    assert_eq!(g.status, 200);
    assert_eq!(g.body["name"]["givenName"], "Barbara");
    assert_eq!(g.body["schemas"], json!([USER, ENTERPRISE]));

    // `schemas` names the schemas of the attributes the answer holds (RFC 7643 §3): an
    // extension left out by `attributes` or `excludedAttributes` is not named; by id and in
    // a list alike.
    let enc = |s: &str| s.replace(':', "%3A");
    for (query, schemas) in [
        (format!("excludedAttributes={}", enc(ENTERPRISE)), json!([USER])),
        ("attributes=userName".to_string(), json!([USER])),
        (format!("attributes=userName,{}", enc(&format!("{ENTERPRISE}:employeeNumber"))), json!([USER, ENTERPRISE])),
        ("excludedAttributes=name".to_string(), json!([USER, ENTERPRISE])),
    ] {
        let one = s.get(&format!("/Users/{id}?{query}")).await;
        assert_eq!((one.status.as_u16(), &one.body["schemas"]), (200, &schemas), "{query}: {}", one.body);
        assert_eq!(one.body.get(ENTERPRISE).is_some(), schemas.as_array().unwrap().len() == 2, "{query}");
        let list = s.get(&format!("/Users?filter=userName%20eq%20%22BJensen%22&{query}")).await;
        assert_eq!(
            (list.status.as_u16(), &list.body["Resources"][0]["schemas"]),
            (200, &schemas),
            "{query}: {}",
            list.body
        );
    }

    // PUT replaces; PATCH modifies and answers 200 with the resource, honouring `attributes`.
    let put = s
        .call(
            Method::PUT,
            &format!("/Users/{id}"),
            Some(json!({"schemas": [USER], "id": id, "userName": "bjensen", "meta": {"version": "x"},
        "groups": [{"value": "ignored"}], "displayName": "Babs"})),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.body["displayName"], "Babs");
    assert!(put.body.get("name").is_none(), "PUT replaced the whole resource");
    assert_ne!(put.body["meta"]["version"], r.body["meta"]["version"]);
    let p = s
        .call(
            Method::PATCH,
            &format!("/Users/{id}?attributes=displayName"),
            Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "displayName", "value": "B"}]})),
        )
        .await;
    assert_eq!(p.status, 200);
    assert_eq!(p.body, json!({"schemas": [USER], "id": id, "displayName": "B"}));

    assert_eq!(s.delete(&format!("/Users/{id}")).await.status, 204);
    s.get(&format!("/Users/{id}")).await.assert_error(404, None);
    s.delete(&format!("/Users/{id}")).await.assert_error(404, None);
}

#[tokio::test]
async fn uniqueness_is_case_insensitive_and_per_resource_type() {
    let s = TestServer::start().await;
    s.user("alice").await;
    let dup = s.post("/Users", json!({"schemas": [USER], "userName": "ALICE"})).await;
    dup.assert_error(409, Some("uniqueness"));
    let bob = s.user("bob").await;
    let clash =
        s.patch(&format!("/Users/{bob}"), json!([{"op": "replace", "path": "userName", "value": "Alice"}])).await;
    clash.assert_error(409, Some("uniqueness"));
    s.group("Staff", &[]).await;
    s.post("/Groups", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "STAFF"}))
        .await
        .assert_error(409, Some("uniqueness"));
    // After a delete the name is free again.
    let list = s.get("/Users?filter=userName%20eq%20%22alice%22").await;
    let alice = list.body["Resources"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(s.delete(&format!("/Users/{alice}")).await.status, 204);
    assert_eq!(s.post("/Users", json!({"schemas": [USER], "userName": "Alice"})).await.status, 201);
}

#[tokio::test]
async fn groups_members_and_derived_user_groups() {
    let s = TestServer::start().await;
    let a = s.user("a").await;
    let b = s.user("b").await;
    let g = s.group("Eng", &[&a]).await;
    let got = s.get(&format!("/Groups/{g}")).await;
    assert_eq!(got.body["members"], json!([{"value": a, "type": "User", "$ref": format!("{}/Users/{a}", s.base)}]));
    let with_display = s.get(&format!("/Groups/{g}?attributes=members.display,members.value")).await;
    assert_eq!(with_display.body["members"][0]["display"], "a", "display on request");

    // As Entra ID and Okta send it (no query parameters): 204 with the new version.
    let r = s.patch(&format!("/Groups/{g}"), json!([{"op": "add", "path": "members", "value": [{"value": b}]}])).await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(r.body, Value::Null, "no body");
    assert_eq!(r.headers["etag"], "W/\"2\"");
    // A client that asks for the resource gets it (RFC 7644 §3.5.2: MUST with `attributes`).
    let r = s
        .patch(
            &format!("/Groups/{g}?attributes=members"),
            json!([{"op": "add", "path": "members", "value": [{"value": b}, {"value": a}]}]),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["members"].as_array().unwrap().len(), 2);
    assert_eq!(r.headers["etag"], "W/\"2\"", "re-adding members changes nothing");
    let r = s
        .patch(
            &format!("/Groups/{g}?excludedAttributes=externalId"),
            json!([{"op": "replace", "path": "externalId", "value": "e"}]),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.body["members"].as_array().map(Vec::len)), (200, Some(2)));
    // A user's PATCH answers 200 with the user.
    let r = s.patch(&format!("/Users/{a}"), json!([{"op": "replace", "path": "title", "value": "t"}])).await;
    assert_eq!((r.status.as_u16(), r.body["title"].clone()), (200, json!("t")));
    let user_a = s.get(&format!("/Users/{a}")).await;
    assert_eq!(
        user_a.body["groups"],
        json!([{"value": g, "display": "Eng", "type": "direct", "$ref": format!("{}/Groups/{g}", s.base)}])
    );

    // `groups` is read-only on a User.
    s.patch(&format!("/Users/{a}"), json!([{"op": "add", "path": "groups", "value": [{"value": g}]}]))
        .await
        .assert_error(400, Some("mutability"));
    // Unknown members are refused, and nothing else in the request is applied.
    s.patch(&format!("/Groups/{g}"), json!([{"op": "replace", "path": "displayName", "value": "X"}, {"op": "add", "path": "members", "value": [{"value": "nobody"}]}]))
        .await
        .assert_error(400, Some("invalidValue"));
    assert_eq!(s.get(&format!("/Groups/{g}")).await.body["displayName"], "Eng", "all or nothing");
    // A group can be a member of another, not of itself.
    let parent = s.group("Parent", &[&g]).await;
    assert_eq!(s.get(&format!("/Groups/{parent}")).await.body["members"][0]["type"], "Group");
    s.patch(&format!("/Groups/{g}"), json!([{"op": "add", "path": "members", "value": [{"value": g}]}]))
        .await
        .assert_error(400, Some("invalidValue"));

    let ex = s.get(&format!("/Groups/{g}?excludedAttributes=members")).await;
    assert!(ex.body.get("members").is_none());
    let filtered = s.get(&format!("/Groups?filter=members%20eq%20%22{b}%22&excludedAttributes=members")).await;
    assert_eq!(filtered.body["totalResults"], 1);
    let by_group = s.get(&format!("/Users?filter=groups.value%20eq%20%22{g}%22")).await;
    assert_eq!(by_group.body["totalResults"], 2);

    // Deleting a user removes it from its groups.
    assert_eq!(s.delete(&format!("/Users/{b}")).await.status, 204);
    assert_eq!(s.get(&format!("/Groups/{g}")).await.body["members"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn filters_sorting_and_search() {
    let s = TestServer::start().await;
    for (name, title, active) in
        [("carol", "Engineer", true), ("Dave", "engineering lead", false), ("erin", "Designer", true)]
    {
        let r = s.post("/Users", json!({"schemas": [USER], "userName": name, "title": title, "active": active,
            "name": {"familyName": name.to_uppercase()}, "emails": [{"value": format!("{name}@Example.com"), "type": "work"}]})).await;
        assert_eq!(r.status, 201);
    }
    let count = |q: &str| {
        let s = &s;
        let q = q.to_string();
        async move {
            let r = s.get(&format!("/Users?filter={}", urlencode(&q))).await;
            assert_eq!(r.status, 200, "{q}: {}", r.body);
            r.body["totalResults"].as_u64().unwrap()
        }
    };
    assert_eq!(count(r#"userName eq "CAROL""#).await, 1);
    assert_eq!(count(r#"title sw "engineer""#).await, 2);
    assert_eq!(count(r#"title co "LEAD""#).await, 1);
    assert_eq!(count(r#"active eq false"#).await, 1);
    assert_eq!(count(r#"emails.value ew "example.COM""#).await, 3);
    assert_eq!(count(r#"emails[type eq "work" and value sw "erin"]"#).await, 1);
    assert_eq!(count(r#"not (title pr) or userName gt "d""#).await, 2);
    assert_eq!(count(r#"meta.created gt "2000-01-01T00:00:00Z""#).await, 3);

    let sorted = s.get("/Users?sortBy=name.familyName&sortOrder=descending&attributes=userName").await;
    let names: Vec<&str> =
        sorted.body["Resources"].as_array().unwrap().iter().map(|r| r["userName"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["erin", "Dave", "carol"]);

    let search = s
        .post(
            "/Users/.search",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "title pr", "attributes": ["userName"], "count": 2, "startIndex": 1}),
        )
        .await;
    assert_eq!(search.status, 200);
    assert_eq!(search.body["totalResults"], 3);
    assert_eq!(search.body["itemsPerPage"], 2);
    s.group("G", &[]).await;
    let root = s.post("/.search", json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]})).await;
    assert_eq!(root.body["totalResults"], 4, "Users and Groups together");

    s.get("/Users?filter=userName%20xx%20%22a%22").await.assert_error(400, Some("invalidFilter"));
    s.get("/Users?filter=nope%20eq%20%22a%22").await.assert_error(400, Some("invalidFilter"));
    s.get("/Users?filter=active%20gt%20true").await.assert_error(400, Some("invalidFilter"));
    s.get("/Users?sortBy=nope").await.assert_error(400, Some("invalidValue"));
    let long = format!("userName eq \"{}\"", "x".repeat(5000));
    s.get(&format!("/Users?filter={}", urlencode(&long))).await.assert_error(400, Some("invalidFilter"));
}

#[tokio::test]
async fn paging_edge_cases() {
    let s = TestServer::start().await;
    for i in 0..5 {
        s.user(&format!("u{i}")).await;
    }
    let page = |q: &'static str| {
        let s = &s;
        async move { s.get(&format!("/Users?{q}")).await.body }
    };
    let p = page("startIndex=0&count=2").await;
    assert_eq!(
        (p["startIndex"].as_u64(), p["itemsPerPage"].as_u64(), p["totalResults"].as_u64()),
        (Some(1), Some(2), Some(5))
    );
    let p = page("count=-3").await;
    assert_eq!((p["itemsPerPage"].as_u64(), p["totalResults"].as_u64()), (Some(0), Some(5)));
    let p = page("count=0").await;
    assert_eq!(p["Resources"], json!([]));
    assert_eq!(p["totalResults"], 5);
    let p = page("startIndex=99").await;
    assert_eq!(
        (p["startIndex"].as_u64(), p["itemsPerPage"].as_u64(), p["totalResults"].as_u64()),
        (Some(99), Some(0), Some(5))
    );
    // Stable order across pages.
    let mut seen = Vec::new();
    for start in [1, 3, 5] {
        let p = s.get(&format!("/Users?startIndex={start}&count=2")).await.body;
        for r in p["Resources"].as_array().unwrap() {
            seen.push(r["userName"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(seen, vec!["u0", "u1", "u2", "u3", "u4"]);
    s.get("/Users?startIndex=abc").await.assert_error(400, Some("invalidValue"));
    let capped = s.get("/Users?count=100000").await;
    assert_eq!(capped.status, 200, "count above the maximum is capped");
}

#[tokio::test]
async fn every_error_status_is_a_scim_error() {
    let s = TestServer::start().await;
    let id = s.user("x").await;
    // 401 without or with a wrong token, with WWW-Authenticate.
    let r = s.raw(Method::GET, "/Users", None, None, None, &[]).await;
    r.assert_error(401, None);
    assert!(r.headers["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    s.raw(Method::GET, "/Users", Some("scimd_wrong"), None, None, &[]).await.assert_error(401, None);
    // 404: unknown route, malformed id.
    s.get("/Nope").await.assert_error(404, None);
    s.get("/Users/not-an-id").await.assert_error(404, None);
    // 405
    s.call(Method::DELETE, "/Users", None).await.assert_error(405, None);
    s.call(Method::PUT, "/ServiceProviderConfig", None).await.assert_error(405, None);
    // 415
    s.raw(Method::POST, "/Users", Some(&s.token), Some("text/plain"), Some(b"{}".to_vec()), &[])
        .await
        .assert_error(415, None);
    // 400s
    s.raw(Method::POST, "/Users", Some(&s.token), Some("application/json"), Some(b"{not json".to_vec()), &[])
        .await
        .assert_error(400, Some("invalidSyntax"));
    s.raw(
        Method::POST,
        "/Users",
        Some(&s.token),
        Some("application/scim+json; charset=utf-8"),
        Some(vec![0xff, 0xfe]),
        &[],
    )
    .await
    .assert_error(400, Some("invalidSyntax"));
    s.post("/Users", json!({"schemas": [USER]})).await.assert_error(400, Some("invalidValue"));
    s.post("/Users", json!({"schemas": [USER], "userName": "y", "bogus": 1}))
        .await
        .assert_error(400, Some("invalidValue"));
    s.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "id", "value": "z"}]))
        .await
        .assert_error(400, Some("mutability"));
    s.patch(
        &format!("/Users/{id}"),
        json!([{"op": "replace", "path": "emails[type eq \"home\"].value", "value": "z"}]),
    )
    .await
    .assert_error(400, Some("noTarget"));
    s.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "emails[type eq", "value": "z"}]))
        .await
        .assert_error(400, Some("invalidPath"));
    let deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    s.raw(Method::POST, "/Users", Some(&s.token), Some("application/json"), Some(deep.into_bytes()), &[])
        .await
        .assert_error(400, Some("invalidSyntax"));
    // 409, 412, 413
    s.post("/Users", json!({"schemas": [USER], "userName": "X"})).await.assert_error(409, Some("uniqueness"));
    s.call_with(
        Method::PATCH,
        &format!("/Users/{id}"),
        Some(json!({"Operations": [{"op": "add", "path": "title", "value": "t"}]})),
        &[("If-Match", "W/\"999\"")],
    )
    .await
    .assert_error(412, None);
    let huge = json!({"schemas": [USER], "userName": "big", "title": "x".repeat(2 * 1024 * 1024)});
    s.post("/Users", huge).await.assert_error(413, None);
    // Nothing above changed the user.
    let after = s.get(&format!("/Users/{id}")).await;
    assert_eq!(after.body["meta"]["version"], "W/\"1\"");
}

#[tokio::test]
async fn etags_and_preconditions() {
    let s = TestServer::start().await;
    let id = s.user("e").await;
    let v1 = s.get(&format!("/Users/{id}")).await.headers["etag"].to_str().unwrap().to_string();
    let ok = s
        .call_with(
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(json!({"Operations": [{"op": "add", "path": "title", "value": "t"}]})),
            &[("If-Match", &v1)],
        )
        .await;
    assert_eq!(ok.status, 200);
    let v2 = ok.headers["etag"].to_str().unwrap().to_string();
    assert_ne!(v1, v2);
    s.call_with(
        Method::PUT,
        &format!("/Users/{id}"),
        Some(json!({"schemas": [USER], "userName": "e"})),
        &[("If-Match", &v1)],
    )
    .await
    .assert_error(412, None);
    s.call_with(Method::DELETE, &format!("/Users/{id}"), None, &[("If-Match", &v1)]).await.assert_error(412, None);
    assert_eq!(s.call_with(Method::DELETE, &format!("/Users/{id}"), None, &[("If-Match", &v2)]).await.status, 204);
    // A no-op PATCH does not make a new version.
    let id = s.user("f").await;
    s.patch(
        &format!("/Users/{id}"),
        json!([{"op": "add", "path": "emails", "value": [{"value": "f@example.com", "type": "work"}]}]),
    )
    .await;
    assert_eq!(s.get(&format!("/Users/{id}")).await.body["meta"]["version"], "W/\"1\"");
}

async fn delete_policy_case(policy: &str) -> (TestServer, String, Value) {
    let s = TestServer::with(|c| c.delete_policy = policy.into()).await;
    let id = s.user("gone").await;
    let g = s.group("Team", &[&id]).await;
    assert_eq!(s.delete(&format!("/Users/{id}")).await.status, 204);
    let group = s.get(&format!("/Groups/{g}")).await.body;
    (s, id, group)
}

#[tokio::test]
async fn delete_policy_retire_keeps_the_row_hidden_and_inactive() {
    let (s, id, group) = delete_policy_case("retire").await;
    s.get(&format!("/Users/{id}")).await.assert_error(404, None);
    assert!(group.get("members").is_none(), "a retired user leaves its groups");
    assert_eq!(s.get("/Users").await.body["totalResults"], 0);
    let conn = db_row(&s, "SELECT COUNT(*), MAX(active) FROM scim_users WHERE retired IS NOT NULL").await;
    assert_eq!(conn, (1, Some(0)), "the row is kept, deactivated");
}

#[tokio::test]
async fn delete_policy_erase_removes_the_row() {
    let (s, id, _) = delete_policy_case("erase").await;
    s.get(&format!("/Users/{id}")).await.assert_error(404, None);
    assert_eq!(db_row(&s, "SELECT COUNT(*), NULL FROM scim_users").await, (0, None));
}

#[tokio::test]
async fn delete_policy_deactivate_keeps_the_user_readable() {
    let (s, id, group) = delete_policy_case("deactivate").await;
    let u = s.get(&format!("/Users/{id}")).await;
    assert_eq!(u.status, 200);
    assert_eq!(u.body["active"], false);
    assert_eq!(group["members"].as_array().map(Vec::len), Some(1));
}

/// Reads the database directly, outside scimd.
async fn db_row(s: &TestServer, sql: &'static str) -> (i64, Option<i64>) {
    use sqlx::Row;
    let pool = sqlx::SqlitePool::connect(&s.config.database_url).await.unwrap();
    let row = sqlx::query(sql).fetch_one(&pool).await.unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test]
async fn restart_keeps_all_data() {
    let s = TestServer::start().await;
    let a = s.user("persist").await;
    let g = s.group("Kept", &[&a]).await;
    s.patch(&format!("/Users/{a}"), json!([{"op": "add", "path": "title", "value": "Survivor"}])).await;
    let before_user = s.get(&format!("/Users/{a}")).await.body;
    let before_group = s.get(&format!("/Groups/{g}")).await.body;
    let s = s.restart().await;
    let after_user = s.get(&format!("/Users/{a}")).await.body;
    let after_group = s.get(&format!("/Groups/{g}")).await.body;
    // Locations carry the new port; everything else is identical.
    let strip = |mut v: Value| {
        v["meta"]["location"] = Value::Null;
        for list in ["members", "groups"] {
            if let Some(a) = v.get_mut(list).and_then(Value::as_array_mut) {
                for m in a {
                    m["$ref"] = Value::Null;
                }
            }
        }
        v
    };
    assert_eq!(strip(before_user), strip(after_user));
    assert_eq!(strip(before_group), strip(after_group));
}

#[tokio::test]
async fn content_types_and_identity_provider_quirks() {
    let s = TestServer::start().await;
    let body = serde_json::to_vec(
        &json!({"schemas": [USER, "urn:example:unknown:extra"], "userName": "plainjson", "active": "True",
        "addresses": null, "meta": {"resourceType": "User"}}),
    )
    .unwrap();
    let r =
        s.raw(Method::POST, "/Users", Some(&s.token), Some("application/json; charset=utf-8"), Some(body), &[]).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.headers["content-type"], "application/scim+json");
    assert_eq!(r.body["active"], true, "booleans go out as booleans");
    let id = r.body["id"].as_str().unwrap();
    let p = s
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "Replace", "value": {"name.givenName": "P", ENTERPRISE.to_string() + ":department": "R&D"}}]),
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert_eq!(p.body["name"]["givenName"], "P");
    assert_eq!(p.body[ENTERPRISE]["department"], "R&D");
    let g = s.post("/Groups", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group", "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
        "displayName": "Entra", "members": []})).await;
    assert_eq!(g.status, 201);
    let list = s.get("/Users?filter=USERNAME%20EQ%20%22PLAINJSON%22").await;
    assert_eq!(list.body["schemas"], json!([LIST]));
    assert_eq!(list.body["totalResults"], 1);
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let s = TestServer::with(|c| {
        c.rate_limit_per_second = 2.0;
        c.rate_limit_burst = 3;
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(s.get("/ServiceProviderConfig").await);
    }
    assert!(statuses[..3].iter().all(|r| r.status == 200), "the burst is allowed");
    let limited = statuses.iter().find(|r| r.status == 429).expect("over the limit");
    limited.assert_error(429, None);
    let retry: u64 = limited.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    // Unauthenticated requests are refused before the limiter sees them.
    s.raw(Method::GET, "/Users", None, None, None, &[]).await.assert_error(401, None);
}

#[tokio::test]
async fn no_rate_limit_by_default() {
    let s = TestServer::start().await;
    for _ in 0..100 {
        assert_eq!(s.get("/ServiceProviderConfig").await.status, 200);
    }
}

/// A group with more members than a read brings inline is answered whole all the same,
/// written as it is read: GET, projections, lists holding several, PUT and PATCH answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_groups_are_answered_whole() {
    let s = TestServer::start().await;
    let n = scimd_core::store::INLINE_RELATIONS * 2 + 37;
    let mut users = Vec::new();
    for i in 0..n {
        users.push(s.user(&format!("m{i:05}")).await);
    }
    let big = s.group("Big", &[]).await;
    let also = s.group("Also big", &[]).await;
    let small = s.group("Small", &[&users[0]]).await;
    for g in [&big, &also] {
        for chunk in users.chunks(500) {
            let value: Vec<Value> = chunk.iter().map(|u| json!({"value": u})).collect();
            let r = s.patch(&format!("/Groups/{g}"), json!([{"op": "add", "path": "members", "value": value}])).await;
            assert_eq!(r.status, 204, "{}", r.body);
        }
    }
    let ids = |members: &Value| -> Vec<String> {
        members.as_array().unwrap().iter().map(|m| m["value"].as_str().unwrap().to_string()).collect()
    };
    let got = s.get(&format!("/Groups/{big}")).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.headers["content-type"], "application/scim+json");
    assert_eq!(got.headers["etag"].to_str().unwrap(), got.body["meta"]["version"].as_str().unwrap());
    assert_eq!(got.body["displayName"], "Big");
    assert_eq!(ids(&got.body["members"]), users, "every member, in the order added");
    let first = &got.body["members"][0];
    assert_eq!(first["$ref"], json!(format!("{}/Users/{}", s.base, users[0])));
    assert_eq!(first["type"], "User");
    assert!(first.get("display").is_none(), "display is returned on request only");
    // Projections apply to every streamed member.
    let only_values = s.get(&format!("/Groups/{big}?attributes=members.value,members.display")).await;
    assert_eq!(only_values.body["members"][n - 1], json!({"value": users[n - 1], "display": format!("m{:05}", n - 1)}));
    assert!(only_values.body.get("displayName").is_none() && only_values.body["id"] == json!(big));
    assert!(s.get(&format!("/Groups/{big}?excludedAttributes=members")).await.body.get("members").is_none());
    // A list with two large groups and a small one, and `.search`.
    let list = s.get("/Groups?count=10").await;
    assert_eq!(list.body["totalResults"], 3);
    let resources = list.body["Resources"].as_array().unwrap();
    let by_id = |id: &str| resources.iter().find(|r| r["id"] == json!(id)).unwrap().clone();
    assert_eq!(ids(&by_id(&big)["members"]).len(), n);
    assert_eq!(ids(&by_id(&also)["members"]), users);
    assert_eq!(ids(&by_id(&small)["members"]), vec![users[0].clone()]);
    let search = s.post("/.search", json!({"filter": "displayName sw \"Also\""})).await;
    assert_eq!(ids(&search.body["Resources"][0]["members"]).len(), n);
    // PUT and PATCH answers that carry the members.
    let put = s
        .call(
            reqwest::Method::PUT,
            &format!("/Groups/{big}"),
            Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Bigger"})),
        )
        .await;
    assert_eq!((put.status.as_u16(), ids(&put.body["members"]).len()), (200, n), "members kept");
    let patched = s
        .patch(
            &format!("/Groups/{big}?attributes=members"),
            json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", users[0])}]),
        )
        .await;
    assert_eq!(patched.status, 200);
    assert_eq!(ids(&patched.body["members"]), users[1..].to_vec());
    // A user's groups.
    let u = s.get(&format!("/Users/{}", users[1])).await;
    assert_eq!(u.body["groups"].as_array().unwrap().len(), 2);
}
