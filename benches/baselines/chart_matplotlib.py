"""Baseline for benches/chart.rs: the same 1000x500 PNG chart (3 series x
180 points, and 1 series x 1440 points) in matplotlib, median of 30 runs."""
import io
import math
import statistics
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def render(series, points):
    fig, ax = plt.subplots(figsize=(10, 5), dpi=100)
    xs = list(range(points))
    for s in range(series):
        ax.plot(xs, [50 + 40 * math.sin(i / 20 + s) + i % 7 for i in xs], label=f"series {s}")
    ax.axhline(100, linestyle="--", color="#555555", label="Reserved concurrency")
    ax.set_title("persona-api: throttles, concurrency and invocations (last 3 h)")
    ax.set_xlabel("time (Europe/Berlin)")
    ax.set_ylabel("count")
    ax.legend(loc="upper left")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


for series, points in [(3, 180), (1, 1440)]:
    render(series, points)
    times = []
    for _ in range(30):
        t = time.perf_counter()
        render(series, points)
        times.append(time.perf_counter() - t)
    print(f"matplotlib {series}x{points} 1000x500 png: median {statistics.median(times) * 1000:.1f} ms")
