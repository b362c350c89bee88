//! The per-account request rate of the network API: one token bucket per account, holding at
//! most one second's worth of requests (`web.rate_per_second`) and refilled continuously. Pure
//! over the times it is given, so it is tested without sleeping.
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
    fn zero_rate_is_one() {
        let limiter = RateLimiter::new(0);
        let t0 = Instant::now();
        assert_eq!(limiter.take("a", t0), Ok(()));
        assert_eq!(limiter.take("a", t0), Err(1));
    }
}
