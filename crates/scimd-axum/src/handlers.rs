//! The endpoint handlers: thin translations between HTTP and the engine.

use crate::State;
use crate::error::{ApiError, json_response};
use crate::extract::{BaseUrl, Caller, Id, IfMatch, Params, ScimBody};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use scimd_core::{Body, Kind, Query, Rendered, Returning};
use scimd_proto::ScimError;
use scimd_proto::messages::{ListResponse, SearchRequest, json_scalar_text};
use scimd_proto::resource::etag;
use serde_json::Value;

type Result<T> = std::result::Result<T, ApiError>;

/// A response carrying an engine answer: JSON, or JSON text written as it is produced
/// (`Body::Streamed`), within the request timeout.
fn answer(state: &State, status: StatusCode, body: Body) -> Response {
    match body {
        Body::Json(v) => json_response(status, &v),
        Body::Text(text) => crate::error::json_text_response(status, text),
        Body::Streamed(s) => crate::error::streamed_response(status, s, state.request_timeout),
    }
}

/// A resource response with `ETag` (and `Location` when created).
fn resource(state: &State, status: StatusCode, r: Rendered) -> Response {
    let mut resp = answer(state, status, r.body);
    if let Ok(v) = HeaderValue::from_str(&etag(r.version)) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    if status == StatusCode::CREATED
        && let Ok(v) = HeaderValue::from_str(&r.location)
    {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

fn list(l: ListResponse) -> Response {
    json_response(StatusCode::OK, &l)
}

fn returning(p: &Params) -> Returning<'_> {
    Returning { attributes: p.get("attributes"), excluded_attributes: p.get("excludedAttributes") }
}

fn query_from_params(p: &Params) -> Query {
    Query {
        filter: p.owned("filter"),
        attributes: p.owned("attributes"),
        excluded_attributes: p.owned("excludedAttributes"),
        sort_by: p.owned("sortBy"),
        sort_order: p.owned("sortOrder"),
        start_index: p.owned("startIndex"),
        count: p.owned("count"),
        cursor: p.owned("cursor"),
    }
}

pub async fn list_resources(kind: Kind, state: State, caller: Caller, params: Params) -> Result<Response> {
    let body = state.engine.list(&caller.ctx(), Some(kind), &query_from_params(&params)).await?;
    Ok(answer(&state, StatusCode::OK, body))
}

pub async fn search(kind: Option<Kind>, state: State, caller: Caller, ScimBody(body): ScimBody) -> Result<Response> {
    let req = SearchRequest::from_json(&body)?;
    let q = Query {
        filter: req.filter,
        attributes: req.attributes.map(|a| a.joined()),
        excluded_attributes: req.excluded_attributes.map(|a| a.joined()),
        sort_by: req.sort_by,
        sort_order: req.sort_order,
        start_index: json_scalar_text(req.start_index.as_ref()),
        count: json_scalar_text(req.count.as_ref()),
        cursor: req.cursor,
    };
    let body = state.engine.list(&caller.ctx(), kind, &q).await?;
    Ok(answer(&state, StatusCode::OK, body))
}

pub async fn create(
    kind: Kind,
    state: State,
    caller: Caller,
    params: Params,
    ScimBody(body): ScimBody,
) -> Result<Response> {
    let r = state.engine.create(&caller.ctx(), kind, &body, returning(&params)).await?;
    Ok(resource(&state, StatusCode::CREATED, r))
}

pub async fn get_one(kind: Kind, state: State, caller: Caller, Id(id): Id, params: Params) -> Result<Response> {
    let r = state.engine.get(&caller.ctx(), kind, &id, returning(&params)).await?;
    Ok(resource(&state, StatusCode::OK, r))
}

pub async fn replace(
    kind: Kind,
    state: State,
    caller: Caller,
    Id(id): Id,
    IfMatch(v): IfMatch,
    params: Params,
    ScimBody(body): ScimBody,
) -> Result<Response> {
    let r = state.engine.replace(&caller.ctx(), kind, &id, &body, v, returning(&params)).await?;
    Ok(resource(&state, StatusCode::OK, r))
}

/// `PATCH`. A Group PATCH that names no `attributes` or `excludedAttributes` is answered
/// 204 No Content with the new `ETag` (RFC 7644 §3.5.2 allows it; Entra ID and Okta expect
/// no body): a member added to a group of 100,000 costs what it costs in a group of 10,
/// with no group to read back and send. Every other PATCH answers 200 with the resource.
pub async fn patch(
    kind: Kind,
    state: State,
    caller: Caller,
    Id(id): Id,
    IfMatch(v): IfMatch,
    params: Params,
    ScimBody(body): ScimBody,
) -> Result<Response> {
    let wants = returning(&params);
    let quiet = kind.has_members() && wants.attributes.is_none() && wants.excluded_attributes.is_none();
    let answer = if quiet { Returning { attributes: None, excluded_attributes: kind.relation() } } else { wants };
    let r = state.engine.patch(&caller.ctx(), kind, &id, &body, v, answer).await?;
    if quiet {
        let mut resp = StatusCode::NO_CONTENT.into_response();
        if let Ok(tag) = HeaderValue::from_str(&etag(r.version)) {
            resp.headers_mut().insert(header::ETAG, tag);
        }
        return Ok(resp);
    }
    Ok(resource(&state, StatusCode::OK, r))
}

pub async fn delete(kind: Kind, state: State, caller: Caller, Id(id): Id, IfMatch(v): IfMatch) -> Result<Response> {
    state.engine.delete(&caller.ctx(), kind, &id, v).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /Bulk` (RFC 7644 §3.7): 200 with a BulkResponse, whatever its operations did.
pub async fn bulk(state: State, caller: Caller, ScimBody(body): ScimBody) -> Result<Response> {
    let answer = state.engine.bulk(&caller.ctx(), &body).await?;
    Ok(json_response(StatusCode::OK, &answer))
}

/// The User a `/Me` request stands for (RFC 7644 §3.11): the principal's, or a 501 when the
/// credentials name none (a provisioning token is no user).
fn me(caller: &Caller) -> Result<String> {
    caller
        .principal
        .user_id
        .clone()
        .ok_or_else(|| ScimError::new(501, None, "/Me is not available: these credentials are not a user's").into())
}

pub async fn me_get(state: State, caller: Caller, params: Params) -> Result<Response> {
    let id = me(&caller)?;
    get_one(Kind::User, state, caller, Id(id), params).await
}

pub async fn me_replace(state: State, caller: Caller, m: IfMatch, params: Params, body: ScimBody) -> Result<Response> {
    let id = me(&caller)?;
    replace(Kind::User, state, caller, Id(id), m, params, body).await
}

pub async fn me_patch(state: State, caller: Caller, m: IfMatch, params: Params, body: ScimBody) -> Result<Response> {
    let id = me(&caller)?;
    patch(Kind::User, state, caller, Id(id), m, params, body).await
}

pub async fn me_delete(state: State, caller: Caller, m: IfMatch) -> Result<Response> {
    let id = me(&caller)?;
    delete(Kind::User, state, caller, Id(id), m).await
}

/// `POST /Me`: the caller already is a user; creating one through `/Me` is not offered.
pub async fn me_create(caller: Caller) -> Result<Response> {
    me(&caller)?;
    Err(ScimError::new(501, None, "creating a resource through /Me is not supported; POST to /Users").into())
}

pub async fn service_provider_config(state: State, base: BaseUrl) -> Response {
    json_response(StatusCode::OK, &state.features.to_resource(&base.0))
}

pub async fn resource_types(state: State, base: BaseUrl) -> Response {
    let all: Vec<Value> = state.engine.registry().resource_types().iter().map(|rt| rt.to_resource(&base.0)).collect();
    list(ListResponse::new(all.len() as u64, 1, all))
}

pub async fn resource_type(state: State, base: BaseUrl, Id(id): Id) -> Result<Response> {
    let rt = state
        .engine
        .registry()
        .resource_type(&id)
        .ok_or_else(|| ScimError::not_found(format!("no resource type '{id}'")))?;
    Ok(json_response(StatusCode::OK, &rt.to_resource(&base.0)))
}

pub async fn schemas(state: State, base: BaseUrl) -> Response {
    let all: Vec<Value> = state.engine.registry().schemas().iter().map(|s| s.to_resource(&base.0)).collect();
    list(ListResponse::new(all.len() as u64, 1, all))
}

pub async fn schema(state: State, base: BaseUrl, Id(id): Id) -> Result<Response> {
    let s = state.engine.registry().schema(&id).ok_or_else(|| ScimError::not_found(format!("no schema '{id}'")))?;
    Ok(json_response(StatusCode::OK, &s.to_resource(&base.0)))
}
