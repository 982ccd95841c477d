//! A push receiver (RFC 8935) on a free port: it verifies every SET it is sent with a
//! standard JWT library, records it, and fails on request as a bad receiver would.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the receiver answers.
#[derive(Debug, Clone)]
pub enum Mode {
    /// 202 Accepted to everything.
    Accept,
    /// Each request fails with probability `per_mille`/1000 (from a seeded generator), in one
    /// of four ways: a 500, a 400 with an RFC 8935 error body, a reply slower than the
    /// sender's timeout, or a connection dropped without an answer; the rest are accepted.
    /// The requests numbered in `CERTAIN_FAILURES` fail too, one in each way, so that a run
    /// that sends few requests still meets every kind of failure.
    Random { per_mille: u32, seed: u64 },
    /// This status (and an RFC 8935 error body when it is 400) to everything.
    Refuse(u16),
}

pub struct Received {
    /// Every accepted SET's claims, in the order they arrived (redeliveries included).
    pub sets: Vec<Value>,
    /// SETs whose signature, audience, issuer or media type did not verify.
    pub rejected: Vec<String>,
    /// Requests answered with a failure on purpose.
    pub failed: u64,
}

struct Inner {
    mode: Mutex<Mode>,
    key: Mutex<Option<(DecodingKey, Algorithm)>>,
    audience: Mutex<String>,
    issuer: String,
    received: Mutex<Received>,
    requests: AtomicU64,
    rng: Mutex<Option<StdRng>>,
}

pub struct Receiver {
    pub url: String,
    inner: Arc<Inner>,
}

impl Receiver {
    /// A receiver at `http://127.0.0.1:PORT/events` expecting SETs issued by `issuer`.
    pub async fn start(mode: Mode, issuer: &str) -> Receiver {
        let inner = Arc::new(Inner {
            mode: Mutex::new(mode),
            key: Mutex::new(None),
            audience: Mutex::new(String::new()),
            issuer: issuer.into(),
            received: Mutex::new(Received { sets: Vec::new(), rejected: Vec::new(), failed: 0 }),
            requests: AtomicU64::new(0),
            rng: Mutex::new(None),
        });
        let app = Router::new().route("/events", axum::routing::post(receive)).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/events", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        *inner.audience.lock().unwrap() = url.clone();
        Receiver { url, inner }
    }

    /// Verifies with a stream's HS256 secret (base64url, as the admin API shows it).
    pub fn hs256(&self, secret: &str) {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(secret).unwrap();
        *self.inner.key.lock().unwrap() = Some((DecodingKey::from_secret(&bytes), Algorithm::HS256));
    }

    /// Verifies with the first key of a JWK Set.
    pub fn es256(&self, jwks: &Value) {
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwks["keys"][0].clone()).unwrap();
        *self.inner.key.lock().unwrap() = Some((DecodingKey::from_jwk(&jwk).unwrap(), Algorithm::ES256));
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.inner.mode.lock().unwrap() = mode;
    }

    pub fn received<T>(&self, read: impl FnOnce(&Received) -> T) -> T {
        read(&self.inner.received.lock().unwrap())
    }

    /// The sequence numbers of the SETs received (from their `jti`, `{stream}.{seq}`), in order.
    pub fn seqs(&self) -> Vec<i64> {
        self.received(|r| r.sets.iter().map(seq_of).collect())
    }
}

pub fn seq_of(set: &Value) -> i64 {
    set["jti"]
        .as_str()
        .and_then(|j| j.rsplit_once('.'))
        .and_then(|(_, n)| n.parse().ok())
        .expect("a jti {stream}.{seq}")
}

/// The requests (counted from 1) that fail in `Mode::Random` whatever the dice say.
const CERTAIN_FAILURES: [u64; 4] = [3, 10, 20, 30];

async fn receive(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let number = inner.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let mode = inner.mode.lock().unwrap().clone();
    match mode {
        Mode::Accept => {}
        Mode::Random { per_mille, seed } => {
            let roll = {
                let mut rng = inner.rng.lock().unwrap();
                let rng = rng.get_or_insert_with(|| StdRng::seed_from_u64(seed));
                (rng.random_range(0..1000u32), rng.random_range(0..4u32))
            };
            let certain = CERTAIN_FAILURES.iter().position(|&n| n == number);
            if roll.0 < per_mille || certain.is_some() {
                inner.received.lock().unwrap().failed += 1;
                match certain.map_or(roll.1, |way| way as u32) {
                    0 => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
                    1 => {
                        let err = json!({"err": "invalid_request", "description": "try again later"});
                        return (StatusCode::BAD_REQUEST, axum::Json(err)).into_response();
                    }
                    2 => {
                        // Longer than the sender's timeout: it must give up on this one and retry.
                        tokio::time::sleep(Duration::from_secs(3)).await;
                        return StatusCode::ACCEPTED.into_response();
                    }
                    // The connection is dropped with no answer (the task serving it ends).
                    _ => std::panic::resume_unwind(Box::new("dropped")),
                }
            }
        }
        Mode::Refuse(status) => {
            inner.received.lock().unwrap().failed += 1;
            let err = json!({"err": "access_denied", "description": "receiver refuses this stream"});
            return (StatusCode::from_u16(status).unwrap(), axum::Json(err)).into_response();
        }
    }
    let text = String::from_utf8_lossy(&body).to_string();
    let media = headers.get("content-type").and_then(|v| v.to_str().ok()) == Some("application/secevent+jwt");
    let verified = match inner.key.lock().unwrap().as_ref() {
        Some((key, alg)) if media => {
            let mut v = Validation::new(*alg);
            v.required_spec_claims.clear();
            v.validate_exp = false;
            v.set_audience(&[inner.audience.lock().unwrap().as_str()]);
            v.set_issuer(&[inner.issuer.as_str()]);
            jsonwebtoken::decode::<Value>(&text, key, &v).map(|d| d.claims).ok()
        }
        _ => None,
    };
    match verified {
        Some(claims) => {
            inner.received.lock().unwrap().sets.push(claims);
            StatusCode::ACCEPTED.into_response()
        }
        None => {
            inner.received.lock().unwrap().rejected.push(text);
            let err = json!({"err": "invalid_key", "description": "signature does not verify"});
            (StatusCode::BAD_REQUEST, axum::Json(err)).into_response()
        }
    }
}
