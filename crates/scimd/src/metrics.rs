//! `GET /metrics`: Prometheus metrics, opened by an admin token (they name tenants and
//! streams). The SCIM endpoints' own (scimd-axum); the database connections' use (pool size,
//! in use, waits; SQLite group commits); and each event stream's state, backlog and delivery
//! lag, read from the database at each scrape.

use crate::server::Backend;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use scimd_admin::AdminAuth;
use scimd_core::StoreError;
use scimd_core::stats::{DbStats, HistogramSnapshot, PoolUse};
use scimd_core::streams::StreamState;
use std::fmt::Write as _;

/// The route, to be merged where the admin API is served, behind its token check.
pub fn router(backend: &Backend, auth: &AdminAuth) -> Router {
    auth.protect(Router::new().route("/metrics", axum::routing::get(scrape)).with_state(backend.clone()))
}

async fn scrape(State(backend): State<Backend>) -> Response {
    let mut out = String::new();
    backend.metrics.render(&mut out);
    database(&backend.store.db_stats(), &mut out);
    if let Err(e) = streams(&backend, &mut out).await {
        return unavailable(&e);
    }
    let mut resp = out.into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    resp
}

fn histogram(out: &mut String, name: &str, labels: &str, h: &HistogramSnapshot) {
    let sep = if labels.is_empty() { "" } else { "," };
    for (bound, n) in &h.buckets {
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {n}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", h.count);
    let braced = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
    let _ = writeln!(out, "{name}_sum{braced} {}", h.sum);
    let _ = writeln!(out, "{name}_count{braced} {}", h.count);
}

/// A gauge of each pool: name, help, value.
type Gauge = (&'static str, &'static str, fn(&PoolUse) -> u64);

/// The connection pools: size, in use, most allowed, waits; SQLite's group commits.
fn database(stats: &DbStats, out: &mut String) {
    let gauges: [Gauge; 3] = [
        ("scimd_db_connections", "Database connections open, by pool.", |p: &PoolUse| p.size),
        ("scimd_db_connections_in_use", "Database connections in use by a request now, by pool.", |p: &PoolUse| {
            p.in_use
        }),
        ("scimd_db_connections_max", "The most connections a pool opens.", |p: &PoolUse| p.max),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for p in &stats.pools {
            let _ = writeln!(out, "{name}{{pool=\"{}\"}} {}", p.pool, value(p));
        }
    }
    out.push_str("# HELP scimd_db_wait_seconds Time from asking for a database connection to having it (PostgreSQL: with the transaction's BEGIN).\n");
    out.push_str("# TYPE scimd_db_wait_seconds histogram\n");
    for p in &stats.pools {
        histogram(out, "scimd_db_wait_seconds", &format!("pool=\"{}\"", p.pool), &p.wait);
    }
    if !stats.replicas.is_empty() {
        out.push_str("# HELP scimd_db_replica_lag_seconds How far a read replica is known to be behind the primary (absent while it does not answer).\n");
        out.push_str("# TYPE scimd_db_replica_lag_seconds gauge\n");
        for r in &stats.replicas {
            if let Some(lag) = r.lag_seconds {
                let _ = writeln!(out, "scimd_db_replica_lag_seconds{{replica=\"{}\"}} {lag}", r.replica);
            }
        }
        out.push_str("# HELP scimd_db_replica_reads_total Reads a replica served, and reads it failed that the primary then served.\n");
        out.push_str("# TYPE scimd_db_replica_reads_total counter\n");
        for r in &stats.replicas {
            let _ = writeln!(
                out,
                "scimd_db_replica_reads_total{{replica=\"{}\",outcome=\"served\"}} {}",
                r.replica, r.reads
            );
            let _ = writeln!(
                out,
                "scimd_db_replica_reads_total{{replica=\"{}\",outcome=\"fell_back\"}} {}",
                r.replica, r.fallbacks
            );
        }
    }
    if !stats.conflicts.is_empty() {
        out.push_str("# HELP scimd_db_conflicts_total Write transactions that committed nothing and ran again (up to 4 tries, then a 503), by cause: deadlock, serialization, locked (SQLite), changed (rows changed under a delete), interrupted (connection lost before the commit).\n");
        out.push_str("# TYPE scimd_db_conflicts_total counter\n");
        for (cause, n) in &stats.conflicts {
            let _ = writeln!(out, "scimd_db_conflicts_total{{cause=\"{cause}\"}} {n}");
        }
    }
    if let Some(groups) = &stats.group_commit {
        out.push_str(
            "# HELP scimd_sqlite_group_commit_writes Writes committed together by one SQLite commit (group commit).\n",
        );
        out.push_str("# TYPE scimd_sqlite_group_commit_writes histogram\n");
        histogram(out, "scimd_sqlite_group_commit_writes", "", groups);
    }
}

fn unavailable(e: &StoreError) -> Response {
    tracing::warn!(error = %e, "metrics: database unavailable");
    (StatusCode::SERVICE_UNAVAILABLE, "the database is unavailable\n").into_response()
}

/// Each stream's state (1 for its current one), backlog, and how long its oldest event not
/// yet delivered has waited.
async fn streams(backend: &Backend, out: &mut String) -> Result<(), StoreError> {
    let now = time::OffsetDateTime::now_utc();
    let (mut state, mut backlog, mut lag) = (String::new(), String::new(), String::new());
    for tenant in backend.tenants.tenants().await? {
        for s in backend.streams.streams(&tenant.slug).await? {
            let labels = format!("tenant=\"{}\",stream=\"{}\"", tenant.slug, s.id);
            for st in [StreamState::Active, StreamState::Paused, StreamState::Failing] {
                let on = u8::from(s.state == st);
                let _ = writeln!(state, "scimd_event_stream_state{{{labels},state=\"{}\"}} {on}", st.as_str());
            }
            let n = backend.log.count_after(&tenant.slug, s.cursor).await?;
            let _ = writeln!(backlog, "scimd_event_stream_backlog{{{labels}}} {n}");
            let oldest = backend.log.events_after(&tenant.slug, s.cursor, 1).await?;
            let waited = oldest
                .first()
                .and_then(|e| time::OffsetDateTime::parse(&e.time, &time::format_description::well_known::Rfc3339).ok())
                .map(|t| (now - t).as_seconds_f64().max(0.0))
                .unwrap_or(0.0);
            let _ = writeln!(lag, "scimd_event_stream_lag_seconds{{{labels}}} {waited}");
        }
    }
    out.push_str("# HELP scimd_event_stream_state An event stream's state: 1 for the one it is in.\n");
    out.push_str("# TYPE scimd_event_stream_state gauge\n");
    out.push_str(&state);
    out.push_str(
        "# HELP scimd_event_stream_backlog Events a stream has still to deliver (or its receiver to acknowledge).\n",
    );
    out.push_str("# TYPE scimd_event_stream_backlog gauge\n");
    out.push_str(&backlog);
    out.push_str("# HELP scimd_event_stream_lag_seconds How long the oldest event a stream has still to deliver has waited (0: none).\n");
    out.push_str("# TYPE scimd_event_stream_lag_seconds gauge\n");
    out.push_str(&lag);
    Ok(())
}
