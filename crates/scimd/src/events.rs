//! Change events in the server: the push worker, the poll and JWKS endpoints, and the admin
//! API's streams.

use crate::config::Config;
use crate::server::{Backend, ScimUrls};
use axum::Router;
use scimd_events::manage::Streams;
use scimd_events::poll::Poller;
use scimd_events::push::{PushSettings, Pusher};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the parts of events need: the backend, and names the configuration gives.
#[derive(Clone)]
pub struct Events {
    backend: Backend,
    /// The SETs' `iss`.
    issuer: String,
    /// The server's public root, for poll URLs.
    root: String,
}

impl Events {
    pub fn new(config: &Config, backend: &Backend, urls: &ScimUrls) -> Events {
        Events {
            backend: backend.clone(),
            issuer: config.event_issuer.clone().unwrap_or_else(|| urls.0.root.clone()),
            root: urls.0.root.clone(),
        }
    }

    /// `POST /events/streams/{id}/poll` and `GET /events/jwks.json`.
    pub fn endpoints(&self) -> Router {
        let poller = Poller {
            streams: self.backend.streams.clone(),
            log: self.backend.log.clone(),
            keys: self.backend.keys.clone(),
            issuer: self.issuer.clone(),
            wake: self.backend.changes.clone(),
        };
        scimd_events::http::router(poller, self.backend.keys.clone())
    }

    /// Stream management, for the admin API and the command line.
    pub fn streams(&self) -> Streams {
        Streams {
            store: self.backend.streams.clone(),
            log: self.backend.log.clone(),
            tenants: self.backend.tenants.clone(),
            root: self.root.clone(),
        }
    }

    /// Starts delivering push streams, until `stop`.
    pub fn spawn(&self, config: &Config, stop: watch::Receiver<bool>) -> JoinHandle<()> {
        let settings = PushSettings {
            issuer: self.issuer.clone(),
            retry_window: Duration::from_secs_f64(config.event_retry_hours * 3600.0),
            timeout: Duration::from_secs(config.event_push_timeout_secs),
            lease: Duration::from_secs(config.event_lease_secs),
            ..PushSettings::default()
        };
        let pusher = Arc::new(Pusher::new(
            self.backend.streams.clone(),
            self.backend.log.clone(),
            self.backend.keys.clone(),
            settings,
            self.backend.changes.clone(),
        ));
        tokio::spawn(pusher.run(stop))
    }
}
