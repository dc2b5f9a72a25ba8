//! Chart render + PNG encode, 1000×500: 3 series × 180 points (the
//! throttles chart) and 1 series × 1440 points (a day at 1-minute
//! resolution), each through the posted renderer (indexed colour) and the
//! truecolour reference in the same run. Target: median ≤ 2 ms and a PNG of
//! ≤ 60 KB for the posted one, in release.

use criterion::{Criterion, criterion_group, criterion_main};
use scalebot::chart::sample::benchmark_chart;
use scalebot::chart::{render_png, render_png_reference};

fn bench(c: &mut Criterion) {
    for (name, series, points) in [("3x180", 3, 180), ("1x1440", 1, 1440)] {
        let data = benchmark_chart(series, points);
        let fast = render_png(&data).expect("renders");
        let reference = render_png_reference(&data).expect("renders");
        println!(
            "chart {name} 1000x500: PNG {} bytes indexed, {} bytes truecolour reference",
            fast.len(),
            reference.len()
        );
        c.bench_function(&format!("chart {name} 1000x500 png"), |b| {
            b.iter(|| render_png(&data).expect("renders"))
        });
        c.bench_function(&format!("chart {name} 1000x500 png, reference"), |b| {
            b.iter(|| render_png_reference(&data).expect("renders"))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
