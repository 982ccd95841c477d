//! The binary as an operator and their scripts use it: upgrading a database written by an
//! earlier scimd, and the `tenant`, `token` and `admin-token` commands.

mod common;

use common::process::{Scimd, command};
use reqwest::Method;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Runs `scimd ARGS` on `db`; its success, stdout and stderr.
fn run(db: &str, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut c = command(db);
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

/// `scimd ARGS`, which must succeed; its stdout.
fn ok(db: &str, args: &[&str]) -> String {
    let (success, out, err) = run(db, args, &[]);
    assert!(success, "scimd {args:?} failed: {err}");
    out
}

/// `scimd ARGS`, which must fail; its stderr.
fn refused(db: &str, args: &[&str]) -> String {
    let (success, out, err) = run(db, args, &[]);
    assert!(!success, "scimd {args:?} succeeded: {out}");
    err
}

/// The value of the line `NAME: value`.
fn field(out: &str, name: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no '{name}:' line in {out:?}"))
        .to_string()
}

/// A table as printed: rows of cells, columns two or more spaces apart.
fn table(out: &str) -> Vec<Vec<String>> {
    out.lines().map(|l| l.split("  ").map(str::trim).filter(|c| !c.is_empty()).map(String::from).collect()).collect()
}

/// The cell of `column` in the row whose first cell is `key`.
fn cell(out: &str, key: &str, column: &str) -> String {
    let rows = table(out);
    let i = rows[0].iter().position(|h| h == column).unwrap_or_else(|| panic!("no column {column} in {out}"));
    let row = rows.iter().find(|r| r[0] == key).unwrap_or_else(|| panic!("no row {key} in {out}"));
    assert_eq!(row.len(), rows[0].len(), "row {row:?} does not fit the header {:?}", rows[0]);
    row[i].clone()
}

/// Repeats `read` until `done` holds, for up to two seconds (writes off the request path).
fn poll(read: impl Fn() -> String, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let out = read();
        if done(&out) || Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn http(method: Method, url: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut req = reqwest::Client::new().request(method, url).bearer_auth(token);
        if let Some(b) = body {
            req = req.header("content-type", "application/scim+json").body(b.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    })
}

fn get(url: &str, token: &str) -> (u16, Value) {
    http(Method::GET, url, token, None)
}

/// The server refuses `token` at `url` within half a second: a change made by a `scimd`
/// command (another process) reaches it as another replica's would.
fn refused_soon(url: &str, token: &str) {
    let changed = Instant::now();
    while get(url, token).0 != 401 {
        assert!(changed.elapsed() < Duration::from_millis(600), "{url} still takes the token");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn today() -> String {
    scimd_proto::value::format_datetime(time::OffsetDateTime::now_utc())[..10].to_string()
}

// ---------------------------------------------------------------- upgrade

/// What `crates/scimd/tests/fixtures/scimd-0.1.0.db` holds, as scimd 0.1.0 wrote it (one
/// tenant, 'default'): ada and grace, alan deleted (retired), the group Pioneers of ada and
/// grace, and two tokens.
const ADA: &str = "01a22b7d-b714-739d-8a1e-38dba054f28e";
const GRACE: &str = "01a22b7d-b71e-7541-873b-b532b9c02803";
const PIONEERS: &str = "01a22b7d-b865-753f-8a19-adfd7e5f5967";
const BOOTSTRAP: &str = "fixture-token-0-1";
const SECOND: &str = "scimd_03eac7eb4cc1550262d687b5bff354b8b3a00295077ed00fb18b19231a021c75";

#[test]
fn a_database_of_scimd_0_1_upgrades_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/scimd-0.1.0.db"), &path).unwrap();
    let db = format!("sqlite://{}", path.display());
    let server = Scimd::serve(&db, "a-bootstrap-token-that-must-not-register", &[], None);

    // Everything that worked before works unchanged: /scim/v2 and both tokens.
    let (status, users) = get(&format!("{}/Users?sortBy=userName", server.base()), BOOTSTRAP);
    assert_eq!(status, 200, "{users}");
    let names: Vec<&str> =
        users["Resources"].as_array().unwrap().iter().map(|u| u["userName"].as_str().unwrap()).collect();
    assert_eq!(names, ["ada@example.com", "grace@example.com"]);
    assert_eq!(users["Resources"][0]["id"], ADA);
    assert!(users["Resources"][0]["meta"]["created"].as_str().unwrap().starts_with("2026-11-30T08:06:"));
    let (status, group) = get(&format!("{}/Groups/{PIONEERS}", server.base()), SECOND);
    assert_eq!(status, 200, "{group}");
    let mut members: Vec<&str> =
        group["members"].as_array().unwrap().iter().map(|m| m["value"].as_str().unwrap()).collect();
    members.sort();
    assert_eq!(members, [ADA, GRACE]);
    let (status, _) = get(&format!("{}/Users", server.base()), "a-bootstrap-token-that-must-not-register");
    assert_eq!(status, 401, "a database with tokens registers no bootstrap token");

    // The data is the tenant 'default', at its own URL too.
    let tenant_url = format!("{}/t/default/scim/v2", server.root());
    let (status, ada) = get(&format!("{tenant_url}/Users/{ADA}"), BOOTSTRAP);
    assert_eq!((status, ada["meta"]["location"].as_str()), (200, Some(format!("{tenant_url}/Users/{ADA}").as_str())));
    let list = ok(&db, &["tenant", "list"]);
    assert_eq!(cell(&list, "default", "STATE"), "active");
    assert_eq!(cell(&list, "default", "USERS"), "2");
    assert_eq!(cell(&list, "default", "GROUPS"), "1");
    let tokens =
        poll(|| ok(&db, &["token", "list"]), |out| cell(out, &token_id(out, "second"), "LAST USED") != "never");
    assert!(cell(&tokens, &token_id(&tokens, "second"), "LAST USED").starts_with(&today()), "{tokens}");
    assert_eq!(cell(&tokens, &token_id(&tokens, "bootstrap"), "EXPIRES"), "never");

    // The retired user can come back; uniqueness still holds.
    let alan =
        serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "alan@example.com"});
    assert_eq!(http(Method::POST, &format!("{}/Users", server.base()), BOOTSTRAP, Some(alan)).0, 201);
    let ada_again =
        serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ADA@example.com"});
    assert_eq!(http(Method::POST, &format!("{}/Users", server.base()), BOOTSTRAP, Some(ada_again)).0, 409);
    drop(server);

    // And again after a restart on the upgraded file.
    let server = Scimd::serve(&db, "x", &[], None);
    assert_eq!(get(&format!("{}/Users", server.base()), BOOTSTRAP).1["totalResults"], 3);
}

fn token_id(list: &str, name: &str) -> String {
    let rows = table(list);
    let name_col = rows[0].iter().position(|h| h == "NAME").unwrap();
    rows.iter().find(|r| r.get(name_col).is_some_and(|n| n == name)).unwrap_or_else(|| panic!("no {name} in {list}"))[0]
        .clone()
}

// ---------------------------------------------------------------- commands

#[test]
fn tenant_and_token_commands() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("s.db").display());

    // Before any start: two lines a script reads, and nothing else on stdout.
    let created = ok(&db, &["tenant", "create", "acme", "--name", "Acme Corp"]);
    assert_eq!(created.lines().count(), 2, "{created}");
    assert_eq!(field(&created, "SCIM base URL"), "http://127.0.0.1:8080/t/acme/scim/v2");
    let first = field(&created, "Bearer token");
    assert!(first.starts_with("scimd_") && first.len() > 40, "{first}");
    // Under a configured base URL.
    let (success, out, _) =
        run(&db, &["tenant", "create", "beta"], &[("SCIMD_BASE_URL", "https://scim.example.com/scim/v2")]);
    assert!(success);
    assert_eq!(field(&out, "SCIM base URL"), "https://scim.example.com/t/beta/scim/v2");
    assert!(refused(&db, &["tenant", "create", "acme"]).contains("exists"));
    assert!(refused(&db, &["tenant", "create", "Acme_Corp"]).contains("slug"));

    let server = Scimd::serve(&db, "default-token", &[], None);
    let acme = format!("{}/t/acme/scim/v2", server.root());
    let user = serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ada"});
    assert_eq!(http(Method::POST, &format!("{acme}/Users"), &first, Some(user)).0, 201);
    assert_eq!(get(&format!("{}/Users", server.base()), "default-token").1["totalResults"], 0);

    // The list: slug, name, state, counts, last SCIM request.
    let list = poll(|| ok(&db, &["tenant", "list"]), |out| cell(out, "acme", "LAST REQUEST") != "never");
    assert_eq!(table(&list)[0], ["SLUG", "NAME", "STATE", "USERS", "GROUPS", "LAST REQUEST"]);
    let slugs: Vec<String> = table(&list)[1..].iter().map(|r| r[0].clone()).collect();
    assert_eq!(slugs, ["acme", "beta", "default"]);
    assert_eq!(cell(&list, "acme", "NAME"), "Acme Corp");
    assert_eq!(cell(&list, "acme", "USERS"), "1");
    assert_eq!(cell(&list, "beta", "USERS"), "0");
    assert!(cell(&list, "acme", "LAST REQUEST").starts_with(&today()), "{list}");
    assert_eq!(cell(&list, "beta", "LAST REQUEST"), "never");

    // Tokens: rotation with an expiry, last use, revocation.
    let second = ok(&db, &["token", "create", "--tenant", "acme", "--name", "rotation", "--expires-in", "90d"]);
    let second = second.trim().to_string();
    assert_eq!(get(&format!("{acme}/Users"), &second).0, 200);
    assert_eq!(get(&format!("{acme}/Users"), &first).0, 200, "the first token still works");
    let tokens = poll(
        || ok(&db, &["token", "list", "--tenant", "acme"]),
        |out| cell(out, &token_id(out, "rotation"), "LAST USED") != "never",
    );
    assert_eq!(table(&tokens)[0], ["ID", "NAME", "CREATED", "EXPIRES", "LAST USED", "STATUS"]);
    assert!(!tokens.contains(&first) && !tokens.contains(&second), "secrets are never listed");
    let rotation = token_id(&tokens, "rotation");
    let expires = cell(&tokens, &rotation, "EXPIRES");
    let expires = time::OffsetDateTime::parse(&expires, &time::format_description::well_known::Rfc3339).unwrap();
    let hours = (expires - time::OffsetDateTime::now_utc()).whole_hours();
    assert!((89 * 24..=90 * 24).contains(&hours), "{tokens}");
    assert!(cell(&tokens, &rotation, "LAST USED").starts_with(&today()));
    let initial = token_id(&tokens, "initial");
    assert_eq!(cell(&tokens, &initial, "EXPIRES"), "never");
    assert!(refused(&db, &["token", "create", "--tenant", "nobody"]).contains("tenant 'nobody' not found"));
    assert!(refused(&db, &["token", "create", "--tenant", "acme", "--expires-in", "soon"]).contains("lifetime"));
    assert!(refused(&db, &["token", "revoke", &initial]).contains("not found"), "another tenant's token");
    ok(&db, &["token", "revoke", &initial, "--tenant", "acme"]);
    refused_soon(&format!("{acme}/Users"), &first);
    assert_eq!(get(&format!("{acme}/Users"), &second).0, 200);
    let revoked = ok(&db, &["token", "list", "--tenant", "acme"]);
    assert!(cell(&revoked, &initial, "STATUS").starts_with("revoked "));
    // Without --tenant: the default tenant, as before tenants.
    let default_tokens = ok(&db, &["token", "list"]);
    assert_eq!(table(&default_tokens).len(), 2, "{default_tokens}");
    assert_eq!(table(&default_tokens)[1][1], "bootstrap");

    // Disable, enable, delete.
    ok(&db, &["tenant", "disable", "acme"]);
    assert_eq!(cell(&ok(&db, &["tenant", "list"]), "acme", "STATE"), "disabled");
    refused_soon(&format!("{acme}/Users"), &second);
    ok(&db, &["tenant", "enable", "acme"]);
    assert_eq!(get(&format!("{acme}/Users"), &second).1["totalResults"], 1, "the data stayed");
    assert!(refused(&db, &["tenant", "disable", "nobody"]).contains("not found"));
    assert!(refused(&db, &["tenant", "delete", "acme"]).contains("--yes"));
    assert_eq!(get(&format!("{acme}/Users"), &second).0, 200, "nothing is deleted without --yes");
    ok(&db, &["tenant", "delete", "acme", "--yes"]);
    refused_soon(&format!("{acme}/Users"), &second);
    assert!(!ok(&db, &["tenant", "list"]).contains("acme"));
    assert!(refused(&db, &["tenant", "delete", "acme", "--yes"]).contains("not found"));

    // Admin tokens open the admin API, and only it.
    let admin_out = ok(&db, &["admin-token", "create", "--name", "onboarding"]);
    let admin = admin_out.trim().to_string();
    assert!(admin.starts_with("scimd_admin_"));
    let admin_url = format!("{}/admin/v1/tenants", server.root());
    assert_eq!(get(&admin_url, &admin).0, 200);
    assert_eq!(get(&admin_url, &second).0, 401);
    assert_eq!(get(&format!("{}/Users", server.base()), &admin).0, 401);
    let admins = ok(&db, &["admin-token", "list"]);
    let id = token_id(&admins, "onboarding");
    assert!(!admins.contains(&admin));
    ok(&db, &["admin-token", "revoke", &id]);
    refused_soon(&admin_url, &admin);
    assert!(refused(&db, &["admin-token", "revoke", &id]).contains("not found"));
}

/// The admin API on a listener of its own (`admin_listen`), and not on the SCIM one; or
/// switched off.
#[test]
fn the_admin_api_listens_where_it_is_told() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("s.db").display());
    let admin = ok(&db, &["admin-token", "create"]).trim().to_string();
    let admin_port = common::process::free_port();
    let listen = format!("127.0.0.1:{admin_port}");
    let server = Scimd::serve(&db, "scim-token", &[("SCIMD_ADMIN_LISTEN", &listen)], None);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", admin_port)).is_err() {
        assert!(Instant::now() < deadline, "the admin listener did not open");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(get(&format!("http://{listen}/admin/v1/tenants"), &admin).0, 200);
    assert_eq!(get(&format!("{}/admin/v1/tenants", server.root()), &admin).0, 404);
    assert_eq!(get(&format!("http://{listen}/scim/v2/Users"), "scim-token").0, 404, "no SCIM on the admin listener");
    assert_eq!(get(&format!("{}/Users", server.base()), "scim-token").0, 200);
    drop(server);

    let server = Scimd::serve(&db, "scim-token", &[("SCIMD_ADMIN_API", "false")], None);
    assert_eq!(get(&format!("{}/admin/v1/tenants", server.root()), &admin).0, 404);
    assert_eq!(get(&format!("{}/Users", server.base()), "scim-token").0, 200);
}
