//! Cursors of RFC 9865 paging: where the next page starts, sealed so that the client can
//! only hand it back.
//!
//! A cursor carries the page's start (the resource type, and the order key of the last
//! resource served, with its sort value under `sortBy`: the store reads on from there by
//! keyset, never by counting rows), when it was issued, and a digest of what it is bound to: the tenant,
//! the resource types, the filter and the sort. It is sealed with HMAC-SHA-256 under the
//! server's cursor key. A cursor altered in any byte, or handed to another tenant, type,
//! filter or sort, is `invalidCursor`; one older than the timeout is `expiredCursor`. The
//! text is hexadecimal: RFC 9865 wants cursors made of URL-unreserved characters.

use crate::store::{After, SortValue};
use hmac::{Hmac, Mac};
use scimd_proto::{ScimError, ScimType};
use sha2::{Digest, Sha256};
use std::fmt;
use std::time::Duration;

const VERSION: u8 = 1;
/// Bytes of the binding digest and of the seal kept in a cursor.
const DIGEST: usize = 16;
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
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    /// Index of the resource type in the list's types.
    pub kind: u8,
    /// None: at the type's first resource.
    pub after: Option<After>,
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
pub fn issue(key: &CursorKey, binding: &Binding, position: &Position, now: u64) -> String {
    let mut body = Vec::with_capacity(64);
    body.push(VERSION);
    body.push(position.kind);
    body.extend_from_slice(&now.to_be_bytes());
    body.extend_from_slice(&binding.0);
    match &position.after {
        None => body.push(0),
        Some(after) => {
            body.push(1);
            body.extend_from_slice(&after.key.to_be_bytes());
            match &after.sort {
                None => body.push(0),
                Some(SortValue::Null) => body.push(1),
                Some(SortValue::Int(i)) => {
                    body.push(2);
                    body.extend_from_slice(&i.to_be_bytes());
                }
                Some(SortValue::Real(f)) => {
                    body.push(3);
                    body.extend_from_slice(&f.to_bits().to_be_bytes());
                }
                Some(SortValue::Text { text, type_name }) => {
                    body.push(4);
                    body.push(type_name.len().min(255) as u8);
                    body.extend_from_slice(&type_name.as_bytes()[..type_name.len().min(255)]);
                    body.extend_from_slice(&(text.len() as u32).to_be_bytes());
                    body.extend_from_slice(text.as_bytes());
                }
                Some(SortValue::Bool(b)) => {
                    body.push(5);
                    body.push(u8::from(*b));
                }
            }
        }
    }
    let tag = seal(key, &body).finalize().into_bytes();
    body.extend_from_slice(&tag[..DIGEST]);
    hex::encode(body)
}

fn invalid(why: &str) -> ScimError {
    ScimError::bad_request(ScimType::InvalidCursor, format!("invalid cursor: {why}; start again without one"))
}

/// Reads a sealed body front to back.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }
    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn eight(&mut self) -> Option<[u8; 8]> {
        self.take(8)?.try_into().ok()
    }
    fn text(&mut self, n: usize) -> Option<String> {
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

fn position(body: &[u8], binding: &Binding, now: u64, timeout: Duration) -> Result<Position, ScimError> {
    let garbled = || invalid("not a cursor of this server");
    let mut r = Reader(body);
    if r.byte() != Some(VERSION) {
        return Err(invalid("made by another version"));
    }
    let kind = r.byte().ok_or_else(garbled)?;
    let issued = u64::from_be_bytes(r.eight().ok_or_else(garbled)?);
    if r.take(DIGEST).ok_or_else(garbled)? != binding.0 {
        return Err(invalid("it belongs to another list (tenant, resource type, filter or sort)"));
    }
    if now.saturating_sub(issued) > timeout.as_secs() {
        return Err(ScimError::bad_request(
            ScimType::ExpiredCursor,
            format!("the cursor has expired (cursors last {} seconds); start again without one", timeout.as_secs()),
        ));
    }
    let after = match r.byte().ok_or_else(garbled)? {
        0 => None,
        1 => {
            let key = i64::from_be_bytes(r.eight().ok_or_else(garbled)?);
            let sort = match r.byte().ok_or_else(garbled)? {
                0 => None,
                1 => Some(SortValue::Null),
                2 => Some(SortValue::Int(i64::from_be_bytes(r.eight().ok_or_else(garbled)?))),
                3 => Some(SortValue::Real(f64::from_bits(u64::from_be_bytes(r.eight().ok_or_else(garbled)?)))),
                4 => {
                    let n = r.byte().ok_or_else(garbled)? as usize;
                    let type_name = r.text(n).ok_or_else(garbled)?;
                    let len = u32::from_be_bytes(r.take(4).and_then(|b| b.try_into().ok()).ok_or_else(garbled)?);
                    let text = r.text(len as usize).ok_or_else(garbled)?;
                    Some(SortValue::Text { text, type_name })
                }
                5 => Some(SortValue::Bool(r.byte().ok_or_else(garbled)? != 0)),
                _ => return Err(garbled()),
            };
            Some(After { key, sort })
        }
        _ => return Err(garbled()),
    };
    if !r.0.is_empty() {
        return Err(garbled());
    }
    Ok(Position { kind, after })
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
    let Some(split) = bytes.len().checked_sub(DIGEST).filter(|n| *n > 0) else {
        return Err(invalid("not a cursor of this server"));
    };
    let (body, tag) = bytes.split_at(split);
    // Constant-time comparison of the seal.
    seal(key, body).verify_truncated_left(tag).map_err(|_| invalid("not a cursor of this server, or altered"))?;
    position(body, binding, now, timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_cursor_opens_only_where_it_was_issued() {
        let key = CursorKey::random();
        let bound = Binding::new("acme", "User", Some("userName sw \"a\""), None);
        let pos = Position { kind: 0, after: Some(After { key: 41, sort: None }) };
        let c = issue(&key, &bound, &pos, 1_000);
        assert!(c.bytes().all(|b| b.is_ascii_hexdigit()), "URL-unreserved: {c}");
        assert_eq!(open(&key, &bound, &c, 1_500, HOUR), Ok(pos));
        for sort in [
            SortValue::Null,
            SortValue::Int(-7),
            SortValue::Real(2.5),
            SortValue::Bool(true),
            SortValue::Text { text: "zoë".into(), type_name: "character varying".into() },
        ] {
            let p = Position { kind: 1, after: Some(After { key: 9, sort: Some(sort) }) };
            assert_eq!(open(&key, &bound, &issue(&key, &bound, &p, 5), 6, HOUR), Ok(p));
        }
        let start = Position { kind: 1, after: None };
        assert_eq!(open(&key, &bound, &issue(&key, &bound, &start, 5), 6, HOUR), Ok(start));

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
        for junk in ["", "zz", &c[..c.len() - 2], &format!("{c}00"), &"00".repeat(16)] {
            assert_eq!(code(open(&key, &bound, junk, 1_500, HOUR)), "invalidCursor");
        }
    }
}
