//! Hostile requests against the real server: every one gets a 4xx SCIM error (never a 5xx),
//! and the database is unchanged afterwards. Hundreds of cases, many generated.

mod common;

use common::{Db, TestServer};
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
async fn hostile_requests_on_sqlite() {
    hostile_requests_get_4xx_and_change_nothing(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn hostile_requests_on_postgres() {
    hostile_requests_get_4xx_and_change_nothing(Db::Postgres).await;
}

async fn hostile_requests_get_4xx_and_change_nothing(db: Db) {
    let s = TestServer::on_db(db, "hostile", |_| {}).await;
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
        // Leniencies no identity provider needs: refused, not stored as something else.
        (
            Method::POST,
            "/Users".into(),
            json_ct,
            json!({"schemas": [USER], "userName": 12345}).to_string().into_bytes(),
        ),
        (
            Method::PUT,
            format!("/Users/{id}"),
            json_ct,
            json!({"schemas": [USER], "userName": 12345}).to_string().into_bytes(),
        ),
        (
            Method::POST,
            "/Users".into(),
            json_ct,
            json!({"schemas": [USER], "userName": ["a"]}).to_string().into_bytes(),
        ),
        (
            Method::PUT,
            format!("/Users/{id}"),
            json_ct,
            json!({"schemas": [USER], "userName": ["canary"]}).to_string().into_bytes(),
        ),
        (
            Method::POST,
            "/Users".into(),
            json_ct,
            json!({"schemas": [USER], "userName": "x", "emails": "nope"}).to_string().into_bytes(),
        ),
        (
            Method::PATCH,
            format!("/Users/{id}"),
            json_ct,
            json!({"Operations": [{"op": "replace", "path": "emails", "value": "nope"}]}).to_string().into_bytes(),
        ),
        // NUL is refused in every string (PostgreSQL cannot store it; SQLite could).
        (
            Method::POST,
            "/Users".into(),
            json_ct,
            json!({"schemas": [USER], "userName": "nul\u{0}name"}).to_string().into_bytes(),
        ),
        (
            Method::PATCH,
            format!("/Users/{id}"),
            json_ct,
            json!({"Operations": [{"op": "replace", "path": "externalId", "value": "\u{0}"}]}).to_string().into_bytes(),
        ),
        (
            Method::PATCH,
            format!("/Groups/{gid}"),
            json_ct,
            json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": "\u{0}"}]}]})
                .to_string()
                .into_bytes(),
        ),
        (Method::GET, "/Users?filter=userName%20eq%20%22%00%22".into(), None, vec![]),
        (Method::GET, "/Users?filter=emails%5Bvalue%20eq%20%22a%00%22%5D".into(), None, vec![]),
        // Lone surrogates in JSON escapes, as values and as keys.
        (Method::POST, "/Users".into(), json_ct, br#"{"userName": "\ud800"}"#.to_vec()),
        (Method::POST, "/Users".into(), json_ct, br#"{"userName": "x", "\udc00": 1}"#.to_vec()),
        (Method::POST, "/Users/.search".into(), json_ct, br#"{"filter": "userName eq \"\\ud800\""}"#.to_vec()),
        // Values too long to index (PostgreSQL's btree limit is about 2.7 kB per entry).
        (
            Method::POST,
            "/Users".into(),
            json_ct,
            json!({"schemas": [USER], "userName": long_text(9000)}).to_string().into_bytes(),
        ),
        (
            Method::POST,
            "/Users".into(),
            json_ct,
            json!({"schemas": [USER], "userName": "long-email", "emails": [{"value": long_text(9000)}]})
                .to_string()
                .into_bytes(),
        ),
        (
            Method::PATCH,
            format!("/Users/{id}"),
            json_ct,
            json!({"Operations": [{"op": "replace", "path": "externalId", "value": long_text(9000)}]})
                .to_string()
                .into_bytes(),
        ),
        (
            Method::POST,
            "/Groups".into(),
            json_ct,
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": long_text(9000)})
                .to_string()
                .into_bytes(),
        ),
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

/// Text that does not compress (an index entry cannot shrink below its length).
fn long_text(chars: usize) -> String {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..chars)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect()
}

/// Percent-encodes every byte, as a client building a query string would.
fn enc(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// Names in any script, with combining and astral characters, NUL and a byte-order mark, at
/// every place a name or path is read: `attributes`, `excludedAttributes`, `sortBy` and
/// `filter` (query and `.search`), body keys (POST, PUT), PATCH paths, path-less PATCH keys
/// and value-filter names. Each is refused with a 4xx SCIM error; nothing changes.
async fn names_in_any_script(db: Db) {
    let s = TestServer::on_db(db, "names", |_| {}).await;
    let id = s.user("canary").await;
    let gid = s.group("Canaries", &[&id]).await;
    let before = snapshot(&s, &id, &gid).await;
    let names = [
        "ab\u{20ac}x",
        "\u{e9}",
        "e\u{301}mails",
        "\u{1f600}",
        "user\u{0}Name",
        "\u{feff}userName",
        "urn:\u{20ac}:x",
        "urn\u{20ac}:x",
        "userName.\u{20ac}",
        "\u{540d}\u{524d}",
        "emails.val\u{fc}e",
    ];
    const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
    for n in names {
        let q = enc(n);
        let cases: Vec<(Method, String, Option<Value>)> = vec![
            (Method::GET, format!("/Users?attributes={q}"), None),
            (Method::GET, format!("/Users?excludedAttributes={q}"), None),
            (Method::GET, format!("/Users/{id}?attributes={q}"), None),
            (Method::GET, format!("/Groups/{gid}?excludedAttributes={q}"), None),
            (Method::GET, format!("/Users?sortBy={q}"), None),
            (Method::GET, format!("/Users?filter={}", enc(&format!("{n} pr"))), None),
            (Method::GET, format!("/Users?filter={}", enc(&format!("emails[{n} eq \"x\"]"))), None),
            (Method::POST, "/Users/.search".into(), Some(json!({"attributes": [n]}))),
            (Method::POST, "/.search".into(), Some(json!({"sortBy": n}))),
            (Method::POST, "/Users".into(), Some(json!({"schemas": [USER], "userName": "new", n: "x"}))),
            (Method::PUT, format!("/Users/{id}"), Some(json!({"schemas": [USER], "userName": "canary", n: "x"}))),
            (Method::POST, "/Groups".into(), Some(json!({"schemas": [GROUP], "displayName": "new", n: "x"}))),
            (
                Method::PATCH,
                format!("/Users/{id}"),
                Some(json!({"Operations": [{"op": "add", "path": n, "value": "x"}]})),
            ),
            (Method::PATCH, format!("/Users/{id}"), Some(json!({"Operations": [{"op": "remove", "path": n}]}))),
            (
                Method::PATCH,
                format!("/Users/{id}"),
                Some(json!({"Operations": [{"op": "replace", "value": {n: "x"}}]})),
            ),
            (
                Method::PATCH,
                format!("/Users/{id}"),
                Some(
                    json!({"Operations": [{"op": "replace", "path": format!("emails[{n} eq \"x\"].value"), "value": "y"}]}),
                ),
            ),
            (
                Method::PATCH,
                format!("/Groups/{gid}"),
                Some(json!({"Operations": [{"op": "remove", "path": format!("members[{n} eq \"x\"]")}]})),
            ),
        ];
        for (method, path, body) in cases {
            let what = format!("{method} {path} {}", body.as_ref().map(Value::to_string).unwrap_or_default());
            let r = s.call(method, &path, body).await;
            assert_refused(&r, &what);
        }
    }
    // Names are refused; values in any script are data like any other.
    let r = s.get(&format!("/Users?filter={}", enc("userName eq \"\u{540d}\u{1f600}e\u{301}\""))).await;
    assert_eq!((r.status.as_u16(), r.body["totalResults"].clone()), (200, json!(0)), "{}", r.body);
    assert_eq!(snapshot(&s, &id, &gid).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_in_any_script_on_sqlite() {
    names_in_any_script(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn names_in_any_script_on_postgres() {
    names_in_any_script(Db::Postgres).await;
}

/// An adapter that panics on one user: an application's bug, which must cost that request
/// a SCIM 500 naming its request id, not the connection, and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_is_answered_with_a_scim_500_and_the_request_id() {
    use scimd_core::{Adapter, Engine, Kind, Settings};
    struct Buggy;
    impl Adapter for Buggy {
        fn to_scim(&self, _kind: Kind, _id: &str, attributes: &mut serde_json::Map<String, Value>) {
            if attributes.get("userName").and_then(Value::as_str) == Some("trigger") {
                panic!("adapter bug");
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let store = std::sync::Arc::new(scimd_sql::SqliteStore::open(&url, &Default::default()).await.unwrap());
    let engine = Engine::new(std::sync::Arc::new(scimd_proto::Registry::standard()), store, Settings::default())
        .with_adapter(std::sync::Arc::new(Buggy));
    let scim = scimd_axum::ScimService::new(
        std::sync::Arc::new(engine),
        std::sync::Arc::new(scimd_axum::auth::StaticToken::new("t0ken", "default")),
        scimd_axum::ScimConfig::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/scim/v2", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, axum::Router::new().nest("/scim/v2", scim.router())).await });
    let client = reqwest::Client::new();
    let post = |name: &str| {
        client
            .post(format!("{base}/Users"))
            .bearer_auth("t0ken")
            .header("content-type", "application/scim+json")
            .header("x-request-id", format!("req-{name}"))
            .body(json!({"schemas": [USER], "userName": name}).to_string())
            .send()
    };
    let r = post("trigger").await.unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(r.headers()["content-type"], "application/scim+json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "500");
    assert!(body["detail"].as_str().unwrap().contains("req-trigger"), "{body}");
    // The server goes on serving.
    assert_eq!(post("fine").await.unwrap().status(), 201);
}
