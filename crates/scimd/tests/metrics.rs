//! `GET /metrics`: scraped after known traffic, its series say what was sent.

mod common;

use common::TestServer;
use reqwest::Method;
use scimd_core::tokens::{Scope, TokenRequest, create_token};
use serde_json::json;

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

/// The value of the series `name{labels}` (exactly these labels), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test]
async fn metrics_count_the_requests_sent() {
    let s = TestServer::start().await;
    let req = TokenRequest { scope: Scope::Admin, tenant: "", name: "prometheus", secret: None, expires: None };
    let admin = create_token(s.backend.tokens.as_ref(), req, "2026-01-01T00:00:00.000000Z").await.unwrap().secret;
    let scrape = async |token: Option<&str>| {
        s.request(Method::GET, &format!("{}/metrics", s.root), token, None, None, &[]).await
    };
    assert_eq!(scrape(None).await.status, 401, "metrics name tenants: an admin token is required");
    assert_eq!(scrape(Some(&s.token)).await.status, 401, "a SCIM token does not open them");

    for name in ["m1", "m2", "m3"] {
        assert_eq!(s.post("/Users", json!({"schemas": [USER], "userName": name})).await.status, 201);
    }
    assert_eq!(s.post("/Users", json!({"schemas": [USER], "userName": "M1"})).await.status, 409);
    assert_eq!(s.get("/Users?filter=userName%20eq%20%22m1%22").await.status, 200);
    assert_eq!(s.get("/Groups/nope").await.status, 404);
    for _ in 0..2 {
        assert_eq!(s.raw(Method::GET, "/Users", Some("wrong"), None, None, &[]).await.status, 401);
    }
    // A stream that has delivered nothing (no worker runs in this test): its backlog is the log.
    let (status, _) = {
        let r = s
            .at(
                Method::POST,
                &format!("{}/admin/v1/tenants/default/streams", s.root),
                &admin,
                Some(json!({"endpoint": "http://127.0.0.1:9/none", "from": "beginning"})),
            )
            .await;
        (r.status, r.body)
    };
    assert_eq!(status, 201);

    let r = scrape(Some(&admin)).await;
    assert_eq!(r.status, 200);
    assert!(r.headers["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = r.body.as_str().unwrap().to_string();
    let series = |s: &str| value(&text, s);
    assert_eq!(
        series(r#"scimd_requests_total{tenant="default",resource="User",method="POST",status="2xx"}"#),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        series(r#"scimd_requests_total{tenant="default",resource="User",method="POST",status="4xx"}"#),
        Some(1.0)
    );
    assert_eq!(
        series(r#"scimd_requests_total{tenant="default",resource="User",method="GET",status="2xx"}"#),
        Some(1.0)
    );
    assert_eq!(
        series(r#"scimd_requests_total{tenant="default",resource="Group",method="GET",status="4xx"}"#),
        Some(1.0)
    );
    assert_eq!(series(r#"scimd_requests_total{tenant="",resource="User",method="GET",status="4xx"}"#), Some(2.0));
    assert_eq!(series(r#"scimd_scim_errors_total{status="409",scim_type="uniqueness"}"#), Some(1.0));
    assert_eq!(series(r#"scimd_scim_errors_total{status="404",scim_type=""}"#), Some(1.0));
    assert_eq!(series(r#"scimd_scim_errors_total{status="401",scim_type=""}"#), Some(2.0));
    assert_eq!(series("scimd_auth_failures_total"), Some(2.0));
    assert_eq!(series(r#"scimd_request_duration_seconds_count{resource="User",method="POST"}"#), Some(4.0));
    assert_eq!(series(r#"scimd_request_duration_seconds_bucket{resource="User",method="POST",le="+Inf"}"#), Some(4.0));
    // Three users created: three events waiting.
    let line = text
        .lines()
        .find(|l| l.starts_with("scimd_event_stream_backlog{tenant=\"default\""))
        .expect("a backlog series");
    assert!(line.ends_with(" 3"), "{line}");
    let lag = text.lines().find(|l| l.starts_with("scimd_event_stream_lag_seconds{tenant=\"default\"")).unwrap();
    assert!(lag.rsplit(' ').next().unwrap().parse::<f64>().unwrap() >= 0.0);
    assert!(text.lines().any(|l| l.starts_with("scimd_event_stream_state{") && l.contains("state=\"active\"} 1")));
    // Every series the Grafana dashboard queries is served.
    let dashboard = include_str!("../../../docs/grafana-dashboard.json");
    let mut queried: Vec<&str> = dashboard
        .match_indices("scimd_")
        .map(|(at, _)| {
            let rest = &dashboard[at..];
            &rest[..rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len())]
        })
        .collect();
    queried.dedup();
    assert!(queried.len() >= 10, "{queried:?}");
    for name in queried {
        assert!(text.lines().any(|l| l.starts_with(name)), "the dashboard queries {name}, which is not served");
    }
}

/// The database connections: each pool's size, use, limit and waits; on SQLite how many
/// writes each group commit carried; transactions run again after a conflict.
async fn database_series(db: common::Db) {
    let s = common::TestServer::on_db(db, "metrics_db", |_| {}).await;
    let req = TokenRequest { scope: Scope::Admin, tenant: "", name: "prometheus", secret: None, expires: None };
    let admin = create_token(s.backend.tokens.as_ref(), req, "2026-01-01T00:00:00.000000Z").await.unwrap().secret;
    for i in 0..5 {
        let r = s.call(Method::POST, "/Users", Some(json!({"schemas": [USER], "userName": format!("d{i}")}))).await;
        assert_eq!(r.status, 201);
    }
    assert_eq!(s.call(Method::GET, "/Users?filter=userName%20eq%20%22d1%22", None).await.status, 200);
    let r = s.request(Method::GET, &format!("{}/metrics", s.root), Some(&admin), None, None, &[]).await;
    let text = r.body.as_str().unwrap().to_string();
    let series = |name: &str| value(&text, name).unwrap_or_else(|| panic!("no {name} in\n{text}"));
    match db {
        common::Db::Sqlite => {
            // The server's defaults: four readers, one writer.
            assert_eq!(series(r#"scimd_db_connections{pool="read"}"#), 4.0);
            assert_eq!(series(r#"scimd_db_connections_max{pool="read"}"#), 4.0);
            assert_eq!(series(r#"scimd_db_connections{pool="write"}"#), 1.0);
            assert!(series(r#"scimd_db_connections_in_use{pool="write"}"#) <= 1.0);
            // Five creates committed (with the token's and tenant's last use, maybe): each
            // write in exactly one commit, never more writes than commits can carry.
            let (commits, writes) =
                (series("scimd_sqlite_group_commit_writes_count"), series("scimd_sqlite_group_commit_writes_sum"));
            assert!(commits >= 1.0 && writes >= 5.0 && writes >= commits, "{commits} commits, {writes} writes");
            assert_eq!(series(r#"scimd_sqlite_group_commit_writes_bucket{le="+Inf"}"#), commits);
            assert!(series(r#"scimd_db_wait_seconds_count{pool="write"}"#) >= 5.0);
            assert!(series(r#"scimd_db_wait_seconds_count{pool="read"}"#) >= 1.0);
        }
        common::Db::Postgres => {
            assert_eq!(series(r#"scimd_db_connections_max{pool="postgres"}"#), 4.0);
            let (size, in_use) = (
                series(r#"scimd_db_connections{pool="postgres"}"#),
                series(r#"scimd_db_connections_in_use{pool="postgres"}"#),
            );
            assert!((1.0..=4.0).contains(&size) && in_use <= size, "{size} open, {in_use} in use");
            // Every statement asked for a connection: at least one per request.
            assert!(series(r#"scimd_db_wait_seconds_count{pool="postgres"}"#) >= 6.0);
            assert!(!text.contains("scimd_sqlite_group_commit_writes"), "no group commit on PostgreSQL");
        }
    }
    let cumulative: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with("scimd_db_wait_seconds_bucket{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    assert!(!cumulative.is_empty());
    assert_eq!(series("scimd_activity_dropped_total"), 0.0);
    // One client writing at a time: no transaction met another, and each cause is served.
    for cause in ["deadlock", "serialization", "locked", "changed", "interrupted"] {
        assert_eq!(series(&format!("scimd_db_conflicts_total{{cause=\"{cause}\"}}")), 0.0, "{cause}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_series_on_sqlite() {
    database_series(common::Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn database_series_on_postgres() {
    database_series(common::Db::Postgres).await;
}
