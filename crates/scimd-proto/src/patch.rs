//! PATCH (RFC 7644 §3.5.2): parsing a PatchOp request and applying it, all or nothing, to
//! a resource in its JSON representation. Accepts the identity-provider dialects: `op` in
//! any case, path-less values with dotted or URN-qualified keys, `"True"`/`"False"`,
//! removal of members by a value array, re-adding an existing member, `manager` as a
//! bare id.

use crate::error::{Result, ScimError};
use crate::filter::{self, Filter, FilterLimits, Literal, PatchPath, parse_patch_path};
use crate::path::AttrPath;
use crate::schema::{AttrType, AttributeDef, Container, Mutability, ResourceSchema, Target};
use crate::validate::{check_required, check_single_primary, coerce, coerce_changes, coerce_one};
use crate::value::same_value;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The PatchOp message as it arrives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatchRequest {
    #[serde(default)]
    pub schemas: Vec<String>,
    #[serde(rename = "Operations", alias = "operations")]
    pub operations: Vec<RawOperation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawOperation {
    pub op: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `Some(Value::Null)` for `"value": null` (unassign, RFC 7643 §2.5); None when absent.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// Tells a `null` value from an absent one, which serde's `Option` would not.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Add,
    Replace,
    Remove,
}

/// One parsed operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub kind: OpKind,
    pub path: Option<PatchPath>,
    pub value: Option<Value>,
}

/// Parses a PatchOp body: the message schema, each `op` (any case), each `path`.
pub fn parse_request(body: &Value, limits: FilterLimits) -> Result<Vec<Operation>> {
    let req: PatchRequest = serde_json::from_value(body.clone())
        .map_err(|e| ScimError::invalid_syntax(format!("not a PatchOp message: {e}")))?;
    if !req.schemas.is_empty() && !req.schemas.iter().any(|s| s.eq_ignore_ascii_case(crate::PATCH_OP_URN)) {
        return Err(ScimError::invalid_syntax(format!("'schemas' must be [\"{}\"]", crate::PATCH_OP_URN)));
    }
    if req.operations.is_empty() {
        return Err(ScimError::invalid_syntax("'Operations' is empty"));
    }
    req.operations
        .into_iter()
        .enumerate()
        .map(|(i, raw)| parse_operation(raw, limits).map_err(|e| at_operation(e, i)))
        .collect()
}

fn at_operation(mut e: ScimError, index: usize) -> ScimError {
    e.detail = format!("Operations[{index}]: {}", e.detail);
    e
}

fn parse_operation(raw: RawOperation, limits: FilterLimits) -> Result<Operation> {
    let kind = match raw.op.to_ascii_lowercase().as_str() {
        "add" => OpKind::Add,
        "replace" => OpKind::Replace,
        "remove" => OpKind::Remove,
        other => {
            return Err(ScimError::invalid_syntax(format!("unknown op '{other}'; expected add, replace or remove")));
        }
    };
    let path = match raw.path.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(p) => Some(parse_patch_path(p, limits)?),
    };
    match (kind, &path, &raw.value) {
        (OpKind::Remove, None, _) => Err(ScimError::no_target("'remove' needs a path")),
        (OpKind::Add | OpKind::Replace, _, None) => Err(ScimError::invalid_syntax("'add' and 'replace' need a value")),
        (OpKind::Add | OpKind::Replace, None, Some(v)) if !v.is_object() => {
            Err(ScimError::invalid_syntax("without a path, the value must be an object of attributes"))
        }
        _ => Ok(Operation { kind, path, value: raw.value }),
    }
}

/// A change to a multi-valued attribute that a store keeps as rows (a Group's members):
/// split out of the PATCH so that it costs the same whatever the attribute's size.
#[derive(Debug, Clone, PartialEq)]
pub enum RelationChange {
    /// Add these (coerced) values; values already present are left alone.
    Add(Vec<Value>),
    /// Remove the values whose `value` is one of these.
    Remove(Vec<String>),
    /// Remove the values matching this value filter.
    RemoveWhere(Filter),
    RemoveAll,
    /// Replace the whole set.
    Replace(Vec<Value>),
}

impl RelationChange {
    /// The `value` strings of a batch of coerced values.
    pub fn values_of(values: &[Value]) -> Vec<&str> {
        values.iter().filter_map(|v| v.get("value").and_then(Value::as_str)).collect()
    }
}

/// Splits operations on the top-level core attribute `name` (e.g. `members`) out of a
/// PATCH, in order, leaving the rest to `apply`.
pub fn split_relation(
    ops: Vec<Operation>,
    schema: &ResourceSchema<'_>,
    name: &str,
) -> Result<(Vec<Operation>, Vec<RelationChange>)> {
    let def =
        schema.core.attribute(name).ok_or_else(|| ScimError::invalid_path(format!("unknown attribute '{name}'")))?;
    let mut rest = Vec::new();
    let mut changes = Vec::new();
    for op in ops {
        match &op.path {
            Some(path) => {
                let targets_it =
                    matches!(schema.resolve(&path.attr), Ok(Target::Attribute(r)) if std::ptr::eq(r.attr, def));
                if !targets_it {
                    rest.push(op);
                    continue;
                }
                if path.attr.sub.is_some() || path.sub.is_some() || (path.filter.is_some() && op.kind != OpKind::Remove)
                {
                    return Err(ScimError::mutability(format!(
                        "the values of '{name}' cannot be changed in place; add or remove them"
                    )));
                }
                changes.push(relation_change(def, op.kind, path.filter.clone(), op.value.as_ref())?);
            }
            None => {
                let mut value = op.value.clone().unwrap_or(Value::Null);
                let obj = value.as_object_mut().expect("checked at parse");
                let key = obj.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned();
                if let Some(key) = key {
                    let v = obj.remove(&key).expect("key exists");
                    changes.push(relation_change(def, op.kind, None, Some(&v))?);
                }
                if !obj.is_empty() {
                    rest.push(Operation { kind: op.kind, path: None, value: Some(value) });
                }
            }
        }
    }
    Ok((rest, changes))
}

fn relation_change(
    def: &AttributeDef,
    kind: OpKind,
    filter: Option<Filter>,
    value: Option<&Value>,
) -> Result<RelationChange> {
    let coerced = |v: &Value| -> Result<Vec<Value>> {
        Ok(match coerce(def, v, &def.name)? {
            Some(Value::Array(a)) => a,
            _ => vec![],
        })
    };
    Ok(match (kind, filter, value) {
        (OpKind::Remove, Some(f), _) => {
            filter::check_element(&f, def)?;
            RelationChange::RemoveWhere(f)
        }
        (OpKind::Remove, None, None) | (OpKind::Remove, None, Some(Value::Null)) => RelationChange::RemoveAll,
        (OpKind::Remove, None, Some(v)) => {
            let values = coerced(v)?;
            RelationChange::Remove(RelationChange::values_of(&values).into_iter().map(str::to_string).collect())
        }
        (OpKind::Add, _, Some(v)) => RelationChange::Add(coerced(v)?),
        (OpKind::Replace, _, Some(v)) => RelationChange::Replace(coerced(v)?),
        (_, _, None) => {
            return Err(ScimError::invalid_syntax("'add' and 'replace' need a value"));
        }
    })
}

/// Applies operations to a resource's attributes (canonical JSON, without `id`/`meta`).
/// Returns the new attributes, or an error with nothing applied.
pub fn apply(
    resource: &Map<String, Value>,
    schema: &ResourceSchema<'_>,
    ops: &[Operation],
) -> Result<Map<String, Value>> {
    let mut doc = resource.clone();
    for (i, op) in ops.iter().enumerate() {
        apply_operation(&mut doc, schema, op).map_err(|e| at_operation(e, i))?;
    }
    for (ext, _) in &schema.extensions {
        if doc.get(&ext.id).and_then(Value::as_object).is_some_and(Map::is_empty) {
            doc.remove(&ext.id);
        }
    }
    check_required(&doc, schema)?;
    Ok(doc)
}

/// A resolved PATCH target.
struct Slot<'a> {
    container: Container<'a>,
    attr: &'a AttributeDef,
    sub: Option<&'a AttributeDef>,
    filter: Option<&'a Filter>,
    /// Path-less operations silently skip read-only attributes (Okta sends a Group's `id`).
    implicit: bool,
}

fn apply_operation(doc: &mut Map<String, Value>, schema: &ResourceSchema<'_>, op: &Operation) -> Result<()> {
    let Some(path) = &op.path else {
        let value = op.value.as_ref().and_then(Value::as_object).expect("checked at parse");
        return apply_pathless(doc, schema, op.kind, value);
    };
    match schema.resolve(&path.attr)? {
        Target::Extension(ext) => match (op.kind, op.value.as_ref()) {
            (OpKind::Remove, _) | (OpKind::Replace, Some(Value::Null)) => {
                doc.remove(&ext.id);
                Ok(())
            }
            (OpKind::Add, Some(Value::Null)) => Ok(()),
            (kind, _) => {
                let value = op.value.as_ref().and_then(Value::as_object).ok_or_else(|| {
                    ScimError::invalid_value(format!("the value for '{}' must be an object of its attributes", ext.id))
                })?;
                for (k, v) in value.iter().filter(|(k, _)| !k.eq_ignore_ascii_case("schemas")) {
                    let attr = ext.attribute(k).ok_or_else(|| {
                        ScimError::invalid_value(format!("unknown attribute '{k}' in schema {}", ext.id))
                    })?;
                    let slot =
                        Slot { container: Container::Extension(ext), attr, sub: None, filter: None, implicit: true };
                    apply_slot(doc, &slot, kind, Some(v))?;
                }
                Ok(())
            }
        },
        Target::Attribute(r) => {
            let sub =
                match (&path.sub, r.sub) {
                    (Some(_), Some(_)) => {
                        return Err(ScimError::invalid_path(format!("'{}' has too many sub-attributes", path.attr)));
                    }
                    (Some(s), None) => Some(r.attr.sub(s).ok_or_else(|| {
                        ScimError::invalid_path(format!("'{}' has no sub-attribute '{s}'", r.attr.name))
                    })?),
                    (None, s) => s,
                };
            if let Some(f) = &path.filter {
                if r.sub.is_some() || r.attr.kind != AttrType::Complex || !r.attr.multi_valued {
                    return Err(ScimError::invalid_path(format!(
                        "'{}' is not a multi-valued complex attribute; it cannot take a [filter]",
                        path.attr
                    )));
                }
                filter::check_element(f, r.attr).map_err(|e| ScimError::invalid_path(e.detail))?;
            }
            let slot =
                Slot { container: r.container, attr: r.attr, sub, filter: path.filter.as_ref(), implicit: false };
            apply_slot(doc, &slot, op.kind, op.value.as_ref())
        }
    }
}

fn apply_pathless(
    doc: &mut Map<String, Value>,
    schema: &ResourceSchema<'_>,
    kind: OpKind,
    value: &Map<String, Value>,
) -> Result<()> {
    for (key, v) in value {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        let path = AttrPath::parse(key).map_err(|_| ScimError::invalid_value(format!("unknown attribute '{key}'")))?;
        let target =
            schema.resolve(&path).map_err(|_| ScimError::invalid_value(format!("unknown attribute '{key}'")))?;
        match target {
            // `{"urn:…:User": null}`: the extension unassigned (replace), or nothing (add).
            Target::Extension(ext) if v.is_null() => {
                if kind == OpKind::Replace {
                    doc.remove(&ext.id);
                }
            }
            Target::Extension(ext) => {
                let inner =
                    v.as_object().ok_or_else(|| ScimError::invalid_value(format!("'{key}' must be an object")))?;
                for (k, v) in inner.iter().filter(|(k, _)| !k.eq_ignore_ascii_case("schemas")) {
                    let attr = ext.attribute(k).ok_or_else(|| {
                        ScimError::invalid_value(format!("unknown attribute '{k}' in schema {}", ext.id))
                    })?;
                    apply_slot(
                        doc,
                        &Slot { container: Container::Extension(ext), attr, sub: None, filter: None, implicit: true },
                        kind,
                        Some(v),
                    )?;
                }
            }
            Target::Attribute(r) => {
                apply_slot(
                    doc,
                    &Slot { container: r.container, attr: r.attr, sub: r.sub, filter: None, implicit: true },
                    kind,
                    Some(v),
                )?;
            }
        }
    }
    Ok(())
}

/// The object a container's attributes live in; with `create`, an extension object is
/// made (or a non-object replaced) so that it exists.
pub(crate) fn container_mut<'d>(
    doc: &'d mut Map<String, Value>,
    container: Container<'_>,
    create: bool,
) -> Option<&'d mut Map<String, Value>> {
    match container {
        Container::Core => Some(doc),
        Container::Extension(ext) => {
            if create && !doc.get(&ext.id).is_some_and(Value::is_object) {
                doc.insert(ext.id.clone(), Value::Object(Map::new()));
            }
            doc.get_mut(&ext.id).and_then(Value::as_object_mut)
        }
    }
}

fn apply_slot(doc: &mut Map<String, Value>, slot: &Slot<'_>, kind: OpKind, value: Option<&Value>) -> Result<()> {
    let read_only =
        slot.attr.mutability == Mutability::ReadOnly || slot.sub.is_some_and(|s| s.mutability == Mutability::ReadOnly);
    if read_only {
        if slot.implicit {
            return Ok(());
        }
        let name = slot.sub.map_or(slot.attr.name.clone(), |s| format!("{}.{}", slot.attr.name, s.name));
        return Err(ScimError::mutability(format!("'{name}' is read-only")));
    }
    let Some(obj) = container_mut(doc, slot.container, kind != OpKind::Remove) else {
        return Ok(());
    };
    let before = obj.get(&slot.attr.name).cloned();
    match (slot.filter, slot.sub) {
        (Some(f), sub) => apply_filtered(obj, slot.attr, f, sub, kind, value)?,
        (None, Some(sub)) => apply_sub(obj, slot.attr, sub, kind, value)?,
        (None, None) => apply_whole(obj, slot.attr, kind, value)?,
    }
    let after = obj.get(&slot.attr.name);
    if slot.attr.mutability == Mutability::Immutable && before.is_some() && after != before.as_ref() {
        return Err(ScimError::mutability(format!("'{}' is immutable", slot.attr.name)));
    }
    if slot.attr.required && after.is_none() {
        return Err(ScimError::invalid_value(format!("'{}' is required and cannot be removed", slot.attr.name)));
    }
    if let Some(Value::Array(a)) = obj.get(&slot.attr.name) {
        check_single_primary(slot.attr, a, &slot.attr.name)?;
    }
    Ok(())
}

fn elements_mut<'o>(obj: &'o mut Map<String, Value>, attr: &AttributeDef) -> Vec<&'o mut Map<String, Value>> {
    match obj.get_mut(&attr.name) {
        Some(Value::Array(a)) => a.iter_mut().filter_map(Value::as_object_mut).collect(),
        Some(Value::Object(o)) => vec![o],
        _ => vec![],
    }
}

/// Drops an attribute left empty by a change, so it reads as unassigned.
fn tidy(obj: &mut Map<String, Value>, attr: &AttributeDef) {
    let empty = match obj.get_mut(&attr.name) {
        Some(Value::Array(a)) => {
            a.retain(|e| e.as_object().is_none_or(|o| !o.is_empty()));
            a.is_empty()
        }
        Some(Value::Object(o)) => o.is_empty(),
        Some(Value::Null) => true,
        _ => false,
    };
    if empty {
        obj.remove(&attr.name);
    }
}

/// `emails[type eq "work"]` and `emails[type eq "work"].value`.
fn apply_filtered(
    obj: &mut Map<String, Value>,
    attr: &AttributeDef,
    f: &Filter,
    sub: Option<&AttributeDef>,
    kind: OpKind,
    value: Option<&Value>,
) -> Result<()> {
    if kind == OpKind::Remove {
        match sub {
            Some(s) => {
                for e in elements_mut(obj, attr).into_iter().filter(|e| filter::matches_element(f, attr, e)) {
                    e.remove(&s.name);
                }
            }
            None => {
                if let Some(Value::Array(a)) = obj.get_mut(&attr.name) {
                    a.retain(|e| !e.as_object().is_some_and(|e| filter::matches_element(f, attr, e)));
                }
            }
        }
        tidy(obj, attr);
        return Ok(());
    }
    let value = value.expect("checked at parse");
    // What the matched elements receive: one sub-attribute, or several from an object.
    let patch: Map<String, Value> = match sub {
        Some(s) => {
            if s.mutability == Mutability::Immutable {
                return Err(ScimError::mutability(format!("'{}.{}' is immutable", attr.name, s.name)));
            }
            let mut m = Map::new();
            m.insert(
                s.name.clone(),
                coerce_one(s, value, &format!("{}.{}", attr.name, s.name))?.unwrap_or(Value::Null),
            );
            m
        }
        None if value.is_object() => coerce_changes(attr, value, &attr.name)?,
        None => {
            return Err(ScimError::invalid_value(format!("the value for '{}[…]' must be an object", attr.name)));
        }
    };
    let mut matched = 0;
    for e in elements_mut(obj, attr).into_iter().filter(|e| filter::matches_element(f, attr, e)) {
        matched += 1;
        merge(e, &patch);
    }
    if matched == 0 {
        // RFC 7644 §3.5.2.3: replace with no match is noTarget. An add creates the value the
        // filter describes, which is what Entra ID expects of `emails[type eq "work"].value`.
        let built = (kind == OpKind::Add).then(|| element_from_filter(attr, f)).flatten();
        let Some(mut element) = built else {
            return Err(ScimError::no_target(format!("no value of '{}' matches the filter", attr.name)));
        };
        merge(&mut element, &patch);
        let list = obj.entry(attr.name.clone()).or_insert_with(|| Value::Array(vec![]));
        if let Value::Array(a) = list {
            a.push(Value::Object(element));
        }
    }
    tidy(obj, attr);
    Ok(())
}

fn merge(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, v) in patch {
        if v.is_null() {
            target.remove(k);
        } else {
            target.insert(k.clone(), v.clone());
        }
    }
}

fn element_from_filter(attr: &AttributeDef, f: &Filter) -> Option<Map<String, Value>> {
    let mut element = Map::new();
    for (path, lit) in f.eq_terms()? {
        let sub = attr.sub(&path.name)?;
        let v = match lit {
            Literal::String(s) => Value::String(s.clone()),
            Literal::Number(n) => Value::Number(n.clone()),
            Literal::Bool(b) => Value::Bool(*b),
            Literal::Null => return None,
        };
        element.insert(sub.name.clone(), v);
    }
    Some(element)
}

/// `name.givenName`, or `emails.type` across all values.
fn apply_sub(
    obj: &mut Map<String, Value>,
    attr: &AttributeDef,
    sub: &AttributeDef,
    kind: OpKind,
    value: Option<&Value>,
) -> Result<()> {
    let at = format!("{}.{}", attr.name, sub.name);
    if kind == OpKind::Remove {
        for e in elements_mut(obj, attr) {
            e.remove(&sub.name);
        }
        tidy(obj, attr);
        return Ok(());
    }
    let new = coerce(sub, value.expect("checked at parse"), &at)?;
    if attr.multi_valued {
        let mut elements = elements_mut(obj, attr);
        if elements.is_empty() {
            if kind == OpKind::Replace {
                return Err(ScimError::no_target(format!("'{}' has no values", attr.name)));
            }
            if let Some(v) = new {
                let mut e = Map::new();
                e.insert(sub.name.clone(), v);
                obj.insert(attr.name.clone(), Value::Array(vec![Value::Object(e)]));
            }
            return Ok(());
        }
        for e in elements.iter_mut() {
            match &new {
                Some(v) => e.insert(sub.name.clone(), v.clone()),
                None => e.remove(&sub.name),
            };
        }
    } else {
        if sub.mutability == Mutability::Immutable && obj.get(&attr.name).and_then(|p| p.get(&sub.name)).is_some() {
            return Err(ScimError::mutability(format!("'{at}' is immutable")));
        }
        let parent = obj.entry(attr.name.clone()).or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(p) = parent {
            match new {
                Some(v) => p.insert(sub.name.clone(), v),
                None => p.remove(&sub.name),
            };
        }
    }
    tidy(obj, attr);
    Ok(())
}

fn apply_whole(obj: &mut Map<String, Value>, attr: &AttributeDef, kind: OpKind, value: Option<&Value>) -> Result<()> {
    // A single-valued complex attribute (name, manager): the sub-attributes given are set,
    // those given as null are unassigned, the others are left as they are (RFC 7644
    // §3.5.2.1 and §3.5.2.3; RFC 7643 §2.5).
    if kind != OpKind::Remove && attr.kind == AttrType::Complex && !attr.multi_valued {
        let value = value.expect("checked at parse");
        if value.is_null() {
            if kind == OpKind::Replace {
                obj.remove(&attr.name);
            }
            return Ok(());
        }
        let changes = coerce_changes(attr, value, &attr.name)?;
        let slot = obj.entry(attr.name.clone()).or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        if let Value::Object(o) = slot {
            merge(o, &changes);
            if !o.is_empty()
                && let Some(missing) = attr.sub_attributes.iter().find(|s| s.required && !o.contains_key(&s.name))
            {
                return Err(ScimError::invalid_value(format!("'{}.{}' is required", attr.name, missing.name)));
            }
        }
        tidy(obj, attr);
        return Ok(());
    }
    match kind {
        OpKind::Remove => {
            match value {
                // Entra ID removes members with `path: "members"` and the values to remove.
                Some(v) if attr.multi_valued && !v.is_null() => {
                    let doomed = coerce(attr, v, &attr.name)?.and_then(|v| v.as_array().cloned()).unwrap_or_default();
                    if let Some(Value::Array(a)) = obj.get_mut(&attr.name) {
                        a.retain(|e| !doomed.iter().any(|d| same_element(attr, e, d)));
                    }
                    tidy(obj, attr);
                }
                _ => {
                    obj.remove(&attr.name);
                }
            }
        }
        OpKind::Add => {
            let Some(new) = coerce(attr, value.expect("checked at parse"), &attr.name)? else {
                return Ok(());
            };
            match (attr.multi_valued, new) {
                (true, Value::Array(items)) => {
                    let new_primary = items.iter().any(|e| e.get("primary") == Some(&Value::Bool(true)));
                    let list = obj.entry(attr.name.clone()).or_insert_with(|| Value::Array(vec![]));
                    let Value::Array(existing) = list else {
                        unreachable!("multi-valued attributes are stored as arrays")
                    };
                    if new_primary {
                        for e in existing.iter_mut().filter_map(Value::as_object_mut) {
                            e.insert("primary".into(), Value::Bool(false));
                        }
                    }
                    for item in items {
                        if !existing.iter().any(|e| same_element(attr, e, &item)) {
                            existing.push(item);
                        }
                    }
                }
                (_, new) => {
                    obj.insert(attr.name.clone(), new);
                }
            }
        }
        OpKind::Replace => match coerce(attr, value.expect("checked at parse"), &attr.name)? {
            None => {
                obj.remove(&attr.name);
            }
            Some(new) => {
                obj.insert(attr.name.clone(), new);
            }
        },
    }
    Ok(())
}

/// Two values of a multi-valued attribute are the same when their `value`s are (members,
/// emails), or, for values without one, when they are equal.
fn same_element(attr: &AttributeDef, a: &Value, b: &Value) -> bool {
    match (a.get("value"), b.get("value"), attr.sub("value")) {
        (Some(x), Some(y), Some(def)) => {
            same_value(def, x, y) && a.get("type").zip(b.get("type")).is_none_or(|(s, t)| s == t)
        }
        _ => a == b,
    }
}
