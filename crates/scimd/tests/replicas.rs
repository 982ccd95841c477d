//! Two scimd replicas on one PostgreSQL database, hammered concurrently: no duplicate
//! userName, no lost member, no lost update, no 500.
//!
//! Needs `SCIMD_TEST_POSTGRES_URL`; without it the test is reported as ignored.

mod common;

use common::TestServer;
use reqwest::Method;
use scimd::config::Config;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

async fn replicas(name: &str) -> (Arc<TestServer>, Arc<TestServer>) {
    let url = common::postgres_url();
    let schema = format!("r_{name}_{}", std::process::id());
    let pool = sqlx::PgPool::connect(&url).await.expect("PostgreSQL unreachable");
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))).execute(&pool).await.unwrap();
    let config = Config { database_url: url, pg_schema: Some(schema), pg_max_connections: 8, ..Config::default() };
    // Both start together, as replicas behind a load balancer would: migrations must not race.
    let (a, b) = tokio::join!(
        TestServer::on(config.clone(), tempfile::tempdir().unwrap(), Some("replica-token".into())),
        TestServer::on(config, tempfile::tempdir().unwrap(), Some("replica-token".into()))
    );
    let req = scimd_core::tokens::TokenRequest {
        scope: scimd_core::tokens::Scope::Scim,
        tenant: "default",
        name: "replicas",
        secret: Some("replica-token".into()),
        expires: None,
    };
    scimd_core::tokens::create_token(a.backend.tokens.as_ref(), req, "2026-01-01T00:00:00.000000Z").await.unwrap();
    (Arc::new(a), Arc::new(b))
}

fn no_server_errors(statuses: &[u16]) {
    assert!(statuses.iter().all(|s| *s < 500), "server errors: {statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn two_replicas_one_database() {
    let (a, b) = replicas("hammer").await;
    let pick = |i: usize| if i.is_multiple_of(2) { a.clone() } else { b.clone() };
    let deadline = std::time::Duration::from_secs(60);

    // 1. The same userName created from both replicas at once: exactly one wins.
    let mut tasks = Vec::new();
    for i in 0..80 {
        let s = pick(i);
        tasks.push(tokio::spawn(async move {
            let body = json!({"schemas": [USER], "userName": format!("Race{}@Example.com", i / 4)});
            s.post("/Users", body).await.status.as_u16()
        }));
    }
    let statuses: Vec<u16> = tokio::time::timeout(deadline, futures(tasks)).await.expect("bounded in time");
    no_server_errors(&statuses);
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 20, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 60, "{statuses:?}");
    for n in 0..20 {
        let r = a.get(&format!("/Users?filter=userName%20eq%20%22race{n}@example.com%22")).await;
        assert_eq!(r.body["totalResults"], 1);
    }

    // 2. One group patched from both replicas with different members.
    let mut ids = Vec::new();
    for i in 0..40 {
        ids.push(a.user(&format!("member{i}")).await);
    }
    let group = a.group("Contended", &[]).await;
    let mut tasks = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let s = pick(i);
        let (id, group) = (id.clone(), group.clone());
        tasks.push(tokio::spawn(async move {
            let r = s
                .patch(
                    &format!("/Groups/{group}?excludedAttributes=members"),
                    json!([{"op": "add", "path": "members", "value": [{"value": id}]}]),
                )
                .await;
            (id, r.status.as_u16())
        }));
    }
    let results: Vec<(String, u16)> = tokio::time::timeout(deadline, futures(tasks)).await.expect("bounded in time");
    no_server_errors(&results.iter().map(|r| r.1).collect::<Vec<_>>());
    let acknowledged: BTreeSet<String> = results.iter().filter(|r| r.1 == 200).map(|r| r.0.clone()).collect();
    assert_eq!(acknowledged.len(), 40, "every add is acknowledged: {results:?}");
    let members: BTreeSet<String> = b.get(&format!("/Groups/{group}")).await.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(members, acknowledged, "every acknowledged member is present");

    // 3. PUT racing PATCH on one user: every acknowledged write got its own version, and
    //    the final state is the one the last acknowledged write reported.
    let user = a.user("contended-user").await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let s = pick(i);
        let user = user.clone();
        tasks.push(tokio::spawn(async move {
            let r = if i.is_multiple_of(2) {
                s.call(
                    Method::PUT,
                    &format!("/Users/{user}"),
                    Some(json!({"schemas": [USER], "userName": "contended-user", "title": format!("put-{i}")})),
                )
                .await
            } else {
                s.patch(
                    &format!("/Users/{user}"),
                    json!([{"op": "replace", "path": "nickName", "value": format!("patch-{i}")}]),
                )
                .await
            };
            (r.status.as_u16(), r.body)
        }));
    }
    let results: Vec<(u16, Value)> = tokio::time::timeout(deadline, futures(tasks)).await.expect("bounded in time");
    no_server_errors(&results.iter().map(|r| r.0).collect::<Vec<_>>());
    assert!(results.iter().all(|r| r.0 == 200), "{results:?}");
    let mut by_version: HashMap<String, Value> = HashMap::new();
    for (_, body) in &results {
        let v = body["meta"]["version"].as_str().unwrap().to_string();
        assert!(
            by_version.insert(v.clone(), body.clone()).is_none(),
            "two acknowledged writes share version {v}: one was lost"
        );
    }
    let last = by_version
        .keys()
        .max_by_key(|v| v.trim_start_matches("W/\"").trim_end_matches('"').parse::<i64>().unwrap())
        .unwrap()
        .clone();
    let mut final_state = a.get(&format!("/Users/{user}")).await.body;
    let mut expected = by_version[&last].clone();
    for v in [&mut final_state, &mut expected] {
        v["meta"]["location"] = Value::Null;
    }
    assert_eq!(final_state, expected);

    // 4. A list cursor (RFC 9865) from one replica is good at the other: both seal cursors
    // with the deployment's secret.
    let first = a.get("/Users?cursor&count=2").await.body;
    let next = first["nextCursor"].as_str().expect("more than two users").to_string();
    let second = b.get(&format!("/Users?cursor={next}&count=2")).await;
    assert_eq!(second.status, 200, "{}", second.body);
    let ids = |v: &Value| v["Resources"].as_array().unwrap().iter().map(|r| r["id"].clone()).collect::<Vec<_>>();
    let from_a = a.get(&format!("/Users?cursor={next}&count=2")).await.body;
    assert_eq!(ids(&second.body), ids(&from_a));
    assert!(ids(&second.body).iter().all(|id| !ids(&first).contains(id)));
}

async fn futures<T: Send + 'static>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}
