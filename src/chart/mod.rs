//! Charts: definitions in `charts/*.toml`, rendered with plotters to PNG.

mod glyphs;
mod indexed;
pub mod plan;
mod polygon;
mod render;
pub mod sample;
pub mod spec;

pub use plan::Image;
pub use render::{ChartData, ChartError, SeriesData, Threshold, render_png, render_png_reference};
pub use spec::{Axis, ChartCatalog, ChartSpec, SeriesSpec, ThresholdSpec};

use std::sync::Once;

/// The font every chart uses, shipped in the binary so that no system font
/// is needed (DejaVu Sans; licence in `assets/fonts/`).
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

/// Registers the embedded font with plotters; cheap after the first call.
pub fn ensure_font() {
    REGISTER.call_once(|| {
        // The font is a fixed asset checked by the tests, so failing to
        // parse it is a build defect, not a runtime condition.
        if plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, FONT)
            .is_err()
        {
            tracing::error!("embedded chart font failed to load; charts will have no text");
        }
    });
}
