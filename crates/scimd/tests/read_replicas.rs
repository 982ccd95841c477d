//! Reads from PostgreSQL hot standbys (`database_read_url`): a client always sees its own
//! writes, reads go to the replica otherwise, a replica that falls behind or goes away is
//! skipped without a failed request, and comes back into use when it recovers.
//!
//! Needs `SCIMD_TEST_POSTGRES_URL` and `SCIMD_TEST_POSTGRES_REPLICA_URL` (a streaming
//! standby of that database, made by `.ci/pg_replica.sh`); without them the tests are
//! reported as ignored.

mod common;

use common::proxy::{Proxy, split_url};
use common::{Db, TestServer};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The tests take turns: one pauses the replica's replay, which the others would see.
static REPLICA: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn replica_url() -> String {
    std::env::var("SCIMD_TEST_POSTGRES_REPLICA_URL").expect("SCIMD_TEST_POSTGRES_REPLICA_URL names a hot standby")
}

/// A server on a fresh schema whose reads may go to `read_url`.
async fn server(test: &str, read_url: String, max_lag_ms: u64) -> TestServer {
    TestServer::on_db(Db::Postgres, test, |c| {
        c.database_read_url = vec![read_url];
        c.max_replica_lag_ms = max_lag_ms;
    })
    .await
}

/// Reads the replica served so far, and whether it is in use (its lag known).
fn replica_use(s: &TestServer) -> (u64, Option<f64>) {
    let stats = s.backend.store.db_stats();
    let r = &stats.replicas[0];
    (r.reads, r.lag_seconds)
}

/// Waits until the replica serves reads of this server's tenant.
async fn until_replica_serves(s: &TestServer, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let before = replica_use(s).0;
        assert_eq!(s.get(&format!("/Users/{id}")).await.status, 200);
        if replica_use(s).0 > before {
            return;
        }
        assert!(Instant::now() < deadline, "the replica never served a read: {:?}", replica_use(s));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
#[cfg_attr(not(scimd_replica), ignore = "needs SCIMD_TEST_POSTGRES_URL and SCIMD_TEST_POSTGRES_REPLICA_URL")]
async fn a_client_reads_its_own_writes_and_other_reads_go_to_the_replica() {
    let _turn = REPLICA.lock().await;
    let s = server("rr_own", replica_url(), 1000).await;
    let first = s.user("first").await;
    until_replica_serves(&s, &first).await;

    // What Entra ID and Okta do: a write, then at once a read of what was written, by id
    // and by filter. Every one sees the write, though the replica may not have it yet.
    for i in 0..60 {
        let name = format!("user-{i}");
        let id = s.user(&name).await;
        let got = s.get(&format!("/Users/{id}")).await;
        assert_eq!(got.status, 200, "GET right after the create: {}", got.body);
        let found = s.get(&format!("/Users?filter=userName%20eq%20%22{name}%22")).await;
        assert_eq!(found.body["totalResults"], 1, "filter right after the create: {}", found.body);
        let patched = s
            .patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "displayName", "value": format!("v{i}")}]))
            .await;
        assert_eq!(patched.status, 200);
        let got = s.get(&format!("/Users/{id}")).await;
        assert_eq!(got.body["displayName"], format!("v{i}"), "GET right after the PATCH: {}", got.body);
        assert_eq!(s.delete(&format!("/Users/{id}")).await.status, 204);
        assert_eq!(s.get(&format!("/Users/{id}")).await.status, 404, "GET right after the DELETE");
    }

    // Without writes, the replica catches up and serves the reads.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = replica_use(&s).0;
    for _ in 0..20 {
        assert_eq!(s.get(&format!("/Users/{first}")).await.status, 200);
        assert_eq!(s.get("/Users?count=5").await.status, 200);
    }
    let served = replica_use(&s).0 - before;
    assert!(served >= 36, "the replica served {served} of 40 reads with no write in between");
}

#[tokio::test]
#[cfg_attr(not(scimd_replica), ignore = "needs SCIMD_TEST_POSTGRES_URL and SCIMD_TEST_POSTGRES_REPLICA_URL")]
async fn a_replica_further_behind_than_allowed_is_skipped_until_it_catches_up() {
    let _turn = REPLICA.lock().await;
    let a = server("rr_lag", replica_url(), 300).await;
    // A second replica of scimd on the same database: it knows nothing of `a`'s writes.
    let b = TestServer::on(a.config.clone(), tempfile::tempdir().unwrap(), Some(a.token.clone())).await;
    let first = a.user("before-the-pause").await;
    until_replica_serves(&b, &first).await;

    let standby = sqlx::PgPool::connect(&replica_url()).await.unwrap();
    sqlx::query("SELECT pg_wal_replay_pause()").execute(&standby).await.unwrap();
    let outcome = tokio::spawn(async move {
        let id = a.user("during-the-pause").await;
        // Past the allowed lag, `b` reads from the primary: the new user is there.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let (_, lag) = replica_use(&b);
        assert!(lag.is_none_or(|l| l > 0.3), "b's view of the replica's lag: {lag:?}");
        for _ in 0..10 {
            assert_eq!(b.get(&format!("/Users/{id}")).await.status, 200, "a read on b after the allowed lag");
            let found = b.get("/Users?filter=userName%20eq%20%22during-the-pause%22").await;
            assert_eq!(found.body["totalResults"], 1);
        }
        (b, id)
    })
    .await;
    sqlx::query("SELECT pg_wal_replay_resume()").execute(&standby).await.unwrap();
    let (b, id) = outcome.unwrap();
    // Caught up again, the replica serves reads once more, and has the user.
    until_replica_serves(&b, &id).await;
}

#[tokio::test]
#[cfg_attr(not(scimd_replica), ignore = "needs SCIMD_TEST_POSTGRES_URL and SCIMD_TEST_POSTGRES_REPLICA_URL")]
async fn a_replica_cut_off_under_load_costs_no_request() {
    let _turn = REPLICA.lock().await;
    let (prefix, replica_at, path) = split_url(&replica_url());
    let mut proxy = Proxy::start(replica_at).await;
    let s = Arc::new(server("rr_cut", format!("{prefix}127.0.0.1:{}{path}", proxy.port), 1000).await);
    let mut ids = vec![];
    for i in 0..50 {
        ids.push(s.user(&format!("load-{i}")).await);
    }
    until_replica_serves(&s, &ids[0]).await;
    let ids = Arc::new(ids);

    // Eight clients read (by id, by filter, lists) for three seconds; the replica is cut
    // off after one second and comes back after two. (Reads only: a tenant's reads stay on
    // the primary while this process writes to it.)
    let stop = Instant::now() + Duration::from_secs(3);
    let mut clients = vec![];
    for c in 0..8usize {
        let (s, ids) = (s.clone(), ids.clone());
        clients.push(tokio::spawn(async move {
            let mut answers = vec![];
            let mut n = c;
            while Instant::now() < stop && answers.len() < 5_000 {
                n += 1;
                let path = match n % 3 {
                    0 => format!("/Users/{}", ids[n % ids.len()]),
                    1 => format!("/Users?filter=userName%20eq%20%22load-{}%22", n % ids.len()),
                    _ => "/Users?startIndex=10&count=20".to_string(),
                };
                let r = s.get(&path).await;
                answers.push((r.status.as_u16(), path));
            }
            answers
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    proxy.cut().await;
    let served_before_cut = replica_use(&s).0;
    tokio::time::sleep(Duration::from_secs(1)).await;
    proxy.restore().await;
    let mut reads = 0;
    for c in clients {
        for (status, path) in c.await.unwrap() {
            assert_eq!(status, 200, "GET {path} while the replica was cut off");
            reads += 1;
        }
    }
    assert!(reads > 100, "only {reads} reads in three seconds");
    let stats = s.backend.store.db_stats();
    assert!(served_before_cut > 0, "the replica served nothing before it was cut off: {stats:?}");
    assert!(stats.replicas[0].fallbacks >= 1, "no read failed over to the primary: {stats:?}");
    // Back, the replica serves reads again.
    until_replica_serves(&s, &ids[0]).await;
}

#[tokio::test]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn a_replica_that_never_answers_leaves_every_read_to_the_primary() {
    let s = server("rr_none", "postgres://postgres@127.0.0.1:1/nowhere".into(), 1000).await;
    for i in 0..20 {
        let id = s.user(&format!("u{i}")).await;
        assert_eq!(s.get(&format!("/Users/{id}")).await.status, 200);
        assert_eq!(s.get("/Users?filter=userName%20eq%20%22u0%22").await.body["totalResults"], 1);
    }
    let stats = s.backend.store.db_stats();
    assert_eq!(stats.replicas.len(), 1);
    assert_eq!((stats.replicas[0].reads, stats.replicas[0].lag_seconds), (0, None), "{stats:?}");
}

#[tokio::test]
#[cfg_attr(not(scimd_replica), ignore = "needs SCIMD_TEST_POSTGRES_URL and SCIMD_TEST_POSTGRES_REPLICA_URL")]
async fn a_replica_is_reached_over_tls_with_its_certificate_verified() {
    let _turn = REPLICA.lock().await;
    let ca = std::env::var("SCIMD_TEST_POSTGRES_REPLICA_CA")
        .expect("SCIMD_TEST_POSTGRES_REPLICA_CA names the CA of the replica's certificate (.ci/pg_replica.sh)");
    let (prefix, at, path) = split_url(&replica_url());
    let port = at.rsplit_once(':').unwrap().1;
    // The certificate names localhost: verify-full checks the name as well as the chain.
    let url = |query: &str| format!("{prefix}localhost:{port}{path}?{query}");

    let verified = server("rr_tls", url(&format!("sslmode=verify-full&sslrootcert={ca}")), 1000).await;
    let id = verified.user("over-tls").await;
    until_replica_serves(&verified, &id).await;

    // Without the CA the certificate cannot be verified: the replica is never read from, and
    // reads are answered by the primary.
    let unverified = server("rr_tls_bad", url("sslmode=verify-full"), 1000).await;
    let id = unverified.user("unverified").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..10 {
        assert_eq!(unverified.get(&format!("/Users/{id}")).await.status, 200);
    }
    assert_eq!(replica_use(&unverified), (0, None), "a replica whose certificate is not trusted was used");
}
