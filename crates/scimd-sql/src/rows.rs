//! Dialect-independent row handling: the indexed columns derived from a resource's
//! attributes, and relation rows folded back into the attribute documents.

use scimd_core::store::{Kind, StoreError, StoredResource};
use scimd_proto::value::fold_case;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// The columns a write derives from the attribute document.
#[derive(Debug, Clone)]
pub struct Derived {
    /// The name attribute (always there for the built-in types) and its folded key.
    pub name: Option<String>,
    pub name_key: Option<String>,
    pub external_id: Option<String>,
    pub active: Option<bool>,
    /// Folded, distinct `emails.value`s.
    pub emails: Vec<String>,
    /// The values the type keeps unique (`Kind::unique`): attribute path and key.
    pub unique: Vec<(String, String)>,
}

/// The longest value scimd keeps in an index, in bytes. PostgreSQL's btree refuses entries
/// over about 2.7 kB; the same bound on every database keeps their behaviour the same.
pub const MAX_INDEXED_BYTES: usize = 2048;

fn indexable<'a>(attribute: &str, value: &'a str) -> Result<&'a str, StoreError> {
    if value.len() > MAX_INDEXED_BYTES {
        return Err(StoreError::Rejected(scimd_proto::ScimError::invalid_value(format!(
            "'{attribute}' is {} bytes long; this server indexes values of at most {MAX_INDEXED_BYTES} bytes",
            value.len()
        ))));
    }
    Ok(value)
}

pub fn derive(kind: Kind, attrs: &Map<String, Value>) -> Result<Derived, StoreError> {
    let name_attr = kind.name_attribute();
    let name = match attrs.get(name_attr).and_then(Value::as_str) {
        Some(name) => Some(indexable(name_attr, name)?.to_string()),
        None if kind.is_built_in() => {
            return Err(StoreError::Backend(format!("{name_attr} missing after validation")));
        }
        None => None,
    };
    let mut emails: Vec<String> = attrs
        .get("emails")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|e| e.get("value").and_then(Value::as_str))
                .map(|v| indexable("emails.value", &fold_case(v)).map(str::to_string))
                .collect::<Result<_, _>>()
        })
        .transpose()?
        .unwrap_or_default();
    let external_id =
        attrs.get("externalId").and_then(Value::as_str).map(|e| indexable("externalId", e)).transpose()?;
    emails.sort();
    emails.dedup();
    // Folding can lengthen text (İ is two bytes, i̇ three): the folded key is what is indexed.
    let name_key = name.as_deref().map(|n| indexable(name_attr, &fold_case(n)).map(str::to_string)).transpose()?;
    Ok(Derived {
        name_key,
        name,
        external_id: external_id.map(str::to_string),
        active: attrs.get("active").and_then(Value::as_bool),
        emails,
        unique: unique_keys(kind, attrs)?,
    })
}

/// The keys of the values `kind` keeps unique: text folded unless the attribute is
/// case-exact, other values as their JSON text.
fn unique_keys(kind: Kind, attrs: &Map<String, Value>) -> Result<Vec<(String, String)>, StoreError> {
    let mut keys = Vec::new();
    for u in kind.unique() {
        let container = match u.urn {
            None => Some(attrs),
            Some(urn) => attrs.get(urn).and_then(Value::as_object),
        };
        let key = match container.and_then(|c| c.get(u.name)) {
            None | Some(Value::Null) => continue,
            Some(Value::String(v)) if u.case_exact => v.clone(),
            Some(Value::String(v)) => fold_case(v),
            Some(other) => other.to_string(),
        };
        let path = u.path();
        keys.push((path.clone(), indexable(&path, &key)?.to_string()));
    }
    Ok(keys)
}

/// A member of a group (owner = group seq) or a group of a user (owner = user seq).
#[derive(Debug, Clone)]
pub struct RelationRow {
    pub owner: i64,
    pub value: String,
    pub kind: Option<String>,
    pub display: Option<String>,
}

/// Relation values aggregated by the database as a JSON array of `{value, type?, display?}`
/// objects; a null `display` (a member without a name) is left out, as in `assemble`.
pub fn relation_values(text: &str) -> Result<Value, StoreError> {
    let mut list: Vec<Map<String, Value>> =
        serde_json::from_str(text).map_err(|e| StoreError::Backend(format!("corrupt relation list: {e}")))?;
    for item in &mut list {
        item.retain(|_, v| !v.is_null());
    }
    Ok(Value::Array(list.into_iter().map(Value::Object).collect()))
}

/// Puts relation rows into `members` (groups) or `groups` (users), in row order.
pub fn assemble(kind: Kind, items: &mut [(i64, StoredResource)], rows: Vec<RelationRow>) {
    let attr = kind.relation().unwrap_or_default();
    let mut by_owner: HashMap<i64, Vec<Value>> = HashMap::new();
    for r in rows {
        let mut v = json!({ "value": r.value });
        if let Some(k) = r.kind {
            v["type"] = Value::String(k);
        }
        if let Some(d) = r.display {
            v["display"] = Value::String(d);
        }
        by_owner.entry(r.owner).or_default().push(v);
    }
    for (seq, res) in items.iter_mut() {
        if let Some(list) = by_owner.remove(seq) {
            res.attributes.insert(attr.into(), Value::Array(list));
        }
    }
}
