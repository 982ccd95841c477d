//! The `scimd` binary as an operator uses it: first start, tokens, revocation, SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_scimd");

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn scimd(db: &str) -> Command {
    let mut c = Command::new(BIN);
    c.env("SCIMD_DATABASE_URL", db).env_remove("SCIMD_BOOTSTRAP_TOKEN").env_remove("SCIMD_CONFIG");
    c
}

fn start(db: &str, bootstrap: Option<&str>) -> (Server, String) {
    let port = free_port();
    let mut cmd = scimd(db);
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")]).stdout(Stdio::piped()).stderr(Stdio::null());
    if let Some(t) = bootstrap {
        cmd.env("SCIMD_BOOTSTRAP_TOKEN", t);
    }
    let mut server = Server { child: cmd.spawn().unwrap(), base: format!("http://127.0.0.1:{port}/scim/v2") };
    let stdout = server.child.stdout.take().unwrap();
    // The first start prints the token; read what it printed until the server answers.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut printed = String::new();
    while Instant::now() < deadline {
        while let Ok(line) = rx.try_recv() {
            printed.push_str(&line);
            printed.push('\n');
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            std::thread::sleep(Duration::from_millis(100));
            while let Ok(line) = rx.try_recv() {
                printed.push_str(&line);
                printed.push('\n');
            }
            return (server, printed);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("scimd did not start");
}

fn status(base: &str, token: &str) -> u16 {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        reqwest::Client::new().get(format!("{base}/Users")).bearer_auth(token).send().await.unwrap().status().as_u16()
    })
}

#[test]
fn first_start_prints_a_token_once_and_stores_only_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let db = format!("sqlite://{}", path.display());
    let (server, printed) = start(&db, None);
    let token = printed
        .lines()
        .find_map(|l| l.trim().strip_prefix("Bearer token:"))
        .map(|t| t.trim().to_string())
        .expect(&printed);
    assert!(printed.contains(&server.base), "prints the URL to give the identity provider: {printed}");
    assert_eq!(status(&server.base, &token), 200);
    drop(server);
    let raw = std::fs::read(&path).unwrap();
    let wal = std::fs::read(dir.path().join("s.db-wal")).unwrap_or_default();
    let needle = token.as_bytes();
    assert!(
        !raw.windows(needle.len()).any(|w| w == needle) && !wal.windows(needle.len()).any(|w| w == needle),
        "the secret is not stored"
    );
    // The second start prints nothing new.
    let (_server, printed) = start(&db, None);
    assert!(!printed.contains("Bearer token"), "{printed}");
}

#[test]
fn bootstrap_token_create_list_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("s.db").display());
    let (server, printed) = start(&db, Some("boot-secret-123"));
    assert!(!printed.contains("boot-secret-123"));
    assert_eq!(status(&server.base, "boot-secret-123"), 200);

    let out = scimd(&db).args(["token", "create", "--name", "okta"]).output().unwrap();
    assert!(out.status.success());
    let secret = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(secret.starts_with("scimd_"));
    assert_eq!(status(&server.base, &secret), 200);

    let list = String::from_utf8(scimd(&db).args(["token", "list"]).output().unwrap().stdout).unwrap();
    assert!(list.contains("okta") && list.contains("bootstrap"), "{list}");
    assert!(!list.contains(&secret) && !list.contains("boot-secret-123"), "secrets are never listed");
    let id = list.lines().find(|l| l.contains("okta")).unwrap().split_whitespace().next().unwrap().to_string();

    assert!(scimd(&db).args(["token", "revoke", &id]).status().unwrap().success());
    // Revoked by another process: the server stops taking it within half a second.
    let revoked = Instant::now();
    while status(&server.base, &secret) != 401 {
        assert!(revoked.elapsed() < Duration::from_millis(600), "the revoked token still works");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(status(&server.base, "boot-secret-123"), 200);
    assert!(!scimd(&db).args(["token", "revoke", &id]).status().unwrap().success(), "revoking twice fails");
}

#[test]
fn sigterm_shuts_down_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("s.db").display());
    let (mut server, _) = start(&db, Some("t"));
    let pid = server.child.id();
    assert!(Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(code) = server.child.try_wait().unwrap() {
            assert!(code.success(), "exit status {code}");
            break;
        }
        assert!(Instant::now() < deadline, "scimd did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn bad_configuration_is_refused_clearly() {
    let out = scimd("sqlite::memory:").env("SCIMD_DELETE_POLICY", "shred").args(["migrate"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("delete_policy"));
    // A streamed answer's snapshot must not be ended by PostgreSQL before the request is;
    // checked before any connection is made.
    let out = scimd("postgres://nobody@127.0.0.1:1/none")
        .env("SCIMD_REQUEST_TIMEOUT_SECS", "90")
        .args(["migrate"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("pg_idle_in_transaction_timeout_secs (60) must be longer than request_timeout_secs (90)"),
        "{text}"
    );
    let out = scimd("sqlite::memory:").env("SCIMD_REQUEST_TIMEOUT_SECS", "90").args(["migrate"]).output().unwrap();
    assert!(
        out.status.success(),
        "a PostgreSQL setting does not bind SQLite: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn tokens_never_reach_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("s.db").display());
    let log = dir.path().join("scimd.log");
    let port = free_port();
    let mut child = scimd(&db)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("SCIMD_BOOTSTRAP_TOKEN", "very-secret-bootstrap-token")
        .env("SCIMD_LOG_LEVEL", "trace")
        .env("SCIMD_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    let base = format!("http://127.0.0.1:{port}/scim/v2");
    assert_eq!(status(&base, "very-secret-bootstrap-token"), 200);
    assert_eq!(status(&base, "a-wrong-secret-token-value"), 401);
    let _ = child.kill();
    let _ = child.wait();
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("request"), "the requests were logged: {logged}");
    assert!(!logged.contains("very-secret-bootstrap-token"), "a token reached the logs");
    assert!(!logged.contains("a-wrong-secret-token-value"), "a presented token reached the logs");
}

/// Start-up errors say what is wrong, with the values involved and what to do.
#[test]
fn start_up_errors_say_what_is_wrong() {
    let err = |cmd: &mut Command| {
        let out = cmd.output().unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let text = err(scimd("sqlite::memory:").env("SCIMD_MAX_PAGE_SIZE", "2").arg("migrate"));
    assert!(
        text.contains("default_page_size (100)")
            && text.contains("max_page_size (2)")
            && text.contains("SCIMD_DEFAULT_PAGE_SIZE"),
        "{text}"
    );
    // Nothing listens on port 1.
    let text = err(scimd("postgres://scimd:secret@127.0.0.1:1/scimd").arg("migrate"));
    assert!(text.contains("127.0.0.1:1") && text.contains("connection refused"), "{text}");
    assert!(!text.contains("secret"), "the password stays out of messages: {text}");
    let text = err(scimd("postgres://scimd@no-such-host.invalid:5432/scimd").arg("migrate"));
    assert!(text.contains("no-such-host.invalid") && text.contains("unknown"), "{text}");
}

#[test]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
fn a_missing_postgres_database_is_named() {
    let admin = std::env::var("SCIMD_TEST_POSTGRES_URL").unwrap();
    let url = format!("{}/no_such_database_here", admin.rsplit_once('/').unwrap().0);
    let out = scimd(&url).arg("migrate").output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(text.contains("no database 'no_such_database_here'") && text.contains("createdb"), "{text}");
}

/// `scimd backup` writes a consistent copy while the server takes writes; the copy serves
/// as a database of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_while_serving_and_restore() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("live.db").display());
    let (server, _) = start(&db, Some("backup-token"));
    let client = reqwest::Client::new();
    let base = server.base.clone();
    let create = move |name: String| {
        let (client, base) = (reqwest::Client::new(), base.clone());
        async move {
            let body = serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name});
            client
                .post(format!("{base}/Users"))
                .bearer_auth("backup-token")
                .header("content-type", "application/scim+json")
                .body(body.to_string())
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    for i in 0..50 {
        assert_eq!(create(format!("before{i}")).await, 201);
    }
    // Writes go on while the copy is taken.
    let writer = tokio::spawn({
        let create = create.clone();
        async move {
            for i in 0..200 {
                assert_eq!(create(format!("during{i}")).await, 201);
            }
        }
    });
    let copy = dir.path().join("copy.db");
    let out = scimd(&db).args(["backup"]).arg(&copy).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    writer.await.unwrap();
    let again = scimd(&db).args(["backup"]).arg(&copy).output().unwrap();
    assert!(!again.status.success(), "an existing file is not overwritten");
    // Restored: the copy serves, with everything written before it was taken.
    let restored = format!("sqlite://{}", copy.display());
    let store = scimd_sql::SqliteStore::open(&restored, &Default::default()).await.unwrap();
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
    drop(store);
    let (copy_server, _) = start(&restored, None);
    let r = client.get(format!("{}/Users?count=0", copy_server.base)).bearer_auth("backup-token").send().await.unwrap();
    let total = r.json::<serde_json::Value>().await.unwrap()["totalResults"].as_u64().unwrap();
    assert!((50..=250).contains(&total), "{total}");
    let out = scimd("postgres://x@127.0.0.1:1/x").args(["backup", "/tmp/never"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("pg_dump"));
}
