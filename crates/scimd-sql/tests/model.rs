//! Model-based test of the write path: random sequences of creates, PUTs, PATCHes (of
//! attributes and of members, in the dialects identity providers send), deletes and
//! re-creates of users and groups, in two tenants and under every delete policy, run
//! through the engine on every store. After every step, what each tenant reads (every
//! resource, its version, every membership, every user's `groups`) must be what an
//! in-memory model says, and every refusal must be the one the model expects.
//!
//! A failing case prints its seed, policy and steps.

mod stores;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use scimd_core::{Ctx, DeletePolicy, Engine, EngineError, Kind, Query, Returning, Settings};
use scimd_proto::Registry;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use stores::Under;

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// Names that collide without regard to case.
const NAMES: &[&str] = &["ann", "Ann", "bob", "BOB", "cy", "dee"];
const TITLES: &[&str] = &["Dr", "dr", "Eng"];
const TENANTS: [&str; 2] = ["t", "other"];

// ---------------------------------------------------------------- operations

/// A member reference as a step names it; resolved against the model when run.
#[derive(Debug, Clone)]
enum Ref {
    User(u8),
    Group(u8),
    OtherTenantUser(u8),
    Unknown,
}

#[derive(Debug, Clone)]
enum UserPatch {
    Title(u8),
    TitlePathless(u8),
    /// Entra ID: `"op": "Replace"`, `"value": "False"`.
    ActiveString(bool),
    RemoveTitle,
    /// Entra ID: a path-less dotted key.
    GivenNameDotted(u8),
    UserName(u8),
    TitleNull,
}

#[derive(Debug, Clone)]
enum GroupPatch {
    /// `add` (or `Add`) with a value array.
    Add(Vec<Ref>, bool),
    /// `members[value eq "…"]`.
    RemoveByFilter(Ref),
    /// Entra ID: `"op": "Remove", "path": "members"` with the values to remove.
    RemoveValues(Vec<Ref>),
    /// Okta's full push.
    Replace(Vec<Ref>),
    RemoveAll,
    /// Path-less `add` of members.
    AddPathless(Vec<Ref>),
    Rename(u8),
}

#[derive(Debug, Clone)]
enum Op {
    CreateUser { t: usize, name: u8 },
    CreateGroup { t: usize, name: u8, members: Vec<Ref> },
    PutUser { t: usize, who: u8, name: u8, title: Option<u8>, active: Option<bool> },
    PatchUser { t: usize, who: u8, how: UserPatch },
    PatchGroup { t: usize, who: u8, how: GroupPatch },
    Delete { t: usize, group: bool, who: u8 },
}

fn refs() -> impl Strategy<Value = Vec<Ref>> {
    prop::collection::vec(
        prop_oneof![
            6 => any::<u8>().prop_map(Ref::User),
            1 => any::<u8>().prop_map(Ref::Group),
            1 => any::<u8>().prop_map(Ref::OtherTenantUser),
            1 => Just(Ref::Unknown),
        ],
        0..4,
    )
}

fn one_ref() -> impl Strategy<Value = Ref> {
    prop_oneof![4 => any::<u8>().prop_map(Ref::User), 1 => any::<u8>().prop_map(Ref::Group), 1 => Just(Ref::Unknown)]
}

fn op() -> impl Strategy<Value = Op> {
    let t = prop_oneof![4 => Just(0usize), 1 => Just(1usize)];
    let name = 0..NAMES.len() as u8;
    let title = 0..TITLES.len() as u8;
    let user_patch = prop_oneof![
        title.clone().prop_map(UserPatch::Title),
        title.clone().prop_map(UserPatch::TitlePathless),
        any::<bool>().prop_map(UserPatch::ActiveString),
        Just(UserPatch::RemoveTitle),
        title.clone().prop_map(UserPatch::GivenNameDotted),
        name.clone().prop_map(UserPatch::UserName),
        Just(UserPatch::TitleNull),
    ];
    let group_patch = prop_oneof![
        3 => (refs(), any::<bool>()).prop_map(|(r, capital)| GroupPatch::Add(r, capital)),
        2 => one_ref().prop_map(GroupPatch::RemoveByFilter),
        1 => refs().prop_map(GroupPatch::RemoveValues),
        1 => refs().prop_map(GroupPatch::Replace),
        1 => Just(GroupPatch::RemoveAll),
        1 => refs().prop_map(GroupPatch::AddPathless),
        1 => name.clone().prop_map(GroupPatch::Rename),
    ];
    prop_oneof![
        4 => (t.clone(), name.clone()).prop_map(|(t, name)| Op::CreateUser { t, name }),
        2 => (t.clone(), name.clone(), refs()).prop_map(|(t, name, members)| Op::CreateGroup { t, name, members }),
        1 => (t.clone(), any::<u8>(), name, prop::option::of(title), prop::option::of(any::<bool>()))
            .prop_map(|(t, who, name, title, active)| Op::PutUser { t, who, name, title, active }),
        3 => (t.clone(), any::<u8>(), user_patch).prop_map(|(t, who, how)| Op::PatchUser { t, who, how }),
        4 => (t.clone(), any::<u8>(), group_patch).prop_map(|(t, who, how)| Op::PatchGroup { t, who, how }),
        2 => (t, any::<bool>(), any::<u8>()).prop_map(|(t, group, who)| Op::Delete { t, group, who }),
    ]
}

// ---------------------------------------------------------------- the model

/// What one resource must read as.
#[derive(Debug, Clone)]
struct Res {
    id: String,
    alive: bool,
    /// Retired (not erased): the mapped mode brings such a row back on a create by name.
    retired: bool,
    version: i64,
    /// Users: userName, title, active, name. Groups: displayName.
    attrs: Map<String, Value>,
    /// Groups: member ids, in the order added.
    members: Vec<String>,
}

#[derive(Debug, Default)]
struct Tenant {
    users: Vec<Res>,
    groups: Vec<Res>,
}

/// How the store under test behaves where stores may differ.
#[derive(Debug, Clone, Copy)]
struct Traits {
    mapped: bool,
    /// Serves both tenants (the mapped mode without a tenant column serves one).
    tenants: bool,
}

struct Model {
    tenants: [Tenant; 2],
    policy: DeletePolicy,
    traits: Traits,
}

fn fold(s: &str) -> String {
    s.to_lowercase()
}

fn pick(list: &[Res], who: u8) -> Option<usize> {
    (!list.is_empty()).then(|| who as usize % list.len())
}

/// What the engine must answer.
#[derive(Debug, PartialEq)]
enum Expect {
    Ok,
    Status(u16),
}

impl Model {
    fn served(&self, t: usize) -> bool {
        t == 0 || self.traits.tenants
    }

    /// The id a reference resolves to, and whether it names a member that may be added.
    fn resolve(&self, t: usize, group: Option<usize>, r: &Ref) -> (String, bool) {
        let tenant = &self.tenants[t];
        match r {
            Ref::User(i) => match pick(&tenant.users, *i) {
                Some(i) => (tenant.users[i].id.clone(), tenant.users[i].alive),
                None => ("no-user".into(), false),
            },
            // The mapped mode's ids are per-table keys: a group's would name a user there.
            Ref::Group(i) if !self.traits.mapped => match pick(&tenant.groups, *i) {
                Some(i) => (tenant.groups[i].id.clone(), tenant.groups[i].alive && Some(i) != group),
                None => ("no-group".into(), false),
            },
            Ref::Group(_) => ("not-a-key".into(), false),
            Ref::OtherTenantUser(i) => {
                let other = &self.tenants[1 - t];
                match pick(&other.users, *i) {
                    Some(i) => (other.users[i].id.clone(), false),
                    None => ("no-user".into(), false),
                }
            }
            Ref::Unknown => ("0199-unknown".into(), false),
        }
    }

    /// Resolves member references: their ids in order without repeats, or None if one
    /// cannot be a member (the whole request is then refused).
    fn members(&self, t: usize, group: Option<usize>, refs: &[Ref]) -> Option<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        for r in refs {
            let (id, ok) = self.resolve(t, group, r);
            if !ok {
                return None;
            }
            if !out.contains(&id) {
                out.push(id);
            }
        }
        Some(out)
    }

    fn name_taken(list: &[Res], attr: &str, name: &str, except: Option<usize>) -> bool {
        list.iter().enumerate().any(|(i, r)| {
            r.alive && Some(i) != except && r.attrs.get(attr).and_then(Value::as_str).map(fold) == Some(fold(name))
        })
    }

    /// Whether renaming to `name` is refused. In the mapped mode a retired row keeps its
    /// value in the application's own unique column (case-sensitive there).
    fn rename_refused(&self, list: &[Res], attr: &str, name: &str, except: usize) -> bool {
        Self::name_taken(list, attr, name, Some(except))
            || (self.traits.mapped
                && list
                    .iter()
                    .enumerate()
                    .any(|(i, r)| r.retired && i != except && r.attrs.get(attr).and_then(Value::as_str) == Some(name)))
    }

    /// A new resource: a gone one with the same id (the mapped mode's SQLite may reuse an
    /// erased row's key) is no longer a separate resource.
    fn add(list: &mut Vec<Res>, res: Res) {
        list.retain(|r| r.alive || r.id != res.id);
        list.push(res);
    }

    /// The retired resource of this name that the mapped mode brings back: the one spelled
    /// alike, else the one with the lowest key.
    fn revived(&self, list: &[Res], attr: &str, name: &str) -> Option<usize> {
        if !self.traits.mapped {
            return None;
        }
        let named = |r: &Res| r.attrs.get(attr).and_then(Value::as_str).map(str::to_string);
        (0..list.len())
            .filter(|i| list[*i].retired && named(&list[*i]).map(|n| fold(&n)) == Some(fold(name)))
            .min_by_key(|i| (named(&list[*i]).as_deref() != Some(name), list[*i].id.parse::<i64>().unwrap_or(i64::MAX)))
    }

    /// Bumps the groups holding `id` (and drops it from them).
    fn leave_groups(&mut self, t: usize, id: &str) {
        for g in self.tenants[t].groups.iter_mut().filter(|g| g.alive) {
            if let Some(at) = g.members.iter().position(|m| m == id) {
                g.members.remove(at);
                g.version += 1;
            }
        }
    }
}

// ---------------------------------------------------------------- running a step

struct Run<'a> {
    engine: &'a Engine,
    model: Model,
}

fn ctx(t: usize) -> Ctx<'static> {
    Ctx::new(TENANTS[t], "https://scim.test/v2")
}

fn status_of(r: &Result<scimd_core::Rendered, EngineError>) -> Expect {
    match r {
        Ok(_) => Expect::Ok,
        Err(EngineError::Scim(e)) => Expect::Status(e.status),
        Err(e) => panic!("the engine failed: {e}"),
    }
}

fn body(r: scimd_core::Rendered) -> (String, i64) {
    let id = r.body.json().expect("small answers are whole")["id"].as_str().unwrap().to_string();
    (id, r.version)
}

fn patch_body(ops: Value) -> Value {
    json!({"schemas": [PATCH], "Operations": ops})
}

fn values(ids: &[String]) -> Value {
    Value::Array(ids.iter().map(|id| json!({"value": id})).collect())
}

/// The ids of references as they are sent, whether the model accepts them or not.
fn raw_ids(m: &Model, t: usize, group: Option<usize>, refs: &[Ref]) -> Vec<String> {
    refs.iter().map(|r| m.resolve(t, group, r).0).collect()
}

impl Run<'_> {
    async fn step(&mut self, op: &Op) {
        match op {
            Op::CreateUser { t, name } => {
                let t = *t;
                let name = NAMES[*name as usize];
                let m = &self.model;
                let expect = if !m.served(t) {
                    Expect::Status(403)
                } else if Model::name_taken(&m.tenants[t].users, "userName", name, None) {
                    Expect::Status(409)
                } else {
                    Expect::Ok
                };
                let r = self
                    .engine
                    .create(&ctx(t), Kind::User, &json!({"schemas": [USER], "userName": name}), Returning::default())
                    .await;
                assert_eq!(status_of(&r), expect, "create user {name}");
                if let Ok(r) = r {
                    let (id, version) = body(r);
                    let attrs = Map::from_iter([("userName".to_string(), json!(name))]);
                    match self.model.revived(&self.model.tenants[t].users, "userName", name) {
                        Some(i) => {
                            let old = &mut self.model.tenants[t].users[i];
                            assert_eq!((id.as_str(), version), (old.id.as_str(), old.version + 1), "a revived row");
                            *old = Res { id, alive: true, retired: false, version, attrs, members: vec![] };
                        }
                        None => {
                            assert_eq!(version, 1);
                            let res = Res { id, alive: true, retired: false, version, attrs, members: vec![] };
                            Model::add(&mut self.model.tenants[t].users, res);
                        }
                    }
                }
            }
            Op::CreateGroup { t, name, members } => {
                let t = *t;
                let name = NAMES[*name as usize];
                let m = &self.model;
                let sent = raw_ids(m, t, None, members);
                let resolved = m.members(t, None, members);
                let expect = if !m.served(t) {
                    Expect::Status(403)
                } else if Model::name_taken(&m.tenants[t].groups, "displayName", name, None) {
                    Expect::Status(409)
                } else if resolved.is_none() {
                    Expect::Status(400)
                } else {
                    Expect::Ok
                };
                let body_json = json!({"schemas": [GROUP], "displayName": name, "members": values(&sent)});
                let r = self.engine.create(&ctx(t), Kind::Group, &body_json, Returning::default()).await;
                assert_eq!(status_of(&r), expect, "create group {name} with {sent:?}");
                if let Ok(r) = r {
                    let (id, version) = body(r);
                    let attrs = Map::from_iter([("displayName".to_string(), json!(name))]);
                    let members = resolved.unwrap();
                    match self.model.revived(&self.model.tenants[t].groups, "displayName", name) {
                        Some(i) => {
                            let old = &mut self.model.tenants[t].groups[i];
                            assert_eq!(id, old.id, "a revived row");
                            *old = Res { id, alive: true, retired: false, version, attrs, members };
                        }
                        None => {
                            assert_eq!(version, 1);
                            let res = Res { id, alive: true, retired: false, version, attrs, members };
                            Model::add(&mut self.model.tenants[t].groups, res);
                        }
                    }
                }
            }
            Op::PutUser { t, who, name, title, active } => {
                let t = *t;
                let Some(i) = pick(&self.model.tenants[t].users, *who) else { return };
                let name = NAMES[*name as usize];
                let mut attrs = Map::from_iter([("userName".to_string(), json!(name))]);
                if let Some(title) = title {
                    attrs.insert("title".into(), json!(TITLES[*title as usize]));
                }
                if let Some(a) = active {
                    attrs.insert("active".into(), json!(a));
                }
                let u = &self.model.tenants[t].users[i];
                let id = u.id.clone();
                let expect = if !u.alive {
                    Expect::Status(404)
                } else if self.model.rename_refused(&self.model.tenants[t].users, "userName", name, i) {
                    Expect::Status(409)
                } else {
                    Expect::Ok
                };
                let mut sent = attrs.clone();
                sent.insert("schemas".into(), json!([USER]));
                let r = self
                    .engine
                    .replace(&ctx(t), Kind::User, &id, &Value::Object(sent), None, Returning::default())
                    .await;
                assert_eq!(status_of(&r), expect, "PUT {id} {attrs:?}");
                if r.is_ok() {
                    let u = &mut self.model.tenants[t].users[i];
                    if u.attrs != attrs {
                        u.attrs = attrs;
                        u.version += 1;
                    }
                }
            }
            Op::PatchUser { t, who, how } => self.patch_user(*t, *who, how).await,
            Op::PatchGroup { t, who, how } => self.patch_group(*t, *who, how).await,
            Op::Delete { t, group, who } => self.delete(*t, *group, *who).await,
        }
    }

    async fn patch_user(&mut self, t: usize, who: u8, how: &UserPatch) {
        let Some(i) = pick(&self.model.tenants[t].users, who) else { return };
        let u = self.model.tenants[t].users[i].clone();
        let mut next = u.attrs.clone();
        let mut expect = if u.alive { Expect::Ok } else { Expect::Status(404) };
        let ops = match how {
            UserPatch::Title(x) => {
                next.insert("title".into(), json!(TITLES[*x as usize]));
                json!([{"op": "replace", "path": "title", "value": TITLES[*x as usize]}])
            }
            UserPatch::TitlePathless(x) => {
                next.insert("title".into(), json!(TITLES[*x as usize]));
                json!([{"op": "replace", "value": {"title": TITLES[*x as usize]}}])
            }
            UserPatch::ActiveString(b) => {
                next.insert("active".into(), json!(b));
                json!([{"op": "Replace", "path": "active", "value": if *b { "True" } else { "False" }}])
            }
            UserPatch::RemoveTitle => {
                next.remove("title");
                json!([{"op": "remove", "path": "title"}])
            }
            UserPatch::TitleNull => {
                next.remove("title");
                json!([{"op": "replace", "path": "title", "value": null}])
            }
            UserPatch::GivenNameDotted(x) => {
                let name = next.entry("name").or_insert_with(|| json!({}));
                name["givenName"] = json!(TITLES[*x as usize]);
                json!([{"op": "add", "value": {"name.givenName": TITLES[*x as usize]}}])
            }
            UserPatch::UserName(n) => {
                let name = NAMES[*n as usize];
                if u.alive && self.model.rename_refused(&self.model.tenants[t].users, "userName", name, i) {
                    expect = Expect::Status(409);
                }
                next.insert("userName".into(), json!(name));
                json!([{"op": "replace", "path": "userName", "value": name}])
            }
        };
        let r =
            self.engine.patch(&ctx(t), Kind::User, &u.id, &patch_body(ops.clone()), None, Returning::default()).await;
        assert_eq!(status_of(&r), expect, "PATCH user {} {ops}", u.id);
        if r.is_ok() && next != u.attrs {
            let u = &mut self.model.tenants[t].users[i];
            u.attrs = next;
            u.version += 1;
        }
    }

    async fn patch_group(&mut self, t: usize, who: u8, how: &GroupPatch) {
        let Some(i) = pick(&self.model.tenants[t].groups, who) else { return };
        let m = &self.model;
        let g = m.tenants[t].groups[i].clone();
        let mut next = g.members.clone();
        let mut attrs = g.attrs.clone();
        let mut refused = false;
        let ops = match how {
            GroupPatch::Add(refs, _) | GroupPatch::AddPathless(refs) => {
                let sent = raw_ids(m, t, Some(i), refs);
                match m.members(t, Some(i), refs) {
                    Some(ids) => next.extend(ids.into_iter().filter(|id| !g.members.contains(id))),
                    None => refused = true,
                }
                match how {
                    GroupPatch::Add(_, capital) => {
                        json!([{"op": if *capital { "Add" } else { "add" }, "path": "members", "value": values(&sent)}])
                    }
                    _ => json!([{"op": "add", "value": {"members": values(&sent)}}]),
                }
            }
            GroupPatch::RemoveByFilter(r) => {
                let (id, _) = m.resolve(t, Some(i), r);
                next.retain(|x| *x != id);
                json!([{"op": "remove", "path": format!("members[value eq \"{id}\"]")}])
            }
            GroupPatch::RemoveValues(refs) => {
                let sent = raw_ids(m, t, Some(i), refs);
                next.retain(|x| !sent.contains(x));
                json!([{"op": "Remove", "path": "members", "value": values(&sent)}])
            }
            GroupPatch::Replace(refs) => {
                let sent = raw_ids(m, t, Some(i), refs);
                match m.members(t, Some(i), refs) {
                    // Members that stay keep their place; new ones follow in the order given.
                    Some(ids) => {
                        next.retain(|x| ids.contains(x));
                        next.extend(ids.into_iter().filter(|id| !g.members.contains(id)));
                    }
                    None => refused = true,
                }
                json!([{"op": "replace", "path": "members", "value": values(&sent)}])
            }
            GroupPatch::RemoveAll => {
                next.clear();
                json!([{"op": "remove", "path": "members"}])
            }
            GroupPatch::Rename(n) => {
                let name = NAMES[*n as usize];
                attrs.insert("displayName".into(), json!(name));
                json!([{"op": "replace", "path": "displayName", "value": name}])
            }
        };
        let expect = if !g.alive {
            Expect::Status(404)
        } else if refused {
            Expect::Status(400)
        } else if attrs != g.attrs
            && m.rename_refused(&m.tenants[t].groups, "displayName", attrs["displayName"].as_str().unwrap(), i)
        {
            Expect::Status(409)
        } else {
            Expect::Ok
        };
        let r =
            self.engine.patch(&ctx(t), Kind::Group, &g.id, &patch_body(ops.clone()), None, Returning::default()).await;
        assert_eq!(status_of(&r), expect, "PATCH group {} {ops}", g.id);
        if r.is_ok() {
            let g = &mut self.model.tenants[t].groups[i];
            if next != g.members || attrs != g.attrs {
                g.version += 1;
            }
            g.members = next;
            g.attrs = attrs;
        }
    }

    async fn delete(&mut self, t: usize, group: bool, who: u8) {
        let m = &self.model;
        let list = if group { &m.tenants[t].groups } else { &m.tenants[t].users };
        let Some(i) = pick(list, who) else { return };
        let res = list[i].clone();
        let kind = if group { Kind::Group } else { Kind::User };
        let r = self.engine.delete(&ctx(t), kind, &res.id, None).await;
        let got = match &r {
            Ok(()) => Expect::Ok,
            Err(EngineError::Scim(e)) => Expect::Status(e.status),
            Err(e) => panic!("the engine failed: {e}"),
        };
        assert_eq!(got, if res.alive { Expect::Ok } else { Expect::Status(404) }, "DELETE {kind:?} {}", res.id);
        if !res.alive {
            return;
        }
        match (self.model.policy, group) {
            (DeletePolicy::Deactivate, false) => {
                let u = &mut self.model.tenants[t].users[i];
                if u.attrs.get("active") != Some(&json!(false)) {
                    u.attrs.insert("active".into(), json!(false));
                    u.version += 1;
                }
            }
            (policy, _) => {
                let retired = policy != DeletePolicy::Erase;
                let list = if group { &mut self.model.tenants[t].groups } else { &mut self.model.tenants[t].users };
                list[i].alive = false;
                list[i].retired = retired;
                list[i].version += 1;
                list[i].members.clear();
                // (In the mapped mode groups are never members: a group's key may equal a user's.)
                if !group || !self.model.traits.mapped {
                    self.model.leave_groups(t, &res.id);
                }
            }
        }
    }

    /// What each tenant reads must be the model.
    async fn check(&self, step: usize) {
        for t in 0..2 {
            let tenant = &self.model.tenants[t];
            let mapped = self.model.traits.mapped;
            // Users.
            let users = self.list(t, Kind::User).await;
            let want: Vec<&Res> = tenant.users.iter().filter(|u| u.alive).collect();
            assert_eq!(ids_of(&users), sorted(want.iter().map(|u| u.id.clone())), "step {step}: users of {t}");
            for u in &want {
                let got = users.iter().find(|r| r["id"] == json!(u.id)).unwrap();
                assert_eq!(version_of(got), u.version, "step {step}: version of user {}", u.id);
                for key in ["userName", "title", "active", "name"] {
                    assert_eq!(got.get(key), u.attrs.get(key), "step {step}: {key} of user {}", u.id);
                }
                let groups: BTreeSet<String> = tenant
                    .groups
                    .iter()
                    .filter(|g| g.alive && g.members.contains(&u.id))
                    .map(|g| g.id.clone())
                    .collect();
                let read: BTreeSet<String> = got
                    .get("groups")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().map(|g| g["value"].as_str().unwrap().to_string()).collect())
                    .unwrap_or_default();
                assert_eq!(read, groups, "step {step}: groups of user {}", u.id);
            }
            // Groups.
            let groups = self.list(t, Kind::Group).await;
            let want: Vec<&Res> = tenant.groups.iter().filter(|g| g.alive).collect();
            assert_eq!(ids_of(&groups), sorted(want.iter().map(|g| g.id.clone())), "step {step}: groups of {t}");
            for g in &want {
                let got = groups.iter().find(|r| r["id"] == json!(g.id)).unwrap();
                assert_eq!(version_of(got), g.version, "step {step}: version of group {}", g.id);
                assert_eq!(got.get("displayName"), g.attrs.get("displayName"), "step {step}");
                let mut read: Vec<String> = got
                    .get("members")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().map(|m| m["value"].as_str().unwrap().to_string()).collect())
                    .unwrap_or_default();
                let mut expected = g.members.clone();
                if mapped {
                    // The application's membership table keeps no order: compare sets.
                    read.sort();
                    expected.sort();
                }
                assert_eq!(read, expected, "step {step}: members of group {}", g.id);
            }
            // Whatever is gone answers 404.
            for (kind, list) in [(Kind::User, &tenant.users), (Kind::Group, &tenant.groups)] {
                for r in list.iter().filter(|r| !r.alive) {
                    let got = self.engine.get(&ctx(t), kind, &r.id, Returning::default()).await;
                    assert!(
                        matches!(&got, Err(EngineError::Scim(e)) if e.status == 404),
                        "step {step}: {kind:?} {} is gone",
                        r.id
                    );
                }
            }
        }
    }

    async fn list(&self, t: usize, kind: Kind) -> Vec<Value> {
        let q = Query { count: Some("1000".into()), ..Query::default() };
        match self.engine.list(&ctx(t), Some(kind), &q).await {
            Ok(body) => body.json().unwrap()["Resources"].as_array().cloned().unwrap_or_default(),
            // The mapped mode serves one tenant: another has nothing.
            Err(EngineError::Scim(e)) if e.status == 403 => vec![],
            Err(e) => panic!("list: {e}"),
        }
    }
}

fn ids_of(list: &[Value]) -> Vec<String> {
    sorted(list.iter().map(|r| r["id"].as_str().unwrap().to_string()))
}

fn sorted(ids: impl Iterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = ids.collect();
    v.sort();
    v
}

fn version_of(r: &Value) -> i64 {
    scimd_proto::resource::parse_etag(r["meta"]["version"].as_str().unwrap()).unwrap()
}

// ---------------------------------------------------------------- the cases

/// Cases per store (each a fresh database; `SCIMD_MODEL_CASES` asks for more), and the
/// steps of each. With the delete bug this test was written for put back, SQLite fails by
/// case 3 and PostgreSQL (whose sequences skip numbers) by case 36.
const CASES: u32 = 64;
const STEPS: usize = 40;

async fn run_cases(make: impl AsyncFn(u32) -> Under) {
    let policies = [DeletePolicy::Retire, DeletePolicy::Erase, DeletePolicy::Deactivate];
    // `SCIMD_MODEL_CASE=N` runs that case alone, printing each step and the model after it.
    let only: Option<u32> = std::env::var("SCIMD_MODEL_CASE").ok().and_then(|c| c.parse().ok());
    let cases = std::env::var("SCIMD_MODEL_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(CASES);
    for case in 0..cases {
        if only.is_some_and(|o| o != case) {
            continue;
        }
        let under = make(case).await;
        let env = under.env();
        let traits = Traits { mapped: env.mapped, tenants: env.tenants };
        let policy = policies[case as usize % policies.len()];
        let settings = Settings { delete_policy: policy, ..Settings::default() };
        let engine = Engine::new(Arc::new(Registry::standard()), under.shared(), settings);
        let seed = [case as u8; 32];
        let mut runner = TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
        let steps: Vec<Op> = (0..STEPS).map(|_| op().new_tree(&mut runner).unwrap().current()).collect();
        let mut run = Run { engine: &engine, model: Model { tenants: Default::default(), policy, traits } };
        for (n, step) in steps.iter().enumerate() {
            let done = std::panic::AssertUnwindSafe(async {
                run.step(step).await;
                if only.is_some() {
                    eprintln!("{n:2}: {step:?}\n    {:?}", run.model.tenants[0]);
                }
                run.check(n).await;
            });
            if let Err(panic) = futures_util::FutureExt::catch_unwind(done).await {
                eprintln!("case {case} (policy {policy:?}) failed at step {n}; its steps:");
                for (i, s) in steps.iter().enumerate().take(n + 1) {
                    eprintln!("  {i:2}: {s:?}");
                }
                std::panic::resume_unwind(panic);
            }
        }
        drop(engine);
        under.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_path_follows_the_model_on_sqlite() {
    run_cases(async |_| stores::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn the_write_path_follows_the_model_on_postgres() {
    run_cases(async |case| stores::postgres(&format!("model{case}")).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_path_follows_the_model_on_the_mapped_mode_on_sqlite() {
    run_cases(async |_| stores::mapped_sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn the_write_path_follows_the_model_on_the_mapped_mode_on_postgres() {
    run_cases(async |case| stores::mapped_postgres(&format!("model{case}")).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_path_follows_the_model_on_the_mapped_mode_with_tenants_on_sqlite() {
    run_cases(async |_| stores::mapped_tenants_sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn the_write_path_follows_the_model_on_the_mapped_mode_with_tenants_on_postgres() {
    run_cases(async |case| stores::mapped_tenants_postgres(&format!("model{case}")).await).await;
}
