//! A request rate limit per tenant (a token bucket each), off by default; a tenant's own
//! setting overrides the server's. Over the limit, a request gets 429 with `Retry-After`.
//! Per process: behind a load balancer, each replica counts its own share.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second; 0 means no limit.
    pub per_second: f64,
    /// Requests that may come at once after a quiet spell.
    pub burst: u32,
}

impl RateLimit {
    pub const DEFAULT_BURST: u32 = 50;
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug)]
pub struct Limiter {
    default: Option<RateLimit>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Limiter {
    /// With the server's limit (None: no limit unless a tenant has one of its own).
    pub fn new(default: Option<RateLimit>) -> Limiter {
        Limiter { default, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one request from `who`'s bucket under `own` limit (else the server's), or says
    /// how long until one is available.
    pub fn check(&self, who: &str, own: Option<RateLimit>) -> Result<(), Duration> {
        let Some(limit) = own.or(self.default).filter(|l| l.per_second > 0.0) else { return Ok(()) };
        let now = Instant::now();
        let burst = f64::from(limit.burst.max(1));
        let rate = limit.per_second;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let b = buckets.entry(who.to_string()).or_insert(Bucket { tokens: burst, at: now });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_limits_per_principal() {
        let l = Limiter::new(Some(RateLimit { per_second: 1.0, burst: 3 }));
        assert!((0..3).all(|_| l.check("a", None).is_ok()));
        let wait = l.check("a", None).unwrap_err();
        assert!(wait > Duration::from_millis(900) && wait <= Duration::from_secs(1), "{wait:?}");
        assert!(l.check("b", None).is_ok(), "another tenant has its own bucket");
        // A tenant's own limit wins: none at all, or a stricter one.
        let unlimited = Some(RateLimit { per_second: 0.0, burst: 1 });
        assert!((0..100).all(|_| l.check("c", unlimited).is_ok()));
        let strict = Some(RateLimit { per_second: 1.0, burst: 1 });
        assert!(l.check("d", strict).is_ok() && l.check("d", strict).is_err());
        assert!(Limiter::new(None).check("e", None).is_ok());
    }
}
