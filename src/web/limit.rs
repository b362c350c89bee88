//! The per-account request rate of the network API: one token bucket per account, holding at
//! most one second's worth of requests (`web.rate_per_second`) and refilled continuously. Pure
//! over the times it is given, so it is tested without sleeping.
//!
//! The same buckets, keyed by client address, limit failed key checks (see `routes.rs`).
//!
//! What must always hold: an account never gets more than `rate` requests in any second after
//! its burst; a refused request is told how long to wait (whole seconds, at least 1, for
//! `Retry-After`); one account's traffic never takes another's tokens.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets by account.
pub struct RateLimiter {
    rate: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// `per_second` requests per second per account (at least 1).
    pub fn new(per_second: u32) -> RateLimiter {
        RateLimiter {
            rate: f64::from(per_second.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request for `account` at `now`: `Ok`, or `Err(seconds to wait)` for
    /// `Retry-After`.
    pub fn take(&self, account: &str, now: Instant) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        // Forget accounts idle long enough to be full again, so the map stays small.
        if buckets.len() > 10_000 {
            buckets.retain(|_, b| now.saturating_duration_since(b.last) < Duration::from_secs(2));
        }
        let bucket = buckets.entry(account.to_owned()).or_insert(Bucket {
            tokens: self.rate,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.rate);
        bucket.last = now.max(bucket.last);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.rate;
            // Whole seconds, rounded up: Retry-After has no fractions.
            Err((wait.ceil() as u64).max(1))
        }
    }
}

impl RateLimiter {
    /// Whether `key`'s bucket is empty at `now` (then `Some(seconds to wait)`), without taking
    /// from it: the failed-key limit is checked before a request and charged only on failure.
    pub fn exhausted(&self, key: &str, now: Instant) -> Option<u64> {
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = buckets.get(key)?;
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        let tokens = (bucket.tokens + elapsed * self.rate).min(self.rate);
        (tokens < 1.0).then(|| (((1.0 - tokens) / self.rate).ceil() as u64).max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate_per_account() {
        let limiter = RateLimiter::new(3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.take("shop", t0), Ok(()));
        }
        assert_eq!(limiter.take("shop", t0), Err(1));
        // Another account has its own bucket.
        assert_eq!(limiter.take("clinic", t0), Ok(()));
        // A third of a second later one token is back, not more.
        let t1 = t0 + Duration::from_millis(340);
        assert_eq!(limiter.take("shop", t1), Ok(()));
        assert_eq!(limiter.take("shop", t1), Err(1));
        // After a long pause the bucket holds one second's worth, no more.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(limiter.take("shop", t2), Ok(()));
        }
        assert!(limiter.take("shop", t2).is_err());
    }

    #[test]
    fn exhausted_peeks_without_taking() {
        let limiter = RateLimiter::new(2);
        let t0 = Instant::now();
        assert_eq!(limiter.exhausted("10.0.0.1", t0), None);
        assert_eq!(limiter.take("10.0.0.1", t0), Ok(()));
        assert_eq!(limiter.exhausted("10.0.0.1", t0), None);
        assert_eq!(limiter.take("10.0.0.1", t0), Ok(()));
        assert_eq!(limiter.exhausted("10.0.0.1", t0), Some(1));
        assert_eq!(limiter.exhausted("10.0.0.2", t0), None);
        let t1 = t0 + Duration::from_millis(600);
        assert_eq!(limiter.exhausted("10.0.0.1", t1), None);
    }

    #[test]
    fn zero_rate_is_one() {
        let limiter = RateLimiter::new(0);
        let t0 = Instant::now();
        assert_eq!(limiter.take("a", t0), Ok(()));
        assert_eq!(limiter.take("a", t0), Err(1));
    }
}
