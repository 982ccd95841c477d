//! Filters and sort keys compiled to SQL over scimd's tables. Indexed attributes compare
//! on their columns; multi-valued relations (emails, members, groups) go through their
//! own tables; everything else is read from the JSON document. Semantics follow the
//! in-memory evaluator of `scimd-proto` exactly (a property test checks it): case per
//! `caseExact`, any-value matching for multi-valued attributes, `ne` as "no value equals".

use crate::layout::{ColumnType, Relation, View};
use crate::sql::{Bind, Dialect, Sql};
use scimd_core::store::{SortKey, SortValue, StoreError};
use scimd_proto::AttrPath;
use scimd_proto::filter::{CompareOp, Filter, Literal};
use scimd_proto::messages::SortOrder;
use scimd_proto::schema::{AttrType, AttributeDef, Container, Resolved, ResourceSchema};
use scimd_proto::value::{fold_case, format_datetime, parse_datetime};

type Result<T> = std::result::Result<T, StoreError>;

fn unsupported(what: impl std::fmt::Display) -> StoreError {
    StoreError::Unsupported(format!("filtering or sorting on {what} is not supported"))
}

/// A path into the JSON document, as pieces (a container URN, an attribute, a sub-attribute).
pub(crate) fn json_path(pieces: &[&str]) -> Result<String> {
    let mut p = String::from("$");
    for piece in pieces {
        if piece.contains('"') || piece.contains('\\') {
            return Err(unsupported(format!("'{piece}'")));
        }
        p.push_str(".\"");
        p.push_str(piece);
        p.push('"');
    }
    Ok(p)
}

pub struct Compiler<'a> {
    pub dialect: Dialect,
    pub view: &'a View,
    pub schema: &'a ResourceSchema<'a>,
    pub tenant: &'a str,
}

impl<'a> Compiler<'a> {
    /// Case-folds an expression the way `value::fold_case` folds literals.
    fn fold(&self, expr: Sql) -> Sql {
        let mut out = expr.fork();
        out.push(self.dialect.fold_function()).push("(");
        out.append(expr).push(")");
        out
    }

    /// `json_extract(doc, path)`: the scalar at `path` as an SQL value.
    fn json_scalar(&self, sql: &mut Sql, doc: &str, path: &str) {
        match self.dialect {
            Dialect::Sqlite => {
                sql.push("json_extract(").push(doc).push(", ").bind_text(path).push(")");
            }
            Dialect::Postgres => {
                sql.push("jsonb_path_query_first(").push(doc).push(", ").bind_text(path).push("::jsonpath) #>> '{}'");
            }
        }
    }

    /// A value of the document to sort by, in its own type's order: SQLite's `json_extract`
    /// gives numbers and booleans typed already; PostgreSQL's text is cast (a value of
    /// another JSON type, possible only after a forced schema change, sorts as missing).
    fn json_sortable(&self, sql: &mut Sql, path: &str, kind: AttrType) {
        let cast = match (self.dialect, kind) {
            (Dialect::Postgres, AttrType::Integer | AttrType::Decimal) => Some(("number", "numeric")),
            (Dialect::Postgres, AttrType::Boolean) => Some(("boolean", "boolean")),
            _ => None,
        };
        let Some((json_type, sql_type)) = cast else {
            return self.json_scalar(sql, &self.view.doc, path);
        };
        sql.push("CASE WHEN jsonb_typeof(jsonb_path_query_first(").push(&self.view.doc).push(", ").bind_text(path);
        sql.push("::jsonpath)) = ").bind_text(json_type).push(" THEN CAST(");
        self.json_scalar(sql, &self.view.doc, path);
        sql.push(" AS ").push(sql_type).push(") END");
    }

    /// Compiles a filter to a boolean SQL expression over the table aliased `t`.
    pub fn filter(&self, sql: &mut Sql, f: &Filter) -> Result<()> {
        match f {
            Filter::And(a, b) | Filter::Or(a, b) => {
                sql.push("((");
                self.filter(sql, a)?;
                sql.push(if matches!(f, Filter::And(..)) { ") AND (" } else { ") OR (" });
                self.filter(sql, b)?;
                sql.push("))");
                Ok(())
            }
            Filter::Not(a) => {
                sql.push("NOT COALESCE((");
                self.filter(sql, a)?;
                sql.push("), FALSE)");
                Ok(())
            }
            Filter::Present(p) => self.attribute(sql, p, None),
            Filter::Compare(p, CompareOp::Ne, lit) if !matches!(lit, Literal::Null) => {
                sql.push("NOT COALESCE((");
                self.attribute(sql, p, Some((CompareOp::Eq, lit)))?;
                sql.push("), FALSE)");
                Ok(())
            }
            Filter::Compare(p, CompareOp::Eq, Literal::Null) => {
                sql.push("NOT COALESCE((");
                self.attribute(sql, p, None)?;
                sql.push("), FALSE)");
                Ok(())
            }
            Filter::Compare(p, CompareOp::Ne, Literal::Null) => self.attribute(sql, p, None),
            Filter::Compare(p, op, lit) => self.attribute(sql, p, Some((*op, lit))),
            Filter::ValuePath(p, inner) => self.value_path(sql, p, inner),
        }
    }

    fn resolve(&self, p: &AttrPath) -> Result<Resolved<'a>> {
        self.schema.resolve_attribute(p).map_err(|e| StoreError::Unsupported(e.detail))
    }

    /// A comparison (`cmp` given) or presence test (`cmp` None) on a resource-level path.
    fn attribute(&self, sql: &mut Sql, p: &AttrPath, cmp: Option<(CompareOp, &Literal)>) -> Result<()> {
        let r = self.resolve(p)?;
        let canonical = r.canonical();
        if r.attr.name == "schemas" && r.container == Container::Core {
            return self.schemas(sql, cmp);
        }
        if let Some(col) = self.view.column(&canonical) {
            return self.predicate(sql, &col.sql, col.kind, cmp);
        }
        if r.container == Container::Core
            && let Some(rel) = self.view.relation(&r.attr.name)
        {
            // The compared sub-attribute: the one named, else `value`; a bare `pr` on a
            // partial relation (emails) asks about every sub-attribute, which only the JSON
            // document has.
            let sub = match (r.sub, cmp) {
                (Some(s), _) => Some(s.name.as_str()),
                (None, Some(_)) => Some("value"),
                (None, None) if rel.partial => None,
                (None, None) => Some("value"),
            };
            match sub.and_then(|s| rel.sub(s)) {
                Some(col) => {
                    self.open_relation(sql, rel);
                    self.predicate(sql, &col.sql, col.kind, cmp)?;
                    sql.push("))");
                    return Ok(());
                }
                None if rel.partial => {}
                None => return Err(unsupported(format!("'{canonical}'"))),
            }
        }
        if r.is_common(self.schema) {
            return Err(unsupported(format!("'{canonical}'")));
        }
        // `name pr` where some of name's sub-attributes have columns (the mapped mode):
        // present in the document or in one of those columns.
        if cmp.is_none() && r.sub.is_none() && r.attr.kind == AttrType::Complex {
            let within = self.columns_under(&format!("{canonical}."));
            if !within.is_empty() {
                sql.push("((");
                self.json_attribute(sql, &r, None)?;
                return self.or_present(sql, &within);
            }
        }
        self.json_attribute(sql, &r, cmp)
    }

    /// The columns whose paths start with `prefix`.
    fn columns_under(&self, prefix: &str) -> Vec<&'a crate::layout::Column> {
        self.view.columns.iter().filter(|c| c.path.starts_with(prefix)).collect()
    }

    /// Continues an open `((…` with `) OR (<column> pr)` for each column, and closes it.
    fn or_present(&self, sql: &mut Sql, columns: &[&crate::layout::Column]) -> Result<()> {
        for col in columns {
            sql.push(") OR (");
            self.predicate(sql, &col.sql, col.kind, None)?;
        }
        sql.push("))");
        Ok(())
    }

    /// `schemas eq "urn:…"`: the core schema always, an extension when it has data.
    fn schemas(&self, sql: &mut Sql, cmp: Option<(CompareOp, &Literal)>) -> Result<()> {
        match cmp {
            None => {
                sql.push("TRUE");
            }
            Some((CompareOp::Eq, Literal::String(urn))) => {
                if urn.eq_ignore_ascii_case(&self.schema.core.id) {
                    sql.push("TRUE");
                } else if let Some(ext) = self.schema.extension(urn) {
                    let path = json_path(&[&ext.id])?;
                    sql.push("((");
                    match self.dialect {
                        Dialect::Sqlite => {
                            sql.push("json_type(").push(&self.view.doc).push(", ").bind_text(path).push(") IS NOT NULL")
                        }
                        Dialect::Postgres => sql
                            .push("jsonb_path_exists(")
                            .push(&self.view.doc)
                            .push(", ")
                            .bind_text(path)
                            .push("::jsonpath)"),
                    };
                    // Extension attributes with columns of their own count too.
                    self.or_present(sql, &self.columns_under(&format!("{}:", ext.id)))?;
                } else {
                    sql.push("FALSE");
                }
            }
            Some(_) => return Err(unsupported("'schemas' with operators other than eq")),
        }
        Ok(())
    }

    /// Opens a relation's subquery, scoped to the tenant, up to its predicate.
    fn open_relation(&self, sql: &mut Sql, rel: &Relation) {
        sql.push(&rel.open);
        if let Some(tc) = &rel.tenant_column {
            tc.push_eq(sql, self.tenant);
            sql.push(" AND ");
        }
        sql.push("(");
    }

    /// A comparison or presence test on an attribute kept in the JSON document.
    fn json_attribute(&self, sql: &mut Sql, r: &Resolved<'_>, cmp: Option<(CompareOp, &Literal)>) -> Result<()> {
        let mut top: Vec<&str> = Vec::new();
        if let Some(urn) = r.container.urn() {
            top.push(urn);
        }
        top.push(&r.attr.name);
        if r.attr.multi_valued {
            let leaf = match (r.sub, cmp) {
                (Some(s), _) => Some(s),
                (None, Some(_)) => r.attr.comparison_target().filter(|d| d.kind != AttrType::Complex),
                (None, None) => None,
            };
            let sub_name = leaf.filter(|_| r.attr.kind == AttrType::Complex).map(|s| s.name.as_str());
            return self.each_element(sql, &json_path(&top)?, |c, sql| match (cmp, sub_name) {
                (None, Some(sub)) => c.present_json(sql, "e.value", &json_path(&[sub])?),
                (None, None) => c.present_json(sql, "e.value", "$"),
                (Some(cmp), Some(sub)) => {
                    let mut expr = sql.fork();
                    c.json_scalar(&mut expr, "e.value", &json_path(&[sub])?);
                    c.json_compare(sql, expr, leaf.expect("compare has a leaf"), cmp)
                }
                (Some(cmp), None) => {
                    let mut expr = sql.fork();
                    c.json_scalar(&mut expr, "e.value", "$");
                    c.json_compare(sql, expr, leaf.unwrap_or(r.attr), cmp)
                }
            });
        }
        let mut pieces = top;
        let leaf = match (r.sub, cmp) {
            (Some(s), _) => Some(s),
            (None, Some(_)) => r.attr.comparison_target(),
            (None, None) => None,
        };
        if let Some(l) = leaf.filter(|l| !std::ptr::eq(*l, r.attr)) {
            pieces.push(&l.name);
        }
        let path = json_path(&pieces)?;
        match cmp {
            None => self.present_json(sql, &self.view.doc, &path),
            Some(cmp) => {
                let mut expr = sql.fork();
                self.json_scalar(&mut expr, &self.view.doc, &path);
                self.json_compare(sql, expr, leaf.expect("compare has a leaf"), cmp)
            }
        }
    }

    /// `EXISTS (… each element e of the array at path … WHERE body)`.
    fn each_element(&self, sql: &mut Sql, path: &str, body: impl FnOnce(&Self, &mut Sql) -> Result<()>) -> Result<()> {
        match self.dialect {
            Dialect::Sqlite => {
                sql.push("EXISTS (SELECT 1 FROM ");
                self.sqlite_elements(sql, path);
                sql.push(" WHERE ")
            }
            Dialect::Postgres => sql
                .push("EXISTS (SELECT 1 FROM jsonb_array_elements(COALESCE(jsonb_path_query_first(")
                .push(&self.view.doc)
                .push(", ")
                .bind_text(path)
                .push("::jsonpath), '[]'::jsonb)) e(value) WHERE "),
        };
        body(self, sql)?;
        sql.push(")");
        Ok(())
    }

    /// SQLite: the elements of the array at `path` as rows `e(key, value)`, each `value`
    /// JSON text (`json_each` gives a string element as bare text, which the JSON
    /// functions cannot read).
    fn sqlite_elements(&self, sql: &mut Sql, path: &str) {
        sql.push(
            "(SELECT j.key AS key, CASE j.type WHEN 'object' THEN j.value WHEN 'array' THEN j.value \
             WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'null' THEN 'null' \
             ELSE json_quote(j.value) END AS value FROM json_each(",
        )
        .push(&self.view.doc)
        .push(", ")
        .bind_text(path)
        .push(") j) e");
    }

    /// `pr` on JSON: some scalar under `path` is neither null nor "" (the evaluator's
    /// `is_present`, recursively).
    fn present_json(&self, sql: &mut Sql, doc: &str, path: &str) -> Result<()> {
        match self.dialect {
            Dialect::Sqlite => {
                sql.push("EXISTS (SELECT 1 FROM json_tree(").push(doc).push(", ").bind_text(path).push(
                    ") j WHERE j.type NOT IN ('object', 'array', 'null') AND NOT (j.type = 'text' AND j.atom = ''))",
                );
            }
            // Typed: in a jsonpath filter `@ != ""` is unknown (so false) for a boolean or a
            // number, which would make `emails.primary pr` match nothing.
            Dialect::Postgres => {
                sql.push("jsonb_path_exists(").push(doc).push(", ").bind_text(format!("{path}.** ? (@.type() == \"boolean\" || @.type() == \"number\" || (@.type() == \"string\" && @ != \"\"))")).push("::jsonpath)");
            }
        }
        Ok(())
    }

    fn json_compare(
        &self,
        sql: &mut Sql,
        expr: Sql,
        def: &AttributeDef,
        (op, lit): (CompareOp, &Literal),
    ) -> Result<()> {
        match (def.kind, lit) {
            (AttrType::Boolean, Literal::Bool(b)) => {
                sql.append(expr).push(" = ");
                match self.dialect {
                    Dialect::Sqlite => sql.bind(Bind::Int(*b as i64)),
                    Dialect::Postgres => sql.bind_text(b.to_string()),
                };
                Ok(())
            }
            (AttrType::Integer | AttrType::Decimal, Literal::Number(n)) => {
                let f = n.as_f64().ok_or_else(|| unsupported("this number"))?;
                match self.dialect {
                    Dialect::Sqlite => sql.append(expr),
                    Dialect::Postgres => sql.push("(").append(expr).push(")::double precision"),
                };
                sql.push(sql_op(op)).bind(Bind::Float(f));
                Ok(())
            }
            (AttrType::DateTime, Literal::String(s)) => {
                let t = parse_datetime(s).ok_or_else(|| unsupported("this date-time"))?;
                match self.dialect {
                    Dialect::Sqlite => sql
                        .push("julianday(")
                        .append(expr)
                        .push(")")
                        .push(sql_op(op))
                        .push("julianday(")
                        .bind_text(format_datetime(t))
                        .push(")"),
                    Dialect::Postgres => sql
                        .push("(")
                        .append(expr)
                        .push(")::timestamptz")
                        .push(sql_op(op))
                        .bind_text(format_datetime(t))
                        .push("::timestamptz"),
                };
                Ok(())
            }
            (kind, Literal::String(s)) if kind.is_textual() => {
                if def.case_exact {
                    self.text_compare(sql, expr, op, s.clone());
                } else {
                    self.text_compare(sql, self.fold(expr), op, fold_case(s));
                }
                Ok(())
            }
            _ => Err(unsupported(format!("'{}' with this value", def.name))),
        }
    }

    /// A comparison or presence test on a column.
    fn predicate(&self, sql: &mut Sql, col: &str, kind: ColumnType, cmp: Option<(CompareOp, &Literal)>) -> Result<()> {
        let Some((op, lit)) = cmp else {
            match kind {
                ColumnType::ExactText | ColumnType::FoldedText | ColumnType::CaselessText => {
                    sql.push("(").push(col).push(" IS NOT NULL AND ").push(col).push(" <> '')")
                }
                _ => sql.push(col).push(" IS NOT NULL"),
            };
            return Ok(());
        };
        match (kind, lit) {
            (ColumnType::ExactText, Literal::String(s)) => self.text_compare(sql, raw(sql, col), op, s.clone()),
            (ColumnType::FoldedText, Literal::String(s)) => self.text_compare(sql, raw(sql, col), op, fold_case(s)),
            (ColumnType::CaselessText, Literal::String(s)) => {
                self.text_compare(sql, self.fold(raw(sql, col)), op, fold_case(s))
            }
            (ColumnType::Bool, Literal::Bool(b)) => {
                match self.dialect {
                    Dialect::Sqlite => sql.push(col).push(" = ").bind(Bind::Int(*b as i64)),
                    Dialect::Postgres => sql.push(col).push(" = ").bind(Bind::Bool(*b)),
                };
            }
            (ColumnType::Instant, Literal::String(s)) => {
                let t = parse_datetime(s).ok_or_else(|| unsupported("this date-time"))?;
                sql.push(col).push(sql_op(op)).bind_text(format_datetime(t));
            }
            _ => return Err(unsupported(format!("'{col}' with this value"))),
        }
        Ok(())
    }

    fn text_compare(&self, sql: &mut Sql, expr: Sql, op: CompareOp, lit: String) {
        if lit.is_empty() && op.is_substring() {
            sql.append(expr).push(" IS NOT NULL");
            return;
        }
        let n = lit.chars().count() as i64;
        match (op, self.dialect) {
            (CompareOp::Co, Dialect::Sqlite) => sql.push("instr(").append(expr).push(", ").bind_text(lit).push(") > 0"),
            (CompareOp::Co, Dialect::Postgres) => {
                sql.push("strpos(").append(expr).push(", ").bind_text(lit).push(") > 0")
            }
            (CompareOp::Sw, Dialect::Sqlite) => {
                sql.push("substr(").append(expr).push(", 1, ").bind(Bind::Int(n)).push(") = ").bind_text(lit)
            }
            (CompareOp::Sw, Dialect::Postgres) => {
                sql.push("left(").append(expr).push(", ").bind(Bind::Int(n)).push("::int) = ").bind_text(lit)
            }
            (CompareOp::Ew, Dialect::Sqlite) => {
                sql.push("substr(").append(expr).push(", ").bind(Bind::Int(-n)).push(") = ").bind_text(lit)
            }
            (CompareOp::Ew, Dialect::Postgres) => {
                sql.push("right(").append(expr).push(", ").bind(Bind::Int(n)).push("::int) = ").bind_text(lit)
            }
            (op, Dialect::Postgres) if op.is_ordering() => {
                sql.append(expr).push(" COLLATE \"C\"").push(sql_op(op)).bind_text(lit)
            }
            (op, _) => sql.append(expr).push(sql_op(op)).bind_text(lit),
        };
    }

    fn value_path(&self, sql: &mut Sql, p: &AttrPath, inner: &Filter) -> Result<()> {
        let r = self.resolve(p)?;
        let relation = if r.container == Container::Core { self.view.relation(&r.attr.name) } else { None };
        if let Some(rel) = relation.filter(|rel| !rel.partial) {
            self.open_relation(sql, rel);
            self.element_filter(sql, inner, r.attr, &ElementDoc::Columns(rel))?;
            sql.push("))");
            return Ok(());
        }
        let mut top: Vec<&str> = Vec::new();
        if let Some(urn) = r.container.urn() {
            top.push(urn);
        }
        top.push(&r.attr.name);
        if !r.attr.multi_valued {
            let prefix: Vec<String> = top.iter().map(|s| s.to_string()).collect();
            return self.element_filter(sql, inner, r.attr, &ElementDoc::Json { doc: &self.view.doc, prefix });
        }
        // An indexed pre-filter when the value filter pins `value` (Entra ID's
        // `emails[type eq "work"].value eq "…"`); the JSON test below stays exact.
        if let Some(rel) = relation
            && let Some(col) = rel.sub("value")
            && let Some(v) = conjunct_value_eq(inner)
        {
            self.open_relation(sql, rel);
            self.predicate(sql, &col.sql, col.kind, Some((CompareOp::Eq, &Literal::String(v.to_string()))))?;
            sql.push(")) AND ");
        }
        self.each_element(sql, &json_path(&top)?, |c, sql| {
            c.element_filter(sql, inner, r.attr, &ElementDoc::Json { doc: "e.value", prefix: vec![] })
        })
    }

    /// A value filter, its paths naming sub-attributes of `attr`.
    fn element_filter(&self, sql: &mut Sql, f: &Filter, attr: &AttributeDef, doc: &ElementDoc) -> Result<()> {
        match f {
            Filter::And(a, b) | Filter::Or(a, b) => {
                sql.push("((");
                self.element_filter(sql, a, attr, doc)?;
                sql.push(if matches!(f, Filter::And(..)) { ") AND (" } else { ") OR (" });
                self.element_filter(sql, b, attr, doc)?;
                sql.push("))");
                Ok(())
            }
            Filter::Not(a) => {
                sql.push("NOT COALESCE((");
                self.element_filter(sql, a, attr, doc)?;
                sql.push("), FALSE)");
                Ok(())
            }
            Filter::ValuePath(..) => Err(unsupported("nested value filters")),
            Filter::Present(p) => self.element_leaf(sql, p, attr, doc, None),
            Filter::Compare(p, CompareOp::Ne, lit) if !matches!(lit, Literal::Null) => {
                sql.push("NOT COALESCE((");
                self.element_leaf(sql, p, attr, doc, Some((CompareOp::Eq, lit)))?;
                sql.push("), FALSE)");
                Ok(())
            }
            Filter::Compare(p, CompareOp::Eq, Literal::Null) => {
                sql.push("NOT COALESCE((");
                self.element_leaf(sql, p, attr, doc, None)?;
                sql.push("), FALSE)");
                Ok(())
            }
            Filter::Compare(p, CompareOp::Ne, Literal::Null) => self.element_leaf(sql, p, attr, doc, None),
            Filter::Compare(p, op, lit) => self.element_leaf(sql, p, attr, doc, Some((*op, lit))),
        }
    }

    fn element_leaf(
        &self,
        sql: &mut Sql,
        p: &AttrPath,
        attr: &AttributeDef,
        doc: &ElementDoc,
        cmp: Option<(CompareOp, &Literal)>,
    ) -> Result<()> {
        let sub = attr.sub(&p.name).ok_or_else(|| unsupported(format!("'{}.{}'", attr.name, p.name)))?;
        match doc {
            ElementDoc::Columns(rel) => {
                let col = rel.sub(&sub.name).ok_or_else(|| unsupported(format!("'{}.{}'", attr.name, sub.name)))?;
                self.predicate(sql, &col.sql, col.kind, cmp)
            }
            ElementDoc::Json { doc, prefix } => {
                let mut pieces: Vec<&str> = prefix.iter().map(String::as_str).collect();
                pieces.push(&sub.name);
                let path = json_path(&pieces)?;
                match cmp {
                    None => self.present_json(sql, doc, &path),
                    Some(cmp) => {
                        let mut expr = sql.fork();
                        self.json_scalar(&mut expr, doc, &path);
                        self.json_compare(sql, expr, sub, cmp)
                    }
                }
            }
        }
    }

    /// The expression a sort key orders by (RFC 7644 §3.4.2.3; a multi-valued attribute
    /// sorts by its primary value, else its first).
    /// The expression a sort key orders by: NULL where a resource has no value, folded
    /// where the attribute is compared without case.
    pub fn sort_expr(&self, like: &Sql, key: &SortKey) -> Result<Sql> {
        let path = AttrPath::parse(&key.path).map_err(StoreError::Unsupported)?;
        let r = self.resolve(&path)?;
        let mut expr = like.fork();
        let relation = if r.container == Container::Core { self.view.relation(&r.attr.name) } else { None };
        if let Some(col) = self.view.column(&r.canonical()) {
            // Sorted as compared: a column kept as given sorts case-insensitively.
            expr = match col.kind {
                ColumnType::CaselessText => self.fold(raw(&expr, &col.sql)),
                _ => raw(&expr, &col.sql),
            };
        } else if relation.is_some_and(|rel| !rel.partial)
            || r.is_common(self.schema)
            || r.attr.kind == AttrType::Complex && r.sub.is_none() && r.attr.sub("value").is_none()
        {
            return Err(StoreError::Unsupported(format!("sorting by '{}' is not supported", key.path)));
        } else {
            let mut top: Vec<&str> = Vec::new();
            if let Some(urn) = r.container.urn() {
                top.push(urn);
            }
            top.push(&r.attr.name);
            let leaf = r.sub.or_else(|| r.attr.comparison_target()).unwrap_or(r.attr);
            let scalar = if r.attr.multi_valued {
                let sub = if r.attr.kind == AttrType::Complex { json_path(&[&leaf.name])? } else { "$".to_string() };
                let mut e = expr.fork();
                match self.dialect {
                    Dialect::Sqlite => {
                        e.push("(SELECT json_extract(e.value, ").bind_text(sub).push(") FROM ");
                        self.sqlite_elements(&mut e, &json_path(&top)?);
                        e.push(" ORDER BY COALESCE(json_extract(e.value, '$.primary'), 0) DESC, e.key LIMIT 1)");
                    }
                    Dialect::Postgres => {
                        e.push("(SELECT jsonb_path_query_first(e.value, ").bind_text(sub).push("::jsonpath) #>> '{}' FROM jsonb_array_elements(COALESCE(jsonb_path_query_first(").push(&self.view.doc).push(", ").bind_text(json_path(&top)?).push("::jsonpath), '[]'::jsonb)) WITH ORDINALITY e(value, n) ORDER BY COALESCE((e.value->>'primary')::boolean, false) DESC, e.n LIMIT 1)");
                    }
                }
                e
            } else {
                if !std::ptr::eq(leaf, r.attr) {
                    top.push(&leaf.name);
                }
                let mut e = expr.fork();
                self.json_sortable(&mut e, &json_path(&top)?, leaf.kind);
                e
            };
            expr = if leaf.kind.is_textual() && !leaf.case_exact { self.fold(scalar) } else { scalar };
        }
        Ok(expr)
    }

    /// `ORDER BY` terms of a sort key: missing values last in either direction, ties in
    /// the view's own order.
    pub fn sort(&self, sql: &mut Sql, key: &SortKey) -> Result<()> {
        let expr = self.sort_expr(sql, key)?;
        let dir = if key.order == SortOrder::Descending { " DESC" } else { " ASC" };
        sql.push("(").append(expr.clone()).push(") IS NULL, ").append(expr).push(dir).push(", ");
        sql.push(&self.view.order_key);
        Ok(())
    }

    /// The columns that give a row's sort value back (`sort_value` reads them): its type as
    /// the database names it, and the value (as text on PostgreSQL, which casts it back).
    pub fn sort_columns(&self, sql: &mut Sql, key: &SortKey) -> Result<()> {
        let expr = self.sort_expr(sql, key)?;
        match self.dialect {
            Dialect::Sqlite => sql.push("typeof(").append(expr.clone()).push("), ").append(expr),
            Dialect::Postgres => {
                sql.push("pg_typeof(").append(expr.clone()).push(")::text, (").append(expr).push(")::text")
            }
        };
        Ok(())
    }

    /// A predicate for the rows after the one with sort value `value` and order key `key`,
    /// in the order `sort` gives (see `sort`): keyset paging in a sorted list.
    pub fn after_sorted(&self, sql: &mut Sql, sort: &SortKey, value: &SortValue, key: i64) -> Result<()> {
        let expr = self.sort_expr(sql, sort)?;
        let order_key = &self.view.order_key;
        if *value == SortValue::Null {
            // Missing values come last: only missing ones after a later key remain.
            sql.push("((").append(expr).push(") IS NULL AND ").push(order_key).push(" > ").bind(Bind::Int(key));
            sql.push(")");
            return Ok(());
        }
        let beyond = if sort.order == SortOrder::Descending { " < " } else { " > " };
        let mut v = sql.fork();
        match value {
            SortValue::Int(i) => {
                v.bind(Bind::Int(*i));
            }
            SortValue::Real(f) => {
                v.bind(Bind::Float(*f));
            }
            SortValue::Bool(b) => {
                v.bind(Bind::Bool(*b));
            }
            SortValue::Text { text, type_name } => match self.dialect {
                Dialect::Sqlite => {
                    v.bind_text(text.clone());
                }
                Dialect::Postgres => {
                    let known = !type_name.is_empty()
                        && type_name.len() < 64
                        && type_name
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b' ' || b == b'_');
                    if !known {
                        return Err(StoreError::Unsupported(format!(
                            "cannot continue after a value of type '{type_name}'"
                        )));
                    }
                    v.push("CAST(").bind_text(text.clone()).push(" AS ").push(type_name).push(")");
                }
            },
            SortValue::Null => {}
        }
        sql.push("((").append(expr.clone()).push(") IS NULL OR (").append(expr.clone()).push(")").push(beyond);
        sql.append(v.clone()).push(" OR ((").append(expr).push(") = ").append(v).push(" AND ").push(order_key);
        sql.push(" > ").bind(Bind::Int(key)).push("))");
        Ok(())
    }

    /// A row's sort value from the two columns of `sort_columns` at `at`.
    pub fn sort_value(&self, row: &crate::conn::Row, at: usize) -> SortValue {
        use crate::conn::Cell;
        let tag = row.opt_text(at).unwrap_or_default();
        match (self.dialect, row.cell(at + 1)) {
            (_, Cell::Null) => SortValue::Null,
            (Dialect::Postgres, Cell::Text(t)) => SortValue::Text { text: t.clone(), type_name: tag },
            (Dialect::Sqlite, Cell::Int(i)) => SortValue::Int(*i),
            (Dialect::Sqlite, Cell::Text(t)) if tag == "real" => t.parse().map_or(SortValue::Null, SortValue::Real),
            (Dialect::Sqlite, Cell::Text(t)) => SortValue::Text { text: t.clone(), type_name: String::new() },
            (_, Cell::Bool(b)) => SortValue::Bool(*b),
            (Dialect::Postgres, Cell::Int(i)) => SortValue::Int(*i),
        }
    }
}

/// A column name as an expression fragment.
fn raw(like: &Sql, col: &str) -> Sql {
    let mut e = like.fork();
    e.push(col);
    e
}

enum ElementDoc<'v> {
    Columns(&'v Relation),
    Json { doc: &'v str, prefix: Vec<String> },
}

/// The literal of a top-level conjunct `value eq "…"` in a value filter.
fn conjunct_value_eq(f: &Filter) -> Option<&str> {
    match f {
        Filter::Compare(p, CompareOp::Eq, Literal::String(s))
            if p.name.eq_ignore_ascii_case("value") && p.sub.is_none() =>
        {
            Some(s)
        }
        Filter::And(a, b) => conjunct_value_eq(a).or_else(|| conjunct_value_eq(b)),
        _ => None,
    }
}

fn sql_op(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Eq => " = ",
        CompareOp::Ne => " <> ",
        CompareOp::Gt => " > ",
        CompareOp::Ge => " >= ",
        CompareOp::Lt => " < ",
        CompareOp::Le => " <= ",
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => {
            unreachable!("substring operators are compiled by text_compare")
        }
    }
}
