//! What an operator can do to a tenant's event streams, with its rules, whoever asks: the
//! admin API and the `scimd stream` commands call these.

use crate::jws;
use crate::set;
use scimd_core::StoreError;
use scimd_core::events::EventLog;
use scimd_core::streams::{Alg, Delivery, Format, Stream, StreamState, StreamStore};
use scimd_core::tenants::TenantStore;
use scimd_core::tokens::{hash_secret, random_secret};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// What failed, for an answer or a message.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The request is not acceptable: a code and why.
    #[error("{1}")]
    Invalid(&'static str, String),
    #[error("{0} not found")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Result<T> = std::result::Result<T, StreamError>;

/// Where a stream starts, or a replay starts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Start {
    /// After the newest event: only what happens from now on.
    #[default]
    Now,
    /// From the oldest event kept.
    Beginning,
    /// After this sequence number.
    After(i64),
}

impl<'de> Deserialize<'de> for Start {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Start, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Start::parse(&s)
                .ok_or_else(|| serde::de::Error::custom("expected \"now\", \"beginning\" or a sequence number")),
            Value::Number(n) => n
                .as_i64()
                .filter(|n| *n >= 0)
                .map(Start::After)
                .ok_or_else(|| serde::de::Error::custom("a sequence number is a whole number, 0 or more")),
            _ => Err(serde::de::Error::custom("expected \"now\", \"beginning\" or a sequence number")),
        }
    }
}

impl Start {
    /// `now`, `beginning`, or a sequence number (as the command line takes it).
    pub fn parse(text: &str) -> Option<Start> {
        match text {
            "now" => Some(Start::Now),
            "beginning" => Some(Start::Beginning),
            n => n.parse::<i64>().ok().filter(|n| *n >= 0).map(Start::After),
        }
    }
}

/// A new stream, as asked for.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamRequest {
    pub name: Option<String>,
    pub delivery: Option<Delivery>,
    /// Push: the receiver's URL (http or https).
    pub endpoint: Option<String>,
    /// Push: the `Authorization` header the receiver wants, e.g. `Bearer …`.
    pub authorization: Option<String>,
    /// The SETs' `aud`; by default the receiver's URL (push) or the stream's poll URL.
    pub audience: Option<String>,
    pub format: Option<Format>,
    /// Event URIs (RFC 9967) or their last word (`create`, `deactivate`, …); all when empty.
    #[serde(default)]
    pub event_types: Vec<String>,
    pub alg: Option<Alg>,
    #[serde(default)]
    pub from: Start,
}

/// A stream just made, with the secrets shown this once.
pub struct Created {
    pub stream: Stream,
    /// HS256: the key to verify its SETs with (base64url).
    pub secret: Option<String>,
    /// Poll: the bearer token that opens its poll endpoint.
    pub poll_token: Option<String>,
}

/// Longest stream name, receiver URL, audience and `Authorization` value, in characters.
const MAX_NAME: usize = 200;
const MAX_TEXT: usize = 2048;

/// A tenant's streams, and the log they read.
#[derive(Clone)]
pub struct Streams {
    pub store: Arc<dyn StreamStore>,
    pub log: Arc<dyn EventLog>,
    pub tenants: Arc<dyn TenantStore>,
    /// The server's public root, for poll URLs (`{root}/events/streams/{id}/poll`).
    pub root: String,
}

fn invalid(code: &'static str, msg: impl Into<String>) -> StreamError {
    StreamError::Invalid(code, msg.into())
}

fn bounded(what: &str, text: &str, max: usize) -> Result<String> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > max || text.chars().any(char::is_control) {
        return Err(invalid("invalid_request", format!("{what} has 1 to {max} characters and no control characters")));
    }
    Ok(text.to_string())
}

/// A receiver's URL: absolute http or https, with a host.
fn endpoint(text: &str) -> Result<String> {
    let text = bounded("endpoint", text, MAX_TEXT)?;
    let bad = || invalid("invalid_endpoint", format!("'{text}' is not an http:// or https:// URL"));
    let url = reqwest::Url::parse(&text).map_err(|_| bad())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(bad());
    }
    // Credentials in a URL end up in logs and error messages; they go in `authorization`.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("invalid_endpoint", "put the receiver's credentials in authorization, not in the URL"));
    }
    Ok(text)
}

/// Event types as stored: full RFC 9967 URIs without a `:full`/`:notice` qualifier.
fn event_types(asked: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for t in asked {
        let bare = t.trim().trim_end_matches(":full").trim_end_matches(":notice");
        let uri = if bare.contains(':') { bare.to_string() } else { format!("{}:{bare}", set::PROV) };
        if !set::EVENT_TYPES.contains(&uri.as_str()) {
            return Err(invalid(
                "invalid_event_type",
                format!("'{t}' is not an event type; use one of {}", set::EVENT_TYPES.join(", ")),
            ));
        }
        if !out.contains(&uri) {
            out.push(uri);
        }
    }
    Ok(out)
}

/// A new poll token: shown once, stored as its hash.
fn poll_token() -> String {
    random_secret("scimd_poll_")
}

impl Streams {
    /// The URL a poll stream's receiver POSTs to.
    pub fn poll_url(&self, id: &str) -> String {
        format!("{}/events/streams/{id}/poll", self.root.trim_end_matches('/'))
    }

    async fn tenant(&self, slug: &str) -> Result<()> {
        match self.tenants.tenant(slug).await? {
            Some(_) => Ok(()),
            None => Err(StreamError::NotFound(format!("tenant '{slug}'"))),
        }
    }

    async fn cursor(&self, tenant: &str, start: Start) -> Result<i64> {
        Ok(match start {
            Start::Now => self.log.last_seq(tenant).await?,
            Start::Beginning => 0,
            Start::After(n) => n,
        })
    }

    pub async fn create(&self, tenant: &str, req: StreamRequest) -> Result<Created> {
        self.tenant(tenant).await?;
        let delivery = req.delivery.unwrap_or(if req.endpoint.is_some() { Delivery::Push } else { Delivery::Poll });
        let id = uuid::Uuid::now_v7().simple().to_string();
        let (endpoint, authorization) = match delivery {
            Delivery::Push => {
                let url = req
                    .endpoint
                    .as_deref()
                    .ok_or_else(|| invalid("invalid_endpoint", "a push stream needs the receiver's URL (endpoint)"))?;
                let auth = req.authorization.as_deref().map(|a| bounded("authorization", a, MAX_TEXT)).transpose()?;
                (Some(endpoint(url)?), auth)
            }
            Delivery::Poll => {
                if req.endpoint.is_some() || req.authorization.is_some() {
                    return Err(invalid(
                        "invalid_request",
                        "a poll stream has no endpoint or authorization: its receiver calls scimd",
                    ));
                }
                (None, None)
            }
        };
        let audience = match req.audience.as_deref() {
            Some(a) => bounded("audience", a, MAX_TEXT)?,
            None => endpoint.clone().unwrap_or_else(|| self.poll_url(&id)),
        };
        let alg = req.alg.unwrap_or(Alg::HS256);
        let secret = (alg == Alg::HS256).then(jws::new_secret);
        let token = (delivery == Delivery::Poll).then(poll_token);
        let stream = Stream {
            id,
            tenant: tenant.to_string(),
            name: bounded("name", req.name.as_deref().unwrap_or("events"), MAX_NAME)?,
            delivery,
            endpoint,
            authorization,
            audience,
            format: req.format.unwrap_or(Format::Full),
            event_types: event_types(&req.event_types)?,
            alg,
            secret: secret.clone(),
            state: StreamState::Active,
            cursor: self.cursor(tenant, req.from).await?,
            created: scimd_proto::value::now(),
            delivery_state: Default::default(),
        };
        self.store.create_stream(&stream, token.as_deref().map(hash_secret).as_deref()).await?;
        Ok(Created { stream, secret, poll_token: token })
    }

    pub async fn list(&self, tenant: &str) -> Result<Vec<Stream>> {
        self.tenant(tenant).await?;
        Ok(self.store.streams(tenant).await?)
    }

    pub async fn get(&self, tenant: &str, id: &str) -> Result<Stream> {
        self.store.stream(tenant, id).await?.ok_or_else(|| StreamError::NotFound(format!("stream '{id}'")))
    }

    /// Events the stream has still to deliver (or its receiver to acknowledge).
    pub async fn backlog(&self, stream: &Stream) -> Result<u64> {
        Ok(self.log.count_after(&stream.tenant, stream.cursor).await?)
    }

    async fn set_state(&self, tenant: &str, id: &str, state: StreamState, cursor: Option<i64>) -> Result<Stream> {
        self.store
            .set_stream_state(tenant, id, state, cursor)
            .await?
            .ok_or_else(|| StreamError::NotFound(format!("stream '{id}'")))
    }

    pub async fn pause(&self, tenant: &str, id: &str) -> Result<Stream> {
        self.set_state(tenant, id, StreamState::Paused, None).await
    }

    /// Delivery goes on where it stopped (a failing stream's next attempt is now).
    pub async fn resume(&self, tenant: &str, id: &str) -> Result<Stream> {
        self.set_state(tenant, id, StreamState::Active, None).await
    }

    /// Delivery starts over from `start` (and the stream is active again).
    pub async fn replay(&self, tenant: &str, id: &str, start: Start) -> Result<Stream> {
        self.get(tenant, id).await?;
        let cursor = self.cursor(tenant, start).await?;
        self.set_state(tenant, id, StreamState::Active, Some(cursor)).await
    }

    /// A new HS256 secret, returned this once; SETs signed from now on use it.
    pub async fn rotate_secret(&self, tenant: &str, id: &str) -> Result<String> {
        let stream = self.get(tenant, id).await?;
        if stream.alg != Alg::HS256 {
            return Err(invalid(
                "invalid_request",
                "an ES256 stream is signed with the server's keys: it has no secret",
            ));
        }
        let secret = jws::new_secret();
        self.store.set_stream_secret(tenant, id, &secret).await?;
        Ok(secret)
    }

    pub async fn delete(&self, tenant: &str, id: &str) -> Result<()> {
        if self.store.delete_stream(tenant, id).await? {
            Ok(())
        } else {
            Err(StreamError::NotFound(format!("stream '{id}'")))
        }
    }

    /// A stream as the operator sees it: never its secret or the receiver's credentials.
    pub async fn view(&self, s: &Stream) -> Result<Value> {
        let backlog = self.backlog(s).await?;
        let d = &s.delivery_state;
        let mut v = json!({
            "id": s.id, "name": s.name, "delivery": s.delivery, "state": s.state,
            "format": s.format, "alg": s.alg, "audience": s.audience, "event_types": s.event_types,
            "created": s.created, "cursor": s.cursor, "backlog": backlog,
            "delivered": d.delivered, "attempts": d.attempts, "failing_since": d.failing_since,
            "next_attempt": d.next_attempt, "last_error": d.last_error,
        });
        match s.delivery {
            Delivery::Push => {
                v["endpoint"] = json!(s.endpoint);
                v["authorization"] = json!(s.authorization.is_some());
            }
            Delivery::Poll => v["poll_url"] = json!(self.poll_url(&s.id)),
        }
        Ok(v)
    }

    /// The answer to a creation: the view, the secret and the poll token, shown once.
    pub async fn created_view(&self, c: &Created) -> Result<Value> {
        let mut v = self.view(&c.stream).await?;
        if let Some(secret) = &c.secret {
            v["secret"] = json!(secret);
        }
        if let Some(token) = &c.poll_token {
            v["poll_token"] = json!(token);
        }
        Ok(v)
    }
}
