//! # scimd-admin
//!
//! The admin API: JSON over HTTP for the application that onboards its customers. It
//! creates, lists, reads, updates, disables, enables and deletes tenants, creates (secret
//! shown once), lists and revokes their SCIM tokens, and reads their counts. It is opened by
//! admin tokens only (`scimd admin-token create`), which open nothing else; SCIM tokens do
//! not open it. Every answer is JSON; every failure is `{"status", "code", "message"}`.
//! The OpenAPI 3.1 document is served at `openapi.json`.
//!
//! ```no_run
//! # fn demo(dir: scimd_admin::ops::Directory) {
//! let app: axum::Router = axum::Router::new().nest("/admin/v1", scimd_admin::AdminService::new(dir).router());
//! # }
//! ```

mod activity;
mod events;
pub mod ops;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, OriginalUri, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ops::{Directory, OpError};
use scimd_core::tenants::{Tenant, TenantSettings, TenantState};
use scimd_core::tokens::{NewToken, Scope, Throttle, TokenInfo, TokenStore, Verified, bearer_token, verify_token};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;
use tower_http::set_header::SetResponseHeaderLayer;

/// The OpenAPI 3.1 description of this API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Largest request body, in bytes.
const MAX_BODY: usize = 64 * 1024;

struct Inner {
    dir: Directory,
    /// The tenants' activity log, when the server keeps one.
    activity: Option<Arc<dyn scimd_core::activity::ActivityLog>>,
    /// A tenant's events and streams, when the server has them.
    events: Option<scimd_events::manage::Streams>,
    auth: AdminAuth,
}

type St = State<Arc<Inner>>;

/// The admin tokens' check: of the API's routes, and of any served beside them (`protect`),
/// such as `/metrics`. A token's last use is written at most once a minute.
#[derive(Clone)]
pub struct AdminAuth {
    tokens: Arc<dyn TokenStore>,
    uses: Arc<Throttle>,
}

impl AdminAuth {
    pub fn new(tokens: Arc<dyn TokenStore>) -> AdminAuth {
        AdminAuth { tokens, uses: Arc::new(Throttle::new(Duration::from_secs(60))) }
    }

    /// `router`'s routes, opened by admin tokens only.
    pub fn protect<S: Clone + Send + Sync + 'static>(&self, router: Router<S>) -> Router<S> {
        router.route_layer(middleware::from_fn_with_state(self.clone(), authenticate))
    }
}

/// The admin API, ready to mount.
pub struct AdminService {
    dir: Directory,
    events: Option<scimd_events::manage::Streams>,
    activity: Option<Arc<dyn scimd_core::activity::ActivityLog>>,
    auth: AdminAuth,
}

impl AdminService {
    pub fn new(dir: Directory) -> AdminService {
        let auth = AdminAuth::new(dir.tokens.clone());
        AdminService { dir, events: None, activity: None, auth }
    }

    /// The check of admin tokens these routes use, for routes served beside them.
    pub fn auth(&self) -> AdminAuth {
        self.auth.clone()
    }

    /// With the event feed and the event streams of each tenant.
    pub fn with_events(self, streams: scimd_events::manage::Streams) -> AdminService {
        AdminService { events: Some(streams), ..self }
    }

    /// With each tenant's activity log.
    pub fn with_activity(self, log: Arc<dyn scimd_core::activity::ActivityLog>) -> AdminService {
        AdminService { activity: Some(log), ..self }
    }

    /// The routes, to be nested at `/admin/v1`.
    pub fn router(self) -> Router {
        let inner = Arc::new(Inner { dir: self.dir, events: self.events, activity: self.activity, auth: self.auth });
        let protected = Router::new()
            .route("/tenants", get(list_tenants).post(create_tenant))
            .route("/tenants/{slug}", get(get_tenant).patch(update_tenant).delete(delete_tenant))
            .route("/tenants/{slug}/disable", post(disable_tenant))
            .route("/tenants/{slug}/enable", post(enable_tenant))
            .route("/tenants/{slug}/stats", get(tenant_stats))
            .route("/tenants/{slug}/tokens", get(list_tokens).post(create_token))
            .route("/tenants/{slug}/tokens/{id}", axum::routing::delete(revoke_token))
            .merge(events::routes())
            .merge(activity::routes());
        let protected = inner.auth.protect(protected);
        Router::new()
            .route("/openapi.json", get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }))
            .merge(protected)
            .fallback(|| async { AdminError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint") })
            .layer(middleware::map_response(json_errors_only))
            // Answers carry secrets and state that changes: no cache keeps them.
            .layer(SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
            .with_state(inner)
    }
}

// ---------------------------------------------------------------- errors

/// A failure as the admin API answers it.
#[derive(Debug)]
pub struct AdminError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl AdminError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> AdminError {
        AdminError { status, code, message: message.into() }
    }
}

impl From<OpError> for AdminError {
    fn from(e: OpError) -> Self {
        let message = e.to_string();
        match e {
            OpError::Invalid(code, _) => AdminError::new(StatusCode::BAD_REQUEST, code, message),
            OpError::NotFound(_) => AdminError::new(StatusCode::NOT_FOUND, "not_found", message),
            OpError::SlugTaken(_) => AdminError::new(StatusCode::CONFLICT, "slug_taken", message),
            OpError::Store(scimd_core::StoreError::Unavailable(outage, why)) => {
                tracing::warn!(%outage, cause = %why, "admin API: database unavailable");
                AdminError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", format!("{outage}; retry shortly"))
            }
            OpError::Store(e) => {
                tracing::error!(error = %e, "admin API: internal error");
                AdminError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal server error")
            }
        }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let body = json!({"status": self.status.as_u16(), "code": self.code, "message": self.message});
        let mut resp = (self.status, axum::Json(body)).into_response();
        match self.status {
            StatusCode::UNAUTHORIZED => {
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"scimd-admin\""));
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        resp
    }
}

/// Replaces any failure that is not already ours (a 405 from routing, …) with one.
async fn json_errors_only(resp: Response) -> Response {
    let status = resp.status();
    let ours = resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || ours {
        return resp;
    }
    let code = match status {
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        _ => "error",
    };
    let allow = resp.headers().get(header::ALLOW).cloned();
    let mut out = AdminError::new(status, code, status.canonical_reason().unwrap_or("error")).into_response();
    if let Some(allow) = allow {
        out.headers_mut().insert(header::ALLOW, allow);
    }
    out
}

type Result<T> = std::result::Result<T, AdminError>;

// ---------------------------------------------------------------- authentication

async fn authenticate(State(auth): State<AdminAuth>, req: Request, next: Next) -> Response {
    let unauthorized = || AdminError::new(StatusCode::UNAUTHORIZED, "unauthorized", "missing or invalid admin token");
    let presented = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(bearer_token);
    let Some(presented) = presented else { return unauthorized().into_response() };
    let now = scimd_proto::value::now();
    match verify_token(auth.tokens.as_ref(), Scope::Admin, presented, &now).await {
        Ok(Some(Verified { info, .. })) => {
            if auth.uses.due(&info.id) {
                let tokens = auth.tokens.clone();
                tokio::spawn(async move {
                    let _ = tokens.touch_token(Scope::Admin, &info.id, &now).await;
                });
            }
            next.run(req).await
        }
        Ok(None) => unauthorized().into_response(),
        Err(e) => AdminError::from(OpError::Store(e)).into_response(),
    }
}

// ---------------------------------------------------------------- bodies

/// A JSON request body (`application/json`), refused with a JSON error when it is not one.
struct JsonBody<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = AdminError;

    async fn from_request(req: Request, state: &S) -> Result<Self> {
        let bad = |msg: String| AdminError::new(StatusCode::BAD_REQUEST, "invalid_request", msg);
        let json =
            req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| {
                ct.split(';').next().is_some_and(|e| e.trim().eq_ignore_ascii_case("application/json"))
            });
        if !json {
            return Err(AdminError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                AdminError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!("bodies are at most {MAX_BODY} bytes"),
                )
            } else {
                bad(format!("could not read the body: {e}"))
            }
        })?;
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| bad(format!("invalid body: {e}")))
    }
}

// ---------------------------------------------------------------- views

#[derive(Serialize)]
struct TenantView {
    slug: String,
    name: String,
    state: TenantState,
    created: String,
    last_request: Option<String>,
    settings: TenantSettings,
    scim_base_url: String,
}

fn tenant_view(dir: &Directory, t: Tenant) -> TenantView {
    TenantView {
        scim_base_url: dir.urls.scim_base(&t.slug),
        slug: t.slug,
        name: t.name,
        state: t.state,
        created: t.created,
        last_request: t.last_request,
        settings: t.settings,
    }
}

#[derive(Serialize)]
struct TokenView {
    id: String,
    name: String,
    created: String,
    expires: Option<String>,
    last_used: Option<String>,
    revoked: Option<String>,
}

impl From<TokenInfo> for TokenView {
    fn from(t: TokenInfo) -> Self {
        TokenView {
            id: t.id,
            name: t.name,
            created: t.created,
            expires: t.expires,
            last_used: t.last_used,
            revoked: t.revoked,
        }
    }
}

/// A token just made: its secret, shown this once.
fn new_token_view(t: NewToken) -> Value {
    let mut v = serde_json::to_value(TokenView::from(t.info)).unwrap_or_default();
    v["secret"] = Value::String(t.secret);
    v
}

fn created(body: Value) -> Response {
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

// ---------------------------------------------------------------- handlers

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateTenant {
    slug: String,
    name: Option<String>,
    #[serde(default)]
    settings: TenantSettings,
}

async fn create_tenant(
    State(inner): St,
    OriginalUri(uri): OriginalUri,
    JsonBody(req): JsonBody<CreateTenant>,
) -> Result<Response> {
    let c = inner.dir.create_tenant(&req.slug, req.name.as_deref(), req.settings).await?;
    let location = format!("{}/{}", uri.path().trim_end_matches('/'), c.tenant.slug);
    let mut body = serde_json::to_value(tenant_view(&inner.dir, c.tenant)).unwrap_or_default();
    body["token"] = new_token_view(c.token);
    let mut resp = created(body);
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

async fn list_tenants(State(inner): St) -> Result<Response> {
    let all: Vec<TenantView> = inner.dir.tenants().await?.into_iter().map(|t| tenant_view(&inner.dir, t)).collect();
    Ok(axum::Json(json!({ "tenants": all })).into_response())
}

async fn get_tenant(State(inner): St, Path(slug): Path<String>) -> Result<Response> {
    let t = inner.dir.tenant(&slug).await?;
    Ok(axum::Json(tenant_view(&inner.dir, t)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateTenant {
    name: Option<String>,
    /// Settings to change: a value sets one, `null` returns it to the server's.
    settings: Option<Map<String, Value>>,
}

async fn update_tenant(
    State(inner): St,
    Path(slug): Path<String>,
    JsonBody(req): JsonBody<UpdateTenant>,
) -> Result<Response> {
    let settings = match req.settings {
        None => None,
        Some(changes) => {
            let current = inner.dir.tenant(&slug).await?.settings;
            let mut merged = match serde_json::to_value(current) {
                Ok(Value::Object(m)) => m,
                _ => Map::new(),
            };
            for (k, v) in changes {
                if v.is_null() {
                    merged.remove(&k);
                } else {
                    merged.insert(k, v);
                }
            }
            Some(serde_json::from_value::<TenantSettings>(Value::Object(merged)).map_err(|e| {
                AdminError::new(StatusCode::BAD_REQUEST, "invalid_settings", format!("invalid settings: {e}"))
            })?)
        }
    };
    let t = inner.dir.update_tenant(&slug, req.name.as_deref(), None, settings.as_ref()).await?;
    Ok(axum::Json(tenant_view(&inner.dir, t)).into_response())
}

async fn set_state(inner: &Inner, slug: &str, state: TenantState) -> Result<Response> {
    let t = inner.dir.update_tenant(slug, None, Some(state), None).await?;
    Ok(axum::Json(tenant_view(&inner.dir, t)).into_response())
}

async fn disable_tenant(State(inner): St, Path(slug): Path<String>) -> Result<Response> {
    set_state(&inner, &slug, TenantState::Disabled).await
}

async fn enable_tenant(State(inner): St, Path(slug): Path<String>) -> Result<Response> {
    set_state(&inner, &slug, TenantState::Active).await
}

async fn delete_tenant(State(inner): St, Path(slug): Path<String>) -> Result<Response> {
    inner.dir.delete_tenant(&slug).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn tenant_stats(State(inner): St, Path(slug): Path<String>) -> Result<Response> {
    let (t, stats) = inner.dir.stats(&slug).await?;
    let mut body = serde_json::to_value(stats).unwrap_or_default();
    body["last_request"] = json!(t.last_request);
    Ok(axum::Json(body).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    name: Option<String>,
    /// A lifetime such as `90d`.
    expires_in: Option<String>,
}

async fn create_token(
    State(inner): St,
    Path(slug): Path<String>,
    JsonBody(req): JsonBody<CreateToken>,
) -> Result<Response> {
    let name = req.name.as_deref().unwrap_or("api");
    let t = inner.dir.create_token(&slug, name, req.expires_in.as_deref()).await?;
    Ok(created(new_token_view(t)))
}

async fn list_tokens(State(inner): St, Path(slug): Path<String>) -> Result<Response> {
    let all: Vec<TokenView> = inner.dir.tokens(&slug).await?.into_iter().map(TokenView::from).collect();
    Ok(axum::Json(json!({ "tokens": all })).into_response())
}

async fn revoke_token(State(inner): St, Path((slug, id)): Path<(String, String)>) -> Result<Response> {
    inner.dir.revoke_token(&slug, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
