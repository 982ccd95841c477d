//! PostgreSQL: a PATCH that only adds members to a group, written in one statement with the
//! group's new version and its events, on the likely guess that every member named is a
//! user not yet in the group (what an identity provider sends when someone joins a group).
//!
//! The statement checks and inserts the members as `add_members` does, compares what it
//! inserted with the guess, and writes the new version and the events built for the guess
//! only where the guess holds. Where it does not (a member already there, a group as a
//! member, an id that names nothing), nothing but the members is written, and the caller
//! writes the version and the events of what was really inserted, one round trip later, as
//! for any other change of members: never an event for a change that did not happen.

use super::{
    MEMBER_CHUNK, Result, checked_insert, columns, decode, in_order, member_type, modification, sql, wanted_members,
};
use crate::conn::{Cell, Tx};
use crate::layout::Table;
use crate::sql::{Bind, Dialect};
use scimd_core::events::MemberDelta;
use scimd_core::store::{Change, MemberChange, MemberRef, Modify, StoreError, StoredResource};
use std::collections::{HashMap, HashSet};

/// What the statement did.
pub(super) enum Outcome {
    /// The guess held: the members, the new version and the events are written.
    Written(StoredResource),
    /// It did not: these members were inserted, (id, type), in the order given; nothing else.
    Added(Vec<(String, String)>),
}

/// The condition that the guess held, for the statements it guards.
const GUARD: &str = "(SELECT holds FROM guess)";

/// The members to add when `change` is one this path takes: an add of members and nothing
/// else, on PostgreSQL, with the group not to be answered with its members (a `RETURNING`
/// sees the members as they were before its statement).
pub(super) fn applies<'c>(d: Dialect, change: &'c Change, opts: &Modify<'_>) -> Option<&'c [MemberRef]> {
    if d != Dialect::Postgres || opts.return_relations || change.attributes.is_some() {
        return None;
    }
    match change.members.as_slice() {
        [MemberChange::Add(refs)] if !refs.is_empty() && refs.len() <= MEMBER_CHUNK => Some(refs),
        _ => None,
    }
}

/// Adds `refs` to the group `current` (row `seq`, locked), with its new version and events
/// when the guess holds.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run(
    tx: &mut dyn Tx,
    layout: &Table,
    tenant: &str,
    group_id: &str,
    seq: i64,
    current: &StoredResource,
    refs: &[MemberRef],
    opts: &Modify<'_>,
) -> Result<Outcome> {
    let d = Dialect::Postgres;
    let wanted = wanted_members(group_id, refs)?;
    let guess =
        MemberDelta { added: wanted.iter().map(|id| (id.to_string(), "User".to_string())).collect(), removed: vec![] };
    let nothing_else = Change { attributes: None, members: vec![] };
    let (events, mut update) =
        modification(tx, layout, tenant, seq, current, &nothing_else, None, &guess, opts, Some(GUARD)).await?;
    update.push(" RETURNING ").push(columns(d));
    let mut s = sql(d);
    s.push("WITH ");
    checked_insert(&mut s, tenant, seq, &wanted);
    s.push(", guess(holds) AS (SELECT count(*) FILTER (WHERE member_type = 'User') = ");
    s.bind(Bind::Int(wanted.len() as i64)).push(" FROM added)");
    for (i, event) in events.into_iter().enumerate() {
        s.push(&format!(", e{i} AS (")).append(event).push(")");
    }
    s.push(", g AS (").append(update).push(")");
    // The group's new state (NULLs if the guess failed), no relations, then each member found
    // with its type and whether it was inserted.
    s.push(
        " SELECT g.*, NULL, (SELECT json_agg(json_build_array(f.id, f.kind, a.member_id IS NOT NULL))::text \
         FROM found f LEFT JOIN added a ON a.member_id = f.id) FROM (SELECT 1) one LEFT JOIN g ON true",
    );
    let rows = tx.rows(s).await?;
    let row = rows.first().ok_or(StoreError::NotFound)?;
    let found: Vec<(String, String, bool)> = match row.cell(7) {
        Cell::Text(json) => serde_json::from_str(json)
            .map_err(|e| StoreError::Backend(format!("the members found, as PostgreSQL listed them: {e}")))?,
        _ => vec![],
    };
    let kinds: HashMap<String, &'static str> =
        found.iter().map(|(id, kind, _)| (id.clone(), member_type(kind))).collect();
    // An id that names nothing is refused (and the transaction, with its inserts, undone).
    let resolved = in_order(&wanted, &kinds)?;
    if *row.cell(0) != Cell::Null {
        return Ok(Outcome::Written(decode(layout.kind, row)?.1));
    }
    let inserted: HashSet<&str> = found.iter().filter(|(_, _, new)| *new).map(|(id, _, _)| id.as_str()).collect();
    Ok(Outcome::Added(
        resolved
            .into_iter()
            .filter(|(id, _)| inserted.contains(id.as_str()))
            .map(|(id, k)| (id, k.to_string()))
            .collect(),
    ))
}
