//! Signing SETs as compact JWS (RFC 7515): HS256 with a stream's secret, or ES256 with a
//! server key whose public half is published as a JWK Set (RFC 7517).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{Value, json};

/// The media type of a SET (RFC 8417 §2.3), also its JWS `typ`.
pub const SET_TYPE: &str = "secevent+jwt";

/// How a stream's SETs are signed.
#[derive(Clone)]
pub enum Signer {
    Hs256(Vec<u8>),
    Es256 { key: SigningKey, kid: String },
}

impl Signer {
    /// HS256 with a base64url secret.
    pub fn hs256(secret: &str) -> Option<Signer> {
        B64.decode(secret.trim()).ok().filter(|k| k.len() >= 32).map(Signer::Hs256)
    }

    /// The compact serialization of `claims`, signed.
    pub fn sign(&self, claims: &Value) -> String {
        let header = match self {
            Signer::Hs256(_) => json!({"alg": "HS256", "typ": SET_TYPE}),
            Signer::Es256 { kid, .. } => json!({"alg": "ES256", "typ": SET_TYPE, "kid": kid}),
        };
        let input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
        let signature = match self {
            Signer::Hs256(key) => {
                let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
                mac.update(input.as_bytes());
                mac.finalize().into_bytes().to_vec()
            }
            Signer::Es256 { key, .. } => {
                let sig: Signature = key.sign(input.as_bytes());
                sig.to_bytes().to_vec()
            }
        };
        format!("{input}.{}", B64.encode(signature))
    }
}

/// A new random HS256 secret: 32 bytes, base64url.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    B64.encode(bytes)
}

/// A new ES256 key: its secret scalar (base64url, to store) and its public JWK.
pub fn new_es256_key(kid: &str) -> (String, Value) {
    let key = SigningKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
    (B64.encode(key.to_bytes()), public_jwk(&key, kid))
}

/// An ES256 signer from a stored secret scalar.
pub fn es256(secret: &str, kid: &str) -> Option<Signer> {
    let bytes = B64.decode(secret).ok()?;
    let key = SigningKey::from_slice(&bytes).ok()?;
    Some(Signer::Es256 { key, kid: kid.to_string() })
}

/// The public half of a key as a JWK (RFC 7518 §6.2).
pub fn public_jwk(key: &SigningKey, kid: &str) -> Value {
    let point = key.verifying_key().to_encoded_point(false);
    json!({
        "kty": "EC",
        "crv": "P-256",
        "x": B64.encode(point.x().expect("an uncompressed point has x")),
        "y": B64.encode(point.y().expect("an uncompressed point has y")),
        "kid": kid,
        "alg": "ES256",
        "use": "sig",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hs256_matches_rfc7515_appendix_a1() {
        // RFC 7515 A.1: the key, header and payload given there, and the signature it gives.
        let key = B64
            .decode("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
            .unwrap();
        let input = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(input.as_bytes());
        assert_eq!(B64.encode(mac.finalize().into_bytes()), "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
    }

    #[test]
    fn short_or_malformed_secrets_are_refused() {
        assert!(Signer::hs256("c2hvcnQ").is_none());
        assert!(Signer::hs256("not base64 !").is_none());
        assert!(Signer::hs256(&new_secret()).is_some());
    }
}
