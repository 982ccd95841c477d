//! Poll delivery (RFC 8936): a receiver POSTs to its stream's endpoint, acknowledging SETs
//! it has (`ack`) or could not process (`setErrs`), and gets up to `maxEvents` more, at
//! once or, with `returnImmediately: false`, as soon as there are some (long polling).
//! Unacknowledged SETs are handed out again.

use crate::keys::KeyRing;
use crate::set;
use scimd_core::StoreError;
use scimd_core::events::EventLog;
use scimd_core::streams::{Stream, StreamState, StreamStore};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// The most SETs one answer carries, whatever `maxEvents` asks for.
pub const MAX_EVENTS: usize = 1000;
/// How long a long poll waits for events.
pub const LONG_POLL: Duration = Duration::from_secs(30);

/// A poll request (RFC 8936 §2.4). Unknown members are ignored, as the RFC allows.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollRequest {
    pub max_events: Option<u64>,
    pub return_immediately: Option<bool>,
    #[serde(default)]
    pub ack: Vec<String>,
    #[serde(default)]
    pub set_errs: Map<String, Value>,
}

/// What a poll needs.
pub struct Poller {
    pub streams: Arc<dyn StreamStore>,
    pub log: Arc<dyn EventLog>,
    pub keys: Arc<KeyRing>,
    pub issuer: String,
    /// Woken after a local write (a long poll answers at once).
    pub wake: Arc<Notify>,
}

impl Poller {
    /// Answers one poll of `stream` (authenticated already): `{"sets": {jti: SET}, "moreAvailable": …}`.
    pub async fn poll(&self, stream: &Stream, req: PollRequest, long_poll: Duration) -> Result<Value, StoreError> {
        // Acknowledgements first: what was received, and what the receiver could not use.
        let mut done: Vec<i64> = req.ack.iter().filter_map(|j| set::seq_of(&stream.id, j)).collect();
        for (jti, err) in &req.set_errs {
            if let Some(seq) = set::seq_of(&stream.id, jti) {
                tracing::warn!(stream = %stream.id, tenant = %stream.tenant, jti, error = %err,
                    "a poll receiver reports a SET it could not process");
                done.push(seq);
            }
        }
        self.streams.acknowledge(&stream.id, &done, &scimd_proto::value::now()).await?;
        let max = req.max_events.map(|m| m.min(MAX_EVENTS as u64) as usize).unwrap_or(100);
        if max == 0 || stream.state == StreamState::Paused {
            return Ok(json!({"sets": {}, "moreAvailable": false}));
        }
        let deadline = tokio::time::Instant::now() + long_poll;
        loop {
            let (sets, more) = self.gather(stream, max).await?;
            let wait = req.return_immediately == Some(false);
            if !sets.is_empty() || !wait || tokio::time::Instant::now() >= deadline {
                return Ok(json!({"sets": sets, "moreAvailable": more}));
            }
            // Long polling: until a write here, or a look every quarter second (a write on
            // another replica), or the deadline.
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    /// Up to `max` unacknowledged SETs after the stream's cursor, and whether there are more.
    async fn gather(&self, stream: &Stream, max: usize) -> Result<(Map<String, Value>, bool), StoreError> {
        let Some(signer) = self.keys.signer(stream).await? else {
            return Err(StoreError::Backend(format!("stream {} has no usable signing key", stream.id)));
        };
        // The cursor may have moved since the stream was read (acknowledgements above).
        let stream = self.streams.stream(&stream.tenant, &stream.id).await?.unwrap_or_else(|| stream.clone());
        let acked: HashSet<i64> = self.streams.acknowledged(&stream.id).await?.into_iter().collect();
        let mut sets = Map::new();
        let mut skipped = Vec::new();
        let mut after = stream.cursor;
        loop {
            let events = self.log.events_after(&stream.tenant, after, (max as u32).max(100)).await?;
            let Some(last) = events.last().map(|e| e.seq) else { break };
            for event in &events {
                if acked.contains(&event.seq) {
                    continue;
                }
                if sets.len() == max {
                    self.skip(&stream, &skipped).await?;
                    return Ok((sets, true));
                }
                match set::claims(event, &stream, &self.issuer) {
                    Some(claims) => {
                        sets.insert(set::jti(&stream.id, event.seq), Value::String(signer.sign(&claims)));
                    }
                    // Not for this stream: received as far as the stream goes.
                    None => skipped.push(event.seq),
                }
            }
            after = last;
        }
        self.skip(&stream, &skipped).await?;
        Ok((sets, false))
    }

    async fn skip(&self, stream: &Stream, seqs: &[i64]) -> Result<(), StoreError> {
        self.streams.acknowledge(&stream.id, seqs, &scimd_proto::value::now()).await
    }
}
