//! The schema registry (RFC 7643 §2, §7, §8.7): attribute definitions, schemas, resource
//! types, and case-insensitive resolution of attribute paths against them.

use crate::error::{Result, ScimError};
use crate::path::AttrPath;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE_USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
pub const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";

/// An attribute's data type (RFC 7643 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AttrType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

impl AttrType {
    /// String-like types compare as text (RFC 7644 §3.4.2.2).
    pub fn is_textual(self) -> bool {
        matches!(self, AttrType::String | AttrType::Reference | AttrType::Binary)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Mutability {
    ReadOnly,
    #[default]
    ReadWrite,
    Immutable,
    WriteOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Returned {
    Always,
    Never,
    #[default]
    Default,
    Request,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Uniqueness {
    #[default]
    None,
    Server,
    Global,
}

/// One attribute definition with all its characteristics (RFC 7643 §7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributeDef {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: AttrType,
    #[serde(default)]
    pub multi_valued: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub case_exact: bool,
    #[serde(default)]
    pub mutability: Mutability,
    #[serde(default)]
    pub returned: Returned,
    #[serde(default)]
    pub uniqueness: Uniqueness,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub canonical_values: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reference_types: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_attributes: Vec<AttributeDef>,
}

impl AttributeDef {
    /// A sub-attribute by name, case-insensitively.
    pub fn sub(&self, name: &str) -> Option<&AttributeDef> {
        self.sub_attributes.iter().find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// The attribute a filter compares when it names this attribute: a complex attribute
    /// with a `value` sub-attribute compares that (RFC 7644 §3.4.2.2, "emails co ...").
    pub fn comparison_target(&self) -> Option<&AttributeDef> {
        if self.kind == AttrType::Complex { self.sub("value") } else { Some(self) }
    }

    fn simple(name: &str, kind: AttrType) -> AttributeDef {
        AttributeDef {
            name: name.to_string(),
            kind,
            multi_valued: false,
            description: None,
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: Uniqueness::None,
            canonical_values: vec![],
            reference_types: vec![],
            sub_attributes: vec![],
        }
    }

    /// Checks a definition read from a schema document; the error names the attribute
    /// (`desk.building`) and the problem.
    fn validate_definition(&self, parent: Option<&str>) -> std::result::Result<(), DefinitionError> {
        let path = match parent {
            Some(p) => format!("{p}.{}", self.name),
            None => self.name.clone(),
        };
        let fail = |problem: String| Err(DefinitionError { attribute: Some(path.clone()), problem });
        if !crate::path::is_attr_name(&self.name) {
            return fail("not a valid attribute name (a letter, then letters, digits, '-' or '_')".into());
        }
        if self.kind == AttrType::Complex && self.sub_attributes.is_empty() {
            return fail("a complex attribute needs subAttributes".into());
        }
        if self.kind != AttrType::Complex && !self.sub_attributes.is_empty() {
            return fail(format!("only a complex attribute has subAttributes (this one is {:?})", self.kind));
        }
        if !self.canonical_values.is_empty() && !self.kind.is_textual() {
            return fail("canonicalValues are for string attributes".into());
        }
        if !self.reference_types.is_empty() && self.kind != AttrType::Reference {
            return fail("referenceTypes are for reference attributes".into());
        }
        if self.uniqueness != Uniqueness::None
            && (self.multi_valued || self.kind == AttrType::Complex || parent.is_some())
        {
            return fail("uniqueness is kept for single-valued, simple, top-level attributes only".into());
        }
        if let Some(dup) = duplicate_name(&self.sub_attributes) {
            return Err(DefinitionError {
                attribute: Some(format!("{path}.{dup}")),
                problem: "defined twice (names are case-insensitive)".into(),
            });
        }
        for sub in &self.sub_attributes {
            if sub.kind == AttrType::Complex {
                return Err(DefinitionError {
                    attribute: Some(format!("{path}.{}", sub.name)),
                    problem: "complex attributes cannot nest (RFC 7643 §2.3.8)".into(),
                });
            }
            sub.validate_definition(Some(&path))?;
        }
        Ok(())
    }
}

/// The attribute definition a schema document cannot be read for, and why.
fn locate(schema: &Value) -> Option<DefinitionError> {
    fn walk(attrs: &Value, parent: Option<&str>) -> Option<DefinitionError> {
        for (i, attr) in attrs.as_array()?.iter().enumerate() {
            let name = attr.get("name").and_then(Value::as_str).map_or_else(|| format!("#{}", i + 1), str::to_string);
            let path = parent.map_or_else(|| name.clone(), |p| format!("{p}.{name}"));
            if let Some(inner) = attr.get("subAttributes").and_then(|subs| walk(subs, Some(&path))) {
                return Some(inner);
            }
            if let Err(e) = AttributeDef::deserialize(attr) {
                return Some(DefinitionError { attribute: Some(path), problem: e.to_string() });
            }
        }
        None
    }
    walk(schema.get("attributes")?, None)
}

/// The first name given twice, regardless of case.
fn duplicate_name(attrs: &[AttributeDef]) -> Option<&str> {
    let mut seen = std::collections::HashSet::new();
    attrs.iter().map(|a| a.name.as_str()).find(|n| !seen.insert(n.to_ascii_lowercase()))
}

/// What is wrong with a schema or resource type definition, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionError {
    /// The attribute at fault (`desk.building`), when the problem is one attribute's.
    pub attribute: Option<String>,
    pub problem: String,
}

impl DefinitionError {
    fn whole(problem: impl Into<String>) -> DefinitionError {
        DefinitionError { attribute: None, problem: problem.into() }
    }
}

impl std::fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.attribute {
            Some(a) => write!(f, "attribute '{a}': {}", self.problem),
            None => f.write_str(&self.problem),
        }
    }
}

/// Endpoints the protocol itself serves: no resource type may take them.
const RESERVED_ENDPOINTS: [&str; 6] = ["ServiceProviderConfig", "ResourceTypes", "Schemas", "Bulk", "Me", ".search"];

/// Attributes every resource has (RFC 7643 §3.1): no core schema may define them again.
const COMMON_NAMES: [&str; 4] = ["id", "externalId", "meta", "schemas"];

/// A schema (RFC 7643 §7): core or extension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schema {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub attributes: Vec<AttributeDef>,
}

impl Schema {
    pub fn attribute(&self, name: &str) -> Option<&AttributeDef> {
        self.attributes.iter().find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// Parses a schema from its JSON representation (as published at `/Schemas`).
    pub fn from_json(text: &str) -> std::result::Result<Schema, DefinitionError> {
        let value: Value = serde_json::from_str(text).map_err(|e| DefinitionError::whole(e.to_string()))?;
        Schema::from_value(value)
    }

    /// A schema from its JSON representation, checked.
    pub fn from_value(value: Value) -> std::result::Result<Schema, DefinitionError> {
        let schema: Schema = match Schema::deserialize(&value) {
            Ok(schema) => schema,
            Err(e) => return Err(locate(&value).unwrap_or_else(|| DefinitionError::whole(e.to_string()))),
        };
        // A URN; its characters also name the extension's object in resources and paths.
        let urn_char = |c: char| c.is_ascii_alphanumeric() || "-._:~+=@!$&'()*,;/?%".contains(c);
        if !schema.id.to_ascii_lowercase().starts_with("urn:") || !schema.id.chars().all(urn_char) {
            return Err(DefinitionError::whole(format!("schema id '{}' must be a URN", schema.id)));
        }
        if let Some(dup) = duplicate_name(&schema.attributes) {
            return Err(DefinitionError {
                attribute: Some(dup.to_string()),
                problem: "defined twice (names are case-insensitive)".into(),
            });
        }
        for attr in &schema.attributes {
            attr.validate_definition(None)?;
        }
        Ok(schema)
    }

    /// The `/Schemas/{id}` representation.
    pub fn to_resource(&self, base_url: &str) -> Value {
        let mut v = serde_json::to_value(self).expect("schemas serialize");
        let obj = v.as_object_mut().expect("schema is an object");
        obj.insert("schemas".into(), json!([SCHEMA_SCHEMA]));
        obj.insert(
            "meta".into(),
            json!({"resourceType": "Schema", "location": format!("{base_url}/Schemas/{}", self.id)}),
        );
        v
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaExtension {
    pub schema: String,
    pub required: bool,
}

/// A resource type (RFC 7643 §6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceType {
    pub id: String,
    pub name: String,
    pub endpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub schema: String,
    #[serde(default)]
    pub schema_extensions: Vec<SchemaExtension>,
}

impl ResourceType {
    /// The `/ResourceTypes/{id}` representation.
    pub fn to_resource(&self, base_url: &str) -> Value {
        let mut v = serde_json::to_value(self).expect("resource types serialize");
        let obj = v.as_object_mut().expect("resource type is an object");
        obj.insert("schemas".into(), json!([RESOURCE_TYPE_SCHEMA]));
        obj.insert(
            "meta".into(),
            json!({"resourceType": "ResourceType", "location": format!("{base_url}/ResourceTypes/{}", self.id)}),
        );
        v
    }
}

/// All schemas and resource types a service provider knows.
#[derive(Debug, Clone)]
pub struct Registry {
    schemas: Vec<Schema>,
    resource_types: Vec<ResourceType>,
    common: Vec<AttributeDef>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::standard()
    }
}

impl Registry {
    /// RFC 7643 core User (with the EnterpriseUser extension) and Group.
    pub fn standard() -> Registry {
        let load = |text: &str| Schema::from_json(text).expect("built-in schema is valid");
        let schemas = vec![
            load(include_str!("../schemas/user.json")),
            load(include_str!("../schemas/group.json")),
            load(include_str!("../schemas/enterprise_user.json")),
        ];
        let resource_types = vec![
            ResourceType {
                id: "User".into(),
                name: "User".into(),
                endpoint: "/Users".into(),
                description: Some("User Account".into()),
                schema: USER_SCHEMA.into(),
                schema_extensions: vec![SchemaExtension { schema: ENTERPRISE_USER_SCHEMA.into(), required: false }],
            },
            ResourceType {
                id: "Group".into(),
                name: "Group".into(),
                endpoint: "/Groups".into(),
                description: Some("Group".into()),
                schema: GROUP_SCHEMA.into(),
                schema_extensions: vec![],
            },
        ];
        Registry { schemas, resource_types, common: common_attributes() }
    }

    /// Adds a schema (a custom resource type's or an extension) from its JSON representation.
    pub fn add_schema_json(&mut self, text: &str) -> std::result::Result<&Schema, DefinitionError> {
        self.add_schema(Schema::from_json(text)?)
    }

    /// Adds a checked schema; its id must be new.
    pub fn add_schema(&mut self, schema: Schema) -> std::result::Result<&Schema, DefinitionError> {
        if self.schema(&schema.id).is_some() {
            return Err(DefinitionError::whole(format!("schema '{}' is already defined", schema.id)));
        }
        self.schemas.push(schema);
        Ok(self.schemas.last().expect("just pushed"))
    }

    /// Adds a resource type from its JSON representation (as published at `/ResourceTypes`).
    pub fn add_resource_type_json(&mut self, text: &str) -> std::result::Result<(), DefinitionError> {
        let rt: ResourceType = serde_json::from_str(text).map_err(|e| DefinitionError::whole(e.to_string()))?;
        self.add_resource_type(rt)
    }

    /// Adds a resource type, whose schemas must be known. Naming a built-in type (`User`,
    /// `Group`) with its own endpoint and schema adds its `schemaExtensions` to it instead.
    pub fn add_resource_type(&mut self, rt: ResourceType) -> std::result::Result<(), DefinitionError> {
        let fail = |problem: String| Err(DefinitionError::whole(format!("resource type '{}': {problem}", rt.name)));
        let endpoint = rt.endpoint.strip_prefix('/').unwrap_or("");
        if let Some(existing) = self.resource_type(&rt.name).or_else(|| self.resource_type(&rt.id)) {
            if !existing.endpoint.eq_ignore_ascii_case(&rt.endpoint)
                || !existing.schema.eq_ignore_ascii_case(&rt.schema)
            {
                return fail(format!(
                    "is already defined with endpoint '{}' and schema '{}'; a definition may only add schemaExtensions to it",
                    existing.endpoint, existing.schema
                ));
            }
            // Extensions it already has (a copy of its `/ResourceTypes` document) stay as they are.
            let name = existing.name.clone();
            let new: Vec<SchemaExtension> = rt
                .schema_extensions
                .iter()
                .filter(|e| !existing.schema_extensions.iter().any(|x| x.schema.eq_ignore_ascii_case(&e.schema)))
                .cloned()
                .collect();
            for ext in new {
                self.add_extension(&name, &ext.schema, ext.required)?;
            }
            return Ok(());
        }
        let simple_name = |s: &str| {
            let mut c = s.chars();
            c.next().is_some_and(|c| c.is_ascii_alphabetic())
                && c.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if !simple_name(&rt.name) || !simple_name(&rt.id) {
            return fail("id and name must be a letter followed by letters, digits, '-' or '_'".into());
        }
        if !simple_name(endpoint) {
            return fail(format!("endpoint '{}' must be '/' and a name such as '/Roles'", rt.endpoint));
        }
        if RESERVED_ENDPOINTS.iter().any(|r| r.eq_ignore_ascii_case(endpoint)) {
            return fail(format!("endpoint '{}' is served by the protocol itself", rt.endpoint));
        }
        if let Some(other) = self.resource_types.iter().find(|o| o.endpoint.eq_ignore_ascii_case(&rt.endpoint)) {
            return fail(format!("endpoint '{}' is already resource type '{}'", rt.endpoint, other.name));
        }
        let Some(core) = self.schema(&rt.schema) else {
            return fail(format!("schema '{}' is not defined (list its file in `schemas`)", rt.schema));
        };
        if let Some(a) = core.attributes.iter().find(|a| COMMON_NAMES.iter().any(|c| c.eq_ignore_ascii_case(&a.name))) {
            return Err(DefinitionError {
                attribute: Some(a.name.clone()),
                problem: format!(
                    "schema '{}' defines an attribute every resource already has (RFC 7643 §3.1)",
                    core.id
                ),
            });
        }
        let extensions = rt.schema_extensions.clone();
        let name = rt.name.clone();
        self.resource_types.push(ResourceType { schema: core.id.clone(), schema_extensions: vec![], ..rt });
        for ext in extensions {
            if let Err(e) = self.add_extension(&name, &ext.schema, ext.required) {
                self.resource_types.pop();
                return Err(e);
            }
        }
        Ok(())
    }

    /// Declares `schema` an extension of the resource type named `resource_type`.
    pub fn add_extension(
        &mut self,
        resource_type: &str,
        schema: &str,
        required: bool,
    ) -> std::result::Result<(), DefinitionError> {
        let fail = |problem: String| Err(DefinitionError::whole(format!("resource type '{resource_type}': {problem}")));
        let Some(id) = self.schema(schema).map(|s| s.id.clone()) else {
            return fail(format!("extension schema '{schema}' is not defined (list its file in `schemas`)"));
        };
        let Some(at) = self.resource_types.iter().position(|rt| rt.name.eq_ignore_ascii_case(resource_type)) else {
            return fail("no such resource type".into());
        };
        let rt = &mut self.resource_types[at];
        if rt.schema.eq_ignore_ascii_case(&id) {
            return fail(format!("'{id}' is its core schema and cannot also extend it"));
        }
        if rt.schema_extensions.iter().any(|e| e.schema == id) {
            return fail(format!("extension '{id}' is listed twice"));
        }
        rt.schema_extensions.push(SchemaExtension { schema: id, required });
        Ok(())
    }

    pub fn schemas(&self) -> &[Schema] {
        &self.schemas
    }

    pub fn resource_types(&self) -> &[ResourceType] {
        &self.resource_types
    }

    pub fn schema(&self, id: &str) -> Option<&Schema> {
        self.schemas.iter().find(|s| s.id.eq_ignore_ascii_case(id))
    }

    pub fn resource_type(&self, name: &str) -> Option<&ResourceType> {
        self.resource_types.iter().find(|rt| rt.name.eq_ignore_ascii_case(name) || rt.id.eq_ignore_ascii_case(name))
    }

    /// The combined view of one resource type: common attributes, core schema, extensions.
    pub fn resource(&self, name: &str) -> Option<ResourceSchema<'_>> {
        let rt = self.resource_type(name)?;
        let core = self.schema(&rt.schema)?;
        let extensions =
            rt.schema_extensions.iter().filter_map(|e| self.schema(&e.schema).map(|s| (s, e.required))).collect();
        Some(ResourceSchema { rt, core, extensions, common: &self.common })
    }
}

/// RFC 7643 §3.1: `id`, `externalId` and `meta`, shared by every resource type.
fn common_attributes() -> Vec<AttributeDef> {
    use AttrType::*;
    let read_only = |mut a: AttributeDef| {
        a.mutability = Mutability::ReadOnly;
        a
    };
    let mut id = read_only(AttributeDef::simple("id", String));
    id.case_exact = true;
    id.returned = Returned::Always;
    id.uniqueness = Uniqueness::Server;
    let mut external_id = AttributeDef::simple("externalId", String);
    external_id.case_exact = true;
    let mut resource_type = read_only(AttributeDef::simple("resourceType", String));
    resource_type.case_exact = true;
    let mut version = read_only(AttributeDef::simple("version", String));
    version.case_exact = true;
    let mut location = read_only(AttributeDef::simple("location", Reference));
    location.case_exact = true;
    location.reference_types = vec!["uri".into()];
    let mut meta = read_only(AttributeDef::simple("meta", Complex));
    meta.sub_attributes = vec![
        resource_type,
        read_only(AttributeDef::simple("created", DateTime)),
        read_only(AttributeDef::simple("lastModified", DateTime)),
        location,
        version,
    ];
    // `schemas` is not an attribute of any schema, yet filters may name it (RFC 7644
    // §3.4.2.2 has `schemas eq "urn:…"`); the server always computes it.
    let mut schemas = read_only(AttributeDef::simple("schemas", Reference));
    schemas.multi_valued = true;
    schemas.returned = Returned::Always;
    schemas.reference_types = vec!["uri".into()];
    vec![schemas, id, external_id, meta]
}

/// Where a top-level attribute lives in a resource's JSON.
#[derive(Debug, Clone, Copy)]
pub enum Container<'a> {
    /// At the top level (core schema and common attributes).
    Core,
    /// Inside the object keyed by this extension schema URN.
    Extension(&'a Schema),
}

impl PartialEq for Container<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.urn() == other.urn()
    }
}

impl Eq for Container<'_> {}

impl<'a> Container<'a> {
    pub fn urn(&self) -> Option<&'a str> {
        match self {
            Container::Core => None,
            Container::Extension(s) => Some(&s.id),
        }
    }
}

/// An attribute path resolved against a resource type.
#[derive(Debug, Clone, Copy)]
pub struct Resolved<'a> {
    pub container: Container<'a>,
    pub attr: &'a AttributeDef,
    pub sub: Option<&'a AttributeDef>,
}

impl<'a> Resolved<'a> {
    /// The attribute the path ends at.
    pub fn leaf(&self) -> &'a AttributeDef {
        self.sub.unwrap_or(self.attr)
    }
    /// Whether the leaf is one of the common attributes or inside `meta`.
    pub fn is_common(&self, schema: &ResourceSchema<'_>) -> bool {
        self.container == Container::Core && schema.common.iter().any(|c| std::ptr::eq(c, self.attr))
    }
    /// The canonical path text, e.g. `name.givenName` or `urn:…:User:manager.value`.
    pub fn canonical(&self) -> String {
        let mut s = String::new();
        if let Some(urn) = self.container.urn() {
            s.push_str(urn);
            s.push(':');
        }
        s.push_str(&self.attr.name);
        if let Some(sub) = self.sub {
            s.push('.');
            s.push_str(&sub.name);
        }
        s
    }
}

/// What a path names: an attribute, or a whole extension object.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    Attribute(Resolved<'a>),
    Extension(&'a Schema),
}

/// One resource type with its schemas, ready for path resolution.
#[derive(Debug, Clone)]
pub struct ResourceSchema<'a> {
    pub rt: &'a ResourceType,
    pub core: &'a Schema,
    pub extensions: Vec<(&'a Schema, bool)>,
    common: &'a [AttributeDef],
}

impl<'a> ResourceSchema<'a> {
    pub fn name(&self) -> &'a str {
        &self.rt.name
    }

    /// An extension schema of this resource type, by URN (case-insensitive).
    pub fn extension(&self, urn: &str) -> Option<&'a Schema> {
        self.extensions.iter().find(|(s, _)| s.id.eq_ignore_ascii_case(urn)).map(|(s, _)| *s)
    }

    /// All schema URNs of this resource type, core first.
    pub fn schema_urns(&self) -> impl Iterator<Item = &'a str> + '_ {
        std::iter::once(self.core.id.as_str()).chain(self.extensions.iter().map(|(s, _)| s.id.as_str()))
    }

    pub fn common_attributes(&self) -> &'a [AttributeDef] {
        self.common
    }

    /// Top-level attributes in the core container (common first, then core schema).
    pub fn core_attributes(&self) -> impl Iterator<Item = &'a AttributeDef> + '_ {
        self.common.iter().chain(self.core.attributes.iter())
    }

    /// Finds a top-level attribute by unqualified name: common, then core, then a unique
    /// match among the extensions (so that `manager` finds the enterprise extension's).
    pub fn find_unqualified(&self, name: &str) -> Option<(Container<'a>, &'a AttributeDef)> {
        if let Some(a) = self.common.iter().find(|a| a.name.eq_ignore_ascii_case(name)) {
            return Some((Container::Core, a));
        }
        if let Some(a) = self.core.attribute(name) {
            return Some((Container::Core, a));
        }
        let mut found =
            self.extensions.iter().filter_map(|(s, _)| s.attribute(name).map(|a| (Container::Extension(s), a)));
        let first = found.next()?;
        if found.next().is_some() { None } else { Some(first) }
    }

    /// Resolves a path, case-insensitively, to an attribute or an extension object.
    pub fn resolve(&self, path: &AttrPath) -> Result<Target<'a>> {
        let unknown =
            || ScimError::invalid_path(format!("unknown attribute '{path}' for resource type {}", self.name()));
        let (container, attr) = match &path.uri {
            None => self.find_unqualified(&path.name).ok_or_else(unknown)?,
            Some(uri) => {
                if path.sub.is_none() {
                    // `urn:…:enterprise:2.0:User` parses as uri `urn:…:2.0` + name `User`.
                    let whole = format!("{uri}:{}", path.name);
                    if let Some(ext) = self.extension(&whole) {
                        return Ok(Target::Extension(ext));
                    }
                }
                if uri.eq_ignore_ascii_case(&self.core.id) {
                    (Container::Core, self.core.attribute(&path.name).ok_or_else(unknown)?)
                } else {
                    let ext = self.extension(uri).ok_or_else(unknown)?;
                    (Container::Extension(ext), ext.attribute(&path.name).ok_or_else(unknown)?)
                }
            }
        };
        let sub = match &path.sub {
            None => None,
            Some(s) => Some(attr.sub(s).ok_or_else(unknown)?),
        };
        Ok(Target::Attribute(Resolved { container, attr, sub }))
    }

    /// Resolves a path that must name an attribute (not a whole extension).
    pub fn resolve_attribute(&self, path: &AttrPath) -> Result<Resolved<'a>> {
        match self.resolve(path)? {
            Target::Attribute(r) => Ok(r),
            Target::Extension(s) => {
                Err(ScimError::invalid_path(format!("'{}' names a schema, not an attribute", s.id)))
            }
        }
    }

    /// Reads the JSON value at a resolved attribute (sub-attributes of a single-valued
    /// complex attribute only; multi-valued ones are the caller's to iterate).
    pub fn container_of<'v>(
        &self,
        resource: &'v Map<String, Value>,
        container: Container<'_>,
    ) -> Option<&'v Map<String, Value>> {
        match container {
            Container::Core => Some(resource),
            Container::Extension(s) => resource.get(&s.id).and_then(Value::as_object),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::validate_resource;
    use serde_json::json;

    const CUSTOM: &str = r#"{
        "id": "urn:example:params:scim:schemas:extension:acme:1.0:User",
        "name": "AcmeUser",
        "attributes": [
            {"name": "badgeNumber", "type": "integer", "required": true},
            {"name": "clearance", "type": "string", "caseExact": true, "canonicalValues": ["low", "high"]},
            {"name": "desk", "type": "complex", "subAttributes": [{"name": "building", "type": "string"}]}
        ]
    }"#;

    #[test]
    fn custom_extensions_load_from_json_and_take_part_everywhere() {
        let mut reg = Registry::standard();
        reg.add_schema_json(CUSTOM).unwrap();
        reg.add_extension("User", "urn:example:params:scim:schemas:extension:acme:1.0:User", false).unwrap();
        let user = reg.resource("User").unwrap();
        let r = user
            .resolve_attribute(
                &AttrPath::parse("urn:example:params:scim:schemas:extension:acme:1.0:User:desk.building").unwrap(),
            )
            .unwrap();
        assert_eq!(r.canonical(), "urn:example:params:scim:schemas:extension:acme:1.0:User:desk.building");
        // Unqualified names find a unique extension attribute.
        assert!(user.resolve_attribute(&AttrPath::simple("BADGENUMBER")).is_ok());
        let ok = validate_resource(
            &json!({"userName": "a", "urn:example:params:scim:schemas:extension:acme:1.0:User": {"badgeNumber": 42}}),
            &user,
        )
        .unwrap();
        assert_eq!(ok["urn:example:params:scim:schemas:extension:acme:1.0:User"]["badgeNumber"], json!(42));
        let e = validate_resource(
            &json!({"userName": "a", "urn:example:params:scim:schemas:extension:acme:1.0:User": {"clearance": "low"}}),
            &user,
        )
        .unwrap_err();
        assert!(
            e.detail.contains("badgeNumber"),
            "a present extension must carry its required attributes: {}",
            e.detail
        );
        // Published as a schema and on the resource type.
        let doc = reg
            .schema("urn:example:params:scim:schemas:extension:acme:1.0:User")
            .unwrap()
            .to_resource("https://x/scim/v2");
        assert_eq!(doc["attributes"][0]["required"], true);
        assert_eq!(doc["attributes"][0]["mutability"], "readWrite", "defaults are filled in");
        let rt = reg.resource_type("User").unwrap().to_resource("https://x/scim/v2");
        assert_eq!(rt["schemaExtensions"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn invalid_schema_definitions_are_refused() {
        for bad in [
            r#"{"id": "not-a-urn", "attributes": []}"#,
            r#"{"id": "urn:x", "attributes": [{"name": "1bad", "type": "string"}]}"#,
            r#"{"id": "urn:x", "attributes": [{"name": "c", "type": "complex"}]}"#,
            r#"{"id": "urn:x", "attributes": [{"name": "c", "type": "complex", "subAttributes": [{"name": "d", "type": "complex", "subAttributes": [{"name": "e", "type": "string"}]}]}]}"#,
            r#"{"id": "urn:x", "attributes": [{"name": "s", "type": "text"}]}"#,
        ] {
            assert!(Schema::from_json(bad).is_err(), "{bad}");
        }
        let mut reg = Registry::standard();
        assert!(reg.add_schema_json(include_str!("../schemas/user.json")).is_err(), "duplicate ids are refused");
        assert!(reg.add_extension("Nope", USER_SCHEMA, false).is_err());
    }

    #[test]
    fn every_core_attribute_has_its_rfc_characteristics() {
        let reg = Registry::standard();
        let user = reg.schema(USER_SCHEMA).unwrap();
        // RFC 7643 §8.7.1 spot checks.
        let a = |n: &str| user.attribute(n).unwrap();
        assert!(a("userName").required && a("userName").uniqueness == Uniqueness::Server && !a("userName").case_exact);
        assert_eq!((a("password").mutability, a("password").returned), (Mutability::WriteOnly, Returned::Never));
        assert_eq!(a("groups").mutability, Mutability::ReadOnly);
        assert_eq!(a("x509Certificates").sub("value").unwrap().kind, AttrType::Binary);
        assert_eq!(a("photos").sub("value").unwrap().reference_types, vec!["external"]);
        assert_eq!(a("emails").sub("type").unwrap().canonical_values, vec!["work", "home", "other"]);
        let group = reg.schema(GROUP_SCHEMA).unwrap();
        assert_eq!(group.attribute("members").unwrap().sub("$ref").unwrap().reference_types, vec!["User", "Group"]);
        let ent = reg.schema(ENTERPRISE_USER_SCHEMA).unwrap();
        assert_eq!(ent.attribute("manager").unwrap().sub("displayName").unwrap().mutability, Mutability::ReadOnly);
        // RFC 7643 §8.7.2: a manager id compares without regard to case.
        assert!(!ent.attribute("manager").unwrap().sub("value").unwrap().case_exact);
    }
}
