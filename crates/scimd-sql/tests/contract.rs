//! The store contract, written once and run against every store: SQLite, PostgreSQL, and the
//! mapped mode (an application's own tables) on each.
//!
//! PostgreSQL tests use `SCIMD_TEST_POSTGRES_URL` (e.g. `postgres://postgres@127.0.0.1:5432/scimd_test`),
//! each in a fresh schema. Without it they are reported as ignored.
//!
//! Tests work from the ids a store returns: scimd's own tables keep the id they are given,
//! the mapped mode answers with the application's row keys.

mod stores;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use scimd_core::activity::{Activity, ActivityLog, ActivityQuery};
use scimd_core::events::{NewEvent, Written, no_events};
use scimd_core::store::{
    After, Change, DeletePolicy, Deletion, Kind, ListQuery, MemberChange, MemberRef, Modify, NewResource, SortKey,
    Store, StoreError, StoredResource,
};
use scimd_core::tenants::{FoundData, Tenant, TenantSettings, TenantState, TenantStore};
use scimd_core::tokens::{Scope, TokenInfo, TokenRequest, TokenStore, create_token, verify_token};
use scimd_proto::ScimError;
use scimd_proto::filter::{CompareOp, Filter, Literal, check, matches};
use scimd_proto::messages::SortOrder;
use scimd_proto::resource::{Meta, render};
use scimd_proto::schema::ResourceSchema;
use scimd_proto::{AttrPath, Registry};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use stores::{Env, Under};

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let under = crate::stores::sqlite().await;
                    super::$name(&under.env()).await;
                    under.finish().await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
                async fn $name() {
                    let under = crate::stores::postgres(stringify!($name)).await;
                    super::$name(&under.env()).await;
                    under.finish().await;
                }
            )*
        }
        mod on_mapped_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let under = crate::stores::mapped_sqlite().await;
                    super::$name(&under.env()).await;
                    under.finish().await;
                }
            )*
        }
        mod on_mapped_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
                async fn $name() {
                    let under = crate::stores::mapped_postgres(stringify!($name)).await;
                    super::$name(&under.env()).await;
                    under.finish().await;
                }
            )*
        }
        mod on_mapped_tenants_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let under = crate::stores::mapped_tenants_sqlite().await;
                    super::$name(&under.env()).await;
                    under.finish().await;
                }
            )*
        }
        mod on_mapped_tenants_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
                async fn $name() {
                    let under = crate::stores::mapped_tenants_postgres(stringify!($name)).await;
                    super::$name(&under.env()).await;
                    under.finish().await;
                }
            )*
        }
    };
}

contract!(
    create_get_update_delete,
    names_are_unique_regardless_of_case,
    membership_is_a_set_of_rows,
    versions_guard_updates,
    delete_policies,
    lists_sort_and_page_stably,
    lists_continue_after_a_key,
    filters_agree_with_the_evaluator,
    tenants_are_isolated,
    totals_follow_every_write,
    a_delete_touches_only_its_own_memberships,
    large_relations_come_whole_from_one_snapshot,
    every_committed_write_records_its_events,
    custom_types_keep_their_resources_apart,
    custom_filters_agree_with_the_evaluator,
    deep_pages_are_the_pages_an_offset_gives,
    deletes_racing_member_adds_leave_nothing_behind,
);

const NOW: &str = "2026-01-01T00:00:00.000000Z";
const LATER: &str = "2026-01-02T00:00:00.000000Z";

fn attrs(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// How the store tests delete (recording no events).
fn del(policy: DeletePolicy, expected_version: Option<i64>, now: &'static str) -> Deletion<'static> {
    Deletion { policy, expected_version, now, record: &no_events }
}

/// Creates a user and returns the id the store gave it.
async fn new_user(s: &dyn Store, tenant: &str, id: &str, v: Value) -> String {
    s.create(
        tenant,
        Kind::User,
        NewResource { id: id.into(), attributes: attrs(v), members: vec![], now: NOW.into() },
        &no_events,
    )
    .await
    .unwrap_or_else(|e| panic!("creating {id}: {e}"))
    .id
}

async fn new_group(s: &dyn Store, id: &str, name: &str, members: &[&str]) -> Result<String, StoreError> {
    let members = members.iter().map(|m| MemberRef { value: m.to_string() }).collect();
    s.create(
        "t",
        Kind::Group,
        NewResource { id: id.into(), attributes: attrs(json!({"displayName": name})), members, now: NOW.into() },
        &no_events,
    )
    .await
    .map(|r| r.id)
}

/// A write through `modify`, refused (412) when `expected` names another version.
async fn change(
    s: &dyn Store,
    tenant: &str,
    kind: Kind,
    id: &str,
    attributes: Option<Value>,
    members: Vec<MemberChange>,
    expected: Option<i64>,
) -> Result<i64, StoreError> {
    let decide = move |current: &StoredResource| -> Result<Change, ScimError> {
        if expected.is_some_and(|v| v != current.version) {
            return Err(ScimError::precondition_failed("stale"));
        }
        Ok(Change { attributes: attributes.clone().map(attrs), members: members.clone() })
    };
    let opts = Modify { load_relations: false, return_relations: false, now: LATER, record: &no_events };
    s.modify(tenant, kind, id, opts, &decide).await.map(|r| r.version)
}

fn refs(ids: &[&str]) -> Vec<MemberRef> {
    ids.iter().map(|m| MemberRef { value: m.to_string() }).collect()
}

async fn member_ids(s: &dyn Store, group: &str) -> Vec<String> {
    let g = s.get("t", Kind::Group, group, true).await.unwrap().unwrap();
    g.attributes
        .get("members")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|m| m["value"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

async fn version(s: &dyn Store, kind: Kind, id: &str) -> i64 {
    s.get("t", kind, id, false).await.unwrap().unwrap().version
}

async fn create_get_update_delete(env: &Env<'_>) {
    let s = env.store;
    let u1 =
        new_user(s, "t", "u1", json!({"userName": "Ann", "emails": [{"value": "Ann@Example.com"}], "active": true}))
            .await;
    let got = s.get("t", Kind::User, &u1, false).await.unwrap().unwrap();
    assert_eq!(got.attributes["userName"], "Ann");
    assert_eq!((got.version, got.created.as_str(), got.last_modified.as_str()), (1, NOW, NOW));
    let v = change(s, "t", Kind::User, &u1, Some(json!({"userName": "Ann", "title": "Dr"})), vec![], Some(1))
        .await
        .unwrap();
    assert_eq!(v, 2);
    let got = s.get("t", Kind::User, &u1, false).await.unwrap().unwrap();
    assert_eq!(got.attributes, attrs(json!({"userName": "Ann", "title": "Dr"})));
    assert_eq!((got.version, got.created.as_str(), got.last_modified.as_str()), (2, NOW, LATER));
    assert!(s.get("t", Kind::User, "nope", false).await.unwrap().is_none());
    assert!(matches!(change(s, "t", Kind::User, "nope", None, vec![], None).await, Err(StoreError::NotFound)));
    assert!(s.delete("t", Kind::User, &u1, del(DeletePolicy::Retire, None, LATER)).await.unwrap());
    assert!(s.get("t", Kind::User, &u1, false).await.unwrap().is_none());
    assert!(!s.delete("t", Kind::User, &u1, del(DeletePolicy::Retire, None, LATER)).await.unwrap());
}

async fn names_are_unique_regardless_of_case(env: &Env<'_>) {
    let s = env.store;
    let u1 = new_user(s, "t", "u1", json!({"userName": "Ünïcode@Example.com"})).await;
    let dup = s
        .create(
            "t",
            Kind::User,
            NewResource {
                id: "u2".into(),
                attributes: attrs(json!({"userName": "üNÏCODE@example.COM"})),
                members: vec![],
                now: NOW.into(),
            },
            &no_events,
        )
        .await;
    assert!(matches!(dup, Err(StoreError::Uniqueness(ref a)) if a == "userName"), "{dup:?}");
    let u3 = new_user(s, "t", "u3", json!({"userName": "other"})).await;
    let clash = change(s, "t", Kind::User, &u3, Some(json!({"userName": "ÜNÏCODE@EXAMPLE.COM"})), vec![], None).await;
    assert!(matches!(clash, Err(StoreError::Uniqueness(_))), "{clash:?}");
    new_group(s, "g1", "Admins", &[]).await.unwrap();
    assert!(
        matches!(new_group(s, "g2", "ADMINS", &[]).await, Err(StoreError::Uniqueness(ref a)) if a == "displayName")
    );
    // A deleted name is free again.
    s.delete("t", Kind::User, &u1, del(DeletePolicy::Retire, None, LATER)).await.unwrap();
    new_user(s, "t", "u4", json!({"userName": "ünïcode@example.com"})).await;
}

async fn membership_is_a_set_of_rows(env: &Env<'_>) {
    let s = env.store;
    let mut ids = Vec::new();
    for u in ["a", "b", "c"] {
        ids.push(new_user(s, "t", u, json!({"userName": u})).await);
    }
    let (a, b, c) = (ids[0].as_str(), ids[1].as_str(), ids[2].as_str());
    let g = new_group(s, "g", "G", &[a]).await.unwrap();
    // (The mapped mode's membership table holds users only; its ids are row keys per table.)
    if env.nested_groups {
        let h = new_group(s, "h", "H", &[&g]).await.unwrap();
        assert_eq!(member_ids(s, &h).await, vec![g.clone()]);
    }
    let v = change(s, "t", Kind::Group, &g, None, vec![MemberChange::Add(refs(&[b, a, b]))], None).await.unwrap();
    assert_eq!(v, 2);
    assert_eq!(member_ids(s, &g).await, vec![a, b]);
    // Re-adding present members changes nothing, not even the version.
    assert_eq!(change(s, "t", Kind::Group, &g, None, vec![MemberChange::Add(refs(&[a]))], None).await.unwrap(), 2);
    change(s, "t", Kind::Group, &g, None, vec![MemberChange::Remove(vec![a.into(), "zzz".into()])], None)
        .await
        .unwrap();
    assert_eq!(member_ids(s, &g).await, vec![b]);
    change(s, "t", Kind::Group, &g, None, vec![MemberChange::Replace(refs(&[c, a]))], None).await.unwrap();
    assert_eq!(BTreeSet::from_iter(member_ids(s, &g).await), BTreeSet::from([c.to_string(), a.to_string()]));
    let err = change(s, "t", Kind::Group, &g, None, vec![MemberChange::Add(refs(&["ghost"]))], None).await;
    assert!(matches!(err, Err(StoreError::InvalidMember(_))), "{err:?}");
    if env.nested_groups {
        let err = change(s, "t", Kind::Group, &g, None, vec![MemberChange::Add(refs(&[&g]))], None).await;
        assert!(matches!(err, Err(StoreError::InvalidMember(_))), "a group is no member of itself: {err:?}");
    }
    assert_eq!(member_ids(s, &g).await.len(), 2, "a refused change leaves the set as it was");
    // A user's groups derive from memberships.
    let got = s.get("t", Kind::User, a, true).await.unwrap().unwrap();
    assert_eq!(got.attributes["groups"], json!([{"value": g, "display": "G"}]));
    // Deleting a member removes it everywhere and bumps the group's version.
    let before = version(s, Kind::Group, &g).await;
    s.delete("t", Kind::User, a, del(DeletePolicy::Erase, None, LATER)).await.unwrap();
    assert_eq!(member_ids(s, &g).await, vec![c]);
    assert_eq!(version(s, Kind::Group, &g).await, before + 1);
    change(s, "t", Kind::Group, &g, None, vec![MemberChange::RemoveAll], None).await.unwrap();
    assert!(member_ids(s, &g).await.is_empty());
}

async fn versions_guard_updates(env: &Env<'_>) {
    let s = env.store;
    let u = new_user(s, "t", "u", json!({"userName": "v"})).await;
    let stale = change(s, "t", Kind::User, &u, Some(json!({"userName": "v", "title": "x"})), vec![], Some(7)).await;
    assert!(matches!(stale, Err(StoreError::Rejected(ref e)) if e.status == 412), "{stale:?}");
    assert!(matches!(
        s.delete("t", Kind::User, &u, del(DeletePolicy::Erase, Some(7), LATER)).await,
        Err(StoreError::VersionMismatch)
    ));
    assert_eq!(version(s, Kind::User, &u).await, 1);
}

async fn delete_policies(env: &Env<'_>) {
    let s = env.store;
    let r = new_user(s, "t", "r", json!({"userName": "r", "active": true})).await;
    let e = new_user(s, "t", "e", json!({"userName": "e"})).await;
    s.delete("t", Kind::User, &r, del(DeletePolicy::Retire, None, LATER)).await.unwrap();
    s.delete("t", Kind::User, &e, del(DeletePolicy::Erase, None, LATER)).await.unwrap();
    let registry = Registry::standard();
    let schema = registry.resource("User").unwrap();
    let q = ListQuery::page(&schema, 0, 10);
    assert_eq!(s.list("t", Kind::User, &q).await.unwrap().total, 0, "neither is visible");
}

async fn lists_sort_and_page_stably(env: &Env<'_>) {
    let s = env.store;
    for (i, name) in ["delta", "Alpha", "charlie", "Bravo", "echo"].iter().enumerate() {
        let family = if i == 2 { Value::Null } else { json!(name.to_uppercase()) };
        let mut a = json!({"userName": name, "emails": [{"value": format!("{name}@x"), "primary": i % 2 == 0}, {"value": format!("z{i}@x"), "primary": i % 2 == 1}]});
        if !family.is_null() {
            a["name"] = json!({"familyName": family});
        }
        new_user(s, "t", &format!("u{i}"), a).await;
    }
    let registry = Registry::standard();
    let schema = registry.resource("User").unwrap();
    let names = |page: &scimd_core::store::ListPage| {
        page.resources.iter().map(|r| r.attributes["userName"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    let sorted = |path: &str, order| ListQuery {
        schema: &schema,
        filter: None,
        sort: Some(SortKey { path: path.into(), order }),
        offset: 0,
        count: 10,
        with_relations: false,
        after: None,
    };
    let p = s.list("t", Kind::User, &sorted("userName", SortOrder::Ascending)).await.unwrap();
    assert_eq!(names(&p), vec!["Alpha", "Bravo", "charlie", "delta", "echo"], "case-insensitive order");
    let p = s.list("t", Kind::User, &sorted("userName", SortOrder::Descending)).await.unwrap();
    assert_eq!(names(&p), vec!["echo", "delta", "charlie", "Bravo", "Alpha"]);
    let p = s.list("t", Kind::User, &sorted("name.familyName", SortOrder::Descending)).await.unwrap();
    assert_eq!(names(&p), vec!["echo", "delta", "Bravo", "Alpha", "charlie"], "missing values last");
    let p = s.list("t", Kind::User, &sorted("emails.value", SortOrder::Ascending)).await.unwrap();
    // Primary emails: delta@x, z1@x (Alpha), charlie@x, z3@x (Bravo), echo@x.
    assert_eq!(names(&p), vec!["charlie", "delta", "echo", "Alpha", "Bravo"], "by the primary email");
    let mut seen = Vec::new();
    for offset in [0u64, 2, 4] {
        let q = ListQuery::page(&schema, offset, 2);
        let page = s.list("t", Kind::User, &q).await.unwrap();
        assert_eq!(page.total, 5);
        seen.extend(names(&page));
    }
    assert_eq!(seen, vec!["delta", "Alpha", "charlie", "Bravo", "echo"], "creation order, stable across pages");
    let q = ListQuery::page(&schema, 0, 0);
    let page = s.list("t", Kind::User, &q).await.unwrap();
    assert_eq!((page.total, page.resources.len()), (5, 0));
}

/// Keyset paging (`ListQuery::after`, for cursors): each page continues after the key of
/// the last resource of the one before, with a filter too, and a resource deleted from a
/// page already read does not make the next page skip one.
async fn lists_continue_after_a_key(env: &Env<'_>) {
    let s = env.store;
    for i in 0..7 {
        new_user(s, "t", &format!("k{i}"), json!({"userName": format!("user{i}"), "active": i % 2 == 0})).await;
    }
    let registry = Registry::standard();
    let schema = registry.resource("User").unwrap();
    let active = scimd_proto::filter::parse_filter("active eq true", Default::default()).unwrap();
    let page = |after: Option<i64>, only_active: bool| ListQuery {
        schema: &schema,
        filter: only_active.then_some(&active),
        sort: None,
        offset: 0,
        count: 3,
        with_relations: false,
        after: after.map(|key| After { key, sort: None }),
    };
    let names = |p: &scimd_core::store::ListPage| {
        p.resources.iter().map(|r| r.attributes["userName"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    let first = s.list("t", Kind::User, &page(None, false)).await.unwrap();
    assert_eq!(names(&first), ["user0", "user1", "user2"]);
    assert_eq!(first.keys.len(), 3);
    assert!(first.keys.windows(2).all(|w| w[0] < w[1]), "keys increase in the default order: {:?}", first.keys);
    // A resource of the page read is deleted: the next page still starts at user3.
    s.delete("t", Kind::User, &first.resources[0].id, del(DeletePolicy::Erase, None, LATER)).await.unwrap();
    let second = s.list("t", Kind::User, &page(first.keys.last().copied(), false)).await.unwrap();
    assert_eq!(names(&second), ["user3", "user4", "user5"]);
    assert_eq!(second.total, 6, "the total is the list's, not what follows the key");
    let third = s.list("t", Kind::User, &page(second.keys.last().copied(), false)).await.unwrap();
    assert_eq!(names(&third), ["user6"]);
    let a = s.list("t", Kind::User, &page(None, true)).await.unwrap();
    assert_eq!(names(&a), ["user2", "user4", "user6"]);
    let b = s.list("t", Kind::User, &page(Some(a.keys[0]), true)).await.unwrap();
    assert_eq!(names(&b), ["user4", "user6"]);

    // In a sort order: each page continues after the last one's sort value and key, in
    // either direction, with missing values last and ties in creation order.
    for (i, family) in [Some("b"), None, Some("a"), Some("b"), None, Some("c")].iter().enumerate() {
        let mut a = json!({"userName": format!("sorted{i}")});
        if let Some(f) = family {
            a["name"] = json!({"familyName": f});
        }
        new_user(s, "t", &format!("s{i}"), a).await;
    }
    let starts = scimd_proto::filter::parse_filter("userName sw \"sorted\"", Default::default()).unwrap();
    for (order, expected) in [
        (SortOrder::Ascending, ["sorted2", "sorted0", "sorted3", "sorted5", "sorted1", "sorted4"]),
        (SortOrder::Descending, ["sorted5", "sorted0", "sorted3", "sorted2", "sorted1", "sorted4"]),
    ] {
        let mut got = Vec::new();
        let mut after = None;
        loop {
            let q = ListQuery {
                schema: &schema,
                filter: Some(&starts),
                sort: Some(SortKey { path: "name.familyName".into(), order }),
                offset: 0,
                count: 2,
                with_relations: false,
                after: after.clone(),
            };
            let p = s.list("t", Kind::User, &q).await.unwrap();
            assert_eq!(p.total, 6);
            assert_eq!(p.sort_values.len(), p.resources.len());
            got.extend(names(&p));
            if p.resources.len() < 2 {
                break;
            }
            after = Some(After { key: p.keys[1], sort: Some(p.sort_values[1].clone()) });
        }
        assert_eq!(got, expected, "{order:?}");
    }
}

/// Two tenants hold the same userName, and neither sees, finds or changes the other's
/// resources. (The mapped mode serves one tenant: another one sees nothing at all.)
async fn tenants_are_isolated(env: &Env<'_>) {
    let s = env.store;
    let registry = Registry::standard();
    let schema = registry.resource("User").unwrap();
    let f = scimd_proto::filter::parse_filter(r#"userName eq "same""#, Default::default()).unwrap();
    let q = ListQuery {
        schema: &schema,
        filter: Some(&f),
        sort: None,
        offset: 0,
        count: 10,
        with_relations: true,
        after: None,
    };
    let (a, b) = if env.tenants { ("a", "b") } else { ("t", "other") };
    let a1 = new_user(s, a, "a-1", json!({"userName": "same"})).await;
    if env.tenants {
        new_user(s, b, "b-1", json!({"userName": "same"})).await;
        let page = s.list(a, Kind::User, &q).await.unwrap();
        assert_eq!(page.resources.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), vec![a1.as_str()]);
    }
    assert!(s.get(b, Kind::User, &a1, true).await.unwrap().is_none());
    assert!(matches!(change(s, b, Kind::User, &a1, None, vec![], None).await, Err(StoreError::NotFound)));
    assert!(!s.delete(b, Kind::User, &a1, del(DeletePolicy::Erase, None, LATER)).await.unwrap());
    let other = s.list(b, Kind::User, &q).await.unwrap();
    assert!(other.resources.iter().all(|r| r.id != a1), "{other:?}");
    assert!(s.get(a, Kind::User, &a1, false).await.unwrap().is_some(), "the other tenant's delete did nothing");
}

/// Unfiltered totals (kept as counts for scimd's own tables, counted in mapped ones) stay exact through
/// creates, refused duplicates, retires, erases, and per tenant and type.
async fn totals_follow_every_write(env: &Env<'_>) {
    let s = env.store;
    let registry = Registry::standard();
    let users = registry.resource("User").unwrap();
    let groups = registry.resource("Group").unwrap();
    let total = |tenant: &'static str, kind: Kind| {
        let schema = if kind == Kind::User { &users } else { &groups };
        async move {
            let q =
                ListQuery { schema, filter: None, sort: None, offset: 0, count: 0, with_relations: false, after: None };
            s.list(tenant, kind, &q).await.unwrap().total
        }
    };
    assert_eq!(total("t", Kind::User).await, 0);
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(new_user(s, "t", &format!("a{i}"), json!({"userName": format!("user{i}")})).await);
    }
    if env.tenants {
        new_user(s, "b", "b0", json!({"userName": "user0"})).await;
    }
    let dup = NewResource {
        id: "a9".into(),
        attributes: attrs(json!({"userName": "USER0"})),
        members: vec![],
        now: NOW.into(),
    };
    assert!(matches!(s.create("t", Kind::User, dup, &no_events).await, Err(StoreError::Uniqueness(_))));
    let g0 = new_group(s, "g0", "g0", &[]).await.unwrap();
    assert_eq!(total("t", Kind::User).await, 4);
    assert_eq!(total("t", Kind::Group).await, 1);
    s.delete("t", Kind::User, &ids[1], del(DeletePolicy::Retire, None, LATER)).await.unwrap();
    s.delete("t", Kind::User, &ids[2], del(DeletePolicy::Erase, None, LATER)).await.unwrap();
    assert!(!s.delete("t", Kind::User, &ids[1], del(DeletePolicy::Erase, None, LATER)).await.unwrap(), "already gone");
    s.delete("t", Kind::Group, &g0, del(DeletePolicy::Erase, None, LATER)).await.unwrap();
    assert_eq!(total("t", Kind::User).await, 2);
    assert_eq!(total("t", Kind::Group).await, 0);
    if env.tenants {
        assert_eq!(total("b", Kind::User).await, 1);
    }
    // The page itself agrees with the total.
    let q = ListQuery { with_relations: true, ..ListQuery::page(&users, 0, 10) };
    let got: Vec<String> = s.list("t", Kind::User, &q).await.unwrap().resources.into_iter().map(|r| r.id).collect();
    assert_eq!(got, vec![ids[0].clone(), ids[3].clone()]);
}

/// Deleting a resource removes it from the groups it is in (bumping their versions) and
/// changes no other group, under every policy: a user's row number must never be taken
/// for a group's.
async fn a_delete_touches_only_its_own_memberships(env: &Env<'_>) {
    let s = env.store;
    for policy in [DeletePolicy::Retire, DeletePolicy::Erase, DeletePolicy::Deactivate] {
        let p = policy.as_str();
        let mut u = Vec::new();
        for i in 1..=3 {
            let name = format!("{p}-u{i}");
            u.push(new_user(s, "t", &name, json!({"userName": name})).await);
        }
        // Groups made after the users: with row numbers counted per table, the group
        // numbered like a user is the one a wrong statement would empty.
        let g1 = new_group(s, &format!("{p}-g1"), &format!("{p}-g1"), &[&u[1]]).await.unwrap();
        let g2 = new_group(s, &format!("{p}-g2"), &format!("{p}-g2"), &[&u[2], &u[0]]).await.unwrap();
        let (v1, v2) = (version(s, Kind::Group, &g1).await, version(s, Kind::Group, &g2).await);
        assert!(s.delete("t", Kind::User, &u[0], del(policy, None, LATER)).await.unwrap(), "{p}");
        assert_eq!(member_ids(s, &g1).await, vec![u[1].clone()], "{p}: a group u1 was never in keeps its members");
        assert_eq!(version(s, Kind::Group, &g1).await, v1, "{p}: and its version");
        assert_eq!(member_ids(s, &g2).await, vec![u[2].clone()], "{p}: u1 left the group it was in");
        assert_eq!(version(s, Kind::Group, &g2).await, v2 + 1, "{p}: which has a new version");
        // Deleting a group leaves every other group's members alone.
        assert!(s.delete("t", Kind::Group, &g2, del(policy, None, LATER)).await.unwrap(), "{p}");
        assert_eq!(member_ids(s, &g1).await, vec![u[1].clone()], "{p}: deleting g2 leaves g1 alone");
        let u3 = s.get("t", Kind::User, &u[2], true).await.unwrap().unwrap();
        assert!(u3.attributes.get("groups").is_none(), "{p}: {u3:?}");
    }
}

/// A group with more members than `INLINE_RELATIONS`: reads bring at most one more than
/// that (the sign to stream), and `open_relations` gives every member, in membership
/// order, in batches read from one snapshot: a write after it was opened is not seen.
async fn large_relations_come_whole_from_one_snapshot(env: &Env<'_>) {
    use scimd_core::store::INLINE_RELATIONS;
    let s = env.store;
    let n = INLINE_RELATIONS * 2 + 500;
    let mut users = Vec::new();
    for i in 0..n + 1 {
        users.push(new_user(s, "t", &format!("m{i}"), json!({"userName": format!("member{i:05}")})).await);
    }
    let g = new_group(s, "big", "Big", &[]).await.unwrap();
    for chunk in users[..n].chunks(700) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        change(s, "t", Kind::Group, &g, None, vec![MemberChange::Add(refs_of(&refs))], None).await.unwrap();
    }
    let read = s.get("t", Kind::Group, &g, true).await.unwrap().unwrap();
    let inline = read.attributes["members"].as_array().unwrap().len();
    assert!(inline == INLINE_RELATIONS + 1 || inline == n, "{inline}");
    let mut stream = s.open_relations("t", Kind::Group, &g).await.unwrap().unwrap();
    assert!(stream.resource.attributes.get("members").is_none(), "the resource comes without them");
    let version = stream.resource.version;
    // Written after the stream was opened: not part of its snapshot.
    let late = users[n].clone();
    let written = change(s, "t", Kind::Group, &g, None, vec![MemberChange::Add(refs_of(&[&late]))], None);
    let mut got = Vec::new();
    let mut batches = 0;
    // (SQLite's writer waits for no reader; PostgreSQL's neither: the write goes through.)
    assert!(written.await.unwrap() > version);
    while let Some(batch) = stream.batches.next().await.unwrap() {
        batches += 1;
        for m in batch {
            assert_eq!(m["type"], "User");
            assert!(m["display"].as_str().unwrap().starts_with("member"), "{m:?}");
            got.push(m["value"].as_str().unwrap().to_string());
        }
    }
    let mut expected = users[..n].to_vec();
    if !env.insertion_order {
        expected.sort_by_key(|id| id.parse::<i64>().unwrap());
    }
    assert_eq!(got.len(), expected.len(), "every member, none added later");
    let first_difference = got.iter().zip(&expected).position(|(a, b)| a != b);
    assert_eq!(first_difference, None, "in order");
    assert!(batches >= 1);
    // Snapshots are few at a time (a quarter of a PostgreSQL pool): done with, it goes.
    drop(stream);
    // A user's groups likewise (few here: one batch).
    let mut groups = s.open_relations("t", Kind::User, &users[0]).await.unwrap().unwrap();
    let first = groups.batches.next().await.unwrap().unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!((first[0]["value"].as_str(), first[0]["display"].as_str()), (Some(g.as_str()), Some("Big")));
    assert!(groups.batches.next().await.unwrap().is_none());
    drop(groups);
    assert!(s.open_relations("t", Kind::Group, "nope").await.unwrap().is_none());
}

fn refs_of(ids: &[&str]) -> Vec<MemberRef> {
    refs(ids)
}

// ---------------------------------------------------------------- SQL vs evaluator

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const WORDS: &[&str] = &["a", "A", "ab", "Ab", "b", "é", "É", "éa", ""];

fn word() -> impl Strategy<Value = String> {
    prop::sample::select(WORDS).prop_map(str::to_string)
}

fn user_attrs() -> impl Strategy<Value = Map<String, Value>> {
    let email = (
        prop::option::of(word()),
        prop::option::of(prop::sample::select(vec!["work", "home"])),
        prop::option::of(any::<bool>()),
    );
    (
        prop::option::of(word()),
        prop::option::of(any::<bool>()),
        prop::collection::vec(email, 0..3),
        (prop::option::of(word()), prop::option::of(word())),
        prop::option::of(word()),
    )
        .prop_map(|(title, active, emails, (family, given), dept)| {
            let mut m = Map::new();
            if let Some(t) = title {
                m.insert("title".into(), json!(t));
            }
            if let Some(a) = active {
                m.insert("active".into(), json!(a));
            }
            // At most one primary (RFC 7643 §2.4), as validation would leave it.
            let mut primary_taken = false;
            let list: Vec<Value> = emails
                .into_iter()
                .filter(|(v, t, p)| v.is_some() || t.is_some() || p.is_some())
                .map(|(v, t, p)| {
                    let mut e = Map::new();
                    if let Some(v) = v {
                        e.insert("value".into(), json!(v));
                    }
                    if let Some(t) = t {
                        e.insert("type".into(), json!(t));
                    }
                    if let Some(p) = p.filter(|p| !*p || !primary_taken) {
                        primary_taken |= p;
                        e.insert("primary".into(), json!(p));
                    }
                    Value::Object(e)
                })
                .collect();
            if !list.is_empty() {
                m.insert("emails".into(), Value::Array(list));
            }
            let mut name = Map::new();
            if let Some(f) = family {
                name.insert("familyName".into(), json!(f));
            }
            if let Some(g) = given {
                name.insert("givenName".into(), json!(g));
            }
            if !name.is_empty() {
                m.insert("name".into(), Value::Object(name));
            }
            if let Some(d) = dept {
                m.insert(ENT.into(), json!({"department": d}));
            }
            m
        })
}

/// A path as a client might spell it: attribute names are case-insensitive.
fn spelled(path: &'static str) -> impl Strategy<Value = AttrPath> {
    any::<u8>().prop_map(move |style| {
        let text = match style % 4 {
            0 => path.to_string(),
            1 => path.to_uppercase(),
            2 => path.to_lowercase(),
            _ => path.chars().enumerate().map(|(i, c)| if i % 2 == 0 { c.to_ascii_uppercase() } else { c }).collect(),
        };
        // URN prefixes keep their case-insensitive match; attribute names after them too.
        AttrPath::parse(&text).unwrap()
    })
}

fn one_of(paths: &[&'static str]) -> BoxedStrategy<AttrPath> {
    prop::sample::select(paths.to_vec()).prop_flat_map(spelled).boxed()
}

fn leaf() -> BoxedStrategy<Filter> {
    let text_paths = one_of(&[
        "userName",
        "title",
        "emails.value",
        "emails.type",
        "emails",
        "name.familyName",
        "name.givenName",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        "externalId",
        "id",
    ]);
    let present_paths = one_of(&[
        "userName",
        "title",
        "emails",
        "emails.value",
        "emails.type",
        "emails.primary",
        "name",
        "name.familyName",
        "name.givenName",
        "active",
        "externalId",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    ]);
    let sub = || prop::sample::select(vec!["type", "value", "primary"]);
    let element =
        (sub(), prop::sample::select(CompareOp::ALL.to_vec()), word(), any::<bool>()).prop_map(|(sub, op, w, b)| {
            match sub {
                "primary" => Filter::Compare(AttrPath::simple(sub), CompareOp::Eq, Literal::Bool(b)),
                _ => Filter::Compare(AttrPath::simple(sub), op, Literal::String(w)),
            }
        });
    let element_present = sub().prop_map(|s| Filter::Present(AttrPath::simple(s)));
    let element = prop_oneof![3 => element, 1 => element_present];
    prop_oneof![
        4 => (text_paths, prop::sample::select(CompareOp::ALL.to_vec()), word()).prop_map(|(p, op, w)| Filter::Compare(p, op, Literal::String(w))),
        1 => (one_of(&["active", "emails.primary"]), prop::sample::select(vec![CompareOp::Eq, CompareOp::Ne]), any::<bool>()).prop_map(|(p, op, b)| Filter::Compare(p, op, Literal::Bool(b))),
        2 => present_paths.prop_map(Filter::Present),
        1 => (one_of(&["title", "name.familyName", "emails.value", "emails.primary", "active"]), prop::sample::select(vec![CompareOp::Eq, CompareOp::Ne]))
            .prop_map(|(p, op)| Filter::Compare(p, op, Literal::Null)),
        1 => (prop::sample::select(vec![CompareOp::Gt, CompareOp::Le, CompareOp::Eq]), prop::sample::select(vec!["2026-01-01T00:00:30Z", "2026-01-01T02:00:30+02:00"]))
            .prop_map(|(op, t)| Filter::Compare(AttrPath::parse("meta.created").unwrap(), op, Literal::String(t.into()))),
        // Value filters, with `and`, `or` and `not` inside the brackets.
        2 => (element.clone(), prop::option::of((element.clone(), 0u8..3)), one_of(&["emails"])).prop_map(|(a, b, attr)| {
            let inner = match b {
                None => a,
                Some((b, 0)) => Filter::and(a, b),
                Some((b, 1)) => Filter::or(a, b),
                Some((b, _)) => Filter::and(a, Filter::Not(Box::new(b))),
            };
            Filter::ValuePath(attr, Box::new(inner))
        }),
    ]
    .boxed()
}

fn any_filter() -> BoxedStrategy<Filter> {
    leaf()
        .prop_recursive(3, 12, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::and(a, b)),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::or(a, b)),
                inner.prop_map(|a| Filter::Not(Box::new(a))),
            ]
        })
        .boxed()
}

/// Every live resource of `kind` in tenant `t`, rendered as a GET would render it.
async fn rendered(s: &dyn Store, kind: Kind, schema: &ResourceSchema<'_>) -> Vec<(String, Map<String, Value>)> {
    let page = s.list("t", kind, &ListQuery::page(schema, 0, 1000)).await.unwrap();
    page.resources
        .into_iter()
        .map(|r| {
            let meta = Meta {
                created: r.created.clone(),
                last_modified: r.last_modified.clone(),
                location: String::new(),
                version: r.version,
            };
            (r.id.clone(), render(schema, &r.id, r.attributes, &meta))
        })
        .collect()
}

/// Checks `tries` random filters of `strategy`: the store's answer (SQL) must be what the
/// evaluator answers on `resources`. Returns how many filters were valid, and how many of
/// those matched some resources but not all.
async fn agree(
    s: &dyn Store,
    kind: Kind,
    schema: &ResourceSchema<'_>,
    resources: &[(String, Map<String, Value>)],
    strategy: BoxedStrategy<Filter>,
    tries: usize,
) -> (usize, usize) {
    let mut runner = TestRunner::new(Config { cases: 1, ..Config::default() });
    let (mut checked, mut matched_some) = (0, 0);
    for _ in 0..tries {
        let f = strategy.new_tree(&mut runner).unwrap().current();
        if check(&f, schema).is_err() {
            continue;
        }
        checked += 1;
        let expected: BTreeSet<&str> =
            resources.iter().filter(|(_, r)| matches(&f, schema, r)).map(|(id, _)| id.as_str()).collect();
        let q = ListQuery { filter: Some(&f), ..ListQuery::page(schema, 0, 1000) };
        let page = s.list("t", kind, &q).await.unwrap_or_else(|e| panic!("{f}: {e}"));
        let got: BTreeSet<&str> = page.resources.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(page.total as usize, got.len(), "{f}");
        assert_eq!(got, expected, "filter: {f}");
        matched_some += usize::from(!expected.is_empty() && expected.len() < resources.len());
    }
    (checked, matched_some)
}

/// Random filters over random users: the store's answer (SQL) and the evaluator's answer
/// on the resources as the store reads them must be the same set. In the mapped mode some
/// users are rows the application wrote itself, never touched by SCIM.
async fn filters_agree_with_the_evaluator(env: &Env<'_>) {
    let s = env.store;
    let registry = Registry::standard();
    let schema = registry.resource("User").unwrap();
    let mut runner = TestRunner::deterministic();
    for i in 0..120 {
        let mut a = user_attrs().new_tree(&mut runner).unwrap().current();
        a.insert("userName".into(), json!(format!("{}{i}", WORDS[i % WORDS.len()])));
        if i % 3 == 0 {
            a.insert("externalId".into(), json!(WORDS[i % WORDS.len()]));
        }
        let id = format!("id-{}{i:03}", WORDS[i % 4]);
        let now = format!("2026-01-01T00:00:{:02}.000000Z", i % 60);
        s.create("t", Kind::User, NewResource { id, attributes: a, members: vec![], now }, &no_events).await.unwrap();
    }
    env.application_rows().await;
    // What a client reads: every live user, rendered as a GET would render it.
    let resources = rendered(s, Kind::User, &schema).await;
    assert!(resources.len() >= 120, "{}", resources.len());
    let (checked, matched_some) = agree(s, Kind::User, &schema, &resources, any_filter(), 1200).await;
    assert!(checked > 1000, "only {checked} filters were checked");
    assert!(matched_some > checked / 4, "too few filters separate the users: {matched_some} of {checked}");
}

// ---------------------------------------------------------------- custom resource types

const GADGET: &str = "urn:example:scim:schemas:core:1.0:Gadget";

/// A registry with a `Gadget` type beside the built-in ones, and its kind.
fn gadgets() -> (Registry, Kind) {
    let mut registry = Registry::standard();
    let files = [(
        "gadget.json".to_string(),
        json!([
            {"id": GADGET, "attributes": [
                {"name": "displayName", "type": "string", "required": true},
                {"name": "serial", "type": "string", "caseExact": true, "uniqueness": "server"},
                {"name": "size", "type": "integer"},
                {"name": "price", "type": "decimal"},
                {"name": "enabled", "type": "boolean"},
                {"name": "tags", "type": "string", "multiValued": true},
                {"name": "parts", "type": "complex", "multiValued": true, "subAttributes": [
                    {"name": "value", "type": "string"}, {"name": "count", "type": "integer"}]}]},
            {"id": "Gadget", "name": "Gadget", "endpoint": "/Gadgets", "schema": GADGET}
        ])
        .to_string(),
    )];
    scimd_proto::schema_files::load(&mut registry, &files).unwrap();
    let kind = scimd_core::kinds::kinds_of(&registry).into_iter().find(|k| k.name() == "Gadget").unwrap();
    (registry, kind)
}

async fn new_gadget(s: &dyn Store, tenant: &str, kind: Kind, id: &str, v: Value) -> Result<StoredResource, StoreError> {
    s.create(
        tenant,
        kind,
        NewResource { id: id.into(), attributes: attrs(v), members: vec![], now: NOW.into() },
        &no_events,
    )
    .await
}

/// Resources of a configured type: kept, changed, listed, filtered, sorted, paged and
/// deleted like the built-in types', each type and tenant apart, and the values its schema
/// declares unique kept unique. The mapped mode maps the built-in types only: it refuses.
async fn custom_types_keep_their_resources_apart(env: &Env<'_>) {
    let s = env.store;
    let (registry, kind) = gadgets();
    let schema = registry.resource("Gadget").unwrap();
    if env.mapped {
        let e = new_gadget(s, "t", kind, "g", json!({"displayName": "g"})).await.unwrap_err();
        assert!(matches!(&e, StoreError::Rejected(e) if e.status == 501), "{e:?}");
        return;
    }
    let a = new_gadget(s, "t", kind, "g-a", json!({"displayName": "Alpha", "serial": "S1", "size": 10})).await.unwrap();
    assert_eq!((a.id.as_str(), a.version), ("g-a", 1));
    new_gadget(s, "t", kind, "g-b", json!({"displayName": "beta", "serial": "s1", "size": 2})).await.unwrap();
    new_gadget(s, "t", kind, "g-c", json!({"displayName": "Gamma", "size": 30})).await.unwrap();
    // Unique as the schema says (serial is case-exact), per tenant.
    let dup = new_gadget(s, "t", kind, "g-d", json!({"displayName": "d", "serial": "S1"})).await.unwrap_err();
    assert!(matches!(&dup, StoreError::Uniqueness(a) if a == "serial"), "{dup:?}");
    new_gadget(s, "u", kind, "g-u", json!({"displayName": "Alpha", "serial": "S1"})).await.unwrap();
    // Apart from users (an id of another type is not found) and from other tenants.
    new_user(s, "t", "u-1", json!({"userName": "Alpha"})).await;
    assert!(s.get("t", kind, "u-1", false).await.unwrap().is_none());
    assert!(s.get("t", Kind::User, "g-a", false).await.unwrap().is_none());
    assert!(s.get("u", kind, "g-a", false).await.unwrap().is_none());
    let all = s.list("t", kind, &ListQuery::page(&schema, 0, 10)).await.unwrap();
    assert_eq!(all.total, 3);
    assert_eq!(all.resources.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["g-a", "g-b", "g-c"]);
    // Filtered and sorted in SQL, by the attributes' types.
    let f = scimd_proto::filter::parse_filter("size gt 5 and displayName sw \"A\"", Default::default()).unwrap();
    let sort = SortKey { path: "size".into(), order: SortOrder::Descending };
    let q = ListQuery { filter: Some(&f), ..ListQuery::page(&schema, 0, 10) };
    let page = s.list("t", kind, &q).await.unwrap();
    assert_eq!(page.resources.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["g-a"]);
    let q = ListQuery { sort: Some(sort), ..ListQuery::page(&schema, 0, 2) };
    let page = s.list("t", kind, &q).await.unwrap();
    assert_eq!(
        page.resources.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["g-c", "g-a"],
        "30 > 10 > 2, as numbers"
    );
    let after = After { key: *page.keys.last().unwrap(), sort: page.sort_values.last().cloned() };
    let rest = s.list("t", kind, &ListQuery { after: Some(after), ..q.clone() }).await.unwrap();
    assert_eq!(rest.resources.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["g-b"]);
    // Changed: the unique value moves with it.
    let v = change(s, "t", kind, "g-a", Some(json!({"displayName": "Alpha", "serial": "S2"})), vec![], Some(1)).await;
    assert_eq!(v.unwrap(), 2);
    new_gadget(s, "t", kind, "g-e", json!({"displayName": "e", "serial": "S1"})).await.expect("S1 was freed");
    let taken = change(s, "t", kind, "g-c", Some(json!({"displayName": "Gamma", "serial": "S2"})), vec![], None).await;
    assert!(matches!(&taken, Err(StoreError::Uniqueness(a)) if a == "serial"), "{taken:?}");
    assert_eq!(s.get("t", kind, "g-c", false).await.unwrap().unwrap().version, 1, "the refused write wrote nothing");
    // Deleted under either policy: gone, its values free.
    for (policy, id) in [(DeletePolicy::Retire, "g-a"), (DeletePolicy::Erase, "g-e")] {
        assert!(s.delete("t", kind, id, del(policy, None, LATER)).await.unwrap());
        assert!(s.get("t", kind, id, false).await.unwrap().is_none());
        assert!(!s.delete("t", kind, id, del(policy, None, LATER)).await.unwrap());
    }
    new_gadget(s, "t", kind, "g-f", json!({"displayName": "f", "serial": "S2"})).await.expect("S2 was freed");
    new_gadget(s, "t", kind, "g-g", json!({"displayName": "g", "serial": "S1"})).await.expect("S1 was freed");
    assert_eq!(s.list("t", kind, &ListQuery::page(&schema, 0, 0)).await.unwrap().total, 4);
    assert_eq!(
        s.list("t", Kind::User, &ListQuery::page(&registry.resource("User").unwrap(), 0, 0)).await.unwrap().total,
        1
    );
}

fn gadget_attrs() -> impl Strategy<Value = Map<String, Value>> {
    let part = (prop::option::of(word()), prop::option::of(0i64..4));
    (
        word(),
        prop::option::of(word()),
        prop::option::of(-2i64..3),
        prop::option::of(prop::sample::select(vec![0.5f64, 1.0, 2.25])),
        prop::option::of(any::<bool>()),
        prop::collection::vec(word(), 0..3),
        prop::collection::vec(part, 0..3),
    )
        .prop_map(|(name, serial, size, price, enabled, tags, parts)| {
            let mut m = Map::new();
            m.insert("displayName".into(), json!(name));
            let mut put = |k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    m.insert(k.into(), v);
                }
            };
            put("serial", serial.map(|s| json!(s)));
            put("size", size.map(|s| json!(s)));
            put("price", price.map(|p| json!(p)));
            put("enabled", enabled.map(|e| json!(e)));
            put("tags", (!tags.is_empty()).then(|| json!(tags)));
            let parts: Vec<Value> = parts
                .into_iter()
                .filter(|(v, c)| v.is_some() || c.is_some())
                .map(|(v, c)| {
                    let mut p = Map::new();
                    if let Some(v) = v {
                        p.insert("value".into(), json!(v));
                    }
                    if let Some(c) = c {
                        p.insert("count".into(), json!(c));
                    }
                    Value::Object(p)
                })
                .collect();
            put("parts", (!parts.is_empty()).then_some(Value::Array(parts)));
            m
        })
}

fn gadget_filter() -> BoxedStrategy<Filter> {
    let ops = || prop::sample::select(CompareOp::ALL.to_vec());
    let leaf = prop_oneof![
        3 => (one_of(&["displayName", "serial", "tags", "parts.value", "parts"]), ops(), word())
            .prop_map(|(p, op, w)| Filter::Compare(p, op, Literal::String(w))),
        2 => (one_of(&["size", "parts.count"]), ops(), -2i64..4).prop_map(|(p, op, n)| Filter::Compare(p, op, Literal::Number(n.into()))),
        1 => (ops(), prop::sample::select(vec![0.5f64, 1.0, 2.0])).prop_map(|(op, n)| {
            Filter::Compare(AttrPath::simple("price"), op, Literal::Number(serde_json::Number::from_f64(n).unwrap()))
        }),
        1 => (prop::sample::select(vec![CompareOp::Eq, CompareOp::Ne]), any::<bool>())
            .prop_map(|(op, b)| Filter::Compare(AttrPath::simple("enabled"), op, Literal::Bool(b))),
        2 => one_of(&["serial", "size", "price", "enabled", "tags", "parts", "parts.count"]).prop_map(Filter::Present),
        1 => (prop::sample::select(vec!["value", "count"]), ops(), word(), 0i64..4).prop_map(|(sub, op, w, n)| {
            let inner = match sub {
                "count" => Filter::Compare(AttrPath::simple(sub), op, Literal::Number(n.into())),
                _ => Filter::Compare(AttrPath::simple(sub), op, Literal::String(w)),
            };
            Filter::ValuePath(AttrPath::simple("parts"), Box::new(inner))
        }),
    ];
    leaf.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::and(a, b)),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::or(a, b)),
            inner.prop_map(|a| Filter::Not(Box::new(a))),
        ]
    })
    .boxed()
}

/// Random filters over random resources of a configured type (numbers, booleans,
/// multi-valued strings and complex values, case-exact and not, all in the document):
/// SQL and the evaluator agree.
async fn custom_filters_agree_with_the_evaluator(env: &Env<'_>) {
    if env.mapped {
        return; // The mapped mode maps the built-in types only (see above).
    }
    let s = env.store;
    let (registry, kind) = gadgets();
    let schema = registry.resource("Gadget").unwrap();
    let mut runner = TestRunner::deterministic();
    for i in 0..100 {
        let mut a = gadget_attrs().new_tree(&mut runner).unwrap().current();
        // Serials are unique (the schema says so): half the resources get one of their own.
        if let Some(Value::String(serial)) = a.remove("serial").filter(|_| i % 2 == 0) {
            a.insert("serial".into(), json!(format!("{serial}{i}")));
        }
        new_gadget(s, "t", kind, &format!("g-{i:03}"), Value::Object(a)).await.unwrap();
    }
    let resources = rendered(s, kind, &schema).await;
    assert_eq!(resources.len(), 100);
    let (checked, matched_some) = agree(s, kind, &schema, &resources, gadget_filter(), 800).await;
    assert!(checked > 400, "only {checked} filters were checked");
    assert!(matched_some > checked / 4, "too few filters separate the resources: {matched_some} of {checked}");
}

// ---------------------------------------------------------------- scimd's own stores only

fn tenant(slug: &str) -> Tenant {
    Tenant {
        slug: slug.into(),
        name: slug.to_uppercase(),
        state: TenantState::Active,
        settings: TenantSettings::default(),
        created: NOW.into(),
        last_request: None,
    }
}

/// The record of a request answered at `LATER`.
fn late_request(tenant: &str) -> Activity {
    Activity {
        tenant: tenant.into(),
        time: LATER.into(),
        method: "POST".into(),
        path: "/scim/v2/Users".into(),
        status: 201,
        scim_type: None,
        detail: None,
        latency_us: 900,
        resource_type: Some("User".into()),
        resource_id: Some("late".into()),
        user_agent: None,
        client: None,
        request_id: None,
        request_body: None,
    }
}

fn scim_token<'a>(tenant: &'a str, name: &'a str, expires: Option<&str>) -> TokenRequest<'a> {
    TokenRequest { scope: Scope::Scim, tenant, name, secret: None, expires: expires.map(Into::into) }
}

/// Tokens open one tenant's SCIM endpoints or the admin API, until revoked, expired, or
/// their tenant disabled or erased.
async fn tokens<S: TokenStore + TenantStore + Store + ActivityLog>(s: &S) {
    s.create_tenant(&tenant("t"), FoundData::Erase).await.unwrap();
    s.create_tenant(&tenant("other"), FoundData::Erase).await.unwrap();
    assert!(matches!(s.create_tenant(&tenant("t"), FoundData::Erase).await, Err(StoreError::Uniqueness(_))));
    let t = create_token(s, scim_token("t", "okta", None), NOW).await.unwrap();
    let found = verify_token(s, Scope::Scim, &t.secret, NOW).await.unwrap().expect("a new token opens its tenant");
    assert_eq!((found.info.name.as_str(), found.info.tenant.as_str()), ("okta", "t"));
    assert_eq!(found.settings, TenantSettings::default());
    assert!(verify_token(s, Scope::Scim, "scimd_wrong", NOW).await.unwrap().is_none());
    assert!(verify_token(s, Scope::Admin, &t.secret, NOW).await.unwrap().is_none(), "SCIM token opened the admin API");

    // Rotation: a second token works beside the first; each tenant lists its own.
    let second = create_token(s, scim_token("t", "rotated", None), "2026-01-01T00:00:01.000000Z").await.unwrap();
    assert!(verify_token(s, Scope::Scim, &second.secret, NOW).await.unwrap().is_some());
    let listed: Vec<TokenInfo> = s.list_tokens(Scope::Scim, "t").await.unwrap();
    assert_eq!(listed.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["okta", "rotated"]);
    assert!(s.list_tokens(Scope::Scim, "other").await.unwrap().is_empty());
    assert!(!s.revoke_token(Scope::Scim, "other", &t.info.id, LATER).await.unwrap(), "revoked another tenant's token");

    // Last use.
    s.touch_token(Scope::Scim, &t.info.id, LATER).await.unwrap();
    let used = s.list_tokens(Scope::Scim, "t").await.unwrap();
    assert_eq!(used[0].last_used.as_deref(), Some(LATER));
    assert_eq!(used[1].last_used, None);

    // Revocation.
    assert!(s.revoke_token(Scope::Scim, "t", &t.info.id, LATER).await.unwrap());
    assert!(verify_token(s, Scope::Scim, &t.secret, LATER).await.unwrap().is_none());
    assert!(verify_token(s, Scope::Scim, &second.secret, LATER).await.unwrap().is_some(), "revoked the wrong token");
    assert!(!s.revoke_token(Scope::Scim, "t", &t.info.id, LATER).await.unwrap());
    assert_eq!(s.list_tokens(Scope::Scim, "t").await.unwrap()[0].revoked.as_deref(), Some(LATER));

    // Expiry: valid until the instant, refused from it on.
    let expiring = create_token(s, scim_token("other", "short", Some(LATER)), NOW).await.unwrap();
    assert!(verify_token(s, Scope::Scim, &expiring.secret, NOW).await.unwrap().is_some());
    assert!(verify_token(s, Scope::Scim, &expiring.secret, LATER).await.unwrap().is_none());

    // A disabled tenant's tokens open nothing until it is enabled; its data stays.
    new_user(s, "t", "u1", json!({"userName": "ada", "active": true})).await;
    new_user(s, "t", "u2", json!({"userName": "grace", "active": false})).await;
    new_user(s, "other", "u3", json!({"userName": "ada"})).await;
    s.update_tenant("t", None, Some(TenantState::Disabled), None).await.unwrap().unwrap();
    assert!(verify_token(s, Scope::Scim, &second.secret, LATER).await.unwrap().is_none());
    let enabled = s.update_tenant("t", Some("T Corp"), Some(TenantState::Active), None).await.unwrap().unwrap();
    assert_eq!((enabled.name.as_str(), enabled.state), ("T Corp", TenantState::Active));
    assert!(verify_token(s, Scope::Scim, &second.secret, LATER).await.unwrap().is_some());
    assert!(s.update_tenant("nobody", None, Some(TenantState::Active), None).await.unwrap().is_none());
    let stats = s.tenant_stats("t").await.unwrap();
    assert_eq!((stats.users, stats.active_users, stats.groups), (2, 1, 0));

    // Settings round-trip.
    let settings = TenantSettings {
        delete_policy: Some(DeletePolicy::Erase),
        rate_limit_per_second: Some(5.0),
        rate_limit_burst: Some(10),
    };
    s.update_tenant("t", None, None, Some(&settings)).await.unwrap();
    assert_eq!(s.tenant("t").await.unwrap().unwrap().settings, settings);
    let verified = verify_token(s, Scope::Scim, &second.secret, LATER).await.unwrap().unwrap();
    assert_eq!(verified.settings, settings, "a token comes with its tenant's settings");
    s.touch_tenant("t", LATER).await.unwrap();
    assert_eq!(s.tenant("t").await.unwrap().unwrap().last_request.as_deref(), Some(LATER));

    // Admin tokens: their own list, never a tenant's.
    let admin = create_token(
        s,
        TokenRequest { scope: Scope::Admin, tenant: "t", name: "ops", secret: None, expires: None },
        NOW,
    )
    .await
    .unwrap();
    assert!(admin.secret.starts_with("scimd_admin_"));
    assert_eq!(verify_token(s, Scope::Admin, &admin.secret, NOW).await.unwrap().unwrap().info.tenant, "");
    assert!(verify_token(s, Scope::Scim, &admin.secret, NOW).await.unwrap().is_none(), "admin token opened SCIM");
    assert_eq!(s.list_tokens(Scope::Admin, "").await.unwrap().len(), 1);
    assert_eq!(s.list_tokens(Scope::Scim, "t").await.unwrap().len(), 2);

    // Erasing a tenant takes everything it holds and nothing of another's.
    assert!(s.delete_tenant("t", NOW).await.unwrap());
    assert!(!s.delete_tenant("t", NOW).await.unwrap());
    assert!(s.tenant("t").await.unwrap().is_none());
    assert!(verify_token(s, Scope::Scim, &second.secret, LATER).await.unwrap().is_none());
    assert!(s.list_tokens(Scope::Scim, "t").await.unwrap().is_empty());
    assert_eq!(s.tenant_stats("t").await.unwrap().users, 0);
    assert_eq!(s.tenant_stats("other").await.unwrap().users, 1);
    assert!(verify_token(s, Scope::Admin, &admin.secret, NOW).await.unwrap().is_some());
    // A write that was under way when the tenant was erased commits after it, and its
    // request is recorded. Once no such write can still be running, the sweep erases what it
    // left, once.
    new_user(s, "t", "late", json!({"userName": "late"})).await;
    s.record_activity(&[late_request("t")]).await.unwrap();
    let recorded = |slug: &'static str| async move {
        s.activity(slug, &ActivityQuery { limit: 10, ..ActivityQuery::default() }).await.unwrap().len()
    };
    assert_eq!(s.sweep_deleted(NOW).await.unwrap(), 0, "deleted at NOW, not before it");
    assert!(s.get("t", Kind::User, "late", false).await.unwrap().is_some(), "left until swept");
    assert_eq!(recorded("t").await, 1);
    assert_eq!(s.sweep_deleted(LATER).await.unwrap(), 1);
    assert!(s.get("t", Kind::User, "late", false).await.unwrap().is_none(), "swept");
    assert_eq!(recorded("t").await, 0, "and its request's record");
    assert_eq!(s.tenant_stats("other").await.unwrap().users, 1, "another tenant's data stays");
    assert_eq!(s.sweep_deleted(LATER).await.unwrap(), 0, "swept once");
    // Before the sweep, the slug is free again, and a new tenant of it starts empty: nothing
    // of the old one's; the sweep then leaves the new tenant's data alone.
    new_user(s, "t", "late", json!({"userName": "late"})).await;
    s.record_activity(&[late_request("t")]).await.unwrap();
    s.create_tenant(&tenant("t"), FoundData::Erase).await.unwrap();
    assert_eq!(recorded("t").await, 0, "nor the old one's requests");
    assert_eq!(s.tenant_stats("t").await.unwrap().users, 0);
    assert!(s.get("t", Kind::User, "late", false).await.unwrap().is_none());
    new_user(s, "t", "u1", json!({"userName": "ada"})).await;
    new_user(s, "t", "u2", json!({"userName": "late"})).await;
    assert!(s.create_tenant(&tenant("t"), FoundData::Erase).await.is_err(), "a slug taken is refused");
    assert_eq!(s.tenant_stats("t").await.unwrap().users, 2, "and its tenant's data stays");
    assert_eq!(s.sweep_deleted(LATER).await.unwrap(), 0);
    assert_eq!(s.tenant_stats("t").await.unwrap().users, 2, "the sweep leaves a new tenant's data alone");
    // A tenant made for data that is there keeps it.
    new_user(s, "loaded", "l1", json!({"userName": "ada"})).await;
    s.create_tenant(&tenant("loaded"), FoundData::Keep).await.unwrap();
    assert_eq!(s.tenant_stats("loaded").await.unwrap().users, 1);
    // Unless the slug is a deleted tenant's: what is there is its leftovers.
    s.create_tenant(&tenant("gone"), FoundData::Erase).await.unwrap();
    new_user(s, "gone", "g1", json!({"userName": "ada"})).await;
    assert!(s.delete_tenant("gone", NOW).await.unwrap());
    new_user(s, "gone", "g2", json!({"userName": "late"})).await;
    s.create_tenant(&tenant("gone"), FoundData::Keep).await.unwrap();
    assert_eq!(s.tenant_stats("gone").await.unwrap().users, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_on_sqlite() {
    let under = stores::sqlite().await;
    let Under::Sqlite(store, _) = &under else { unreachable!() };
    tokens(&**store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn tokens_on_postgres() {
    let under = stores::postgres("tokens").await;
    let Under::Postgres(store, _, _) = &under else { unreachable!() };
    tokens(&**store).await;
    under.finish().await;
}

/// Console sessions open the console only, and last no longer than their expiry, their
/// sign-out, or the admin token that opened them.
async fn console_sessions<S: TokenStore>(s: &S) {
    let admin_req = |name| TokenRequest { scope: Scope::Admin, tenant: "", name, secret: None, expires: None };
    let ops = create_token(s, admin_req("ops"), NOW).await.unwrap();
    let other = create_token(s, admin_req("other"), NOW).await.unwrap();
    fn session<'a>(admin: &'a str, expires: Option<&str>) -> TokenRequest<'a> {
        TokenRequest {
            scope: Scope::Console,
            tenant: admin,
            name: "ops",
            secret: None,
            expires: expires.map(String::from),
        }
    }
    let a = create_token(s, session(&ops.info.id, None), NOW).await.unwrap();
    let b = create_token(s, session(&ops.info.id, Some(LATER)), NOW).await.unwrap();
    let c = create_token(s, session(&other.info.id, None), NOW).await.unwrap();
    assert!(a.secret.starts_with("scimd_session_"));
    let found =
        verify_token(s, Scope::Console, &a.secret, NOW).await.unwrap().expect("a new session opens the console");
    assert_eq!(found.info.tenant, ops.info.id, "a session names the admin token that opened it");
    for scope in [Scope::Admin, Scope::Scim] {
        assert!(verify_token(s, scope, &a.secret, NOW).await.unwrap().is_none(), "a session opened {scope:?}");
    }
    assert!(verify_token(s, Scope::Console, &ops.secret, NOW).await.unwrap().is_none(), "an admin token is no session");
    let mut listed: Vec<String> =
        s.list_tokens(Scope::Console, &ops.info.id).await.unwrap().into_iter().map(|t| t.id).collect();
    listed.sort();
    let mut opened = vec![a.info.id.clone(), b.info.id.clone()];
    opened.sort();
    assert_eq!(listed, opened, "an admin token's sessions, and no other's");
    // Expiry, then sign-out.
    assert!(verify_token(s, Scope::Console, &b.secret, NOW).await.unwrap().is_some());
    assert!(verify_token(s, Scope::Console, &b.secret, LATER).await.unwrap().is_none(), "an expired session");
    assert!(s.revoke_token(Scope::Console, "", &c.info.id, NOW).await.unwrap());
    assert!(verify_token(s, Scope::Console, &c.secret, NOW).await.unwrap().is_none(), "a signed-out session");
    assert!(
        verify_token(s, Scope::Admin, &other.secret, NOW).await.unwrap().is_some(),
        "signing out revoked its admin token"
    );
    // Revoking the admin token ends the sessions it opened, at once.
    assert!(s.revoke_token(Scope::Admin, "", &ops.info.id, NOW).await.unwrap());
    assert!(verify_token(s, Scope::Console, &a.secret, NOW).await.unwrap().is_none(), "outlived its admin token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_sessions_on_sqlite() {
    let under = stores::sqlite().await;
    let Under::Sqlite(store, _) = &under else { unreachable!() };
    console_sessions(&**store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn console_sessions_on_postgres() {
    let under = stores::postgres("console_sessions").await;
    let Under::Postgres(store, _, _) = &under else { unreachable!() };
    console_sessions(&**store).await;
    under.finish().await;
}

/// During an initial sync the planner's statistics must follow the data: tables analysed
/// while empty make PostgreSQL walk a whole index for a lookup by id. scimd re-analyses
/// its tables once they have grown by half (whether or not autovacuum is on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn postgres_statistics_follow_an_initial_sync() {
    let under = stores::postgres("statistics_follow").await;
    let Under::Postgres(store, url, schema) = &under else { unreachable!() };
    for i in 0..1500 {
        new_user(&**store, "t", &format!("u{i}"), json!({"userName": format!("user{i}")})).await;
    }
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let mut rows = 0f32;
    for _ in 0..40 {
        rows = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = '{schema}' AND c.relname = 'scim_users'"
        )))
        .fetch_one(&pool)
        .await
        .unwrap();
        if rows >= 1000.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    pool.close().await;
    assert!(rows >= 1000.0, "scim_users still estimated at {rows} rows after 1,500 inserts");
    under.finish().await;
}

/// A client paging through a tenant one page after the other sees every resource that
/// stays exactly once, even when resources it has already seen are deleted between its
/// pages (an offset would then skip as many of the next page's), and sees resources created
/// meanwhile at the end. scimd's own tables (keyset paging behind index paging).
async fn paging_in_turn_skips_nothing_when_rows_go(env: &Env<'_>) {
    let s = env.store;
    let registry = Registry::standard();
    let users = registry.resource("User").unwrap();
    let mut ids = Vec::new();
    for i in 0..250 {
        ids.push(new_user(s, "t", &format!("p{i:03}"), json!({"userName": format!("pager{i:03}")})).await);
    }
    let page = |offset: u64| {
        let q = ListQuery::page(&users, offset, 100);
        async move { s.list("t", Kind::User, &q).await.unwrap() }
    };
    let mut seen: Vec<String> = Vec::new();
    let mut offset = 0;
    loop {
        let got = page(offset).await;
        if got.resources.is_empty() {
            break;
        }
        offset += got.resources.len() as u64;
        seen.extend(got.resources.into_iter().map(|r| r.id));
        // Between pages: two resources already seen go, one new one comes.
        for gone in seen.iter().rev().take(2) {
            s.delete("t", Kind::User, gone, del(DeletePolicy::Erase, None, LATER)).await.unwrap();
        }
        if offset < 250 {
            ids.push(new_user(s, "t", &format!("n{offset}"), json!({"userName": format!("newcomer{offset}")})).await);
        }
    }
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a resource was served twice");
    let missed: Vec<&String> = ids.iter().filter(|id| !unique.contains(id)).collect();
    assert!(missed.is_empty(), "resources never served: {missed:?}");
}

/// A page deep in a list (past the first 1,024 rows, where PostgreSQL jumps by its live
/// counts per stretch of keys instead of walking) holds exactly the rows at that position
/// of the list, with two tenants' rows interleaved and rows deleted (both ways) all along.
async fn deep_pages_are_the_pages_an_offset_gives(env: &Env<'_>) {
    let s = env.store;
    let registry = Registry::standard();
    let users = registry.resource("User").unwrap();
    // The mapped mode without a tenant column serves one tenant.
    let tenants: &[&str] = if env.tenants { &["t", "u"] } else { &["t"] };
    // The live users of each tenant, in the order they were created.
    let mut live: Vec<Vec<String>> = vec![Vec::new(); tenants.len()];
    for i in 0..2_700 {
        let t = i % tenants.len();
        live[t].push(new_user(s, tenants[t], &format!("d{i:04}"), json!({"userName": format!("deep{i:04}")})).await);
    }
    for (t, tenant) in tenants.iter().enumerate() {
        let mut kept = Vec::new();
        for (i, id) in std::mem::take(&mut live[t]).into_iter().enumerate() {
            if i % 13 == 5 {
                let policy = if i % 2 == 0 { DeletePolicy::Retire } else { DeletePolicy::Erase };
                s.delete(tenant, Kind::User, &id, del(policy, None, LATER)).await.unwrap();
            } else {
                kept.push(id);
            }
        }
        live[t] = kept;
    }
    // Out of order, so that no page follows the one served before it.
    for offset in [1_250u64, 1_024, 1_100, 1_023, 1_199, 1_300, 5_000, 2, 1_150] {
        for (t, tenant) in tenants.iter().enumerate() {
            let q = ListQuery::page(&users, offset, 30);
            let page = s.list(tenant, Kind::User, &q).await.unwrap();
            let want: Vec<&String> = live[t].iter().skip(offset as usize).take(30).collect();
            let got: Vec<&String> = page.resources.iter().map(|r| &r.id).collect();
            assert_eq!(got, want, "tenant {tenant}, offset {offset}");
            assert_eq!(page.total, live[t].len() as u64);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_paging_in_turn_skips_nothing_when_rows_go() {
    let under = stores::sqlite().await;
    paging_in_turn_skips_nothing_when_rows_go(&under.env()).await;
    under.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn postgres_paging_in_turn_skips_nothing_when_rows_go() {
    let under = stores::postgres("paging_in_turn").await;
    paging_in_turn_skips_nothing_when_rows_go(&under.env()).await;
    under.finish().await;
}

/// PostgreSQL keeps live counts as a row per write, folded in the background: totals stay
/// exact before, while and after the rows are folded, with writes going on meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn postgres_live_counts_stay_exact_while_folded() {
    let under = stores::postgres("live_counts_fold").await;
    let Under::Postgres(store, url, schema) = &under else { unreachable!() };
    let registry = Registry::standard();
    let users = registry.resource("User").unwrap();
    let total = || async {
        let q = ListQuery::page(&users, 0, 0);
        store.list("t", Kind::User, &q).await.unwrap().total
    };
    let mut ids = Vec::new();
    for i in 0..600 {
        ids.push(new_user(&**store, "t", &format!("u{i}"), json!({"userName": format!("user{i}")})).await);
    }
    for (i, id) in ids.iter().take(100).enumerate() {
        let policy = if i % 2 == 0 { DeletePolicy::Retire } else { DeletePolicy::Erase };
        store.delete("t", Kind::User, id, del(policy, None, LATER)).await.unwrap();
    }
    assert_eq!(total().await, 500);
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let rows = || {
        let pool = pool.clone();
        let sql = format!("SELECT COUNT(*) FROM {schema}.scim_live_counts WHERE tenant = 't' AND kind = 'User'");
        async move { sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql)).fetch_one(&pool).await.unwrap() }
    };
    assert!(rows().await >= 600, "a row per write before folding");
    // Writes and reads go on while the background folds the rows (every 5 s).
    let mut folded = false;
    for i in 600..800 {
        new_user(&**store, "t", &format!("u{i}"), json!({"userName": format!("user{i}")})).await;
        assert_eq!(total().await, (500 + i - 600 + 1) as u64);
        if rows().await < 100 {
            folded = true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(40)).await;
    }
    assert!(folded, "the rows were not folded within 8 seconds: {} rows", rows().await);
    assert_eq!(total().await, 700);
    pool.close().await;
    under.finish().await;
}

/// Concurrent writes on SQLite share commits (group commit): a refused write is undone
/// alone, every acknowledged one is there, and nothing else is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_concurrent_writes_keep_exactly_the_acknowledged_ones() {
    let under = stores::sqlite().await;
    let Under::Sqlite(store, _dir) = under else { unreachable!() };
    let mut tasks = Vec::new();
    for i in 0..120 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            // Every name twice (one of each pair must be refused); every tenth a group
            // with an unknown member (refused after its insert already ran).
            let (kind, attributes, members) = if i % 10 == 9 {
                (Kind::Group, json!({"displayName": format!("g{i}")}), vec![MemberRef { value: "nobody".into() }])
            } else {
                (Kind::User, json!({"userName": format!("name{}", i / 2)}), vec![])
            };
            let new = NewResource { id: format!("r{i}"), attributes: attrs(attributes), members, now: NOW.into() };
            (i, store.create("t", kind, new, &no_events).await)
        }));
    }
    let mut acknowledged = BTreeSet::new();
    for t in tasks {
        let (i, result) = t.await.unwrap();
        match result {
            Ok(_) => {
                acknowledged.insert(format!("r{i}"));
            }
            Err(StoreError::Uniqueness(_)) => assert!(i % 10 != 9),
            Err(StoreError::InvalidMember(_)) => assert_eq!(i % 10, 9),
            Err(e) => panic!("write {i} failed: {e}"),
        }
    }
    for i in 0..120 {
        let id = format!("r{i}");
        let kind = if i % 10 == 9 { Kind::Group } else { Kind::User };
        let found = store.get("t", kind, &id, false).await.unwrap().is_some();
        assert_eq!(found, acknowledged.contains(&id), "{id}");
    }
    // 108 users under 54 names (one refused per name unless its twin was a group).
    let names: BTreeSet<usize> = (0..120).filter(|i| i % 10 != 9).map(|i| i / 2).collect();
    assert_eq!(acknowledged.len(), names.len());
    let registry = Registry::standard();
    let schema = registry.resource("User").unwrap();
    let q = ListQuery::page(&schema, 0, 0);
    assert_eq!(store.list("t", Kind::User, &q).await.unwrap().total as usize, names.len());
    let schema = registry.resource("Group").unwrap();
    let q = ListQuery::page(&schema, 0, 0);
    assert_eq!(store.list("t", Kind::Group, &q).await.unwrap().total, 0);
}

/// A recorder that writes down what the store reported, so the log shows it.
fn report(w: &Written<'_>) -> Vec<NewEvent> {
    let version = |r: Option<&StoredResource>| r.map(|r| r.version);
    let mut added: Vec<&str> = w.members.added.iter().map(|(id, _)| id.as_str()).collect();
    added.sort();
    let mut removed: Vec<&str> = w.members.removed.iter().map(String::as_str).collect();
    removed.sort();
    vec![NewEvent {
        resource_type: w.kind.name().into(),
        resource_id: w.id.into(),
        payload: json!({
            "before": version(w.before), "after": version(w.after), "added": added, "removed": removed,
            "left": w.left_groups.iter().map(|(g, v)| json!([g, v])).collect::<Vec<_>>(),
            "title": w.after.and_then(|a| a.attributes.get("title").cloned()),
        }),
    }]
}

/// The transactional outbox: each committed write appends what it did, in the same
/// transaction; a refused write, or one that changes nothing, appends nothing; sequence
/// numbers grow; each tenant reads only its own.
async fn every_committed_write_records_its_events(env: &Env<'_>) {
    let (s, log) = (env.store, env.log);
    let events = async |tenant: &str, after: i64| log.events_after(tenant, after, 1000).await.unwrap();
    assert!(events("t", 0).await.is_empty());
    let create = |name: &str, members: Vec<MemberRef>, kind: Kind| {
        let key = if kind == Kind::User { "userName" } else { "displayName" };
        NewResource { id: format!("e-{name}"), attributes: attrs(json!({key: name})), members, now: NOW.into() }
    };
    let ann = s.create("t", Kind::User, create("ann", vec![], Kind::User), &report).await.unwrap().id;
    let bob = s.create("t", Kind::User, create("bob", vec![], Kind::User), &report).await.unwrap().id;
    // Refused: a duplicate name, an unknown member. Nothing recorded.
    assert!(s.create("t", Kind::User, create("ANN", vec![], Kind::User), &report).await.is_err());
    let bad = create("g-bad", refs(&["no-such-member"]), Kind::Group);
    assert!(s.create("t", Kind::Group, bad, &report).await.is_err());
    let g = s.create("t", Kind::Group, create("staff", refs(&[&ann]), Kind::Group), &report).await.unwrap().id;
    let log1 = events("t", 0).await;
    assert_eq!(log1.len(), 3, "{log1:?}");
    assert_eq!(
        log1[0].payload,
        json!({"before": null, "after": 1, "added": [], "removed": [], "left": [], "title": null})
    );
    assert_eq!((log1[0].resource_type.as_str(), log1[0].resource_id.as_str()), ("User", ann.as_str()));
    assert_eq!(log1[2].payload["added"], json!([ann]));
    assert!(log1.windows(2).all(|w| w[0].seq < w[1].seq), "sequence numbers grow");
    assert!(log1.iter().all(|e| e.tenant == "t" && e.time == NOW));
    assert_eq!(log.last_seq("t").await.unwrap(), log1[2].seq);

    let modify = |id: String, kind: Kind, change: Change, expected: Option<i64>| async move {
        let decide = move |current: &StoredResource| -> Result<Change, ScimError> {
            if expected.is_some_and(|v| v != current.version) {
                return Err(ScimError::precondition_failed("stale"));
            }
            Ok(change.clone())
        };
        let opts = Modify { load_relations: false, return_relations: false, now: LATER, record: &report };
        s.modify("t", kind, &id, opts, &decide).await
    };
    // A change records before and after; a refused one (412) and a no-op record nothing.
    let titled = Change { attributes: Some(attrs(json!({"userName": "ann", "title": "Dr"}))), members: vec![] };
    modify(ann.clone(), Kind::User, titled.clone(), Some(1)).await.unwrap();
    assert!(modify(ann.clone(), Kind::User, titled.clone(), Some(1)).await.is_err());
    let same = Change { attributes: None, members: vec![MemberChange::Add(refs(&[&ann]))] };
    modify(g.clone(), Kind::Group, same, None).await.unwrap();
    // Members: the net change, whatever form it took.
    let swap = Change {
        attributes: None,
        members: vec![MemberChange::Add(refs(&[&bob])), MemberChange::Remove(vec![ann.clone()])],
    };
    modify(g.clone(), Kind::Group, swap, None).await.unwrap();
    let back_and_forth = Change {
        attributes: None,
        members: vec![MemberChange::Add(refs(&[&ann])), MemberChange::Remove(vec![ann.clone()])],
    };
    modify(g.clone(), Kind::Group, back_and_forth, None).await.unwrap();
    let log2 = events("t", log1[2].seq).await;
    // (A member added and removed again in one write changed rows, and so the version: the
    // store reports the write, with no net change of members.)
    assert_eq!(log2.len(), 3, "{log2:?}");
    assert_eq!((log2[2].payload["added"].clone(), log2[2].payload["removed"].clone()), (json!([]), json!([])));
    assert_eq!(log2[0].payload["before"], 1);
    assert_eq!(log2[0].payload["after"], 2);
    assert_eq!(log2[0].payload["title"], "Dr");
    assert_eq!((log2[1].payload["added"].clone(), log2[1].payload["removed"].clone()), (json!([bob]), json!([ann])));
    assert!(log2.iter().all(|e| e.time == LATER));

    // A deleted user's event names the groups it left, with their new versions.
    let before_delete = version(s, Kind::Group, &g).await;
    let how = Deletion { policy: DeletePolicy::Retire, expected_version: None, now: LATER, record: &report };
    assert!(s.delete("t", Kind::User, &bob, how.clone()).await.unwrap());
    assert!(!s.delete("t", Kind::User, &bob, how).await.unwrap(), "nothing to delete, nothing recorded");
    let log3 = events("t", log2[2].seq).await;
    assert_eq!(log3.len(), 1, "{log3:?}");
    assert_eq!(log3[0].payload["after"], Value::Null);
    assert_eq!(log3[0].payload["left"], json!([[g, before_delete + 1]]));
    assert_eq!(version(s, Kind::Group, &g).await, before_delete + 1);

    // Another tenant's events are its own.
    if env.tenants {
        s.create("other", Kind::User, create("ann", vec![], Kind::User), &report).await.unwrap();
        assert_eq!(events("other", 0).await.len(), 1);
        assert_eq!(events("t", 0).await.len(), 7);
        assert!(events("other", 0).await[0].seq > log3[0].seq);
    }
}

/// Users added to groups while they are deleted, at once: whichever wins, no deleted user
/// stays a member, and the events tell each group's members as a read does (an add that
/// won is followed by the delete's leaving of that group, with the group's new version).
async fn deletes_racing_member_adds_leave_nothing_behind(env: &Env<'_>) {
    use std::collections::BTreeMap;
    let (s, log) = (env.store, env.log);
    let groups = [
        new_group(s, "race-g1", "race-g1", &[]).await.unwrap(),
        new_group(s, "race-g2", "race-g2", &[]).await.unwrap(),
    ];
    let mut by_events: BTreeMap<String, (BTreeSet<String>, i64)> = BTreeMap::new();
    for g in &groups {
        by_events.insert(g.clone(), (BTreeSet::new(), version(s, Kind::Group, g).await));
    }
    let (mut added, mut refused) = (0, 0);
    for round in 0..15 {
        let mut users = Vec::new();
        for i in 0..4 {
            let name = format!("race-{round}-{i}");
            users.push(new_user(s, "t", &name, json!({"userName": name})).await);
        }
        let add = |u: &str, g: &str| {
            let members = vec![MemberChange::Add(refs(&[u]))];
            let g = g.to_string();
            async move {
                let decide = move |_: &StoredResource| -> Result<Change, ScimError> {
                    Ok(Change { attributes: None, members: members.clone() })
                };
                let opts = Modify { load_relations: false, return_relations: false, now: LATER, record: &report };
                s.modify("t", Kind::Group, &g, opts, &decide).await.map(|_| ())
            }
        };
        // Each user's delete between its two adds, so that they meet on the connections.
        let each = users.iter().map(|u| async {
            let how = Deletion { policy: DeletePolicy::Retire, expected_version: None, now: LATER, record: &report };
            let (a1, deleted, a2) =
                tokio::join!(add(u, &groups[0]), s.delete("t", Kind::User, u, how), add(u, &groups[1]));
            assert!(deleted.unwrap(), "each user is deleted once");
            [a1, a2]
        });
        for a in futures_util::future::join_all(each).await.into_iter().flatten() {
            match a {
                Ok(()) => added += 1,
                Err(StoreError::InvalidMember(_)) => refused += 1,
                Err(e) => panic!("an add failed otherwise than by its member being gone: {e}"),
            }
        }
    }
    for g in &groups {
        assert_eq!(member_ids(s, g).await, Vec::<String>::new(), "no deleted user stays a member");
    }
    for e in log.events_after("t", 0, 10_000).await.unwrap() {
        let p = &e.payload;
        let texts =
            |v: &Value| v.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect::<Vec<_>>();
        if e.resource_type == "Group" {
            let (members, version) = by_events.entry(e.resource_id.clone()).or_default();
            members.extend(texts(&p["added"]));
            for gone in texts(&p["removed"]) {
                members.remove(&gone);
            }
            *version = p["after"].as_i64().unwrap();
        }
        for left in p["left"].as_array().unwrap() {
            let (members, version) = by_events.entry(left[0].as_str().unwrap().to_string()).or_default();
            members.remove(&e.resource_id);
            *version = left[1].as_i64().unwrap();
        }
    }
    eprintln!("adds acknowledged {added}, refused for a deleted user {refused}");
    assert!(added > 0, "some adds came before their user's delete");
    for g in &groups {
        let (members, last_version) = &by_events[g];
        assert_eq!(members, &BTreeSet::new(), "the events agree with the group");
        assert_eq!(*last_version, version(s, Kind::Group, g).await, "and name its last version");
    }
}
