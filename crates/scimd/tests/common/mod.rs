//! Test harness: the real application on a free port, with a fresh SQLite database.
#![allow(dead_code)]

pub mod pgwire;
pub mod process;
pub mod proxy;
pub mod receiver;

use reqwest::{Method, StatusCode};
use scimd::config::Config;
use scimd::server::{Backend, build_app, ensure_tenant, open_store};
use scimd_core::tokens::{Scope, TokenRequest, create_token};
use serde_json::{Value, json};

pub struct TestServer {
    /// The SCIM base URL of the token's tenant (`/scim/v2`).
    pub base: String,
    /// `http://127.0.0.1:PORT`.
    pub root: String,
    pub token: String,
    pub client: reqwest::Client,
    pub config: Config,
    pub backend: Backend,
    pub dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// Asserts a SCIM Error body with this status and scimType.
    pub fn assert_error(&self, status: u16, scim_type: Option<&str>) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(self.headers["content-type"], "application/scim+json", "{}", self.body);
        assert_eq!(self.body["schemas"], json!(["urn:ietf:params:scim:api:messages:2.0:Error"]), "{}", self.body);
        assert_eq!(self.body["status"], json!(status.to_string()), "status is a string: {}", self.body);
        assert!(self.body["detail"].is_string(), "{}", self.body);
        match scim_type {
            Some(t) => assert_eq!(self.body["scimType"], json!(t), "{}", self.body),
            None => assert!(self.body.get("scimType").is_none(), "{}", self.body),
        }
    }
}

/// Percent-encodes a query parameter's value (everything but RFC 3986's unreserved bytes).
pub fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The PostgreSQL database tests run against (`SCIMD_TEST_POSTGRES_URL`); tests that call
/// this are compiled as ignored when it is not set (`cfg(scimd_postgres)`).
pub fn postgres_url() -> String {
    std::env::var("SCIMD_TEST_POSTGRES_URL").expect("SCIMD_TEST_POSTGRES_URL names a PostgreSQL database")
}

/// Which database a test server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::with(|_| {}).await
    }

    /// A server on a fresh database of either kind; on PostgreSQL a fresh schema named
    /// after `test`.
    pub async fn on_db(db: Db, test: &str, tweak: impl FnOnce(&mut Config)) -> TestServer {
        match db {
            Db::Sqlite => Self::with(tweak).await,
            Db::Postgres => {
                let url = postgres_url();
                let schema = format!("s_{test}_{}", std::process::id());
                let pool = sqlx::PgPool::connect(&url).await.expect("PostgreSQL unreachable");
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE")))
                    .execute(&pool)
                    .await
                    .unwrap();
                pool.close().await;
                let mut config =
                    Config { database_url: url, pg_schema: Some(schema), pg_max_connections: 4, ..Config::default() };
                tweak(&mut config);
                Self::on(config, tempfile::tempdir().unwrap(), None).await
            }
        }
    }

    pub async fn with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mut config =
            Config { database_url: format!("sqlite://{}", dir.path().join("scimd.db").display()), ..Config::default() };
        tweak(&mut config);
        Self::on(config, dir, None).await
    }

    /// Starts the application for `config`; reuses `token` when given.
    pub async fn on(config: Config, dir: tempfile::TempDir, token: Option<String>) -> TestServer {
        let backend = open_store(&config).await.unwrap();
        ensure_tenant(&config, &backend).await.unwrap();
        let token = match token {
            Some(t) => t,
            None => {
                let req = TokenRequest {
                    scope: Scope::Scim,
                    tenant: &config.tenant,
                    name: "test",
                    secret: None,
                    expires: None,
                };
                create_token(backend.tokens.as_ref(), req, "2026-01-01T00:00:00.000000Z").await.unwrap().secret
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = build_app(&config, &backend, addr).unwrap();
        let http = config.http();
        let task = tokio::spawn(async move {
            scimd::http::serve(listener, app, http, std::future::pending()).await.unwrap();
        });
        TestServer {
            base: format!("http://{addr}{}", config.path_prefix),
            root: format!("http://{addr}"),
            token,
            client: reqwest::Client::new(),
            config,
            backend,
            dir,
            task,
        }
    }

    /// Stops serving and reopens the same database, as a restart would.
    pub async fn restart(self) -> TestServer {
        let token = self.token.clone();
        let (config, dir) = self.stop().await;
        Self::on(config, dir, Some(token)).await
    }

    /// Stops serving; the database stays (in the returned directory, for SQLite).
    pub async fn stop(self) -> (Config, tempfile::TempDir) {
        self.task.abort();
        let _ = self.task.await;
        let TestServer { config, dir, backend, .. } = self;
        drop(backend);
        (config, dir)
    }

    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Reply {
        self.request(method, &format!("{}{}", self.base, path), token, content_type, body, headers).await
    }

    /// A request to any URL.
    pub async fn request(
        &self,
        method: Method,
        url: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = self.client.request(method, url);
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Reply { status, headers, body }
    }

    /// A JSON request to `url` with `token`.
    pub async fn at(&self, method: Method, url: &str, token: &str, body: Option<Value>) -> Reply {
        let bytes = body.map(|b| serde_json::to_vec(&b).unwrap());
        let ct = bytes.as_ref().map(|_| "application/json");
        self.request(method, url, Some(token), ct, bytes, &[]).await
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call_with(method, path, body, &[]).await
    }

    pub async fn call_with(&self, method: Method, path: &str, body: Option<Value>, headers: &[(&str, &str)]) -> Reply {
        let bytes = body.map(|b| serde_json::to_vec(&b).unwrap());
        let ct = bytes.as_ref().map(|_| "application/scim+json");
        self.raw(method, path, Some(&self.token), ct, bytes, headers).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, ops: Value) -> Reply {
        self.call(
            Method::PATCH,
            path,
            Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.call(Method::DELETE, path, None).await
    }

    /// Creates a user and returns its id.
    pub async fn user(&self, user_name: &str) -> String {
        let r = self
            .post(
                "/Users",
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name,
            "emails": [{"value": format!("{user_name}@example.com"), "type": "work", "primary": true}]}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.body["id"].as_str().unwrap().to_string()
    }

    pub async fn group(&self, name: &str, members: &[&str]) -> String {
        let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
        let r = self.post("/Groups", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name, "members": members})).await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.body["id"].as_str().unwrap().to_string()
    }
}
