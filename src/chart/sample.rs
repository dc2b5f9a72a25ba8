//! The two charts `benches/chart.rs` times, shared with the test that
//! checks the posted renderer's pixels against the reference on them.

use chrono::{Duration, TimeZone, Utc};

use super::{Axis, ChartData, SeriesData, Threshold};

/// A 1000×500 chart of `series` lines × `points` one-minute points ending
/// 2026-11-27 12:00 UTC: (3, 180) is the throttles chart, (1, 1440) a day.
pub fn benchmark_chart(series: usize, points: usize) -> ChartData {
    let end = Utc
        .with_ymd_and_hms(2026, 11, 27, 12, 0, 0)
        .single()
        .unwrap_or_default();
    let start = end - Duration::minutes(points as i64);
    let colors = [(214, 39, 40), (44, 160, 44), (31, 119, 180)];
    ChartData {
        title: "persona-api: throttles, concurrency and invocations (last 3 h)".into(),
        y_label: "throttles / concurrent executions".into(),
        y2_label: "invocations per minute".into(),
        start,
        end,
        tz: chrono_tz::Europe::Berlin,
        series: (0..series)
            .map(|s| SeriesData {
                label: format!("series {s}"),
                color: colors[s % 3],
                axis: if s == 2 { Axis::Right } else { Axis::Left },
                points: (0..points)
                    .map(|i| {
                        let x = i as f64 / 20.0 + s as f64;
                        (
                            start + Duration::minutes(i as i64),
                            50.0 + 40.0 * x.sin() + (i % 7) as f64,
                        )
                    })
                    .collect(),
            })
            .collect(),
        thresholds: vec![Threshold {
            label: "Reserved concurrency".into(),
            value: 100.0,
            color: (85, 85, 85),
        }],
        width: 1000,
        height: 500,
    }
}
