//! Glyphs for the indexed canvas, rasterised once per thread and size:
//! plotters' own text path outlines and rasterises every glyph of every
//! label on every chart. The placement is plotters' own (its ab_glyph font
//! backend), so the text lands on the same pixels as in the reference.

use std::collections::HashMap;

use ab_glyph::{Font, FontRef, GlyphId, ScaleFont};

/// Distinct (character, size) pairs kept before the cache starts over; a
/// chart uses four sizes and a few dozen characters.
const MAX_GLYPHS: usize = 4096;

struct Glyph {
    id: GlyphId,
    advance: f32,
    /// Covered pixels relative to the pen position: (x, y, coverage).
    pixels: Vec<(i32, i32, f32)>,
}

pub(super) struct Glyphs {
    font: Option<FontRef<'static>>,
    cache: HashMap<(char, u64), Glyph>,
}

impl Glyphs {
    pub(super) fn new() -> Self {
        Self {
            font: FontRef::try_from_slice(super::FONT).ok(),
            cache: HashMap::new(),
        }
    }

    /// Calls `pixel(x, y, coverage)` for each covered pixel of `text` set at
    /// `size` with its pen at (0, 0); false (and nothing drawn) without the
    /// font.
    pub(super) fn draw(
        &mut self,
        text: &str,
        size: f64,
        mut pixel: impl FnMut(i32, i32, f32),
    ) -> bool {
        let Some(font) = &self.font else {
            return false;
        };
        if self.cache.len() > MAX_GLYPHS {
            self.cache.clear();
        }
        let scaled = font.as_scaled(size as f32);
        let mut x_shift = 0f32;
        let mut prev: Option<GlyphId> = None;
        for c in text.chars() {
            let glyph = self
                .cache
                .entry((c, size.to_bits()))
                .or_insert_with(|| rasterise(&scaled, c, size));
            if let Some(p) = prev {
                x_shift += scaled.kern(p, glyph.id);
            }
            prev = Some(glyph.id);
            let pen = x_shift as i32;
            for &(x, y, coverage) in &glyph.pixels {
                pixel(x + pen, y, coverage);
            }
            x_shift += glyph.advance;
        }
        true
    }
}

/// One glyph as plotters places it: its box's left edge at the pen (the
/// side bearing is not applied) and its top `size / 2` below the anchor's
/// baseline offset.
fn rasterise<F: Font, S: ScaleFont<F>>(font: &S, c: char, size: f64) -> Glyph {
    let glyph = font.scaled_glyph(c);
    let id = glyph.id;
    let mut pixels = Vec::new();
    if let Some(outline) = font.outline_glyph(glyph) {
        let rect = outline.px_bounds();
        let y_shift = ((size as f32) / 2.0 + rect.min.y) as i32;
        outline.draw(|x, y, coverage| {
            if coverage > 0.0 {
                pixels.push((x as i32, y as i32 + y_shift, coverage));
            }
        });
    }
    Glyph {
        id,
        advance: font.h_advance(id),
        pixels,
    }
}
