//! Transient conflicts (a PostgreSQL serialization failure or deadlock, a transaction whose
//! PostgreSQL backend was terminated before its commit, a SQLite database that stayed
//! locked) are retried inside the request, a few times with a short, jittered pause, before
//! they reach the client as a 503.

use scimd_core::stats::ConflictCounts;
use scimd_core::store::{Outage, StoreError};
use std::future::Future;
use std::time::Duration;

/// Tries in all, the first included.
const ATTEMPTS: u32 = 4;

/// Runs `op` until it succeeds, fails otherwise than by a conflict, or has been tried
/// `ATTEMPTS` times. Each run is a whole transaction, so a retry starts afresh. Every
/// conflict is counted in `seen`.
pub(crate) async fn retrying<T, F, Fut>(seen: &ConflictCounts, mut op: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut attempt = 1;
    loop {
        let result = op().await;
        let Err(StoreError::Unavailable(Outage::Conflict(cause), why)) = &result else { return result };
        seen.count(*cause);
        if attempt == ATTEMPTS {
            return result;
        }
        tracing::debug!(attempt, cause = %why, "transaction conflict; running the write again");
        tokio::time::sleep(pause(attempt)).await;
        attempt += 1;
    }
}

/// 2, 4, 8 ms, each plus up to as much again, so that writers that collided do not collide
/// again in step.
fn pause(attempt: u32) -> Duration {
    let base = 1u64 << attempt;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    Duration::from_micros(base * 1000 + u64::from(nanos) % (base * 1000))
}

#[cfg(test)]
mod tests {
    use super::*;
    use scimd_core::store::Conflict;
    use std::cell::Cell;

    #[tokio::test]
    async fn retries_conflicts_only_and_only_so_often() {
        let runs = Cell::new(0);
        let seen = ConflictCounts::default();
        let conflict = || StoreError::Unavailable(Outage::Conflict(Conflict::Deadlock), "deadlock".into());
        let r: Result<(), _> = retrying(&seen, || {
            runs.set(runs.get() + 1);
            async { Err(conflict()) }
        })
        .await;
        assert!(matches!(r, Err(StoreError::Unavailable(Outage::Conflict(Conflict::Deadlock), _))));
        assert_eq!(runs.get(), ATTEMPTS);
        let deadlocks = |seen: &ConflictCounts| seen.snapshot().into_iter().find(|(c, _)| *c == "deadlock").unwrap().1;
        assert_eq!(deadlocks(&seen), u64::from(ATTEMPTS), "each run that met a conflict is counted");
        runs.set(0);
        let r = retrying(&seen, || {
            runs.set(runs.get() + 1);
            let n = runs.get();
            async move { if n < 3 { Err(conflict()) } else { Ok(n) } }
        })
        .await;
        assert_eq!(r.unwrap(), 3, "a conflict that clears is invisible to the caller");
        assert_eq!(deadlocks(&seen), u64::from(ATTEMPTS) + 2, "but counted");
        runs.set(0);
        let r: Result<(), _> = retrying(&seen, || {
            runs.set(runs.get() + 1);
            async { Err(StoreError::NotFound) }
        })
        .await;
        assert!(matches!(r, Err(StoreError::NotFound)));
        assert_eq!(runs.get(), 1, "other errors are not retried");
    }
}
