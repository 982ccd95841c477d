//! The activity log's upkeep: every five minutes, each tenant's history is cut to its
//! newest `activity_retention_requests`, none older than `activity_retention_days`.

use crate::config::Config;
use crate::server::Backend;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

const PRUNE_EVERY: Duration = Duration::from_secs(300);

pub fn spawn_pruning(config: &Config, backend: &Backend, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    let (log, keep, days) =
        (backend.activity.clone(), config.activity_retention_requests, config.activity_retention_days.min(36_500));
    tokio::spawn(async move {
        loop {
            let before = scimd_proto::value::format_datetime(
                time::OffsetDateTime::now_utc() - time::Duration::days(days as i64),
            );
            match log.prune_activity(keep, &before).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(records = n, "trimmed the activity log"),
                Err(e) => tracing::warn!(error = %e, "could not trim the activity log"),
            }
            tokio::select! {
                _ = tokio::time::sleep(PRUNE_EVERY) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    })
}
