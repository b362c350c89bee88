//! The per-gateway rate limit (`max_per_second`, the figure in the provider's contract): a
//! token bucket. [`TokenBucket`] is pure (time passed in); [`RateLimiter`] shares one behind a
//! mutex so every link of a gateway draws from the same bucket. The bucket holds a tenth of a
//! second's worth (at least one token): a gateway that measures over short windows never
//! sees a burst of a whole second's quota, and the long-run rate is exactly the contract's.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// A token bucket of `rate` tokens per second.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`. `per_second` 0 is read as 1 (a link that never sends is a
    /// configuration error, not a rate).
    pub fn new(per_second: u32, now: Instant) -> TokenBucket {
        let rate = f64::from(per_second.max(1));
        let capacity = (rate / 10.0).max(1.0);
        TokenBucket {
            rate,
            capacity,
            tokens: capacity,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.capacity);
        self.at = now;
    }

    /// Takes one token, or says when the next one is due.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Instant> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - self.tokens) / self.rate;
            Err(now + Duration::from_secs_f64(wait))
        }
    }
}

/// A shared bucket, or no limit.
#[derive(Debug, Clone, Default)]
pub struct RateLimiter {
    bucket: Option<Arc<Mutex<TokenBucket>>>,
}

impl RateLimiter {
    pub fn new(max_per_second: Option<u32>) -> RateLimiter {
        RateLimiter {
            bucket: max_per_second
                .map(|r| Arc::new(Mutex::new(TokenBucket::new(r, Instant::now())))),
        }
    }

    /// No limit.
    pub fn unlimited() -> RateLimiter {
        RateLimiter { bucket: None }
    }

    pub fn try_take(&self, now: Instant) -> Result<(), Instant> {
        match &self.bucket {
            None => Ok(()),
            Some(b) => b.lock().unwrap_or_else(|p| p.into_inner()).try_take(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_long_run_rate_is_the_contracts() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(100, t0);
        // Simulate 10 s of a sender that always wants more, stepping 1 ms.
        let mut sent = 0;
        for ms in 0..10_000u64 {
            let now = t0 + Duration::from_millis(ms);
            while b.try_take(now).is_ok() {
                sent += 1;
            }
        }
        // 10 tokens of burst plus 100/s for 10 s.
        assert!((1000..=1011).contains(&sent), "{sent}");
    }

    #[test]
    fn an_empty_bucket_says_when_the_next_token_is_due() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, t0);
        assert!(b.try_take(t0).is_ok());
        let next = b.try_take(t0).unwrap_err();
        assert_eq!(next - t0, Duration::from_millis(100));
        assert!(b.try_take(next).is_ok());
    }

    #[test]
    fn unlimited_never_waits() {
        let r = RateLimiter::unlimited();
        let now = Instant::now();
        assert!((0..10_000).all(|_| r.try_take(now).is_ok()));
    }
}
