//! Push delivery (RFC 8935): each stream's SETs POSTed to its receiver one at a time, in
//! sequence order, at least once. A failure is retried with exponential backoff and jitter;
//! after `retry_window` of failures the stream is marked failing and stops until an
//! operator resumes or replays it. One process at a time delivers a stream (a lease in the
//! database), so replicas share the work, and a process that dies leaves its streams to
//! another once its lease expires.

use crate::keys::KeyRing;
use crate::set;
use scimd_core::events::EventLog;
use scimd_core::streams::{DeliveryState, Failure, Stream, StreamStore};
use scimd_proto::value::now;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore};

/// How pushing behaves.
#[derive(Debug, Clone)]
pub struct PushSettings {
    /// The SETs' `iss`.
    pub issuer: String,
    /// How long a stream may keep failing before it is marked failing.
    pub retry_window: Duration,
    /// Time allowed for one receiver to answer.
    pub timeout: Duration,
    /// How long a lease holds without renewal: a process killed mid-delivery leaves its
    /// streams to another after this. Longer than `timeout`: a lease is renewed before an
    /// attempt, never during one.
    pub lease: Duration,
    /// How often to look for work written by other replicas.
    pub idle_poll: Duration,
    /// Streams delivered at once.
    pub concurrency: usize,
}

impl Default for PushSettings {
    fn default() -> Self {
        PushSettings {
            issuer: "scimd".into(),
            retry_window: Duration::from_secs(24 * 3600),
            timeout: Duration::from_secs(10),
            lease: Duration::from_secs(15),
            idle_poll: Duration::from_millis(200),
            concurrency: 16,
        }
    }
}

/// The first retry waits this long; each next one twice as long, up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Events read from the log at a time.
const BATCH: u32 = 100;
/// A stream's progress is written after this many events delivered, or this long.
const PROGRESS_EVERY: usize = 50;
const PROGRESS_AFTER: Duration = Duration::from_millis(200);
/// A delivery that has caught up keeps its stream this long, waiting for more events.
const LINGER: Duration = Duration::from_secs(2);
/// After a local write, delivery waits this long for more before it reads the log: the
/// writes of a burst cost one read (and on PostgreSQL one sequencer run), not one each.
const COALESCE: Duration = Duration::from_millis(10);

/// The delay before retry number `attempt` (1-based): exponential, with ±20% jitter so that
/// receivers coming back are not hit by every stream at once.
pub fn backoff(attempt: u32) -> Duration {
    let base = FIRST_BACKOFF.saturating_mul(1u32 << attempt.saturating_sub(1).min(16)).min(MAX_BACKOFF);
    let jitter = 0.8 + rand::random::<f64>() * 0.4;
    base.mul_f64(jitter)
}

/// The push worker of one process.
pub struct Pusher {
    pub streams: Arc<dyn StreamStore>,
    pub log: Arc<dyn EventLog>,
    pub keys: Arc<KeyRing>,
    pub settings: PushSettings,
    /// Woken after a local write, so that its events go out at once.
    pub wake: Arc<Notify>,
    client: reqwest::Client,
    owner: String,
    /// Streams being delivered by this process.
    busy: std::sync::Mutex<std::collections::HashSet<String>>,
}

fn later_text(by: Duration) -> String {
    let at = time::OffsetDateTime::now_utc() + by;
    scimd_proto::value::format_datetime(at)
}

/// Why a delivery failed, as the stream's `last_error` says it.
#[derive(Debug)]
struct DeliveryError(String);

impl Pusher {
    pub fn new(
        streams: Arc<dyn StreamStore>,
        log: Arc<dyn EventLog>,
        keys: Arc<KeyRing>,
        settings: PushSettings,
        wake: Arc<Notify>,
    ) -> Pusher {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("scimd/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("an HTTP client with these settings");
        let owner = format!("{}-{}", std::process::id(), uuid::Uuid::now_v7().simple());
        Pusher { streams, log, keys, settings, wake, client, owner, busy: Default::default() }
    }

    /// Delivers until `stop` says so.
    pub async fn run(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let slots = Arc::new(Semaphore::new(self.settings.concurrency.max(1)));
        loop {
            if *stop.borrow() {
                return;
            }
            // Listening before looking, so that a write committed meanwhile is not missed.
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let free = slots.available_permits() as u32;
            if free > 0 {
                let busy: Vec<String> = self.busy.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect();
                match self
                    .streams
                    .lease_due_streams(&self.owner, &busy, &now(), &later_text(self.settings.lease), free)
                    .await
                {
                    Ok(due) => {
                        for stream in due {
                            // A lease that ran out while its delivery is still running here.
                            if !self.busy.lock().unwrap_or_else(|e| e.into_inner()).insert(stream.id.clone()) {
                                continue;
                            }
                            let Ok(permit) = slots.clone().acquire_owned().await else { return };
                            let (me, stop) = (self.clone(), stop.clone());
                            tokio::spawn(async move {
                                let id = stream.id.clone();
                                me.deliver(stream, stop).await;
                                me.busy.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                                drop(permit);
                                // Events written during the delivery's last read: look again now.
                                me.wake.notify_waiters();
                            });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "event delivery: cannot read the streams"),
                }
            }
            tokio::select! {
                // Writes come in bursts: one look for all of them. (Streams being delivered
                // see their new events themselves.)
                _ = &mut woken => tokio::time::sleep(COALESCE).await,
                _ = tokio::time::sleep(self.settings.idle_poll) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Delivers a leased stream's events until none is left, a delivery fails or the lease
    /// is lost; then lets the lease go.
    async fn deliver(&self, stream: Stream, stop: tokio::sync::watch::Receiver<bool>) {
        let id = stream.id.clone();
        match self.deliver_leased(stream, stop).await {
            Ok(()) => {}
            Err(e) => tracing::warn!(stream = %id, error = %e, "event delivery interrupted"),
        }
        if let Err(e) = self.streams.release_lease(&id, &self.owner).await {
            tracing::debug!(stream = %id, error = %e, "could not release a lease (it will expire)");
        }
    }

    async fn deliver_leased(
        &self,
        stream: Stream,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), scimd_core::StoreError> {
        let Some(endpoint) = stream.endpoint.clone() else { return Ok(()) };
        let Some(signer) = self.keys.signer(&stream).await? else {
            tracing::error!(stream = %stream.id, "a stream without a usable signing key cannot push");
            return Ok(());
        };
        let mut cursor = stream.cursor;
        let (mut unsaved, mut saved_at) = (0usize, Instant::now());
        let (mut lease_at, mut idle_since) = (Instant::now(), Instant::now());
        loop {
            // Listening before reading, so that a write committed meanwhile is not missed.
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let events = self.log.events_after(&stream.tenant, cursor, BATCH).await?;
            if events.is_empty() {
                if !self.save(&stream, cursor, unsaved).await? {
                    return Ok(());
                }
                (unsaved, saved_at) = (0, Instant::now());
                // Caught up: the stream stays with this delivery a little, for the next
                // events of a burst, instead of being leased anew for each.
                if idle_since.elapsed() >= LINGER || *stop.borrow() {
                    return Ok(());
                }
                tokio::select! {
                    // One read for the writes of a burst, not one for each.
                    _ = &mut woken => tokio::time::sleep(COALESCE).await,
                    _ = tokio::time::sleep(self.settings.idle_poll) => {}
                    _ = stop.changed() => {}
                }
                // Still ours? A pause, resume or replay meanwhile took the lease away.
                if !self.keep_lease(&stream, &mut lease_at, true).await? {
                    return Ok(());
                }
                continue;
            }
            for event in events {
                // A long backlog or a slow receiver: keep the lease (it outlasts one attempt,
                // and is renewed before each when due).
                if !self.keep_lease(&stream, &mut lease_at, false).await? {
                    return Ok(());
                }
                if let Some(claims) = set::claims(&event, &stream, &self.settings.issuer) {
                    let jwt = signer.sign(&claims);
                    if let Err(DeliveryError(why)) = self.post(&stream, &endpoint, jwt).await {
                        self.save(&stream, cursor, unsaved).await?;
                        // A delivery since the stream was read ended its run of failures.
                        let run =
                            if cursor > stream.cursor { Default::default() } else { stream.delivery_state.clone() };
                        return self.fail(&stream, &run, why).await;
                    }
                }
                cursor = event.seq;
                unsaved += 1;
                if unsaved >= PROGRESS_EVERY || saved_at.elapsed() >= PROGRESS_AFTER {
                    if !self.save(&stream, cursor, unsaved).await? {
                        return Ok(());
                    }
                    (unsaved, saved_at) = (0, Instant::now());
                }
            }
            idle_since = Instant::now();
        }
    }

    /// Renews the lease when a third of it has passed since `renewed` (or now, when `now`);
    /// false when it was lost: another process, or an operator's action, has the stream.
    async fn keep_lease(
        &self,
        stream: &Stream,
        renewed: &mut Instant,
        now: bool,
    ) -> Result<bool, scimd_core::StoreError> {
        if !now && renewed.elapsed() <= self.settings.lease / 3 {
            return Ok(true);
        }
        let kept = self.streams.renew_lease(&stream.id, &self.owner, &later_text(self.settings.lease)).await?;
        *renewed = Instant::now();
        Ok(kept)
    }

    /// Records progress; false when the lease was lost (another process has the stream).
    async fn save(&self, stream: &Stream, cursor: i64, unsaved: usize) -> Result<bool, scimd_core::StoreError> {
        if unsaved == 0 {
            return Ok(true);
        }
        self.streams.delivered(&stream.id, &self.owner, cursor, &now()).await
    }

    async fn fail(&self, stream: &Stream, run: &DeliveryState, why: String) -> Result<(), scimd_core::StoreError> {
        let attempt = run.attempts + 1;
        let started = run
            .failing_since
            .as_deref()
            .and_then(|t| time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok());
        let failing_for = started.map(|s| time::OffsetDateTime::now_utc() - s).unwrap_or(time::Duration::ZERO);
        let give_up = failing_for >= self.settings.retry_window;
        let wait = backoff(attempt);
        if give_up {
            tracing::error!(stream = %stream.id, tenant = %stream.tenant, error = %why,
                "event stream failing: retried for longer than the retry window; stopped until resumed");
        } else {
            tracing::warn!(stream = %stream.id, tenant = %stream.tenant, attempt, retry_in = ?wait, error = %why,
                "event delivery failed; will retry");
        }
        let failure = Failure { error: why, next_attempt: later_text(wait), give_up, now: now() };
        self.streams.failed(&stream.id, &self.owner, &failure).await
    }

    /// One SET to the receiver (RFC 8935 §2): accepted on any 2xx (202 is what the RFC names).
    async fn post(&self, stream: &Stream, endpoint: &str, jwt: String) -> Result<(), DeliveryError> {
        let mut req = self
            .client
            .post(endpoint)
            .header(reqwest::header::CONTENT_TYPE, "application/secevent+jwt")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(jwt);
        if let Some(auth) = &stream.authorization {
            req = req.header(reqwest::header::AUTHORIZATION, auth);
        }
        let resp = req.send().await.map_err(|e| DeliveryError(describe(e)))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        // RFC 8935 §2.3: a 400 may say why, as {"err": …, "description": …}.
        let body = resp.text().await.unwrap_or_default();
        let detail = serde_json::from_str::<serde_json::Value>(&body).ok().and_then(|v| {
            let err = v.get("err")?.as_str()?.to_string();
            let description = v.get("description").and_then(|d| d.as_str()).unwrap_or("");
            Some(format!("{err}: {description}"))
        });
        Err(DeliveryError(match detail {
            Some(d) => format!("the receiver answered {status} ({d})"),
            None => format!("the receiver answered {status}"),
        }))
    }
}

fn describe(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "the receiver did not answer in time".into()
    } else if e.is_connect() {
        "could not connect to the receiver".into()
    } else {
        // Without the URL: the stream names its receiver already.
        format!("sending failed: {}", e.without_url())
    }
}
