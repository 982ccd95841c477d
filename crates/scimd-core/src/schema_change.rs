//! Changes of the configured schemas between starts. The schemas and resource types a
//! deployment started with are kept in its database; a start whose schemas remove a
//! resource type, an extension or an attribute, or change an attribute's type, while stored
//! resources hold data there, would leave that data unreadable through SCIM: it is refused
//! unless forced.

use crate::store::StoreError;
use async_trait::async_trait;
use scimd_proto::schema::{AttributeDef, Registry, ResourceType, Schema};
use serde::{Deserialize, Serialize};

/// Where the schema state lives (scimd's database).
#[async_trait]
pub trait SchemaStore: Send + Sync {
    /// The document `save_schema` last stored, if any.
    async fn stored_schema(&self) -> Result<Option<String>, StoreError>;
    async fn save_schema(&self, document: &str, now: &str) -> Result<(), StoreError>;
    /// Whether a stored resource of the type named `kind` (live or retired) holds data at
    /// `place`.
    async fn holds_data(&self, kind: &str, place: &Place) -> Result<bool, StoreError>;
}

/// A place in stored resources: the whole type, an extension's object, or an attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Type,
    Extension(String),
    /// An attribute: the extension that holds it (None in the core schema) and its name.
    Attribute(Option<String>, String),
}

/// A change that would orphan data, if any is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphaning {
    pub kind: String,
    pub place: Place,
    /// What changed, in words.
    pub change: String,
}

/// The state kept between starts.
#[derive(Debug, Serialize, Deserialize)]
struct State {
    schemas: Vec<Schema>,
    #[serde(rename = "resourceTypes")]
    resource_types: Vec<ResourceType>,
}

/// The document kept for a registry.
pub fn document(registry: &Registry) -> String {
    let state = State { schemas: registry.schemas().to_vec(), resource_types: registry.resource_types().to_vec() };
    serde_json::to_string(&state).expect("schemas serialize")
}

/// The changes from the state `old` (a `document`) to `new` that would orphan stored data.
pub fn orphanings(old: &str, new: &Registry) -> Result<Vec<Orphaning>, String> {
    let old: State = serde_json::from_str(old).map_err(|e| format!("the stored schema state is unreadable: {e}"))?;
    let schema_of = |id: &str| old.schemas.iter().find(|s| s.id.eq_ignore_ascii_case(id));
    let mut out = Vec::new();
    for rt in &old.resource_types {
        let kind = rt.name.clone();
        let Some(now) = new.resource(&rt.name) else {
            out.push(Orphaning { kind, place: Place::Type, change: "the resource type was removed".into() });
            continue;
        };
        if let Some(core) = schema_of(&rt.schema) {
            if !now.core.id.eq_ignore_ascii_case(&core.id) {
                out.push(Orphaning {
                    kind: kind.clone(),
                    place: Place::Type,
                    change: format!("its core schema changed from '{}' to '{}'", core.id, now.core.id),
                });
            } else {
                compare(&kind, None, core, now.core, &mut out);
            }
        }
        for ext in &rt.schema_extensions {
            let Some(old_ext) = schema_of(&ext.schema) else { continue };
            match now.extension(&ext.schema) {
                Some(new_ext) => compare(&kind, Some(&old_ext.id), old_ext, new_ext, &mut out),
                None => out.push(Orphaning {
                    kind: kind.clone(),
                    place: Place::Extension(old_ext.id.clone()),
                    change: format!("extension '{}' was removed", old_ext.id),
                }),
            }
        }
    }
    Ok(out)
}

fn compare(kind: &str, urn: Option<&str>, old: &Schema, new: &Schema, out: &mut Vec<Orphaning>) {
    for attr in &old.attributes {
        let place = Place::Attribute(urn.map(str::to_string), attr.name.clone());
        let path = match urn {
            Some(urn) => format!("{urn}:{}", attr.name),
            None => attr.name.clone(),
        };
        let change = match new.attribute(&attr.name) {
            None => Some(format!("attribute '{path}' was removed")),
            Some(now) => changed(attr, now).map(|c| format!("attribute '{path}': {c}")),
        };
        if let Some(change) = change {
            out.push(Orphaning { kind: kind.to_string(), place, change });
        }
    }
}

/// How a stored value of `old` would no longer be one of `new`, if it would not.
fn changed(old: &AttributeDef, new: &AttributeDef) -> Option<String> {
    if old.kind != new.kind {
        return Some(format!("its type changed from {:?} to {:?}", old.kind, new.kind));
    }
    if old.multi_valued != new.multi_valued {
        return Some(format!("multiValued changed to {}", new.multi_valued));
    }
    for sub in &old.sub_attributes {
        match new.sub(&sub.name) {
            None => return Some(format!("sub-attribute '{}' was removed", sub.name)),
            Some(now) if now.kind != sub.kind || now.multi_valued != sub.multi_valued => {
                return Some(format!("sub-attribute '{}' changed its type", sub.name));
            }
            Some(_) => {}
        }
    }
    None
}

/// Why a start was refused.
#[derive(Debug, thiserror::Error)]
pub enum SchemaChangeError {
    #[error(
        "the configured schemas would orphan stored data: {}; restore the schema files, or start once with \
         force_schema_change = true (SCIMD_FORCE_SCHEMA_CHANGE=true) to accept that this data is no longer served",
        .0.join("; ")
    )]
    Orphaning(Vec<String>),
    #[error("{0}")]
    Unreadable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Compares `registry` with the state the database holds and, unless a change would
/// orphan stored data (and `force` is off), stores it as the new state.
pub async fn check(
    store: &dyn SchemaStore,
    registry: &Registry,
    force: bool,
    now: &str,
) -> Result<(), SchemaChangeError> {
    let new = document(registry);
    let old = store.stored_schema().await?;
    if old.as_deref() == Some(new.as_str()) {
        return Ok(());
    }
    if let (Some(old), false) = (&old, force) {
        let mut refused = Vec::new();
        for o in orphanings(old, registry).map_err(SchemaChangeError::Unreadable)? {
            if store.holds_data(&o.kind, &o.place).await? {
                refused.push(format!("{}: {} while stored resources hold it", o.kind, o.change));
            }
        }
        if !refused.is_empty() {
            return Err(SchemaChangeError::Orphaning(refused));
        }
    }
    store.save_schema(&new, now).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(ext: &str) -> Registry {
        let mut reg = Registry::standard();
        scimd_proto::schema_files::load(&mut reg, &[("s.json".into(), ext.into())]).unwrap();
        reg
    }

    const BASE: &str = r#"[
        {"id": "urn:x:Role", "attributes": [{"name": "displayName", "type": "string"},
            {"name": "desk", "type": "complex", "subAttributes": [{"name": "floor", "type": "integer"}]}]},
        {"id": "urn:x:ext", "attributes": [{"name": "badge", "type": "integer"}]},
        {"id": "Role", "name": "Role", "endpoint": "/Roles", "schema": "urn:x:Role"},
        {"id": "User", "name": "User", "endpoint": "/Users", "schema": "urn:ietf:params:scim:schemas:core:2.0:User",
         "schemaExtensions": [{"schema": "urn:x:ext", "required": false}]}]"#;

    fn changes(new: &str) -> Vec<(String, Place)> {
        let old = document(&registry(BASE));
        orphanings(&old, &registry(new)).unwrap().into_iter().map(|o| (o.kind, o.place)).collect()
    }

    #[test]
    fn additions_orphan_nothing() {
        assert!(changes(BASE).is_empty());
        let more = BASE.replace(
            r#"{"name": "badge", "type": "integer"}"#,
            r#"{"name": "badge", "type": "integer"}, {"name": "floor", "type": "string"}"#,
        );
        assert!(changes(&more).is_empty());
    }

    #[test]
    fn removals_and_type_changes_are_found_where_they_are() {
        let badge = BASE.replace(r#""type": "integer"}]},"#, r#""type": "string"}]},"#);
        assert_eq!(changes(&badge), vec![("User".into(), Place::Attribute(Some("urn:x:ext".into()), "badge".into()))]);
        let floor =
            BASE.replace(r#"[{"name": "floor", "type": "integer"}]"#, r#"[{"name": "room", "type": "integer"}]"#);
        assert_eq!(changes(&floor), vec![("Role".into(), Place::Attribute(None, "desk".into()))]);
        let no_role =
            BASE.replace(r#"{"id": "Role", "name": "Role", "endpoint": "/Roles", "schema": "urn:x:Role"},"#, "");
        assert_eq!(changes(&no_role), vec![("Role".into(), Place::Type)]);
        let no_ext = BASE.replace(r#"{"schema": "urn:x:ext", "required": false}"#, "");
        assert_eq!(changes(&no_ext), vec![("User".into(), Place::Extension("urn:x:ext".into()))]);
    }
}
