//! The mapped mode: SCIM onto an application's own `users` / `groups` / membership tables.
//!
//! The application's rows stay the application's. SCIM attributes it maps go to its
//! columns; everything else SCIM needs (externalId, created, lastModified, version,
//! deletion state, and attributes without a column) lives in a side table per resource
//! type, linked one to one to the application's row by its primary key. The SCIM `id` of a
//! resource is its row's primary key, so rows the application created itself are visible
//! to SCIM (an identity provider can match and link them) before SCIM ever wrote them.

use crate::conn::{Cell, DbError, Row, Tx};
use crate::events::{self, Delta};
use crate::layout::{Column, ColumnType, Relation, TenantColumn, TenantType, View, push_tenant, tenant_fits};
use crate::retry::retrying;
use crate::rows::{RelationRow, assemble};
use crate::sql::{Bind, Dialect, Sql};
use crate::store::{Pools, query_page, sort_values};
use async_trait::async_trait;
use scimd_core::events::{EventLog, LoggedEvent, MemberDelta, Written};
use scimd_core::stats::ConflictCounts;
use scimd_core::store::{
    Decide, DeletePolicy, Deletion, Kind, ListPage, ListQuery, MemberChange, MemberRef, Modify, NewResource, Record,
    Store, StoreError, StoredResource,
};
use scimd_proto::schema::{AttrType, ResourceSchema};
use scimd_proto::value::fold_case;
use scimd_proto::{AttrPath, Registry, ScimError};
use serde_json::{Map, Value};
use std::collections::HashSet;

type Result<T> = std::result::Result<T, StoreError>;

/// How one SCIM resource type maps onto an application table.
#[derive(Debug, Clone)]
pub struct TableMap {
    /// The application's table.
    pub table: String,
    /// Its integer primary key column: the SCIM `id`.
    pub key: String,
    /// SCIM attribute path → column, e.g. `name.givenName` → `first_name`.
    pub columns: Vec<(String, String)>,
    /// Values for mapped columns when a create or replace does not give the attribute
    /// (for `NOT NULL` columns such as `is_active`).
    pub defaults: Vec<(String, Value)>,
    /// scimd's side table for this resource type.
    pub side_table: String,
    /// A column that rows SCIM has not written yet present as their primary work email.
    pub initial_email: Option<String>,
}

impl TableMap {
    pub fn new(table: &str, key: &str) -> TableMap {
        TableMap {
            table: table.into(),
            key: key.into(),
            columns: vec![],
            defaults: vec![],
            side_table: format!("scim_{table}"),
            initial_email: None,
        }
    }

    /// Maps a SCIM attribute (`userName`, `name.givenName`, `active`, an extension
    /// attribute by its URN-qualified path) to a column.
    pub fn map(mut self, scim_path: &str, column: &str) -> TableMap {
        self.columns.push((scim_path.into(), column.into()));
        self
    }

    /// The value a mapped attribute takes when a write does not give it.
    pub fn default_value(mut self, scim_path: &str, value: Value) -> TableMap {
        self.defaults.push((scim_path.into(), value));
        self
    }

    /// Rows the application wrote and SCIM has not written yet show this column as their
    /// primary work email (as the Django apps do with `User.email`). Once SCIM writes a
    /// row, its `emails` are SCIM's.
    pub fn initial_email(mut self, column: &str) -> TableMap {
        self.initial_email = Some(column.into());
        self
    }

    /// Names the side table (default `scim_<table>`).
    pub fn side_table(mut self, name: &str) -> TableMap {
        self.side_table = name.into();
        self
    }
}

/// The application's membership table: one row per (group, user).
#[derive(Debug, Clone)]
pub struct MembershipMap {
    pub table: String,
    pub group_column: String,
    pub user_column: String,
}

impl MembershipMap {
    pub fn new(table: &str, group_column: &str, user_column: &str) -> MembershipMap {
        MembershipMap { table: table.into(), group_column: group_column.into(), user_column: user_column.into() }
    }
}

/// Whose rows a principal sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tenancy {
    /// One directory: the application's rows belong to this tenant, and principals of any
    /// other get 403.
    Single(String),
    /// The users and groups tables both carry the tenant in this column (an organisation's
    /// id: integer, UUID or text): a principal reads and writes the rows of its own tenant,
    /// as its authenticator names it, and nothing of another's.
    Column(String),
}

/// The whole mapping.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub users: TableMap,
    pub groups: TableMap,
    pub members: MembershipMap,
    pub tenancy: Tenancy,
}

/// A mapped column, resolved against the schema.
#[derive(Debug, Clone)]
struct MappedColumn {
    /// Canonical SCIM path.
    path: String,
    /// Where the value sits in the attribute document: container URN, attribute, sub.
    container: Option<String>,
    attr: String,
    sub: Option<String>,
    column: String,
    kind: AttrType,
    default: Option<Value>,
    /// What reads and filters see of the column: the column itself, or NULL where it holds
    /// only the default a write filled in (`DEFAULTED`), so a filter never matches a value a
    /// read does not show.
    sql: String,
}

/// One resource type, resolved.
#[derive(Debug, Clone)]
struct Resolved {
    map: TableMap,
    columns: Vec<MappedColumn>,
    view: View,
    /// The column of the unique name attribute (`userName` / `displayName`).
    name_column: String,
    name_attr: &'static str,
    /// The table's tenant column (also `view.tenant_column`), under `Tenancy::Column`.
    tenant: Option<TenantColumn>,
}

impl Resolved {
    /// Appends ` AND t.<tenant column> = <tenant>` when rows carry a tenant.
    fn and_tenant(&self, s: &mut Sql, tenant: &str) {
        if let Some(tc) = &self.tenant {
            s.push(" AND ");
            tc.push_eq(s, tenant);
        }
    }
}

/// What the tenant column of an application table holds, from its declared type.
async fn tenant_type(tx: &mut dyn Tx, table: &str, column: &str) -> Result<TenantType> {
    let d = tx.dialect();
    let mut s = Sql::new(d);
    match d {
        Dialect::Sqlite => s.push("SELECT type FROM pragma_table_info(").bind_text(table).push(") WHERE name = "),
        Dialect::Postgres => s
            .push("SELECT data_type FROM information_schema.columns WHERE table_schema = ANY (current_schemas(false)) AND table_name = ")
            .bind_text(table)
            .push(" AND column_name = "),
    };
    s.bind_text(column);
    let row =
        tx.row(s).await?.ok_or_else(|| StoreError::Backend(format!("table '{table}' has no column '{column}'")))?;
    let declared = row.text(0)?.to_ascii_lowercase();
    Ok(if declared.contains("int") {
        TenantType::Integer
    } else if declared == "uuid" {
        TenantType::Uuid
    } else {
        TenantType::Text
    })
}

fn identifier(name: &str) -> Result<&str> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok { Ok(name) } else { Err(StoreError::Backend(format!("'{name}' is not a plain SQL identifier"))) }
}

fn resolve_columns(d: Dialect, map: &TableMap, schema: &ResourceSchema<'_>) -> Result<Vec<MappedColumn>> {
    identifier(&map.table)?;
    identifier(&map.key)?;
    identifier(&map.side_table)?;
    if let Some(c) = &map.initial_email {
        identifier(c)?;
    }
    let mut out = Vec::new();
    for (path, column) in &map.columns {
        identifier(column)?;
        let p = AttrPath::parse(path).map_err(StoreError::Backend)?;
        let r =
            schema.resolve_attribute(&p).map_err(|e| StoreError::Backend(format!("mapping '{path}': {}", e.detail)))?;
        let leaf = r.leaf();
        if r.attr.multi_valued || leaf.kind == AttrType::Complex || r.is_common(schema) {
            return Err(StoreError::Backend(format!(
                "mapping '{path}': only single-valued simple attributes (or sub-attributes of a single-valued complex one) map to columns"
            )));
        }
        if !matches!(leaf.kind, AttrType::String | AttrType::Reference | AttrType::Boolean) {
            return Err(StoreError::Backend(format!(
                "mapping '{path}': only string, reference and boolean attributes map to columns"
            )));
        }
        let default = map.defaults.iter().find(|(p, _)| p == path).map(|(_, v)| v.clone());
        let canonical = r.canonical();
        let sql = match default {
            None => format!("t.{column}"),
            Some(_) => format!("CASE WHEN {} THEN NULL ELSE t.{column} END", defaulted_test(d, &canonical)?),
        };
        out.push(MappedColumn {
            path: canonical,
            container: r.container.urn().map(str::to_string),
            attr: r.attr.name.clone(),
            sub: r.sub.map(|s| s.name.clone()),
            column: column.clone(),
            kind: leaf.kind,
            default,
            sql,
        });
    }
    Ok(out)
}

/// SQL that is true when the side document lists `path` as defaulted. The path is a
/// canonical attribute path, checked here to hold no character that could end the literal.
fn defaulted_test(d: Dialect, path: &str) -> Result<String> {
    if !path.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '-' | '_' | '$')) {
        return Err(StoreError::Backend(format!("mapping '{path}': unexpected characters in the path")));
    }
    Ok(match d {
        Dialect::Sqlite => {
            format!("EXISTS (SELECT 1 FROM json_each(s.attributes, '$.\"{DEFAULTED}\"') dp WHERE dp.value = '{path}')")
        }
        Dialect::Postgres => format!("COALESCE(s.attributes -> '{DEFAULTED}' @> '[\"{path}\"]'::jsonb, FALSE)"),
    })
}

/// The attribute document of a row as SCIM sees it (`View::doc`): the side table's, or, for
/// a row SCIM has not written yet, the application's email as its primary work email.
fn document(d: Dialect, map: &TableMap) -> String {
    let Some(email) = &map.initial_email else { return "s.attributes".into() };
    let initial = match d {
        Dialect::Sqlite => format!(
            "json_object('emails', json_array(json_object('value', t.{email}, 'type', 'work', 'primary', json('true'))))"
        ),
        Dialect::Postgres => format!(
            "jsonb_build_object('emails', jsonb_build_array(jsonb_build_object('value', t.{email}, 'type', 'work', 'primary', true)))"
        ),
    };
    format!("(CASE WHEN s.app_id IS NULL AND t.{email} IS NOT NULL THEN {initial} ELSE s.attributes END)")
}

impl MappedColumn {
    fn column_type(&self, schema: &ResourceSchema<'_>) -> ColumnType {
        if self.kind == AttrType::Boolean {
            return ColumnType::Bool;
        }
        let p = AttrPath::parse(&self.path).expect("canonical path parses");
        let exact = schema.resolve_attribute(&p).map(|r| r.leaf().case_exact).unwrap_or(false);
        if exact { ColumnType::ExactText } else { ColumnType::CaselessText }
    }

    /// The value at this column's path in an attribute document.
    fn get<'a>(&self, attrs: &'a Map<String, Value>) -> Option<&'a Value> {
        let container = match &self.container {
            Some(urn) => attrs.get(urn)?.as_object()?,
            None => attrs,
        };
        let v = container.get(&self.attr)?;
        match &self.sub {
            Some(sub) => v.as_object()?.get(sub),
            None => Some(v),
        }
        .filter(|v| !v.is_null())
    }

    /// Removes this column's value from a document (what remains goes to the side table).
    fn take(&self, attrs: &mut Map<String, Value>) {
        let container = match &self.container {
            Some(urn) => match attrs.get_mut(urn).and_then(Value::as_object_mut) {
                Some(c) => c,
                None => return,
            },
            None => attrs,
        };
        match &self.sub {
            None => {
                container.remove(&self.attr);
            }
            Some(sub) => {
                if let Some(parent) = container.get_mut(&self.attr).and_then(Value::as_object_mut) {
                    parent.remove(sub);
                    if parent.is_empty() {
                        container.remove(&self.attr);
                    }
                }
            }
        }
        if let Some(urn) = &self.container
            && attrs.get(urn).and_then(Value::as_object).is_some_and(Map::is_empty)
        {
            attrs.remove(urn);
        }
    }

    /// Puts a column's value into a document.
    fn put(&self, attrs: &mut Map<String, Value>, value: Value) {
        let container = match &self.container {
            Some(urn) => attrs.entry(urn.clone()).or_insert_with(|| Value::Object(Map::new())).as_object_mut(),
            None => Some(attrs),
        };
        let Some(container) = container else { return };
        match &self.sub {
            None => {
                container.insert(self.attr.clone(), value);
            }
            Some(sub) => {
                if let Some(parent) =
                    container.entry(self.attr.clone()).or_insert_with(|| Value::Object(Map::new())).as_object_mut()
                {
                    parent.insert(sub.clone(), value);
                }
            }
        }
    }
}

/// The store over an application's tables.
pub struct MappedStore<P: Pools> {
    pools: P,
    conflicts: ConflictCounts,
    mapping: Mapping,
    users: Resolved,
    groups: Resolved,
}

impl<P: Pools> MappedStore<P> {
    /// Checks the mapping against the schemas and creates the side tables if missing. The
    /// application's own tables must exist.
    pub async fn new(pools: P, mapping: Mapping, registry: &Registry) -> Result<MappedStore<P>> {
        for m in [&mapping.members.table, &mapping.members.group_column, &mapping.members.user_column] {
            identifier(m)?;
        }
        let user_schema = registry.resource("User").ok_or_else(|| StoreError::Backend("no User schema".into()))?;
        let group_schema = registry.resource("Group").ok_or_else(|| StoreError::Backend("no Group schema".into()))?;
        let d = pools.dialect();
        let user_columns = resolve_columns(d, &mapping.users, &user_schema)?;
        let group_columns = resolve_columns(d, &mapping.groups, &group_schema)?;
        let (user_tenant, group_tenant) = match &mapping.tenancy {
            Tenancy::Single(_) => (None, None),
            Tenancy::Column(column) => {
                identifier(column)?;
                let mut tx = pools.read().await?;
                let users = tenant_type(&mut *tx, &mapping.users.table, column).await?;
                let groups = tenant_type(&mut *tx, &mapping.groups.table, column).await?;
                tx.commit().await?;
                let at = |alias: &str, kind| Some(TenantColumn { sql: format!("{alias}.{column}"), kind });
                (at("t", users), at("t", groups))
            }
        };
        let name_of = |cols: &[MappedColumn], attr: &'static str| {
            cols.iter()
                .find(|c| c.path == attr)
                .map(|c| c.column.clone())
                .ok_or_else(|| StoreError::Backend(format!("the mapping must map '{attr}' to a column")))
        };
        let tenants = [user_tenant.clone(), group_tenant.clone()];
        let users = Resolved {
            name_column: name_of(&user_columns, "userName")?,
            name_attr: "userName",
            view: view(d, Kind::User, &mapping, &user_columns, &user_schema, &tenants),
            map: mapping.users.clone(),
            columns: user_columns,
            tenant: user_tenant,
        };
        let groups = Resolved {
            name_column: name_of(&group_columns, "displayName")?,
            name_attr: "displayName",
            view: view(d, Kind::Group, &mapping, &group_columns, &group_schema, &tenants),
            map: mapping.groups.clone(),
            columns: group_columns,
            tenant: group_tenant,
        };
        let store = MappedStore { pools, conflicts: ConflictCounts::default(), mapping, users, groups };
        store.create_side_tables().await?;
        Ok(store)
    }

    async fn create_side_tables(&self) -> Result<()> {
        let mut tx = self.pools.write().await?;
        let d = tx.dialect();
        for r in [&self.users, &self.groups] {
            let (int, json) = match d {
                Dialect::Sqlite => ("INTEGER", "TEXT"),
                Dialect::Postgres => ("BIGINT", "JSONB"),
            };
            let mut s = Sql::new(d);
            s.push(&format!(
                "CREATE TABLE IF NOT EXISTS {side} (app_id {int} PRIMARY KEY REFERENCES {table} ({key}) ON DELETE CASCADE, \
                 external_id TEXT, attributes {json}, created TEXT NOT NULL, last_modified TEXT NOT NULL, \
                 version {int} NOT NULL, retired TEXT)",
                side = r.map.side_table,
                table = r.map.table,
                key = r.map.key,
            ));
            tx.exec(s).await?;
            let mut s = Sql::new(d);
            s.push(&format!(
                "CREATE INDEX IF NOT EXISTS {side}_external_id ON {side} (external_id)",
                side = r.map.side_table
            ));
            tx.exec(s).await?;
        }
        tx.exec(events::mapped_table(d)).await?;
        for index in events::mapped_indexes(d) {
            tx.exec(index).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The application's tables of a type: they map the two built-in types, and no other.
    fn resolved(&self, kind: Kind) -> Result<&Resolved> {
        if kind == Kind::User {
            Ok(&self.users)
        } else if kind == Kind::Group {
            Ok(&self.groups)
        } else {
            Err(StoreError::Rejected(scimd_proto::ScimError::new(
                501,
                None,
                format!("resource type {} is not mapped onto this application's tables", kind.name()),
            )))
        }
    }

    /// Whether a principal of `tenant` may see anything: the single tenant, or (with tenant
    /// columns) any tenant that is a value of the columns' types.
    fn tenant_ok(&self, tenant: &str) -> bool {
        match &self.mapping.tenancy {
            Tenancy::Single(only) => tenant == only,
            Tenancy::Column(_) => {
                [&self.users.tenant, &self.groups.tenant].into_iter().flatten().all(|tc| tenant_fits(tc.kind, tenant))
            }
        }
    }
}

/// The compiler's view of a mapped table joined to its side table; `tenants` are the tenant
/// columns of the users and groups tables (alias `t`), if any.
fn view(
    d: Dialect,
    kind: Kind,
    m: &Mapping,
    cols: &[MappedColumn],
    schema: &ResourceSchema<'_>,
    tenants: &[Option<TenantColumn>; 2],
) -> View {
    let map = if kind == Kind::User { &m.users } else { &m.groups };
    let key = &map.key;
    let mut columns = vec![
        Column::new("id", &format!("CAST(t.{key} AS TEXT)"), ColumnType::ExactText),
        Column::new("externalId", "s.external_id", ColumnType::ExactText),
        Column::new("meta.created", "s.created", ColumnType::Instant),
        Column::new("meta.lastModified", "s.last_modified", ColumnType::Instant),
    ];
    for c in cols {
        columns.push(Column { path: c.path.clone(), sql: c.sql.clone(), kind: c.column_type(schema) });
    }
    let mm = &m.members;
    let relations = if kind.has_members() {
        vec![Relation {
            attr: "members".into(),
            open: format!("t.{key} IN (SELECT m.{gc} FROM {mt} m WHERE ", gc = mm.group_column, mt = mm.table),
            tenant_column: None,
            subs: vec![
                Column::new("value", &format!("CAST(m.{} AS TEXT)", mm.user_column), ColumnType::ExactText),
                Column::new("type", "'User'", ColumnType::CaselessText),
            ],
            partial: false,
        }]
    } else {
        let g = &m.groups;
        let gname = cols_name(&m.groups);
        vec![Relation {
            attr: "groups".into(),
            open: format!(
                "t.{key} IN (SELECT m.{uc} FROM {mt} m JOIN {gt} g ON g.{gk} = m.{gc} LEFT JOIN {gs} gs ON gs.app_id = g.{gk} WHERE gs.retired IS NULL AND ",
                uc = mm.user_column,
                mt = mm.table,
                gt = g.table,
                gk = g.key,
                gc = mm.group_column,
                gs = g.side_table
            ),
            // A group of another tenant, in an application's data, is none of this user's.
            tenant_column: tenants[1]
                .as_ref()
                .map(|tc| TenantColumn { sql: tc.sql.replacen("t.", "g.", 1), kind: tc.kind }),
            subs: std::iter::once(Column::new("value", &format!("CAST(g.{} AS TEXT)", g.key), ColumnType::ExactText))
                .chain(gname.map(|n| Column::new("display", &format!("g.{n}"), ColumnType::CaselessText)))
                .collect(),
            partial: false,
        }]
    };
    View {
        kind,
        from: format!("{table} t LEFT JOIN {side} s ON s.app_id = t.{key}", table = map.table, side = map.side_table),
        tenant_column: tenants[if kind == Kind::User { 0 } else { 1 }].clone(),
        live: "s.retired IS NULL".into(),
        columns,
        doc: document(d, map),
        order_key: format!("t.{key}"),
        // The application's own writes bypass any trigger scimd could rely on.
        counted_as: None,
        kind_filter: None,
        relations,
    }
}

fn cols_name(groups: &TableMap) -> Option<&str> {
    groups.columns.iter().find(|(p, _)| p == "displayName").map(|(_, c)| c.as_str())
}

/// `key, <document>, s.created, s.last_modified, s.version, s.external_id, <mapped>…`: the
/// document and columns through the same expressions filters compare (`view`).
fn select_list(d: Dialect, r: &Resolved) -> String {
    let mut s = format!("CAST(t.{} AS BIGINT), ", r.map.key);
    match d {
        Dialect::Sqlite => s.push_str(&r.view.doc),
        Dialect::Postgres => {
            s.push_str(&r.view.doc);
            s.push_str("::text");
        }
    }
    s.push_str(", s.created, s.last_modified, s.version, s.external_id");
    for c in &r.columns {
        s.push_str(", ");
        s.push_str(&c.sql);
    }
    s
}

fn decode(r: &Resolved, row: &Row) -> Result<(i64, StoredResource)> {
    let key = row.int(0)?;
    let mut attributes: Map<String, Value> = match row.opt_text(1) {
        Some(text) => {
            serde_json::from_str(&text).map_err(|e| StoreError::Backend(format!("corrupt attributes: {e}")))?
        }
        None => Map::new(),
    };
    if let Some(ext) = row.opt_text(5) {
        attributes.insert("externalId".into(), Value::String(ext));
    }
    for (i, c) in r.columns.iter().enumerate() {
        let v = match (row.cell(6 + i), c.kind) {
            (Cell::Null, _) => continue,
            (Cell::Bool(b), _) => Value::Bool(*b),
            (Cell::Int(n), AttrType::Boolean) => Value::Bool(*n != 0),
            (Cell::Int(n), _) => Value::String(n.to_string()),
            (Cell::Text(t), AttrType::Boolean) => Value::Bool(matches!(t.as_str(), "1" | "t" | "true" | "TRUE")),
            (Cell::Text(t), _) => Value::String(t.clone()),
        };
        c.put(&mut attributes, v);
    }
    // Read through `MappedColumn::sql`, defaulted columns came back NULL already.
    attributes.remove(DEFAULTED);
    Ok((
        key,
        StoredResource {
            id: key.to_string(),
            attributes,
            created: row.opt_text(2).unwrap_or_default(),
            last_modified: row.opt_text(3).unwrap_or_default(),
            version: row.opt_int(4).unwrap_or(0),
        },
    ))
}

fn bind_value(s: &mut Sql, kind: AttrType, v: Option<&Value>) {
    match (kind, v) {
        (_, None) => {
            s.push("NULL");
        }
        (AttrType::Boolean, Some(v)) => {
            let b = v.as_bool().unwrap_or(false);
            match s.dialect {
                Dialect::Sqlite => s.bind(Bind::Int(b as i64)),
                Dialect::Postgres => s.bind(Bind::Bool(b)),
            };
        }
        (_, Some(Value::String(t))) => {
            s.bind_text(t.as_str());
        }
        (_, Some(other)) => {
            s.bind_text(other.to_string());
        }
    }
}

fn bind_json(s: &mut Sql, attrs: &Map<String, Value>) {
    s.bind_text(Value::Object(attrs.clone()).to_string());
    if s.dialect == Dialect::Postgres {
        s.push("::jsonb");
    }
}

/// The SCIM id of an application row is its integer key; anything else names no row.
fn parse_key(id: &str) -> Option<i64> {
    id.parse::<i64>().ok().filter(|k| k.to_string() == id)
}

/// In the side document: the mapped attributes whose column holds only its default
/// because SCIM did not give them. Reads leave them out, so SCIM reads what it wrote.
const DEFAULTED: &str = "scimd:defaulted";

/// Splits a document into the mapped columns' values and the rest (the side document).
fn split(r: &Resolved, attrs: &Map<String, Value>) -> (Vec<Option<Value>>, Map<String, Value>) {
    let mut rest = attrs.clone();
    let mut defaulted = Vec::new();
    let values = r
        .columns
        .iter()
        .map(|c| {
            let given = c.get(attrs).cloned();
            c.take(&mut rest);
            if given.is_none() && c.default.is_some() {
                defaulted.push(Value::String(c.path.clone()));
            }
            given.or_else(|| c.default.clone())
        })
        .collect();
    rest.remove("externalId");
    rest.remove("members");
    rest.remove("groups");
    if !defaulted.is_empty() {
        rest.insert(DEFAULTED.into(), Value::Array(defaulted));
    }
    (values, rest)
}

async fn fetch(
    tx: &mut dyn Tx,
    r: &Resolved,
    tenant: &str,
    key: i64,
    lock: bool,
) -> Result<Option<(i64, StoredResource)>> {
    let d = tx.dialect();
    let mut s = Sql::new(d);
    s.push("SELECT ").push(&select_list(d, r)).push(" FROM ").push(&r.view.from);
    s.push(" WHERE s.retired IS NULL AND t.").push(&r.map.key).push(" = ").bind(Bind::Int(key));
    r.and_tenant(&mut s, tenant);
    if lock && d == Dialect::Postgres {
        s.push(" FOR UPDATE OF t");
    }
    tx.row(s).await?.map(|row| decode(r, &row)).transpose()
}

/// Records a change of the rows of `r` whose keys `which` selects (as `k`): a new version and
/// `lastModified`. An application row SCIM has not written yet gets its side row here.
/// Returns the rows' keys and new versions.
async fn touch(tx: &mut dyn Tx, r: &Resolved, which: Sql, now: &str) -> Result<Vec<(i64, i64)>> {
    let mut s = Sql::new(tx.dialect());
    s.push("INSERT INTO ").push(&r.map.side_table);
    s.push(" (app_id, attributes, created, last_modified, version) SELECT k, ");
    bind_json(&mut s, &Map::new());
    s.push(", ").bind_text(now).push(", ").bind_text(now).push(", 1 FROM (").append(which);
    // `WHERE TRUE`: SQLite would otherwise read the ON of the upsert as a join constraint.
    s.push(") w WHERE TRUE ON CONFLICT (app_id) DO UPDATE SET last_modified = excluded.last_modified, ");
    s.push("version = ").push(&r.map.side_table).push(".version + 1 RETURNING app_id, version");
    tx.rows(s).await?.iter().map(|row| Ok((row.int(0)?, row.int(1)?))).collect()
}

/// Refuses a name another live row of the tenant already has, whatever its case.
async fn check_unique(tx: &mut dyn Tx, r: &Resolved, tenant: &str, name: &str, except: Option<i64>) -> Result<()> {
    let d = tx.dialect();
    let mut s = Sql::new(d);
    let fold = d.fold_function();
    s.push("SELECT 1 FROM ").push(&r.view.from).push(" WHERE s.retired IS NULL AND ");
    s.push(fold).push("(t.").push(&r.name_column).push(") = ").bind_text(fold_case(name));
    r.and_tenant(&mut s, tenant);
    if let Some(k) = except {
        s.push(" AND t.").push(&r.map.key).push(" <> ").bind(Bind::Int(k));
    }
    if tx.row(s).await?.is_some() {
        return Err(StoreError::Uniqueness(r.name_attr.into()));
    }
    Ok(())
}

impl<P: Pools> MappedStore<P> {
    /// A retired row with this name, which a create brings back instead of inserting a
    /// duplicate the application's unique index would refuse.
    async fn retired_with_name(&self, tx: &mut dyn Tx, r: &Resolved, tenant: &str, name: &str) -> Result<Option<i64>> {
        let d = tx.dialect();
        let fold = d.fold_function();
        let mut s = Sql::new(d);
        s.push("SELECT CAST(t.").push(&r.map.key).push(" AS BIGINT) FROM ").push(&r.view.from);
        s.push(" WHERE s.retired IS NOT NULL AND ").push(fold).push("(t.").push(&r.name_column).push(") = ");
        s.bind_text(fold_case(name));
        r.and_tenant(&mut s, tenant);
        // Several retired rows may share the name in other cases ('BOB', 'bob'): the one
        // spelled alike comes back, else the first; bringing back another would collide with
        // it in the application's own (case-sensitive) unique index.
        s.push(" ORDER BY CASE WHEN t.").push(&r.name_column).push(" = ").bind_text(name);
        s.push(" THEN 0 ELSE 1 END, t.").push(&r.map.key).push(" LIMIT 1");
        Ok(tx.row(s).await?.map(|row| row.int(0)).transpose()?)
    }

    /// Writes a resource's columns and side row.
    async fn write(
        &self,
        tx: &mut dyn Tx,
        r: &Resolved,
        tenant: &str,
        what: Write,
        attrs: &Map<String, Value>,
        now: &str,
    ) -> Result<i64> {
        let d = tx.dialect();
        let (values, rest) = split(r, attrs);
        let created = matches!(what, Write::Create(_));
        let key = match what {
            Write::Create(None) => {
                let mut s = Sql::new(d);
                s.push("INSERT INTO ").push(&r.map.table).push(" (");
                let present: Vec<usize> = (0..r.columns.len()).filter(|i| values[*i].is_some()).collect();
                let tenant_column = match (&self.mapping.tenancy, &r.tenant) {
                    (Tenancy::Column(column), Some(tc)) => Some((column, tc.kind)),
                    _ => None,
                };
                if let Some((column, _)) = tenant_column {
                    s.push(column).push(if present.is_empty() { "" } else { ", " });
                }
                for (n, i) in present.iter().enumerate() {
                    if n > 0 {
                        s.push(", ");
                    }
                    s.push(&r.columns[*i].column);
                }
                s.push(") VALUES (");
                if let Some((_, kind)) = tenant_column {
                    push_tenant(&mut s, kind, tenant);
                    s.push(if present.is_empty() { "" } else { ", " });
                }
                for (n, i) in present.iter().enumerate() {
                    if n > 0 {
                        s.push(", ");
                    }
                    bind_value(&mut s, r.columns[*i].kind, values[*i].as_ref());
                }
                s.push(") RETURNING CAST(").push(&r.map.key).push(" AS BIGINT)");
                let row = tx.row(s).await.map_err(|e| e.unique_on(r.name_attr))?;
                row.ok_or_else(|| StoreError::Backend("INSERT returned no row".into()))?.int(0)?
            }
            Write::Create(Some(key)) | Write::Update(key) => {
                let mut s = Sql::new(d);
                s.push("UPDATE ").push(&r.map.table).push(" SET ");
                for (i, c) in r.columns.iter().enumerate() {
                    if i > 0 {
                        s.push(", ");
                    }
                    s.push(&c.column).push(" = ");
                    bind_value(&mut s, c.kind, values[i].as_ref());
                }
                s.push(" WHERE ").push(&r.map.key).push(" = ").bind(Bind::Int(key));
                if let Some(tc) = &r.tenant {
                    // (An UPDATE names the table without its alias.)
                    s.push(" AND ");
                    TenantColumn { sql: tc.sql.replacen("t.", "", 1), kind: tc.kind }.push_eq(&mut s, tenant);
                }
                if !r.columns.is_empty() {
                    tx.exec(s).await.map_err(|e| e.unique_on(r.name_attr))?;
                }
                key
            }
        };
        let external = attrs.get("externalId").and_then(Value::as_str);
        let mut s = Sql::new(d);
        s.push("INSERT INTO ").push(&r.map.side_table);
        s.push(" (app_id, external_id, attributes, created, last_modified, version, retired) VALUES (")
            .bind(Bind::Int(key));
        s.push(", ");
        match external {
            Some(e) => s.bind_text(e),
            None => s.push("NULL"),
        };
        s.push(", ");
        bind_json(&mut s, &rest);
        s.push(", ").bind_text(now).push(", ").bind_text(now).push(", 1, NULL) ON CONFLICT (app_id) DO UPDATE SET ");
        s.push("external_id = excluded.external_id, attributes = excluded.attributes, retired = NULL");
        if created {
            // A retired row brought back is a new resource as far as SCIM is concerned.
            s.push(", created = excluded.created, last_modified = excluded.last_modified, version = ")
                .push(&r.map.side_table)
                .push(".version + 1");
        }
        tx.exec(s).await?;
        Ok(key)
    }

    /// Checks member ids: existing, live users of the application (and of the tenant).
    async fn member_keys(&self, tx: &mut dyn Tx, tenant: &str, refs: &[MemberRef]) -> Result<Vec<i64>> {
        let mut keys = Vec::new();
        let mut seen = HashSet::new();
        for r in refs {
            let k = parse_key(&r.value).ok_or_else(|| {
                StoreError::InvalidMember(format!("member '{}' is not a User of this application", r.value))
            })?;
            if seen.insert(k) {
                keys.push(k);
            }
        }
        let d = tx.dialect();
        for chunk in keys.chunks(500) {
            let live = |lock: &str| {
                let mut s = Sql::new(d);
                s.push("SELECT CAST(t.")
                    .push(&self.users.map.key)
                    .push(" AS BIGINT) FROM ")
                    .push(&self.users.view.from);
                s.push(" WHERE s.retired IS NULL AND t.").push(&self.users.map.key).push(" IN (");
                for (i, k) in chunk.iter().enumerate() {
                    if i > 0 {
                        s.push(", ");
                    }
                    s.bind(Bind::Int(*k));
                }
                s.push(")");
                self.users.and_tenant(&mut s, tenant);
                s.push(lock);
                s
            };
            if d == Dialect::Postgres {
                // The users are held (as a foreign key check would) so that none is deleted
                // before the membership commits; and read again once held, because a delete
                // this lock waited for retired the user in its side row, which a read that
                // waited still sees as it was.
                tx.rows(live(" FOR KEY SHARE OF t")).await?;
            }
            let found: HashSet<i64> = tx.rows(live("")).await?.iter().filter_map(|r| r.opt_int(0)).collect();
            if let Some(missing) = chunk.iter().find(|k| !found.contains(k)) {
                return Err(StoreError::InvalidMember(format!("member '{missing}' is not a User of this application")));
            }
        }
        Ok(keys)
    }

    async fn change_members(
        &self,
        tx: &mut dyn Tx,
        tenant: &str,
        group: i64,
        changes: &[MemberChange],
    ) -> Result<Delta> {
        let m = &self.mapping.members;
        let d = tx.dialect();
        let mut delta = Delta::default();
        for change in changes {
            let (clear, add, mut remove): (bool, &[MemberRef], Vec<i64>) = match change {
                MemberChange::Add(refs) => (false, refs, vec![]),
                // The difference only: a replace by the same set changes nothing.
                MemberChange::Replace(refs) => (false, refs, vec![]),
                MemberChange::RemoveAll => (true, &[], vec![]),
                MemberChange::Remove(ids) => (false, &[], ids.iter().filter_map(|i| parse_key(i)).collect()),
            };
            let add = self.member_keys(tx, tenant, add).await?;
            if matches!(change, MemberChange::Replace(_)) {
                let mut s = Sql::new(d);
                s.push(&format!(
                    "SELECT CAST({} AS BIGINT) FROM {} WHERE {} = ",
                    m.user_column, m.table, m.group_column
                ));
                s.bind(Bind::Int(group));
                let wanted: HashSet<i64> = add.iter().copied().collect();
                remove =
                    tx.rows(s).await?.iter().filter_map(|r| r.opt_int(0)).filter(|k| !wanted.contains(k)).collect();
            }
            if clear {
                let mut s = Sql::new(d);
                s.push("DELETE FROM ")
                    .push(&m.table)
                    .push(" WHERE ")
                    .push(&m.group_column)
                    .push(" = ")
                    .bind(Bind::Int(group));
                s.push(&format!(" RETURNING CAST({} AS BIGINT)", m.user_column));
                let gone = tx
                    .rows(s)
                    .await?
                    .iter()
                    .map(|r| r.int(0).map(|k| k.to_string()))
                    .collect::<std::result::Result<_, _>>()?;
                delta.removed(gone);
            }
            for k in remove {
                let mut s = Sql::new(d);
                s.push("DELETE FROM ")
                    .push(&m.table)
                    .push(" WHERE ")
                    .push(&m.group_column)
                    .push(" = ")
                    .bind(Bind::Int(group));
                s.push(" AND ").push(&m.user_column).push(" = ").bind(Bind::Int(k));
                if tx.exec(s).await? > 0 {
                    delta.removed(vec![k.to_string()]);
                }
            }
            for k in add {
                // The application's table may have no unique constraint to lean on.
                let mut s = Sql::new(d);
                s.push("INSERT INTO ").push(&m.table).push(" (").push(&m.group_column).push(", ").push(&m.user_column);
                s.push(") SELECT ")
                    .bind(Bind::Int(group))
                    .push(", ")
                    .bind(Bind::Int(k))
                    .push(" WHERE NOT EXISTS (SELECT 1 FROM ");
                s.push(&m.table).push(" WHERE ").push(&m.group_column).push(" = ").bind(Bind::Int(group));
                s.push(" AND ").push(&m.user_column).push(" = ").bind(Bind::Int(k)).push(")");
                if tx.exec(s).await? > 0 {
                    delta.added(vec![(k.to_string(), "User".to_string())]);
                }
            }
        }
        Ok(delta)
    }

    async fn relations(
        &self,
        tx: &mut dyn Tx,
        tenant: &str,
        kind: Kind,
        items: &mut [(i64, StoredResource)],
    ) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let (m, u, g) = (&self.mapping.members, &self.users, &self.groups);
        let d = tx.dialect();
        let mut out = Vec::new();
        for chunk in items.chunks(500) {
            // The owner's column in the membership table, the other side's column, and the
            // other side's table (users for a group's members, groups for a user's groups).
            let (owner, other, side) = if kind.has_members() {
                (&m.group_column, &m.user_column, u)
            } else {
                (&m.user_column, &m.group_column, g)
            };
            let mut s = Sql::new(d);
            s.push(&format!(
                "SELECT CAST(m.{owner} AS BIGINT), CAST(t.{key} AS BIGINT), t.{name} FROM {mt} m JOIN ({view}) ON t.{key} = m.{other} \
                 WHERE s.retired IS NULL AND m.{owner} IN (",
                name = side.name_column,
                mt = m.table,
                view = side.view.from,
                key = side.map.key,
            ));
            for (i, (k, _)) in chunk.iter().enumerate() {
                if i > 0 {
                    s.push(", ");
                }
                s.bind(Bind::Int(*k));
            }
            s.push(")");
            side.and_tenant(&mut s, tenant);
            // The application's membership table has no order of its own: by key, so that
            // every read lists them alike.
            s.push(&format!(" ORDER BY t.{}", side.map.key));
            for row in tx.rows(s).await? {
                out.push(RelationRow {
                    owner: row.int(0)?,
                    value: row.int(1)?.to_string(),
                    kind: kind.has_members().then(|| "User".to_string()),
                    display: row.opt_text(2),
                });
            }
        }
        assemble(kind, items, out);
        Ok(())
    }

    fn name_of(r: &Resolved, attrs: &Map<String, Value>) -> Result<String> {
        attrs
            .get(r.name_attr)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| StoreError::Backend(format!("{} missing after validation", r.name_attr)))
    }
}

/// What `write` does.
enum Write {
    /// A new resource: a new row, or the retired row of the same name brought back.
    Create(Option<i64>),
    /// A change to a live row.
    Update(i64),
}

fn forbidden() -> StoreError {
    StoreError::Rejected(ScimError::new(
        403,
        None,
        "this principal's tenant has no access to the application's directory",
    ))
}

/// The writes, each one transaction, run again by `retrying` after a conflict.
impl<P: Pools> MappedStore<P> {
    async fn create_once(
        &self,
        tenant: &str,
        kind: Kind,
        new: &NewResource,
        record: &Record<'_>,
    ) -> Result<StoredResource> {
        if !self.tenant_ok(tenant) {
            return Err(forbidden());
        }
        let r = self.resolved(kind)?;
        let name = Self::name_of(r, &new.attributes)?;
        let mut tx = self.pools.write().await?;
        check_unique(&mut *tx, r, tenant, &name, None).await?;
        let revived = self.retired_with_name(&mut *tx, r, tenant, &name).await?;
        let key = self.write(&mut *tx, r, tenant, Write::Create(revived), &new.attributes, &new.now).await?;
        let mut members = MemberDelta::default();
        if kind.has_members() && !new.members.is_empty() {
            if revived.is_some() {
                self.change_members(&mut *tx, tenant, key, &[MemberChange::RemoveAll]).await?;
            }
            let add = [MemberChange::Add(new.members.clone())];
            members = self.change_members(&mut *tx, tenant, key, &add).await?.net();
        }
        let (_, stored) = fetch(&mut *tx, r, tenant, key, false).await?.ok_or(StoreError::NotFound)?;
        let written = Written {
            kind,
            id: &stored.id,
            before: None,
            after: Some(&stored),
            members: &members,
            left_groups: &[],
            now: &new.now,
        };
        events::append(&mut *tx, tenant, &record(&written), &new.now).await?;
        tx.commit().await.map_err(|e: DbError| e.unique_on(r.name_attr))?;
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
        let Some(key) = parse_key(id).filter(|_| self.tenant_ok(tenant)) else { return Err(StoreError::NotFound) };
        let r = self.resolved(kind)?;
        let mut tx = self.pools.write().await?;
        let Some((_, mut current)) = fetch(&mut *tx, r, tenant, key, true).await? else {
            return Err(StoreError::NotFound);
        };
        if opts.load_relations {
            let mut one = [(key, current)];
            self.relations(&mut *tx, tenant, kind, &mut one).await?;
            current = one.into_iter().next().map(|(_, r)| r).expect("one item");
        }
        let change = decide(&current).map_err(StoreError::Rejected)?;
        let mut changed = false;
        if let Some(attrs) = &change.attributes {
            let name = Self::name_of(r, attrs)?;
            check_unique(&mut *tx, r, tenant, &name, Some(key)).await?;
            self.write(&mut *tx, r, tenant, Write::Update(key), attrs, opts.now).await?;
            changed = true;
        }
        let mut members = Delta::default();
        if kind.has_members() && !change.members.is_empty() {
            members = self.change_members(&mut *tx, tenant, key, &change.members).await?;
            changed |= members.rows_changed;
        }
        let members = members.net();
        if changed {
            let mut which = Sql::new(tx.dialect());
            which.push("SELECT ").bind(Bind::Int(key)).push(" AS k");
            touch(&mut *tx, r, which, opts.now).await?;
        }
        let (_, after) = fetch(&mut *tx, r, tenant, key, false).await?.ok_or(StoreError::NotFound)?;
        if changed {
            kind.take_relation(&mut current.attributes);
            let written = Written {
                kind,
                id,
                before: Some(&current),
                after: Some(&after),
                members: &members,
                left_groups: &[],
                now: opts.now,
            };
            events::append(&mut *tx, tenant, &(opts.record)(&written), opts.now).await?;
        }
        let mut one = [(key, after)];
        if opts.return_relations {
            self.relations(&mut *tx, tenant, kind, &mut one).await?;
        }
        tx.commit().await.map_err(|e| e.unique_on(r.name_attr))?;
        Ok(one.into_iter().next().map(|(_, r)| r).expect("one item"))
    }

    async fn delete_once(&self, tenant: &str, kind: Kind, id: &str, how: &Deletion<'_>) -> Result<bool> {
        let Some(key) = parse_key(id).filter(|_| self.tenant_ok(tenant)) else { return Ok(false) };
        let (policy, now) = (how.policy, how.now);
        let r = self.resolved(kind)?;
        let m = &self.mapping.members;
        let mut tx = self.pools.write().await?;
        let d = tx.dialect();
        let Some((_, current)) = fetch(&mut *tx, r, tenant, key, true).await? else { return Ok(false) };
        if how.expected_version.is_some_and(|v| v != current.version) {
            return Err(StoreError::VersionMismatch);
        }
        // Memberships go either way: for SCIM the resource no longer exists, and the groups
        // a user leaves have changed.
        let mut left_groups = Vec::new();
        if kind == Kind::User {
            let mut which = Sql::new(d);
            which.push(&format!("SELECT DISTINCT {} AS k FROM {} WHERE {} = ", m.group_column, m.table, m.user_column));
            which.bind(Bind::Int(key));
            for (group, version) in touch(&mut *tx, &self.groups, which, now).await? {
                left_groups.push((group.to_string(), version));
            }
        }
        let mut s = Sql::new(d);
        let column = if kind == Kind::User { &m.user_column } else { &m.group_column };
        s.push("DELETE FROM ").push(&m.table).push(" WHERE ").push(column).push(" = ").bind(Bind::Int(key));
        tx.exec(s).await?;
        match policy {
            DeletePolicy::Erase => {
                for table in [&r.map.side_table, &r.map.table] {
                    let mut s = Sql::new(d);
                    let col = if table == &r.map.side_table { "app_id" } else { r.map.key.as_str() };
                    s.push("DELETE FROM ").push(table).push(" WHERE ").push(col).push(" = ").bind(Bind::Int(key));
                    tx.exec(s).await?;
                }
            }
            DeletePolicy::Retire | DeletePolicy::Deactivate => {
                // The application's row stays, with its active column (if mapped) false.
                if let Some(active) = r.columns.iter().find(|c| c.path == "active") {
                    let mut s = Sql::new(d);
                    s.push("UPDATE ").push(&r.map.table).push(" SET ").push(&active.column).push(" = ");
                    bind_value(&mut s, AttrType::Boolean, Some(&Value::Bool(false)));
                    s.push(" WHERE ").push(&r.map.key).push(" = ").bind(Bind::Int(key));
                    tx.exec(s).await?;
                }
                let mut s = Sql::new(d);
                s.push("INSERT INTO ")
                    .push(&r.map.side_table)
                    .push(" (app_id, attributes, created, last_modified, version, retired) VALUES (");
                s.bind(Bind::Int(key)).push(", ");
                bind_json(&mut s, &Map::new());
                s.push(", ").bind_text(now).push(", ").bind_text(now).push(", ").bind(Bind::Int(current.version + 1));
                s.push(", ").bind_text(now).push(") ON CONFLICT (app_id) DO UPDATE SET retired = excluded.retired, ");
                s.push("last_modified = excluded.last_modified, version = excluded.version");
                tx.exec(s).await?;
            }
        }
        let none = MemberDelta::default();
        let written =
            Written { kind, id, before: Some(&current), after: None, members: &none, left_groups: &left_groups, now };
        events::append(&mut *tx, tenant, &(how.record)(&written), now).await?;
        tx.commit().await?;
        Ok(true)
    }
}

#[async_trait]
impl<P: Pools> Store for MappedStore<P> {
    async fn create(&self, tenant: &str, kind: Kind, new: NewResource, record: &Record<'_>) -> Result<StoredResource> {
        retrying(&self.conflicts, || self.create_once(tenant, kind, &new, record)).await
    }

    async fn get(&self, tenant: &str, kind: Kind, id: &str, with_relations: bool) -> Result<Option<StoredResource>> {
        let Some(key) = parse_key(id).filter(|_| self.tenant_ok(tenant)) else { return Ok(None) };
        let mut tx = self.pools.read().await?;
        let Some(item) = fetch(&mut *tx, self.resolved(kind)?, tenant, key, false).await? else { return Ok(None) };
        let mut one = [item];
        if with_relations {
            self.relations(&mut *tx, tenant, kind, &mut one).await?;
        }
        tx.commit().await?;
        Ok(one.into_iter().next().map(|(_, r)| r))
    }

    async fn modify(
        &self,
        tenant: &str,
        kind: Kind,
        id: &str,
        opts: Modify<'_>,
        decide: &Decide<'_>,
    ) -> Result<StoredResource> {
        retrying(&self.conflicts, || self.modify_once(tenant, kind, id, opts.clone(), decide)).await
    }

    async fn delete(&self, tenant: &str, kind: Kind, id: &str, how: Deletion<'_>) -> Result<bool> {
        retrying(&self.conflicts, || self.delete_once(tenant, kind, id, &how)).await
    }

    async fn list(&self, tenant: &str, kind: Kind, q: &ListQuery<'_>) -> Result<ListPage> {
        if !self.tenant_ok(tenant) {
            return Ok(ListPage::empty(0));
        }
        let r = self.resolved(kind)?;
        let mut tx = self.pools.read().await?;
        let select = select_list(tx.dialect(), r);
        let (total, rows) = query_page(&mut *tx, &r.view, &select, tenant, q, q.after.as_ref()).await?;
        let sort_values = sort_values(tx.dialect(), &r.view, tenant, q, &rows);
        let mut items = rows.iter().map(|row| decode(r, row)).collect::<Result<Vec<_>>>()?;
        if q.with_relations {
            self.relations(&mut *tx, tenant, kind, &mut items).await?;
        }
        tx.commit().await?;
        let (keys, resources) = items.into_iter().unzip();
        Ok(ListPage { total, resources, keys, sort_values })
    }

    fn db_stats(&self) -> scimd_core::stats::DbStats {
        scimd_core::stats::DbStats { conflicts: self.conflicts.snapshot(), ..self.pools.stats() }
    }

    async fn ping(&self) -> Result<()> {
        let mut tx = self.pools.read().await?;
        let mut s = Sql::new(tx.dialect());
        s.push("SELECT 1");
        tx.rows(s).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[async_trait]
impl<P: Pools> EventLog for MappedStore<P> {
    async fn events_after(&self, tenant: &str, after: i64, limit: u32) -> Result<Vec<LoggedEvent>> {
        events::after(&self.pools, tenant, after, limit).await
    }

    async fn last_seq(&self, tenant: &str) -> Result<i64> {
        events::last(&self.pools, tenant).await
    }

    async fn count_after(&self, tenant: &str, after: i64) -> Result<u64> {
        events::count(&self.pools, tenant, after).await
    }

    /// (An application's database has no streams: events go by age alone.)
    async fn prune_events(&self, before: &str) -> Result<u64> {
        events::prune(&self.pools, before, false).await
    }
}
