//! Rows held on PostgreSQL. A row locked by another session (an operator's open transaction,
//! a slow job) costs a writer of it a 503 with `Retry-After` after `pg_lock_timeout_secs`,
//! not a wait until the request times out; reads go on. A scimd process that hangs in the
//! middle of a write (stopped, or cut off) holds its rows until the server ends its session,
//! `pg_idle_in_transaction_timeout_secs` later, and not until TCP notices, hours later.

mod common;

use common::TestServer;
use common::process::Scimd;
use scimd::config::Config;
use serde_json::{Value, json};
use sqlx::Connection;
use std::time::{Duration, Instant};

/// A session of its own holding `id`'s row in `schema` until it is dropped or rolls back.
async fn hold_row(schema: &str, id: &str) -> sqlx::PgConnection {
    hold_row_of(schema, "scim_users", id).await
}

async fn hold_row_of(schema: &str, table: &str, id: &str) -> sqlx::PgConnection {
    let mut admin = sqlx::PgConnection::connect(&common::postgres_url()).await.unwrap();
    sqlx::query("BEGIN").execute(&mut admin).await.unwrap();
    let lock = format!("SELECT 1 FROM {schema}.{table} WHERE id = $1 FOR UPDATE");
    let rows = sqlx::query(sqlx::AssertSqlSafe(lock)).bind(id).fetch_all(&mut admin).await.unwrap();
    assert_eq!(rows.len(), 1, "the row is there to hold");
    admin
}

/// Whether another session holds `id`'s row now.
async fn held(schema: &str, id: &str) -> bool {
    held_in(schema, "scim_users", id).await
}

async fn held_in(schema: &str, table: &str, id: &str) -> bool {
    let mut probe = sqlx::PgConnection::connect(&common::postgres_url()).await.unwrap();
    sqlx::query("BEGIN").execute(&mut probe).await.unwrap();
    let lock = format!("SELECT 1 FROM {schema}.{table} WHERE id = $1 FOR UPDATE NOWAIT");
    let taken = sqlx::query(sqlx::AssertSqlSafe(lock)).bind(id).fetch_all(&mut probe).await;
    let _ = probe.close().await;
    match taken {
        Ok(_) => false,
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("55P03") => true,
        Err(e) => panic!("probing the row: {e}"),
    }
}

fn rename(value: &str) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "replace", "path": "displayName", "value": value}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn a_row_held_elsewhere_costs_a_writer_a_prompt_503() {
    let s = TestServer::on_db(common::Db::Postgres, "held_row", |c: &mut Config| c.pg_lock_timeout_secs = 1).await;
    let schema = s.config.pg_schema.clone().unwrap();
    let id = s.user("held").await;
    let mut holder = hold_row(&schema, &id).await;

    let started = Instant::now();
    let r = s.patch(&format!("/Users/{id}"), rename("waited")["Operations"].clone()).await;
    let took = started.elapsed();
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.headers.contains_key("retry-after"), "Retry-After");
    assert!(took < Duration::from_secs(5), "answered after {took:?}, with a lock timeout of 1 s");
    let read = s.get(&format!("/Users/{id}")).await;
    assert_eq!(read.status, 200, "reads do not wait for the row: {}", read.body);
    assert!(read.body.get("displayName").is_none(), "the refused PATCH changed nothing: {}", read.body);

    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    let r = s.patch(&format!("/Users/{id}"), rename("after")["Operations"].clone()).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn a_hung_process_holds_its_rows_only_until_the_idle_timeout() {
    let schema = format!("l_hung_{}", std::process::id());
    let db = common::postgres_url();
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))).execute(&pool).await.unwrap();
    pool.close().await;
    const TOKEN: &str = "hung-token";
    let env = [
        ("SCIMD_PG_SCHEMA", schema.as_str()),
        ("SCIMD_REQUEST_TIMEOUT_SECS", "2"),
        ("SCIMD_PG_IDLE_IN_TRANSACTION_TIMEOUT_SECS", "3"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("scimd.log");
    let s = Scimd::serve(&db, TOKEN, &env, Some(&log));
    let client = reqwest::Client::new();
    let id = s.user(TOKEN, "hung").await;
    let patch = |value: &str| {
        client
            .patch(format!("{}/Users/{id}", s.base()))
            .bearer_auth(TOKEN)
            .header("content-type", "application/scim+json")
            .body(rename(value).to_string())
            .send()
    };

    // scimd's PATCH waits for the row, held here; scimd stops; the row is let go: scimd's
    // session takes it and then sits inside its transaction, holding it, with nobody to
    // finish the transaction.
    let mut holder = hold_row(&schema, &id).await;
    let waiting = tokio::spawn(patch("while hung"));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // Waiting for this holder, not for any lock of a test running beside this one.
        let waiters: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))",
        )
        .fetch_one(&mut holder)
        .await
        .unwrap();
        if waiters > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "scimd's PATCH never waited for the row");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let signal = |name: &str| {
        let pid = s.child.id().to_string();
        assert!(std::process::Command::new("kill").args([name, &pid]).status().unwrap().success());
    };
    signal("-STOP");
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(held(&schema, &id).await, "the stopped process holds the row");
    let released = Instant::now();
    while held(&schema, &id).await {
        assert!(released.elapsed() < Duration::from_secs(10), "the row is still held after 10 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    signal("-CONT");

    // The PATCH that was under way is answered, one way or another, but not with a 500.
    let answered = waiting.await.unwrap().expect("an answer, not a dropped connection");
    let status = answered.status().as_u16();
    assert!(matches!(status, 200 | 503), "{status}: {}", answered.text().await.unwrap());
    let after = patch("after").await.unwrap();
    let status = after.status();
    assert_eq!(
        status,
        200,
        "scimd writes again: {}\n{}",
        after.text().await.unwrap(),
        std::fs::read_to_string(&log).unwrap()
    );
}

/// A write cut off while its statement waits (the request timed out) leaves no transaction
/// open behind it: the connection was in the middle of an answer, and is closed rather than
/// handed to the next request, which would otherwise run inside the cut transaction (a read
/// leaving it open, holding the row; a write committing it). The cut PATCH changes nothing;
/// writes go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn a_write_cut_off_mid_statement_leaves_no_transaction_behind() {
    let s = TestServer::on_db(common::Db::Postgres, "cut_write", |c: &mut Config| {
        c.request_timeout_secs = 1;
        // One connection: the cut one is the only one the next request could be given.
        c.pg_max_connections = 1;
    })
    .await;
    let schema = s.config.pg_schema.clone().unwrap();
    let id = s.user("cut").await;
    let mut holder = hold_row(&schema, &id).await;
    let r = s.patch(&format!("/Users/{id}"), rename("cut off")["Operations"].clone()).await;
    // The limit is the server's: 503, try again shortly (not 408, the client's slowness).
    r.assert_error(503, None);
    assert!(r.body["detail"].as_str().unwrap().contains("read the resource before sending"), "{}", r.body);
    assert_eq!(r.headers["retry-after"], "1");
    // The cut statement now takes the row, on a connection that must not serve again.
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let read = s.get(&format!("/Users/{id}")).await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert!(!held(&schema, &id).await, "nobody holds the row after the next request");
    let ops = json!([{"op": "replace", "path": "nickName", "value": "after"}]);
    let r = s.patch(&format!("/Users/{id}"), ops).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let read = s.get(&format!("/Users/{id}")).await;
    assert_eq!(read.body["nickName"], "after", "{}", read.body);
    assert!(read.body.get("displayName").is_none(), "the cut PATCH changed nothing: {}", read.body);
}

/// Two users in the same two groups, deleted at once. Each delete takes the groups its user
/// leaves in one order (their row numbers'), whatever order it finds them in: while the first group is held elsewhere, neither delete holds the
/// second, and once it is let go they run one after the other. Taken in the order found
/// (which follows where the rows lie, and differs between deletes as groups are written),
/// two deletes could each hold a group the other waits for: a deadlock, which PostgreSQL
/// breaks after `deadlock_timeout` (a second) by failing one, which then runs again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn deletes_take_the_groups_they_leave_in_one_order() {
    let app = format!("scimd-ordered-{}", std::process::id());
    let s = std::sync::Arc::new(
        TestServer::on_db(common::Db::Postgres, "ordered_leave", |c: &mut Config| {
            c.database_url = format!("{}?application_name={app}", c.database_url);
        })
        .await,
    );
    let schema = s.config.pg_schema.clone().unwrap();
    let first = s.group("First", &[]).await;
    let second = s.group("Second", &[]).await;
    let (ann, bob) = (s.user("ann").await, s.user("bob").await);
    let add = |group: &str, user: &str| {
        let (s, group, user) = (s.clone(), group.to_string(), user.to_string());
        async move {
            let op = json!([{"op": "add", "path": "members", "value": [{"value": user}]}]);
            let r = s.patch(&format!("/Groups/{group}"), op).await;
            assert_eq!(r.status, 204, "{}", r.body);
        }
    };
    // The first group written last: its newest row version lies after the second's, where
    // a scan of the table finds it after the second.
    add(&first, &bob).await;
    add(&second, &bob).await;
    add(&second, &ann).await;
    add(&first, &ann).await;
    // Versions as the deletes find them: each leaves both groups, one new version each.
    let version = |group: &str| {
        let (s, group) = (s.clone(), group.to_string());
        async move { s.get(&format!("/Groups/{group}")).await.body["meta"]["version"].as_str().unwrap().to_string() }
    };
    let before = (version(&first).await, version(&second).await);

    let mut holder = hold_row_of(&schema, "scim_groups", &first).await;
    let delete = |user: &str| {
        let (s, user) = (s.clone(), user.to_string());
        tokio::spawn(async move { s.delete(&format!("/Users/{user}")).await })
    };
    let deletes = [delete(&ann), delete(&bob)];
    // Both deletes wait for a lock (bounded: 10 s).
    let mut watch = sqlx::PgConnection::connect(&common::postgres_url()).await.unwrap();
    let waiting = "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'";
    let mut both = false;
    for _ in 0..200 {
        let n: i64 = sqlx::query_scalar(waiting).bind(&app).fetch_one(&mut watch).await.unwrap();
        if n == 2 {
            both = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(both, "both deletes wait for the group held here");
    assert!(
        !held_in(&schema, "scim_groups", &second).await,
        "no delete holds the second group while it waits for the first"
    );

    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    for d in deletes {
        let r = d.await.unwrap();
        assert_eq!(r.status, 204, "{}", r.body);
    }
    let deadlocks = s.backend.store.db_stats().conflicts.into_iter().find(|(c, _)| *c == "deadlock").unwrap().1;
    assert_eq!(deadlocks, 0, "the deletes did not deadlock");
    for (group, was) in [(&first, &before.0), (&second, &before.1)] {
        let g = s.get(&format!("/Groups/{group}")).await.body;
        assert!(g.get("members").is_none(), "both users left {group}: {g}");
        assert_ne!(&g["meta"]["version"].as_str().unwrap().to_string(), was, "a new version of {group}");
    }
}
