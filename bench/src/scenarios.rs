//! Seeding and the scenarios. Each scenario run is bounded by `--duration` and by
//! `--max-requests`; the `members` scenario by its sizes and `--member-samples`.

use crate::Args;
use crate::http::{Conn, Target};
use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http::Method;
use rand::Rng;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// What one scenario (or one size of `members`) measured.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub name: String,
    pub clients: usize,
    pub requests: u64,
    /// Transport failures and timeouts.
    pub errors: u64,
    /// Answers outside 2xx.
    pub non_2xx: u64,
    pub seconds: f64,
    /// Latencies in microseconds, sorted.
    pub latencies: Vec<u64>,
    /// Peak resident memory of the server during the run, in bytes.
    pub peak_rss: Option<u64>,
}

impl Outcome {
    pub fn rps(&self) -> f64 {
        if self.seconds > 0.0 { self.requests as f64 / self.seconds } else { 0.0 }
    }
    pub fn percentile(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i.min(self.latencies.len() - 1)] as f64 / 1000.0
    }
}

/// One request of a scenario: method, path below the base URL of endpoint `at` (0: `--url`;
/// then the tenants of `--tenants-file`), body.
pub struct Req {
    pub at: usize,
    pub method: Method,
    pub path: String,
    pub body: Option<Bytes>,
}

impl Req {
    fn get(path: String) -> Req {
        Req { at: 0, method: Method::GET, path, body: None }
    }
    fn with_json(method: Method, path: String, body: &Value) -> Req {
        Req { at: 0, method, path, body: Some(Bytes::from(body.to_string())) }
    }
}

/// A connection that sends and parses: for seeding and set-up, which need answers.
async fn send_json(c: &mut Conn, at: usize, method: Method, path: &str, body: Option<&Value>) -> Result<(u16, Value)> {
    let (status, bytes) = c.send_to(at, method, path, body.map(|b| Bytes::from(b.to_string()))).await?;
    Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
}

/// Resident memory of a process now, from /proc (Linux).
fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Samples a process's resident memory until `stop` is set; returns the peak.
fn sample_rss(pid: Option<u32>, stop: Arc<std::sync::atomic::AtomicBool>) -> tokio::task::JoinHandle<Option<u64>> {
    tokio::spawn(async move {
        let pid = pid?;
        let mut peak = 0;
        while !stop.load(Ordering::Relaxed) {
            peak = peak.max(rss_bytes(pid).unwrap_or(0));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Some(peak.max(rss_bytes(pid).unwrap_or(0)))
    })
}

/// Runs `clients` loops, each on its own connection, sending the requests `one` describes
/// until the duration or the request bound is reached. Answers are read and dropped.
async fn drive<F>(target: &Arc<Target>, args: &Args, name: &str, clients: usize, one: F) -> Outcome
where
    F: Fn(u64) -> Req + Send + Sync + 'static,
{
    let one = Arc::new(one);
    let issued = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let rss = sample_rss(args.pid, stop.clone());
    let deadline = Instant::now() + args.run_time();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients.max(1) {
        let (one, issued, mut conn) = (one.clone(), issued.clone(), Conn::new(target.clone()));
        let (max, rate) = (args.max_requests, args.rate);
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut errors, mut non_2xx) = (Vec::new(), 0u64, 0u64);
            while Instant::now() < deadline {
                let n = issued.fetch_add(1, Ordering::Relaxed);
                if n >= max {
                    break;
                }
                if rate > 0.0 {
                    let due = started + Duration::from_secs_f64(n as f64 / rate);
                    if due >= deadline {
                        break;
                    }
                    tokio::time::sleep_until(due.into()).await;
                }
                let req = one(n);
                let t = Instant::now();
                match conn.send_to(req.at, req.method, &req.path, req.body).await {
                    Ok((status, _)) => {
                        lat.push(t.elapsed().as_micros() as u64);
                        if !(200..300).contains(&status) {
                            non_2xx += 1;
                        }
                    }
                    Err(_) => errors += 1,
                }
            }
            (lat, errors, non_2xx)
        }));
    }
    let mut out = Outcome { name: name.into(), clients: clients.max(1), ..Outcome::default() };
    for t in tasks {
        if let Ok((lat, e, n)) = t.await {
            out.latencies.extend(lat);
            out.errors += e;
            out.non_2xx += n;
        }
    }
    out.seconds = started.elapsed().as_secs_f64();
    out.requests = out.latencies.len() as u64 + out.errors;
    out.latencies.sort_unstable();
    stop.store(true, Ordering::Relaxed);
    out.peak_rss = rss.await.ok().flatten();
    out
}

/// The seeded population.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Seed {
    pub users: Vec<(String, String)>, // (id, userName)
    pub groups: Vec<String>,
    /// The users of each tenant of `--tenants-file`, in its order.
    #[serde(default)]
    pub tenants: Vec<Vec<(String, String)>>,
    /// A cursor (RFC 9865) to the page `--cursor-depth` users deep, for `cursor_deep`.
    #[serde(skip)]
    pub deep_cursor: Option<String>,
}

fn user_body(prefix: &str, i: usize) -> Value {
    let name = format!("{prefix}.user{i}@example.com");
    json!({
        "schemas": [USER], "userName": name, "externalId": format!("{prefix}-ext-{i}"),
        "name": {"givenName": format!("Given{i}"), "familyName": format!("Family{i}")},
        "emails": [{"value": name, "type": "work", "primary": true}], "active": true
    })
}

/// `user_body` as text, written straight from a template: in the create scenarios the tool
/// builds one body per request, and with one client its time counts against the server.
struct UserTemplate {
    /// The prefix as JSON string content (escaped, without quotes).
    prefix: String,
}

impl UserTemplate {
    fn new(prefix: &str) -> UserTemplate {
        let quoted = Value::String(prefix.to_string()).to_string();
        UserTemplate { prefix: quoted[1..quoted.len() - 1].to_string() }
    }

    fn body(&self, i: usize) -> Bytes {
        let p = &self.prefix;
        Bytes::from(format!(
            r#"{{"schemas":["{USER}"],"userName":"{p}.user{i}@example.com","externalId":"{p}-ext-{i}","name":{{"givenName":"Given{i}","familyName":"Family{i}"}},"emails":[{{"value":"{p}.user{i}@example.com","type":"work","primary":true}}],"active":true}}"#
        ))
    }
}

/// Creates users `range` at endpoint `at` with `clients` concurrent connections; returns
/// (id, userName).
async fn create_users(
    target: &Arc<Target>,
    at: usize,
    prefix: &str,
    range: std::ops::Range<usize>,
    clients: usize,
) -> Result<Vec<(String, String)>> {
    let next = Arc::new(AtomicU64::new(range.start as u64));
    let end = range.end as u64;
    let mut tasks = Vec::new();
    for _ in 0..clients.max(1) {
        let (mut c, next, prefix) = (Conn::new(target.clone()), next.clone(), prefix.to_string());
        tasks.push(tokio::spawn(async move {
            let mut made = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= end {
                    break;
                }
                let body = user_body(&prefix, i as usize);
                let name = body["userName"].as_str().unwrap_or_default().to_string();
                // Seeding is not measured: a server that sheds load (5xx) is given a few
                // more tries, with a pause, before seeding fails.
                let mut attempt = 0;
                let (status, resp) = loop {
                    attempt += 1;
                    let (status, resp) = send_json(&mut c, at, Method::POST, "/Users", Some(&body)).await?;
                    if status < 500 || attempt >= 8 {
                        break (status, resp);
                    }
                    tokio::time::sleep(Duration::from_millis(25 * attempt)).await;
                };
                let id = match status {
                    201 => resp["id"].as_str().unwrap_or_default().to_string(),
                    // Seeded by an earlier run: look it up.
                    409 => find_user(&mut c, at, &name).await?,
                    other => bail!("seeding user {i}: status {other}: {resp}"),
                };
                made.push((id, name));
            }
            Ok::<_, anyhow::Error>(made)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(all)
}

async fn find_user(c: &mut Conn, at: usize, name: &str) -> Result<String> {
    let path = format!("/Users?filter={}", enc(&format!("userName eq \"{name}\"")));
    let (status, resp) = send_json(c, at, Method::GET, &path, None).await?;
    if status != 200 {
        bail!("looking up {name}: status {status}");
    }
    resp["Resources"][0]["id"].as_str().map(str::to_string).context("seeded user not found")
}

async fn create_group(c: &mut Conn, name: &str, members: &[&str]) -> Result<String> {
    let body = json!({"schemas": [GROUP], "displayName": name, "members": members.iter().map(|m| json!({"value": m})).collect::<Vec<_>>()});
    let (status, resp) = send_json(c, 0, Method::POST, "/Groups?excludedAttributes=members", Some(&body)).await?;
    match status {
        201 => resp["id"].as_str().map(str::to_string).context("no id"),
        409 => {
            let path =
                format!("/Groups?excludedAttributes=members&filter={}", enc(&format!("displayName eq \"{name}\"")));
            let (_, found) = send_json(c, 0, Method::GET, &path, None).await?;
            found["Resources"][0]["id"].as_str().map(str::to_string).context("seeded group not found")
        }
        other => bail!("creating group {name}: status {other}: {resp}"),
    }
}

pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn seed(target: &Arc<Target>, args: &Args) -> Result<Seed> {
    let t = Instant::now();
    let users = create_users(target, 0, &args.prefix, 0..args.users, args.seed_concurrency).await?;
    let mut groups = Vec::new();
    let mut rng = rand::rng();
    let mut c = Conn::new(target.clone());
    for g in 0..args.groups {
        let members: Vec<&str> = (0..args.members_per_group.min(users.len()))
            .map(|_| users[rng.random_range(0..users.len())].0.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        groups.push(create_group(&mut c, &format!("{} group {g}", args.prefix), &members).await?);
    }
    eprintln!("seeded {} users and {} groups in {:.1}s", users.len(), groups.len(), t.elapsed().as_secs_f64());
    // Every tenant gets the same userNames: they are unique per tenant only.
    let mut tenants = Vec::new();
    for at in 1..target.endpoints() {
        tenants.push(create_users(target, at, &args.prefix, 0..args.tenant_users, args.seed_concurrency).await?);
    }
    if !tenants.is_empty() {
        eprintln!(
            "seeded {} tenants of {} users in {:.1}s",
            tenants.len(),
            args.tenant_users,
            t.elapsed().as_secs_f64()
        );
    }
    Ok(Seed { users, groups, tenants, deep_cursor: None })
}

/// The population of `--seed-file` if it exists; otherwise a new one (kept there if asked).
async fn seeded(target: &Arc<Target>, args: &Args) -> Result<Seed> {
    let Some(path) = &args.seed_file else {
        return seed(target, args).await;
    };
    if let Ok(text) = std::fs::read_to_string(path) {
        let kept: Seed = serde_json::from_str(&text).with_context(|| format!("reading the seed file {path}"))?;
        if kept.users.is_empty() {
            bail!("the seed file {path} holds no users");
        }
        eprintln!("using the {} users and {} groups of {path}", kept.users.len(), kept.groups.len());
        return Ok(kept);
    }
    let new = seed(target, args).await?;
    std::fs::write(path, serde_json::to_string(&new)?).with_context(|| format!("writing the seed file {path}"))?;
    Ok(new)
}

fn pick<T>(v: &[T]) -> &T {
    &v[rand::rng().random_range(0..v.len())]
}

/// The request one iteration of a read or write scenario sends.
fn scenario_request(name: &str, args: &Args, seed: &Arc<Seed>) -> Result<Box<dyn Fn(u64) -> Req + Send + Sync>> {
    let s = seed.clone();
    Ok(match name {
        "get_user" => Box::new(move |_| Req::get(format!("/Users/{}", pick(&s.users).0))),
        "filter" => Box::new(move |_| {
            Req::get(format!("/Users?filter={}", enc(&format!("userName eq \"{}\"", pick(&s.users).1))))
        }),
        // The same, each request to a random tenant of `--tenants-file`.
        "tenant_get_user" | "tenant_filter" => {
            if s.tenants.is_empty() || s.tenants.iter().any(Vec::is_empty) {
                bail!("{name} needs --tenants-file and --tenant-users above 0");
            }
            let by_id = name == "tenant_get_user";
            Box::new(move |_| {
                let at = rand::rng().random_range(0..s.tenants.len());
                let (id, user_name) = pick(&s.tenants[at]);
                let path = if by_id {
                    format!("/Users/{id}")
                } else {
                    format!("/Users?filter={}", enc(&format!("userName eq \"{user_name}\"")))
                };
                Req { at: at + 1, ..Req::get(path) }
            })
        }
        "list" => Box::new(move |_| {
            let start = rand::rng().random_range(1..=s.users.len().saturating_sub(100).max(1));
            Req::get(format!("/Users?startIndex={start}&count=100"))
        }),
        "get_group" => Box::new(move |_| Req::get(format!("/Groups/{}?excludedAttributes=members", pick(&s.groups)))),
        // RFC 9865: the first page by cursor, and a page deep in the list by its cursor.
        "cursor_first" => Box::new(move |_| Req::get("/Users?cursor=&count=100".into())),
        "cursor_deep" => {
            let cursor = s.deep_cursor.clone().context("cursor_deep needs --cursor-depth within the seeded users")?;
            Box::new(move |_| Req::get(format!("/Users?cursor={cursor}&count=100")))
        }
        "create_seq" | "create_concurrent" => {
            // Names no earlier run used, so every create is a new user.
            let template = UserTemplate::new(&format!("{}-new-{}-{}", args.prefix, std::process::id(), name));
            Box::new(move |n| Req {
                at: 0,
                method: Method::POST,
                path: "/Users".into(),
                body: Some(template.body(n as usize)),
            })
        }
        "patch_user" => Box::new(move |n| {
            let body = json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "name.givenName", "value": format!("Patched{n}")}]});
            Req::with_json(Method::PATCH, format!("/Users/{}", pick(&s.users).0), &body)
        }),
        // A new group with one member, as Entra ID and Okta create one (members in the POST).
        "create_group" => {
            let prefix = format!("{}-group-{}", args.prefix, std::process::id());
            Box::new(move |n| {
                let body = json!({"schemas": [GROUP], "displayName": format!("{prefix}-{n}"), "members": [{"value": pick(&s.users).0}]});
                Req::with_json(Method::POST, "/Groups".into(), &body)
            })
        }
        // A member added as Entra ID and Okta add one: no query parameters.
        "add_member" => {
            if s.groups.is_empty() {
                bail!("add_member needs seeded groups (--groups above 0)");
            }
            Box::new(move |_| {
                let body = json!({"schemas": [PATCH], "Operations": [{"op": "Add", "path": "members", "value": [{"value": pick(&s.users).0}]}]});
                Req::with_json(Method::PATCH, format!("/Groups/{}", pick(&s.groups)), &body)
            })
        }
        other => bail!("unknown scenario '{other}'"),
    })
}

/// The cursor of the page that starts `depth` users into the list, found by paging there
/// with cursors 1,000 at a time (None when the list is shorter).
async fn walk_to(target: &Arc<Target>, depth: usize) -> Result<Option<String>> {
    let mut c = Conn::new(target.clone());
    let mut cursor = String::new();
    let mut at = 0usize;
    let t = Instant::now();
    while at < depth {
        let count = (depth - at).min(1000);
        let path = format!("/Users?cursor={cursor}&count={count}&attributes=id");
        let (status, page) = send_json(&mut c, 0, Method::GET, &path, None).await?;
        if status != 200 {
            bail!("paging by cursor: status {status}: {page}");
        }
        at += page["Resources"].as_array().map_or(0, Vec::len);
        match page["nextCursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => return Ok(None),
        }
    }
    eprintln!("cursor_deep: a cursor {depth} users deep in {:.1}s", t.elapsed().as_secs_f64());
    Ok(Some(cursor))
}

/// Runs the requested scenarios `--runs` times in rounds (each round runs every scenario
/// once, so that a drift of the machine's speed meets every scenario alike); for each, the
/// median run by req/s is kept. `members` runs once, at the end.
pub async fn run_all(target: Arc<Target>, args: &Args) -> Result<Vec<Outcome>> {
    let wanted: Vec<&str> = args.scenarios.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    let needs_seed = wanted.iter().any(|s| {
        matches!(
            *s,
            "get_user"
                | "filter"
                | "list"
                | "get_group"
                | "patch_user"
                | "add_member"
                | "create_group"
                | "tenant_get_user"
                | "tenant_filter"
                | "cursor_first"
                | "cursor_deep"
        )
    });
    let empty = Seed { users: vec![], groups: vec![], tenants: vec![], deep_cursor: None };
    let mut seed = if needs_seed { seeded(&target, args).await? } else { empty };
    if wanted.contains(&"cursor_deep") {
        seed.deep_cursor = walk_to(&target, args.cursor_depth).await?;
    }
    let seed = Arc::new(seed);
    let timed: Vec<&str> = wanted.iter().copied().filter(|n| *n != "members").collect();
    let mut runs: Vec<Vec<Outcome>> = vec![Vec::new(); timed.len()];
    for round in 0..args.runs.max(1) {
        for (i, name) in timed.iter().enumerate() {
            // Sequential creates measure one create's cost.
            let clients = if matches!(*name, "create_seq" | "create_group") { 1 } else { args.concurrency };
            let one = scenario_request(name, args, &seed)?;
            // Creates of later rounds must not collide with earlier ones.
            let offset = round as u64 * args.max_requests;
            let run = drive(&target, args, name, clients, move |n| one(n + offset)).await;
            eprintln!(
                "{name}: {:.0} req/s, p50 {:.2} ms, errors {}, non-2xx {}",
                run.rps(),
                run.percentile(0.5),
                run.errors,
                run.non_2xx
            );
            runs[i].push(run);
        }
    }
    let mut results = Vec::new();
    for mut of_one in runs {
        of_one.sort_by(|a, b| a.rps().total_cmp(&b.rps()));
        results.push(of_one.swap_remove(of_one.len() / 2));
    }
    if wanted.contains(&"members") {
        results.extend(members(&target, args).await?);
    }
    Ok(results)
}

/// One group grows through the sizes; at each size, `member_samples` single-member adds
/// are timed one after another.
async fn members(target: &Arc<Target>, args: &Args) -> Result<Vec<Outcome>> {
    let mut sizes: Vec<usize> = args.member_sizes.split(',').filter_map(|s| s.trim().parse().ok()).collect();
    sizes.sort_unstable();
    let biggest = sizes.last().copied().unwrap_or(0) + args.member_samples * sizes.len();
    let prefix = format!("{}-members", args.prefix);
    eprintln!("members: creating {biggest} users");
    let t = Instant::now();
    let pool = create_users(target, 0, &prefix, 0..biggest, args.seed_concurrency).await?;
    eprintln!("members: {} users in {:.1}s", pool.len(), t.elapsed().as_secs_f64());
    let mut c = Conn::new(target.clone());
    let group = create_group(&mut c, &format!("{prefix} big group {}", std::process::id()), &[]).await?;
    // As Entra ID and Okta send it: no query parameters.
    let path = format!("/Groups/{group}");
    let mut next = 0usize;
    let mut out = Vec::new();
    for size in sizes {
        // Grow in batches to `size` (not timed).
        while next < size {
            let batch: Vec<Value> =
                pool[next..size.min(next + 1000)].iter().map(|(id, _)| json!({"value": id})).collect();
            next += batch.len();
            let body = json!({"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": batch}]});
            let (status, resp) = send_json(&mut c, 0, Method::PATCH, &path, Some(&body)).await?;
            if !(200..300).contains(&status) {
                bail!("growing the group to {size}: status {status}: {resp}");
            }
        }
        let mut o = Outcome { name: format!("members@{size}"), clients: 1, ..Outcome::default() };
        let started = Instant::now();
        for _ in 0..args.member_samples {
            let (id, _) = &pool[next];
            next += 1;
            let body =
                json!({"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": id}]}]});
            let t = Instant::now();
            match c.send(Method::PATCH, &path, Some(Bytes::from(body.to_string()))).await {
                Ok((status, _)) => {
                    o.latencies.push(t.elapsed().as_micros() as u64);
                    if !(200..300).contains(&status) {
                        o.non_2xx += 1;
                    }
                }
                Err(_) => o.errors += 1,
            }
        }
        o.seconds = started.elapsed().as_secs_f64();
        o.requests = o.latencies.len() as u64 + o.errors;
        o.latencies.sort_unstable();
        o.peak_rss = args.pid.and_then(rss_bytes);
        eprintln!("{}: p50 {:.2} ms", o.name, o.percentile(0.5));
        out.push(o);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_writes_the_same_user_as_the_json_builder() {
        for prefix in ["bench", "we\"ird\\prefix"] {
            let text = UserTemplate::new(prefix).body(42);
            let parsed: Value = serde_json::from_slice(&text).unwrap();
            assert_eq!(parsed, user_body(prefix, 42));
        }
    }
}
