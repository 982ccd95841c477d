//! Change events end to end: what each SCIM write records, the JSON feed, push delivery to a
//! real receiver through failures, kills and replicas, failing and paused streams, RFC 8936
//! polling, and the in-process tail.
//!
//! The PostgreSQL tests need `SCIMD_TEST_POSTGRES_URL`; without it they are reported as ignored.

mod common;

use common::process::{Scimd, command};
use common::receiver::{Mode, Receiver, seq_of};
use common::{Db, TestServer};
use reqwest::Method;
use scimd_core::tokens::{Scope, TokenRequest, create_token};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ISSUER: &str = "https://scimd.test";
const CREATE: &str = "urn:ietf:params:scim:event:prov:create:full";
const PATCH: &str = "urn:ietf:params:scim:event:prov:patch:full";
const PUT: &str = "urn:ietf:params:scim:event:prov:put:full";
const DELETE: &str = "urn:ietf:params:scim:event:prov:delete";
const ACTIVATE: &str = "urn:ietf:params:scim:event:prov:activate";
const DEACTIVATE: &str = "urn:ietf:params:scim:event:prov:deactivate";

// ---------------------------------------------------------------- helpers

/// An admin API client for a server at `root`.
struct Admin {
    root: String,
    token: String,
    client: reqwest::Client,
}

impl Admin {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.client.request(method, format!("{}/admin/v1{path}", self.root)).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn stream(&self, id: &str) -> Value {
        let (status, body) = self.call(Method::GET, &format!("/tenants/default/streams/{id}"), None).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Every event of the default tenant, through the feed, page by page.
    async fn feed(&self) -> Vec<Value> {
        let (mut out, mut after) = (Vec::new(), 0);
        for _ in 0..1000 {
            let (status, page) =
                self.call(Method::GET, &format!("/tenants/default/events?after={after}&limit=7"), None).await;
            assert_eq!(status, 200, "{page}");
            out.extend(page["events"].as_array().unwrap().iter().cloned());
            after = page["cursor"].as_i64().unwrap();
            if !page["more"].as_bool().unwrap() {
                return out;
            }
        }
        panic!("the feed did not end");
    }
}

/// An admin token for the database at `db`, made with the command line.
fn admin_token(db: &str, env: &[(&str, &str)]) -> String {
    let mut cmd = command(db);
    cmd.args(["admin-token", "create"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Waits (bounded) until `done` holds.
async fn until(what: &str, limit: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The one event of a SET (or of a feed item) other than activation, and its body.
fn main_event(set: &Value) -> (String, Value) {
    let events = set["events"].as_object().unwrap();
    let (uri, body) = events
        .iter()
        .find(|(k, _)| !k.ends_with(":activate") && !k.ends_with(":deactivate"))
        .or_else(|| events.iter().next())
        .unwrap();
    (uri.clone(), body.clone())
}

/// A write the server acknowledged, and what its event must say.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Ack {
    id: String,
    /// `W/"n"` after the write, or "deleted".
    version: String,
}

/// Writes as an identity provider would, from `tasks` tasks at once, `rounds` rounds each,
/// until done or until the server stops answering (killed). Some writes are refused on
/// purpose: a duplicate userName (409) and a stale If-Match (412).
async fn write_load(base: String, token: String, tag: String, tasks: usize, rounds: usize, group: String) -> Vec<Ack> {
    let mut handles = Vec::new();
    for t in 0..tasks {
        let (base, token, tag, group) = (base.clone(), token.clone(), tag.to_string(), group.clone());
        handles.push(tokio::spawn(async move {
            let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
            let mut acks = Vec::new();
            let send = async |method: Method, path: &str, body: Value, if_match: Option<&str>| {
                let mut req = client
                    .request(method, format!("{base}{path}"))
                    .bearer_auth(&token)
                    .header("content-type", "application/scim+json")
                    .json(&body);
                if let Some(v) = if_match {
                    req = req.header("if-match", v);
                }
                let resp = req.send().await.ok()?;
                let status = resp.status().as_u16();
                let etag = resp.headers().get("etag").and_then(|v| v.to_str().ok()).map(str::to_string);
                let body: Value = resp.json().await.unwrap_or(Value::Null);
                Some((status, etag, body))
            };
            for i in 0..rounds {
                let name = format!("{tag}-{t}-{i}@example.com");
                let user = json!({"schemas": [USER], "userName": name, "active": true, "title": "new"});
                let Some((status, etag, body)) = send(Method::POST, "/Users", user.clone(), None).await else { break };
                assert_eq!(status, 201, "{body}");
                let id = body["id"].as_str().unwrap().to_string();
                acks.push(Ack { id: id.clone(), version: etag.unwrap() });
                if i % 5 == 0 {
                    let Some((status, _, body)) = send(Method::POST, "/Users", user, None).await else { break };
                    assert_eq!(status, 409, "{body}");
                }
                if i % 3 == 0 {
                    let op = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [{"op": "replace", "path": "title", "value": format!("t{i}")}]});
                    let Some((status, etag, body)) = send(Method::PATCH, &format!("/Users/{id}"), op, None).await
                    else {
                        break;
                    };
                    assert!(status == 200 || status == 204, "{status} {body}");
                    acks.push(Ack { id: id.clone(), version: etag.unwrap() });
                }
                if i % 7 == 0 {
                    let op = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [{"op": "replace", "path": "title", "value": "stale"}]});
                    let path = format!("/Users/{id}");
                    let Some((status, _, body)) = send(Method::PATCH, &path, op, Some("W/\"999\"")).await else {
                        break;
                    };
                    assert_eq!(status, 412, "{body}");
                }
                if i % 4 == 0 {
                    let op = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [{"op": "Add", "path": "members", "value": [{"value": id}]}]});
                    let Some((status, etag, body)) = send(Method::PATCH, &format!("/Groups/{group}"), op, None).await
                    else {
                        break;
                    };
                    assert!(status == 200 || status == 204, "{status} {body}");
                    acks.push(Ack { id: group.clone(), version: etag.unwrap() });
                }
                if i % 6 == 5 {
                    let Some((status, _, body)) = send(Method::DELETE, &format!("/Users/{id}"), json!({}), None).await
                    else {
                        break;
                    };
                    assert_eq!(status, 204, "{body}");
                    acks.push(Ack { id, version: "deleted".into() });
                }
            }
            acks
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    all
}

/// What a set of SETs says was done: (id, version) of each create, patch and put, and
/// (id, "deleted") of each delete.
fn done_by(sets: &[Value]) -> HashSet<Ack> {
    let mut out = HashSet::new();
    for set in sets {
        let id = set["sub_id"]["id"].as_str().unwrap().to_string();
        for (uri, body) in set["events"].as_object().unwrap() {
            if uri == DELETE {
                out.insert(Ack { id: id.clone(), version: "deleted".into() });
            } else if let Some(v) = body["version"].as_str() {
                out.insert(Ack { id: id.clone(), version: v.to_string() });
            }
        }
    }
    out
}

/// Checks a receiver's SETs against the log: each event arrived (at least once), first
/// arrivals in sequence order, every acknowledged write has its event, refused writes have
/// none, and every signature verified.
fn check_delivery(receiver: &Receiver, feed: &[Value], acks: &[Ack], exactly_once: bool) {
    let sets = receiver.received(|r| {
        assert!(r.rejected.is_empty(), "SETs that did not verify: {:?}", r.rejected);
        r.sets.clone()
    });
    let seqs: Vec<i64> = sets.iter().map(seq_of).collect();
    let mut first = HashSet::new();
    let mut highest = 0;
    for s in &seqs {
        if first.insert(*s) {
            assert!(*s > highest, "event {s} arrived for the first time after {highest}: {seqs:?}");
            highest = *s;
        } else {
            assert!(!exactly_once, "event {s} arrived twice: {seqs:?}");
        }
    }
    let logged: BTreeSet<i64> = feed.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    let got: BTreeSet<i64> = first.into_iter().collect();
    assert_eq!(got, logged, "every event of the log is delivered, and nothing else");
    let done = done_by(&sets);
    for a in acks {
        assert!(done.contains(a), "acknowledged write without its event: {a:?}");
    }
    // Refused writes left nothing: no stale title, no second create of a userName.
    let mut created: HashMap<String, i64> = HashMap::new();
    for set in &sets {
        assert!(!set.to_string().contains("stale"), "a refused PATCH has an event: {set}");
        if let Some(name) = set["events"].get(CREATE).and_then(|b| b["data"]["userName"].as_str()) {
            let seq = *created.entry(name.to_lowercase()).or_insert(seq_of(set));
            assert_eq!(seq, seq_of(set), "{name} created twice");
        }
    }
}

// ---------------------------------------------------------------- push through failures and kills

/// A push stream through a receiver that fails one request in forty at random (500s,
/// RFC 8935 errors, replies slower than the timeout, dropped connections), with the server
/// killed (SIGKILL) three times in the middle of a write load and started again.
async fn push_through_failures_and_kills(db: &str, extra: &[(&str, &str)]) {
    let mut env: Vec<(&str, &str)> = vec![
        ("SCIMD_EVENT_ISSUER", ISSUER),
        ("SCIMD_EVENT_PUSH_TIMEOUT_SECS", "1"),
        // A killed server's streams pass to the next one after 3 s.
        ("SCIMD_EVENT_LEASE_SECS", "3"),
    ];
    env.extend_from_slice(extra);
    let seed: u64 = std::env::var("SCIMD_EVENTS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    eprintln!("receiver failures from seed {seed} (SCIMD_EVENTS_SEED={seed} repeats them)");
    let admin_secret = admin_token(db, &env);
    let dir = tempfile::tempdir().unwrap();
    let mut server = Scimd::serve(db, "events-token", &env, Some(&dir.path().join("0.log")));
    let receiver = Receiver::start(Mode::Random { per_mille: 25, seed }, ISSUER).await;
    let admin = Admin { root: server.root(), token: admin_secret.clone(), client: reqwest::Client::new() };
    let (status, stream) = admin
        .call(Method::POST, "/tenants/default/streams", Some(json!({"name": "app", "endpoint": receiver.url})))
        .await;
    assert_eq!(status, 201, "{stream}");
    receiver.hs256(stream["secret"].as_str().unwrap());
    let id = stream["id"].as_str().unwrap().to_string();

    let scim = reqwest::Client::new();
    let group = scim
        .post(format!("{}/Groups", server.base()))
        .bearer_auth("events-token")
        .json(&json!({"schemas": [GROUP], "displayName": "everyone"}))
        .send()
        .await
        .unwrap();
    assert_eq!(group.status(), 201);
    let group_etag = group.headers()["etag"].to_str().unwrap().to_string();
    let group: Value = group.json().await.unwrap();
    let group_id = group["id"].as_str().unwrap().to_string();
    let mut acks = vec![Ack { id: group_id.clone(), version: group_etag }];

    // Killed while writing, three times: the writes in flight may or may not have committed.
    for kill in 1..=3 {
        let tag = format!("k{kill}");
        let load = tokio::spawn(write_load(server.base(), "events-token".into(), tag, 4, 60, group_id.clone()));
        tokio::time::sleep(Duration::from_millis(1200)).await;
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        let done = load.await.unwrap();
        assert!(!done.is_empty(), "the load ran before kill {kill}");
        acks.extend(done);
        server = Scimd::serve(db, "events-token", &env, Some(&dir.path().join(format!("{kill}.log"))));
    }
    let admin = Admin { root: server.root(), ..admin };
    acks.extend(write_load(server.base(), "events-token".into(), "end".into(), 4, 10, group_id).await);

    let feed = admin.feed().await;
    let last = feed.last().unwrap()["seq"].as_i64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let s = admin.stream(&id).await;
        if s["cursor"].as_i64() == Some(last) && s["backlog"] == 0 {
            break;
        }
        let log = std::fs::read_to_string(dir.path().join("3.log")).unwrap_or_default();
        assert!(Instant::now() < deadline, "not delivered: {s}\nlast {last}\nserver log:\n{log}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    check_delivery(&receiver, &feed, &acks, false);
    assert!(receiver.received(|r| r.failed) > 3, "the receiver failed some requests");
    let s = admin.stream(&id).await;
    assert_eq!((s["state"].as_str(), s["attempts"].as_i64()), (Some("active"), Some(0)), "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn push_through_failures_and_kills_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("scimd.db").display());
    push_through_failures_and_kills(&db, &[]).await;
}

/// A fresh PostgreSQL schema for a test.
async fn pg_schema(name: &str) -> String {
    let schema = format!("ev_{name}_{}", std::process::id());
    let pool = sqlx::PgPool::connect(&common::postgres_url()).await.expect("PostgreSQL unreachable");
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))).execute(&pool).await.unwrap();
    pool.close().await;
    schema
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn push_through_failures_and_kills_on_postgres() {
    let schema = pg_schema("kill").await;
    push_through_failures_and_kills(&common::postgres_url(), &[("SCIMD_PG_SCHEMA", &schema)]).await;
}

/// Two replicas on one PostgreSQL database, writes through both, one ES256 push stream:
/// every event delivered exactly once (no failures, so no retries), in sequence order, and
/// verified with the JWK Set the server publishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn two_replicas_deliver_one_stream_once_in_order() {
    let schema = pg_schema("replicas").await;
    let db = common::postgres_url();
    let env = [("SCIMD_EVENT_ISSUER", ISSUER), ("SCIMD_PG_SCHEMA", schema.as_str())];
    let admin_secret = admin_token(&db, &env);
    let a = Scimd::serve(&db, "replica-token", &env, None);
    let b = Scimd::serve(&db, "replica-token", &env, None);
    let receiver = Receiver::start(Mode::Accept, ISSUER).await;
    let admin = Admin { root: a.root(), token: admin_secret, client: reqwest::Client::new() };
    let jwks: Value = reqwest::get(format!("{}/events/jwks.json", b.root())).await.unwrap().json().await.unwrap();
    receiver.es256(&jwks);
    let (status, stream) = admin
        .call(
            Method::POST,
            "/tenants/default/streams",
            Some(json!({"name": "app", "endpoint": receiver.url, "alg": "ES256"})),
        )
        .await;
    assert_eq!(status, 201, "{stream}");
    assert!(stream.get("secret").is_none(), "an ES256 stream has no secret: {stream}");
    let id = stream["id"].as_str().unwrap().to_string();
    let group = reqwest::Client::new()
        .post(format!("{}/Groups", a.base()))
        .bearer_auth("replica-token")
        .json(&json!({"schemas": [GROUP], "displayName": "everyone"}))
        .send()
        .await
        .unwrap();
    let group: Value = group.json().await.unwrap();
    let group_id = group["id"].as_str().unwrap().to_string();
    let (from_a, from_b) = tokio::join!(
        write_load(a.base(), "replica-token".into(), "a".into(), 3, 15, group_id.clone()),
        write_load(b.base(), "replica-token".into(), "b".into(), 3, 15, group_id)
    );
    let acks: Vec<Ack> = from_a.into_iter().chain(from_b).collect();
    let feed = admin.feed().await;
    let last = feed.last().unwrap()["seq"].as_i64().unwrap();
    until("both replicas' events to be delivered", Duration::from_secs(60), async || {
        receiver.seqs().last() == Some(&last)
    })
    .await;
    // A moment for any duplicate to show up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    check_delivery(&receiver, &feed, &acks, true);
    let s = admin.stream(&id).await;
    assert_eq!(s["backlog"], 0, "{s}");
}

// ---------------------------------------------------------------- failing, paused, replayed

/// A receiver that refuses everything: the stream retries with backoff, records the
/// receiver's RFC 8935 error, and is marked failing after the retry window; it delivers
/// nothing until resumed. Pause, resume and replay do what they say.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_stream_stops_until_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("scimd.db").display());
    // A retry window of 3.6 seconds.
    let env = [("SCIMD_EVENT_ISSUER", ISSUER), ("SCIMD_EVENT_RETRY_HOURS", "0.001")];
    let admin = Admin { root: String::new(), token: admin_token(&db, &env), client: reqwest::Client::new() };
    let server = Scimd::serve(&db, "fail-token", &env, Some(&dir.path().join("log")));
    let admin = Admin { root: server.root(), ..admin };
    let receiver = Receiver::start(Mode::Refuse(400), ISSUER).await;
    let (status, stream) = admin
        .call(Method::POST, "/tenants/default/streams", Some(json!({"endpoint": receiver.url, "name": "flaky"})))
        .await;
    assert_eq!(status, 201, "{stream}");
    receiver.hs256(stream["secret"].as_str().unwrap());
    let id = stream["id"].as_str().unwrap().to_string();
    let scim = TestClient { base: server.base(), token: "fail-token".into() };
    scim.user("first").await;

    until("the stream to be marked failing", Duration::from_secs(30), async || {
        admin.stream(&id).await["state"] == "failing"
    })
    .await;
    let s = admin.stream(&id).await;
    assert!(s["attempts"].as_i64().unwrap() >= 2, "it retried: {s}");
    let error = s["last_error"].as_str().unwrap();
    assert!(error.contains("400") && error.contains("access_denied") && error.contains("refuses"), "{error}");
    assert_eq!(s["backlog"], 1, "{s}");

    // Failing: the receiver is back, but nothing is sent until an operator resumes.
    receiver.set_mode(Mode::Accept);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(receiver.seqs().is_empty());
    let (status, s) = admin.call(Method::POST, &format!("/tenants/default/streams/{id}/resume"), None).await;
    assert_eq!((status, s["state"].as_str()), (200, Some("active")), "{s}");
    until("delivery after resume", Duration::from_secs(10), async || receiver.seqs().len() == 1).await;

    // Paused: writes wait; resumed: they go.
    let (status, _) = admin.call(Method::POST, &format!("/tenants/default/streams/{id}/pause"), None).await;
    assert_eq!(status, 200);
    scim.user("second").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.seqs().len(), 1, "a paused stream sends nothing");
    assert_eq!(admin.stream(&id).await["backlog"], 1);
    admin.call(Method::POST, &format!("/tenants/default/streams/{id}/resume"), None).await;
    until("delivery after pause", Duration::from_secs(10), async || receiver.seqs().len() == 2).await;

    // Replay from the beginning: both again, in order.
    let (status, s) = admin
        .call(Method::POST, &format!("/tenants/default/streams/{id}/replay"), Some(json!({"from": "beginning"})))
        .await;
    assert_eq!((status, s["cursor"].as_i64()), (200, Some(0)), "{s}");
    until("the replay", Duration::from_secs(10), async || receiver.seqs().len() == 4).await;
    assert_eq!(receiver.seqs(), vec![1, 2, 1, 2]);

    // A new secret: SETs from now on verify with it. (One in flight at the moment of the
    // rotation may carry the old one; a receiver that refuses it gets it again, signed anew.)
    let (status, rotated) =
        admin.call(Method::POST, &format!("/tenants/default/streams/{id}/rotate-secret"), None).await;
    assert_eq!(status, 200);
    assert_ne!(rotated["secret"], stream["secret"]);
    receiver.hs256(rotated["secret"].as_str().unwrap());
    scim.user("third").await;
    until("delivery with the new secret", Duration::from_secs(10), async || receiver.seqs().len() == 5).await;
    let old = signed_with(stream["secret"].as_str().unwrap());
    receiver.received(|r| assert!(r.rejected.iter().all(|jwt| old(jwt)), "SETs no secret signed: {:?}", r.rejected));
}

/// Whether a SET verifies with an HS256 secret (its signature only).
fn signed_with(secret: &str) -> impl Fn(&str) -> bool {
    use base64::Engine as _;
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(secret).unwrap();
    move |jwt: &str| {
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        v.required_spec_claims.clear();
        v.validate_exp = false;
        v.validate_aud = false;
        jsonwebtoken::decode::<Value>(jwt, &jsonwebtoken::DecodingKey::from_secret(&key), &v).is_ok()
    }
}

struct TestClient {
    base: String,
    token: String,
}

impl TestClient {
    async fn user(&self, name: &str) -> String {
        let r = reqwest::Client::new()
            .post(format!("{}/Users", self.base))
            .bearer_auth(&self.token)
            .json(&json!({"schemas": [USER], "userName": name}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string()
    }
}

// ---------------------------------------------------------------- in process: content, poll, admin, tail

async fn admin_of(s: &TestServer) -> Admin {
    let req = TokenRequest { scope: Scope::Admin, tenant: "", name: "events", secret: None, expires: None };
    let token = create_token(s.backend.tokens.as_ref(), req, "2026-01-01T00:00:00.000000Z").await.unwrap().secret;
    Admin { root: s.root.clone(), token, client: reqwest::Client::new() }
}

/// What each kind of write records, as the feed shows it (the same content as SETs).
async fn event_content(db: Db) {
    let s = TestServer::on_db(db, "content", |_| {}).await;
    let admin = admin_of(&s).await;
    let r = s
        .post(
            "/Users",
            json!({"schemas": [USER], "userName": "ann", "externalId": "e-ann", "password": "Secret-123",
                   "name": {"givenName": "Ann"}, "emails": [{"value": "ann@example.com", "type": "work"}]}),
        )
        .await;
    assert_eq!(r.status, 201);
    let ann = r.body["id"].as_str().unwrap().to_string();
    let bob = s.user("bob").await;
    let g = s.group("staff", &[&ann]).await;
    // A PATCH of one attribute; a deactivation by PATCH; a PUT; member changes; deletes.
    assert_eq!(
        s.patch(&format!("/Users/{ann}"), json!([{"op": "replace", "path": "title", "value": "Boss"}])).await.status,
        200
    );
    assert_eq!(
        s.patch(&format!("/Users/{ann}"), json!([{"op": "replace", "path": "active", "value": false}])).await.status,
        200
    );
    let put = json!({"schemas": [USER], "userName": "bob", "active": true, "displayName": "Bob B"});
    assert_eq!(s.call(Method::PUT, &format!("/Users/{bob}"), Some(put)).await.status, 200);
    let add = json!([{"op": "add", "path": "members", "value": [{"value": bob}]}, {"op": "remove", "path": format!("members[value eq \"{ann}\"]")}]);
    assert!(s.patch(&format!("/Groups/{g}"), add).await.status.is_success());
    // Refused: nothing recorded.
    assert_eq!(s.post("/Users", json!({"schemas": [USER], "userName": "ANN"})).await.status, 409);
    assert_eq!(s.delete(&format!("/Users/{bob}")).await.status, 204);

    let feed = admin.feed().await;
    let kinds: Vec<Vec<String>> = feed
        .iter()
        .map(|e| {
            let mut k: Vec<String> = e["events"].as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        })
        .collect();
    let v = |uris: &[&str]| uris.iter().map(|u| u.to_string()).collect::<Vec<_>>();
    assert_eq!(
        kinds,
        vec![
            v(&[CREATE]),            // ann (the data says whether she is active)
            v(&[CREATE]),            // bob
            v(&[CREATE]),            // staff
            v(&[PATCH]),             // ann's title
            v(&[DEACTIVATE, PATCH]), // ann deactivated
            v(&[PUT]),               // bob replaced (still active: no activation event)
            v(&[PATCH]),             // staff: bob in, ann out
            v(&[DELETE]),            // bob deleted...
            v(&[PATCH]),             // ...and so out of staff
        ],
        "{feed:#?}"
    );
    assert!(feed.windows(2).all(|w| w[0]["seq"].as_i64() < w[1]["seq"].as_i64()));
    // A create carries the resource as a GET returns it: never the password.
    let (_, created) = main_event(&feed[0]);
    assert_eq!(created["data"]["userName"], "ann");
    assert_eq!(created["data"]["name"]["givenName"], "Ann");
    assert_eq!(created["data"]["id"], json!(ann));
    assert_eq!(created["version"], "W/\"1\"");
    assert_eq!((feed[0]["resource_type"].as_str(), feed[0]["op"].as_str()), (Some("User"), Some("create")));
    assert!(feed[0]["request_id"].as_str().is_some_and(|r| !r.is_empty()), "{}", feed[0]);
    assert!(!feed.iter().any(|e| e.to_string().contains("Secret-123")), "a password in an event");
    assert_eq!(
        feed[0]["sub_id"],
        json!({"format": "scim", "uri": format!("/Users/{ann}"), "id": ann, "externalId": "e-ann"})
    );
    // A PATCH names what changed, as the PatchOp that makes the change.
    let (_, title) = main_event(&feed[3]);
    assert_eq!(title["data"]["Operations"], json!([{"op": "replace", "path": "title", "value": "Boss"}]));
    assert_eq!(title["version"], "W/\"2\"");
    assert_eq!(feed[4]["events"][DEACTIVATE]["version"], "W/\"3\"");
    // Membership as deltas of ids, never the whole list.
    let (_, members) = main_event(&feed[6]);
    let ops = members["data"]["Operations"].as_array().unwrap();
    assert_eq!(ops[0]["op"], "add");
    assert_eq!(ops[0]["value"][0]["value"], json!(bob));
    assert_eq!(ops[1], json!({"op": "remove", "path": format!("members[value eq \"{ann}\"]")}));
    let (_, left) = main_event(&feed[8]);
    assert_eq!(feed[8]["sub_id"]["id"], json!(g));
    assert_eq!(left["data"]["Operations"], json!([{"op": "remove", "path": format!("members[value eq \"{bob}\"]")}]));
    // Every event of one request shares its txn; different requests differ.
    assert_ne!(feed[7]["txn"], feed[6]["txn"]);
    assert_eq!(feed[7]["txn"], feed[8]["txn"], "the delete and the membership it removed are one transaction");
}

#[tokio::test]
async fn event_content_on_sqlite() {
    event_content(Db::Sqlite).await;
}

#[tokio::test]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn event_content_on_postgres() {
    event_content(Db::Postgres).await;
}

/// Members added by PATCH, as identity providers add them one request at a time: a user
/// new to the group, a user already in it with a new one, a group, an id that names
/// nothing. Each event names exactly the members that joined, each new version is one more
/// than the last, and a PATCH that adds nobody makes neither.
async fn member_adds(db: Db) {
    let s = TestServer::on_db(db, "member_adds", |_| {}).await;
    let admin = admin_of(&s).await;
    let (ann, bob) = (s.user("ann").await, s.user("bob").await);
    let team = s.group("team", &[]).await;
    let g = s.group("staff", &[]).await;
    let add = |ids: &[&str]| {
        let value: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
        json!([{"op": "add", "path": "members", "value": value}])
    };
    let patch = |ids: Vec<&str>| {
        let (path, ops) = (format!("/Groups/{g}"), add(&ids));
        let s = &s;
        async move { s.patch(&path, ops).await }
    };
    let version = |r: &common::Reply| r.headers.get("etag").map(|v| v.to_str().unwrap().to_string());
    let first = patch(vec![&ann]).await;
    assert!(first.status.is_success(), "{}", first.body);
    assert_eq!(version(&first).as_deref(), Some("W/\"2\""));
    let again = patch(vec![&ann]).await;
    assert!(again.status.is_success(), "{}", again.body);
    assert_eq!(version(&again).as_deref(), Some("W/\"2\""), "adding a member again makes no new version");
    let mixed = patch(vec![&bob, &ann]).await;
    assert_eq!(version(&mixed).as_deref(), Some("W/\"3\""));
    let group = patch(vec![&team]).await;
    assert_eq!(version(&group).as_deref(), Some("W/\"4\""));
    let unknown = patch(vec!["no-such-id"]).await;
    assert_eq!(unknown.status, 400, "{}", unknown.body);
    assert_eq!(unknown.body["scimType"], "invalidValue", "{}", unknown.body);

    let read = s.get(&format!("/Groups/{g}")).await;
    assert_eq!(read.body["meta"]["version"], "W/\"4\"", "the refused add changed nothing: {}", read.body);
    let members: Vec<(&str, &str)> = read.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["value"].as_str().unwrap(), m["type"].as_str().unwrap()))
        .collect();
    assert_eq!(members, [(ann.as_str(), "User"), (bob.as_str(), "User"), (team.as_str(), "Group")]);

    let feed = admin.feed().await;
    let adds: Vec<(Value, Value)> = feed
        .iter()
        .filter(|e| e["sub_id"]["id"] == json!(g) && e["op"] != "create")
        .map(|e| {
            let (_, body) = main_event(e);
            (body["version"].clone(), body["data"]["Operations"].clone())
        })
        .collect();
    let joined =
        |id: &str, kind: &str| json!([{"op": "add", "path": "members", "value": [{"value": id, "type": kind}]}]);
    assert_eq!(
        adds,
        [
            (json!("W/\"2\""), joined(&ann, "User")),
            (json!("W/\"3\""), joined(&bob, "User")),
            (json!("W/\"4\""), joined(&team, "Group")),
        ],
        "{feed:#?}"
    );
}

#[tokio::test]
async fn member_adds_on_sqlite() {
    member_adds(Db::Sqlite).await;
}

#[tokio::test]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn member_adds_on_postgres() {
    member_adds(Db::Postgres).await;
}

/// `delete_policy = deactivate`: a DELETE is a deactivation, and its event says so.
#[tokio::test]
async fn a_delete_that_deactivates_is_a_deactivation() {
    let s = TestServer::with(|c| c.delete_policy = "deactivate".into()).await;
    let admin = admin_of(&s).await;
    let id = s.user("cy").await;
    assert_eq!(s.delete(&format!("/Users/{id}")).await.status, 204);
    let feed = admin.feed().await;
    assert_eq!(feed.len(), 2);
    let keys: Vec<&String> = feed[1]["events"].as_object().unwrap().keys().collect();
    assert_eq!(keys, vec![DEACTIVATE], "{}", feed[1]);
    // Active again: an activation.
    let r = s.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "active", "value": true}])).await;
    assert_eq!(r.status, 200);
    let feed = admin.feed().await;
    assert!(feed[2]["events"].get(ACTIVATE).is_some(), "{}", feed[2]);
}

/// RFC 8936: a receiver polls, acknowledges, is handed back what it did not acknowledge,
/// reports errors, and long-polls; its token opens its own stream only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_delivery_follows_rfc_8936() {
    let s = TestServer::with(|c| c.event_issuer = Some(ISSUER.into())).await;
    let admin = admin_of(&s).await;
    let (status, stream) = admin
        .call(Method::POST, "/tenants/default/streams", Some(json!({"delivery": "poll", "from": "beginning"})))
        .await;
    assert_eq!(status, 201, "{stream}");
    let (url, token) =
        (stream["poll_url"].as_str().unwrap().to_string(), stream["poll_token"].as_str().unwrap().to_string());
    let (_, other) = admin.call(Method::POST, "/tenants/default/streams", Some(json!({"delivery": "poll"}))).await;
    for name in ["p1", "p2", "p3"] {
        s.user(name).await;
    }
    let client = reqwest::Client::new();
    let poll = async |body: Value, token: &str| {
        let r = client.post(&url).bearer_auth(token).json(&body).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json::<Value>().await.unwrap())
    };
    let verify = |jwt: &str| {
        use base64::Engine as _;
        let key = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(stream["secret"].as_str().unwrap()).unwrap();
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        v.required_spec_claims.clear();
        v.validate_exp = false;
        v.set_audience(&[url.as_str()]);
        v.set_issuer(&[ISSUER]);
        jsonwebtoken::decode::<Value>(jwt, &jsonwebtoken::DecodingKey::from_secret(&key), &v).unwrap().claims
    };

    let (status, first) = poll(json!({"maxEvents": 2, "returnImmediately": true}), &token).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["moreAvailable"], true);
    let jtis: Vec<String> = first["sets"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(jtis.len(), 2);
    for (jti, jwt) in first["sets"].as_object().unwrap() {
        let claims = verify(jwt.as_str().unwrap());
        assert_eq!(&claims["jti"], jti);
    }
    // Not acknowledged: handed out again.
    let (_, again) = poll(json!({"maxEvents": 2, "returnImmediately": true}), &token).await;
    assert_eq!(again["sets"].as_object().unwrap().keys().cloned().collect::<Vec<_>>(), jtis);
    // One acknowledged, one reported as an error: both done; the third comes.
    let body = json!({"ack": [jtis[0]], "setErrs": {jtis[1].clone(): {"err": "invalid_request", "description": "no such user here"}},
                      "maxEvents": 10, "returnImmediately": true});
    let (_, rest) = poll(body, &token).await;
    let rest_jtis: Vec<&String> = rest["sets"].as_object().unwrap().keys().collect();
    assert_eq!(rest_jtis.len(), 1, "{rest}");
    assert_eq!(rest["moreAvailable"], false);
    let third = rest_jtis[0].clone();
    assert!(!jtis.contains(&third));
    let (_, view) =
        admin.call(Method::GET, &format!("/tenants/default/streams/{}", stream["id"].as_str().unwrap()), None).await;
    assert_eq!(view["backlog"], 1, "{view}");

    // Long poll: acknowledges the third, waits, and answers as soon as a write happens.
    let started = Instant::now();
    let waiting = tokio::spawn({
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        async move {
            let body = json!({"ack": [third], "returnImmediately": false});
            client.post(&url).bearer_auth(&token).json(&body).send().await.unwrap().json::<Value>().await.unwrap()
        }
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!waiting.is_finished(), "a long poll waits for events");
    s.user("p4").await;
    let woke = tokio::time::timeout(Duration::from_secs(5), waiting).await.expect("woken by the write").unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    let sets: Vec<&Value> = woke["sets"].as_object().unwrap().values().collect();
    assert_eq!(sets.len(), 1, "{woke}");
    assert_eq!(verify(sets[0].as_str().unwrap())["events"][CREATE]["data"]["userName"], "p4");

    // Wrong token, another stream's token, no token: the same 401.
    for t in ["scimd_poll_wrong", other["poll_token"].as_str().unwrap(), ""] {
        let r = client.post(&url).bearer_auth(t).json(&json!({})).send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert!(r.headers().contains_key("www-authenticate"));
        assert_eq!(r.json::<Value>().await.unwrap()["err"], "authentication_failed");
    }
    // A SCIM token opens no stream, a poll token no SCIM endpoint.
    assert_eq!(poll(json!({}), &s.token).await.0, 401);
    assert_eq!(s.raw(Method::GET, "/Users", Some(&token), None, None, &[]).await.status, 401);
    // Not JSON: an RFC 8935-style error.
    let r = client.post(&url).bearer_auth(&token).body("{").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["err"], "invalid_request");
}

/// The admin API refuses streams that cannot work, shows secrets only once, and keeps
/// tenants apart.
#[tokio::test]
async fn stream_management_rules() {
    let s = TestServer::start().await;
    let admin = admin_of(&s).await;
    let create = async |body: Value| admin.call(Method::POST, "/tenants/default/streams", Some(body)).await;
    for (body, code) in [
        (json!({"delivery": "push"}), "invalid_endpoint"),
        (json!({"endpoint": "ftp://example.com/x"}), "invalid_endpoint"),
        (json!({"endpoint": "not a url"}), "invalid_endpoint"),
        (json!({"endpoint": "https://user:pass@example.com/x"}), "invalid_endpoint"),
        (json!({"delivery": "poll", "endpoint": "https://example.com/x"}), "invalid_request"),
        (json!({"endpoint": "https://example.com/x", "event_types": ["explode"]}), "invalid_event_type"),
        (json!({"endpoint": "https://example.com/x", "from": "yesterday"}), "invalid_request"),
        (json!({"endpoint": "https://example.com/x", "colour": "red"}), "invalid_request"),
    ] {
        let (status, err) = create(body.clone()).await;
        assert_eq!((status, err["code"].as_str()), (400, Some(code)), "{body} -> {err}");
    }
    let (status, made) = create(json!({"endpoint": "https://example.com/hook", "authorization": "Bearer rx",
                                        "event_types": ["create", "urn:ietf:params:scim:event:prov:deactivate"], "format": "notice"}))
    .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["event_types"], json!(["urn:ietf:params:scim:event:prov:create", DEACTIVATE]));
    assert_eq!(made["audience"], "https://example.com/hook");
    let id = made["id"].as_str().unwrap();
    let (_, read) = admin.call(Method::GET, &format!("/tenants/default/streams/{id}"), None).await;
    assert!(read.get("secret").is_none() && read["authorization"] == true, "{read}");
    assert!(!read.to_string().contains("Bearer rx"), "the receiver's credentials are never shown");
    let (_, list) = admin.call(Method::GET, "/tenants/default/streams", None).await;
    assert_eq!(list["streams"].as_array().unwrap().len(), 1);
    // Another tenant sees none of it.
    let (status, _) = admin.call(Method::POST, "/tenants", Some(json!({"slug": "other"}))).await;
    assert_eq!(status, 201);
    assert_eq!(admin.call(Method::GET, &format!("/tenants/other/streams/{id}"), None).await.0, 404);
    assert_eq!(admin.call(Method::DELETE, &format!("/tenants/other/streams/{id}"), None).await.0, 404);
    let (_, other_list) = admin.call(Method::GET, "/tenants/other/streams", None).await;
    assert_eq!(other_list["streams"], json!([]));
    assert_eq!(admin.call(Method::GET, "/tenants/nobody/streams", None).await.0, 404);
    // Feed bounds.
    assert_eq!(admin.call(Method::GET, "/tenants/default/events?limit=0", None).await.0, 400);
    assert_eq!(admin.call(Method::GET, "/tenants/default/events?after=-1", None).await.0, 400);
    assert_eq!(admin.call(Method::GET, "/tenants/default/events?after=x", None).await.0, 400);
    // A SCIM token does not open the admin API.
    let scim = Admin { root: s.root.clone(), token: s.token.clone(), client: reqwest::Client::new() };
    assert_eq!(scim.call(Method::GET, "/tenants/default/streams", None).await.0, 401);
    assert_eq!(admin.call(Method::DELETE, &format!("/tenants/default/streams/{id}"), None).await.0, 204);
    assert_eq!(admin.call(Method::GET, &format!("/tenants/default/streams/{id}"), None).await.0, 404);
}

/// An application embedding scimd follows its events in process, and resumes after the
/// last one it handled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_application_tails_its_events() {
    let s = TestServer::start().await;
    let first = s.user("t1").await;
    let mut tail = scimd_events::feed::EventTail::new(s.backend.log.clone(), "default", 0, s.backend.changes.clone());
    let e = tail.next().await.unwrap();
    assert_eq!((e.resource_id.as_str(), e.seq), (first.as_str(), 1));
    // Waits for the next write, and wakes with it.
    let waiting = tokio::spawn(async move {
        let e = tail.next().await.unwrap();
        (e, tail)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished());
    let second = s.user("t2").await;
    let (e, _) = tokio::time::timeout(Duration::from_secs(2), waiting).await.expect("woken by the write").unwrap();
    assert_eq!(e.resource_id, second);
    // Resuming after the first: the second again, nothing before.
    let mut resumed =
        scimd_events::feed::EventTail::new(s.backend.log.clone(), "default", 1, s.backend.changes.clone());
    assert_eq!(resumed.next().await.unwrap().resource_id, second);
}

/// Retention: old events go, except those a stream of their tenant has still to deliver; those
/// stay until it has them or is deleted.
#[tokio::test]
async fn old_events_are_pruned_unless_a_stream_still_needs_them() {
    let s = TestServer::start().await;
    let admin = admin_of(&s).await;
    let (status, _) = admin.call(Method::POST, "/tenants", Some(json!({"slug": "other"}))).await;
    assert_eq!(status, 201);
    s.user("r1").await;
    s.user("r2").await;
    // The other tenant: one event, no stream.
    let other = admin.call(Method::POST, "/tenants/other/tokens", Some(json!({}))).await.1["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let r = s
        .at(
            Method::POST,
            &format!("{}/t/other/scim/v2/Users", s.root),
            &other,
            Some(json!({"schemas": [USER], "userName": "o1"})),
        )
        .await;
    assert_eq!(r.status, 201);
    // A paused push stream that has received nothing.
    let (_, stream) = admin
        .call(
            Method::POST,
            "/tenants/default/streams",
            Some(json!({"endpoint": "http://127.0.0.1:9/none", "from": "beginning"})),
        )
        .await;
    let id = stream["id"].as_str().unwrap();
    admin.call(Method::POST, &format!("/tenants/default/streams/{id}/pause"), None).await;
    let future = "2999-01-01T00:00:00.000000Z";
    // Everything is older than that; only the other tenant's event may go.
    assert_eq!(s.backend.log.prune_events(future).await.unwrap(), 1);
    assert_eq!(admin.feed().await.len(), 2, "undelivered events are kept");
    // Not older than the retention: kept, stream or none.
    assert_eq!(s.backend.log.prune_events("2000-01-01T00:00:00.000000Z").await.unwrap(), 0);
    admin.call(Method::DELETE, &format!("/tenants/default/streams/{id}"), None).await;
    assert_eq!(s.backend.log.prune_events(future).await.unwrap(), 2);
    assert!(admin.feed().await.is_empty());
    // Sequence numbers go on growing after a prune.
    s.user("r3").await;
    assert!(admin.feed().await[0]["seq"].as_i64().unwrap() > 3);
}

/// `scimd stream …`: the lines scripts read, and every action.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_commands() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("scimd.db").display());
    let run = |args: &[&str]| {
        let out = command(&db).args(args).output().unwrap();
        (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
    };
    let (ok, created, _) = run(&["stream", "create", "--name", "app", "--events", "create,deactivate"]);
    assert!(ok);
    let line = |prefix: &str| {
        created
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("{prefix} in {created}"))
            .to_string()
    };
    let (id, secret, poll_url, token) =
        (line("Stream id: "), line("Signing secret: "), line("Poll URL: "), line("Poll token: "));
    assert!(poll_url.ends_with(&format!("/events/streams/{id}/poll")), "{poll_url}");

    // The poll token works on a running server, for the events the stream asked for.
    let server = Scimd::serve(&db, "cli-token", &[], None);
    TestClient { base: server.base(), token: "cli-token".into() }.user("cli-user").await;
    let url = format!("{}/events/streams/{id}/poll", server.root());
    let answer: Value = reqwest::Client::new()
        .post(&url)
        .bearer_auth(&token)
        .json(&json!({"returnImmediately": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sets: Vec<&Value> = answer["sets"].as_object().unwrap().values().collect();
    assert_eq!(sets.len(), 1, "{answer}");
    assert!(signed_with(&secret)(sets[0].as_str().unwrap()), "signed with the secret the command printed");

    let (ok, list, _) = run(&["stream", "list"]);
    assert!(ok);
    let mut lines = list.lines();
    let header: Vec<&str> = lines.next().unwrap().split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
    assert_eq!(header, ["ID", "NAME", "DELIVERY", "STATE", "CURSOR", "BACKLOG", "LAST ERROR"]);
    let row: Vec<&str> = lines.next().unwrap().split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
    assert_eq!(row[..4], [id.as_str(), "app", "poll", "active"]);

    assert_eq!(run(&["stream", "pause", &id]).1.trim(), format!("paused stream {id}"));
    assert!(run(&["stream", "list"]).1.contains("paused"));
    assert_eq!(run(&["stream", "resume", &id]).1.trim(), format!("resumed stream {id}"));
    let (ok, replayed, _) = run(&["stream", "replay", &id, "--from", "beginning"]);
    assert!(ok);
    assert_eq!(replayed.trim(), format!("stream {id} delivers again after sequence number 0"));
    let (ok, rotated, _) = run(&["stream", "rotate-secret", &id]);
    assert!(ok && rotated.trim().len() >= 43 && rotated.trim() != secret, "{rotated}");
    // Refusals say why, and exit non-zero.
    let (ok, _, err) = run(&["stream", "create", "--push", "ftp://example.com/x"]);
    assert!(!ok && err.contains("http"), "{err}");
    let (ok, _, err) = run(&["stream", "replay", &id, "--from", "yesterday"]);
    assert!(!ok && err.contains("--from"), "{err}");
    let (ok, _, err) = run(&["stream", "pause", "nope"]);
    assert!(!ok && err.contains("not found"), "{err}");
    assert_eq!(run(&["stream", "delete", &id]).1.trim(), format!("deleted stream {id}"));
    assert_eq!(run(&["stream", "list"]).1.lines().count(), 1, "only the header");
}

/// `ServiceProviderConfig` says what RFC 9967 §4 defines, when asked to (strict RFC 7643
/// clients refuse the attribute, so it is off by default).
#[tokio::test]
async fn the_service_provider_config_announces_security_events() {
    let quiet = TestServer::start().await;
    assert!(quiet.get("/ServiceProviderConfig").await.body.get("securityEvents").is_none());
    let s = TestServer::with(|c| c.advertise_security_events = true).await;
    let spc = s.get("/ServiceProviderConfig").await.body;
    assert_eq!(spc["securityEvents"]["asyncRequest"], "none");
    let uris: Vec<&str> =
        spc["securityEvents"]["eventUris"].as_array().unwrap().iter().map(|u| u.as_str().unwrap()).collect();
    for uri in [CREATE, PATCH, PUT, DELETE, ACTIVATE, DEACTIVATE, "urn:ietf:params:scim:event:prov:patch:notice"] {
        assert!(uris.contains(&uri), "{uri} in {uris:?}");
    }
}
