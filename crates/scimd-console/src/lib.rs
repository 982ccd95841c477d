//! # scimd-console
//!
//! The operator's console: plain server-rendered HTML at `/admin` for a person signed in
//! with an admin token. It shows the tenants with their counts and error rates, a tenant's
//! SCIM tokens, settings and event streams, its users and groups, and the provisioning
//! activity log (what the identity provider sent, and what it was answered).
//!
//! Security: a session is a token of its own (`Scope::Console`, stored as a hash) kept in an
//! `HttpOnly`, `SameSite=Strict` cookie (`Secure` when the server's public URL is https); it
//! ends at sign-out, at its expiry, or when the admin token that opened it is revoked. Every
//! form carries a CSRF token bound to the session; every page is sent with a strict
//! Content-Security-Policy, and its assets are built into the binary.
//!
//! ```no_run
//! # fn demo(parts: scimd_console::ConsoleParts) {
//! let app: axum::Router = axum::Router::new().merge(scimd_console::Console::new(parts).router());
//! # }
//! ```

mod activity;
mod error;
mod page;
mod resources;
mod session;
mod tenants;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::middleware;
use axum::routing::{get, post};
use scimd_admin::ops::Directory;
use scimd_core::Engine;
use scimd_core::activity::ActivityLog;
use scimd_events::manage::Streams;
use std::sync::Arc;
use std::time::Duration;
use tower_http::set_header::SetResponseHeaderLayer;

/// Where the console is served.
pub const ROOT: &str = "/admin";

/// No inline script or style, nothing from elsewhere, no framing, forms to this server only.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
    form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the console reads and acts on.
#[derive(Clone)]
pub struct ConsoleParts {
    /// Tenants and their tokens (the admin API's operations).
    pub dir: Directory,
    /// The SCIM engine: users and groups as the SCIM endpoints show them.
    pub engine: Arc<Engine>,
    /// Each tenant's event streams and the event log.
    pub streams: Streams,
    /// The activity log, and whether requests are being recorded in it.
    pub activity: Arc<dyn ActivityLog>,
    pub recording: bool,
    /// How long a session lasts.
    pub session_lifetime: Duration,
}

pub(crate) struct Inner {
    pub parts: ConsoleParts,
    /// Cookies only over https: the server's public URL says whether it is served so.
    pub secure: bool,
}

type St = axum::extract::State<Arc<Inner>>;

/// The console, ready to merge into the server's router (its routes are under `/admin`).
pub struct Console {
    parts: ConsoleParts,
}

impl Console {
    pub fn new(parts: ConsoleParts) -> Console {
        Console { parts }
    }

    pub fn router(self) -> Router {
        let secure = self.parts.dir.urls.root.starts_with("https://");
        let inner = Arc::new(Inner { parts: self.parts, secure });
        let signed_in = Router::new()
            .route(ROOT, get(|| async { page::see_other(&format!("{ROOT}/tenants")) }))
            .route("/admin/sign-out", post(session::sign_out))
            .merge(tenants::routes())
            .merge(resources::routes())
            .merge(activity::routes())
            .route_layer(middleware::from_fn_with_state(inner.clone(), session::guard));
        Router::new()
            .route("/admin/sign-in", get(session::sign_in_form).post(session::sign_in))
            .route("/admin/assets/console.css", get(page::stylesheet))
            .route("/admin/assets/console.js", get(page::script))
            .route("/admin/assets/icon.svg", get(page::icon))
            .merge(signed_in)
            .layer(SetResponseHeaderLayer::overriding(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)))
            .layer(SetResponseHeaderLayer::overriding(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ))
            .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
            .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
            // Pages show secrets once and state that changes: no cache keeps them. (The
            // assets set their own.)
            .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .with_state(inner)
    }
}
