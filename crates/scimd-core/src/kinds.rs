//! Resource types as the engine, the stores and the HTTP layer see them: descriptors built
//! from the schema registry's resource types. Users and Groups are two descriptors like
//! any other; custom types (configured schemas) are more.

use scimd_proto::schema::{AttrType, Registry, Uniqueness};
use std::sync::Mutex;

/// What the engine, the stores and the HTTP layer know of a resource type beyond its schema
/// (which the registry holds under `name`).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ResourceKind {
    /// `meta.resourceType`, the `/ResourceTypes` id and the registry's name: `User`.
    pub name: &'static str,
    /// Served at `/{endpoint}`: `Users`.
    pub endpoint: &'static str,
    /// The attribute that names a resource (`userName`, `displayName`). For Users and
    /// Groups it is unique per tenant regardless of case, its case kept.
    pub name_attribute: &'static str,
    /// The multi-valued attribute a store keeps as rows rather than in the document.
    pub relation: Option<Relation>,
    /// Resources have `active`: the `deactivate` delete policy sets it to false.
    pub has_active: bool,
    /// Attributes besides the name whose values are unique per tenant (the schema says
    /// `uniqueness: server` or `global`).
    pub unique: &'static [UniqueAttribute],
}

/// How a resource type's related values are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Relation {
    /// Written through the type itself, values of several types (a group's `members`).
    Members(&'static str),
    /// Read only, derived from the other side (a user's `groups`).
    MemberOf(&'static str),
}

impl Relation {
    pub fn attribute(self) -> &'static str {
        match self {
            Relation::Members(a) | Relation::MemberOf(a) => a,
        }
    }
}

/// A single-valued simple attribute whose values are unique per tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UniqueAttribute {
    /// The extension schema that holds it; None in the core schema.
    pub urn: Option<&'static str>,
    pub name: &'static str,
    /// Compared exactly; otherwise without regard to case.
    pub case_exact: bool,
}

impl UniqueAttribute {
    /// The canonical path, as errors name it.
    pub fn path(&self) -> String {
        match self.urn {
            Some(urn) => format!("{urn}:{}", self.name),
            None => self.name.to_string(),
        }
    }
}

const USER: ResourceKind = ResourceKind {
    name: "User",
    endpoint: "Users",
    name_attribute: "userName",
    relation: Some(Relation::MemberOf("groups")),
    has_active: true,
    unique: &[],
};

const GROUP: ResourceKind = ResourceKind {
    name: "Group",
    endpoint: "Groups",
    name_attribute: "displayName",
    relation: Some(Relation::Members("members")),
    has_active: false,
    unique: &[],
};

/// A resource type: a copyable handle to its `ResourceKind`. Code that must tell types
/// apart asks the descriptor what it has (`relation`, `has_active`), not which one it is.
/// Two handles are the same type when their names are the same (a registry names each
/// type once).
#[derive(Debug, Clone, Copy)]
pub struct Kind(&'static ResourceKind);

impl PartialEq for Kind {
    fn eq(&self, other: &Self) -> bool {
        self.0.name == other.0.name
    }
}

impl Eq for Kind {}

impl std::hash::Hash for Kind {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.name.hash(state)
    }
}

#[allow(non_upper_case_globals)]
impl Kind {
    pub const User: Kind = Kind(&USER);
    pub const Group: Kind = Kind(&GROUP);
    /// The two built-in types, in the order `POST /.search` lists them.
    pub const BUILT_IN: [Kind; 2] = [Kind::User, Kind::Group];

    /// A built-in type by name (what a member's `type` names).
    pub fn built_in(name: &str) -> Option<Kind> {
        Kind::BUILT_IN.into_iter().find(|k| k.name().eq_ignore_ascii_case(name))
    }
    pub fn descriptor(self) -> &'static ResourceKind {
        self.0
    }
    pub fn name(self) -> &'static str {
        self.0.name
    }
    pub fn endpoint(self) -> &'static str {
        self.0.endpoint
    }
    /// The attribute that a store keeps as rows (a group's `members`, a user's `groups`),
    /// if the type has one.
    pub fn relation(self) -> Option<&'static str> {
        self.0.relation.map(Relation::attribute)
    }
    /// Takes the relation attribute out of a document (what stores keep as rows).
    pub fn take_relation(
        self,
        attributes: &mut serde_json::Map<String, serde_json::Value>,
    ) -> Option<serde_json::Value> {
        attributes.remove(self.relation()?)
    }
    /// Whether the type's relation is written through it (a group's `members`).
    pub fn has_members(self) -> bool {
        matches!(self.0.relation, Some(Relation::Members(_)))
    }
    pub fn name_attribute(self) -> &'static str {
        self.0.name_attribute
    }
    pub fn has_active(self) -> bool {
        self.0.has_active
    }
    pub fn unique(self) -> &'static [UniqueAttribute] {
        self.0.unique
    }
    /// Whether this is one of the built-in types (Users, Groups).
    pub fn is_built_in(self) -> bool {
        Kind::BUILT_IN.contains(&self)
    }
}

/// Descriptors made from registries, kept for the life of the process so that `Kind`
/// stays a copyable `'static` handle: one per distinct description, however many engines
/// are built.
static INTERNED: Mutex<Vec<&'static ResourceKind>> = Mutex::new(Vec::new());

fn intern(kind: ResourceKind) -> Kind {
    let mut all = INTERNED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(found) = all.iter().find(|k| ***k == kind) {
        return Kind(found);
    }
    let leaked: &'static ResourceKind = Box::leak(Box::new(kind));
    all.push(leaked);
    Kind(leaked)
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

/// The resource types a registry describes, built-in ones first, each as a `Kind`.
pub fn kinds_of(registry: &Registry) -> Vec<Kind> {
    let mut out = Vec::new();
    for rt in registry.resource_types() {
        let Some(schema) = registry.resource(&rt.name) else { continue };
        let mut unique = Vec::new();
        for (urn, attrs) in std::iter::once((None, &schema.core.attributes))
            .chain(schema.extensions.iter().map(|(s, _)| (Some(s.id.as_str()), &s.attributes)))
        {
            for a in attrs {
                let simple = !a.multi_valued && a.kind != AttrType::Complex;
                if a.uniqueness != Uniqueness::None && simple {
                    unique.push((urn, a.name.as_str(), a.case_exact));
                }
            }
        }
        let built_in = Kind::built_in(&rt.name).filter(|k| k.name() == rt.name);
        // The name attribute of the built-in types is kept unique by the stores themselves.
        unique.retain(|(urn, name, _)| !(urn.is_none() && built_in.is_some_and(|k| k.name_attribute() == *name)));
        let unique: Vec<UniqueAttribute> = unique
            .into_iter()
            .map(|(urn, name, case_exact)| UniqueAttribute { urn: urn.map(leak), name: leak(name), case_exact })
            .collect();
        let kind = match built_in {
            Some(k) if unique.is_empty() => k,
            Some(k) => intern(ResourceKind { unique: Box::leak(unique.into_boxed_slice()), ..*k.descriptor() }),
            None => {
                let name_attribute = schema
                    .core
                    .attributes
                    .iter()
                    .find(|a| a.name == "displayName" && a.kind == AttrType::String && !a.multi_valued)
                    .or_else(|| {
                        schema
                            .core
                            .attributes
                            .iter()
                            .find(|a| a.required && a.kind == AttrType::String && !a.multi_valued)
                    })
                    .map_or("id", |a| leak(&a.name));
                intern(ResourceKind {
                    name: leak(&rt.name),
                    endpoint: leak(rt.endpoint.trim_start_matches('/')),
                    name_attribute,
                    relation: None,
                    has_active: false,
                    unique: Box::leak(unique.into_boxed_slice()),
                })
            }
        };
        out.push(kind);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_registry_gives_the_built_in_types() {
        let kinds = kinds_of(&Registry::standard());
        assert_eq!(kinds, vec![Kind::User, Kind::Group]);
        assert_eq!(kinds[0].relation(), Some("groups"));
        assert!(kinds[1].has_members());
    }

    #[test]
    fn custom_types_and_unique_extension_attributes_become_descriptors() {
        let mut reg = Registry::standard();
        reg.add_schema_json(
            r#"{"id": "urn:example:Role", "name": "Role", "attributes": [
                {"name": "displayName", "type": "string", "required": true, "uniqueness": "server"},
                {"name": "code", "type": "string", "caseExact": true, "uniqueness": "global"}]}"#,
        )
        .unwrap();
        reg.add_schema_json(
            r#"{"id": "urn:example:ext:User", "attributes": [{"name": "badge", "type": "integer", "uniqueness": "server"}]}"#,
        )
        .unwrap();
        reg.add_extension("User", "urn:example:ext:User", false).unwrap();
        reg.add_resource_type_json(
            r#"{"id": "Role", "name": "Role", "endpoint": "/Roles", "schema": "urn:example:Role"}"#,
        )
        .unwrap();
        let kinds = kinds_of(&reg);
        assert_eq!(kinds.len(), 3);
        let user = kinds[0];
        assert_eq!(user, Kind::User, "a User with more unique attributes is still the User type");
        assert_eq!(user.unique()[0].path(), "urn:example:ext:User:badge");
        let role = kinds[2];
        assert_eq!((role.name(), role.endpoint(), role.name_attribute()), ("Role", "Roles", "displayName"));
        assert_eq!(role.relation(), None);
        let unique: Vec<_> = role.unique().iter().map(|u| (u.name, u.case_exact)).collect();
        assert_eq!(unique, vec![("displayName", false), ("code", true)]);
        // Interned: the same description is the same descriptor.
        assert!(std::ptr::eq(kinds_of(&reg)[2].descriptor(), role.descriptor()));
    }
}
