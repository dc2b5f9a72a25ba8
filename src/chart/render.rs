//! Rendering a chart to PNG bytes: one drawing (`draw`) on two surfaces,
//! the indexed canvas the bot posts and the truecolour reference.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use plotters::chart::DualCoordChartContext;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::indexed::{self, Canvas};
use super::{Axis, ensure_font};

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("drawing the chart failed: {0}")]
    Draw(String),
    #[error("encoding the chart as PNG failed: {0}")]
    Encode(String),
    #[error("chart size {0}x{1} is out of range")]
    Size(u32, u32),
}

#[derive(Debug, Clone)]
pub struct SeriesData {
    pub label: String,
    pub color: (u8, u8, u8),
    pub axis: Axis,
    /// Ascending by time.
    pub points: Vec<(DateTime<Utc>, f64)>,
}

#[derive(Debug, Clone)]
pub struct Threshold {
    pub label: String,
    pub value: f64,
    pub color: (u8, u8, u8),
}

#[derive(Debug, Clone)]
pub struct ChartData {
    pub title: String,
    pub y_label: String,
    pub y2_label: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub tz: Tz,
    pub series: Vec<SeriesData>,
    pub thresholds: Vec<Threshold>,
    pub width: u32,
    pub height: u32,
}

impl ChartData {
    pub fn has_data(&self) -> bool {
        self.series.iter().any(|s| !s.points.is_empty())
    }
}

fn draw_err<E: std::fmt::Debug>(e: E) -> ChartError {
    ChartError::Draw(format!("{e:?}"))
}

/// A y range from zero to a little above the largest value, so lines do not
/// touch the frame; at least 1 so that an all-zero series is drawn.
fn y_top(values: impl Iterator<Item = f64>) -> f64 {
    let max = values.filter(|v| v.is_finite()).fold(0.0_f64, f64::max);
    if max <= 0.0 { 1.0 } else { max * 1.12 }
}

/// Charts outside this range are refused rather than drawn.
fn check_size(data: &ChartData) -> Result<(u32, u32), ChartError> {
    let (w, h) = (data.width, data.height);
    if !(200..=4000).contains(&w) || !(150..=4000).contains(&h) {
        return Err(ChartError::Size(w, h));
    }
    Ok((w, h))
}

/// The chart as an indexed-colour PNG (see `indexed.rs`): what the bot
/// posts. The canvas, its palette memo and buffers are reused per thread.
pub fn render_png(data: &ChartData) -> Result<Vec<u8>, ChartError> {
    let size = check_size(data)?;
    ensure_font();
    let lines = data.series.iter().map(|s| s.color);
    let seeds = indexed::seeds(
        lines.chain(data.thresholds.iter().map(|t| t.color)),
        &[GRID_LIGHT, GRID_BOLD, NO_DATA_GREY],
    );
    Canvas::with(size, &seeds, |canvas| {
        {
            let root = canvas.backend().into_drawing_area();
            root.fill(&WHITE).map_err(draw_err)?;
            draw(&root, data)?;
        }
        canvas.encode()
    })
}

/// The same chart drawn in truecolour and written as an RGB PNG: the
/// renderer before the indexed one, kept as the reference its pixels are
/// checked against (tests and `benches/chart.rs`).
pub fn render_png_reference(data: &ChartData) -> Result<Vec<u8>, ChartError> {
    let (w, h) = check_size(data)?;
    ensure_font();
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        draw(&root, data)?;
        root.present().map_err(draw_err)?;
    }
    encode_rgb(&buf, w, h)
}

fn rgb((r, g, b): (u8, u8, u8)) -> RGBColor {
    RGBColor(r, g, b)
}

const GRID_LIGHT: RGBColor = RGBColor(236, 236, 236);
const GRID_BOLD: RGBColor = RGBColor(215, 215, 215);
const NO_DATA_GREY: RGBColor = RGBColor(120, 120, 120);

type Area<DB> = DrawingArea<DB, plotters::coord::Shift>;
type Coord = Cartesian2d<RangedDateTime<DateTime<Tz>>, RangedCoordf64>;
/// The chart with both y axes: the left one and the right (secondary) one.
type Chart<'a, DB> = DualCoordChartContext<'a, DB, Coord, Coord>;

fn draw<DB: DrawingBackend>(root: &Area<DB>, data: &ChartData) -> Result<(), ChartError> {
    let tz = data.tz;
    let start = data.start.with_timezone(&tz);
    let end = if data.end > data.start {
        data.end.with_timezone(&tz)
    } else {
        (data.start + chrono::Duration::minutes(1)).with_timezone(&tz)
    };
    let on = |axis: Axis| data.series.iter().filter(move |s| s.axis == axis);
    let has_right = on(Axis::Right).next().is_some();
    let left_top = y_top(
        on(Axis::Left)
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .chain(data.thresholds.iter().map(|t| t.value)),
    );
    let right_top = y_top(on(Axis::Right).flat_map(|s| s.points.iter().map(|p| p.1)));

    let mut chart = ChartBuilder::on(root)
        .caption(&data.title, ("sans-serif", 22))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .right_y_label_area_size(if has_right { 64 } else { 8 })
        .build_cartesian_2d(start..end, 0f64..left_top)
        .map_err(draw_err)?
        .set_secondary_coord(start..end, 0f64..right_top);

    draw_axes(&mut chart, data, end - start, has_right)?;
    draw_lines(&mut chart, data)?;
    draw_thresholds(&mut chart, data, start, end)?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(draw_err)?;

    if !data.has_data() {
        let (w, h) = root.dim_in_pixel();
        let style = ("sans-serif", 30).into_font().color(&NO_DATA_GREY);
        root.draw(&Text::new(
            "no data",
            (w as i32 / 2 - 52, h as i32 / 2 - 15),
            style,
        ))
        .map_err(draw_err)?;
    }
    Ok(())
}

/// The grid and both axes' labels; the time labels carry the date when the
/// chart spans more than a day and a half.
fn draw_axes<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    data: &ChartData,
    span: chrono::Duration,
    has_right: bool,
) -> Result<(), ChartError> {
    let fmt = if span > chrono::Duration::hours(36) {
        "%d.%m %H:%M"
    } else {
        "%H:%M"
    };
    let x_fmt = |d: &DateTime<Tz>| d.format(fmt).to_string();
    let y_fmt = |v: &f64| crate::format::number(*v);
    chart
        .configure_mesh()
        .x_labels(8)
        .y_labels(6)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .x_desc(format!("time ({})", data.tz))
        .y_desc(data.y_label.as_str())
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .light_line_style(GRID_LIGHT)
        .bold_line_style(GRID_BOLD)
        .draw()
        .map_err(draw_err)?;
    if has_right {
        chart
            .configure_secondary_axes()
            .y_label_formatter(&y_fmt)
            .y_desc(data.y2_label.as_str())
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 15))
            .draw()
            .map_err(draw_err)?;
    }
    Ok(())
}

/// Each series on its axis, with its legend entry.
fn draw_lines<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    data: &ChartData,
) -> Result<(), ChartError> {
    let tz = data.tz;
    for s in &data.series {
        let color = rgb(s.color);
        let style = color.stroke_width(2);
        let points = s.points.iter().map(|(t, v)| (t.with_timezone(&tz), *v));
        let anno = match s.axis {
            Axis::Left => chart
                .draw_series(LineSeries::new(points, style))
                .map_err(draw_err)?,
            Axis::Right => chart
                .draw_secondary_series(LineSeries::new(points, style))
                .map_err(draw_err)?,
        };
        let label = match s.axis {
            Axis::Left => s.label.clone(),
            Axis::Right => format!("{} (right axis)", s.label),
        };
        anno.label(label).legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(3))
        });
    }
    Ok(())
}

/// Each threshold as a dashed line across the chart, on the left axis.
fn draw_thresholds<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    data: &ChartData,
    start: DateTime<Tz>,
    end: DateTime<Tz>,
) -> Result<(), ChartError> {
    for t in &data.thresholds {
        let color = rgb(t.color);
        let line = [(start, t.value), (end, t.value)];
        chart
            .draw_series(DashedLineSeries::new(line, 8, 6, color.stroke_width(2)))
            .map_err(draw_err)?
            .label(format!("{} ({})", t.label, t.value))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(1))
            });
    }
    Ok(())
}

fn encode_rgb(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>, ChartError> {
    let mut out = Vec::with_capacity(rgb.len() / 8);
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Fast);
        let mut writer = enc
            .write_header()
            .map_err(|e| ChartError::Encode(e.to_string()))?;
        writer
            .write_image_data(rgb)
            .map_err(|e| ChartError::Encode(e.to_string()))?;
        writer
            .finish()
            .map_err(|e| ChartError::Encode(e.to_string()))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize, with_data: bool) -> ChartData {
        let end = DateTime::parse_from_rfc3339("2026-03-29T03:00:00Z")
            .expect("fixed date")
            .with_timezone(&Utc);
        let start = end - chrono::Duration::minutes(n as i64);
        let points = |k: f64| {
            (0..n)
                .map(|i| {
                    (
                        start + chrono::Duration::minutes(i as i64),
                        k * (i as f64).sin().abs(),
                    )
                })
                .collect::<Vec<_>>()
        };
        ChartData {
            title: "persona-api: throttles".into(),
            y_label: "count".into(),
            y2_label: "invocations".into(),
            start,
            end,
            tz: chrono_tz::Europe::Berlin,
            series: vec![
                SeriesData {
                    label: "Throttles".into(),
                    color: (214, 39, 40),
                    axis: Axis::Left,
                    points: if with_data { points(10.0) } else { vec![] },
                },
                SeriesData {
                    label: "Invocations".into(),
                    color: (31, 119, 180),
                    axis: Axis::Right,
                    points: if with_data { points(900.0) } else { vec![] },
                },
            ],
            thresholds: vec![Threshold {
                label: "Reserved concurrency".into(),
                value: 8.0,
                color: (90, 90, 90),
            }],
            width: 1000,
            height: 500,
        }
    }

    /// Width, height and RGB pixels, whatever the PNG's colour type.
    fn decode(png_bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let mut decoder = png::Decoder::new(png_bytes);
        decoder.set_transformations(png::Transformations::EXPAND);
        let mut reader = decoder.read_info().expect("valid png header");
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).expect("valid png frame");
        (info.width, info.height, buf)
    }

    #[test]
    fn renders_a_decodable_png_with_lines_in_the_series_colours() {
        let png_bytes = render_png(&sample(180, true)).expect("renders");
        let (w, h, pixels) = decode(&png_bytes);
        assert_eq!((w, h), (1000, 500));
        let red = pixels
            .chunks(3)
            .filter(|p| p[0] > 200 && p[1] < 60 && p[2] < 60)
            .count();
        assert!(red > 100, "the throttles line is drawn ({red} red pixels)");
    }

    #[test]
    fn no_data_still_renders() {
        let png_bytes = render_png(&sample(180, false)).expect("renders without data");
        let (w, _, pixels) = decode(&png_bytes);
        assert_eq!(w, 1000);
        // The "no data" text is grey; the frame alone has none of it.
        let grey = pixels
            .chunks(3)
            .filter(|p| p[0] == p[1] && p[1] == p[2] && (100..140).contains(&p[0]))
            .count();
        assert!(grey > 50, "the no-data notice is drawn ({grey})");
    }

    #[test]
    fn refuses_absurd_sizes() {
        let mut d = sample(10, true);
        d.width = 100_000;
        assert!(matches!(render_png(&d), Err(ChartError::Size(..))));
    }

    /// Pixels whose largest channel difference exceeds 48 (of 255): a blend
    /// step of the palette is ≤ 6, so a differing pixel is one the eye could
    /// see, not a rounding of an anti-aliased edge.
    fn differing_fraction(a: &[u8], b: &[u8]) -> f64 {
        assert_eq!(a.len(), b.len());
        let differing = a
            .chunks(3)
            .zip(b.chunks(3))
            .filter(|(p, q)| p.iter().zip(q.iter()).any(|(x, y)| x.abs_diff(*y) > 48))
            .count();
        differing as f64 / (a.len() / 3) as f64
    }

    /// At most this fraction of pixels may differ from the reference.
    /// Measured on the two benchmark charts (2026-12-02): 0.0006% (3x180)
    /// and 0.0004% (1x1440), a handful of pixels where lines cross, since
    /// every blend is exact to the palette's ±6. 0.1% leaves room for a
    /// font or plotters update moving a few edges and is eight times below
    /// a wrong picture: one of three lines in another colour alone makes
    /// 0.83% differ (`the_comparison_sees_a_wrong_picture`).
    const MAX_DIFFERING: f64 = 0.001;

    #[test]
    fn the_posted_png_is_small_and_matches_the_reference() {
        for (series, points) in [(3, 180), (1, 1440)] {
            let data = crate::chart::sample::benchmark_chart(series, points);
            let png_bytes = render_png(&data).expect("renders");
            assert!(
                png_bytes.len() <= 60_000,
                "{series}x{points}: {} bytes",
                png_bytes.len()
            );
            let (w, h, pixels) = decode(&png_bytes);
            assert_eq!((w, h), (1000, 500));
            let reference = render_png_reference(&data).expect("renders");
            let (_, _, expected) = decode(&reference);
            let fraction = differing_fraction(&pixels, &expected);
            eprintln!(
                "{series}x{points}: {} bytes (reference {}), {:.4}% of pixels differ",
                png_bytes.len(),
                reference.len(),
                fraction * 100.0
            );
            assert!(fraction <= MAX_DIFFERING, "{series}x{points}: {fraction}");
        }
    }

    #[test]
    fn the_comparison_sees_a_wrong_picture() {
        let data = crate::chart::sample::benchmark_chart(3, 180);
        let mut wrong = data.clone();
        wrong.series[0].color = (44, 160, 44);
        let (_, _, pixels) = decode(&render_png(&wrong).expect("renders"));
        let (_, _, expected) = decode(&render_png_reference(&data).expect("renders"));
        let fraction = differing_fraction(&pixels, &expected);
        assert!(fraction > MAX_DIFFERING * 2.0, "{fraction}");
    }

    #[test]
    fn a_render_does_not_depend_on_the_one_before() {
        let day = crate::chart::sample::benchmark_chart(1, 1440);
        let first = render_png(&day).expect("renders");
        render_png(&sample(180, true)).expect("renders");
        render_png(&sample(180, false)).expect("renders");
        assert!(render_png(&day).expect("renders") == first);
    }
}
