//! The demo's clock: simulated time that starts at a chosen instant and
//! runs `speed` times faster than the wall clock, so a drill reaches its
//! second escalation level within a minute of real time.

use std::time::Instant;

use chrono::{DateTime, Duration, Utc};

use crate::clock::Clock;

pub struct SimClock {
    started: Instant,
    origin: DateTime<Utc>,
    speed: f64,
}

impl SimClock {
    /// `speed` below 0.01 is taken as 0.01, so time always moves.
    pub fn new(origin: DateTime<Utc>, speed: f64) -> Self {
        Self {
            started: Instant::now(),
            origin,
            speed: if speed.is_finite() {
                speed.max(0.01)
            } else {
                1.0
            },
        }
    }

    pub fn speed(&self) -> f64 {
        self.speed
    }
}

impl Clock for SimClock {
    fn now(&self) -> DateTime<Utc> {
        let real = self.started.elapsed().as_secs_f64();
        let simulated = (real * self.speed * 1000.0) as i64;
        self.origin + Duration::milliseconds(simulated)
    }
}

/// A clock that stands still until moved: for tests of the model.
pub struct ManualClock(std::sync::Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(std::sync::Mutex::new(at))
    }

    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}
