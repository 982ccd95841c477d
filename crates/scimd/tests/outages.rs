//! The database in trouble: PostgreSQL becoming unreachable (cut by a TCP proxy between
//! scimd and the server) and a SQLite disk filling up (a small tmpfs). Requests are
//! answered fast with a SCIM 503 (507 for a full disk) and `Retry-After`, `/readyz` says
//! "not ready" within a second, service resumes by itself, and every acknowledged write
//! is still there afterwards. A server started while PostgreSQL cannot be reached waits for
//! it.

mod common;

use common::TestServer;
use common::proxy::{Proxy, split_url};
use scimd::config::Config;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

async fn create(s: &TestServer, name: &str) -> (u16, Option<String>, Value, Duration) {
    let started = Instant::now();
    let r = s.post("/Users", json!({"schemas": [USER], "userName": name})).await;
    let retry = r.headers.get("retry-after").map(|v| v.to_str().unwrap().to_string());
    (r.status.as_u16(), retry, r.body, started.elapsed())
}

async fn ready(s: &TestServer) -> (u16, String, Duration) {
    let started = Instant::now();
    let root = s.base.trim_end_matches(&s.config.path_prefix).to_string();
    let r = s.client.get(format!("{root}/readyz")).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap(), started.elapsed())
}

async fn exists(s: &TestServer, name: &str) -> bool {
    let q: String = format!("userName eq \"{name}\"").bytes().map(|b| format!("%{b:02X}")).collect();
    let r = s.get(&format!("/Users?filter={q}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["totalResults"] == 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn postgres_outage_is_answered_fast_and_service_resumes() {
    let (prefix, server, path) = split_url(&common::postgres_url());
    let mut proxy = Proxy::start(server).await;
    let url = format!("{prefix}127.0.0.1:{}{path}", proxy.port);
    let s = TestServer::on_db(common::Db::Postgres, "outage", |c: &mut Config| {
        c.database_url = url.clone();
        c.pg_health_check_ms = 200;
        c.pg_acquire_timeout_secs = 5;
    })
    .await;
    let s = Arc::new(s);
    for i in 0..10 {
        assert_eq!(create(&s, &format!("before-{i}")).await.0, 201);
    }
    // A writer all along: what it was told succeeded must be there at the end.
    let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (s, acknowledged, stop) = (s.clone(), acknowledged.clone(), stop.clone());
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for i in 0..2000 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let name = format!("during-{i}");
                let (status, _, body, _) = create(&s, &name).await;
                assert!(status == 201 || status == 503, "{status}: {body}");
                if status == 201 {
                    acknowledged.lock().unwrap().insert(name);
                }
                statuses.push(status);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            statuses
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    proxy.cut().await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    for i in 0..10 {
        let (status, retry, body, took) = create(&s, &format!("outage-{i}")).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error");
        assert!(retry.is_some_and(|r| r.parse::<u64>().is_ok_and(|n| n >= 1)), "Retry-After");
        assert!(took < Duration::from_millis(500), "a request took {took:?} during a known outage");
        let read = s.get("/Users?count=1").await;
        assert_eq!(read.status, 503, "reads too: {}", read.body);
    }
    let (status, text, took) = ready(&s).await;
    assert_eq!(status, 503, "{text}");
    assert!(took < Duration::from_secs(1), "/readyz took {took:?}");

    proxy.restore().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while ready(&s).await.0 != 200 {
        assert!(Instant::now() < deadline, "scimd did not notice PostgreSQL back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(create(&s, "after").await.0, 201);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let statuses = writer.await.unwrap();
    assert!(statuses.contains(&503) && statuses.contains(&201), "the writer saw both sides: {statuses:?}");
    let acknowledged = acknowledged.lock().unwrap().clone();
    for name in acknowledged.iter().chain(["before-0".to_string(), "after".to_string()].iter()) {
        assert!(exists(&s, name).await, "{name} was acknowledged and is gone");
    }
    proxy.cut().await;
}

/// scimd's PostgreSQL backends, found by the `application_name` it connects with.
struct Backends {
    admin: sqlx::PgPool,
    app: String,
}

impl Backends {
    /// Terminates every one of them (as an administrator, a pooler or a failover script does).
    async fn terminate(&self) {
        let terminated: i64 = sqlx::query_scalar(
            // FILTER, not a condition beside the name's: it only ever sees scimd's backends.
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = $1",
        )
        .bind(&self.app)
        .fetch_one(&self.admin)
        .await
        .unwrap();
        assert!(terminated >= 1, "scimd's connections are found by their application_name");
    }
}

/// A server on PostgreSQL whose connections carry a name of their own, checking the server
/// every 100 ms.
async fn named_server(test: &str) -> (TestServer, Backends) {
    let base = common::postgres_url();
    let app = format!("scimd_{test}_{}", std::process::id());
    let separator = if base.contains('?') { '&' } else { '?' };
    let s = TestServer::on_db(common::Db::Postgres, test, |c: &mut Config| {
        c.database_url = format!("{base}{separator}application_name={app}");
        c.pg_health_check_ms = 100;
    })
    .await;
    let admin = sqlx::PgPool::connect(&base).await.unwrap();
    (s, Backends { admin, app })
}

/// A backend terminated while its connection sits in scimd's pool (by an administrator, a
/// connection pooler or a failover script) costs no request an error, and is no outage:
/// the connection is replaced, and so is the health watcher's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn terminated_backends_are_replaced_without_an_error() {
    let (s, backends) = named_server("terminated").await;
    assert_eq!(create(&s, "first").await.0, 201);
    for i in 0..8 {
        backends.terminate().await;
        // The backends exit, and the watcher meets its own connection gone.
        tokio::time::sleep(Duration::from_millis(150)).await;
        let (status, _, body, _) = create(&s, &format!("after-{i}")).await;
        assert_eq!(status, 201, "a create after the terminations: {body}");
        assert!(exists(&s, &format!("after-{i}")).await);
        let (status, body, _) = ready(&s).await;
        assert_eq!(status, 200, "not taken for an outage: {body}");
    }
    backends.admin.close().await;
}

/// The same under load: clients creating, reading and patching on kept-alive connections
/// while every scimd backend is terminated five times. No request fails, not even one whose
/// commit was cut on its way (see `no_request_failed`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn terminated_backends_under_load_fail_no_request() {
    let (s, backends) = named_server("terminated_load").await;
    let s = Arc::new(s);
    let (answers, acknowledged) = under_load(&s, async {
        for _ in 0..DISRUPTIONS {
            tokio::time::sleep(Duration::from_millis(400)).await;
            backends.terminate().await;
        }
    })
    .await;
    no_request_failed(&s, &answers, &acknowledged).await;
    backends.admin.close().await;
}

/// Connections reset under load (by a pooler, a load balancer or a firewall; here a proxy
/// between scimd and PostgreSQL drops every connection five times): as with terminated
/// backends, no request fails, and the reset connections are no outage.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn reset_connections_under_load_fail_no_request() {
    let (prefix, server, path) = split_url(&common::postgres_url());
    let proxy = Proxy::start(server).await;
    let url = format!("{prefix}127.0.0.1:{}{path}", proxy.port);
    let s = TestServer::on_db(common::Db::Postgres, "reset_load", |c: &mut Config| {
        c.database_url = url.clone();
        c.pg_health_check_ms = 100;
    })
    .await;
    let s = Arc::new(s);
    let (answers, acknowledged) = under_load(&s, async {
        for _ in 0..DISRUPTIONS {
            tokio::time::sleep(Duration::from_millis(400)).await;
            proxy.reset();
        }
    })
    .await;
    no_request_failed(&s, &answers, &acknowledged).await;
}

/// Clients that load the server at once.
const CLIENTS: usize = 4;
/// Times the load is disrupted.
const DISRUPTIONS: usize = 5;

/// `CLIENTS` clients creating, reading and patching users on kept-alive connections until
/// `disrupt` is done: what each was answered, and the users whose creates were acknowledged.
/// A transport error fails the test.
async fn under_load(s: &Arc<TestServer>, disrupt: impl Future<Output = ()>) -> (Vec<Answer>, Vec<String>) {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (s, stop) = (s.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut answers, mut acknowledged) = (Vec::new(), Vec::new());
                let deadline = Instant::now() + Duration::from_secs(20);
                for i in 0..5_000 {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) || Instant::now() > deadline {
                        break;
                    }
                    let name = format!("load-{c}-{i}");
                    let created = s.post("/Users", json!({"schemas": [USER], "userName": name})).await;
                    answers.push(Answer::of("create", &created));
                    if created.status != 201 {
                        continue;
                    }
                    acknowledged.push(name);
                    let id = created.body["id"].as_str().unwrap().to_string();
                    let read = s.get(&format!("/Users/{id}")).await;
                    answers.push(Answer::of("read", &read));
                    let ops = json!([{"op": "replace", "path": "displayName", "value": format!("patched {i}")}]);
                    let patched = s.patch(&format!("/Users/{id}"), ops).await;
                    answers.push(Answer::of("patch", &patched));
                }
                (answers, acknowledged)
            })
        })
        .collect();
    disrupt.await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut answers, mut acknowledged) = (Vec::new(), Vec::new());
    for client in clients {
        // A transport error would have failed the client's task here.
        let (a, k) = client.await.unwrap();
        answers.extend(a);
        acknowledged.extend(k);
    }
    (answers, acknowledged)
}

/// A disrupted load fails no request: a transaction cut before its commit runs again on
/// another connection, and so does a read; a commit whose answer was lost is looked up on
/// a new connection (the server knows whether it happened), and run again if it did not.
/// The server is ready after it, and every acknowledged create is kept.
async fn no_request_failed(s: &TestServer, answers: &[Answer], acknowledged: &[String]) {
    let failed: Vec<String> = answers
        .iter()
        .filter(|a| !(200..300).contains(&a.status))
        .map(|a| format!("{} {}: {}", a.request, a.status, a.detail))
        .collect();
    eprintln!("{} requests during {DISRUPTIONS} disruptions, failed: {failed:?}", answers.len());
    assert!(failed.is_empty(), "{} of {} requests failed: {failed:?}", failed.len(), answers.len());
    assert!(answers.len() > 100, "the load ran: {} requests", answers.len());
    let (status, body, _) = ready(s).await;
    assert_eq!(status, 200, "not taken for an outage: {body}");
    for name in acknowledged {
        assert!(exists(s, name).await, "{name} was acknowledged and is gone");
    }
}

/// What a client of the load was answered.
#[derive(Debug)]
struct Answer {
    request: &'static str,
    status: u16,
    detail: Value,
}

impl Answer {
    fn of(request: &'static str, r: &common::Reply) -> Answer {
        let status = r.status.as_u16();
        let detail = if status >= 300 { r.body["detail"].clone() } else { Value::Null };
        Answer { request, status, detail }
    }
}

/// A tmpfs of a few MiB, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(mib: u32) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap()
            .success();
        assert!(ok, "mounting a tmpfs failed (the test needs root and CAP_SYS_ADMIN)");
        SmallDisk { dir }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// Fills the disk to the last few KiB with a ballast file.
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.path("ballast")).unwrap();
        let chunk = vec![0u8; 16 * 1024];
        while f.write_all(&chunk).and_then(|_| f.flush()).is_ok() {}
        let _ = f.sync_all();
    }

    fn free_space(&self) {
        std::fs::remove_file(self.path("ballast")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimd_root), ignore = "needs root, to mount a small tmpfs")]
async fn a_full_disk_is_answered_507_and_service_resumes() {
    let disk = SmallDisk::mount(6);
    let db = disk.path("scimd.db");
    let s = TestServer::with(|c: &mut Config| c.database_url = format!("sqlite://{}", db.display())).await;
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let name = format!("before-{i}");
        assert_eq!(create(&s, &name).await.0, 201);
        acknowledged.push(name);
    }
    disk.fill();
    let mut refused = None;
    for i in 0..5000 {
        let name = format!("full-{i}-{}", "x".repeat(200));
        let (status, retry, body, _) = create(&s, &name).await;
        match status {
            201 => acknowledged.push(name),
            507 => {
                refused = Some((retry, body));
                break;
            }
            other => panic!("a write on a full disk answered {other}: {body}"),
        }
    }
    let (retry, body) = refused.expect("no write was refused on a full disk");
    assert_eq!(body["status"], "507", "{body}");
    assert_eq!(body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error");
    assert!(retry.is_some_and(|r| r.parse::<u64>().is_ok_and(|n| n >= 1)), "Retry-After");
    let (status, text, took) = ready(&s).await;
    assert_eq!((status, text.as_str()), (503, "not ready: storage full"));
    assert!(took < Duration::from_secs(1));
    assert_eq!(s.get("/Users?count=1").await.status, 200, "reads go on");

    disk.free_space();
    let (status, text, _) = ready(&s).await;
    assert_eq!((status, text.as_str()), (200, "ready"), "a probe write finds the disk usable again");
    assert_eq!(create(&s, "after").await.0, 201);
    acknowledged.push("after".into());
    for name in &acknowledged {
        assert!(exists(&s, name).await, "{name} was acknowledged and is gone");
    }
    drop(s);
    let store = scimd_sql::SqliteStore::open(&format!("sqlite://{}", db.display()), &Default::default()).await.unwrap();
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
}

/// `scimd serve` started while PostgreSQL cannot be reached (here: nothing listens where
/// the URL points, as while the database restarts or its container is still starting)
/// waits for it, logging why, and serves once it answers. One whose database never comes
/// exits after `pg_start_wait_secs` saying what failed; one whose URL names a database that
/// does not exist exits at once, as waiting cannot mend that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn a_server_started_before_postgresql_waits_for_it() {
    use common::process::{Scimd, command};
    let (prefix, server, path) = split_url(&common::postgres_url());
    let mut proxy = Proxy::start(server).await;
    proxy.cut().await;
    let url = format!("{prefix}127.0.0.1:{}{path}", proxy.port);
    let schema = format!("start_wait_{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("scimd.log");
    let starting = {
        let (url, schema, log) = (url.clone(), schema.clone(), log.clone());
        tokio::task::spawn_blocking(move || {
            Scimd::serve(&url, "start-wait-token", &[("SCIMD_PG_SCHEMA", schema.as_str())], Some(&log))
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!starting.is_finished(), "the server does not listen before its database answers");
    proxy.restore().await;
    let s = starting.await.unwrap();
    let id = s.user("start-wait-token", "after-the-wait").await;
    assert!(!id.is_empty());
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("waiting for PostgreSQL") && logged.contains("connection refused"), "{logged}");

    // Never there: the wait ends, and so does the process, with the cause.
    proxy.cut().await;
    let (never, schema2) = (url.clone(), format!("{schema}_never"));
    let out = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let out = command(&never)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("SCIMD_PG_SCHEMA", schema2)
            .env("SCIMD_PG_START_WAIT_SECS", "2")
            .output()
            .unwrap();
        (out, started.elapsed())
    })
    .await
    .unwrap();
    let (out, took) = out;
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(15), "gave up after {took:?}");
    assert!(text.contains("pg_start_wait_secs") && text.contains("connection refused"), "{text}");

    // A database that does not exist: no wait, whatever the setting.
    let missing = format!("{}/no_such_database_here", common::postgres_url().rsplit_once('/').unwrap().0);
    let out = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let out = command(&missing).args(["serve", "--listen", "127.0.0.1:0"]).output().unwrap();
        (out, started.elapsed())
    })
    .await
    .unwrap();
    let (out, took) = out;
    assert!(!out.status.success());
    assert!(took < Duration::from_secs(10), "a missing database is not waited for: {took:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no database"), "{}", String::from_utf8_lossy(&out.stderr));
    drop(s);
}
