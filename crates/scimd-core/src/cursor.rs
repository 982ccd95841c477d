//! Cursors of RFC 9865 paging: where the next page starts, sealed so that the client can
//! only hand it back.
//!
//! A cursor carries the page's start (the resource type, and the order key of the last
//! resource served, from which the store reads by keyset; with `sortBy`, the position in
//! the sorted list), when it was issued, and a digest of what it is bound to: the tenant,
//! the resource types, the filter and the sort. It is sealed with HMAC-SHA-256 under the
//! server's cursor key. A cursor altered in any byte, or handed to another tenant, type,
//! filter or sort, is `invalidCursor`; one older than the timeout is `expiredCursor`. The
//! text is hexadecimal: RFC 9865 wants cursors made of URL-unreserved characters.

use hmac::{Hmac, Mac};
use scimd_proto::{ScimError, ScimType};
use sha2::{Digest, Sha256};
use std::fmt;
use std::time::Duration;

const VERSION: u8 = 1;
/// Bytes of the binding digest and of the seal kept in a cursor.
const DIGEST: usize = 16;
const BODY: usize = 1 + 1 + 1 + 8 + 8 + DIGEST;

/// The key that seals cursors. Every process serving one database must share it, or a
/// cursor from one is `invalidCursor` at another.
#[derive(Clone, PartialEq, Eq)]
pub struct CursorKey(pub [u8; 32]);

impl CursorKey {
    /// A key of this process only (a single process, or tests).
    pub fn random() -> CursorKey {
        CursorKey(rand::random())
    }
}

impl fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CursorKey(…)")
    }
}

/// Where a page starts in a list of one or more resource types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Index of the resource type in the list's types.
    pub kind: u8,
    pub at: At,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// After the resource with this order key (the default order: keyset).
    After(i64),
    /// At this zero-based position (an order given by `sortBy`).
    Offset(u64),
}

/// What a cursor is good for: one tenant's list of these types, filtered and sorted so.
pub struct Binding([u8; DIGEST]);

impl Binding {
    pub fn new(tenant: &str, kinds: &str, filter: Option<&str>, sort: Option<&str>) -> Binding {
        let mut h = Sha256::new();
        for part in [tenant, kinds, filter.unwrap_or("\u{1}"), sort.unwrap_or("\u{1}")] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        let mut out = [0; DIGEST];
        out.copy_from_slice(&h.finalize()[..DIGEST]);
        Binding(out)
    }
}

fn seal(key: &CursorKey, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key.0).expect("HMAC takes keys of any length");
    mac.update(body);
    mac
}

/// The cursor of `position`, issued at `now` (seconds since the epoch).
pub fn issue(key: &CursorKey, binding: &Binding, position: Position, now: u64) -> String {
    let mut body = Vec::with_capacity(BODY + DIGEST);
    body.push(VERSION);
    body.push(position.kind);
    let (tag, value) = match position.at {
        At::After(k) => (0u8, k.to_be_bytes()),
        At::Offset(n) => (1u8, n.to_be_bytes()),
    };
    body.push(tag);
    body.extend_from_slice(&value);
    body.extend_from_slice(&now.to_be_bytes());
    body.extend_from_slice(&binding.0);
    let tag = seal(key, &body).finalize().into_bytes();
    body.extend_from_slice(&tag[..DIGEST]);
    hex::encode(body)
}

fn invalid(why: &str) -> ScimError {
    ScimError::bad_request(ScimType::InvalidCursor, format!("invalid cursor: {why}; start again without one"))
}

/// The position of a cursor this server issued for the same binding, within `timeout`.
pub fn open(
    key: &CursorKey,
    binding: &Binding,
    text: &str,
    now: u64,
    timeout: Duration,
) -> Result<Position, ScimError> {
    let bytes = hex::decode(text.trim()).map_err(|_| invalid("not a cursor of this server"))?;
    if bytes.len() != BODY + DIGEST {
        return Err(invalid("not a cursor of this server"));
    }
    let (body, tag) = bytes.split_at(BODY);
    // Constant-time comparison of the seal.
    seal(key, body).verify_truncated_left(tag).map_err(|_| invalid("not a cursor of this server, or altered"))?;
    if body[0] != VERSION {
        return Err(invalid("made by another version"));
    }
    if body[BODY - DIGEST..] != binding.0 {
        return Err(invalid("it belongs to another list (tenant, resource type, filter or sort)"));
    }
    let issued = u64::from_be_bytes(body[11..19].try_into().unwrap_or_default());
    if now.saturating_sub(issued) > timeout.as_secs() {
        return Err(ScimError::bad_request(
            ScimType::ExpiredCursor,
            format!("the cursor has expired (cursors last {} seconds); start again without one", timeout.as_secs()),
        ));
    }
    let value: [u8; 8] = body[3..11].try_into().unwrap_or_default();
    let at = match body[2] {
        0 => At::After(i64::from_be_bytes(value)),
        1 => At::Offset(u64::from_be_bytes(value)),
        _ => return Err(invalid("not a cursor of this server")),
    };
    Ok(Position { kind: body[1], at })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_cursor_opens_only_where_it_was_issued() {
        let key = CursorKey::random();
        let bound = Binding::new("acme", "User", Some("userName sw \"a\""), None);
        let pos = Position { kind: 0, at: At::After(41) };
        let c = issue(&key, &bound, pos, 1_000);
        assert!(c.bytes().all(|b| b.is_ascii_hexdigit()), "URL-unreserved: {c}");
        assert_eq!(open(&key, &bound, &c, 1_500, HOUR), Ok(pos));
        let sorted = Position { kind: 1, at: At::Offset(700) };
        assert_eq!(open(&key, &bound, &issue(&key, &bound, sorted, 5), 6, HOUR), Ok(sorted));

        let code = |r: Result<Position, ScimError>| r.unwrap_err().scim_type.unwrap().as_str();
        for other in [
            Binding::new("other", "User", Some("userName sw \"a\""), None),
            Binding::new("acme", "Group", Some("userName sw \"a\""), None),
            Binding::new("acme", "User", None, None),
            Binding::new("acme", "User", Some("userName sw \"a\""), Some("userName ascending")),
        ] {
            assert_eq!(code(open(&key, &other, &c, 1_500, HOUR)), "invalidCursor");
        }
        assert_eq!(code(open(&CursorKey::random(), &bound, &c, 1_500, HOUR)), "invalidCursor");
        assert_eq!(code(open(&key, &bound, &c, 1_000 + 3_601, HOUR)), "expiredCursor");
        // Every single character changed is noticed.
        for i in 0..c.len() {
            let mut altered = c.clone().into_bytes();
            altered[i] = if altered[i] == b'0' { b'1' } else { b'0' };
            let altered = String::from_utf8(altered).unwrap();
            assert_eq!(code(open(&key, &bound, &altered, 1_500, HOUR)), "invalidCursor", "byte {i}");
        }
        for junk in ["", "zz", &c[..c.len() - 2], &format!("{c}00")] {
            assert_eq!(code(open(&key, &bound, junk, 1_500, HOUR)), "invalidCursor");
        }
    }
}
