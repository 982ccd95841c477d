//! What is kept how long: change events past `event_retention_days` (once every stream of
//! their tenant has had them), every hour; each tenant's activity log past its newest
//! `activity_retention_requests` or `activity_retention_days`, every minute (so that a busy
//! tenant's history never grows far past its bound: the log's reads filter within it); and
//! every minute, what requests under way at a tenant's deletion wrote after it
//! (`TenantStore::sweep_deleted`), once none of them can still be running.

use crate::config::Config;
use crate::server::Backend;
use scimd_core::StoreError;
use scimd_proto::value::{days_ago, seconds_ago};
use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

const EVENTS_EVERY: Duration = Duration::from_secs(3600);
const ACTIVITY_EVERY: Duration = Duration::from_secs(60);
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Beyond the longest a request may take: a commit whose answer was lost is looked up for a
/// few seconds more, and another replica honours a deletion within a second.
const SWEEP_MARGIN_SECS: u64 = 10;

/// Starts the pruning jobs, until `stop`.
pub fn spawn(config: &Config, backend: &Backend, stop: &watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    let (log, days) = (backend.log.clone(), config.event_retention_days);
    let events = repeat(EVENTS_EVERY, stop.clone(), "old change events", move || {
        let log = log.clone();
        async move { log.prune_events(&days_ago(days)).await }
    });
    let (log, keep, days) =
        (backend.activity.clone(), config.activity_retention_requests, config.activity_retention_days);
    let activity = repeat(ACTIVITY_EVERY, stop.clone(), "old activity records", move || {
        let log = log.clone();
        async move { log.prune_activity(keep, &days_ago(days)).await }
    });
    let tenants = backend.tenants.clone();
    // A write under way at the deletion ends by `request_timeout_secs`; on PostgreSQL, one
    // of a process that hung mid-write is ended after `pg_idle_in_transaction_timeout_secs`.
    let mut longest = config.request_timeout_secs;
    if crate::config::is_postgres_url(&config.database_url) {
        longest = longest.max(config.pg_idle_in_transaction_timeout_secs);
    }
    let longest = longest + SWEEP_MARGIN_SECS;
    let leftovers = repeat(SWEEP_EVERY, stop.clone(), "deleted tenants' leftovers", move || {
        let tenants = tenants.clone();
        async move { tenants.sweep_deleted(&seconds_ago(longest)).await }
    });
    vec![events, activity, leftovers]
}

/// Runs `job` now and then every `every` until `stop`, logging what it removed.
fn repeat<F, Fut>(every: Duration, mut stop: watch::Receiver<bool>, what: &'static str, job: F) -> JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = Result<u64, StoreError>> + Send,
{
    tokio::spawn(async move {
        loop {
            match job().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "removed {what}"),
                Err(e) => tracing::warn!(error = %e, "could not remove {what}"),
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    })
}
