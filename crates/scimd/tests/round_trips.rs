//! Round trips to PostgreSQL per request, counted on the wire (`common::pgwire`) in steady
//! state: a read by id is one statement; a create three round trips, a PATCH, a PUT and a
//! DELETE four, `BEGIN` and `COMMIT` included; adding a user to a group four. A
//! connection comes back from a request without a round trip of its own (no ping), and
//! from a refused write with its `ROLLBACK` sent at once.

mod common;

use common::pgwire::{Trip, WireLog};
use common::proxy::split_url;
use common::{Db, TestServer};
use scimd::config::Config;
use serde_json::{Value, json};
use std::time::Duration;

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// Everything scimd sent while `op` ran and shortly after (what a pool does with a connection
/// that comes back). The token is used just before, so that its check is answered from
/// memory (`TOKEN_CACHE_TTL`).
async fn trips<F: std::future::Future<Output = u16>>(s: &TestServer, wire: &WireLog, op: F) -> Vec<(usize, Trip)> {
    let (status, log) = answered(s, wire, op).await;
    assert!((200..300).contains(&status), "{status}");
    log
}

async fn answered<F: std::future::Future<Output = u16>>(
    s: &TestServer,
    wire: &WireLog,
    op: F,
) -> (u16, Vec<(usize, Trip)>) {
    assert_eq!(s.get("/ServiceProviderConfig").await.status, 200);
    tokio::time::sleep(Duration::from_millis(100)).await;
    wire.take();
    let status = op.await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    (status, wire.take())
}

/// A server on one PostgreSQL connection, through the counting proxy.
async fn counted(test: &str) -> (TestServer, WireLog) {
    let (prefix, server, path) = split_url(&common::postgres_url());
    let wire = WireLog::start(server).await;
    let separator = if path.contains('?') { '&' } else { '?' };
    let url = format!("{prefix}127.0.0.1:{}{path}{separator}sslmode=disable", wire.port);
    let s = TestServer::on_db(Db::Postgres, test, |c: &mut Config| {
        c.database_url = url.clone();
        // One connection: every statement of the pool is on it, in order.
        c.pg_max_connections = 1;
        c.pg_health_check_ms = 60_000;
    })
    .await;
    (s, wire)
}

fn no_ping(what: &str, log: &[(usize, Trip)]) {
    assert!(!log.iter().any(|(_, t)| *t == Trip::Ping), "{what}: the connection came back with a ping: {log:#?}");
}

/// The transaction on one connection that runs a statement containing `marker`: its round
/// trips from `BEGIN` (a write's also asks for its transaction id, in the same message) to
/// `COMMIT`.
fn transaction_of(log: &[(usize, Trip)], marker: &str) -> Vec<Trip> {
    let (at, conn) = log
        .iter()
        .enumerate()
        .find(|(_, (_, t))| t.sql().contains(marker))
        .map(|(i, (c, _))| (i, *c))
        .unwrap_or_else(|| panic!("no statement with {marker:?} in {log:#?}"));
    let own: Vec<(usize, &Trip)> =
        log.iter().enumerate().filter(|(_, (c, _))| *c == conn).map(|(i, (_, t))| (i, t)).collect();
    let here = own.iter().position(|(i, _)| *i == at).unwrap();
    let begin = own[..here].iter().rposition(|(_, t)| t.sql().starts_with("BEGIN")).expect("a BEGIN before it");
    let commit = own[here..].iter().position(|(_, t)| t.sql() == "COMMIT").expect("a COMMIT after it") + here;
    own[begin..=commit].iter().map(|(_, t)| (*t).clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn round_trips_per_request() {
    let (s, wire) = counted("round_trips").await;
    let user = |name: &str| json!({"schemas": [USER], "userName": name, "emails": [{"value": format!("{name}@example.com"), "primary": true}]});
    let mut ids = Vec::new();
    for i in 0..6 {
        let r = s.post("/Users", user(&format!("user{i}"))).await;
        assert_eq!(r.status, 201, "{}", r.body);
        ids.push(r.body["id"].as_str().unwrap().to_string());
    }
    let members: Vec<Value> = ids[..2].iter().map(|id| json!({"value": id})).collect();
    let g = s.post("/Groups", json!({"schemas": [GROUP], "displayName": "g", "members": members})).await;
    let group = g.body["id"].as_str().unwrap().to_string();

    let (s, user) = (&s, &user);
    // Each request once before it is counted, so that its statements are prepared on the
    // connection (the first use of a statement costs one round trip more, once).
    let get = |id: String| async move { s.get(&format!("/Users/{id}")).await.status.as_u16() };
    let patch = |id: String| async move {
        let ops = json!([{"op": "replace", "path": "displayName", "value": format!("name of {id}")}]);
        s.patch(&format!("/Users/{id}"), ops).await.status.as_u16()
    };
    let put = |id: String| async move {
        s.call(reqwest::Method::PUT, &format!("/Users/{id}"), Some(user(&format!("put-{id}")))).await.status.as_u16()
    };
    let create = |name: String| async move { s.post("/Users", user(&name)).await.status.as_u16() };
    let delete = |id: String| async move { s.delete(&format!("/Users/{id}")).await.status.as_u16() };
    let add_member = |id: String| {
        let group = group.clone();
        async move {
            let ops = json!([{"op": "add", "path": "members", "value": [{"value": id}]}]);
            s.patch(&format!("/Groups/{group}"), ops).await.status.as_u16()
        }
    };
    get(ids[2].clone()).await;
    patch(ids[2].clone()).await;
    put(ids[2].clone()).await;
    create("warm".into()).await;
    delete(ids[0].clone()).await;
    add_member(ids[2].clone()).await;
    add_member(ids[2].clone()).await;

    // A read by id: one statement, outside any transaction.
    let log = trips(s, &wire, get(ids[3].clone())).await;
    let reads: Vec<&(usize, Trip)> = log.iter().filter(|(_, t)| t.sql().contains("FROM scim_users t WHERE")).collect();
    assert_eq!(reads.len(), 1, "{log:#?}");
    assert!(matches!(reads[0].1, Trip::Execute(_)), "{log:#?}");
    assert!(!log.iter().any(|(_, t)| t.sql().starts_with("BEGIN")), "no transaction around a read: {log:#?}");
    no_ping("a read", &log);

    // Writes: one transaction each, `BEGIN` and `COMMIT` included, and nothing after.
    for (what, log, marker, most) in [
        ("create", trips(s, &wire, create("counted".into())).await, "INSERT INTO scim_users", 3),
        ("PATCH", trips(s, &wire, patch(ids[3].clone())).await, "UPDATE scim_users", 4),
        ("PUT", trips(s, &wire, put(ids[3].clone())).await, "UPDATE scim_users", 4),
        ("DELETE", trips(s, &wire, delete(ids[1].clone())).await, "SET retired", 4),
        // The group locked, then the member checked and added with the group's new version
        // and its event, on the guess that it is a user not in the group yet.
        ("member add", trips(s, &wire, add_member(ids[3].clone())).await, "INSERT INTO scim_members", 4),
        // A member there already: the guess fails, and nothing more is written.
        ("member re-add", trips(s, &wire, add_member(ids[3].clone())).await, "INSERT INTO scim_members", 4),
    ] {
        let transaction = transaction_of(&log, marker);
        assert!(
            !transaction.iter().any(|t| matches!(t, Trip::Prepare(_))),
            "{what}: prepared already: {transaction:#?}"
        );
        assert!(transaction.len() <= most, "{what}: {} round trips: {transaction:#?}", transaction.len());
        no_ping(what, &log);
    }
}

/// A create refused for its userName (409) ends its transaction with a `ROLLBACK` sent at
/// once, not left for the connection's next use, and the connection then serves the next
/// request, whose create is committed (seen from another session).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn a_refused_write_rolls_back_at_once() {
    let (s, wire) = counted("refused_write").await;
    let user = |name: &str| json!({"schemas": [USER], "userName": name});
    assert_eq!(s.post("/Users", user("taken")).await.status, 201);
    let (status, log) = answered(&s, &wire, async { s.post("/Users", user("taken")).await.status.as_u16() }).await;
    assert_eq!(status, 409);
    let insert = log.iter().position(|(_, t)| t.sql().contains("INSERT INTO scim_users")).expect("the insert");
    let after: Vec<&Trip> = log[insert + 1..].iter().map(|(_, t)| t).collect();
    assert_eq!(after, [&Trip::Simple("ROLLBACK".into())], "{log:#?}");

    assert_eq!(s.post("/Users", user("next")).await.status, 201);
    let schema = s.config.pg_schema.clone().unwrap();
    let mut other = <sqlx::PgConnection as sqlx::Connection>::connect(&common::postgres_url()).await.unwrap();
    let count = format!("SELECT count(*) FROM {schema}.scim_users WHERE user_name = 'next'");
    let committed: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(count)).fetch_one(&mut other).await.unwrap();
    assert_eq!(committed, 1, "the next create is committed");
}

/// More requests at once than connections, reads and writes: each waits its turn, and none
/// waits for a connection kept idle for the next request (the pool's acquire timeout, 1 s,
/// is how long one may stay idle; a waiter left waiting for it would be answered 503).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn more_requests_than_connections_each_get_one_in_turn() {
    let s = TestServer::on_db(Db::Postgres, "saturated", |c: &mut Config| {
        c.pg_max_connections = 1;
        c.pg_acquire_timeout_secs = 1;
    })
    .await;
    let id = s.user("busy").await;
    let (s, id) = (&s, &id);
    let clients = (0..8).map(|client| async move {
        let mut statuses = Vec::new();
        for i in 0..30 {
            let r = if i % 5 == 0 {
                let ops = json!([{"op": "replace", "path": "nickName", "value": format!("{client}-{i}")}]);
                s.patch(&format!("/Users/{id}"), ops).await
            } else {
                s.get(&format!("/Users/{id}")).await
            };
            statuses.push((r.status.as_u16(), r.body.to_string()));
        }
        statuses
    });
    let answered: Vec<(u16, String)> = futures_util::future::join_all(clients).await.into_iter().flatten().collect();
    let failed: Vec<&(u16, String)> = answered.iter().filter(|(status, _)| *status != 200).collect();
    assert_eq!(answered.len(), 240);
    assert!(failed.is_empty(), "{} of 240 failed: {failed:?}", failed.len());
}
