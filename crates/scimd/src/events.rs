//! Change events in the server: the push worker and the pruning of old events, the poll and
//! JWKS endpoints, and the admin API's streams.

use crate::config::Config;
use crate::server::{Backend, ScimUrls};
use axum::Router;
use scimd_events::keys::KeyRing;
use scimd_events::manage::Streams;
use scimd_events::poll::Poller;
use scimd_events::push::{PushSettings, Pusher};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often events older than the retention are removed.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Everything events need, built once per process.
#[derive(Clone)]
pub struct Events {
    backend: Backend,
    keys: Arc<KeyRing>,
    /// The SETs' `iss`.
    issuer: String,
    /// The server's public root, for poll URLs.
    root: String,
}

impl Events {
    pub fn new(config: &Config, backend: &Backend, urls: &ScimUrls) -> Events {
        Events {
            backend: backend.clone(),
            keys: Arc::new(KeyRing::new(backend.keys.clone())),
            issuer: config.event_issuer.clone().unwrap_or_else(|| urls.0.root.clone()),
            root: urls.0.root.clone(),
        }
    }

    /// `POST /events/streams/{id}/poll` and `GET /events/jwks.json`.
    pub fn endpoints(&self) -> Router {
        let poller = Poller {
            streams: self.backend.streams.clone(),
            log: self.backend.log.clone(),
            keys: self.keys.clone(),
            issuer: self.issuer.clone(),
            wake: self.backend.changes.clone(),
        };
        scimd_events::http::router(poller, self.keys.clone())
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

    /// Starts delivering push streams and pruning old events, until `stop`.
    pub fn spawn(&self, config: &Config, stop: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
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
            self.keys.clone(),
            settings,
            self.backend.changes.clone(),
        ));
        let push = tokio::spawn(pusher.run(stop.clone()));
        let prune = tokio::spawn(prune(self.backend.clone(), config.event_retention_days, stop));
        vec![push, prune]
    }
}

/// Removes, every hour, the events older than the retention that every stream has had.
async fn prune(backend: Backend, days: u64, mut stop: watch::Receiver<bool>) {
    loop {
        let keep = time::Duration::days(days.min(36_500) as i64);
        let before = scimd_proto::value::format_datetime(time::OffsetDateTime::now_utc() - keep);
        match backend.log.prune_events(&before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, before = %before, "removed old change events"),
            Err(e) => tracing::warn!(error = %e, "could not remove old change events"),
        }
        tokio::select! {
            _ = tokio::time::sleep(PRUNE_EVERY) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
