//! Tenant isolation as a property: random sequences of requests by two tenants (creates,
//! PATCHes and PUTs naming the other tenant's ids as members, filters and searches that
//! would match the other tenant's data, pages, sorts, reads and deletes of its ids), over
//! both URLs a tenant has, never show one tenant anything of the other's.
//!
//! Every resource of a tenant carries its marker (`secret-a`, `secret-b`) and an id that
//! is unique across tenants; userNames come from one pool, so the same userName exists in
//! both. After every step:
//! - no successful answer to one tenant holds the other's marker or any of its ids;
//! - a request naming the other tenant's id is answered exactly as one naming an id that
//!   exists nowhere;
//! - each tenant lists exactly the resources it created and has not deleted, with members
//!   and groups of its own only.
//!
//! A failing case prints its seed and steps; `SCIMD_ISOLATION_CASES` asks for more cases.

mod common;

use common::{Db, Reply, TestServer, urlencode};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use reqwest::Method;
use scimd_core::tenants::{FoundData, Tenant, TenantState};
use scimd_core::tokens::{Scope, TokenRequest, create_token};
use serde_json::{Value, json};
use std::collections::BTreeSet;

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const SEARCH: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
const SLUGS: [&str; 2] = ["a", "b"];

// ---------------------------------------------------------------- steps

/// An id a step names: one of the tenant's own, one of the other tenant's, or one that
/// exists nowhere.
#[derive(Debug, Clone, Copy)]
enum Ref {
    Own(u8),
    Other(u8),
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    User,
    Group,
}

impl Kind {
    fn path(self) -> &'static str {
        match self {
            Kind::User => "/Users",
            Kind::Group => "/Groups",
        }
    }
}

/// Filters, several of which would match the other tenant's data.
#[derive(Debug, Clone, Copy)]
enum Filter {
    UserName(u8),
    OtherMarker,
    OwnMarker,
    Id(Ref),
    MemberValue(Ref),
    GroupValue(Ref),
    UserNameStarts,
    DisplayNameContains,
}

#[derive(Debug, Clone)]
enum Op {
    CreateUser(u8),
    CreateGroup(u8, Vec<Ref>),
    AddMembers(Ref, Vec<Ref>),
    RemoveMember(Ref, Ref),
    ReplaceMembers(Ref, Vec<Ref>),
    PatchUser(Ref),
    Delete(Kind, Ref),
    Get(Kind, Ref),
    List(Kind, Filter),
    Search(bool, Filter),
    Page(Kind, u8, u8),
}

/// A step: a tenant, the URL it uses (`/scim/v2` or `/t/{slug}/scim/v2`), an operation.
#[derive(Debug, Clone)]
struct Step {
    tenant: usize,
    via_root: bool,
    op: Op,
}

fn a_ref() -> impl Strategy<Value = Ref> {
    prop_oneof![3 => any::<u8>().prop_map(Ref::Own), 3 => any::<u8>().prop_map(Ref::Other), 1 => Just(Ref::Unknown)]
}

fn refs() -> impl Strategy<Value = Vec<Ref>> {
    proptest::collection::vec(a_ref(), 1..4)
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![Just(Kind::User), Just(Kind::Group)]
}

fn filter() -> impl Strategy<Value = Filter> {
    prop_oneof![
        (0u8..6).prop_map(Filter::UserName),
        Just(Filter::OtherMarker),
        Just(Filter::OwnMarker),
        a_ref().prop_map(Filter::Id),
        a_ref().prop_map(Filter::MemberValue),
        a_ref().prop_map(Filter::GroupValue),
        Just(Filter::UserNameStarts),
        Just(Filter::DisplayNameContains),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..6).prop_map(Op::CreateUser),
        2 => ((0u8..4), refs()).prop_map(|(n, m)| Op::CreateGroup(n, m)),
        3 => (a_ref(), refs()).prop_map(|(g, m)| Op::AddMembers(g, m)),
        1 => (a_ref(), a_ref()).prop_map(|(g, m)| Op::RemoveMember(g, m)),
        1 => (a_ref(), refs()).prop_map(|(g, m)| Op::ReplaceMembers(g, m)),
        1 => a_ref().prop_map(Op::PatchUser),
        2 => (kind(), a_ref()).prop_map(|(k, r)| Op::Delete(k, r)),
        2 => (kind(), a_ref()).prop_map(|(k, r)| Op::Get(k, r)),
        3 => (kind(), filter()).prop_map(|(k, f)| Op::List(k, f)),
        2 => (any::<bool>(), filter()).prop_map(|(r, f)| Op::Search(r, f)),
        1 => (kind(), 0u8..5, 0u8..4).prop_map(|(k, s, c)| Op::Page(k, s, c)),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    (0usize..2, any::<bool>(), op()).prop_map(|(tenant, via_root, op)| Step { tenant, via_root, op })
}

// ---------------------------------------------------------------- the run

/// What one tenant has created, and what of it is still there.
#[derive(Debug, Default)]
struct Side {
    token: String,
    users: Vec<String>,
    groups: Vec<String>,
    live_users: BTreeSet<String>,
    live_groups: BTreeSet<String>,
}

impl Side {
    fn created(&self, kind: Kind) -> &[String] {
        match kind {
            Kind::User => &self.users,
            Kind::Group => &self.groups,
        }
    }

    fn all_ids(&self) -> impl Iterator<Item = &String> {
        self.users.iter().chain(&self.groups)
    }
}

struct Run<'a> {
    s: &'a TestServer,
    sides: [Side; 2],
    /// An id that exists nowhere, the same for a whole case.
    nowhere: String,
}

fn marker(t: usize) -> String {
    format!("secret-{}", SLUGS[t])
}

fn user_name(n: u8) -> String {
    format!("user{n}@example.com")
}

impl Run<'_> {
    fn base(&self, t: usize, via_root: bool) -> String {
        if via_root { self.s.base.clone() } else { format!("{}/t/{}/scim/v2", self.s.root, SLUGS[t]) }
    }

    /// The id a reference names, of the given kind (users when a member).
    fn resolve(&self, t: usize, kind: Kind, r: Ref) -> String {
        let pick = |side: &Side, i: u8| {
            let list = side.created(kind);
            if list.is_empty() { self.nowhere.clone() } else { list[i as usize % list.len()].clone() }
        };
        match r {
            Ref::Own(i) => pick(&self.sides[t], i),
            Ref::Other(i) => pick(&self.sides[1 - t], i),
            Ref::Unknown => self.nowhere.clone(),
        }
    }

    fn members(&self, t: usize, refs: &[Ref]) -> Vec<Value> {
        refs.iter().map(|r| json!({"value": self.resolve(t, Kind::User, *r)})).collect()
    }

    async fn call(&self, t: usize, via_root: bool, method: Method, path: &str, body: Option<Value>) -> Reply {
        let url = format!("{}{path}", self.base(t, via_root));
        let bytes = body.map(|b| serde_json::to_vec(&b).unwrap());
        let ct = bytes.as_ref().map(|_| "application/scim+json");
        self.s.request(method, &url, Some(&self.sides[t].token), ct, bytes, &[]).await
    }

    /// Sends the request a step makes: method, path, body, and the ids of the other tenant
    /// it names.
    fn request(&self, step: &Step) -> (Method, String, Option<Value>) {
        let t = step.tenant;
        match &step.op {
            Op::CreateUser(n) => {
                let body = json!({"schemas": [USER], "userName": user_name(*n), "title": marker(t),
                                  "name": {"givenName": format!("{} {n}", marker(t))}});
                (Method::POST, "/Users".into(), Some(body))
            }
            Op::CreateGroup(n, refs) => {
                let body = json!({"schemas": [GROUP], "displayName": format!("G{n} {}", marker(t)),
                                  "members": self.members(t, refs)});
                (Method::POST, "/Groups".into(), Some(body))
            }
            Op::AddMembers(g, refs) => {
                let body = json!({"schemas": [PATCH], "Operations": [
                    {"op": "add", "path": "members", "value": self.members(t, refs)}]});
                (Method::PATCH, format!("/Groups/{}", self.resolve(t, Kind::Group, *g)), Some(body))
            }
            Op::RemoveMember(g, m) => {
                let path = format!("members[value eq \"{}\"]", self.resolve(t, Kind::User, *m));
                let body = json!({"schemas": [PATCH], "Operations": [{"op": "remove", "path": path}]});
                (Method::PATCH, format!("/Groups/{}", self.resolve(t, Kind::Group, *g)), Some(body))
            }
            Op::ReplaceMembers(g, refs) => {
                let body = json!({"schemas": [GROUP], "displayName": format!("G9 {}", marker(t)),
                                  "members": self.members(t, refs)});
                (Method::PUT, format!("/Groups/{}", self.resolve(t, Kind::Group, *g)), Some(body))
            }
            Op::PatchUser(u) => {
                let body = json!({"schemas": [PATCH], "Operations": [
                    {"op": "replace", "path": "displayName", "value": format!("renamed {}", marker(t))}]});
                (Method::PATCH, format!("/Users/{}", self.resolve(t, Kind::User, *u)), Some(body))
            }
            Op::Delete(k, r) => (Method::DELETE, format!("{}/{}", k.path(), self.resolve(t, *k, *r)), None),
            Op::Get(k, r) => (Method::GET, format!("{}/{}", k.path(), self.resolve(t, *k, *r)), None),
            Op::List(k, f) => {
                let filter = self.filter(t, *k, *f);
                (Method::GET, format!("{}?count=1000&filter={}", k.path(), urlencode(&filter)), None)
            }
            Op::Search(at_root, f) => {
                let (path, kind) = if *at_root { ("/.search", Kind::User) } else { ("/Users/.search", Kind::User) };
                let body = json!({"schemas": [SEARCH], "filter": self.filter(t, kind, *f), "count": 1000});
                (Method::POST, path.into(), Some(body))
            }
            Op::Page(k, start, count) => {
                let sort = if *k == Kind::User { "userName" } else { "displayName" };
                (Method::GET, format!("{}?sortBy={sort}&startIndex={}&count={count}", k.path(), start + 1), None)
            }
        }
    }

    fn filter(&self, t: usize, kind: Kind, f: Filter) -> String {
        let text_attr = if kind == Kind::User { "title" } else { "displayName" };
        match f {
            Filter::UserName(n) => format!("userName eq \"{}\"", user_name(n)),
            Filter::OtherMarker => format!("{text_attr} co \"{}\"", marker(1 - t)),
            Filter::OwnMarker => format!("{text_attr} co \"{}\"", marker(t)),
            Filter::Id(r) => format!("id eq \"{}\"", self.resolve(t, kind, r)),
            Filter::MemberValue(r) if kind == Kind::Group => {
                format!("members.value eq \"{}\"", self.resolve(t, Kind::User, r))
            }
            Filter::GroupValue(r) if kind == Kind::User => {
                format!("groups.value eq \"{}\"", self.resolve(t, Kind::Group, r))
            }
            Filter::MemberValue(r) | Filter::GroupValue(r) => format!("id eq \"{}\"", self.resolve(t, kind, r)),
            Filter::UserNameStarts if kind == Kind::User => "userName sw \"user\"".into(),
            Filter::UserNameStarts | Filter::DisplayNameContains => format!("{text_attr} co \"secret\""),
        }
    }

    /// Whether the step names an id of the other tenant.
    fn names_other(step: &Step) -> bool {
        let other = |r: &Ref| matches!(r, Ref::Other(_));
        let filter =
            |f: &Filter| matches!(f, Filter::Id(r) | Filter::MemberValue(r) | Filter::GroupValue(r) if other(r));
        match &step.op {
            Op::CreateGroup(_, m) => m.iter().any(other),
            Op::AddMembers(g, m) | Op::ReplaceMembers(g, m) => other(g) || m.iter().any(other),
            Op::RemoveMember(g, m) => other(g) || other(m),
            Op::PatchUser(r) | Op::Delete(_, r) | Op::Get(_, r) => other(r),
            Op::List(_, f) | Op::Search(_, f) => filter(f),
            Op::CreateUser(_) | Op::Page(..) => false,
        }
    }

    /// The same step with every reference to the other tenant's ids made unknown.
    fn without_other(step: &Step) -> Step {
        let fix = |r: Ref| if matches!(r, Ref::Other(_)) { Ref::Unknown } else { r };
        let fix_all = |m: &[Ref]| m.iter().map(|r| fix(*r)).collect::<Vec<_>>();
        let fix_filter = |f: Filter| match f {
            Filter::Id(r) => Filter::Id(fix(r)),
            Filter::MemberValue(r) => Filter::MemberValue(fix(r)),
            Filter::GroupValue(r) => Filter::GroupValue(fix(r)),
            other => other,
        };
        let op = match &step.op {
            Op::CreateGroup(n, m) => Op::CreateGroup(*n, fix_all(m)),
            Op::AddMembers(g, m) => Op::AddMembers(fix(*g), fix_all(m)),
            Op::ReplaceMembers(g, m) => Op::ReplaceMembers(fix(*g), fix_all(m)),
            Op::RemoveMember(g, m) => Op::RemoveMember(fix(*g), fix(*m)),
            Op::PatchUser(r) => Op::PatchUser(fix(*r)),
            Op::Delete(k, r) => Op::Delete(*k, fix(*r)),
            Op::Get(k, r) => Op::Get(*k, fix(*r)),
            Op::List(k, f) => Op::List(*k, fix_filter(*f)),
            Op::Search(b, f) => Op::Search(*b, fix_filter(*f)),
            other => other.clone(),
        };
        Step { op, ..step.clone() }
    }

    async fn step(&mut self, step: &Step) {
        let t = step.tenant;
        let (method, path, body) = self.request(step);
        let r = self.call(t, step.via_root, method.clone(), &path, body).await;
        assert!(r.status.as_u16() < 500, "{method} {path}: {} {}", r.status, r.body);
        self.no_leak(t, &r, &format!("{method} {path}"));

        if Self::names_other(step) && !r.status.is_success() {
            // Refused: exactly as if the other tenant's ids existed nowhere. (Such a
            // request changes nothing, so it can be sent again.)
            let twin = Self::without_other(step);
            let (m2, p2, b2) = self.request(&twin);
            let r2 = self.call(t, step.via_root, m2, &p2, b2).await;
            assert_eq!(r.status, r2.status, "{method} {path}: {} vs {}", r.body, r2.body);
            assert_eq!(r.body["scimType"], r2.body["scimType"], "{method} {path}");
            let detail = |r: &Reply| {
                let mut d = r.body["detail"].as_str().unwrap_or("").to_string();
                for id in self.sides[1 - t].all_ids() {
                    d = d.replace(id.as_str(), &self.nowhere);
                }
                d
            };
            assert_eq!(detail(&r), detail(&r2), "{method} {path}");
        }

        // What the step did, as the answer says.
        let side = &mut self.sides[t];
        match (&step.op, r.status.as_u16()) {
            (Op::CreateUser(_), 201) => {
                let id = r.body["id"].as_str().unwrap().to_string();
                side.users.push(id.clone());
                side.live_users.insert(id);
            }
            (Op::CreateGroup(..), 201) => {
                let id = r.body["id"].as_str().unwrap().to_string();
                side.groups.push(id.clone());
                side.live_groups.insert(id);
            }
            (Op::Delete(k, _), 204) => {
                let id = path.rsplit('/').next().unwrap().to_string();
                let (mine, live) = match k {
                    Kind::User => (side.users.contains(&id), &mut side.live_users),
                    Kind::Group => (side.groups.contains(&id), &mut side.live_groups),
                };
                assert!(mine, "deleted another tenant's {k:?} {id}");
                live.remove(&id);
            }
            (Op::PatchUser(r) | Op::Get(_, r), status) if status / 100 == 2 => {
                assert!(!matches!(r, Ref::Other(_)), "{path}: another tenant's resource answered {status}");
            }
            _ => {}
        }
        if let (Op::List(_, f) | Op::Search(_, f), true) = (&step.op, r.status.is_success()) {
            let foreign = matches!(f, Filter::OtherMarker)
                || matches!(
                    f,
                    Filter::Id(Ref::Other(_)) | Filter::MemberValue(Ref::Other(_)) | Filter::GroupValue(Ref::Other(_))
                );
            let total = r.body["totalResults"].as_u64().unwrap();
            assert_eq!(total as usize, r.body["Resources"].as_array().map_or(0, Vec::len), "{path}: totalResults");
            if foreign {
                assert_eq!(total, 0, "{path} matched the other tenant's data: {}", r.body);
            }
        }
    }

    /// A successful answer to tenant `t` holds nothing of the other tenant's.
    fn no_leak(&self, t: usize, r: &Reply, what: &str) {
        if !r.status.is_success() {
            return;
        }
        let text = r.body.to_string();
        assert!(!text.contains(&marker(1 - t)), "{what}: the other tenant's data in {text}");
        for id in self.sides[1 - t].all_ids() {
            assert!(!text.contains(id.as_str()), "{what}: the other tenant's id {id} in {text}");
        }
    }

    /// Each tenant lists what it created and has not deleted, over either URL.
    async fn check(&self, n: usize) {
        for (t, side) in self.sides.iter().enumerate() {
            for (kind, live) in [(Kind::User, &side.live_users), (Kind::Group, &side.live_groups)] {
                let r =
                    self.call(t, n.is_multiple_of(2), Method::GET, &format!("{}?count=1000", kind.path()), None).await;
                assert_eq!(r.status, 200, "{}", r.body);
                self.no_leak(t, &r, "list");
                let resources = r.body["Resources"].as_array().cloned().unwrap_or_default();
                let ids: BTreeSet<String> = resources.iter().map(|x| x["id"].as_str().unwrap().to_string()).collect();
                assert_eq!(&ids, live, "step {n}: {kind:?} of tenant {}", SLUGS[t]);
                assert_eq!(r.body["totalResults"], json!(live.len()));
                // Members and groups are the tenant's own.
                for x in &resources {
                    for rel in ["members", "groups"] {
                        for m in x.get(rel).and_then(Value::as_array).into_iter().flatten() {
                            let v = m["value"].as_str().unwrap().to_string();
                            assert!(side.all_ids().any(|id| *id == v), "step {n}: {rel} {v} of {}", x["id"]);
                        }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------- the cases

const CASES: u32 = 12;
const STEPS: usize = 30;

async fn run_cases(db: Db) {
    let cases = std::env::var("SCIMD_ISOLATION_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(CASES);
    for case in 0..cases {
        let s = TestServer::on_db(db, &format!("isolation{case}"), |c| c.tenant = "a".into()).await;
        let mut sides: [Side; 2] = Default::default();
        for (t, slug) in SLUGS.iter().enumerate() {
            if t > 0 {
                let tenant = Tenant {
                    slug: slug.to_string(),
                    name: slug.to_uppercase(),
                    state: TenantState::Active,
                    settings: Default::default(),
                    created: "2026-01-01T00:00:00Z".into(),
                    last_request: None,
                };
                s.backend.tenants.create_tenant(&tenant, FoundData::Erase).await.unwrap();
            }
            let req = TokenRequest { scope: Scope::Scim, tenant: slug, name: "test", secret: None, expires: None };
            sides[t].token = create_token(s.backend.tokens.as_ref(), req, "2026-01-01T00:00:00Z").await.unwrap().secret;
        }
        let mut run = Run { s: &s, sides, nowhere: uuid::Uuid::new_v4().to_string() };
        let seed = [case as u8 ^ 0x5a; 32];
        let mut runner = TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
        let steps: Vec<Step> = (0..STEPS).map(|_| step().new_tree(&mut runner).unwrap().current()).collect();
        for (n, st) in steps.iter().enumerate() {
            let done = std::panic::AssertUnwindSafe(async {
                run.step(st).await;
                run.check(n).await;
            });
            if let Err(panic) = futures_util::FutureExt::catch_unwind(done).await {
                eprintln!("case {case} on {db:?} failed at step {n}; its steps:");
                for (i, s) in steps.iter().enumerate().take(n + 1) {
                    eprintln!("  {i:2}: {s:?}");
                }
                std::panic::resume_unwind(panic);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_never_see_each_other_on_sqlite() {
    run_cases(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn tenants_never_see_each_other_on_postgres() {
    run_cases(Db::Postgres).await;
}
