//! The HTTP layer under clients that misbehave, against the real binary over raw TCP:
//! stalled and idle connections are closed, a connection cap answers 503, SIGTERM always
//! exits, and every refusal of the HTTP parser carries a SCIM Error body.

mod common;

use common::process::Scimd;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const TOKEN: &str = "edge-token";

fn sqlite(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("e.db").display())
}

fn connect(s: &Scimd) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    stream
}

/// Reads until the server closes the connection or `limit` passes: what was read, and how
/// long until the close (None: still open).
fn until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, Option<Duration>) {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 16384];
    while start.elapsed() < limit {
        match stream.read(&mut buf) {
            Ok(0) => return (out, Some(start.elapsed())),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return (out, Some(start.elapsed())),
        }
    }
    (out, None)
}

/// A raw HTTP/1.1 answer: status, headers (lower-cased names), body.
fn parse(raw: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no complete answer: {text:?}"));
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.as_bytes().to_vec())
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Asserts a complete SCIM Error answer with this status.
fn assert_scim_error(raw: &[u8], status: u16, what: &str) {
    let (got, headers, body) = parse(raw);
    assert_eq!(got, status, "{what}: {}", String::from_utf8_lossy(raw));
    assert_eq!(header(&headers, "content-type"), Some("application/scim+json"), "{what}");
    let length: usize = header(&headers, "content-length").unwrap().parse().unwrap();
    assert_eq!(length, body.len(), "{what}: the whole body arrived");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error", "{what}");
    assert_eq!(body["status"], status.to_string(), "{what}");
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()), "{what}");
}

#[test]
fn stalled_and_idle_connections_are_closed_after_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let s = Scimd::serve(&sqlite(&dir), TOKEN, &[("SCIMD_HEADER_READ_TIMEOUT_SECS", "1")], None);
    // Slowloris: a header line every 200 ms, never the end of the head.
    let mut slow = connect(&s);
    slow.write_all(b"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\n").unwrap();
    let mut trickle = slow.try_clone().unwrap();
    let feeder = std::thread::spawn(move || {
        for i in 0..25 {
            if trickle.write_all(format!("X-Slow-{i}: y\r\n").as_bytes()).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let mut idle = connect(&s);
    let (_, slow_closed) = until_closed(&mut slow, Duration::from_secs(6));
    let (_, idle_closed) = until_closed(&mut idle, Duration::from_secs(6));
    feeder.join().unwrap();
    let slow_closed = slow_closed.expect("a stalled request head keeps its connection open");
    assert!(slow_closed < Duration::from_secs(4), "closed after {slow_closed:?}");
    assert!(idle_closed.is_some(), "an idle connection stays open");
    // The server goes on serving.
    let mut ok = connect(&s);
    ok.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let (raw, _) = until_closed(&mut ok, Duration::from_secs(5));
    assert_eq!(parse(&raw).0, 200);
}

#[test]
fn sigterm_exits_within_the_grace_period_whatever_clients_do() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("SCIMD_HEADER_READ_TIMEOUT_SECS", "120"), ("SCIMD_SHUTDOWN_GRACE_SECS", "2")];
    let mut s = Scimd::serve(&sqlite(&dir), TOKEN, &env, None);
    // Partial heads, an idle connection, and a kept-alive one that finished a request.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = connect(&s);
        c.write_all(b"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\nX-Partial: ").unwrap();
        held.push(c);
    }
    held.push(connect(&s));
    let mut kept = connect(&s);
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    held.push(kept);
    let start = Instant::now();
    s.terminate();
    let status = s.wait_exit(Duration::from_secs(8)).expect("scimd did not exit on SIGTERM");
    assert!(status.success(), "{status}");
    assert!(start.elapsed() < Duration::from_secs(5), "took {:?} for a 2 s grace period", start.elapsed());
}

#[test]
fn connections_past_the_cap_get_a_503_and_the_rest_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let s = Scimd::serve(&sqlite(&dir), TOKEN, &[("SCIMD_MAX_CONNECTIONS", "4")], None);
    // The start-up probe's connection holds a slot until its close is complete.
    std::thread::sleep(Duration::from_millis(300));
    let held: Vec<TcpStream> = (0..4).map(|_| connect(&s)).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut extra = connect(&s);
    let (raw, closed) = until_closed(&mut extra, Duration::from_secs(5));
    assert!(closed.is_some(), "the refused connection is closed: {}", String::from_utf8_lossy(&raw));
    assert_scim_error(&raw, 503, "over the cap");
    assert_eq!(header(&parse(&raw).1, "retry-after"), Some("1"));
    drop(held);
    // The slots come back as the held connections close.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = connect(&s);
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let (raw, _) = until_closed(&mut c, Duration::from_secs(3));
        if parse(&raw).0 == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "slots were not released: {}", String::from_utf8_lossy(&raw));
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn refusals_of_the_http_parser_are_scim_errors() {
    let dir = tempfile::tempdir().unwrap();
    let s = Scimd::serve(&sqlite(&dir), TOKEN, &[], None);
    let long_uri = format!("GET /scim/v2/Users?filter={} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000));
    let long_header = format!("GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "b".repeat(100_000));
    let many_headers = format!(
        "GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\n{}\r\n",
        (0..200).map(|i| format!("X-H{i}: v\r\n")).collect::<String>()
    );
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "a raw quote in the query",
            b"GET /scim/v2/Users?filter=userName%20eq%20\"x\" HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            400,
        ),
        ("a request line that is not HTTP", b"HELLO THERE\r\n\r\n".to_vec(), 400),
        ("a header without a name", b"GET /scim/v2/Users HTTP/1.1\r\n: x\r\n\r\n".to_vec(), 400),
        ("a 70 kB URI", long_uri.into_bytes(), 431),
        ("a 100 kB header", long_header.into_bytes(), 431),
        ("200 headers", many_headers.into_bytes(), 431),
    ];
    for (what, request, status) in cases {
        let mut c = connect(&s);
        c.write_all(&request).unwrap();
        let (raw, closed) = until_closed(&mut c, Duration::from_secs(5));
        assert!(closed.is_some(), "{what}: the connection is closed after the refusal");
        assert_scim_error(&raw, status, what);
    }
    // After a good request on the same connection, a bad one is refused the same way and
    // the good answer arrives intact.
    let mut c = connect(&s);
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /scim/v2/Users?x=\"y\" HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (raw, _) = until_closed(&mut c, Duration::from_secs(5));
    let text = String::from_utf8_lossy(&raw);
    let second = text.find("HTTP/1.1 400").unwrap_or_else(|| panic!("{text}"));
    assert!(text.starts_with("HTTP/1.1 200") && text[..second].ends_with("ok"), "{text}");
    assert_scim_error(&raw[second..], 400, "after a good request");
}

/// A request answered before its body is read (a wrong token, likewise a rate limit or the
/// token store unreachable; an unknown path or method; the admin API's own refusals) says
/// `Connection: close` and the connection closes: the server does not read a body it
/// refused to find where the next request starts, and a client told so does not send its
/// next request on a connection about to close (it would meet a reset, for a request the
/// server never saw). Without a body, or with a body read, the connection stays open.
#[test]
fn an_answer_that_leaves_the_body_unread_closes_the_connection_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let s = Scimd::serve(&sqlite(&dir), TOKEN, &[], None);
    let json = "Content-Type: application/scim+json\r\nContent-Length: 100\r\n";
    // The head alone: each of these is answered before any of the body arrives, by a
    // different layer.
    let refused = [
        (format!("PATCH /scim/v2/Users/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n{json}\r\n"), 401),
        (format!("POST /scim/v2/Nowhere HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n{json}\r\n"), 404),
        (
            format!(
                "PUT /scim/v2/ServiceProviderConfig HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n{json}\r\n"
            ),
            405,
        ),
        (format!("POST /nowhere HTTP/1.1\r\nHost: x\r\n{json}\r\n"), 404),
        ("POST /admin/v1/tenants HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n".to_string(), 401),
    ];
    for (head, status) in refused {
        let mut c = connect(&s);
        c.write_all(head.as_bytes()).unwrap();
        let (raw, closed) = until_closed(&mut c, Duration::from_secs(5));
        let (got, headers, _) = parse(&raw);
        assert_eq!(got, status, "{head}");
        assert_eq!(header(&headers, "connection"), Some("close"), "{head}");
        assert!(closed.is_some(), "the connection is closed after the answer to {head}");
        if !head.contains("/admin/") {
            assert_scim_error(&raw, status, &head);
        }
    }

    // A refusal without a body, and an answer that read its body, keep the connection.
    let mut c = connect(&s);
    c.write_all(b"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n\r\n").unwrap();
    let (raw, closed) = until_closed(&mut c, Duration::from_millis(800));
    assert_scim_error(&raw, 401, "a wrong token without a body");
    assert_eq!(header(&parse(&raw).1, "connection"), None);
    assert!(closed.is_none(), "the connection stays open for the next request");
    let body = r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"kept@example.com"}"#;
    let mut c = connect(&s);
    c.write_all(
        format!(
            "POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Type: application/scim+json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    let (raw, closed) = until_closed(&mut c, Duration::from_millis(800));
    assert_eq!(parse(&raw).0, 201, "{}", String::from_utf8_lossy(&raw));
    assert_eq!(header(&parse(&raw).1, "connection"), None);
    assert!(closed.is_none(), "a request whose body was read keeps its connection");
}

/// A body over the limit is refused before it is read; the client still gets the 413.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_413_reaches_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let s = Scimd::serve(&sqlite(&dir), TOKEN, &[], None);
    let client = reqwest::Client::new();
    let body = vec![b'a'; 3 * 1024 * 1024];
    for i in 0..20 {
        let r = client
            .post(format!("{}/Users", s.base()))
            .bearer_auth(TOKEN)
            .header("content-type", "application/scim+json")
            .body(body.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("attempt {i}: {e}"));
        assert_eq!(r.status(), 413, "attempt {i}");
        assert_eq!(r.headers()["connection"], "close", "the client is told not to reuse the connection");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["status"], "413");
    }
}

/// Thousands of connections that send nothing cost a bounded amount of memory: at most
/// `max_connections` are kept, each for at most the header timeout.
#[test]
fn idle_connections_are_cheap_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("SCIMD_MAX_CONNECTIONS", "1000"), ("SCIMD_HEADER_READ_TIMEOUT_SECS", "30")];
    let s = Scimd::serve(&sqlite(&dir), TOKEN, &env, None);
    let (before, _) = s.memory_kib();
    let mut held = Vec::new();
    for _ in 0..3000 {
        match TcpStream::connect(("127.0.0.1", s.port)) {
            Ok(c) => held.push(c),
            Err(e) => panic!("connect: {e}"),
        }
    }
    std::thread::sleep(Duration::from_millis(1500));
    let (now, peak) = s.memory_kib();
    let grown = now.saturating_sub(before);
    eprintln!("resident: {before} KiB before, {now} KiB with 3,000 connections (peak {peak} KiB)");
    assert!(grown < 48 * 1024, "3,000 idle connections grew the server by {grown} KiB");
    // It still answers.
    drop(held);
    let mut c = connect(&s);
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (raw, _) = until_closed(&mut c, Duration::from_secs(3));
        if !raw.is_empty() && parse(&raw).0 == 200 {
            break;
        }
        assert!(Instant::now() < deadline);
        c = connect(&s);
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    }
}
