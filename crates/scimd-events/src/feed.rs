//! The plain JSON feed, for applications that do not want JWTs: the same content as the
//! SETs (RFC 9967 `sub_id`, `txn` and `events`, full form), with the event's sequence
//! number as the cursor to resume from. And `EventTail`, the same events in process.

use crate::set;
use scimd_core::StoreError;
use scimd_core::events::{EventLog, LoggedEvent};
use scimd_core::streams::{Alg, Delivery, DeliveryState, Format, Stream, StreamState};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// The most events one feed page holds.
pub const MAX_PAGE: u32 = 1000;

/// What the feed renders every event for: all events, in full.
fn everything(tenant: &str) -> Stream {
    Stream {
        id: "feed".into(),
        tenant: tenant.into(),
        name: "feed".into(),
        delivery: Delivery::Poll,
        endpoint: None,
        authorization: None,
        audience: String::new(),
        format: Format::Full,
        event_types: Vec::new(),
        alg: Alg::HS256,
        secret: None,
        state: StreamState::Active,
        cursor: 0,
        created: String::new(),
        delivery_state: DeliveryState::default(),
    }
}

/// One event of the feed: `{"seq", "time", "txn", "resource_type", "op", "request_id",
/// "sub_id", "events"}`.
pub fn item(event: &LoggedEvent) -> Value {
    let claims = set::claims(event, &everything(&event.tenant), "").unwrap_or_else(|| json!({}));
    let payload = |key: &str| event.payload.get(key).cloned().unwrap_or(Value::Null);
    json!({
        "seq": event.seq,
        "time": event.time,
        "txn": event.txn,
        "resource_type": event.resource_type,
        "op": payload(scimd_core::events::payload::OP),
        "request_id": payload(scimd_core::events::payload::REQUEST_ID),
        "sub_id": claims.get("sub_id").cloned().unwrap_or(Value::Null),
        "events": claims.get("events").cloned().unwrap_or_else(|| json!({})),
    })
}

/// A page of a tenant's feed after `after`: `{"events": […], "cursor": N, "more": bool}`,
/// where `cursor` is what to ask after next time.
pub async fn page(log: &dyn EventLog, tenant: &str, after: i64, limit: u32) -> Result<Value, StoreError> {
    let limit = limit.clamp(1, MAX_PAGE);
    let mut events = log.events_after(tenant, after, limit + 1).await?;
    let more = events.len() > limit as usize;
    events.truncate(limit as usize);
    let cursor = events.last().map(|e| e.seq).unwrap_or(after);
    Ok(json!({"events": events.iter().map(item).collect::<Vec<_>>(), "cursor": cursor, "more": more}))
}

/// A tenant's events in process, from a point in the log on, as they are committed: what an
/// application embedding scimd awaits to drive its side effects.
///
/// ```no_run
/// # async fn demo(log: std::sync::Arc<dyn scimd_core::events::EventLog>, wake: std::sync::Arc<tokio::sync::Notify>) {
/// let mut tail = scimd_events::feed::EventTail::new(log, "default", 0, wake);
/// while let Ok(event) = tail.next().await {
///     println!("{} {:?}", event.seq, event.payload["op"]);
///     // Keep event.seq: after a restart, EventTail::new(…, seq, …) resumes after it.
/// }
/// # }
/// ```
pub struct EventTail {
    log: Arc<dyn EventLog>,
    tenant: String,
    after: i64,
    wake: Arc<Notify>,
    ready: VecDeque<LoggedEvent>,
}

impl EventTail {
    /// From after sequence number `after` (0: from the oldest event kept). `wake` is the
    /// engine's (`Engine::changes`): woken after every write of this process; writes of
    /// other processes are seen within half a second.
    pub fn new(log: Arc<dyn EventLog>, tenant: &str, after: i64, wake: Arc<Notify>) -> EventTail {
        EventTail { log, tenant: tenant.into(), after, wake, ready: VecDeque::new() }
    }

    /// The next event, waiting for one as long as it takes.
    pub async fn next(&mut self) -> Result<LoggedEvent, StoreError> {
        loop {
            if let Some(e) = self.ready.pop_front() {
                self.after = e.seq;
                return Ok(e);
            }
            // Registered before reading, so that a write between the read and the wait wakes it.
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let events = self.log.events_after(&self.tenant, self.after, 100).await?;
            if events.is_empty() {
                tokio::select! {
                    _ = woken => {}
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
            self.ready.extend(events);
        }
    }
}
