//! Event streams in SQL (`scimd_streams`, `scimd_stream_acks`), and the leases that let one
//! process at a time push a stream's events.

use crate::conn::{DbError, Row};
use crate::events;
use crate::sql::{Bind, Dialect, Sql};
use crate::store::{Pools, SqlStore, sql};
use async_trait::async_trait;
use scimd_core::store::StoreError;
use scimd_core::streams::{Alg, Delivery, DeliveryState, Failure, Format, KeyStore, Stream, StreamState, StreamStore};

type Result<T> = std::result::Result<T, StoreError>;

const COLUMNS: &str = "s.id, s.tenant, s.name, s.delivery, s.endpoint, s.auth_header, s.audience, s.format, \
    s.event_types, s.alg, s.secret, s.state, s.cursor, s.created, s.delivered, s.attempts, s.failing_since, \
    s.next_attempt, s.last_error";

fn decode(r: &Row) -> Result<Stream> {
    let corrupt =
        |what: &str| StoreError::Backend(format!("stream {}: corrupt {what}", r.opt_text(0).unwrap_or_default()));
    Ok(Stream {
        id: r.text(0)?,
        tenant: r.text(1)?,
        name: r.text(2)?,
        delivery: Delivery::parse(r.str(3)?).ok_or_else(|| corrupt("delivery"))?,
        endpoint: r.opt_text(4),
        authorization: r.opt_text(5),
        audience: r.text(6)?,
        format: Format::parse(r.str(7)?).ok_or_else(|| corrupt("format"))?,
        event_types: serde_json::from_str(r.str(8)?).map_err(|_| corrupt("event types"))?,
        alg: Alg::parse(r.str(9)?).ok_or_else(|| corrupt("alg"))?,
        secret: r.opt_text(10),
        state: StreamState::parse(r.str(11)?).ok_or_else(|| corrupt("state"))?,
        cursor: r.int(12)?,
        created: r.text(13)?,
        delivery_state: DeliveryState {
            delivered: r.opt_text(14),
            attempts: r.int(15)?.max(0) as u32,
            failing_since: r.opt_text(16),
            next_attempt: r.opt_text(17),
            last_error: r.opt_text(18),
        },
    })
}

fn opt_text(s: &mut Sql, v: Option<&str>) {
    match v {
        Some(t) => {
            s.bind_text(t);
        }
        None => {
            s.push("NULL");
        }
    }
}

#[async_trait]
impl<P: Pools> StreamStore for SqlStore<P> {
    async fn create_stream(&self, st: &Stream, poll_token_hash: Option<&str>) -> Result<()> {
        let mut tx = self.pools.write().await?;
        let mut s = sql(tx.dialect());
        s.push(
            "INSERT INTO scimd_streams (id, tenant, name, delivery, endpoint, auth_header, audience, format, \
             event_types, alg, secret, poll_token_hash, state, cursor, created) VALUES (",
        );
        s.bind_text(st.id.as_str()).push(", ").bind_text(st.tenant.as_str()).push(", ");
        s.bind_text(st.name.as_str()).push(", ").bind_text(st.delivery.as_str()).push(", ");
        opt_text(&mut s, st.endpoint.as_deref());
        s.push(", ");
        opt_text(&mut s, st.authorization.as_deref());
        s.push(", ").bind_text(st.audience.as_str()).push(", ").bind_text(st.format.as_str()).push(", ");
        s.bind_text(serde_json::to_string(&st.event_types).unwrap_or_else(|_| "[]".into()));
        s.push(", ").bind_text(st.alg.as_str()).push(", ");
        opt_text(&mut s, st.secret.as_deref());
        s.push(", ");
        opt_text(&mut s, poll_token_hash);
        s.push(", ").bind_text(st.state.as_str()).push(", ").bind(Bind::Int(st.cursor));
        s.push(", ").bind_text(st.created.as_str()).push(")");
        tx.exec(s).await.map_err(|e| e.unique_on("stream"))?;
        tx.commit().await?;
        Ok(())
    }

    async fn stream(&self, tenant: &str, id: &str) -> Result<Option<Stream>> {
        let mut s = sql(self.pools.dialect());
        s.push("SELECT ").push(COLUMNS).push(" FROM scimd_streams s WHERE s.tenant = ").bind_text(tenant);
        s.push(" AND s.id = ").bind_text(id);
        self.pools.read_one(s).await?.first().map(decode).transpose()
    }

    async fn streams(&self, tenant: &str) -> Result<Vec<Stream>> {
        let mut s = sql(self.pools.dialect());
        s.push("SELECT ").push(COLUMNS).push(" FROM scimd_streams s WHERE s.tenant = ").bind_text(tenant);
        s.push(" ORDER BY s.created, s.id");
        self.pools.read_one(s).await?.iter().map(decode).collect()
    }

    async fn poll_stream(&self, id: &str, token_hash: &str) -> Result<Option<(Stream, String)>> {
        let mut s = sql(self.pools.dialect());
        s.push("SELECT ").push(COLUMNS).push(", s.poll_token_hash FROM scimd_streams s");
        // A disabled tenant's streams answer nothing either.
        s.push(" JOIN scimd_tenants n ON n.slug = s.tenant AND n.state = 'active'");
        s.push(" WHERE s.id = ").bind_text(id).push(" AND s.delivery = 'poll' AND s.poll_token_hash = ");
        s.bind_text(token_hash);
        match self.pools.read_one(s).await?.first() {
            Some(r) => Ok(Some((decode(r)?, r.text(19)?))),
            None => Ok(None),
        }
    }

    async fn delete_stream(&self, tenant: &str, id: &str) -> Result<bool> {
        let mut tx = self.pools.write().await?;
        let d = tx.dialect();
        let mut s = sql(d);
        s.push("DELETE FROM scimd_stream_acks WHERE stream_id IN (SELECT id FROM scimd_streams WHERE tenant = ");
        s.bind_text(tenant).push(" AND id = ").bind_text(id).push(")");
        tx.exec(s).await?;
        let mut s = sql(d);
        s.push("DELETE FROM scimd_streams WHERE tenant = ").bind_text(tenant).push(" AND id = ").bind_text(id);
        let n = tx.exec(s).await?;
        tx.commit().await?;
        Ok(n > 0)
    }

    async fn set_stream_state(
        &self,
        tenant: &str,
        id: &str,
        state: StreamState,
        cursor: Option<i64>,
    ) -> Result<Option<Stream>> {
        let mut tx = self.pools.write().await?;
        let d = tx.dialect();
        let mut s = sql(d);
        s.push("UPDATE scimd_streams SET state = ").bind_text(state.as_str());
        // The lease goes too: a delivery in progress stops at its next step, so that it
        // neither sends past a pause nor records its old position over a replay.
        s.push(", attempts = 0, failing_since = NULL, next_attempt = NULL, lease_owner = NULL, lease_until = NULL");
        if let Some(c) = cursor {
            s.push(", cursor = ").bind(Bind::Int(c));
        }
        s.push(" WHERE tenant = ").bind_text(tenant).push(" AND id = ").bind_text(id);
        if tx.exec(s).await? == 0 {
            return Ok(None);
        }
        if cursor.is_some() {
            // A replay starts over: acknowledgements beyond the new cursor no longer hold.
            let mut s = sql(d);
            s.push("DELETE FROM scimd_stream_acks WHERE stream_id = ").bind_text(id);
            tx.exec(s).await?;
        }
        tx.commit().await?;
        self.stream(tenant, id).await
    }

    async fn set_stream_secret(&self, tenant: &str, id: &str, secret: &str) -> Result<bool> {
        let mut tx = self.pools.write().await?;
        let mut s = sql(tx.dialect());
        s.push("UPDATE scimd_streams SET lease_owner = NULL, lease_until = NULL, secret = ").bind_text(secret);
        s.push(" WHERE tenant = ").bind_text(tenant).push(" AND id = ").bind_text(id).push(" AND alg = 'HS256'");
        let n = tx.exec(s).await?;
        tx.commit().await?;
        Ok(n > 0)
    }

    async fn lease_due_streams(
        &self,
        owner: &str,
        busy: &[String],
        now: &str,
        until: &str,
        max: u32,
    ) -> Result<Vec<Stream>> {
        events::sequence(&self.pools).await?;
        // Due: active push streams of active tenants, with an event beyond their cursor,
        // whose retry time has come, and which no live lease holds.
        let due = |d: Dialect| {
            let mut s = sql(d);
            s.push(
                "SELECT s.id FROM scimd_streams s JOIN scimd_tenants n ON n.slug = s.tenant \
                 AND n.state = 'active' WHERE s.delivery = 'push' AND s.state = 'active'",
            );
            // A stream under a live lease, even this process's, is being delivered already.
            s.push(" AND (s.lease_until IS NULL OR s.lease_until < ").bind_text(now).push(")");
            s.push(" AND (s.next_attempt IS NULL OR s.next_attempt <= ").bind_text(now).push(")");
            // A delivery of this process that lost its lease (a pause, a replay, a new secret)
            // finishes first: it notices at its next step.
            for id in busy {
                s.push(" AND s.id <> ").bind_text(id.as_str());
            }
            s.push(
                " AND EXISTS (SELECT 1 FROM scimd_events e WHERE e.tenant = s.tenant AND e.seq > s.cursor) \
                 ORDER BY s.next_attempt, s.id LIMIT ",
            );
            s.bind(Bind::Int(i64::from(max)));
            s
        };
        // A read first: most looks find nothing due, and need no write transaction.
        if self.pools.read_one(due(self.pools.dialect())).await?.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.pools.write().await?;
        let d = tx.dialect();
        let mut s = sql(d);
        s.push("UPDATE scimd_streams SET lease_owner = ").bind_text(owner).push(", lease_until = ").bind_text(until);
        s.push(" WHERE id IN (").append(due(d));
        if d == Dialect::Postgres {
            // Two replicas leasing at once skip each other's rows instead of waiting.
            s.push(" FOR UPDATE OF s SKIP LOCKED");
        }
        s.push(") RETURNING id");
        let ids: Vec<String> =
            tx.rows(s).await?.iter().map(|r| r.text(0)).collect::<std::result::Result<_, DbError>>()?;
        tx.commit().await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut s = sql(self.pools.dialect());
        s.push("SELECT ").push(COLUMNS).push(" FROM scimd_streams s WHERE s.lease_owner = ").bind_text(owner);
        s.push(" AND s.id IN (");
        for (i, id) in ids.iter().enumerate() {
            if i > 0 {
                s.push(", ");
            }
            s.bind_text(id.as_str());
        }
        s.push(")");
        self.pools.read_one(s).await?.iter().map(decode).collect()
    }

    async fn renew_lease(&self, id: &str, owner: &str, until: &str) -> Result<bool> {
        let mut tx = self.pools.write().await?;
        let mut s = sql(tx.dialect());
        s.push("UPDATE scimd_streams SET lease_until = ").bind_text(until).push(" WHERE id = ").bind_text(id);
        s.push(" AND lease_owner = ").bind_text(owner);
        let n = tx.exec(s).await?;
        tx.commit().await?;
        Ok(n > 0)
    }

    async fn release_lease(&self, id: &str, owner: &str) -> Result<()> {
        let mut tx = self.pools.write().await?;
        let mut s = sql(tx.dialect());
        s.push("UPDATE scimd_streams SET lease_owner = NULL, lease_until = NULL WHERE id = ").bind_text(id);
        s.push(" AND lease_owner = ").bind_text(owner);
        tx.exec(s).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delivered(&self, id: &str, owner: &str, seq: i64, now: &str) -> Result<bool> {
        let mut tx = self.pools.write().await?;
        let mut s = sql(tx.dialect());
        s.push("UPDATE scimd_streams SET cursor = ").bind(Bind::Int(seq)).push(", delivered = ").bind_text(now);
        s.push(", attempts = 0, failing_since = NULL, next_attempt = NULL, last_error = NULL WHERE id = ");
        s.bind_text(id).push(" AND lease_owner = ").bind_text(owner).push(" AND cursor < ").bind(Bind::Int(seq));
        let n = tx.exec(s).await?;
        tx.commit().await?;
        Ok(n > 0)
    }

    async fn failed(&self, id: &str, owner: &str, f: &Failure) -> Result<()> {
        let mut tx = self.pools.write().await?;
        let mut s = sql(tx.dialect());
        s.push("UPDATE scimd_streams SET attempts = attempts + 1, last_error = ").bind_text(f.error.as_str());
        s.push(", next_attempt = ").bind_text(f.next_attempt.as_str());
        s.push(", failing_since = COALESCE(failing_since, ").bind_text(f.now.as_str()).push(")");
        if f.give_up {
            s.push(", state = 'failing'");
        }
        s.push(" WHERE id = ").bind_text(id).push(" AND lease_owner = ").bind_text(owner);
        tx.exec(s).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn acknowledge(&self, id: &str, seqs: &[i64], now: &str) -> Result<()> {
        if seqs.is_empty() {
            return Ok(());
        }
        let mut tx = self.pools.write().await?;
        let d = tx.dialect();
        // The stream's row first: concurrent polls of one stream acknowledge one at a time.
        let mut s = sql(d);
        s.push("UPDATE scimd_streams SET delivered = ").bind_text(now).push(" WHERE id = ").bind_text(id);
        s.push(" RETURNING cursor");
        let Some(row) = tx.row(s).await? else { return Ok(()) };
        let mut cursor = row.int(0)?;
        for chunk in seqs.chunks(200) {
            let mut s = sql(d);
            s.push("INSERT INTO scimd_stream_acks (stream_id, seq) VALUES ");
            let mut any = false;
            for seq in chunk.iter().filter(|s| **s > cursor) {
                if any {
                    s.push(", ");
                }
                s.push("(").bind_text(id).push(", ").bind(Bind::Int(*seq)).push(")");
                any = true;
            }
            if any {
                s.push(" ON CONFLICT (stream_id, seq) DO NOTHING");
                tx.exec(s).await?;
            }
        }
        // Past every event acknowledged in a row. (Events the stream does not want are
        // acknowledged by the poll that skips them.)
        let mut s = sql(d);
        s.push("SELECT seq FROM scimd_stream_acks WHERE stream_id = ").bind_text(id).push(" ORDER BY seq");
        let acked: std::collections::HashSet<i64> =
            tx.rows(s).await?.iter().map(|r| r.int(0)).collect::<std::result::Result<_, DbError>>()?;
        let mut s = sql(d);
        s.push("SELECT e.seq FROM scimd_events e JOIN scimd_streams k ON k.tenant = e.tenant WHERE k.id = ");
        s.bind_text(id).push(" AND e.seq > ").bind(Bind::Int(cursor)).push(" ORDER BY e.seq LIMIT ");
        s.bind(Bind::Int(acked.len() as i64 + 1));
        for row in tx.rows(s).await? {
            let seq = row.int(0)?;
            if !acked.contains(&seq) {
                break;
            }
            cursor = seq;
        }
        let mut s = sql(d);
        s.push("UPDATE scimd_streams SET cursor = ").bind(Bind::Int(cursor)).push(" WHERE id = ").bind_text(id);
        tx.exec(s).await?;
        let mut s = sql(d);
        s.push("DELETE FROM scimd_stream_acks WHERE stream_id = ").bind_text(id).push(" AND seq <= ");
        s.bind(Bind::Int(cursor));
        tx.exec(s).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn acknowledged(&self, id: &str) -> Result<Vec<i64>> {
        let mut s = sql(self.pools.dialect());
        s.push("SELECT seq FROM scimd_stream_acks WHERE stream_id = ").bind_text(id).push(" ORDER BY seq");
        Ok(self.pools.read_one(s).await?.iter().map(|r| r.int(0)).collect::<std::result::Result<_, DbError>>()?)
    }
}

#[async_trait]
impl<P: Pools> KeyStore for SqlStore<P> {
    async fn signing_keys(&self) -> Result<Vec<(String, String, String)>> {
        let mut s = sql(self.pools.dialect());
        s.push("SELECT kid, private_key, public_jwk FROM scimd_signing_keys ORDER BY created, kid");
        let rows = self.pools.read_one(s).await?;
        rows.iter().map(|r| Ok((r.text(0)?, r.text(1)?, r.text(2)?))).collect()
    }

    async fn add_signing_key(&self, kid: &str, secret: &str, public_jwk: &str, now: &str) -> Result<bool> {
        let mut tx = self.pools.write().await?;
        let mut s = sql(tx.dialect());
        s.push("INSERT INTO scimd_signing_keys (kid, alg, private_key, public_jwk, created) VALUES (");
        s.bind_text(kid).push(", 'ES256', ").bind_text(secret).push(", ").bind_text(public_jwk).push(", ");
        s.bind_text(now).push(") ON CONFLICT (kid) DO NOTHING");
        let n = tx.exec(s).await?;
        tx.commit().await?;
        Ok(n > 0)
    }

    async fn server_secret(&self) -> Result<String> {
        let mut s = sql(self.pools.dialect());
        s.push("SELECT secret FROM scimd_server_secret WHERE id = 1");
        let rows = self.pools.read_one(s).await?;
        rows.first().map(|r| r.text(0)).transpose()?.ok_or_else(|| StoreError::Backend("no server secret".into()))
    }
}
