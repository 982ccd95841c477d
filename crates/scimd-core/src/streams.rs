//! Event streams: where a tenant's events go. A push stream's events are POSTed to a
//! receiver (RFC 8935); a poll stream's are fetched by one (RFC 8936). Each stream keeps its
//! position in the log (`cursor`), so delivery resumes where it stopped, on any replica.

use crate::store::StoreError;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    Push,
    Poll,
}

/// Whether SETs carry the data (`full`) or only the names of what changed (`notice`),
/// as RFC 9967 §2.4 defines them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Full,
    Notice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Alg {
    /// HMAC with SHA-256 and the stream's own secret.
    HS256,
    /// ECDSA P-256 with the server's key, published as a JWKS.
    ES256,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamState {
    Active,
    /// Stopped by an operator; resumes where it stopped.
    Paused,
    /// Push failed for longer than the retry window; stopped until resumed or replayed.
    Failing,
}

macro_rules! text_enum {
    ($t:ty { $($v:ident = $s:literal),* }) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($s => Some(Self::$v),)* _ => None }
            }
        }
    };
}
text_enum!(Delivery { Push = "push", Poll = "poll" });
text_enum!(Format { Full = "full", Notice = "notice" });
text_enum!(Alg { HS256 = "HS256", ES256 = "ES256" });
text_enum!(StreamState { Active = "active", Paused = "paused", Failing = "failing" });

/// A stream: what it receives, how, and how far it has got.
#[derive(Debug, Clone, PartialEq)]
pub struct Stream {
    pub id: String,
    pub tenant: String,
    pub name: String,
    pub delivery: Delivery,
    /// Push: the receiver's URL.
    pub endpoint: Option<String>,
    /// Push: an `Authorization` header value the receiver requires.
    pub authorization: Option<String>,
    /// The SETs' `aud`.
    pub audience: String,
    pub format: Format,
    /// Event URIs wanted (RFC 9967 §2.4, without `:full`/`:notice`); all when empty.
    pub event_types: Vec<String>,
    pub alg: Alg,
    /// HS256: the signing key (base64url).
    pub secret: Option<String>,
    pub state: StreamState,
    /// Every event up to this sequence number was delivered (or acknowledged).
    pub cursor: i64,
    pub created: String,
    pub delivery_state: DeliveryState,
}

/// How delivery is going.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryState {
    /// When an event was last delivered.
    pub delivered: Option<String>,
    /// Failed attempts in a row.
    pub attempts: u32,
    /// The first failure of the current run of failures.
    pub failing_since: Option<String>,
    pub next_attempt: Option<String>,
    pub last_error: Option<String>,
}

/// What a failed push attempt leaves behind.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub error: String,
    pub next_attempt: String,
    /// Stop the stream (`Failing`): it has failed for longer than the retry window.
    pub give_up: bool,
    pub now: String,
}

/// Where streams live.
#[async_trait]
pub trait StreamStore: Send + Sync + 'static {
    /// Stores a new stream; a poll stream with the hash of its poll token.
    async fn create_stream(&self, stream: &Stream, poll_token_hash: Option<&str>) -> Result<(), StoreError>;
    async fn stream(&self, tenant: &str, id: &str) -> Result<Option<Stream>, StoreError>;
    async fn streams(&self, tenant: &str) -> Result<Vec<Stream>, StoreError>;
    /// A poll stream by the hash of its poll token (if active or paused).
    async fn poll_stream(&self, id: &str, token_hash: &str) -> Result<Option<(Stream, String)>, StoreError>;
    async fn delete_stream(&self, tenant: &str, id: &str) -> Result<bool, StoreError>;
    /// Sets the state; with `cursor`, moves the stream there (a replay); clears failures and
    /// the lease (a delivery in progress stops at its next step).
    async fn set_stream_state(
        &self,
        tenant: &str,
        id: &str,
        state: StreamState,
        cursor: Option<i64>,
    ) -> Result<Option<Stream>, StoreError>;
    /// A new HS256 secret (rotation); clears the lease, so the next SET is signed with it.
    async fn set_stream_secret(&self, tenant: &str, id: &str, secret: &str) -> Result<bool, StoreError>;

    // Push delivery: one process at a time per stream, by lease.

    /// Active push streams with events beyond their cursor, due now, not leased by another
    /// process and not in `busy` (delivered by this one already); each now leased to `owner`
    /// until `until`.
    async fn lease_due_streams(
        &self,
        owner: &str,
        busy: &[String],
        now: &str,
        until: &str,
        max: u32,
    ) -> Result<Vec<Stream>, StoreError>;
    /// Extends a lease held by `owner`; false when it was lost.
    async fn renew_lease(&self, id: &str, owner: &str, until: &str) -> Result<bool, StoreError>;
    async fn release_lease(&self, id: &str, owner: &str) -> Result<(), StoreError>;
    /// Records delivery up to `seq` (only while `owner` holds the lease); false when the
    /// lease was lost, and nothing was recorded.
    async fn delivered(&self, id: &str, owner: &str, seq: i64, now: &str) -> Result<bool, StoreError>;
    async fn failed(&self, id: &str, owner: &str, failure: &Failure) -> Result<(), StoreError>;

    // Poll delivery.

    /// Records acknowledgements, and moves the cursor past every event acknowledged in a row.
    async fn acknowledge(&self, id: &str, seqs: &[i64], now: &str) -> Result<(), StoreError>;
    /// Of a poll stream's events after its cursor, those acknowledged already.
    async fn acknowledged(&self, id: &str) -> Result<Vec<i64>, StoreError>;
}

/// The server's ES256 signing keys, shared by every replica.
#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// Every key, oldest first: (kid, secret scalar, public JWK as JSON text).
    async fn signing_keys(&self) -> Result<Vec<(String, String, String)>, StoreError>;
    /// Stores a new key; false when one with this kid exists.
    async fn add_signing_key(&self, kid: &str, secret: &str, public_jwk: &str, now: &str) -> Result<bool, StoreError>;
    /// The deployment's secret (hexadecimal), made once by the migrations: the same in every
    /// process on this database.
    async fn server_secret(&self) -> Result<String, StoreError>;
}
