//! How a list is paged: by index (RFC 7644 §3.4.2.4), or by cursor (RFC 9865), the page
//! read by keyset from where the cursor's page ended. Index paging stays the default, as
//! RFC 9865 recommends for servers that had it. A list of several resource types
//! (`POST /.search`) is one list: each type's part is read in turn.

use crate::cursor::{self, Binding, CursorKey, Position};
use crate::engine::{Ctx, EngineError, EngineResult, Query, Settings};
use crate::store::{After, Kind, ListPage, ListQuery};
use scimd_proto::filter::Filter;
use scimd_proto::messages::{ListResponse, Page, SortOrder};
use scimd_proto::{ScimError, ScimType};
use serde_json::Value;

/// The paging of one list.
pub(crate) enum Paging {
    Index(Page),
    Cursor(CursorPage),
}

pub(crate) struct CursorPage {
    count: u64,
    start: Position,
    /// Where the page after this one starts, once known.
    next: Option<Position>,
    /// Resources on the page so far.
    served: u64,
    binding: Binding,
    key: CursorKey,
}

impl Paging {
    /// How a list is paged: by index, or by cursor (RFC 9865; index paging stays the
    /// default, as that RFC recommends for servers that have it).
    pub(crate) fn plan(
        s: &Settings,
        ctx: &Ctx<'_>,
        kinds: &[Kind],
        query: &Query,
        filter: Option<&Filter>,
        sort: Option<&str>,
        order: SortOrder,
    ) -> EngineResult<Paging> {
        let Some(text) = query.cursor.as_deref() else {
            let page = Page::parse(
                query.start_index.as_deref(),
                query.count.as_deref(),
                s.default_page_size,
                s.max_page_size,
            )?;
            return Ok(Paging::Index(page));
        };
        if query.start_index.as_deref().is_some_and(|t| !t.trim().is_empty()) {
            return Err(ScimError::invalid_value("a query pages by startIndex or by cursor, not both").into());
        }
        let count = match query.count.as_deref().map(str::trim) {
            None | Some("") => s.default_page_size,
            Some(t) => t.parse::<u64>().ok().filter(|n| *n <= s.max_page_size).ok_or_else(|| {
                ScimError::bad_request(
                    ScimType::InvalidCount,
                    format!("count must be a whole number from 0 to {} with cursor paging", s.max_page_size),
                )
            })?,
        };
        let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
        let filter = filter.map(|f| f.to_string());
        let sort = sort.map(|t| format!("{} {order:?}", t.to_ascii_lowercase()));
        let binding = Binding::new(ctx.tenant, &names.join(","), filter.as_deref(), sort.as_deref());
        let start = match text.trim() {
            "" => Position { kind: 0, after: None },
            text => cursor::open(&s.cursor_key, &binding, text, unix_now(), s.cursor_timeout)?,
        };
        Ok(Paging::Cursor(CursorPage { count, start, next: None, served: 0, binding, key: s.cursor_key.clone() }))
    }

    /// The part of resource type `index` to read: `(offset, after, count)`, given the total
    /// of the types before it and the resources already on the page.
    pub(crate) fn window(&self, index: usize, total_before: u64, on_page: u64) -> (u64, Option<After>, u64) {
        match self {
            Paging::Index(page) => {
                (page.offset().saturating_sub(total_before), None, page.count.saturating_sub(on_page))
            }
            Paging::Cursor(c) => {
                let want = c.count.saturating_sub(on_page);
                // Types before the cursor's, or after a full page: only their totals.
                if (index as u8) < c.start.kind || want == 0 || c.next.is_some() {
                    return (0, None, 0);
                }
                let after = if index as u8 == c.start.kind { c.start.after.clone() } else { None };
                // One more than the page holds tells whether another page follows.
                (0, after, want + 1)
            }
        }
    }

    /// Takes note of what type `index` gave: with cursors, drops the look-ahead resource and
    /// notes where the next page starts.
    pub(crate) fn served<R>(&mut self, index: usize, q: &ListQuery<'_>, result: &mut ListPage<R>) -> EngineResult<()> {
        let Paging::Cursor(c) = self else { return Ok(()) };
        if q.count == 0 {
            // A type not read: the next page starts there when the page is full and the
            // type has resources.
            let full = c.count > 0 && c.served == c.count;
            if c.next.is_none() && (index as u8) > c.start.kind && result.total > 0 && full {
                c.next = Some(Position { kind: index as u8, after: None });
            }
            return Ok(());
        }
        let keep = q.count as usize - 1;
        let described = result.keys.len() >= result.resources.len()
            && (q.sort.is_none() || result.sort_values.len() >= result.resources.len());
        if !described {
            // A store that does not say where its rows are cannot be paged by cursor.
            return Err(ScimError::new(501, None, "this server's storage does not support cursor paging").into());
        }
        if result.resources.len() > keep {
            result.resources.truncate(keep);
            // `keep` is at least 1: a type is read only while the page wants some.
            let last = keep - 1;
            let after = result
                .keys
                .get(last)
                .map(|&key| After { key, sort: q.sort.as_ref().and_then(|_| result.sort_values.get(last).cloned()) });
            c.next = Some(Position { kind: index as u8, after });
        }
        c.served += result.resources.len() as u64;
        Ok(())
    }

    pub(crate) fn response(&self, total: u64, resources: Vec<Value>) -> EngineResult<Value> {
        let internal = |e: serde_json::Error| EngineError::Internal(e.to_string());
        match self {
            Paging::Index(page) => {
                serde_json::to_value(ListResponse::new(total, page.start_index, resources)).map_err(internal)
            }
            Paging::Cursor(c) => {
                let mut list = serde_json::to_value(ListResponse::new(total, 1, resources)).map_err(internal)?;
                if let Value::Object(o) = &mut list {
                    o.remove("startIndex");
                    if let Some(next) = c.next.as_ref().filter(|_| c.count > 0) {
                        let text = cursor::issue(&c.key, &c.binding, next, unix_now());
                        o.insert("nextCursor".into(), Value::String(text));
                    }
                }
                Ok(list)
            }
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
