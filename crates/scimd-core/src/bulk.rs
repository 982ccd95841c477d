//! `POST /Bulk` (RFC 7644 §3.7): runs a bulk request's operations through the engine's
//! single write path, in the order `scimd_proto::bulk::plan` gives. Each operation is one
//! transaction of its own, as a request to its endpoint would be; a failed operation fails
//! alone unless `failOnErrors` is reached. An outage of the database ends the request at
//! the operation it struck: the response still tells the client what was done.

use crate::answer::location;
use crate::engine::{Ctx, Engine, EngineError, EngineResult, Returning};
use crate::store::Kind;
use scimd_proto::bulk::{self, Method, Operation, Outcome, Step};
use scimd_proto::resource::{etag, parse_etag};
use scimd_proto::{PATCH_OP_URN, ScimError};
use serde_json::{Value, json};
use std::collections::HashMap;

/// Only the id is rendered for each operation: the response carries no resources.
const ID_ONLY: Returning<'static> = Returning { attributes: Some("id"), excluded_attributes: None };

/// Where an operation acts: a resource type, and a resource of it unless the method is POST.
struct Target {
    kind: Kind,
    id: Option<String>,
}

impl Engine {
    /// Runs a BulkRequest; the answer is the BulkResponse (200) or, for a request that
    /// cannot run at all, the error (400, 413).
    pub async fn bulk(&self, ctx: &Ctx<'_>, body: &Value) -> EngineResult<Value> {
        let max = self.settings().bulk_max_operations;
        if max == 0 {
            return Err(ScimError::new(501, None, "this server does not accept bulk requests").into());
        }
        let request = bulk::parse(body, usize::try_from(max).unwrap_or(usize::MAX))?;
        let ops = &request.operations;
        let plan = bulk::plan(ops);
        let mut outcomes: Vec<Option<Outcome>> = vec![None; ops.len()];
        // bulkId → the id of the resource its POST created.
        let mut created: HashMap<String, String> = HashMap::new();
        let mut errors = 0u64;
        for step in &plan.steps {
            if request.fail_on_errors.is_some_and(|limit| errors >= limit) {
                break;
            }
            let (index, result) = match step {
                Step::Run(i) => {
                    (*i, self.run_operation(ctx, &ops[*i], &plan.deferred[*i], plan.circular[*i], &created).await)
                }
                Step::AddMembers { op, bulk_ids } => {
                    let Some(done) = outcomes[*op].clone().filter(|o| o.error.is_none()) else { continue };
                    let Ok(Target { kind, .. }) = target(self, &ops[*op].path, Method::Post) else { continue };
                    (*op, self.add_deferred(ctx, kind, done, bulk_ids, &created).await)
                }
            };
            let outcome = match result {
                Ok(outcome) => outcome,
                Err(Stop { outcome, cause }) => {
                    tracing::error!(%cause, "bulk request stopped: the database failed");
                    outcomes[index] = Some(outcome);
                    break;
                }
            };
            if outcome.error.is_some() {
                errors += 1;
            } else if let (Some(Method::Post), Some(bulk_id), Some(id)) =
                (ops[index].method, &ops[index].bulk_id, outcome.location.as_deref().and_then(last_segment))
            {
                created.insert(bulk_id.clone(), id.to_string());
            }
            outcomes[index] = Some(outcome);
        }
        Ok(bulk::response(ops, &outcomes))
    }

    async fn run_operation(
        &self,
        ctx: &Ctx<'_>,
        op: &Operation,
        deferred: &[String],
        circular: bool,
        created: &HashMap<String, String>,
    ) -> Result<Outcome, Stop> {
        let (Some(method), None) = (op.method, &op.problem) else {
            let problem = op.problem.clone().unwrap_or_else(|| ScimError::invalid_value("no method"));
            return Ok(failed(None, problem));
        };
        // References are resolved before the path is read: a PATCH of `/Groups/bulkId:x`
        // acts on what x created.
        let unresolved =
            op.references.iter().find(|r| !deferred.contains(&r.bulk_id) && !created.contains_key(&r.bulk_id));
        let resolve = |id: &str| created.get(id).cloned();
        let path: Vec<&str> = op
            .path
            .split('/')
            .map(|segment| match segment.strip_prefix("bulkId:").and_then(|b| created.get(b)) {
                Some(id) => id.as_str(),
                None => segment,
            })
            .collect();
        let target = match target(self, &path.join("/"), method) {
            Ok(t) => t,
            Err(e) => return Ok(failed(None, e)),
        };
        let here = target.id.as_deref().map(|id| location(ctx.base_url, target.kind, id));
        if circular {
            return Ok(failed(here, ScimError::conflict("circular bulkId references that cannot be resolved")));
        }
        if let Some(r) = unresolved {
            return Ok(failed(
                here,
                ScimError::conflict(format!(
                    "bulkId '{}' names no resource: no POST of this request with that bulkId succeeded",
                    r.bulk_id
                )),
            ));
        }
        let mut data = op.data.clone().unwrap_or(Value::Null);
        bulk::drop_members(&mut data, deferred);
        bulk::substitute(&mut data, &resolve);
        let version = match op.version.as_deref().map(str::trim) {
            None | Some("*") => None,
            Some(text) => match parse_etag(text) {
                Some(v) => Some(v),
                None => {
                    return Ok(failed(
                        here,
                        ScimError::precondition_failed(format!("version '{text}' matches no version of this resource")),
                    ));
                }
            },
        };
        let (kind, id) = (target.kind, target.id.as_deref().unwrap_or_default());
        let result = match method {
            Method::Post => self.create(ctx, kind, &data, ID_ONLY).await.map(|r| (201, r.location, Some(r.version))),
            Method::Put => {
                self.replace(ctx, kind, id, &data, version, ID_ONLY).await.map(|r| (200, r.location, Some(r.version)))
            }
            Method::Patch => {
                self.patch(ctx, kind, id, &data, version, ID_ONLY).await.map(|r| (200, r.location, Some(r.version)))
            }
            Method::Delete => {
                self.delete(ctx, kind, id, version).await.map(|()| (204, here.clone().unwrap_or_default(), None))
            }
        };
        settle(result, here)
    }

    /// Adds the members a group's POST was created without (see `bulk::plan`).
    async fn add_deferred(
        &self,
        ctx: &Ctx<'_>,
        kind: Kind,
        done: Outcome,
        bulk_ids: &[String],
        created: &HashMap<String, String>,
    ) -> Result<Outcome, Stop> {
        let here = done.location.clone();
        let id = here.as_deref().and_then(last_segment).unwrap_or_default().to_string();
        let Some(members) =
            bulk_ids.iter().map(|b| created.get(b).map(|id| json!({"value": id}))).collect::<Option<Vec<_>>>()
        else {
            let missing = bulk_ids.join("', '");
            return Ok(failed(
                here,
                ScimError::conflict(format!("bulkId '{missing}' refers to no resource: its operation failed")),
            ));
        };
        let body = json!({"schemas": [PATCH_OP_URN], "Operations": [{"op": "add", "path": kind.relation().unwrap_or_default(), "value": members}]});
        let result = self.patch(ctx, kind, &id, &body, None, ID_ONLY).await;
        settle(result.map(|r| (done.status, r.location, Some(r.version))), here)
    }
}

/// An operation that ended the request: what to report for it, and why (for the log).
struct Stop {
    outcome: Outcome,
    cause: String,
}

fn failed(location: Option<String>, error: ScimError) -> Outcome {
    Outcome { status: error.status, location, version: None, error: Some(error) }
}

/// An engine result as an operation's outcome; an outage or internal failure stops the request.
fn settle(result: EngineResult<(u16, String, Option<i64>)>, here: Option<String>) -> Result<Outcome, Stop> {
    match result {
        Ok((status, location, version)) => {
            Ok(Outcome { status, location: Some(location), version: version.map(etag), error: None })
        }
        Err(EngineError::Scim(e)) => Ok(failed(here, e)),
        Err(EngineError::Unavailable(outage, cause)) => {
            let (status, detail) = outage.answer();
            Err(Stop { outcome: failed(here, ScimError::new(status, None, detail)), cause })
        }
        Err(EngineError::Internal(cause)) => {
            Err(Stop { outcome: failed(here, ScimError::new(500, None, "internal server error")), cause })
        }
    }
}

fn last_segment(location: &str) -> Option<&str> {
    location.rsplit('/').next().filter(|s| !s.is_empty())
}

/// `/Users` for a POST, `/Users/{id}` for the other methods.
fn target(engine: &Engine, path: &str, method: Method) -> Result<Target, ScimError> {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let endpoint = parts.next().unwrap_or_default();
    let id = parts.next().filter(|id| !id.is_empty());
    let kind = engine
        .kind_at(endpoint)
        .ok_or_else(|| ScimError::not_found(format!("no resource type is served at '/{endpoint}'")))?;
    match (method, id) {
        (Method::Post, None) => Ok(Target { kind, id: None }),
        (Method::Post, Some(_)) => Err(ScimError::invalid_value(format!(
            "a POST goes to the resource type's endpoint, '/{}'",
            kind.endpoint()
        ))),
        (_, Some(id)) if !id.contains('/') => Ok(Target { kind, id: Some(id.to_string()) }),
        _ => Err(ScimError::invalid_value(format!(
            "this operation needs a resource path such as '/{}/{{id}}'",
            kind.endpoint()
        ))),
    }
}
