//! Crash safety: `kill -9` the server several times under a write load, restart it, and
//! check that every write acknowledged with 2xx is there and the database is sound.
//! SQLite always; PostgreSQL too when `SCIMD_TEST_POSTGRES_URL` is set (else reported as ignored).

use rand::Rng;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_scimd");
const TOKEN: &str = "crash-test-token";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start(db: &str, port: u16) -> Child {
    let child = Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("SCIMD_DATABASE_URL", db)
        .env("SCIMD_BOOTSTRAP_TOKEN", TOKEN)
        .env("SCIMD_LOG_LEVEL", "error")
        .env_remove("SCIMD_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "scimd did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[derive(Default)]
struct Acknowledged {
    users: BTreeSet<String>,
    members: BTreeSet<String>,
}

async fn crash_cycles(db: &str) {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}/scim/v2");
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let mut server = start(db, port);
    // A group whose members the writers add to.
    let group: Value = client
        .post(format!("{base}/Groups"))
        .bearer_auth(TOKEN)
        .header("Content-Type", "application/scim+json")
        .body(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": format!("crash {}", std::process::id())}).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let gid = group["id"].as_str().unwrap().to_string();
    let acked = Arc::new(Mutex::new(Acknowledged::default()));
    let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for cycle in 0..4 {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut writers = Vec::new();
        for _ in 0..4 {
            let (client, base, gid, acked, counter, stop) =
                (client.clone(), base.clone(), gid.clone(), acked.clone(), counter.clone(), stop.clone());
            writers.push(tokio::spawn(async move {
                // Bounded: stops when told, or after 2,000 writes.
                for _ in 0..2000 {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("crash{n}@example.com")});
                    let Ok(resp) = client.post(format!("{base}/Users")).bearer_auth(TOKEN).header("Content-Type", "application/scim+json").body(body.to_string()).send().await else { continue };
                    if resp.status() != 201 {
                        continue;
                    }
                    let Ok(user) = resp.json::<Value>().await else { continue };
                    let id = user["id"].as_str().unwrap().to_string();
                    acked.lock().unwrap().users.insert(id.clone());
                    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "add", "path": "members", "value": [{"value": id}]}]});
                    let Ok(resp) = client.patch(format!("{base}/Groups/{gid}?excludedAttributes=members")).bearer_auth(TOKEN).header("Content-Type", "application/scim+json").body(patch.to_string()).send().await else { continue };
                    if resp.status() == 200 {
                        acked.lock().unwrap().members.insert(id);
                    }
                }
            }));
        }
        let pause = rand::rng().random_range(150..600);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        server.kill().unwrap(); // SIGKILL
        server.wait().unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for w in writers {
            let _ = w.await;
        }
        server = start(db, port);
        let _ = writeln!(
            std::io::stderr(),
            "crash cycle {cycle}: {} users acknowledged so far",
            acked.lock().unwrap().users.len()
        );
    }
    // Every acknowledged write survived.
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(acked.users.len() > 20, "the load wrote too little to test anything: {}", acked.users.len());
    for id in &acked.users {
        let status = client.get(format!("{base}/Users/{id}")).bearer_auth(TOKEN).send().await.unwrap().status();
        assert_eq!(status, 200, "acknowledged user {id} lost");
    }
    let group: Value =
        client.get(format!("{base}/Groups/{gid}")).bearer_auth(TOKEN).send().await.unwrap().json().await.unwrap();
    let members: BTreeSet<String> = group["members"]
        .as_array()
        .map(|a| a.iter().map(|m| m["value"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    let lost: Vec<_> = acked.members.difference(&members).collect();
    assert!(lost.is_empty(), "acknowledged member adds lost: {lost:?}");
    server.kill().unwrap();
    server.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_write_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("crash.db").display());
    crash_cycles(&db).await;
    let store = scimd_sql::SqliteStore::open(&db, &Default::default()).await.unwrap();
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn kill_9_loses_no_acknowledged_write_on_postgres() {
    let admin = std::env::var("SCIMD_TEST_POSTGRES_URL").expect("SCIMD_TEST_POSTGRES_URL names a PostgreSQL database");
    let name = format!("crash_{}", std::process::id());
    let pool = sqlx::PgPool::connect(&admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}"))).execute(&pool).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&pool).await.unwrap();
    let db = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
    crash_cycles(&db).await;
    // Referential soundness: no membership row points at a missing group or user.
    let check = sqlx::PgPool::connect(&db).await.unwrap();
    let dangling: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM scim_members m WHERE NOT EXISTS (SELECT 1 FROM scim_users u WHERE u.tenant = m.tenant AND u.id = m.member_id)",
    )
    .fetch_one(&check)
    .await
    .unwrap();
    assert_eq!(dangling, 0);
    // PostgreSQL's own consistency check of every scimd index (amcheck, shipped with
    // PostgreSQL; skipped with a message where the extension is not installed).
    if sqlx::query("CREATE EXTENSION IF NOT EXISTS amcheck").execute(&check).await.is_ok() {
        let indexes: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid \
             JOIN pg_am a ON a.oid = c.relam WHERE t.relname LIKE 'scim%' AND a.amname = 'btree'",
        )
        .fetch_all(&check)
        .await
        .unwrap();
        assert!(!indexes.is_empty());
        for index in indexes {
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT bt_index_parent_check('{index}'::regclass, true)")))
                .execute(&check)
                .await
                .unwrap_or_else(|e| panic!("index {index} failed its check: {e}"));
        }
    } else {
        let _ = writeln!(std::io::stderr(), "amcheck is not installed: PostgreSQL index checks skipped");
    }
    check.close().await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
        .execute(&pool)
        .await
        .unwrap();
}
