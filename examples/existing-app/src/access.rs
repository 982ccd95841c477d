//! The application acting on SCIM's change events, in process: when an identity provider
//! deactivates or deletes a user of an organisation, the application ends that user's access.
//! It follows the durable event log from where it stopped (`EventTail`), woken by the engine
//! after every write, and records each revocation together with its position in the log, in
//! one transaction of its own database.

use crate::Db;
use anyhow::Result;
use scimd_core::events::{EventLog, LoggedEvent, payload};
use scimd_events::feed::EventTail;
use serde_json::{Value, json};
use sqlx::Row;
use std::sync::Arc;
use tokio::sync::Notify;

/// Follows one organisation's events for as long as the application runs.
pub fn follow(db: Db, log: Arc<dyn EventLog>, changes: Arc<Notify>, organization: i64) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = run(&db, log.clone(), changes.clone(), organization).await {
                tracing::warn!(error = %e, organization, "following SCIM events failed; again in a second");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    });
}

async fn run(db: &Db, log: Arc<dyn EventLog>, changes: Arc<Notify>, organization: i64) -> Result<()> {
    let after = db.event_cursor(organization).await?;
    let mut tail = EventTail::new(log, &organization.to_string(), after, changes);
    loop {
        let event = tail.next().await?;
        db.handle_event(organization, &event).await?;
    }
}

/// Why an event ends a user's access, if it does.
fn revocation(event: &LoggedEvent) -> Option<&'static str> {
    if event.resource_type != "User" {
        return None;
    }
    match (event.payload[payload::OP].as_str(), event.payload[payload::ACTIVATION].as_str()) {
        (Some("delete"), _) => Some("deleted"),
        (_, Some("deactivate")) => Some("deactivated"),
        _ => None,
    }
}

impl Db {
    /// The last event handled for an organisation (0: none yet).
    pub async fn event_cursor(&self, organization: i64) -> Result<i64> {
        const SQL: &str = "SELECT seq FROM scim_event_cursor WHERE organization_id = $1";
        let seq = match self {
            Db::Sqlite(p) => sqlx::query(SQL).bind(organization).fetch_optional(p).await?.map(|r| r.get(0)),
            Db::Postgres(p) => sqlx::query(SQL).bind(organization as i32).fetch_optional(p).await?.map(|r| r.get(0)),
        };
        Ok(seq.unwrap_or(0))
    }

    /// Acts on one event and moves the cursor past it, in one transaction.
    async fn handle_event(&self, organization: i64, event: &LoggedEvent) -> Result<()> {
        const REVOKE: &str =
            "INSERT INTO access_revocations (organization_id, user_id, reason, event_seq) VALUES ($1, $2, $3, $4)";
        const CURSOR: &str = "INSERT INTO scim_event_cursor (organization_id, seq) VALUES ($1, $2) \
             ON CONFLICT (organization_id) DO UPDATE SET seq = excluded.seq";
        let why = revocation(event);
        match self {
            Db::Sqlite(p) => {
                let mut tx = p.begin().await?;
                if let Some(why) = why {
                    let q = sqlx::query(REVOKE).bind(organization).bind(&event.resource_id).bind(why).bind(event.seq);
                    q.execute(&mut *tx).await?;
                }
                sqlx::query(CURSOR).bind(organization).bind(event.seq).execute(&mut *tx).await?;
                tx.commit().await?;
            }
            Db::Postgres(p) => {
                let org = organization as i32;
                let mut tx = p.begin().await?;
                if let Some(why) = why {
                    let q = sqlx::query(REVOKE).bind(org).bind(&event.resource_id).bind(why).bind(event.seq);
                    q.execute(&mut *tx).await?;
                }
                sqlx::query(CURSOR).bind(org).bind(event.seq).execute(&mut *tx).await?;
                tx.commit().await?;
            }
        }
        if let Some(why) = why {
            tracing::info!(organization, user = %event.resource_id, why, "access ended");
        }
        Ok(())
    }

    /// Every revocation, oldest first.
    pub async fn revocations(&self) -> Result<Vec<Value>> {
        const SQL: &str = "SELECT CAST(organization_id AS BIGINT), user_id, reason, event_seq FROM access_revocations \
             ORDER BY event_seq";
        fn to_json<R: Row>(r: &R) -> Value
        where
            for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
            for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
            usize: sqlx::ColumnIndex<R>,
        {
            json!({"organization_id": r.get::<i64, _>(0), "user_id": r.get::<String, _>(1),
                   "reason": r.get::<String, _>(2), "event_seq": r.get::<i64, _>(3)})
        }
        Ok(match self {
            Db::Sqlite(p) => sqlx::query(SQL).fetch_all(p).await?.iter().map(to_json).collect(),
            Db::Postgres(p) => sqlx::query(SQL).fetch_all(p).await?.iter().map(to_json).collect(),
        })
    }
}
