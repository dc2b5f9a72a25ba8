//! Chart render + PNG encode, 1000×500: 3 series × 180 points (the
//! throttles chart) and 1 series × 1440 points (a day at 1-minute
//! resolution). Target: median ≤ 5 ms each in release.

use chrono::{Duration, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use scalebot::chart::{Axis, ChartData, SeriesData, Threshold, render_png};

fn data(series: usize, points: usize) -> ChartData {
    let end = Utc
        .with_ymd_and_hms(2026, 11, 27, 12, 0, 0)
        .single()
        .expect("date");
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

fn bench(c: &mut Criterion) {
    let three = data(3, 180);
    c.bench_function("chart 3x180 1000x500 png", |b| {
        b.iter(|| render_png(&three).expect("renders"))
    });
    let day = data(1, 1440);
    c.bench_function("chart 1x1440 1000x500 png", |b| {
        b.iter(|| render_png(&day).expect("renders"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
