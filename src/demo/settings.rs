//! `[demo]`: the simulated account and the web chat of `scalebot demo`
//! (`serve` ignores it).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};

use crate::config::values;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoSettings {
    /// The names a visitor can pick in the web chat; `[roles]` lists them
    /// directly.
    pub users: Vec<String>,
    /// How many times faster than the wall clock simulated time runs.
    #[serde(deserialize_with = "speed")]
    pub speed: f64,
    /// The traffic model's seed: the same seed gives the same metrics.
    pub seed: u64,
    /// Where simulated time starts; the wall clock when left out.
    #[serde(default, deserialize_with = "values::optional_instant")]
    pub start: Option<DateTime<Utc>>,
}

/// A speed as the simulated clock takes it (the command line's `--speed`
/// is checked here too).
pub fn check_speed(speed: f64) -> Result<f64, &'static str> {
    if speed.is_finite() && speed > 0.0 {
        Ok(speed)
    } else {
        Err("must be a number above 0")
    }
}

fn speed<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    check_speed(f64::deserialize(d)?).map_err(serde::de::Error::custom)
}
