//! The server's ES256 keys: made on first need, kept in the database so that every replica
//! signs with the same one, published as a JWK Set.

use crate::jws::{self, Signer};
use scimd_core::store::StoreError;
use scimd_core::streams::{Alg, KeyStore, Stream};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::OnceCell;

/// Signers for streams: a stream's own HS256 secret, or the server's current ES256 key.
pub struct KeyRing {
    store: Arc<dyn KeyStore>,
    current: OnceCell<Signer>,
}

impl KeyRing {
    pub fn new(store: Arc<dyn KeyStore>) -> KeyRing {
        KeyRing { store, current: OnceCell::new() }
    }

    /// How `stream`'s SETs are signed; None when its secret is unusable.
    pub async fn signer(&self, stream: &Stream) -> Result<Option<Signer>, StoreError> {
        match stream.alg {
            Alg::HS256 => Ok(stream.secret.as_deref().and_then(Signer::hs256)),
            Alg::ES256 => Ok(Some(self.es256().await?.clone())),
        }
    }

    /// The newest ES256 key, made (and stored) when there is none.
    async fn es256(&self) -> Result<&Signer, StoreError> {
        self.current
            .get_or_try_init(|| async {
                if let Some(signer) = self.newest().await? {
                    return Ok(signer);
                }
                let kid = uuid::Uuid::now_v7().simple().to_string();
                let (secret, jwk) = jws::new_es256_key(&kid);
                self.store.add_signing_key(&kid, &secret, &jwk.to_string(), &scimd_proto::value::now()).await?;
                // Another replica may have made one at the same moment: use the newest.
                self.newest().await?.ok_or_else(|| StoreError::Backend("no signing key after adding one".into()))
            })
            .await
    }

    /// A 32-byte secret for `purpose` (such as sealing cursors), the same in every process
    /// on this database: derived from the deployment's secret, which the migrations made.
    pub async fn derived_secret(&self, purpose: &str) -> Result<[u8; 32], StoreError> {
        use sha2::{Digest, Sha256};
        let secret = self.store.server_secret().await?;
        let mut h = Sha256::new();
        h.update(b"scimd derived secret\0");
        h.update(purpose.as_bytes());
        h.update(b"\0");
        h.update(secret.as_bytes());
        Ok(h.finalize().into())
    }

    async fn newest(&self) -> Result<Option<Signer>, StoreError> {
        let keys = self.store.signing_keys().await?;
        Ok(keys.last().and_then(|(kid, secret, _)| jws::es256(secret, kid)))
    }

    /// The JWK Set of every key's public half (RFC 7517 §5); a key is made if there is
    /// none yet, so that a receiver can fetch it before the first SET.
    pub async fn jwks(&self) -> Result<Value, StoreError> {
        self.es256().await?;
        let keys: Vec<Value> = self
            .store
            .signing_keys()
            .await?
            .into_iter()
            .filter_map(|(_, _, jwk)| serde_json::from_str(&jwk).ok())
            .collect();
        Ok(json!({ "keys": keys }))
    }
}
