//! Per-channel pacing of posts. Slack allows about one message per second
//! per channel with short bursts; Discord has per-channel buckets too.
//! Posting at that pace in the first place leaves 429s for the exceptions,
//! so an alarm storm drains steadily instead of in retry waves.

use std::time::Duration;

use dashmap::DashMap;
use tokio::time::Instant;

/// A generic cell rate algorithm per channel: `burst` posts at once, then one
/// per `interval`. Slots are reserved in call order, so waiting posts keep
/// their order within a channel.
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    burst: u32,
    /// Per channel, the theoretical arrival time of the next post.
    next: DashMap<String, Instant>,
}

impl Pacer {
    pub fn new(interval: Duration, burst: u32) -> Self {
        Self {
            interval,
            burst: burst.max(1),
            next: DashMap::new(),
        }
    }

    /// How long a post to `channel` at `now` must wait; reserves its slot.
    pub fn reserve(&self, channel: &str, now: Instant) -> Duration {
        if self.interval.is_zero() {
            return Duration::ZERO;
        }
        let mut tat = self.next.entry(channel.to_owned()).or_insert(now);
        let start = (*tat).max(now);
        *tat = start + self.interval;
        let allowance = self.interval * self.burst;
        (*tat - now).saturating_sub(allowance)
    }

    /// Waits for this channel's next slot.
    pub async fn wait(&self, channel: &str) {
        let delay = self.reserve(channel, Instant::now());
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_burst_then_one_per_interval() {
        let pacer = Pacer::new(Duration::from_secs(1), 3);
        let t0 = Instant::now();
        let waits: Vec<Duration> = (0..5).map(|_| pacer.reserve("C1", t0)).collect();
        assert_eq!(
            waits,
            vec![
                Duration::ZERO,
                Duration::ZERO,
                Duration::ZERO,
                Duration::from_secs(1),
                Duration::from_secs(2)
            ]
        );
        // Another channel has its own budget.
        assert_eq!(pacer.reserve("C2", t0), Duration::ZERO);
        // Half a second later the next slot is half a second nearer.
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(pacer.reserve("C1", t1), Duration::from_millis(2500));
        // After a quiet spell the burst is available again.
        let t2 = t0 + Duration::from_secs(60);
        assert_eq!(pacer.reserve("C1", t2), Duration::ZERO);
    }

    #[test]
    fn zero_interval_never_waits() {
        let pacer = Pacer::new(Duration::ZERO, 1);
        let now = Instant::now();
        assert!((0..100).all(|_| pacer.reserve("C1", now).is_zero()));
    }
}
