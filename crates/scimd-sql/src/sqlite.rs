//! The store on SQLite: WAL mode, one writer connection (SQLite has one writer at a time;
//! queuing in-process is cheaper than lock retries), a pool of readers, and every
//! request in one transaction.

use crate::compile::Compiler;
use crate::layout::{Layout, layout};
use crate::rows::{Derived, RelationRow, assemble, derive};
use crate::sql::{Bind, Dialect, Sql};
use async_trait::async_trait;
use scimd_core::store::{
    DeletePolicy, Kind, ListPage, ListQuery, MemberChange, MemberRef, NewResource, Store,
    StoreError, StoredResource, Update,
};
use scimd_core::tokens::{TokenInfo, TokenStore};
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row, Sqlite, SqliteConnection, SqlitePool};
use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

/// Durability of acknowledged writes (SQLite `synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=NORMAL` in WAL mode: a committed write survives a crash of scimd;
    /// the last commits before a power loss or OS crash may be lost.
    #[default]
    Normal,
    /// `synchronous=FULL`: every commit is on disk before it is acknowledged.
    Full,
}

#[derive(Debug, Clone)]
pub struct SqliteSettings {
    pub durability: Durability,
    /// Reader connections (writes always use one connection).
    pub readers: u32,
    pub busy_timeout: Duration,
}

impl Default for SqliteSettings {
    fn default() -> Self {
        SqliteSettings {
            durability: Durability::Normal,
            readers: 4,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

pub struct SqliteStore {
    read: SqlitePool,
    write: SqlitePool,
}

type Result<T> = std::result::Result<T, StoreError>;

fn backend(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Maps a write error: a unique-index violation is the client's duplicate.
fn write_error(layout: &Layout) -> impl Fn(sqlx::Error) -> StoreError + '_ {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Uniqueness(layout.name_attr.to_string())
        }
        _ => backend(e),
    }
}

fn query(sql: Sql) -> sqlx::query::Query<'static, Sqlite, SqliteArguments> {
    let mut q = sqlx::query(AssertSqlSafe(sql.text));
    for b in sql.binds {
        q = match b {
            Bind::Text(s) => q.bind(s),
            Bind::Int(i) => q.bind(i),
            Bind::Float(f) => q.bind(f),
            Bind::Bool(v) => q.bind(v),
        };
    }
    q
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://PATH`, `sqlite:PATH` or
    /// `sqlite::memory:`) and applies migrations.
    pub async fn open(url: &str, settings: &SqliteSettings) -> Result<SqliteStore> {
        let memory = url.contains(":memory:");
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Backend(format!("invalid SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(if memory {
                SqliteJournalMode::Memory
            } else {
                SqliteJournalMode::Wal
            })
            .synchronous(match settings.durability {
                Durability::Normal => SqliteSynchronous::Normal,
                Durability::Full => SqliteSynchronous::Full,
            })
            .foreign_keys(true)
            .busy_timeout(settings.busy_timeout)
            .statement_cache_capacity(256);
        let pool = |max: u32| {
            SqlitePoolOptions::new()
                .max_connections(max)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .after_connect(|conn, _meta| {
                    Box::pin(async move {
                        let mut handle = conn.lock_handle().await?;
                        crate::fold::register(handle.as_raw_handle())
                            .map_err(|e| sqlx::Error::Configuration(e.into()))?;
                        Ok(())
                    })
                })
                .connect_with(options.clone())
        };
        let write = pool(1).await.map_err(backend)?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&write)
            .await
            .map_err(|e| StoreError::Backend(format!("migration failed: {e}")))?;
        // An in-memory database exists per connection: readers must share the writer's.
        let read = if memory {
            write.clone()
        } else {
            pool(settings.readers.max(1)).await.map_err(backend)?
        };
        Ok(SqliteStore { read, write })
    }

    /// Runs SQLite's own consistency check (`PRAGMA integrity_check`).
    pub async fn integrity_check(&self) -> Result<String> {
        let row = sqlx::query("PRAGMA integrity_check")
            .fetch_one(&self.read)
            .await
            .map_err(backend)?;
        row.try_get::<String, _>(0).map_err(backend)
    }

    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

async fn find_row(
    conn: &mut SqliteConnection,
    layout: &Layout,
    tenant: &str,
    id: &str,
) -> Result<Option<(i64, i64)>> {
    let mut sql = Sql::new(Dialect::Sqlite);
    sql.push("SELECT seq, version FROM ")
        .push(layout.table)
        .push(" WHERE tenant = ")
        .bind_text(tenant)
        .push(" AND id = ")
        .bind_text(id)
        .push(" AND retired IS NULL");
    let row = query(sql)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(row.map(|r| (r.get::<i64, _>(0), r.get::<i64, _>(1))))
}

/// Writes the derived columns for a resource (insert or update).
async fn write_derived(
    conn: &mut SqliteConnection,
    layout: &Layout,
    tenant: &str,
    seq: i64,
    d: &Derived,
    replace: bool,
) -> Result<()> {
    if layout.kind != Kind::User {
        return Ok(());
    }
    if replace {
        sqlx::query("DELETE FROM scim_user_emails WHERE user_seq = ?")
            .bind(seq)
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
    }
    for email in &d.emails {
        sqlx::query("INSERT INTO scim_user_emails (tenant, user_seq, value_key) VALUES (?, ?, ?)")
            .bind(tenant)
            .bind(seq)
            .bind(email)
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
    }
    Ok(())
}

/// Checks member references and finds their types. Unknown ids and the group itself are
/// refused.
async fn resolve_members(
    conn: &mut SqliteConnection,
    tenant: &str,
    group_id: &str,
    refs: &[MemberRef],
) -> Result<Vec<(String, &'static str)>> {
    let mut wanted: Vec<&str> = Vec::with_capacity(refs.len());
    let mut seen = HashSet::new();
    for r in refs {
        if r.value == group_id {
            return Err(StoreError::InvalidMember(
                "a group cannot be a member of itself".into(),
            ));
        }
        if seen.insert(r.value.as_str()) {
            wanted.push(&r.value);
        }
    }
    let mut found: Vec<(String, &'static str)> = Vec::with_capacity(wanted.len());
    for chunk in wanted.chunks(500) {
        for (table, kind) in [("scim_users", "User"), ("scim_groups", "Group")] {
            let mut sql = Sql::new(Dialect::Sqlite);
            sql.push("SELECT id FROM ")
                .push(table)
                .push(" WHERE tenant = ")
                .bind_text(tenant)
                .push(" AND retired IS NULL AND id IN (");
            for (i, id) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.bind_text(*id);
            }
            sql.push(")");
            for row in query(sql).fetch_all(&mut *conn).await.map_err(backend)? {
                found.push((row.get::<String, _>(0), kind));
            }
        }
    }
    if found.len() < wanted.len() {
        let known: HashSet<&str> = found.iter().map(|(id, _)| id.as_str()).collect();
        let missing = wanted
            .iter()
            .find(|id| !known.contains(**id))
            .copied()
            .unwrap_or_default();
        return Err(StoreError::InvalidMember(format!(
            "member '{missing}' is not a User or Group of this service"
        )));
    }
    Ok(found)
}

/// Applies membership changes; returns whether any row changed.
async fn change_members(
    conn: &mut SqliteConnection,
    tenant: &str,
    group_id: &str,
    group_seq: i64,
    changes: &[MemberChange],
) -> Result<bool> {
    let mut changed = false;
    for change in changes {
        match change {
            MemberChange::Add(refs) => {
                changed |= add_members(conn, tenant, group_id, group_seq, refs).await?
            }
            MemberChange::Replace(refs) => {
                let doomed = sqlx::query("DELETE FROM scim_members WHERE group_seq = ?")
                    .bind(group_seq)
                    .execute(&mut *conn)
                    .await
                    .map_err(backend)?;
                let added = add_members(conn, tenant, group_id, group_seq, refs).await?;
                changed |= doomed.rows_affected() > 0 || added;
            }
            MemberChange::RemoveAll => {
                let r = sqlx::query("DELETE FROM scim_members WHERE group_seq = ?")
                    .bind(group_seq)
                    .execute(&mut *conn)
                    .await
                    .map_err(backend)?;
                changed |= r.rows_affected() > 0;
            }
            MemberChange::Remove(ids) => {
                for chunk in ids.chunks(500) {
                    let mut sql = Sql::new(Dialect::Sqlite);
                    sql.push("DELETE FROM scim_members WHERE group_seq = ")
                        .bind(Bind::Int(group_seq))
                        .push(" AND member_id IN (");
                    for (i, id) in chunk.iter().enumerate() {
                        if i > 0 {
                            sql.push(", ");
                        }
                        sql.bind_text(id.as_str());
                    }
                    sql.push(")");
                    changed |= query(sql)
                        .execute(&mut *conn)
                        .await
                        .map_err(backend)?
                        .rows_affected()
                        > 0;
                }
            }
        }
    }
    Ok(changed)
}

async fn add_members(
    conn: &mut SqliteConnection,
    tenant: &str,
    group_id: &str,
    group_seq: i64,
    refs: &[MemberRef],
) -> Result<bool> {
    let resolved = resolve_members(conn, tenant, group_id, refs).await?;
    let mut changed = false;
    for chunk in resolved.chunks(200) {
        let mut sql = Sql::new(Dialect::Sqlite);
        sql.push("INSERT INTO scim_members (tenant, group_seq, member_id, member_type) VALUES ");
        for (i, (id, kind)) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push("(")
                .bind_text(tenant)
                .push(", ")
                .bind(Bind::Int(group_seq))
                .push(", ")
                .bind_text(id.as_str())
                .push(", ")
                .bind_text(*kind)
                .push(")");
        }
        sql.push(" ON CONFLICT (group_seq, member_id) DO NOTHING");
        changed |= query(sql)
            .execute(&mut *conn)
            .await
            .map_err(backend)?
            .rows_affected()
            > 0;
    }
    Ok(changed)
}

/// Removes a resource from every group it belongs to, bumping those groups' versions.
async fn drop_memberships(
    conn: &mut SqliteConnection,
    tenant: &str,
    id: &str,
    now: &str,
) -> Result<()> {
    sqlx::query("UPDATE scim_groups SET version = version + 1, last_modified = ? WHERE seq IN (SELECT group_seq FROM scim_members WHERE tenant = ? AND member_id = ?)")
        .bind(now)
        .bind(tenant)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    sqlx::query("DELETE FROM scim_members WHERE tenant = ? AND member_id = ?")
        .bind(tenant)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(())
}

/// Loads the relation rows (members of groups, groups of users) for resources by seq.
async fn relations(
    conn: &mut SqliteConnection,
    kind: Kind,
    tenant: &str,
    owners: &[(i64, String)],
) -> Result<Vec<RelationRow>> {
    let mut out = Vec::new();
    for chunk in owners.chunks(500) {
        let mut sql = Sql::new(Dialect::Sqlite);
        match kind {
            Kind::Group => {
                sql.push(
                    "SELECT m.group_seq, m.member_id, m.member_type, COALESCE(json_extract(u.attributes, '$.displayName'), u.user_name, g.display_name) \
                     FROM scim_members m \
                     LEFT JOIN scim_users u ON m.member_type = 'User' AND u.tenant = m.tenant AND u.id = m.member_id \
                     LEFT JOIN scim_groups g ON m.member_type = 'Group' AND g.tenant = m.tenant AND g.id = m.member_id \
                     WHERE m.group_seq IN (",
                );
                for (i, (seq, _)) in chunk.iter().enumerate() {
                    if i > 0 {
                        sql.push(", ");
                    }
                    sql.bind(Bind::Int(*seq));
                }
                sql.push(") ORDER BY m.seq");
                for row in query(sql).fetch_all(&mut *conn).await.map_err(backend)? {
                    out.push(RelationRow {
                        owner: row.get(0),
                        value: row.get(1),
                        kind: Some(row.get(2)),
                        display: row.get(3),
                    });
                }
            }
            Kind::User => {
                sql.push("SELECT u.seq, g.id, g.display_name FROM scim_members m JOIN scim_groups g ON g.seq = m.group_seq JOIN scim_users u ON u.tenant = m.tenant AND u.id = m.member_id WHERE m.tenant = ")
                    .bind_text(tenant)
                    .push(" AND m.member_id IN (");
                for (i, (_, id)) in chunk.iter().enumerate() {
                    if i > 0 {
                        sql.push(", ");
                    }
                    sql.bind_text(id.as_str());
                }
                sql.push(") ORDER BY m.seq");
                for row in query(sql).fetch_all(&mut *conn).await.map_err(backend)? {
                    out.push(RelationRow {
                        owner: row.get(0),
                        value: row.get(1),
                        kind: None,
                        display: row.get(2),
                    });
                }
            }
        }
    }
    Ok(out)
}

const COLUMNS: &str = "t.seq, t.id, t.attributes, t.created, t.last_modified, t.version";

fn decode(row: &sqlx::sqlite::SqliteRow) -> Result<(i64, StoredResource)> {
    let text: String = row.try_get(2).map_err(backend)?;
    let attributes = serde_json::from_str(&text)
        .map_err(|e| StoreError::Backend(format!("corrupt attributes: {e}")))?;
    Ok((
        row.try_get(0).map_err(backend)?,
        StoredResource {
            id: row.try_get(1).map_err(backend)?,
            attributes,
            created: row.try_get(3).map_err(backend)?,
            last_modified: row.try_get(4).map_err(backend)?,
            version: row.try_get(5).map_err(backend)?,
        },
    ))
}

#[async_trait]
impl Store for SqliteStore {
    async fn create(&self, tenant: &str, kind: Kind, new: NewResource) -> Result<StoredResource> {
        let layout = layout(kind);
        let d = derive(kind, &new.attributes)?;
        let json = serde_json::Value::Object(new.attributes.clone()).to_string();
        let mut tx = self.write.begin().await.map_err(backend)?;
        let mut sql = Sql::new(Dialect::Sqlite);
        sql.push("INSERT INTO ")
            .push(layout.table)
            .push(" (tenant, id, ")
            .push(layout.name_column)
            .push(", ")
            .push(layout.name_key_column);
        sql.push(if kind == Kind::User {
            ", external_id, active, attributes, created, last_modified, version) VALUES ("
        } else {
            ", external_id, attributes, created, last_modified, version) VALUES ("
        });
        sql.bind_text(tenant)
            .push(", ")
            .bind_text(new.id.as_str())
            .push(", ")
            .bind_text(d.name.as_str())
            .push(", ")
            .bind_text(d.name_key.as_str())
            .push(", ");
        match &d.external_id {
            Some(e) => sql.bind_text(e.as_str()),
            None => sql.push("NULL"),
        };
        if kind == Kind::User {
            sql.push(", ");
            match d.active {
                Some(a) => sql.bind(Bind::Int(a as i64)),
                None => sql.push("NULL"),
            };
        }
        sql.push(", ")
            .bind_text(json)
            .push(", ")
            .bind_text(new.now.as_str())
            .push(", ")
            .bind_text(new.now.as_str())
            .push(", 1) RETURNING seq");
        let seq: i64 = query(sql)
            .fetch_one(&mut *tx)
            .await
            .map_err(write_error(layout))?
            .get(0);
        write_derived(&mut tx, layout, tenant, seq, &d, false).await?;
        if kind == Kind::Group && !new.members.is_empty() {
            add_members(&mut tx, tenant, &new.id, seq, &new.members).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(StoredResource {
            id: new.id,
            attributes: new.attributes,
            created: new.now.clone(),
            last_modified: new.now,
            version: 1,
        })
    }

    async fn get(
        &self,
        tenant: &str,
        kind: Kind,
        id: &str,
        with_relations: bool,
    ) -> Result<Option<StoredResource>> {
        let layout = layout(kind);
        let mut tx = self.read.begin().await.map_err(backend)?;
        let mut sql = Sql::new(Dialect::Sqlite);
        sql.push("SELECT ")
            .push(COLUMNS)
            .push(" FROM ")
            .push(layout.table)
            .push(" t WHERE t.tenant = ")
            .bind_text(tenant)
            .push(" AND t.id = ")
            .bind_text(id)
            .push(" AND t.retired IS NULL");
        let Some(row) = query(sql).fetch_optional(&mut *tx).await.map_err(backend)? else {
            return Ok(None);
        };
        let (seq, stored) = decode(&row)?;
        let mut items = vec![(seq, stored)];
        if with_relations {
            let owners: Vec<(i64, String)> =
                items.iter().map(|(s, r)| (*s, r.id.clone())).collect();
            let rel = relations(&mut tx, kind, tenant, &owners).await?;
            assemble(kind, &mut items, rel);
        }
        tx.commit().await.map_err(backend)?;
        Ok(items.pop().map(|(_, r)| r))
    }

    async fn update(&self, tenant: &str, kind: Kind, id: &str, update: Update) -> Result<i64> {
        let layout = layout(kind);
        let derived = update
            .attributes
            .as_ref()
            .map(|a| derive(kind, a))
            .transpose()?;
        let mut tx = self.write.begin().await.map_err(backend)?;
        let (seq, version) = find_row(&mut tx, layout, tenant, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        if update.expected_version.is_some_and(|v| v != version) {
            return Err(StoreError::VersionMismatch);
        }
        let mut changed = false;
        if let (Some(attrs), Some(d)) = (&update.attributes, &derived) {
            let mut sql = Sql::new(Dialect::Sqlite);
            sql.push("UPDATE ")
                .push(layout.table)
                .push(" SET ")
                .push(layout.name_column)
                .push(" = ")
                .bind_text(d.name.as_str());
            sql.push(", ")
                .push(layout.name_key_column)
                .push(" = ")
                .bind_text(d.name_key.as_str())
                .push(", external_id = ");
            match &d.external_id {
                Some(e) => sql.bind_text(e.as_str()),
                None => sql.push("NULL"),
            };
            if kind == Kind::User {
                sql.push(", active = ");
                match d.active {
                    Some(a) => sql.bind(Bind::Int(a as i64)),
                    None => sql.push("NULL"),
                };
            }
            sql.push(", attributes = ")
                .bind_text(serde_json::Value::Object(attrs.clone()).to_string());
            sql.push(" WHERE seq = ").bind(Bind::Int(seq));
            query(sql)
                .execute(&mut *tx)
                .await
                .map_err(write_error(layout))?;
            write_derived(&mut tx, layout, tenant, seq, d, true).await?;
            changed = true;
        }
        if kind == Kind::Group && !update.members.is_empty() {
            changed |= change_members(&mut tx, tenant, id, seq, &update.members).await?;
        }
        if !changed {
            tx.rollback().await.map_err(backend)?;
            return Ok(version);
        }
        let mut sql = Sql::new(Dialect::Sqlite);
        sql.push("UPDATE ")
            .push(layout.table)
            .push(" SET version = version + 1, last_modified = ")
            .bind_text(update.now.as_str())
            .push(" WHERE seq = ")
            .bind(Bind::Int(seq));
        query(sql).execute(&mut *tx).await.map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(version + 1)
    }

    async fn delete(
        &self,
        tenant: &str,
        kind: Kind,
        id: &str,
        policy: DeletePolicy,
        expected_version: Option<i64>,
        now: &str,
    ) -> Result<bool> {
        let layout = layout(kind);
        let mut tx = self.write.begin().await.map_err(backend)?;
        let Some((seq, version)) = find_row(&mut tx, layout, tenant, id).await? else {
            return Ok(false);
        };
        if expected_version.is_some_and(|v| v != version) {
            return Err(StoreError::VersionMismatch);
        }
        drop_memberships(&mut tx, tenant, id, now).await?;
        let mut sql = Sql::new(Dialect::Sqlite);
        match policy {
            DeletePolicy::Erase => {
                sql.push("DELETE FROM ")
                    .push(layout.table)
                    .push(" WHERE seq = ")
                    .bind(Bind::Int(seq));
            }
            DeletePolicy::Retire | DeletePolicy::Deactivate => {
                sqlx::query("DELETE FROM scim_members WHERE group_seq = ?")
                    .bind(seq)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                sql.push("UPDATE ")
                    .push(layout.table)
                    .push(" SET retired = ")
                    .bind_text(now)
                    .push(", version = version + 1, last_modified = ")
                    .bind_text(now);
                if kind == Kind::User {
                    sql.push(", active = 0, attributes = json_set(attributes, '$.active', json('false'))");
                }
                sql.push(" WHERE seq = ").bind(Bind::Int(seq));
            }
        }
        query(sql).execute(&mut *tx).await.map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

    async fn list(&self, tenant: &str, kind: Kind, q: &ListQuery<'_>) -> Result<ListPage> {
        let layout = layout(kind);
        let compiler = Compiler {
            dialect: Dialect::Sqlite,
            layout,
            schema: q.schema,
            tenant,
        };
        let mut where_ = Sql::new(Dialect::Sqlite);
        where_
            .push(" FROM ")
            .push(layout.table)
            .push(" t WHERE t.tenant = ")
            .bind_text(tenant)
            .push(" AND t.retired IS NULL");
        if let Some(f) = q.filter {
            where_.push(" AND (");
            compiler.filter(&mut where_, f)?;
            where_.push(")");
        }
        let mut order = Sql::new(Dialect::Sqlite);
        order.push(" ORDER BY ");
        match &q.sort {
            Some(key) => compiler.sort(&mut order, key)?,
            None => {
                order.push("t.seq");
            }
        }
        let mut tx = self.read.begin().await.map_err(backend)?;
        let mut count = Sql::new(Dialect::Sqlite);
        count.push("SELECT COUNT(*)").append(where_.clone());
        let total: i64 = query(count)
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?
            .get(0);
        let mut items = Vec::new();
        if q.count > 0 && (q.offset as i64) < total {
            let mut page = Sql::new(Dialect::Sqlite);
            page.push("SELECT ")
                .push(COLUMNS)
                .append(where_)
                .append(order);
            page.push(" LIMIT ")
                .bind(Bind::Int(q.count.min(i64::MAX as u64) as i64))
                .push(" OFFSET ")
                .bind(Bind::Int(q.offset.min(i64::MAX as u64) as i64));
            for row in query(page).fetch_all(&mut *tx).await.map_err(backend)? {
                items.push(decode(&row)?);
            }
            if q.with_relations && !items.is_empty() {
                let owners: Vec<(i64, String)> =
                    items.iter().map(|(s, r)| (*s, r.id.clone())).collect();
                let rel = relations(&mut tx, kind, tenant, &owners).await?;
                assemble(kind, &mut items, rel);
            }
        }
        tx.commit().await.map_err(backend)?;
        Ok(ListPage {
            total: total as u64,
            resources: items.into_iter().map(|(_, r)| r).collect(),
        })
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.read)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn insert_token(&self, info: &TokenInfo, hash: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO scim_tokens (id, tenant, name, hash, created) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&info.id)
        .bind(&info.tenant)
        .bind(&info.name)
        .bind(hash)
        .bind(&info.created)
        .execute(&self.write)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Uniqueness("token".into())
            }
            _ => backend(e),
        })?;
        Ok(())
    }

    async fn find_active_token(&self, hash: &str) -> Result<Option<(TokenInfo, String)>> {
        let row = sqlx::query("SELECT id, tenant, name, created, hash FROM scim_tokens WHERE hash = ? AND revoked IS NULL")
            .bind(hash)
            .fetch_optional(&self.read)
            .await
            .map_err(backend)?;
        Ok(row.map(|r| {
            (
                TokenInfo {
                    id: r.get(0),
                    tenant: r.get(1),
                    name: r.get(2),
                    created: r.get(3),
                    revoked: None,
                },
                r.get(4),
            )
        }))
    }

    async fn list_tokens(&self, tenant: &str) -> Result<Vec<TokenInfo>> {
        let rows = sqlx::query("SELECT id, tenant, name, created, revoked FROM scim_tokens WHERE tenant = ? ORDER BY created, id")
            .bind(tenant)
            .fetch_all(&self.read)
            .await
            .map_err(backend)?;
        Ok(rows
            .into_iter()
            .map(|r| TokenInfo {
                id: r.get(0),
                tenant: r.get(1),
                name: r.get(2),
                created: r.get(3),
                revoked: r.get(4),
            })
            .collect())
    }

    async fn revoke_token(&self, tenant: &str, id: &str, now: &str) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE scim_tokens SET revoked = ? WHERE tenant = ? AND id = ? AND revoked IS NULL",
        )
        .bind(now)
        .bind(tenant)
        .bind(id)
        .execute(&self.write)
        .await
        .map_err(backend)?;
        Ok(r.rows_affected() > 0)
    }
}
