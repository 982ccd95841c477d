//! # scimd-axum
//!
//! SCIM 2.0 over HTTP for axum applications. Build a [`ScimService`] from an engine and
//! an authenticator, then nest its router where SCIM should live:
//!
//! ```no_run
//! # async fn demo(engine: std::sync::Arc<scimd_core::Engine>) {
//! use scimd_axum::{ScimConfig, ScimService, auth::DenyAll};
//! let scim = ScimService::new(engine, std::sync::Arc::new(DenyAll), ScimConfig::default());
//! let app: axum::Router = axum::Router::new().nest("/scim/v2", scim.router());
//! # }
//! ```
//!
//! Every failure, including unknown routes, wrong methods, oversized bodies and timeouts,
//! is answered with a SCIM Error body.

pub mod activity;
pub mod auth;
mod deadline;
mod envelope;
pub mod error;
pub mod extract;
mod handlers;
pub mod limit;
pub mod metrics;
pub mod panic;
pub mod unread;

use auth::{AuthError, Authenticator};
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware;
use axum::response::Response;
use axum::routing::{get, post};
use error::{error_response, retry_later};
use extract::ConfiguredBase;
use scimd_core::{Engine, Kind};
use scimd_proto::ScimError;
use scimd_proto::messages::ProviderFeatures;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceBuilder;

/// HTTP-level settings.
#[derive(Debug, Clone)]
pub struct ScimConfig {
    /// The public URL of the SCIM root (e.g. `https://scim.example.com/scim/v2`), used in
    /// `meta.location`, `Location` and `$ref`. When unset, it is derived from each
    /// request's `Host` and the mount path. Under a path with a `{tenant}` parameter
    /// (`/t/{tenant}/scim/v2`), `{tenant}` in it stands for that tenant.
    pub base_url: Option<String>,
    /// Largest accepted request body, in bytes (published as `bulk.maxPayloadSize`).
    pub max_body_bytes: usize,
    /// Time allowed for one request.
    pub request_timeout: Duration,
    /// Published in ServiceProviderConfig.
    pub documentation_uri: Option<String>,
    /// A request rate limit per tenant (a tenant's own setting overrides it); none by
    /// default.
    pub rate_limit: Option<limit::RateLimit>,
    /// The RFC 9967 event URIs the server delivers, published as
    /// `securityEvents.eventUris`; none (and no `securityEvents`) by default.
    pub event_uris: Vec<String>,
}

impl Default for ScimConfig {
    fn default() -> Self {
        ScimConfig {
            base_url: None,
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            documentation_uri: None,
            rate_limit: None,
            event_uris: Vec::new(),
        }
    }
}

struct Inner {
    engine: Arc<Engine>,
    metrics: Arc<metrics::Metrics>,
    activity: Option<Arc<activity::ActivityRecorder>>,
    /// Also bounds how long a streamed answer may take to write.
    request_timeout: Duration,
    auth: Arc<dyn Authenticator>,
    features: ProviderFeatures,
    limiter: limit::Limiter,
}

type State = axum::extract::State<Arc<Inner>>;

/// SCIM endpoints ready to mount.
pub struct ScimService {
    inner: Arc<Inner>,
    config: ScimConfig,
}

impl ScimService {
    pub fn new(engine: Arc<Engine>, auth: Arc<dyn Authenticator>, config: ScimConfig) -> ScimService {
        let settings = engine.settings();
        let features = ProviderFeatures {
            documentation_uri: config.documentation_uri.clone(),
            max_results: settings.max_page_size,
            max_payload_bytes: config.max_body_bytes as u64,
            bulk: (settings.bulk_max_operations > 0)
                .then_some((settings.bulk_max_operations, config.max_body_bytes as u64)),
            pagination: Some((settings.default_page_size, settings.cursor_timeout.as_secs())),
            etag: true,
            sort: true,
            event_uris: config.event_uris.clone(),
            auth_schemes: vec![(
                "oauthbearertoken".into(),
                "OAuth Bearer Token".into(),
                "Authentication with a bearer token in the Authorization header".into(),
            )],
        };
        let limiter = limit::Limiter::new(config.rate_limit);
        let request_timeout = config.request_timeout;
        let metrics = Arc::new(metrics::Metrics::default());
        ScimService {
            inner: Arc::new(Inner { engine, metrics, activity: None, request_timeout, auth, features, limiter }),
            config,
        }
    }

    /// The service with the library's defaults: `DenyAll` (nobody gets in until the
    /// application chooses an authenticator) and `ScimConfig::default()`.
    pub fn from_engine(engine: Arc<Engine>) -> ScimService {
        ScimService::new(engine, Arc::new(auth::DenyAll), ScimConfig::default())
    }

    /// The metrics of every router of this service (`Metrics::render` for Prometheus).
    pub fn metrics(&self) -> Arc<metrics::Metrics> {
        self.inner.metrics.clone()
    }

    /// Counts into `metrics` instead of a set of its own (one set for several services).
    pub fn with_metrics(mut self, metrics: Arc<metrics::Metrics>) -> ScimService {
        let inner = Arc::get_mut(&mut self.inner).expect("not shared before the router is built");
        inner.metrics = metrics;
        self
    }

    /// Records every authenticated request in the activity log, through `recorder`.
    pub fn with_activity(mut self, recorder: Arc<activity::ActivityRecorder>) -> ScimService {
        let inner = Arc::get_mut(&mut self.inner).expect("not shared before the router is built");
        inner.activity = Some(recorder);
        self
    }

    /// Replaces the authenticator.
    pub fn with_authenticator(mut self, auth: Arc<dyn Authenticator>) -> ScimService {
        let inner = Arc::get_mut(&mut self.inner).expect("not shared before the router is built");
        inner.auth = auth;
        self
    }

    /// The SCIM router, to be nested under a prefix such as `/scim/v2`, or a prefix with a
    /// `{tenant}` parameter (`/t/{tenant}/scim/v2`): there a principal of another tenant gets
    /// the same 401 as a wrong token.
    pub fn router(self) -> Router {
        self.router_at(self.config.base_url.clone())
    }

    /// The router, with its own public base URL (see `ScimConfig::base_url`); routers of one
    /// service share its engine, authenticator and rate limits.
    pub fn router_at(&self, base_url: Option<String>) -> Router {
        let state = self.inner.clone();
        // The types served: their routes, and what the metrics and the activity log name a
        // request's resource type by.
        let kinds: Arc<[Kind]> = self.inner.engine.kinds().into();
        Router::new()
            .route("/ServiceProviderConfig", get(handlers::service_provider_config))
            .route("/ResourceTypes", get(handlers::resource_types))
            .route("/ResourceTypes/{id}", get(handlers::resource_type))
            .route("/Schemas", get(handlers::schemas))
            .route("/Schemas/{id}", get(handlers::schema))
            .route("/.search", post(|s, c, body| handlers::search(None, s, c, body)))
            .route("/Bulk", post(handlers::bulk))
            .route(
                "/Me",
                get(handlers::me_get)
                    .put(handlers::me_replace)
                    .patch(handlers::me_patch)
                    .delete(handlers::me_delete)
                    .post(handlers::me_create),
            )
            .merge(kinds.iter().fold(Router::new(), |r, kind| r.merge(resource_routes(*kind))))
            .fallback(|| async { error_response(&ScimError::not_found("no such endpoint")) })
            // One stack, outermost first. Given as one layer, it wraps each route once; a
            // chain of `.layer` calls would box (and clone, per request) every layer apart.
            // The body limit only sets what the body extractors allow.
            .layer(ServiceBuilder::new().layer(DefaultBodyLimit::max(self.config.max_body_bytes)).layer(
                middleware::from_fn_with_state(
                    Arc::new(envelope::Envelope {
                        metrics: self.inner.metrics.clone(),
                        kinds: kinds.clone(),
                        limit: self.config.request_timeout,
                        base: ConfiguredBase(base_url.map(|b| b.trim_end_matches('/').to_string())),
                        gate: Some(envelope::Gate {
                            service: state.clone(),
                            recording: (self.inner.activity.clone(), self.config.max_body_bytes, kinds),
                        }),
                    }),
                    envelope::wrap,
                ),
            ))
            .with_state(state)
    }
}

fn resource_routes(kind: Kind) -> Router<Arc<Inner>> {
    let base = format!("/{}", kind.endpoint());
    Router::new()
        .route(
            &base,
            get(move |s, c, q| handlers::list_resources(kind, s, c, q))
                .post(move |s, c, q, body| handlers::create(kind, s, c, q, body)),
        )
        .route(&format!("{base}/.search"), post(move |s, c, body| handlers::search(Some(kind), s, c, body)))
        .route(
            &format!("{base}/{{id}}"),
            get(move |s, c, id, q| handlers::get_one(kind, s, c, id, q))
                .put(move |s, c, id, m, q, body| handlers::replace(kind, s, c, id, m, q, body))
                .patch(move |s, c, id, m, q, body| handlers::patch(kind, s, c, id, m, q, body))
                .delete(move |s, c, id, m| handlers::delete(kind, s, c, id, m)),
        )
}

/// Runs the authenticator, and `inner` with the principal among the request's extensions
/// (what the handlers take it from) if the caller is let in.
async fn admit<F, Fut>(service: &Inner, req: Request, inner: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let (mut parts, body) = req.into_parts();
    let url_tenant = extract::url_tenant(&mut parts).await;
    match service.auth.authenticate(&parts).await {
        // A token of another tenant is answered as a wrong one: nothing says the URL's
        // tenant exists.
        Ok(principal) if url_tenant.as_ref().is_some_and(|t| *t != principal.tenant) => refused(),
        Ok(principal) => {
            let s = &principal.settings;
            let own = s.rate_limit_per_second.map(|per_second| limit::RateLimit {
                per_second,
                burst: s.rate_limit_burst.unwrap_or(limit::RateLimit::DEFAULT_BURST),
            });
            let answered_for = metrics::AnsweredFor(principal.tenant.clone());
            let mut resp = match service.limiter.check(&principal.tenant, own) {
                Err(wait) => {
                    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                    retry_later(&ScimError::new(429, None, "too many requests; retry later"), secs.max(1))
                }
                Ok(()) => {
                    parts.extensions.insert(principal);
                    inner(Request::from_parts(parts, body)).await
                }
            };
            resp.extensions_mut().insert(answered_for);
            resp
        }
        Err(AuthError::Missing | AuthError::Invalid) => refused(),
        Err(AuthError::Forbidden(why)) => error_response(&ScimError::new(403, None, why)),
        Err(AuthError::Unavailable(why)) => {
            tracing::warn!(cause = %why, "authentication backend unavailable");
            error::unavailable_response(scimd_core::Outage::Unreachable)
        }
    }
}

/// The 401 of a missing, wrong, expired or revoked token, or one of another tenant.
fn refused() -> Response {
    let mut resp = error_response(&ScimError::new(401, None, "missing or invalid bearer token"));
    resp.extensions_mut().insert(metrics::AuthFailed);
    resp
}
