//! How a resource type sits in SQL tables, as the filter compiler sees it: which SCIM
//! attributes have columns (and so indexes), which multi-valued attributes have tables of
//! their own, and where the JSON document of the other attributes is. scimd's own tables
//! are one such view; an application's mapped tables (`mapped`) are another.

use crate::sql::{Bind, Dialect, Sql};
use scimd_core::Kind;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

/// What a tenant column holds: scimd's own tables keep the slug; an application's
/// organisation column is often an integer or a UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantType {
    Text,
    Integer,
    Uuid,
}

/// The column that says which tenant a row belongs to.
#[derive(Debug, Clone)]
pub struct TenantColumn {
    /// The SQL expression, e.g. `t.tenant`.
    pub sql: String,
    pub kind: TenantType,
}

impl TenantColumn {
    pub fn text(sql: &str) -> TenantColumn {
        TenantColumn { sql: sql.into(), kind: TenantType::Text }
    }

    /// Appends `<column> = <tenant>`. A tenant that is no value of the column's type (`acme`
    /// for an integer column) is bound as NULL, which matches no row.
    pub fn push_eq(&self, s: &mut Sql, tenant: &str) {
        s.push(&self.sql).push(" = ");
        push_tenant(s, self.kind, tenant);
    }
}

/// Appends the tenant as a value of the column's type (NULL when it is none), for a
/// comparison or an INSERT.
pub fn push_tenant(s: &mut Sql, kind: TenantType, tenant: &str) {
    match kind {
        TenantType::Text => {
            s.bind_text(tenant);
        }
        TenantType::Integer => match tenant.parse::<i64>().ok().filter(|n| n.to_string() == tenant) {
            Some(n) => {
                s.bind(Bind::Int(n));
            }
            None => {
                s.push("NULL");
            }
        },
        TenantType::Uuid => match uuid::Uuid::parse_str(tenant) {
            Ok(u) if s.dialect == Dialect::Postgres => {
                s.push("CAST(").bind_text(u.to_string()).push(" AS uuid)");
            }
            // SQLite keeps UUIDs as text, as the application wrote them.
            Ok(_) => {
                s.bind_text(tenant);
            }
            Err(_) => {
                s.push("NULL");
            }
        },
    }
}

/// Whether a tenant is a value the column can hold.
pub fn tenant_fits(kind: TenantType, tenant: &str) -> bool {
    match kind {
        TenantType::Text => true,
        TenantType::Integer => tenant.parse::<i64>().is_ok_and(|n| n.to_string() == tenant),
        TenantType::Uuid => uuid::Uuid::parse_str(tenant).is_ok(),
    }
}

/// How a column's values compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// Text compared exactly.
    ExactText,
    /// Text stored case-folded; literals are folded before comparing.
    FoldedText,
    /// Text stored as given and compared case-insensitively (folded at query time).
    CaselessText,
    Bool,
    /// An instant stored in `value::format_datetime` form, whose text order is time order.
    Instant,
}

/// A SCIM attribute path with a column of its own.
#[derive(Debug, Clone)]
pub struct Column {
    /// Canonical SCIM path, e.g. `userName`, `meta.lastModified`; a sub-attribute's name
    /// inside a `Relation`.
    pub path: String,
    /// The SQL expression (over the aliases of `View::from`).
    pub sql: String,
    pub kind: ColumnType,
}

impl Column {
    pub fn new(path: &str, sql: &str, kind: ColumnType) -> Column {
        Column { path: path.into(), sql: sql.into(), kind }
    }
}

/// A multi-valued attribute kept in a table of its own: a resource matches when some row
/// of the subquery does.
#[derive(Debug, Clone)]
pub struct Relation {
    pub attr: String,
    /// `<key> IN (SELECT … WHERE `: the predicate follows.
    pub open: String,
    /// The subquery's tenant column, when it has one.
    pub tenant_column: Option<TenantColumn>,
    pub subs: Vec<Column>,
    /// True when only `subs` are in the table and the attribute's full values are in the
    /// JSON document (users' emails): the table then serves as an indexed pre-filter.
    pub partial: bool,
}

impl Relation {
    pub fn sub(&self, name: &str) -> Option<&Column> {
        self.subs.iter().find(|c| c.path == name)
    }
}

/// One resource type's tables, as the compiler sees them.
#[derive(Debug, Clone)]
pub struct View {
    pub kind: Kind,
    /// `FROM` clause text; the resource's row is aliased `t`.
    pub from: String,
    /// The tenant column of `t`, when rows carry one.
    pub tenant_column: Option<TenantColumn>,
    /// The predicate of live (not deleted) rows.
    pub live: String,
    /// The column that tells resource types apart in a table several share, and this
    /// view's type there (bound as a parameter).
    pub kind_filter: Option<(&'static str, &'static str)>,
    pub columns: Vec<Column>,
    /// The JSON document of the attributes without columns (may be NULL).
    pub doc: String,
    /// The stable default order.
    pub order_key: String,
    /// The `kind` under which triggers keep this view's live rows counted per tenant in
    /// `scim_live_counts` (scimd's own tables), read by unfiltered lists instead of counting
    /// rows.
    pub counted_as: Option<&'static str>,
    pub relations: Vec<Relation>,
}

impl View {
    pub fn column(&self, path: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.path == path)
    }
    pub fn relation(&self, attr: &str) -> Option<&Relation> {
        self.relations.iter().find(|r| r.attr == attr)
    }
}

/// scimd's own tables for a resource type.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    pub kind: Kind,
    pub table: &'static str,
    /// The name attribute and its columns: unique regardless of case for the built-in
    /// types; kept for display (and possibly NULL) in the shared table.
    pub name_attr: &'static str,
    pub name_column: &'static str,
    pub name_key_column: &'static str,
    /// Rows of several types share the table, told apart by a `kind` column.
    pub shared: bool,
}

impl Table {
    /// Appends ` AND <alias>.kind = <type>` where the table is shared.
    pub fn push_kind(&self, s: &mut Sql, alias: &str) {
        if self.shared {
            s.push(" AND ").push(alias).push(".kind = ").bind_text(self.kind.name());
        }
    }
}

pub const USERS: Table = Table {
    kind: Kind::User,
    table: "scim_users",
    name_attr: "userName",
    name_column: "user_name",
    name_key_column: "user_name_key",
    shared: false,
};

pub const GROUPS: Table = Table {
    kind: Kind::Group,
    table: "scim_groups",
    name_attr: "displayName",
    name_column: "display_name",
    name_key_column: "display_name_key",
    shared: false,
};

/// The table of a resource type: the built-in types have their own, configured types
/// share `scim_resources`.
pub fn table(kind: Kind) -> Table {
    if kind == Kind::User {
        Table { kind, ..USERS }
    } else if kind == Kind::Group {
        Table { kind, ..GROUPS }
    } else {
        Table {
            kind,
            table: "scim_resources",
            name_attr: kind.name_attribute(),
            name_column: "display_name",
            name_key_column: "display_name_key",
            shared: true,
        }
    }
}

fn common_columns() -> Vec<Column> {
    vec![
        Column::new("id", "t.id", ColumnType::ExactText),
        Column::new("externalId", "t.external_id", ColumnType::ExactText),
        Column::new("meta.created", "t.created", ColumnType::Instant),
        Column::new("meta.lastModified", "t.last_modified", ColumnType::Instant),
    ]
}

static USER_VIEW: LazyLock<View> = LazyLock::new(|| {
    let mut columns = common_columns();
    columns.push(Column::new("userName", "t.user_name_key", ColumnType::FoldedText));
    columns.push(Column::new("active", "t.active", ColumnType::Bool));
    View {
        kind: Kind::User,
        from: "scim_users t".into(),
        tenant_column: Some(TenantColumn::text("t.tenant")),
        live: "t.retired IS NULL".into(),
        kind_filter: None,
        columns,
        doc: "t.attributes".into(),
        order_key: "t.seq".into(),
        counted_as: Some("User"),
        relations: vec![
            Relation {
                attr: "groups".into(),
                open:
                    "t.id IN (SELECT m.member_id FROM scim_members m JOIN scim_groups g ON g.seq = m.group_seq WHERE "
                        .into(),
                tenant_column: Some(TenantColumn::text("m.tenant")),
                subs: vec![
                    Column::new("value", "g.id", ColumnType::ExactText),
                    Column::new("display", "g.display_name_key", ColumnType::FoldedText),
                ],
                partial: false,
            },
            Relation {
                attr: "emails".into(),
                open: "t.seq IN (SELECT e.user_seq FROM scim_user_emails e WHERE ".into(),
                tenant_column: Some(TenantColumn::text("e.tenant")),
                subs: vec![Column::new("value", "e.value_key", ColumnType::FoldedText)],
                partial: true,
            },
        ],
    }
});

static GROUP_VIEW: LazyLock<View> = LazyLock::new(|| {
    let mut columns = common_columns();
    columns.push(Column::new("displayName", "t.display_name_key", ColumnType::FoldedText));
    View {
        kind: Kind::Group,
        from: "scim_groups t".into(),
        tenant_column: Some(TenantColumn::text("t.tenant")),
        live: "t.retired IS NULL".into(),
        kind_filter: None,
        columns,
        doc: "t.attributes".into(),
        order_key: "t.seq".into(),
        counted_as: Some("Group"),
        relations: vec![Relation {
            attr: "members".into(),
            open: "t.seq IN (SELECT m.group_seq FROM scim_members m WHERE ".into(),
            tenant_column: Some(TenantColumn::text("m.tenant")),
            subs: vec![
                Column::new("value", "m.member_id", ColumnType::ExactText),
                Column::new("type", "m.member_type", ColumnType::CaselessText),
            ],
            partial: false,
        }],
    }
});

/// Views of the configured types, made once per type name (views hold no more than it).
static SHARED_VIEWS: LazyLock<Mutex<HashMap<&'static str, &'static View>>> = LazyLock::new(Default::default);

/// A configured type's rows in `scim_resources`: the common attributes have columns; the
/// others, its name among them, are read from the document (their comparison then
/// follows the schema's `caseExact`, whatever it says).
fn shared_view(kind: Kind) -> &'static View {
    let mut views = SHARED_VIEWS.lock().unwrap_or_else(|e| e.into_inner());
    views.entry(kind.name()).or_insert_with(|| {
        Box::leak(Box::new(View {
            kind,
            from: "scim_resources t".into(),
            tenant_column: Some(TenantColumn::text("t.tenant")),
            live: "t.retired IS NULL".into(),
            kind_filter: Some(("t.kind", kind.name())),
            columns: common_columns(),
            doc: "t.attributes".into(),
            order_key: "t.seq".into(),
            counted_as: None,
            relations: vec![],
        }))
    })
}

/// The view of scimd's own tables.
pub fn own_view(kind: Kind) -> &'static View {
    if kind == Kind::User {
        &USER_VIEW
    } else if kind == Kind::Group {
        &GROUP_VIEW
    } else {
        shared_view(kind)
    }
}
