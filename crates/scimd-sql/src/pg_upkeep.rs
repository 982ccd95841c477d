//! PostgreSQL housekeeping that each scimd process does in the background, every few
//! seconds: planner statistics of scimd's tables once they have changed by half (and,
//! where autovacuum is off, vacuuming), and the folding of the live counts' rows. Several
//! processes on one database may each do it: every step is safe to run concurrently.

use crate::pg_lease::Lender;
use sqlx::PgConnection;
use std::sync::Arc;
use std::time::Duration;

/// scimd's own tables, whose statistics this keeps.
const OWN_TABLES: &str = "'scim_users', 'scim_groups', 'scim_members', 'scim_user_emails', 'scim_live_counts', 'scim_resources', 'scim_unique_values', 'scimd_events'";
/// How often it looks.
const EVERY: Duration = Duration::from_secs(5);
/// Rows of `scim_live_counts` beyond one per tenant, type and stretch that are worth folding.
const FOLD_AFTER: i64 = 256;

pub(crate) async fn run(lender: Arc<Lender>, mut stop: tokio::sync::oneshot::Receiver<()>) {
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
        if lender.is_closed() {
            return;
        }
        let mut conn = match lender.pooled().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::debug!(error = %e, "no connection for table upkeep");
                continue;
            }
        };
        if let Err(e) = keep_tables(&mut conn).await {
            tracing::debug!(error = %e, "could not refresh table statistics");
        }
        if let Err(e) = fold_counts(&mut conn).await {
            tracing::debug!(error = %e, "could not fold the live counts");
        }
    }
}

/// Re-analyses scimd's tables once they have changed by half since their last analysis.
///
/// Without statistics PostgreSQL's planner takes a table for empty and may answer a lookup
/// by id by walking every row of the tenant. That is the state of every table during an
/// initial sync (analysed empty at start; autovacuum, where it is on, first looks a minute
/// later), the very moment an identity provider pushes tens of thousands of users. With
/// growth by half as the trigger, a table of any size is analysed a few times in its life.
///
/// Where autovacuum is off, this vacuums too, at about the thresholds autovacuum would use
/// (a tenth of the rows dead, or a fifth of them inserted since): nothing else would, and
/// without it dead rows of updates pile up and no page stays marked all-visible, so that a
/// list's walk of its index reads every row it skips (10 ms instead of 1 for a page 5,000
/// users deep) and the planner turns to reading the whole table.
async fn keep_tables(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    let autovacuum: String = sqlx::query_scalar("SELECT current_setting('autovacuum')").fetch_one(&mut *conn).await?;
    let vacuum = if autovacuum == "off" {
        "s.n_dead_tup > 50 + 0.1 * GREATEST(c.reltuples, 0) OR s.n_ins_since_vacuum > 1000 + 0.2 * GREATEST(c.reltuples, 0)"
    } else {
        "false"
    };
    let due = format!(
        "SELECT s.relname::text, s.n_mod_since_analyze > 500 + 0.5 * GREATEST(c.reltuples, 0), {vacuum} \
         FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid \
         WHERE s.schemaname = current_schema() AND s.relname IN ({OWN_TABLES})"
    );
    let tables: Vec<(String, bool, bool)> = sqlx::query_as(sqlx::AssertSqlSafe(due)).fetch_all(&mut *conn).await?;
    for (table, analyze, vacuum) in tables {
        let how = match (vacuum, analyze) {
            (true, true) => "VACUUM (ANALYZE)",
            (true, false) => "VACUUM",
            (false, true) => "ANALYZE",
            (false, false) => continue,
        };
        // One of OWN_TABLES, as the query above only returns those.
        match sqlx::query(sqlx::AssertSqlSafe(format!("{how} {table}"))).execute(&mut *conn).await {
            Ok(_) => tracing::debug!(table, how, "table upkeep"),
            Err(e) => tracing::warn!(table, error = %e, "{how} failed"),
        }
    }
    Ok(())
}

/// Folds the rows of `scim_live_counts` into one per tenant, type and stretch (see its
/// migrations).
///
/// One statement: a reader's snapshot sees the rows before it or after it, whose sums are
/// the same. Rows written meanwhile are not in its snapshot and stay; two processes folding
/// at once each fold only the rows they managed to delete. Only the stretches with more than
/// one row are rewritten: a sync adds users to the last few stretches, and rewriting the
/// other thousand of a million-user tenant every few seconds would only make dead rows.
async fn fold_counts(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    let extra: i64 =
        sqlx::query_scalar("SELECT COUNT(*) - COUNT(DISTINCT (tenant, kind, stretch)) FROM scim_live_counts")
            .fetch_one(&mut *conn)
            .await?;
    if extra < FOLD_AFTER {
        return Ok(());
    }
    sqlx::query(
        "WITH busy AS (SELECT tenant, kind, stretch FROM scim_live_counts \
                       GROUP BY tenant, kind, stretch HAVING COUNT(*) > 1), \
              folded AS (DELETE FROM scim_live_counts c USING busy b \
                         WHERE c.tenant = b.tenant AND c.kind = b.kind AND c.stretch = b.stretch \
                         RETURNING c.tenant, c.kind, c.stretch, c.n) \
         INSERT INTO scim_live_counts (tenant, kind, stretch, n) \
         SELECT tenant, kind, stretch, SUM(n) FROM folded GROUP BY tenant, kind, stretch HAVING SUM(n) <> 0",
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}
