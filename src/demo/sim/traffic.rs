//! The simulated account's traffic model: how much each function is asked
//! to do at any instant, and what the account's settings make of it.
//!
//! Every figure is a pure function of the seed, the instant and the history
//! of settings (reserved and provisioned concurrency, RDS Proxy, drills), so
//! any past window can be queried, a chart can show the three hours before
//! the demo started, and tests can assert exact values for a given seed.
//! Settings are step functions of time ([`Timeline`]): a change at `t`
//! affects the minutes from `t` on and leaves the minutes before it alone.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Timelike, Utc};

pub use crate::drills::Drill;

/// The account's Lambda concurrency limit.
pub const ACCOUNT_LIMIT: i32 = 1000;
/// AWS keeps at least this much of the account's concurrency unreserved.
pub const MIN_UNRESERVED: i32 = 100;
/// How long a drill's surge lasts.
pub const DRILL_MINUTES: i64 = 45;
/// The drill's surge reaches full strength after this many minutes.
const RAMP_MINUTES: f64 = 3.0;

/// What does not change about a function.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Concurrency wanted at the daily peak, before noise and spikes.
    pub peak: f64,
    /// Average duration of one invocation.
    pub duration_seconds: f64,
    pub memory_mb: u32,
}

/// A value that changes at known instants.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline<T> {
    initial: T,
    /// Ascending by time.
    changes: Vec<(DateTime<Utc>, T)>,
}

impl<T: Clone> Timeline<T> {
    pub fn new(initial: T) -> Self {
        Self {
            initial,
            changes: Vec::new(),
        }
    }

    pub fn at(&self, t: DateTime<Utc>) -> &T {
        self.changes
            .iter()
            .rev()
            .find(|(at, _)| *at <= t)
            .map(|(_, v)| v)
            .unwrap_or(&self.initial)
    }

    pub fn latest(&self) -> &T {
        self.changes.last().map(|(_, v)| v).unwrap_or(&self.initial)
    }

    pub fn set(&mut self, t: DateTime<Utc>, value: T) {
        // The simulated clock never goes back, but keep the order if it did.
        let i = self.changes.partition_point(|(at, _)| *at <= t);
        self.changes.insert(i, (t, value));
    }
}

/// One function's settings over time.
#[derive(Debug, Clone)]
pub struct FunctionState {
    pub profile: Profile,
    pub reserved: Timeline<Option<i32>>,
    /// By qualifier (alias or version).
    pub provisioned: BTreeMap<String, Timeline<Option<i32>>>,
}

impl FunctionState {
    fn provisioned_at(&self, t: DateTime<Utc>) -> i32 {
        self.provisioned.values().filter_map(|tl| *tl.at(t)).sum()
    }
}

/// Everything the model needs: the seed and the history of settings.
#[derive(Debug, Clone)]
pub struct Traffic {
    pub seed: u64,
    pub functions: BTreeMap<String, FunctionState>,
    /// When an RDS Proxy started pooling the database's connections.
    pub proxy_since: Option<DateTime<Utc>>,
    pub drills: Vec<(DateTime<Utc>, Drill)>,
}

/// One minute of one function.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FunctionMinute {
    /// Concurrency wanted.
    pub demand: f64,
    /// Concurrency available: reserved, or what the account leaves unreserved.
    pub capacity: f64,
    pub concurrent: f64,
    pub invocations: f64,
    pub throttles: f64,
    pub provisioned: f64,
}

impl Traffic {
    /// The runbook's five functions, as the demo starts: `persona-api` is
    /// reserved at 50 (its spikes throttle), three others are reserved
    /// low, `auth-handler` shares the unreserved pool.
    pub fn runbook(seed: u64) -> Self {
        let f =
            |peak, duration_seconds, memory_mb, reserved: Option<i32>, provisioned: Option<i32>| {
                let mut p = BTreeMap::new();
                p.insert("live".to_owned(), Timeline::new(provisioned));
                FunctionState {
                    profile: Profile {
                        peak,
                        duration_seconds,
                        memory_mb,
                    },
                    reserved: Timeline::new(reserved),
                    provisioned: p,
                }
            };
        let functions = BTreeMap::from([
            (
                "persona-api".to_owned(),
                f(42.0, 0.4, 1024, Some(50), Some(10)),
            ),
            ("vc-start".to_owned(), f(12.0, 1.2, 512, Some(20), None)),
            ("vc-result".to_owned(), f(10.0, 0.8, 512, Some(20), None)),
            ("auth-handler".to_owned(), f(30.0, 0.15, 256, None, Some(5))),
            (
                "upload-service".to_owned(),
                f(6.0, 2.5, 2048, Some(10), None),
            ),
        ]);
        Self {
            seed,
            functions,
            proxy_since: None,
            drills: Vec::new(),
        }
    }

    /// Reserved concurrency summed over all functions at `t`.
    pub fn reserved_total(&self, t: DateTime<Utc>) -> i32 {
        self.functions
            .values()
            .filter_map(|f| *f.reserved.at(t))
            .sum()
    }

    /// How strongly `drill` acts at `t`: 0 before and after, ramping to 1.
    fn drill_strength(&self, drill: Drill, t: DateTime<Utc>) -> f64 {
        self.drills
            .iter()
            .filter(|(_, d)| *d == drill)
            .map(|(start, _)| {
                let minutes = (t - *start).num_seconds() as f64 / 60.0;
                if minutes < 0.0 || minutes > DRILL_MINUTES as f64 {
                    0.0
                } else {
                    (minutes / RAMP_MINUTES).min(1.0)
                }
            })
            .fold(0.0, f64::max)
    }

    /// The capacity a function had when the last drill of this kind began:
    /// a drill asks for a multiple of it, so it throttles whatever the
    /// settings were.
    fn capacity_at_drill(&self, name: &str, drill: Drill, t: DateTime<Utc>) -> Option<f64> {
        let start = self
            .drills
            .iter()
            .rev()
            .find(|(at, d)| *d == drill && *at <= t)?
            .0;
        Some(self.capacity(name, start))
    }

    fn capacity(&self, name: &str, t: DateTime<Utc>) -> f64 {
        match self.functions.get(name).map(|f| *f.reserved.at(t)) {
            Some(Some(r)) => f64::from(r),
            _ => f64::from(ACCOUNT_LIMIT - self.reserved_total(t)),
        }
    }

    /// Concurrency `name` is asked for at `t`.
    pub fn demand(&self, name: &str, t: DateTime<Utc>) -> f64 {
        let Some(f) = self.functions.get(name) else {
            return 0.0;
        };
        let minute = t.timestamp().div_euclid(60);
        let noise = 1.0 + 0.08 * unit(self.seed, name, minute as u64);
        let mut demand = f.profile.peak * daily(t) * noise + self.spike(name, f.profile.peak, t);
        let throttling = if name == "persona-api" {
            self.drill_strength(Drill::Throttling, t)
        } else {
            0.0
        };
        if throttling > 0.0
            && let Some(cap) = self.capacity_at_drill(name, Drill::Throttling, t)
        {
            demand = demand.max(throttling * 1.7 * cap * noise);
        }
        let storm = self.drill_strength(Drill::Storm, t);
        if storm > 0.0
            && let Some(cap) = self.capacity_at_drill(name, Drill::Storm, t)
        {
            demand = demand.max(storm * 1.5 * cap.min(200.0) * noise);
        }
        demand.max(0.0)
    }

    /// An occasional burst: about one hour in ten has an 8-minute spike.
    fn spike(&self, name: &str, peak: f64, t: DateTime<Utc>) -> f64 {
        let hour = t.timestamp().div_euclid(3600) as u64;
        let h = mix(self.seed ^ 0x5eed_5b1e, name, hour);
        if h % 100 >= 10 {
            return 0.0;
        }
        let start = ((h >> 8) % 50) as i64;
        let minute_of_hour = t.timestamp().div_euclid(60).rem_euclid(60);
        if (start..start + 8).contains(&minute_of_hour) {
            peak * 0.8
        } else {
            0.0
        }
    }

    /// One minute of one function.
    pub fn function_minute(&self, name: &str, t: DateTime<Utc>) -> Option<FunctionMinute> {
        let f = self.functions.get(name)?;
        let demand = self.demand(name, t);
        let capacity = self.capacity(name, t);
        let concurrent = demand.min(capacity).max(0.0);
        let per_minute = 60.0 / f.profile.duration_seconds;
        Some(FunctionMinute {
            demand,
            capacity,
            concurrent,
            invocations: (concurrent * per_minute).round(),
            throttles: ((demand - capacity).max(0.0) * per_minute).round(),
            provisioned: f64::from(f.provisioned_at(t)),
        })
    }

    /// `matbakh-db`'s connections at `t`: about one per two or three
    /// running Lambda environments, plus background workers, a leak during the RDS drill;
    /// behind an RDS Proxy the database sees a small pool instead.
    pub fn db_connections(&self, t: DateTime<Utc>) -> f64 {
        let lambdas: f64 = self
            .functions
            .keys()
            .filter_map(|n| self.function_minute(n, t))
            .map(|m| m.concurrent)
            .sum();
        let minute = t.timestamp().div_euclid(60) as u64;
        let leak = 110.0 * self.drill_strength(Drill::Rds, t);
        let raw = 8.0 + 0.4 * lambdas + leak;
        let pooled = match self.proxy_since {
            Some(since) if since <= t => 10.0 + (raw * 0.1).min(20.0),
            _ => raw,
        };
        (pooled * (1.0 + 0.04 * unit(self.seed, "matbakh-db", minute))).round()
    }

    pub fn db_cpu(&self, t: DateTime<Utc>) -> f64 {
        (12.0 + 0.35 * self.db_connections(t)).clamp(0.0, 100.0)
    }

    /// USD spent on provisioned concurrency over `[from, to)`, sampled per
    /// minute: it follows the configured capacity, used or not.
    pub fn provisioned_spend(&self, from: DateTime<Utc>, to: DateTime<Utc>, price: f64) -> f64 {
        let mut total = 0.0;
        for f in self.functions.values() {
            let gb = f64::from(f.profile.memory_mb) / 1024.0;
            let mut t = from;
            while t < to {
                total += f64::from(f.provisioned_at(t)) * gb * 60.0 * price;
                t += Duration::minutes(1);
            }
        }
        total
    }
}

/// Daily rhythm: lowest at 03:00 UTC (30 % of peak), highest at 15:00.
pub fn daily(t: DateTime<Utc>) -> f64 {
    let hours = f64::from(t.hour()) + f64::from(t.minute()) / 60.0;
    let phase = (hours - 3.0) / 24.0 * std::f64::consts::TAU;
    0.3 + 0.7 * (0.5 - 0.5 * phase.cos())
}

/// A deterministic hash of the seed, a name and a number (FNV-1a, then
/// splitmix64): the same inputs give the same noise on every machine.
fn mix(seed: u64, name: &str, n: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in name.bytes().chain(n.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Noise in [-1, 1].
pub(crate) fn unit(seed: u64, name: &str, n: u64) -> f64 {
    (mix(seed, name, n) >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}
