//! A lock-free token bucket (GCRA: one atomic "theoretical arrival time").

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// `rate` tokens per second, at most `burst` at once.
#[derive(Debug)]
pub struct TokenBucket {
    start: Instant,
    /// Nanoseconds between tokens.
    interval: u64,
    /// `burst × interval`.
    tolerance: u64,
    /// Theoretical arrival time, in ns since `start`.
    tat: AtomicU64,
}

impl TokenBucket {
    /// A bucket refilled at `rate` per second (> 0), holding at most `burst` (≥ 1) tokens.
    /// It starts full.
    pub fn new(rate: f64, burst: u32) -> Self {
        let interval = if rate > 0.0 {
            (1e9 / rate).max(1.0) as u64
        } else {
            u64::MAX / 4
        };
        Self {
            start: Instant::now(),
            interval,
            tolerance: interval.saturating_mul(u64::from(burst.max(1))),
            tat: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Takes a token if one is available.
    pub fn try_acquire(&self) -> bool {
        let now = self.now();
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let new_tat = tat.max(now).saturating_add(self.interval);
            if new_tat - now > self.tolerance {
                return false;
            }
            match self
                .tat
                .compare_exchange_weak(tat, new_tat, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(t) => tat = t,
            }
        }
    }

    /// Whether the bucket is full (no token taken within the last `burst` intervals): such a
    /// bucket behaves exactly like a new one, so it can be dropped without loosening a limit.
    pub fn is_full(&self) -> bool {
        self.tat.load(Ordering::Relaxed) <= self.now()
    }

    /// Reserves the next token; returns how long to wait before using it.
    pub fn reserve(&self) -> Duration {
        let now = self.now();
        let prev = self
            .tat
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |tat| {
                Some(tat.max(now).saturating_add(self.interval))
            })
            .unwrap_or(now);
        let new_tat = prev.max(now).saturating_add(self.interval);
        Duration::from_nanos(new_tat.saturating_sub(self.tolerance).saturating_sub(now))
    }

    /// Waits for and takes the next token.
    pub async fn acquire(&self) {
        let wait = self.reserve();
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refuse() {
        let b = TokenBucket::new(1.0, 3);
        assert!(b.try_acquire() && b.try_acquire() && b.try_acquire());
        assert!(!b.try_acquire());
        assert!(!b.is_full());
        assert!(TokenBucket::new(1.0, 3).is_full());
    }

    #[test]
    fn reserve_spaces_tokens() {
        let b = TokenBucket::new(10.0, 1);
        assert_eq!(b.reserve(), Duration::ZERO);
        let w = b.reserve();
        assert!(
            w > Duration::from_millis(80) && w <= Duration::from_millis(100),
            "{w:?}"
        );
        let w = b.reserve();
        assert!(
            w > Duration::from_millis(180) && w <= Duration::from_millis(200),
            "{w:?}"
        );
    }
}
