//! Hostile requests against the real server: every one gets a 4xx SCIM error (never a 5xx),
//! and the database is unchanged afterwards. Hundreds of cases, many generated.

mod common;

use common::TestServer;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use reqwest::Method;
use serde_json::{Value, json};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

/// The state a refused request must leave as it was.
async fn snapshot(s: &TestServer, id: &str, gid: &str) -> (Value, Value, Value) {
    let users = s.get("/Users?count=1000").await.body;
    let user = s.get(&format!("/Users/{id}")).await.body;
    let group = s.get(&format!("/Groups/{gid}")).await.body;
    (users["totalResults"].clone(), user, group)
}

fn assert_refused(r: &common::Reply, what: &str) {
    let status = r.status.as_u16();
    assert!((400..500).contains(&status), "{what}: status {status}, body {}", r.body);
    assert_eq!(r.headers["content-type"], "application/scim+json", "{what}");
    assert_eq!(r.body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error", "{what}: {}", r.body);
    assert_eq!(r.body["status"], json!(status.to_string()), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_4xx_and_change_nothing() {
    let s = TestServer::start().await;
    let id = s.user("canary").await;
    let gid = s.group("Canaries", &[&id]).await;
    let before = snapshot(&s, &id, &gid).await;
    let json_ct = Some("application/scim+json");

    // Hand-written cases.
    let deep_json = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_filter = format!("{}userName pr{}", "(".repeat(200), ")".repeat(200));
    let long_filter = format!("userName eq \"{}\"", "a".repeat(10_000));
    let bodies: Vec<(Method, String, Option<&str>, Vec<u8>)> = vec![
        (Method::POST, "/Users".into(), json_ct, b"{".to_vec()),
        (Method::POST, "/Users".into(), json_ct, vec![0xc3, 0x28, 0xa0, 0xa1]),
        (Method::POST, "/Users".into(), json_ct, deep_json.into_bytes()),
        (Method::POST, "/Users".into(), json_ct, b"null".to_vec()),
        (Method::POST, "/Users".into(), json_ct, b"[]".to_vec()),
        (
            Method::POST,
            "/Users".into(),
            json_ct,
            json!({"schemas": ["urn:evil"], "userName": "x"}).to_string().into_bytes(),
        ),
        (
            Method::POST,
            "/Users".into(),
            json_ct,
            json!({"schemas": [USER], "userName": {"$ne": 1}}).to_string().into_bytes(),
        ),
        (
            Method::POST,
            "/Users".into(),
            json_ct,
            json!({"schemas": [USER], "userName": "canary"}).to_string().into_bytes(),
        ),
        (
            Method::POST,
            "/Users".into(),
            json_ct,
            json!({"schemas": [USER], "userName": "x", "emails": [{"value": 1, "primary": "maybe"}]})
                .to_string()
                .into_bytes(),
        ),
        (Method::POST, "/Users".into(), Some("text/xml"), b"<user/>".to_vec()),
        (Method::POST, "/Users".into(), json_ct, vec![b'a'; 2 * 1024 * 1024]),
        (Method::PUT, format!("/Users/{id}"), json_ct, json!({"schemas": [USER]}).to_string().into_bytes()),
        (
            Method::PUT,
            format!("/Users/{id}"),
            json_ct,
            json!({"schemas": [USER], "userName": "x", "bogus": true}).to_string().into_bytes(),
        ),
        (
            Method::PATCH,
            format!("/Users/{id}"),
            json_ct,
            json!({"Operations": [{"op": "replace", "path": "userName"}]}).to_string().into_bytes(),
        ),
        (
            Method::PATCH,
            format!("/Users/{id}"),
            json_ct,
            json!({"Operations": [{"op": "remove", "path": "userName"}]}).to_string().into_bytes(),
        ),
        (
            Method::PATCH,
            format!("/Users/{id}"),
            json_ct,
            json!({"Operations": [{"op": "add", "path": "meta.version", "value": "1"}]}).to_string().into_bytes(),
        ),
        (
            Method::PATCH,
            format!("/Users/{id}"),
            json_ct,
            json!({"Operations": [{"op": "add", "path": "emails[type eq \"work\"", "value": "x"}]})
                .to_string()
                .into_bytes(),
        ),
        (
            Method::PATCH,
            format!("/Users/{id}"),
            json_ct,
            json!({"Operations": [{"op": "add", "path": "title", "value": "t"}, {"op": "explode"}]})
                .to_string()
                .into_bytes(),
        ),
        (
            Method::PATCH,
            format!("/Groups/{gid}"),
            json_ct,
            json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": "../../etc/passwd"}]}]})
                .to_string()
                .into_bytes(),
        ),
        (
            Method::PATCH,
            format!("/Groups/{gid}"),
            json_ct,
            json!({"Operations": [{"op": "replace", "path": "displayName", "value": ""}]}).to_string().into_bytes(),
        ),
        (Method::POST, "/Users/.search".into(), json_ct, json!({"filter": deep_filter}).to_string().into_bytes()),
        (Method::POST, "/Users/.search".into(), json_ct, json!({"filter": long_filter}).to_string().into_bytes()),
        (Method::POST, "/.search".into(), json_ct, json!({"startIndex": "x"}).to_string().into_bytes()),
        (Method::DELETE, "/Users/'; DROP TABLE scim_users; --".into(), None, vec![]),
        (Method::GET, "/Users/%00".into(), None, vec![]),
        (Method::GET, format!("/Users?filter={}", "userName%20eq%20%22x%22%20or%20".repeat(200)), None, vec![]),
        (Method::GET, "/Users?filter=userName%20eq%20%22x%22)%20or%20(1%3D1".into(), None, vec![]),
        (Method::GET, "/Users?startIndex=1e999&count=-1e999".into(), None, vec![]),
        (Method::GET, "/Users?startIndex=%ff".into(), None, vec![]),
        (Method::GET, "/Users?sortBy=userName;DROP".into(), None, vec![]),
        (Method::GET, "/Users?sortOrder=sideways".into(), None, vec![]),
        (Method::GET, "/Users?attributes=a%20b".into(), None, vec![]),
        (Method::TRACE, "/Users".into(), None, vec![]),
        (Method::GET, "/../../etc/passwd".into(), None, vec![]),
    ];
    for (method, path, ct, body) in bodies {
        let what = format!("{method} {}", &path[..path.len().min(80)]);
        let body = if body.is_empty() { None } else { Some(body) };
        let r = s.raw(method, &path, Some(&s.token), ct, body, &[]).await;
        assert_refused(&r, &what);
    }

    // Generated: filters from filter-like fragments, JSON bodies, PATCH operations, paging.
    let mut runner = TestRunner::new(Config { cases: 1, ..Config::default() });
    let fragment = prop::sample::select(vec![
        "(", ")", "[", "]", " ", "and", "or", "not", "eq", "pr", "gt", "\"x\"", "\"", "userName", "emails", ".value",
        "nope", "1", "-", "true", "null", "urn:x:", "$ref", "é", "\\u0000",
    ]);
    let filters = prop::collection::vec(fragment, 1..25).prop_map(|v| v.concat());
    let scalar = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::String),
    ];
    let json = scalar.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "userName",
                    "emails",
                    "name",
                    "active",
                    "schemas",
                    "value",
                    "op",
                    "path",
                    "Operations",
                    "members",
                    "x"
                ])
                .prop_map(str::to_string),
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    let mut refused = 0;
    for i in 0..400 {
        let r = match i % 4 {
            0 => {
                let f = filters.new_tree(&mut runner).unwrap().current();
                s.call(Method::POST, "/Users/.search", Some(json!({"filter": f}))).await
            }
            1 => {
                // A body with no userName cannot create anything.
                let mut v = json.new_tree(&mut runner).unwrap().current();
                if let Value::Object(m) = &mut v {
                    m.remove("userName");
                }
                s.call(Method::POST, "/Users", Some(v)).await
            }
            2 => {
                let v = json.new_tree(&mut runner).unwrap().current();
                s.call(Method::PATCH, &format!("/Users/{id}"), Some(json!({"Operations": [v]}))).await
            }
            _ => {
                let a = "[ -~]{0,6}".new_tree(&mut runner).unwrap().current();
                let b = "[ -~]{0,6}".new_tree(&mut runner).unwrap().current();
                let q: String =
                    format!("startIndex={a}&count={b}").bytes().map(|c| format!("%{c:02X}")).collect::<String>();
                s.get(&format!("/Users?x={q}")).await
            }
        };
        let status = r.status.as_u16();
        assert!(status < 500, "case {i}: {status} {}", r.body);
        if status >= 400 {
            assert_refused(&r, &format!("generated case {i}"));
            refused += 1;
        }
    }
    assert!(refused > 100, "the generators should mostly produce refused requests: {refused}");

    // Nothing changed.
    assert_eq!(snapshot(&s, &id, &gid).await, before);
}
