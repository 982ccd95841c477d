//! Bulk requests (RFC 7644 §3.7): reading one, the `bulkId` references between its
//! operations, the order they run in, and the response. No IO: the engine runs the plan.
//!
//! A reference is a whole JSON string `bulkId:<id>`, anywhere in an operation's `data` or
//! as a segment of its `path` (`/Groups/bulkId:qwerty`). An operation runs after the POST
//! that creates what it references, wherever that POST sits in the request (§3.7.2: in
//! either order). Circular references (§3.7.1) are resolved where they can be without
//! guessing: a group created with a member whose POST is itself waiting on that group is
//! created without that member, and the member is added once it exists. Any other cycle is
//! refused with 409, as §3.7.1 allows.

use crate::{BULK_REQUEST_URN, BULK_RESPONSE_URN, ScimError};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// The four methods a bulk operation may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    fn parse(text: &str) -> Option<Method> {
        match text.to_ascii_uppercase().as_str() {
            "POST" => Some(Method::Post),
            "PUT" => Some(Method::Put),
            "PATCH" => Some(Method::Patch),
            "DELETE" => Some(Method::Delete),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// A `bulkId:<id>` reference in an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub bulk_id: String,
    /// The reference is the `value` of one of the `members` of a POST: the resource can be
    /// created without it and have it added afterwards.
    pub member_of_post: bool,
}

/// One operation as requested. An operation that is malformed on its own carries the
/// error in `problem` and fails alone; the others still run.
#[derive(Debug, Clone)]
pub struct Operation {
    /// The method as sent (echoed in the response), upper-cased.
    pub method_text: String,
    pub method: Option<Method>,
    pub bulk_id: Option<String>,
    /// The `version` (an ETag), the bulk form of `If-Match`.
    pub version: Option<String>,
    pub path: String,
    pub data: Option<Value>,
    pub references: Vec<Reference>,
    pub problem: Option<ScimError>,
}

/// A bulk request that passed the checks that concern it as a whole.
#[derive(Debug, Clone)]
pub struct Request {
    /// Stop after this many failed operations (`failOnErrors`); None runs them all.
    pub fail_on_errors: Option<u64>,
    pub operations: Vec<Operation>,
}

fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

/// Reads a BulkRequest. Refuses it whole when it cannot be run at all: not a BulkRequest,
/// more than `max_operations` operations (413, RFC 7644 §3.7.4), or a `bulkId` used twice
/// (a reference to it would be ambiguous).
pub fn parse(body: &Value, max_operations: usize) -> Result<Request, ScimError> {
    let object = body.as_object().ok_or_else(|| ScimError::invalid_syntax("a BulkRequest must be a JSON object"))?;
    if let Some(schemas) = field(object, "schemas") {
        let listed = schemas.as_array().is_some_and(|s| s.iter().any(|s| s.as_str() == Some(BULK_REQUEST_URN)));
        if !listed {
            return Err(ScimError::invalid_syntax(format!("'schemas' must be [\"{BULK_REQUEST_URN}\"]")));
        }
    }
    let fail_on_errors = match field(object, "failOnErrors") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .filter(|n| *n >= 1)
                .ok_or_else(|| ScimError::invalid_value("failOnErrors must be a positive integer"))?,
        ),
    };
    let operations = field(object, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::invalid_syntax("a BulkRequest needs an 'Operations' array"))?;
    if operations.len() > max_operations {
        return Err(ScimError::new(
            413,
            None,
            format!("the request has {} operations; this server accepts at most {max_operations}", operations.len()),
        ));
    }
    let operations: Vec<Operation> = operations.iter().map(operation).collect();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, op) in operations.iter().enumerate() {
        if let Some(id) = op.bulk_id.as_deref()
            && let Some(first) = seen.insert(id, i)
        {
            return Err(ScimError::invalid_value(format!(
                "bulkId '{id}' is given to operations {} and {}; a bulkId must be unique in a request",
                first + 1,
                i + 1
            )));
        }
    }
    Ok(Request { fail_on_errors, operations })
}

fn operation(value: &Value) -> Operation {
    let mut op = Operation {
        method_text: String::new(),
        method: None,
        bulk_id: None,
        version: None,
        path: String::new(),
        data: None,
        references: Vec::new(),
        problem: None,
    };
    let Some(object) = value.as_object() else {
        op.problem = Some(ScimError::invalid_syntax("an operation must be a JSON object"));
        return op;
    };
    let text = |name: &str| field(object, name).and_then(Value::as_str).map(str::to_string);
    op.method_text = text("method").unwrap_or_default().to_ascii_uppercase();
    op.method = Method::parse(&op.method_text);
    op.bulk_id = text("bulkId").filter(|s| !s.is_empty());
    op.version = text("version");
    op.path = text("path").unwrap_or_default();
    op.data = field(object, "data").filter(|d| !d.is_null()).cloned();
    op.problem = match op.method {
        None => Some(ScimError::invalid_value("'method' must be POST, PUT, PATCH or DELETE")),
        Some(_) if !op.path.starts_with('/') => {
            Some(ScimError::invalid_value("'path' must be a resource path such as /Users or /Users/{id}"))
        }
        Some(Method::Delete) => None,
        Some(_) if !op.data.as_ref().is_some_and(Value::is_object) => {
            Some(ScimError::invalid_syntax(format!("a {} operation needs 'data', a JSON object", op.method_text)))
        }
        Some(_) => None,
    };
    if op.problem.is_none() {
        op.references = references(&op);
    }
    op
}

/// The id in a `bulkId:<id>` reference.
fn referenced(text: &str) -> Option<&str> {
    text.strip_prefix("bulkId:").filter(|id| !id.is_empty())
}

fn references(op: &Operation) -> Vec<Reference> {
    let mut out = Vec::new();
    for segment in op.path.split('/') {
        if let Some(id) = referenced(segment) {
            out.push(Reference { bulk_id: id.to_string(), member_of_post: false });
        }
    }
    let Some(data) = &op.data else { return out };
    let mut members = Vec::new();
    if op.method == Some(Method::Post)
        && let Some(list) = data.as_object().and_then(|o| field(o, "members")).and_then(Value::as_array)
    {
        for member in list {
            if let Some(id) = member.as_object().and_then(|m| field(m, "value")).and_then(Value::as_str) {
                members.push(id);
            }
        }
    }
    let mut all = Vec::new();
    collect_strings(data, &mut all);
    for text in all {
        if let Some(id) = referenced(text) {
            let member_of_post = members.contains(&text);
            if !out.iter().any(|r: &Reference| r.bulk_id == id && r.member_of_post == member_of_post) {
                out.push(Reference { bulk_id: id.to_string(), member_of_post });
            }
        }
    }
    out
}

fn collect_strings<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

/// Replaces every `bulkId:<id>` string in `value` with what `resolve` gives for the id.
pub fn substitute(value: &mut Value, resolve: &dyn Fn(&str) -> Option<String>) {
    match value {
        Value::String(s) => {
            if let Some(id) = referenced(s).and_then(resolve) {
                *s = id;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| substitute(v, resolve)),
        Value::Object(map) => map.values_mut().for_each(|v| substitute(v, resolve)),
        _ => {}
    }
}

/// Removes the `members` of a POST's data whose value references one of `bulk_ids`.
pub fn drop_members(data: &mut Value, bulk_ids: &[String]) {
    let Some(object) = data.as_object_mut() else { return };
    let Some((_, Value::Array(list))) = object.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case("members")) else {
        return;
    };
    list.retain(|member| {
        let value = member.as_object().and_then(|m| field(m, "value")).and_then(Value::as_str);
        !value.and_then(referenced).is_some_and(|id| bulk_ids.iter().any(|b| b == id))
    });
}

/// What the engine does, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Run operation `n` (zero-based, in request order).
    Run(usize),
    /// Add to the group that operation `op` created the members it was created without,
    /// now that the POSTs of `bulk_ids` have run.
    AddMembers { op: usize, bulk_ids: Vec<String> },
}

/// The order of a request's operations and what circular references did to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// Per operation, the member references left out of its POST (added by a later step).
    pub deferred: Vec<Vec<String>>,
    /// Operations in a cycle of references that cannot be resolved: they fail with 409.
    pub circular: Vec<bool>,
}

/// Orders the operations: each runs after the POSTs it references (depth first, in
/// request order otherwise). Iterative, so a chain of references as long as the request
/// cannot exhaust the stack.
pub fn plan(ops: &[Operation]) -> Plan {
    let n = ops.len();
    let creator: HashMap<&str, usize> = ops
        .iter()
        .enumerate()
        .filter(|(_, op)| op.method == Some(Method::Post) && op.problem.is_none())
        .filter_map(|(i, op)| op.bulk_id.as_deref().map(|id| (id, i)))
        .collect();
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut mark = vec![Mark::New; n];
    let mut out = Plan { steps: Vec::with_capacity(n), deferred: vec![Vec::new(); n], circular: vec![false; n] };
    // For each POST still open when a group referenced it: (group's op, bulkId).
    let mut waiting: HashMap<usize, Vec<(usize, String)>> = HashMap::new();
    for root in 0..n {
        if mark[root] != Mark::New {
            continue;
        }
        mark[root] = Mark::Open;
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(top) = stack.len().checked_sub(1) {
            let (node, next) = stack[top];
            if let Some(reference) = ops[node].references.get(next) {
                stack[top].1 += 1;
                let Some(&target) = creator.get(reference.bulk_id.as_str()) else { continue };
                match mark[target] {
                    Mark::New => {
                        mark[target] = Mark::Open;
                        stack.push((target, 0));
                    }
                    Mark::Open if reference.member_of_post && target != node => {
                        out.deferred[node].push(reference.bulk_id.clone());
                        waiting.entry(target).or_default().push((node, reference.bulk_id.clone()));
                    }
                    Mark::Open => out.circular[node] = true,
                    Mark::Done => {}
                }
                continue;
            }
            stack.pop();
            mark[node] = Mark::Done;
            out.steps.push(Step::Run(node));
            for (op, bulk_id) in waiting.remove(&node).unwrap_or_default() {
                out.steps.push(Step::AddMembers { op, bulk_ids: vec![bulk_id] });
            }
        }
    }
    out
}

/// The result of one operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: u16,
    pub location: Option<String>,
    /// The resource's new version, as an ETag.
    pub version: Option<String>,
    pub error: Option<ScimError>,
}

/// The BulkResponse: the results of the operations that ran, in request order.
pub fn response(ops: &[Operation], outcomes: &[Option<Outcome>]) -> Value {
    let results: Vec<Value> = ops
        .iter()
        .zip(outcomes)
        .filter_map(|(op, outcome)| {
            let outcome = outcome.as_ref()?;
            let mut r = Map::new();
            r.insert("method".into(), Value::String(op.method_text.clone()));
            if let Some(id) = &op.bulk_id {
                r.insert("bulkId".into(), Value::String(id.clone()));
            }
            if let Some(v) = &outcome.version {
                r.insert("version".into(), Value::String(v.clone()));
            }
            if let Some(l) = &outcome.location {
                r.insert("location".into(), Value::String(l.clone()));
            }
            r.insert("status".into(), Value::String(outcome.status.to_string()));
            if let Some(e) = &outcome.error {
                r.insert("response".into(), serde_json::to_value(e.to_body()).unwrap_or(Value::Null));
            }
            Some(Value::Object(r))
        })
        .collect();
    json!({"schemas": [BULK_RESPONSE_URN], "Operations": results})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(ops: Value) -> Request {
        parse(&json!({"schemas": [BULK_REQUEST_URN], "Operations": ops}), 1000).unwrap()
    }

    fn post_group(bulk_id: &str, members: &[&str]) -> Value {
        let members: Vec<Value> =
            members.iter().map(|m| json!({"type": "Group", "value": format!("bulkId:{m}")})).collect();
        json!({"method": "POST", "path": "/Groups", "bulkId": bulk_id,
               "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": bulk_id, "members": members}})
    }

    #[test]
    fn a_reference_runs_after_its_post_in_either_order() {
        // RFC 7644 §3.7.2: the group's POST comes first and names the user created later.
        let r = req(json!([
            post_group("ytrewq", &[]),
            {"method": "PATCH", "path": "/Groups/bulkId:ytrewq", "data": {"Operations": [{"op": "add", "path": "members", "value": [{"value": "bulkId:qwerty"}]}]}},
            {"method": "POST", "path": "/Users", "bulkId": "qwerty", "data": {"userName": "Alice"}},
        ]));
        let p = plan(&r.operations);
        assert_eq!(p.steps, vec![Step::Run(0), Step::Run(2), Step::Run(1)]);
        assert!(p.circular.iter().all(|c| !c));
    }

    #[test]
    fn groups_that_contain_each_other_are_created_then_completed() {
        // RFC 7644 §3.7.1's example: group A has B as a member and B has A.
        let r = req(json!([post_group("qwerty", &["ytrewq"]), post_group("ytrewq", &["qwerty"])]));
        let p = plan(&r.operations);
        assert_eq!(
            p.steps,
            vec![Step::Run(1), Step::Run(0), Step::AddMembers { op: 1, bulk_ids: vec!["qwerty".into()] }]
        );
        assert_eq!(p.deferred[1], vec!["qwerty".to_string()]);
        assert!(p.deferred[0].is_empty());
        let mut data = r.operations[1].data.clone().unwrap();
        drop_members(&mut data, &p.deferred[1]);
        assert_eq!(data["members"], json!([]));
    }

    #[test]
    fn other_cycles_are_refused() {
        let r = req(json!([
            {"method": "POST", "path": "/Users", "bulkId": "a", "data": {"userName": "a", "nickName": "bulkId:b"}},
            {"method": "POST", "path": "/Users", "bulkId": "b", "data": {"userName": "b", "nickName": "bulkId:a"}},
            post_group("self", &["self"]),
        ]));
        let p = plan(&r.operations);
        assert_eq!(p.circular, vec![false, true, true]);
        assert_eq!(p.steps, vec![Step::Run(1), Step::Run(0), Step::Run(2)]);
    }

    #[test]
    fn a_long_chain_does_not_recurse() {
        let mut ops = vec![json!({"method": "POST", "path": "/Users", "bulkId": "u0", "data": {"userName": "u0"}})];
        for i in 1..5000 {
            ops.push(json!({"method": "POST", "path": "/Users", "bulkId": format!("u{i}"),
                            "data": {"userName": format!("u{i}"), "nickName": format!("bulkId:u{}", i - 1)}}));
        }
        ops.reverse();
        let r = parse(&json!({"Operations": ops}), 10_000).unwrap();
        let p = plan(&r.operations);
        assert_eq!(p.steps.first(), Some(&Step::Run(4999)));
        assert_eq!(p.steps.last(), Some(&Step::Run(0)));
    }

    #[test]
    fn requests_refused_whole() {
        let too_many: Vec<Value> = (0..3).map(|_| json!({"method": "DELETE", "path": "/Users/x"})).collect();
        assert_eq!(parse(&json!({"Operations": too_many}), 2).unwrap_err().status, 413);
        let twice = json!([post_group("a", &[]), post_group("a", &[])]);
        assert_eq!(parse(&json!({"Operations": twice}), 10).unwrap_err().status, 400);
        assert_eq!(parse(&json!({"schemas": ["urn:x"], "Operations": []}), 10).unwrap_err().status, 400);
        assert_eq!(parse(&json!({"Operations": [], "failOnErrors": 0}), 10).unwrap_err().status, 400);
        assert_eq!(parse(&json!([]), 10).unwrap_err().status, 400);
    }

    #[test]
    fn malformed_operations_fail_alone() {
        let r = req(json!([
            {"method": "GET", "path": "/Users"},
            {"method": "POST", "path": "Users", "data": {}},
            {"method": "PUT", "path": "/Users/1"},
            {"method": "delete", "path": "/Users/1"},
        ]));
        let problems: Vec<bool> = r.operations.iter().map(|o| o.problem.is_some()).collect();
        assert_eq!(problems, vec![true, true, true, false]);
        assert_eq!(r.operations[3].method, Some(Method::Delete));
    }

    #[test]
    fn substitution_replaces_whole_values_only() {
        let mut v = json!({"members": [{"value": "bulkId:a"}], "note": "see bulkId:a", "x": ["bulkId:b"]});
        substitute(&mut v, &|id| (id == "a").then(|| "ID-A".to_string()));
        assert_eq!(v, json!({"members": [{"value": "ID-A"}], "note": "see bulkId:a", "x": ["bulkId:b"]}));
    }
}
