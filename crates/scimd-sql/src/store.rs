//! The store's logic, written once for both dialects: every operation is one transaction
//! on a `Tx`, with SQL built by `Sql` (bound parameters only).

use crate::compile::Compiler;
use crate::conn::{Row, Tx};
use crate::events;
use crate::events::Delta;
use crate::health::{PROBE, PROBE_END, WriteHealth};
use crate::keyset::PageEnds;
use crate::layout::{Table, View, own_view, table};
use crate::retry::retrying;
use crate::rows::{Derived, derive, relation_values};
use crate::sql::{Bind, Dialect, Sql};
use async_trait::async_trait;
use scimd_core::events::{EventLog, LoggedEvent, MemberDelta, Written};
use scimd_core::stats::ConflictCounts;
use scimd_core::store::{
    After, Change, Conflict, Decide, DeletePolicy, Deletion, INLINE_RELATIONS, Kind, ListPage, ListQuery, MemberChange,
    MemberRef, Modify, NewResource, Outage, Record, RelationBatches, RelationStream, SortValue, Store, StoreError,
    StoredResource, StoredText, attributes_of,
};
use scimd_proto::value::json_text;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

mod quick_add;

type Result<T> = std::result::Result<T, StoreError>;

/// Where transactions come from.
#[async_trait]
pub trait Pools: Send + Sync + 'static {
    fn dialect(&self) -> Dialect;
    async fn read(&self) -> Result<Box<dyn Tx>>;
    async fn write(&self) -> Result<Box<dyn Tx>>;
    /// Runs one read statement outside any transaction (a single statement is atomic):
    /// one round trip instead of three for the hottest reads.
    async fn read_one(&self, sql: Sql) -> Result<Vec<Row>>;
    /// A read-only transaction on one snapshot that may stay open while an answer streams
    /// (seconds, for a slow client): on a connection of its own, with few at a time.
    async fn snapshot(&self) -> Result<Box<dyn Tx>>;
    /// Whether the disk under the database is (all but) full, where that can be known: a
    /// small write may still succeed there (into space the log file already holds) while
    /// a real one fails.
    fn storage_full(&self) -> bool {
        false
    }
    /// Where the activity log lives when not in this database (SQLite keeps it in a file of
    /// its own: see `sqlite::ACTIVITY_MIGRATIONS`).
    fn activity(&self) -> Option<&dyn Pools> {
        None
    }
    /// The connections' use, for the metrics.
    fn stats(&self) -> scimd_core::stats::DbStats {
        scimd_core::stats::DbStats::default()
    }
    /// A read replica to read `tenant`'s resources from: one that holds every write this
    /// process made for the tenant (see `replicas`). None: read here.
    fn replica(&self, _tenant: &str) -> Option<&dyn Pools> {
        None
    }
    /// Notes that a write of `tenant` has committed, or may have: until replicas hold it,
    /// the tenant's reads stay here.
    fn wrote(&self, _tenant: &str) {}
}

/// A read under way.
type Pending<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send + 'a>>;

/// Runs the read `op` on a replica fit for `tenant`, else on `primary`; a replica that
/// cannot answer hands the read to the primary.
async fn read_where<'a, T>(
    primary: &'a dyn Pools,
    tenant: &str,
    op: impl Fn(&'a dyn Pools) -> Pending<'a, T>,
) -> Result<T> {
    if let Some(replica) = primary.replica(tenant) {
        match op(replica).await {
            Err(StoreError::Unavailable(..)) => {}
            done => return done,
        }
    }
    op(primary).await
}

/// The SQL store over any `Pools` (SQLite or PostgreSQL).
pub struct SqlStore<P: Pools> {
    pub(crate) pools: P,
    writes: WriteHealth,
    conflicts: ConflictCounts,
    /// Where pages served lately ended (`keyset`).
    page_ends: PageEnds,
}

impl<P: Pools> SqlStore<P> {
    pub(crate) fn new(pools: P) -> SqlStore<P> {
        SqlStore {
            pools,
            writes: WriteHealth::default(),
            conflicts: ConflictCounts::default(),
            page_ends: PageEnds::default(),
        }
    }

    /// Records how a write ended (see `WriteHealth`) and passes its result on.
    fn recorded<T>(&self, result: Result<T>) -> Result<T> {
        self.writes.record(&result);
        result
    }

    /// One small write, to learn whether writes work again.
    async fn probe_write(&self) -> Result<()> {
        let mut tx = self.pools.write().await?;
        let mut s = sql(tx.dialect());
        let now = scimd_proto::value::now();
        s.push(PROBE).bind_text(now).push(PROBE_END);
        tx.exec(s).await?;
        tx.commit().await?;
        Ok(())
    }
}

pub(crate) fn sql(d: Dialect) -> Sql {
    Sql::new(d)
}

/// `?, ?, ?` for a list of text values.
fn bind_list<'a>(s: &mut Sql, values: impl IntoIterator<Item = &'a str>) {
    for (i, v) in values.into_iter().enumerate() {
        if i > 0 {
            s.push(", ");
        }
        s.bind_text(v);
    }
}

/// A text value, or NULL.
fn bind_opt(s: &mut Sql, value: Option<&str>) {
    match value {
        Some(v) => s.bind_text(v),
        None => s.push("NULL"),
    };
}

fn bind_bool(s: &mut Sql, b: bool) {
    match s.dialect {
        Dialect::Sqlite => s.bind(Bind::Int(b as i64)),
        Dialect::Postgres => s.bind(Bind::Bool(b)),
    };
}

fn bind_json(s: &mut Sql, json: String) {
    s.bind_text(json);
    if s.dialect == Dialect::Postgres {
        s.push("::jsonb");
    }
}

fn columns(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => "t.seq, t.id, t.attributes, t.created, t.last_modified, t.version",
        Dialect::Postgres => "t.seq, t.id, t.attributes::text, t.created, t.last_modified, t.version",
    }
}

/// Membership rows `m` with the user `u` or the group `g` each one names.
const MEMBERS_AND_TARGETS: &str = "scim_members m \
     LEFT JOIN scim_users u ON m.member_type = 'User' AND u.tenant = m.tenant AND u.id = m.member_id \
     LEFT JOIN scim_groups g ON m.member_type = 'Group' AND g.tenant = m.tenant AND g.id = m.member_id";

/// Membership rows `m` with the group `g` each one is in.
const MEMBERSHIPS_AND_GROUPS: &str = "scim_members m JOIN scim_groups g ON g.seq = m.group_seq";

/// A member's `display` over `MEMBERS_AND_TARGETS`: a user's displayName, else its userName;
/// a group's displayName.
fn member_display(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => "COALESCE(json_extract(u.attributes, '$.displayName'), u.user_name, g.display_name)",
        Dialect::Postgres => "COALESCE(u.attributes ->> 'displayName', u.user_name, g.display_name)",
    }
}

/// How many related values a read brings with its resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relations {
    None,
    /// Up to `INLINE_RELATIONS + 1`: more than `INLINE_RELATIONS` means the answer is to be
    /// streamed (`open_relations`).
    Capped,
    /// Every one (a PATCH that removes members by an arbitrary filter decides on them all).
    All,
}

impl Relations {
    fn of(wanted: bool) -> Relations {
        if wanted { Relations::Capped } else { Relations::None }
    }
}

/// A correlated subquery giving the members (groups) or groups (users) of the row `t` as a
/// JSON array in membership order, or NULL when there are none; `Capped`, at most
/// `INLINE_RELATIONS + 1` of them. Reading a resource and its relations is then one
/// statement: one consistent snapshot, one round trip. The ordered inner query walks an
/// index in membership order: no sort.
///
/// Its text depends on nothing but its arguments, and nearly every read of a user or a
/// group carries it, so each of the twelve is written once.
fn relations_column(d: Dialect, kind: Kind, how: Relations) -> &'static str {
    /// Where each text is kept among the twelve.
    fn slot(d: Dialect, members: bool, how: Relations) -> usize {
        let d_at = match d {
            Dialect::Sqlite => 0,
            Dialect::Postgres => 6,
        };
        let how_at = match how {
            Relations::None => 0,
            Relations::Capped => 1,
            Relations::All => 2,
        };
        d_at + 3 * usize::from(members) + how_at
    }
    static WRITTEN: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
        let mut all = vec![String::new(); 12];
        for d in [Dialect::Sqlite, Dialect::Postgres] {
            for members in [false, true] {
                for how in [Relations::None, Relations::Capped, Relations::All] {
                    all[slot(d, members, how)] = write_relations_column(d, members, how);
                }
            }
        }
        all
    });
    &WRITTEN[slot(d, kind.has_members(), how)]
}

fn write_relations_column(d: Dialect, members: bool, how: Relations) -> String {
    let limit = match how {
        Relations::Capped => format!(" LIMIT {}", INLINE_RELATIONS + 1),
        _ => String::new(),
    };
    let (fields, inner) = if members {
        (
            "'value', r.member_id, 'type', r.member_type, 'display', r.display",
            format!(
                "SELECT m.seq, m.member_id, m.member_type, {} AS display FROM {MEMBERS_AND_TARGETS} \
                 WHERE m.group_seq = t.seq ORDER BY m.seq{limit}",
                member_display(d)
            ),
        )
    } else {
        (
            "'value', r.id, 'display', r.display_name",
            format!(
                "SELECT m.seq, g.id, g.display_name FROM {MEMBERSHIPS_AND_GROUPS} \
                 WHERE m.member_id = t.id AND m.tenant = t.tenant ORDER BY m.seq{limit}"
            ),
        )
    };
    match d {
        Dialect::Sqlite => {
            format!("(SELECT json_group_array(json_object({fields})) FROM ({inner}) r HAVING COUNT(*) > 0)")
        }
        Dialect::Postgres => {
            format!("(SELECT json_agg(json_build_object({fields}) ORDER BY r.seq)::text FROM ({inner}) r)")
        }
    }
}

/// A resource row (`columns`, then optionally `relations_column`).
fn decode(kind: Kind, row: &Row) -> Result<(i64, StoredResource)> {
    Ok((
        row.int(0)?,
        StoredResource {
            id: row.text(1)?,
            // Parsed where it lies in the row, without a copy of its own.
            attributes: attributes_of(kind, row.str(2)?, related(row)?)?,
            created: row.text(3)?,
            last_modified: row.text(4)?,
            version: row.int(5)?,
        },
    ))
}

/// A resource row, its attributes left as their JSON text.
fn decode_text(row: &Row) -> Result<(i64, StoredText)> {
    Ok((
        row.int(0)?,
        StoredText {
            id: row.text(1)?,
            document: row.text(2)?,
            relations: related(row)?,
            created: row.text(3)?,
            last_modified: row.text(4)?,
            version: row.int(5)?,
        },
    ))
}

/// A resource row's related values, when it has the column and there are any.
fn related(row: &Row) -> Result<Option<Value>> {
    row.opt_str(6).map(relation_values).transpose()
}

/// A list's rows, filtered (`FROM … WHERE …`), and the statement that counts them.
struct Listing {
    from: Sql,
    count: Sql,
}

fn listing(d: Dialect, view: &View, tenant: &str, q: &ListQuery<'_>) -> Result<Listing> {
    let compiler = Compiler { dialect: d, view, schema: q.schema, tenant };
    let mut from = sql(d);
    from.push(" FROM ").push(&view.from).push(" WHERE ").push(&view.live);
    if let Some(tc) = &view.tenant_column {
        from.push(" AND ");
        tc.push_eq(&mut from, tenant);
    }
    if let Some((column, kind)) = view.kind_filter {
        from.push(" AND ").push(column).push(" = ").bind_text(kind);
    }
    if let Some(f) = q.filter {
        from.push(" AND (");
        compiler.filter(&mut from, f)?;
        from.push(")");
    }
    let mut count = sql(d);
    match (q.filter, view.counted_as, d) {
        (None, Some(kind), Dialect::Sqlite) => {
            count.push("SELECT n FROM scim_live_counts WHERE tenant = ").bind_text(tenant);
            count.push(" AND kind = ").bind_text(kind);
        }
        // One row per write since the rows were last folded (see the migration).
        (None, Some(kind), Dialect::Postgres) => {
            count.push("SELECT COALESCE(SUM(n), 0)::bigint FROM scim_live_counts WHERE tenant = ").bind_text(tenant);
            count.push(" AND kind = ").bind_text(kind);
        }
        _ => {
            count.push("SELECT COUNT(*)").append(from.clone());
        }
    }
    Ok(Listing { from, count })
}

/// Order keys per stretch of the live counts (the `10` of the PostgreSQL migration
/// `live_stretches`).
const STRETCH_BITS: u32 = 10;

/// PostgreSQL, an unfiltered page of scimd's own tables in their own order at `offset`:
/// where the walk to it starts (`start`, an order key) and how many live rows it skips from
/// there (`skip`), from the live counts per stretch of order keys. The page is then found by
/// walking at most one stretch (1,024 index entries), not the `offset` rows before it; the
/// counts are exact in the statement's snapshot, so the page is the one `OFFSET` would give.
/// None where a walk is as short, or the rows are not counted.
fn stretch_jump(d: Dialect, view: &View, tenant: &str, q: &ListQuery<'_>, offset: &Bind) -> Option<Sql> {
    let kind = view.counted_as?;
    if d != Dialect::Postgres || q.filter.is_some() || q.sort.is_some() || q.offset < 1 << STRETCH_BITS {
        return None;
    }
    let mut s = sql(d);
    s.push("SELECT stretch << ").push(&STRETCH_BITS.to_string()).push(" AS start, (");
    s.bind(offset.clone()).push(" - before)::bigint AS skip FROM (SELECT stretch, ");
    s.push("SUM(SUM(n)) OVER (ORDER BY stretch) - SUM(n) AS before FROM scim_live_counts WHERE tenant = ");
    s.bind_text(tenant).push(" AND kind = ").bind_text(kind).push(" GROUP BY stretch) s WHERE before <= ");
    s.bind(offset.clone()).push(" ORDER BY stretch DESC LIMIT 1");
    Some(s)
}

/// The statement of one page of `from`'s rows, sorted and paged, with `select` columns.
fn page_statement(d: Dialect, view: &View, select: Sql, tenant: &str, q: &ListQuery<'_>, from: Sql) -> Result<Sql> {
    let compiler = Compiler { dialect: d, view, schema: q.schema, tenant };
    let mut order = sql(d);
    match &q.sort {
        Some(sort) => compiler.sort(&mut order, sort)?,
        None => {
            order.push(&view.order_key);
        }
    }
    let offset = Bind::Int(q.offset.min(i64::MAX as u64) as i64);
    let jump = stretch_jump(d, view, tenant, q, &offset);
    let keys_first = d == Dialect::Postgres && view.counted_as.is_some();
    // An unfiltered page in the tables' own order, its keys found first (below): its size
    // and offset reach PostgreSQL's planner as the results of subqueries, unknown whether
    // the plan is made for this execution's values or cached for every execution. The two
    // then cost the same, and PostgreSQL keeps the cached (generic) plan instead of planning
    // the statement again on every page, which took a third of its time. That plan needs
    // neither value: the keys are walked in index order and read by primary key, the only
    // sensible plan either way. (A filter or a sort leaves the planner choices that depend
    // on the page's size: those values stay visible to it.)
    let hidden = keys_first && q.filter.is_none() && q.sort.is_none();
    let (open, close) = if hidden { ("(SELECT ", ")") } else { ("", "") };
    let mut paged = sql(d);
    paged.push(" LIMIT ").push(open).bind(Bind::Int(q.count.min(i64::MAX as u64) as i64)).push(close);
    match &jump {
        Some(_) => paged.push(" OFFSET (SELECT skip FROM jump)"),
        None => paged.push(" OFFSET ").push(open).bind(offset).push(close),
    };
    let mut select = select;
    if let Some(sort) = &q.sort {
        // The rows' sort values, for the cursor of the page after (`keyset`).
        select.push(", ");
        compiler.sort_columns(&mut select, sort)?;
    }
    let mut page = sql(d);
    if let Some(jump) = &jump {
        page.push("WITH jump AS (").append(jump.clone()).push(") ");
    }
    page.push("SELECT ").append(select);
    if keys_first {
        // PostgreSQL, scimd's own tables: the page's keys first (in their own order, by
        // walking an index that holds the tenant: no row is read for the rows the offset
        // skips), then just the page's rows are read by key, and their columns computed.
        // The keys as an array, not `IN (subquery)`: the rows are then read by primary key
        // whatever the planner guesses of the page's size (a semi-join's plan depends on it).
        let key = &view.order_key;
        page.push(" FROM ").push(&view.from).push(" WHERE ").push(key).push(" = ANY(ARRAY(SELECT ").push(key);
        page.append(from);
        if jump.is_some() {
            page.push(" AND ").push(key).push(" >= (SELECT start FROM jump)");
        }
        page.push(" ORDER BY ").append(order.clone()).append(paged).push(")) ORDER BY ").append(order);
    } else {
        page.append(from).push(" ORDER BY ").append(order).append(paged);
    }
    Ok(page)
}

/// One page of a view: the total count and the rows (`select` columns), filtered, sorted
/// and paged in SQL.
pub(crate) async fn query_page(
    tx: &mut dyn Tx,
    view: &View,
    select: &str,
    tenant: &str,
    q: &ListQuery<'_>,
    after: Option<&After>,
) -> Result<(u64, Vec<Row>)> {
    let d = tx.dialect();
    let Listing { from, count } = listing(d, view, tenant, q)?;
    let (from, q) = keyset(d, view, tenant, from, q, after)?;
    let total = tx.row(count).await?.map(|r| r.int(0)).transpose()?.unwrap_or(0);
    if q.count == 0 || q.offset as i64 >= total {
        return Ok((total as u64, vec![]));
    }
    let mut columns = sql(d);
    columns.push(select);
    Ok((total as u64, tx.rows(page_statement(d, view, columns, tenant, &q, from)?).await?))
}

/// The page that starts after the row `after` (in the view's own order, or the query's
/// sort order) instead of at the query's offset (see `keyset`).
fn keyset<'q>(
    d: Dialect,
    view: &View,
    tenant: &str,
    mut from: Sql,
    q: &ListQuery<'q>,
    after: Option<&After>,
) -> Result<(Sql, ListQuery<'q>)> {
    let mut q = q.clone();
    if let Some(after) = after {
        from.push(" AND ");
        match (&q.sort, &after.sort) {
            (Some(sort), Some(value)) => {
                let compiler = Compiler { dialect: d, view, schema: q.schema, tenant };
                compiler.after_sorted(&mut from, sort, value, after.key)?;
            }
            _ => {
                from.push(&view.order_key).push(" > ").bind(Bind::Int(after.key));
            }
        }
        q.offset = 0;
    }
    Ok((from, q))
}

/// The sort values of a page's rows (the last two columns of each, see `page_statement`).
pub(crate) fn sort_values(d: Dialect, view: &View, tenant: &str, q: &ListQuery<'_>, rows: &[Row]) -> Vec<SortValue> {
    if q.sort.is_none() {
        return Vec::new();
    }
    let compiler = Compiler { dialect: d, view, schema: q.schema, tenant };
    rows.iter().map(|r| compiler.sort_value(r, r.0.len().saturating_sub(2))).collect()
}

/// `SELECT` of a live resource by id, with its relations when asked.
fn select_one(d: Dialect, layout: &Table, tenant: &str, id: &str, relations: Relations) -> Sql {
    let mut s = sql(d);
    s.push("SELECT ").push(columns(d));
    if relations != Relations::None && layout.kind.relation().is_some() {
        s.push(", ").push(relations_column(d, layout.kind, relations));
    }
    from_live_by_id(&mut s, layout, tenant, id);
    s
}

/// ` FROM` the live resource `id` of `tenant`, as `t`.
fn from_live_by_id(s: &mut Sql, layout: &Table, tenant: &str, id: &str) {
    s.push(" FROM ").push(layout.table);
    s.push(" t WHERE t.tenant = ").bind_text(tenant).push(" AND t.id = ").bind_text(id).push(" AND t.retired IS NULL");
    layout.push_kind(s, "t");
}

/// How a read in a write transaction holds the row it reads, until commit (PostgreSQL;
/// SQLite's single writer holds everything).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lock {
    No,
    /// To change it: no other change or delete of it meanwhile, while it can still be made
    /// a member of a group (whose check only keeps it from being deleted, `live_members`).
    Change,
    /// To delete it: nothing else may hold it.
    Delete,
}

impl Lock {
    fn clause(self) -> &'static str {
        match self {
            Lock::No => "",
            Lock::Change => " FOR NO KEY UPDATE OF t",
            Lock::Delete => " FOR UPDATE OF t",
        }
    }
}

/// A live resource by id, held as `lock` says.
async fn fetch_one(
    tx: &mut dyn Tx,
    layout: &Table,
    tenant: &str,
    id: &str,
    lock: Lock,
    relations: Relations,
) -> Result<Option<(i64, StoredResource)>> {
    let d = tx.dialect();
    let mut s = select_one(d, layout, tenant, id, relations);
    if d == Dialect::Postgres {
        s.push(lock.clause());
    }
    tx.row(s).await?.map(|r| decode(layout.kind, &r)).transpose()
}

/// The statements that write the indexed side rows of a resource (users' email keys);
/// `replace` drops the ones it had first.
fn side_rows(d: Dialect, layout: &Table, tenant: &str, seq: i64, derived: &Derived, replace: bool) -> Vec<Sql> {
    let mut out = Vec::new();
    if layout.kind != Kind::User {
        return out;
    }
    if replace {
        let mut s = sql(d);
        s.push("DELETE FROM scim_user_emails WHERE user_seq = ").bind(Bind::Int(seq));
        out.push(s);
    }
    if !derived.emails.is_empty() {
        let mut s = sql(d);
        s.push("INSERT INTO scim_user_emails (tenant, user_seq, value_key) VALUES ");
        for (i, e) in derived.emails.iter().enumerate() {
            if i > 0 {
                s.push(", ");
            }
            s.push("(").bind_text(tenant).push(", ").bind(Bind::Int(seq)).push(", ").bind_text(e.as_str()).push(")");
        }
        out.push(s);
    }
    out
}

/// A user's `INSERT … RETURNING seq` made to write its email rows too (PostgreSQL: a
/// data-modifying `WITH`), returning the same.
fn with_emails(insert: Sql, tenant: &str, emails: &[String]) -> Sql {
    let mut s = insert.fork();
    s.push("WITH created AS (").append(insert).push("), emails AS (");
    s.push("INSERT INTO scim_user_emails (tenant, user_seq, value_key) SELECT ").bind_text(tenant);
    s.push(", created.seq, v.value_key FROM created, (VALUES ");
    for (i, e) in emails.iter().enumerate() {
        if i > 0 {
            s.push(", ");
        }
        s.push("(").bind_text(e.as_str()).push(")");
    }
    s.push(") v(value_key)) SELECT seq FROM created");
    s
}

/// Whether a resource of this type may hold rows of `scim_unique_values`.
fn keeps_unique(layout: &Table) -> bool {
    layout.shared || !layout.kind.unique().is_empty()
}

/// The statement that frees every unique value a resource holds.
fn drop_unique(d: Dialect, layout: &Table, tenant: &str, id: &str) -> Sql {
    let mut s = sql(d);
    s.push("DELETE FROM scim_unique_values WHERE resource_id = ").bind_text(id);
    s.push(" AND tenant = ").bind_text(tenant).push(" AND kind = ").bind_text(layout.kind.name());
    s
}

/// Claims a resource's unique values, one statement each, so that a value another
/// resource holds is refused naming its attribute; `replace` frees the ones it held first.
async fn claim_unique(
    tx: &mut dyn Tx,
    layout: &Table,
    tenant: &str,
    id: &str,
    derived: &Derived,
    replace: bool,
) -> Result<()> {
    let d = tx.dialect();
    if replace {
        tx.exec(drop_unique(d, layout, tenant, id)).await?;
    }
    for (attribute, key) in &derived.unique {
        let mut s = sql(d);
        s.push("INSERT INTO scim_unique_values (tenant, kind, attribute, value_key, resource_id) VALUES (");
        s.bind_text(tenant).push(", ").bind_text(layout.kind.name()).push(", ").bind_text(attribute.as_str());
        s.push(", ").bind_text(key.as_str()).push(", ").bind_text(id).push(")");
        tx.exec(s).await.map_err(|e| e.unique_on(attribute))?;
    }
    Ok(())
}

/// The distinct member ids asked for, in the order given (the order members are listed in);
/// a group naming itself is refused.
fn wanted_members<'r>(group_id: &str, refs: &'r [MemberRef]) -> Result<Vec<&'r str>> {
    let mut wanted = Vec::with_capacity(refs.len());
    let mut seen = HashSet::new();
    for r in refs {
        if r.value == group_id {
            return Err(StoreError::InvalidMember("a group cannot be a member of itself".into()));
        }
        if seen.insert(r.value.as_str()) {
            wanted.push(r.value.as_str());
        }
    }
    Ok(wanted)
}

/// The statement that finds which of `ids` are live users or groups of `tenant`: rows of
/// (id, `User` or `Group`).
///
/// On PostgreSQL each one found is locked (`FOR KEY SHARE`, as a foreign key check would)
/// until the transaction ends, so that it cannot be deleted while it is being made a
/// member: a delete that got there first is waited for, and the row, read again, is no
/// longer live; a delete that comes after waits for the membership to commit, and finds it
/// to remove. (SQLite has one writer at a time.)
fn live_members(d: Dialect, tenant: &str, ids: &[&str]) -> Sql {
    let mut s = sql(d);
    for (i, (table, kind)) in [("scim_users", "'User'"), ("scim_groups", "'Group'")].into_iter().enumerate() {
        if i > 0 {
            s.push(" UNION ALL ");
        }
        s.push("SELECT id, ").push(kind).push(" FROM (SELECT id FROM ").push(table);
        s.push(" WHERE tenant = ").bind_text(tenant).push(" AND retired IS NULL AND id IN (");
        bind_list(&mut s, ids.iter().copied());
        s.push(")");
        if d == Dialect::Postgres {
            s.push(" FOR KEY SHARE");
        }
        s.push(") live");
    }
    s
}

/// A member's type as stored.
fn member_type(text: &str) -> &'static str {
    if text == "Group" { "Group" } else { "User" }
}

/// Each of `wanted` with its type, in order; an id that is neither is refused.
fn in_order(wanted: &[&str], found: &HashMap<String, &'static str>) -> Result<Vec<(String, &'static str)>> {
    wanted
        .iter()
        .map(|id| match found.get(*id) {
            Some(kind) => Ok((id.to_string(), *kind)),
            None => Err(StoreError::InvalidMember(format!("member '{id}' is not a User or Group of this service"))),
        })
        .collect()
}

/// Adds members (all of them checked); returns those that were not members yet, in the
/// order given.
async fn add_members(
    tx: &mut dyn Tx,
    tenant: &str,
    group_id: &str,
    group_seq: i64,
    refs: &[MemberRef],
) -> Result<Vec<(String, String)>> {
    let wanted = wanted_members(group_id, refs)?;
    if tx.dialect() == Dialect::Postgres {
        return add_checked_members(tx, tenant, group_seq, &wanted).await;
    }
    let mut found = HashMap::new();
    for chunk in wanted.chunks(500) {
        for row in tx.rows(live_members(tx.dialect(), tenant, chunk)).await? {
            found.insert(row.text(0)?, member_type(row.str(1)?));
        }
    }
    let resolved = in_order(&wanted, &found)?;
    let mut added = Vec::new();
    for chunk in resolved.chunks(200) {
        let mut s = sql(tx.dialect());
        s.push("INSERT INTO scim_members (tenant, group_seq, member_id, member_type) VALUES ");
        for (i, (id, kind)) in chunk.iter().enumerate() {
            if i > 0 {
                s.push(", ");
            }
            s.push("(")
                .bind_text(tenant)
                .push(", ")
                .bind(Bind::Int(group_seq))
                .push(", ")
                .bind_text(id.as_str())
                .push(", ")
                .bind_text(*kind)
                .push(")");
        }
        // The rows inserted, in the order given (RETURNING follows the VALUES).
        s.push(" ON CONFLICT (group_seq, member_id) DO NOTHING RETURNING member_id, member_type");
        for row in tx.rows(s).await? {
            added.push((row.text(0)?, row.text(1)?));
        }
    }
    Ok(added)
}

/// Members checked and added in one statement at most (a chunk of a larger add).
const MEMBER_CHUNK: usize = 500;

/// `add_members` on PostgreSQL: the check that each is a live user or group and the insert
/// in one statement per `MEMBER_CHUNK` members. An unknown one is refused after the insert,
/// which the transaction's rollback undoes.
async fn add_checked_members(
    tx: &mut dyn Tx,
    tenant: &str,
    group_seq: i64,
    wanted: &[&str],
) -> Result<Vec<(String, String)>> {
    let d = tx.dialect();
    let mut found = HashMap::new();
    let mut inserted = HashSet::new();
    for chunk in wanted.chunks(MEMBER_CHUNK) {
        let mut s = sql(d);
        s.push("WITH ");
        checked_insert(&mut s, tenant, group_seq, chunk);
        s.push(" SELECT f.id, f.kind, a.member_id IS NOT NULL FROM found f LEFT JOIN added a ON a.member_id = f.id");
        for row in tx.rows(s).await? {
            let id = row.text(0)?;
            if row.bool(2)? {
                inserted.insert(id.clone());
            }
            found.insert(id, member_type(row.str(1)?));
        }
    }
    Ok(in_order(wanted, &found)?
        .into_iter()
        .filter(|(id, _)| inserted.contains(id))
        .map(|(id, kind)| (id, kind.to_string()))
        .collect())
}

/// PostgreSQL: the `WITH` clauses (after `WITH `) that find which of `ids` (at most
/// `MEMBER_CHUNK`) are live users or groups, `found(id, kind)`, and insert those into the
/// group `group_seq` in the order given, `added(member_id, member_type)` (those that were
/// members already are not).
fn checked_insert(s: &mut Sql, tenant: &str, group_seq: i64, ids: &[&str]) {
    let d = Dialect::Postgres;
    s.push("found(id, kind) AS (").append(live_members(d, tenant, ids)).push("), ");
    s.push("wanted(id, ord) AS (VALUES ");
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            s.push(", ");
        }
        s.push("(").bind_text(*id).push(&format!(", {i})"));
    }
    s.push("), added AS (INSERT INTO scim_members (tenant, group_seq, member_id, member_type) SELECT ");
    s.bind_text(tenant).push(", ").bind(Bind::Int(group_seq));
    // Inserted in the order given: that is the order members are listed in.
    s.push(", f.id, f.kind FROM found f JOIN wanted w ON w.id = f.id ORDER BY w.ord");
    s.push(" ON CONFLICT (group_seq, member_id) DO NOTHING RETURNING member_id, member_type)");
}

/// The statement that removes every member of a group.
fn delete_all_members(d: Dialect, group_seq: i64) -> Sql {
    let mut s = sql(d);
    s.push("DELETE FROM scim_members WHERE group_seq = ").bind(Bind::Int(group_seq));
    s
}

/// Removes every member; returns who they were.
async fn remove_all_members(tx: &mut dyn Tx, group_seq: i64) -> Result<Vec<String>> {
    let mut s = delete_all_members(tx.dialect(), group_seq);
    s.push(" RETURNING member_id");
    tx.rows(s).await?.iter().map(|r| r.text(0).map_err(Into::into)).collect()
}

/// Removes these members; returns those that were members.
async fn remove_members(tx: &mut dyn Tx, group_seq: i64, ids: &[&str]) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for chunk in ids.chunks(500) {
        let mut s = sql(tx.dialect());
        s.push("DELETE FROM scim_members WHERE group_seq = ").bind(Bind::Int(group_seq)).push(" AND member_id IN (");
        bind_list(&mut s, chunk.iter().copied());
        s.push(") RETURNING member_id");
        for row in tx.rows(s).await? {
            removed.push(row.text(0)?);
        }
    }
    Ok(removed)
}

/// Applies membership changes as set operations; returns the members gained and lost.
async fn change_members(
    tx: &mut dyn Tx,
    tenant: &str,
    group_id: &str,
    group_seq: i64,
    changes: &[MemberChange],
) -> Result<Delta> {
    let mut delta = Delta::default();
    for change in changes {
        match change {
            MemberChange::Add(refs) => delta.added(add_members(tx, tenant, group_id, group_seq, refs).await?),
            // The difference only: a replace by the same set changes nothing (no new version),
            // and members that stay keep their place in the list.
            MemberChange::Replace(refs) => {
                let mut s = sql(tx.dialect());
                s.push("SELECT member_id FROM scim_members WHERE group_seq = ").bind(Bind::Int(group_seq));
                let current: HashSet<String> =
                    tx.rows(s).await?.iter().map(|r| r.text(0)).collect::<std::result::Result<_, _>>()?;
                let wanted: HashSet<&str> = refs.iter().map(|r| r.value.as_str()).collect();
                let gone: Vec<&str> = current.iter().map(String::as_str).filter(|m| !wanted.contains(m)).collect();
                delta.removed(remove_members(tx, group_seq, &gone).await?);
                // Resolved all (so that an unknown id is refused even when present).
                delta.added(add_members(tx, tenant, group_id, group_seq, refs).await?);
            }
            MemberChange::RemoveAll => delta.removed(remove_all_members(tx, group_seq).await?),
            MemberChange::Remove(ids) => {
                delta.removed(remove_members(tx, group_seq, &ids.iter().map(String::as_str).collect::<Vec<_>>()).await?)
            }
        }
    }
    Ok(delta)
}

/// The statements that write a modification of `current` (row `seq`) once its members are
/// changed: its events (and email index rows) to run before, and the `UPDATE` that gives
/// it its new version (to be finished: `RETURNING`, or nothing). Each is run only where
/// `guard` (an SQL condition) holds, when given (PostgreSQL).
#[allow(clippy::too_many_arguments)]
async fn modification(
    tx: &mut dyn Tx,
    layout: &Table,
    tenant: &str,
    seq: i64,
    current: &StoredResource,
    change: &Change,
    derived: Option<&Derived>,
    members: &MemberDelta,
    opts: &Modify<'_>,
    guard: Option<&str>,
) -> Result<(Vec<Sql>, Sql)> {
    let (d, kind) = (tx.dialect(), layout.kind);
    let before = without_relations(kind, current);
    // The state this write makes is known before it is written, and so are its events.
    let after = StoredResource {
        attributes: change.attributes.clone().unwrap_or_else(|| before.attributes.clone()),
        last_modified: opts.now.to_string(),
        version: current.version + 1,
        ..before.clone()
    };
    let written = Written {
        kind,
        id: &current.id,
        before: Some(&before),
        after: Some(&after),
        members,
        left_groups: &[],
        now: opts.now,
    };
    let mut together = events::statements(d, tenant, &(opts.record)(&written), opts.now, guard);
    let mut update = sql(d);
    update.push("UPDATE ").push(layout.table);
    if d == Dialect::Postgres {
        // As `t`, for the columns and relations of `RETURNING`.
        update.push(" t");
    }
    update.push(" SET ");
    if let (Some(attrs), Some(new)) = (&change.attributes, derived) {
        push_derived_columns(&mut update, layout, new);
        update.push(", attributes = ");
        bind_json(&mut update, json_text(attrs));
        update.push(", ");
        // Email keys and unique values are rewritten only when they changed.
        let old = derive(kind, &before.attributes)?;
        if old.emails != new.emails {
            together.extend(side_rows(d, layout, tenant, seq, new, true));
        }
        if old.unique != new.unique {
            claim_unique(&mut *tx, layout, tenant, &current.id, new, true).await?;
        }
    }
    update.push("version = version + 1, last_modified = ").bind_text(opts.now);
    update.push(" WHERE seq = ").bind(Bind::Int(seq));
    if let Some(guard) = guard {
        update.push(" AND ").push(guard);
    }
    Ok((together, update))
}

/// A resource without its relation attribute (what events compare).
fn without_relations(kind: Kind, r: &StoredResource) -> StoredResource {
    let mut r = r.clone();
    kind.take_relation(&mut r.attributes);
    r
}

/// Bumps the version of every group a resource is in (it is about to leave them); returns
/// those groups with their new versions.
fn leave_groups(d: Dialect, tenant: &str, id: &str, now: &str) -> Sql {
    let mut s = sql(d);
    s.push("UPDATE scim_groups SET version = version + 1, last_modified = ").bind_text(now).push(" WHERE seq IN (");
    // On PostgreSQL the groups are locked in the order of their row numbers before any is
    // updated: two deletes leaving some of the same groups would otherwise lock them in
    // whatever order each found them, and could deadlock. SQLite has one writer.
    let ordered = d == Dialect::Postgres;
    if ordered {
        s.push("SELECT seq FROM scim_groups WHERE seq IN (");
    }
    s.push("SELECT group_seq FROM scim_members WHERE tenant = ").bind_text(tenant);
    s.push(" AND member_id = ").bind_text(id).push(")");
    if ordered {
        s.push(" ORDER BY seq FOR NO KEY UPDATE)");
    }
    s.push(" RETURNING id, version");
    s
}

/// A live resource about to be deleted, locked, with the groups it leaves and their new
/// versions (`leave_groups`; none for a type that is no member of groups). On PostgreSQL in
/// one statement: the groups' update is a data-modifying `WITH` of the locked read, and a
/// delete refused afterwards (its precondition) rolls it back with the rest.
async fn fetch_leaving_groups(
    tx: &mut dyn Tx,
    layout: &Table,
    tenant: &str,
    id: &str,
    now: &str,
) -> Result<Option<(i64, StoredResource, Vec<(String, i64)>)>> {
    let d = tx.dialect();
    // Only the built-in types are members of groups; SQLite has no round trips to save.
    if !layout.kind.is_built_in() || d == Dialect::Sqlite {
        let Some((seq, current)) = fetch_one(tx, layout, tenant, id, Lock::Delete, Relations::None).await? else {
            return Ok(None);
        };
        let mut left = Vec::new();
        if layout.kind.is_built_in() {
            left = tx.rows(leave_groups(d, tenant, id, now)).await?.iter().map(group_version).collect::<Result<_>>()?;
        }
        return Ok(Some((seq, current, left)));
    }
    let mut s = sql(d);
    s.push("WITH left_groups AS (").append(leave_groups(d, tenant, id, now)).push("), ");
    s.push("left_list(groups) AS (SELECT json_agg(json_build_array(id, version))::text FROM left_groups)");
    // No relations (NULL where `decode` looks for them), then the groups left.
    s.push(" SELECT ").push(columns(d)).push(", NULL, (SELECT groups FROM left_list)");
    from_live_by_id(&mut s, layout, tenant, id);
    // The groups are locked before the resource, wherever the planner computes the output
    // columns: a condition that names no column of the row runs once, before the row is
    // read and locked. In the other order, a delete holding the resource would wait for a
    // group whose writer, adding the resource (again) as a member, waits for the resource
    // (`live_members`): a deadlock.
    s.push(" AND (SELECT true FROM left_list)");
    s.push(Lock::Delete.clause());
    let Some(row) = tx.row(s).await? else { return Ok(None) };
    let (seq, current) = decode(layout.kind, &row)?;
    let left: Vec<(String, i64)> = match row.opt_text(7) {
        Some(list) => serde_json::from_str(&list).map_err(|e| StoreError::Backend(format!("groups left: {e}")))?,
        None => Vec::new(),
    };
    Ok(Some((seq, current, left)))
}

/// A group's id and version, as `leave_groups` returns them.
fn group_version(r: &Row) -> Result<(String, i64)> {
    Ok((r.text(0)?, r.int(1)?))
}

/// Removes a resource from every group it is in (after `leave_groups`).
fn drop_memberships(d: Dialect, tenant: &str, id: &str) -> Sql {
    let mut s = sql(d);
    s.push("DELETE FROM scim_members WHERE tenant = ").bind_text(tenant).push(" AND member_id = ").bind_text(id);
    s
}

/// The related values of a page's resources (`Relations::Capped`), read for just those
/// rows: a correlated subquery in the page's own query would also run for the rows an
/// offset skips.
async fn with_relations(tx: &mut dyn Tx, layout: &Table, items: &mut [(i64, StoredText)]) -> Result<()> {
    let d = tx.dialect();
    for chunk in items.chunks_mut(500) {
        let mut s = sql(d);
        s.push("SELECT t.seq, ").push(relations_column(d, layout.kind, Relations::Capped));
        s.push(" FROM ").push(layout.table).push(" t WHERE t.seq IN (");
        for (i, (seq, _)) in chunk.iter().enumerate() {
            if i > 0 {
                s.push(", ");
            }
            s.bind(Bind::Int(*seq));
        }
        s.push(")");
        let mut lists: HashMap<i64, String> = HashMap::new();
        for row in tx.rows(s).await? {
            if let Some(list) = row.opt_text(1) {
                lists.insert(row.int(0)?, list);
            }
        }
        for (seq, resource) in chunk.iter_mut() {
            if let Some(list) = lists.remove(seq) {
                resource.relations = Some(relation_values(&list)?);
            }
        }
    }
    Ok(())
}

/// Related values read in batches of this many, by keyset on the membership's position.
const BATCH: usize = 1000;

/// The related values of one resource, a batch at a time, in the snapshot `tx` holds.
struct SqlBatches {
    tx: Box<dyn Tx>,
    kind: Kind,
    tenant: String,
    id: String,
    seq: i64,
    /// The position of the last value given.
    after: i64,
    done: bool,
}

#[async_trait]
impl RelationBatches for SqlBatches {
    async fn next(&mut self) -> Result<Option<Vec<Map<String, Value>>>> {
        if self.done {
            return Ok(None);
        }
        let d = self.tx.dialect();
        let mut s = sql(d);
        if self.kind.has_members() {
            s.push("SELECT m.seq, m.member_id, m.member_type, ").push(member_display(d)).push(" FROM ");
            s.push(MEMBERS_AND_TARGETS).push(" WHERE m.group_seq = ").bind(Bind::Int(self.seq));
        } else {
            s.push("SELECT m.seq, g.id, NULL, g.display_name FROM ").push(MEMBERSHIPS_AND_GROUPS);
            s.push(" WHERE m.member_id = ").bind_text(self.id.as_str());
            s.push(" AND m.tenant = ").bind_text(self.tenant.as_str());
        }
        s.push(" AND m.seq > ").bind(Bind::Int(self.after)).push(" ORDER BY m.seq LIMIT ").push(&BATCH.to_string());
        let rows = self.tx.rows(s).await?;
        self.done = rows.len() < BATCH;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut values = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut v = Map::new();
            v.insert("value".into(), Value::String(row.text(1)?));
            if let Some(kind) = row.opt_text(2) {
                v.insert("type".into(), Value::String(kind));
            }
            if let Some(display) = row.opt_text(3) {
                v.insert("display".into(), Value::String(display));
            }
            values.push(v);
        }
        self.after = rows.last().map(|r| r.int(0)).transpose()?.unwrap_or(self.after);
        Ok(Some(values))
    }
}

/// Sets the derived columns and the document of a resource row.
fn push_derived_columns(s: &mut Sql, layout: &Table, d: &Derived) {
    s.push(layout.name_column).push(" = ");
    bind_opt(s, d.name.as_deref());
    s.push(", ").push(layout.name_key_column).push(" = ");
    bind_opt(s, d.name_key.as_deref());
    s.push(", external_id = ");
    bind_opt(s, d.external_id.as_deref());
    if layout.kind == Kind::User {
        s.push(", active = ");
        match d.active {
            Some(a) => bind_bool(s, a),
            None => {
                s.push("NULL");
            }
        }
    }
}

/// The writes, each one transaction, run again by `retrying` after a conflict.
///
/// Round trips count on PostgreSQL: statements that do not depend on one another go
/// together (`Tx::batch`), and a write's events, whose content is known before the write is
/// made, go with the write itself. A PATCH or PUT of a user is then BEGIN, the locked read,
/// one UPDATE (with its email keys, its events and the new state in `RETURNING`), COMMIT.
impl<P: Pools> SqlStore<P> {
    async fn create_once(
        &self,
        tenant: &str,
        kind: Kind,
        new: &NewResource,
        record: &Record<'_>,
    ) -> Result<StoredResource> {
        let layout = &table(kind);
        let d = derive(kind, &new.attributes)?;
        let json = json_text(&new.attributes);
        let mut tx = self.pools.write().await?;
        let dialect = tx.dialect();
        let mut s = sql(dialect);
        s.push("INSERT INTO ").push(layout.table).push(" (tenant, ");
        if layout.shared {
            s.push("kind, ");
        }
        s.push("id, ").push(layout.name_column).push(", ").push(layout.name_key_column).push(", external_id");
        if kind == Kind::User {
            s.push(", active");
        }
        s.push(", attributes, created, last_modified, version) VALUES (").bind_text(tenant).push(", ");
        if layout.shared {
            s.bind_text(kind.name()).push(", ");
        }
        s.bind_text(new.id.as_str()).push(", ");
        bind_opt(&mut s, d.name.as_deref());
        s.push(", ");
        bind_opt(&mut s, d.name_key.as_deref());
        s.push(", ");
        bind_opt(&mut s, d.external_id.as_deref());
        if kind == Kind::User {
            s.push(", ");
            match d.active {
                Some(a) => bind_bool(&mut s, a),
                None => {
                    s.push("NULL");
                }
            }
        }
        s.push(", ");
        bind_json(&mut s, json);
        s.push(", ").bind_text(new.now.as_str()).push(", ").bind_text(new.now.as_str()).push(", 1) RETURNING seq");
        let stored = StoredResource {
            id: new.id.clone(),
            attributes: new.attributes.clone(),
            created: new.now.clone(),
            last_modified: new.now.clone(),
            version: 1,
        };
        let events_of = |members: &MemberDelta| {
            let written = Written {
                kind,
                id: &new.id,
                before: None,
                after: Some(&stored),
                members,
                left_groups: &[],
                now: &new.now,
            };
            events::statements(dialect, tenant, &record(&written), &new.now, None)
        };
        // A group's events name the members it was created with: they follow the members.
        let with_members = kind.has_members() && !new.members.is_empty();
        let events_now = if with_members { vec![] } else { events_of(&MemberDelta::default()) };
        // On PostgreSQL a user's email rows go with the row itself, in one statement.
        let emails_along = dialect == Dialect::Postgres && kind == Kind::User && !d.emails.is_empty();
        let insert = if emails_along { with_emails(s, tenant, &d.emails) } else { s };
        let row = tx
            .batch(events_now, insert)
            .await
            .map_err(|e| e.unique_on(layout.name_attr))?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::Backend("INSERT returned no row".into()))?;
        let seq = row.int(0)?;
        if !emails_along {
            for s in side_rows(dialect, layout, tenant, seq, &d, false) {
                tx.exec(s).await?;
            }
        }
        if !d.unique.is_empty() {
            claim_unique(&mut *tx, layout, tenant, &new.id, &d, false).await?;
        }
        if with_members {
            let members = MemberDelta {
                added: add_members(&mut *tx, tenant, &new.id, seq, &new.members).await?,
                ..MemberDelta::default()
            };
            for s in events_of(&members) {
                tx.exec(s).await?;
            }
        }
        tx.commit().await.map_err(|e| e.unique_on(layout.name_attr))?;
        Ok(stored)
    }

    async fn modify_once(
        &self,
        tenant: &str,
        kind: Kind,
        id: &str,
        opts: Modify<'_>,
        decide: &Decide<'_>,
    ) -> Result<StoredResource> {
        let layout = &table(kind);
        let mut tx = self.pools.write().await?;
        let d = tx.dialect();
        // The current state, locked until commit (SQLite: the single writer; PostgreSQL: FOR UPDATE).
        let Some((seq, current)) = fetch_one(
            &mut *tx,
            layout,
            tenant,
            id,
            Lock::Change,
            if opts.load_relations { Relations::All } else { Relations::None },
        )
        .await?
        else {
            return Err(StoreError::NotFound);
        };
        let change = decide(&current).map_err(StoreError::Rejected)?;
        let mut members = Delta::default();
        if kind.has_members() && !change.members.is_empty() {
            match quick_add::applies(d, &change, &opts) {
                Some(refs) => match quick_add::run(&mut *tx, layout, tenant, id, seq, &current, refs, &opts).await? {
                    quick_add::Outcome::Written(after) => {
                        tx.commit().await?;
                        return Ok(after);
                    }
                    quick_add::Outcome::Added(added) => members.added(added),
                },
                None => members = change_members(&mut *tx, tenant, id, seq, &change.members).await?,
            }
        }
        let derived = change.attributes.as_ref().map(|attrs| derive(kind, attrs)).transpose()?;
        if derived.is_none() && !members.rows_changed {
            // Nothing to write: the state as it is (no new version, no event); read again
            // only for the relations it is to be returned with.
            let after = if opts.return_relations {
                fetch_one(&mut *tx, layout, tenant, id, Lock::No, Relations::Capped)
                    .await?
                    .ok_or(StoreError::NotFound)?
                    .1
            } else {
                without_relations(kind, &current)
            };
            tx.commit().await?;
            return Ok(after);
        }
        let members = members.net();
        let (together, mut update) =
            modification(&mut *tx, layout, tenant, seq, &current, &change, derived.as_ref(), &members, &opts, None)
                .await?;
        let after = match d {
            // The new state comes back from the UPDATE itself.
            Dialect::Postgres => {
                update.push(" RETURNING ").push(columns(d));
                if opts.return_relations {
                    update.push(", ").push(relations_column(d, kind, Relations::Capped));
                }
                let row = tx.batch(together, update).await.map_err(|e| e.unique_on(layout.name_attr))?;
                let row = row.first().ok_or(StoreError::NotFound)?;
                decode(kind, row)?.1
            }
            // SQLite: no round trips to save, and its RETURNING cannot carry the relations.
            Dialect::Sqlite => {
                tx.batch(together, update).await.map_err(|e| e.unique_on(layout.name_attr))?;
                fetch_one(&mut *tx, layout, tenant, id, Lock::No, Relations::of(opts.return_relations))
                    .await?
                    .ok_or(StoreError::NotFound)?
                    .1
            }
        };
        tx.commit().await.map_err(|e| e.unique_on(layout.name_attr))?;
        Ok(after)
    }

    async fn delete_once(&self, tenant: &str, kind: Kind, id: &str, how: &Deletion<'_>) -> Result<bool> {
        let layout = &table(kind);
        let now = how.now;
        let mut tx = self.pools.write().await?;
        let d = tx.dialect();
        let Some((seq, current, left_groups)) = fetch_leaving_groups(&mut *tx, layout, tenant, id, now).await? else {
            return Ok(false);
        };
        if how.expected_version.is_some_and(|v| v != current.version) {
            return Err(StoreError::VersionMismatch);
        }
        let none = MemberDelta::default();
        let written =
            Written { kind, id, before: Some(&current), after: None, members: &none, left_groups: &left_groups, now };
        let mut together = events::statements(d, tenant, &(how.record)(&written), now, None);
        if keeps_unique(layout) {
            together.push(drop_unique(d, layout, tenant, id));
        }
        let mut s = sql(d);
        match how.policy {
            DeletePolicy::Erase => {
                s.push("DELETE FROM ").push(layout.table).push(" WHERE seq = ").bind(Bind::Int(seq));
            }
            DeletePolicy::Retire | DeletePolicy::Deactivate => {
                // A retired group keeps no members. (`seq` numbers rows of this resource's
                // own table: only a group's is a `group_seq`.)
                if kind.has_members() {
                    together.push(delete_all_members(d, seq));
                }
                s.push("UPDATE ")
                    .push(layout.table)
                    .push(" SET retired = ")
                    .bind_text(now)
                    .push(", version = version + 1, last_modified = ")
                    .bind_text(now);
                if kind.has_active() {
                    s.push(", active = ");
                    bind_bool(&mut s, false);
                    s.push(match d {
                        Dialect::Sqlite => ", attributes = json_set(attributes, '$.active', json('false'))",
                        Dialect::Postgres => ", attributes = jsonb_set(attributes, '{active}', 'false'::jsonb)",
                    });
                }
                s.push(" WHERE seq = ").bind(Bind::Int(seq));
            }
        }
        if kind.is_built_in() {
            // Removed last, so that the rows removed tell which groups it was in.
            together.push(s);
            let mut dropped = drop_memberships(d, tenant, id);
            dropped.push(" RETURNING group_seq");
            if tx.batch(together, dropped).await?.len() != left_groups.len() {
                // PostgreSQL: the groups left were read before the lock on the resource was
                // granted; a membership added or removed by a write this one waited for is
                // not among them, and their versions and events would be wrong. Afresh.
                let why = "memberships changed during the delete".to_string();
                return Err(StoreError::Unavailable(Outage::Conflict(Conflict::Changed), why));
            }
        } else {
            tx.batch(together, s).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}

/// One page of a list, on one database, at the query's offset or after the row `after`.
async fn list_on(
    pools: &dyn Pools,
    tenant: &str,
    kind: Kind,
    q: &ListQuery<'_>,
    after: Option<&After>,
) -> Result<ListPage<StoredText>> {
    if pools.dialect() == Dialect::Postgres {
        return list_in_one_statement(pools, tenant, kind, q, after).await;
    }
    let mut tx = pools.read().await?;
    // No relations column (they are read apart, below): the sort values follow (`decode`
    // reads relations at column 6).
    let select = format!("{}, NULL", columns(tx.dialect()));
    let (total, rows) = query_page(&mut *tx, own_view(kind), &select, tenant, q, after).await?;
    let sort_values = sort_values(pools.dialect(), own_view(kind), tenant, q, &rows);
    let mut items = rows.iter().map(decode_text).collect::<Result<Vec<_>>>()?;
    if q.with_relations && kind.relation().is_some() {
        with_relations(&mut *tx, &table(kind), &mut items).await?;
    }
    tx.commit().await?;
    let (keys, resources) = items.into_iter().unzip();
    Ok(ListPage { total, resources, keys, sort_values })
}

/// PostgreSQL: a page, its rows' relations and the total in one statement (one snapshot, one
/// round trip, no transaction to open and close); the total alone when the page is empty.
async fn list_in_one_statement(
    pools: &dyn Pools,
    tenant: &str,
    kind: Kind,
    q: &ListQuery<'_>,
    after: Option<&After>,
) -> Result<ListPage<StoredText>> {
    let d = Dialect::Postgres;
    let view = own_view(kind);
    let Listing { from, count } = listing(d, view, tenant, q)?;
    let (from, q) = keyset(d, view, tenant, from, q, after)?;
    let total_of = |rows: &[Row]| rows.first().map(|r| r.int(0)).transpose().map(|n| n.unwrap_or(0) as u64);
    if q.count == 0 {
        return Ok(ListPage::empty(total_of(&pools.read_one(count).await?)?));
    }
    let mut select = sql(d);
    select.push(columns(d)).push(", ");
    if q.with_relations && kind.relation().is_some() {
        // Correlated with the page's rows only: the page's keys are found first.
        select.push(relations_column(d, kind, Relations::Capped));
    } else {
        select.push("NULL");
    }
    select.push(", (").append(count.clone()).push(")");
    let rows = pools.read_one(page_statement(d, view, select, tenant, &q, from)?).await?;
    let Some(first) = rows.first() else {
        return Ok(ListPage::empty(total_of(&pools.read_one(count).await?)?));
    };
    let total = first.int(7)? as u64;
    let sort_values = sort_values(d, view, tenant, &q, &rows);
    let items = rows.iter().map(decode_text).collect::<Result<Vec<_>>>()?;
    let (keys, resources) = items.into_iter().unzip();
    Ok(ListPage { total, resources, keys, sort_values })
}

/// A resource and its relations in batches, from one snapshot of one database.
async fn open_relations_on(pools: &dyn Pools, tenant: &str, kind: Kind, id: &str) -> Result<Option<RelationStream>> {
    let mut tx = pools.snapshot().await?;
    let Some((seq, resource)) = fetch_one(&mut *tx, &table(kind), tenant, id, Lock::No, Relations::None).await? else {
        return Ok(None);
    };
    let batches = SqlBatches { tx, kind, tenant: tenant.into(), id: id.into(), seq, after: i64::MIN, done: false };
    Ok(Some(RelationStream { resource, batches: Box::new(batches) }))
}

impl<P: Pools> SqlStore<P> {
    /// A live resource, read where reads go (`read_where`), in one statement.
    async fn read_text(&self, tenant: &str, kind: Kind, id: &str, relations: Relations) -> Result<Option<StoredText>> {
        let select = select_one(self.pools.dialect(), &table(kind), tenant, id, relations);
        let rows = read_where(&self.pools, tenant, |pools| Box::pin(pools.read_one(select.clone()))).await?;
        Ok(rows.first().map(decode_text).transpose()?.map(|(_, text)| text))
    }
}

#[async_trait]
impl<P: Pools> Store for SqlStore<P> {
    async fn create(&self, tenant: &str, kind: Kind, new: NewResource, record: &Record<'_>) -> Result<StoredResource> {
        let done = retrying(&self.conflicts, || self.create_once(tenant, kind, &new, record)).await;
        self.pools.wrote(tenant);
        self.recorded(done)
    }

    async fn get(&self, tenant: &str, kind: Kind, id: &str, with_rel: bool) -> Result<Option<StoredResource>> {
        self.read_text(tenant, kind, id, Relations::of(with_rel)).await?.map(|text| text.parsed(kind)).transpose()
    }

    async fn get_text(&self, tenant: &str, kind: Kind, id: &str, with_rel: bool) -> Result<Option<StoredText>> {
        self.read_text(tenant, kind, id, Relations::of(with_rel)).await
    }

    async fn modify(
        &self,
        tenant: &str,
        kind: Kind,
        id: &str,
        opts: Modify<'_>,
        decide: &Decide<'_>,
    ) -> Result<StoredResource> {
        let done = retrying(&self.conflicts, || self.modify_once(tenant, kind, id, opts.clone(), decide)).await;
        self.pools.wrote(tenant);
        self.recorded(done)
    }

    async fn delete(&self, tenant: &str, kind: Kind, id: &str, how: Deletion<'_>) -> Result<bool> {
        let done = retrying(&self.conflicts, || self.delete_once(tenant, kind, id, &how)).await;
        self.pools.wrote(tenant);
        self.recorded(done)
    }

    async fn list(&self, tenant: &str, kind: Kind, q: &ListQuery<'_>) -> Result<ListPage> {
        self.list_text(tenant, kind, q).await?.try_map(|text| text.parsed(kind))
    }

    async fn list_text(&self, tenant: &str, kind: Kind, q: &ListQuery<'_>) -> Result<ListPage<StoredText>> {
        // In the rows' own order only: their order key is then their position (`keyset`).
        let own_order = q.sort.is_none();
        let filter = q.filter.map(|f| f.to_string());
        let after = q.after.clone().or_else(|| {
            own_order
                .then(|| self.page_ends.start_after(tenant, kind, filter.clone(), q.offset))
                .flatten()
                .map(|key| After { key, sort: None })
        });
        let page =
            read_where(&self.pools, tenant, |pools| Box::pin(list_on(pools, tenant, kind, q, after.as_ref()))).await?;
        if let (true, None, Some(&last)) = (own_order, &q.after, page.keys.last()) {
            self.page_ends.ended(tenant, kind, filter, q.offset + page.resources.len() as u64, last);
        }
        Ok(page)
    }

    async fn open_relations(&self, tenant: &str, kind: Kind, id: &str) -> Result<Option<RelationStream>> {
        read_where(&self.pools, tenant, |pools| Box::pin(open_relations_on(pools, tenant, kind, id))).await
    }

    fn db_stats(&self) -> scimd_core::stats::DbStats {
        scimd_core::stats::DbStats { conflicts: self.conflicts.snapshot(), ..self.pools.stats() }
    }

    async fn ping(&self) -> Result<()> {
        if self.pools.storage_full() {
            let why = "less than 1 MiB free on the database's disk".to_string();
            return Err(StoreError::Unavailable(scimd_core::store::Outage::StorageFull, why));
        }
        if self.writes.failing().is_some() {
            let probe = self.probe_write().await;
            self.writes.record(&probe);
            if let Some((outage, why)) = self.writes.failing() {
                return Err(StoreError::Unavailable(outage, format!("writes are failing: {why}")));
            }
        }
        self.pools.read_one(sql(self.pools.dialect()).push("SELECT 1").clone()).await?;
        Ok(())
    }
}

#[async_trait]
impl<P: Pools> EventLog for SqlStore<P> {
    async fn events_after(&self, tenant: &str, after: i64, limit: u32) -> Result<Vec<LoggedEvent>> {
        events::after(&self.pools, tenant, after, limit).await
    }

    async fn last_seq(&self, tenant: &str) -> Result<i64> {
        events::last(&self.pools, tenant).await
    }

    async fn count_after(&self, tenant: &str, after: i64) -> Result<u64> {
        events::count(&self.pools, tenant, after).await
    }

    async fn prune_events(&self, before: &str) -> Result<u64> {
        events::prune(&self.pools, before, true).await
    }
}
