//! Index paging read by keyset when a page follows the one before it.
//!
//! Identity providers that read a whole tenant (Okta's import, a reconciliation) page
//! through it one page after the other: `startIndex=1`, then `101`, `201`, … With `OFFSET`,
//! page N costs the walk over the N−1 pages before it. Here each page served in the default
//! order (the rows' insertion order) leaves where it ended; a request for the page that
//! starts there reads the rows after that row instead (`seq > last`), at the cost of page 1.
//!
//! The answer is the same as by offset while nothing before the page changed. When rows
//! before it were deleted meanwhile, an offset would skip as many rows of the next page; the
//! keyset does not, which is what a client paging through the tenant needs (new rows are
//! always inserted after every existing one, so none appears before a page's end). What a
//! process remembers is its own: another process answers the same request by offset.

use scimd_core::Kind;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a page's end is remembered.
const KEEP: Duration = Duration::from_secs(60);
/// Page ends remembered at most (all are forgotten past this: a new pass starts anew).
const MAX_ENDS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Position {
    tenant: String,
    kind: Kind,
    /// The filter, as text (`None`: all rows).
    filter: Option<String>,
    /// The zero-based offset of the page that starts after `End::last`.
    offset: u64,
}

#[derive(Debug, Clone, Copy)]
struct End {
    /// The order key of the last row of the page before.
    last: i64,
    at: Instant,
}

/// Where the pages served lately ended.
#[derive(Default)]
pub(crate) struct PageEnds(Mutex<HashMap<Position, End>>);

impl PageEnds {
    /// The order key after which the page at `offset` starts, when a page served lately
    /// ended there.
    pub(crate) fn start_after(&self, tenant: &str, kind: Kind, filter: Option<String>, offset: u64) -> Option<i64> {
        if offset == 0 {
            return None;
        }
        let key = Position { tenant: tenant.to_string(), kind, filter, offset };
        let ends = self.0.lock().unwrap_or_else(|e| e.into_inner());
        ends.get(&key).filter(|e| e.at.elapsed() < KEEP).map(|e| e.last)
    }

    /// Notes that the page ending at `next_offset` (exclusive) ended with the row `last`.
    pub(crate) fn ended(&self, tenant: &str, kind: Kind, filter: Option<String>, next_offset: u64, last: i64) {
        let mut ends = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if ends.len() >= MAX_ENDS {
            ends.clear();
        }
        let key = Position { tenant: tenant.to_string(), kind, filter, offset: next_offset };
        ends.insert(key, End { last, at: Instant::now() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_starts_where_the_one_before_ended() {
        let ends = PageEnds::default();
        assert_eq!(ends.start_after("t", Kind::User, None, 100), None);
        ends.ended("t", Kind::User, None, 100, 4242);
        assert_eq!(ends.start_after("t", Kind::User, None, 100), Some(4242));
        // Not for another offset, tenant, type or filter.
        assert_eq!(ends.start_after("t", Kind::User, None, 200), None);
        assert_eq!(ends.start_after("u", Kind::User, None, 100), None);
        assert_eq!(ends.start_after("t", Kind::Group, None, 100), None);
        assert_eq!(ends.start_after("t", Kind::User, Some("active eq true".into()), 100), None);
    }
}
