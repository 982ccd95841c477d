//! How each resource type sits in scimd's own tables: which SCIM attributes have
//! columns (and so indexes), and which live only in the `attributes` JSON document.

use scimd_core::Kind;

/// How a column's values compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// Text stored as given; compared exactly.
    ExactText,
    /// Text stored case-folded; literals are folded before comparing.
    FoldedText,
    Bool,
    /// An instant stored in `value::format_datetime` form, whose text order is time order.
    Instant,
}

/// A SCIM attribute path with a column of its own.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// Canonical SCIM path, e.g. `userName`, `meta.lastModified`.
    pub path: &'static str,
    pub sql: &'static str,
    pub kind: ColumnType,
}

/// One resource type's table.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub kind: Kind,
    pub table: &'static str,
    pub columns: &'static [Column],
    /// The unique, case-insensitive name attribute and its folded column.
    pub name_attr: &'static str,
    pub name_column: &'static str,
    pub name_key_column: &'static str,
}

const USER_COLUMNS: &[Column] = &[
    Column { path: "id", sql: "t.id", kind: ColumnType::ExactText },
    Column { path: "externalId", sql: "t.external_id", kind: ColumnType::ExactText },
    Column { path: "userName", sql: "t.user_name_key", kind: ColumnType::FoldedText },
    Column { path: "active", sql: "t.active", kind: ColumnType::Bool },
    Column { path: "meta.created", sql: "t.created", kind: ColumnType::Instant },
    Column { path: "meta.lastModified", sql: "t.last_modified", kind: ColumnType::Instant },
];

const GROUP_COLUMNS: &[Column] = &[
    Column { path: "id", sql: "t.id", kind: ColumnType::ExactText },
    Column { path: "externalId", sql: "t.external_id", kind: ColumnType::ExactText },
    Column { path: "displayName", sql: "t.display_name_key", kind: ColumnType::FoldedText },
    Column { path: "meta.created", sql: "t.created", kind: ColumnType::Instant },
    Column { path: "meta.lastModified", sql: "t.last_modified", kind: ColumnType::Instant },
];

pub const USERS: Layout = Layout {
    kind: Kind::User,
    table: "scim_users",
    columns: USER_COLUMNS,
    name_attr: "userName",
    name_column: "user_name",
    name_key_column: "user_name_key",
};

pub const GROUPS: Layout = Layout {
    kind: Kind::Group,
    table: "scim_groups",
    columns: GROUP_COLUMNS,
    name_attr: "displayName",
    name_column: "display_name",
    name_key_column: "display_name_key",
};

pub fn layout(kind: Kind) -> &'static Layout {
    match kind {
        Kind::User => &USERS,
        Kind::Group => &GROUPS,
    }
}

impl Layout {
    pub fn column(&self, path: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.path == path)
    }
}
