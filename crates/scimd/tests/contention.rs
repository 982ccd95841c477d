//! Many clients changing the same users and groups at once, on both stores: every request
//! gets an answer a client can act on (never a 5xx), the store holds exactly what was
//! acknowledged, and an application that follows the change events ends with the
//! memberships a GET shows.

mod common;

use common::{Db, TestServer};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

fn member_ids(group: &Value) -> BTreeSet<String> {
    group["members"].as_array().into_iter().flatten().map(|m| m["value"].as_str().unwrap().to_string()).collect()
}

/// Each group's members as the change events tell them: every membership added and
/// removed, applied in the order the log holds them.
async fn members_by_events(s: &TestServer) -> BTreeMap<String, BTreeSet<String>> {
    let events = s.backend.log.events_after(&s.config.tenant, 0, 100_000).await.unwrap();
    let mut groups: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in events.iter().filter(|e| e.resource_type == "Group") {
        let members = groups.entry(e.resource_id.clone()).or_default();
        let delta = &e.payload["members"];
        assert!(delta.get("truncated").is_none(), "small changes name every member: {}", e.payload);
        for m in delta["added"].as_array().into_iter().flatten() {
            members.insert(m["value"].as_str().unwrap().to_string());
        }
        for m in delta["removed"].as_array().into_iter().flatten() {
            members.remove(m["value"].as_str().unwrap());
        }
    }
    groups
}

/// Users are added to groups (or added again) while they are being deleted. Whichever comes
/// first, a deleted user is in no group afterwards, and each group's events say so too: an
/// add that won is followed by the removal the delete caused.
async fn deletes_racing_member_adds(db: Db) {
    let s = Arc::new(TestServer::on_db(db, "race_delete_add", |_| {}).await);
    let groups = [s.group("Red", &[]).await, s.group("Blue", &[]).await];
    let (mut added, mut refused) = (0, 0);
    for round in 0..25 {
        let mut users = Vec::new();
        for i in 0..4 {
            users.push(s.user(&format!("r{round}u{i}")).await);
        }
        if round % 2 == 1 {
            // Every other round the users are in Red already: its adds are sent again, as
            // identity providers do, while the deletes take the users out of it.
            let value: Vec<Value> = users.iter().map(|u| json!({"value": u})).collect();
            let r = s
                .patch(&format!("/Groups/{}", groups[0]), json!([{"op": "add", "path": "members", "value": value}]))
                .await;
            assert_eq!(r.status, 204, "{}", r.body);
        }
        let mut tasks = Vec::new();
        for user in &users {
            for g in &groups {
                let (s, g, user) = (s.clone(), g.clone(), user.clone());
                tasks.push(tokio::spawn(async move {
                    let op = json!([{"op": "add", "path": "members", "value": [{"value": user}]}]);
                    (false, s.patch(&format!("/Groups/{g}"), op).await)
                }));
            }
            let (s, user) = (s.clone(), user.clone());
            tasks.push(tokio::spawn(async move { (true, s.delete(&format!("/Users/{user}")).await) }));
        }
        for t in tasks {
            let (delete, r) = t.await.unwrap();
            match (delete, r.status.as_u16()) {
                (true, 204) => {}
                (false, 200 | 204) => added += 1,
                (false, 400) => {
                    r.assert_error(400, Some("invalidValue"));
                    refused += 1;
                }
                (_, status) => panic!("delete {delete}: {status} {}", r.body),
            }
        }
        for user in &users {
            s.get(&format!("/Users/{user}")).await.assert_error(404, None);
        }
    }
    for g in &groups {
        let got = s.get(&format!("/Groups/{g}")).await;
        assert_eq!(got.status, 200);
        assert_eq!(member_ids(&got.body), BTreeSet::new(), "no deleted user stays a member");
    }
    let by_events = members_by_events(&s).await;
    for g in &groups {
        assert_eq!(by_events.get(g).cloned().unwrap_or_default(), BTreeSet::new(), "the events agree with the group");
    }
    eprintln!("adds acknowledged {added}, refused for a deleted user {refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_racing_member_adds_sqlite() {
    deletes_racing_member_adds(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn deletes_racing_member_adds_postgres() {
    deletes_racing_member_adds(Db::Postgres).await;
}

/// Many clients change one group's members at once: the group ends with exactly the
/// acknowledged adds minus the acknowledged removes, and so do its events.
async fn member_changes_at_once(db: Db) {
    let s = Arc::new(TestServer::on_db(db, "race_members", |_| {}).await);
    let mut ids = Vec::new();
    for i in 0..60 {
        ids.push(s.user(&format!("m{i}")).await);
    }
    // The first 20 start in the group; clients remove them and add the other 40, at once.
    let g = s.group("Busy", &ids[..20].iter().map(String::as_str).collect::<Vec<_>>()).await;
    let mut tasks = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let (s, g, id) = (s.clone(), g.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            let op = if i < 20 {
                json!({"op": "remove", "path": format!("members[value eq \"{id}\"]")})
            } else {
                json!({"op": "add", "path": "members", "value": [{"value": id}]})
            };
            let r = s.patch(&format!("/Groups/{g}?excludedAttributes=members"), json!([op])).await;
            (i, id, r.status.as_u16(), r.body)
        }));
    }
    let mut expected: BTreeSet<String> = ids[..20].iter().cloned().collect();
    for t in tasks {
        let (i, id, status, body) = t.await.unwrap();
        assert_eq!(status, 200, "every change is acknowledged: {body}");
        if i < 20 {
            expected.remove(&id);
        } else {
            expected.insert(id);
        }
    }
    assert_eq!(member_ids(&s.get(&format!("/Groups/{g}")).await.body), expected);
    assert_eq!(members_by_events(&s).await[&g], expected, "the events agree with the group");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_changes_at_once_sqlite() {
    member_changes_at_once(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn member_changes_at_once_postgres() {
    member_changes_at_once(Db::Postgres).await;
}

/// Clients holding the same ETag change one user at once: one wins, the others are told
/// their version is stale (412), and the user holds the winner's change. The same name
/// created by many clients at once: one 201, the others 409 `uniqueness`.
async fn one_winner(db: Db) {
    let s = Arc::new(TestServer::on_db(db, "race_winner", |_| {}).await);
    let id = s.user("contested").await;
    let etag = s.get(&format!("/Users/{id}")).await.headers["etag"].to_str().unwrap().to_string();
    let tries = (0..8).map(|i| {
        let (s, id, etag) = (s.clone(), id.clone(), etag.clone());
        tokio::spawn(async move {
            let op = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "title", "value": format!("t{i}")}]});
            (i, s.call_with(Method::PATCH, &format!("/Users/{id}"), Some(op), &[("If-Match", &etag)]).await)
        })
    });
    let mut winners = Vec::new();
    for t in tries {
        let (i, r) = t.await.unwrap();
        match r.status.as_u16() {
            200 => winners.push(i),
            _ => r.assert_error(412, None),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one change holds the current version");
    let now = s.get(&format!("/Users/{id}")).await;
    assert_eq!(now.body["title"], format!("t{}", winners[0]));

    let tries = (0..8).map(|_| {
        let s = s.clone();
        tokio::spawn(async move { s.post("/Users", json!({"schemas": [USER], "userName": "Twin"})).await })
    });
    let mut created = 0;
    for t in tries {
        let r = t.await.unwrap();
        match r.status.as_u16() {
            201 => created += 1,
            _ => r.assert_error(409, Some("uniqueness")),
        }
    }
    assert_eq!(created, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_winner_sqlite() {
    one_winner(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn one_winner_postgres() {
    one_winner(Db::Postgres).await;
}
