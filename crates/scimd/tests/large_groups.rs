//! A group of 100,000 members against the real binary: read eight times at once, it is
//! answered whole (every member, valid JSON) while the server's memory stays bounded, and a
//! member added as identity providers add one answers 204 as fast as in a small group.

mod common;

use common::process::{Scimd, command};
use serde_json::Value;
use std::time::{Duration, Instant};

const TOKEN: &str = "large-groups-token";
const MEMBERS: usize = 100_000;

/// A database with `MEMBERS` users, one group holding them all, and a small group, written
/// straight into scimd's tables (creating them over HTTP would take most of the test).
async fn seeded(path: &std::path::Path) -> (String, String, String) {
    let db = format!("sqlite://{}", path.display());
    assert!(command(&db).arg("migrate").status().unwrap().success());
    let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    let now = "2026-01-01T00:00:00.000000Z";
    sqlx::query(
        "INSERT INTO scim_users (tenant, id, user_name, user_name_key, attributes, created, last_modified, version) \
         WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?) \
         SELECT 'default', printf('u-%06d', i), printf('member%06d@example.com', i), printf('member%06d@example.com', i), \
                json_object('userName', printf('member%06d@example.com', i), 'displayName', 'Member ' || i), ?, ?, 1 \
         FROM n",
    )
    .bind(MEMBERS as i64)
    .bind(now)
    .bind(now)
    .execute(&mut *tx)
    .await
    .unwrap();
    for (id, name) in [("big", "Everyone"), ("small", "Few")] {
        sqlx::query(
            "INSERT INTO scim_groups (tenant, id, display_name, display_name_key, attributes, created, last_modified, version) \
             VALUES ('default', ?, ?, ?, ?, ?, ?, 1)",
        )
        .bind(id)
        .bind(name)
        .bind(name.to_lowercase())
        .bind(serde_json::json!({"displayName": name}).to_string())
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO scim_members (tenant, group_seq, member_id, member_type) \
         SELECT 'default', (SELECT seq FROM scim_groups WHERE id = 'big'), id, 'User' FROM scim_users ORDER BY seq",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO scim_members (tenant, group_seq, member_id, member_type) \
         SELECT 'default', (SELECT seq FROM scim_groups WHERE id = 'small'), id, 'User' FROM scim_users WHERE seq <= 100",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    pool.close().await;
    (db, "big".into(), "small".into())
}

/// Reads a whole answer; checks it is one JSON document with `MEMBERS` members.
async fn read_group(client: &reqwest::Client, url: &str) -> usize {
    let mut r = client.get(url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let mut body = Vec::new();
    while let Some(chunk) = r.chunk().await.unwrap() {
        body.extend_from_slice(&chunk);
    }
    let v: Value = serde_json::from_slice(&body).unwrap();
    let members = v["members"].as_array().unwrap();
    assert_eq!(members[0]["value"], "u-000000");
    assert_eq!(members[MEMBERS - 1]["value"], format!("u-{:06}", MEMBERS - 1));
    members.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_100000_members_is_read_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (db, big, small) = seeded(&dir.path().join("big.db")).await;
    let s = Scimd::serve(&db, TOKEN, &[], None);
    let client = reqwest::Client::new();
    let url = format!("{}/Groups/{big}", s.base());
    // Warm: the process's own working set, then one read.
    assert_eq!(read_group(&client, &url).await, MEMBERS);
    let (before, _) = s.memory_kib();
    let reads: Vec<_> = (0..8)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move { read_group(&client, &url).await })
        })
        .collect();
    for r in reads {
        assert_eq!(r.await.unwrap(), MEMBERS);
    }
    let (after, peak) = s.memory_kib();
    eprintln!("resident: {before} KiB before eight reads, {after} KiB after, peak {peak} KiB");
    // Each answer is about 15 MB; held whole, eight would take well over 100 MB.
    assert!(peak.saturating_sub(before) < 40 * 1024, "eight reads grew the server by {} KiB", peak - before);

    // A member add as Entra ID and Okta send it: 204, and no slower than in a small group.
    let add = |group: String, i: usize| {
        let client = client.clone();
        let url = format!("{}/Groups/{group}", s.base());
        async move {
            let body = serde_json::json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": format!("u-{i:06}")}]}]});
            let t = Instant::now();
            let r = client
                .patch(url)
                .bearer_auth(TOKEN)
                .header("content-type", "application/scim+json")
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 204);
            t.elapsed()
        }
    };
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    // Members already in the big group (a no-op there) and new to the small one: the same
    // statements either way; timed alternately so the machine's drift meets both.
    let (mut in_big, mut in_small) = (Vec::new(), Vec::new());
    for i in 0..30 {
        in_big.push(add(big.clone(), 200 + i).await);
        in_small.push(add(small.clone(), 200 + i).await);
    }
    let (b, m) = (median(in_big), median(in_small));
    eprintln!("member add: {b:?} in a group of {MEMBERS}, {m:?} in a group of 100");
    // Not a speed verdict (that lives in bench/): only that the cost does not grow with
    // the group, which a read of the whole group would make tens of times larger.
    assert!(b < m * 5 + Duration::from_millis(5), "{b:?} against {m:?}");
}
