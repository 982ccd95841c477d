//! The SQL compiler and the in-memory evaluator of `scimd-proto` must agree: random
//! filters over random users, answered by SQLite through the store and by the evaluator on
//! the same resources, give the same set of ids.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use scimd_core::store::{Kind, ListQuery, NewResource, Store};
use scimd_proto::filter::{CompareOp, Filter, Literal, check, matches};
use scimd_proto::resource::{Meta, render};
use scimd_proto::{AttrPath, Registry};
use scimd_sql::{SqliteSettings, SqliteStore};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const WORDS: &[&str] = &["a", "A", "ab", "Ab", "b", "é", "É", "éa", ""];

fn word() -> impl Strategy<Value = String> {
    prop::sample::select(WORDS).prop_map(str::to_string)
}

/// A random user's attributes (canonical form, as validation would produce).
fn user_attrs() -> impl Strategy<Value = Map<String, Value>> {
    (
        prop::option::of(word()),
        prop::option::of(any::<bool>()),
        prop::collection::vec(
            (
                prop::option::of(word()),
                prop::option::of(prop::sample::select(vec!["work", "home"])),
            ),
            0..3,
        ),
        prop::option::of(word()),
        prop::option::of(word()),
        prop::option::of(prop::sample::select(vec![1i64, 5, 10])),
    )
        .prop_map(|(title, active, emails, family, dept, _n)| {
            let mut m = Map::new();
            if let Some(t) = title {
                m.insert("title".into(), json!(t));
            }
            if let Some(a) = active {
                m.insert("active".into(), json!(a));
            }
            let list: Vec<Value> = emails
                .into_iter()
                .filter(|(v, t)| v.is_some() || t.is_some())
                .map(|(v, t)| {
                    let mut e = Map::new();
                    if let Some(v) = v {
                        e.insert("value".into(), json!(v));
                    }
                    if let Some(t) = t {
                        e.insert("type".into(), json!(t));
                    }
                    Value::Object(e)
                })
                .collect();
            if !list.is_empty() {
                m.insert("emails".into(), Value::Array(list));
            }
            if let Some(f) = family {
                m.insert("name".into(), json!({"familyName": f}));
            }
            if let Some(d) = dept {
                m.insert(ENT.into(), json!({"department": d}));
            }
            m
        })
}

fn path(s: &str) -> AttrPath {
    AttrPath::parse(s).unwrap()
}

fn leaf() -> BoxedStrategy<Filter> {
    let text_paths = prop::sample::select(vec![
        "userName",
        "title",
        "emails.value",
        "emails.type",
        "emails",
        "name.familyName",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        "externalId",
    ]);
    let all_paths = prop::sample::select(vec![
        "userName",
        "title",
        "emails",
        "emails.value",
        "emails.type",
        "name",
        "name.familyName",
        "active",
        ENT,
        "externalId",
    ]);
    let ops = prop::sample::select(CompareOp::ALL.to_vec());
    prop_oneof![
        4 => (text_paths, ops, word()).prop_map(|(p, op, w)| Filter::Compare(path(p), op, Literal::String(w))),
        1 => (prop::sample::select(vec![CompareOp::Eq, CompareOp::Ne]), any::<bool>()).prop_map(|(op, b)| Filter::Compare(path("active"), op, Literal::Bool(b))),
        1 => all_paths.clone().prop_filter("extension roots are not attributes", |p| *p != ENT).prop_map(|p| Filter::Present(path(p))),
        1 => (prop::sample::select(vec!["title", "name.familyName", "emails.value", "active"]), prop::sample::select(vec![CompareOp::Eq, CompareOp::Ne]))
            .prop_map(|(p, op)| Filter::Compare(path(p), op, Literal::Null)),
        2 => (prop::sample::select(vec!["type", "value"]), prop::sample::select(CompareOp::ALL.to_vec()), word(), prop::option::of(word())).prop_map(|(sub, op, w, v)| {
            let inner = Filter::Compare(AttrPath::simple(sub), op, Literal::String(w));
            let inner = match v {
                Some(v) => Filter::and(inner, Filter::Compare(AttrPath::simple("value"), CompareOp::Eq, Literal::String(v))),
                None => inner,
            };
            Filter::ValuePath(AttrPath::simple("emails"), Box::new(inner))
        }),
        1 => prop::sample::select(vec!["work", "home"]).prop_map(|t| Filter::ValuePath(AttrPath::simple("emails"), Box::new(Filter::Not(Box::new(Filter::Compare(AttrPath::simple("type"), CompareOp::Eq, Literal::String(t.into()))))))),
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

#[test]
fn sql_and_evaluator_agree() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("a.db").display());
    let store = rt
        .block_on(SqliteStore::open(&url, &SqliteSettings::default()))
        .unwrap();
    let registry = Registry::standard();
    let schema = registry.resource("User").unwrap();

    // A fixed population of random users, each rendered as the evaluator sees it.
    let mut runner = TestRunner::new(Config {
        cases: 1,
        ..Config::default()
    });
    let mut resources = Vec::new();
    for i in 0..120 {
        let mut attrs = user_attrs().new_tree(&mut runner).unwrap().current();
        // userName is required and unique: vary its case and script deliberately.
        let name = format!("{}{i}", WORDS[i % WORDS.len()]);
        attrs.insert("userName".into(), json!(name));
        if i % 3 == 0 {
            attrs.insert("externalId".into(), json!(WORDS[i % WORDS.len()]));
        }
        let id = format!("id-{i:03}");
        let now = format!("2026-01-01T00:00:{:02}.000000Z", i % 60);
        let stored = rt
            .block_on(store.create(
                "t",
                Kind::User,
                NewResource {
                    id: id.clone(),
                    attributes: attrs,
                    members: vec![],
                    now,
                },
            ))
            .unwrap();
        let meta = Meta {
            created: stored.created.clone(),
            last_modified: stored.last_modified.clone(),
            location: String::new(),
            version: 1,
        };
        resources.push((id.clone(), render(&schema, &id, stored.attributes, &meta)));
    }

    let mut runner = TestRunner::new(Config {
        cases: 1500,
        ..Config::default()
    });
    runner
        .run(&any_filter(), |f| {
            if check(&f, &schema).is_err() {
                return Ok(());
            }
            let expected: BTreeSet<String> = resources
                .iter()
                .filter(|(_, r)| matches(&f, &schema, r))
                .map(|(id, _)| id.clone())
                .collect();
            let q = ListQuery {
                schema: &schema,
                filter: Some(&f),
                sort: None,
                offset: 0,
                count: 1000,
                with_relations: false,
            };
            let page = rt
                .block_on(store.list("t", Kind::User, &q))
                .map_err(|e| TestCaseError::fail(format!("{f}: {e}")))?;
            let got: BTreeSet<String> = page.resources.into_iter().map(|r| r.id).collect();
            prop_assert_eq!(page.total as usize, got.len());
            prop_assert_eq!(got, expected, "filter: {}", f);
            Ok(())
        })
        .unwrap();
}

#[test]
fn other_tenants_are_invisible() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = rt
        .block_on(SqliteStore::open(
            "sqlite::memory:",
            &SqliteSettings::default(),
        ))
        .unwrap();
    let registry = Registry::standard();
    let schema = registry.resource("User").unwrap();
    for tenant in ["a", "b"] {
        let attrs = json!({"userName": "same"}).as_object().unwrap().clone();
        rt.block_on(store.create(
            tenant,
            Kind::User,
            NewResource {
                id: format!("{tenant}-1"),
                attributes: attrs,
                members: vec![],
                now: "2026-01-01T00:00:00.000000Z".into(),
            },
        ))
        .unwrap();
    }
    let q = ListQuery {
        schema: &schema,
        filter: None,
        sort: None,
        offset: 0,
        count: 10,
        with_relations: true,
    };
    let page = rt.block_on(store.list("a", Kind::User, &q)).unwrap();
    assert_eq!(
        page.resources
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>(),
        vec!["a-1"]
    );
    assert!(
        rt.block_on(store.get("a", Kind::User, "b-1", true))
            .unwrap()
            .is_none()
    );
}
