//! The fast path's drawing surface: plotters draws onto one byte per pixel,
//! an index into a palette of at most 256 colours, and the PNG is written
//! as an indexed-colour image.
//!
//! A chart has a handful of colours (background, grid, text, its lines);
//! anti-aliasing blends them, and each blend is looked up in the palette:
//! the nearest entry when one is close enough, a new entry while there is
//! room. A third of the bytes to draw into and to deflate, and the runs of
//! one index compress far better than runs of 3-byte colours.

use std::cell::RefCell;
use std::convert::Infallible;

use plotters::style::RGBColor;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
    rasterizer as raster,
};

use super::ChartError;
use super::glyphs::Glyphs;
use super::polygon;

type Rgb = [u8; 3];

/// A blend closer than this (largest channel difference) to a palette entry
/// takes that entry. Half the step between the 2% alpha levels anti-aliased
/// text produces over white would be ~3; 6 keeps grey ramps to ~20 entries
/// per ink, so eight line colours, black and the greys fit in 256, and is
/// far below what the eye tells apart on an anti-aliased edge.
const CLOSE_ENOUGH: u8 = 6;
/// Alpha is quantised to this many steps before a blend is looked up, so
/// that the memo below hits; one step moves a channel by at most 4 of 255.
const ALPHA_STEPS: u32 = 64;
/// BitMapBackend draws anything within 1/256 of opaque as opaque.
const OPAQUE: f64 = 1.0 - 1.0 / 256.0;
/// Slots in the blend memo (direct-mapped, a power of two).
const MEMO_SLOTS: usize = 4096;
/// A canvas larger than this (pixels) is not kept between renders, so an
/// odd huge chart does not pin its buffer to the thread.
const KEEP_PIXELS: usize = 2_000_000;

/// The palette and the memo of blends already resolved to an index.
struct Palette {
    colors: Vec<Rgb>,
    /// (key, index); key 0 is never a real key (alpha step 0 is not looked up).
    memo: Vec<(u64, u8)>,
}

impl Palette {
    fn new() -> Self {
        Self {
            colors: Vec::with_capacity(256),
            memo: vec![(0, 0); MEMO_SLOTS],
        }
    }

    /// Starts over with `seeds` as the first entries, in order, so that the
    /// chart's own colours are exact and the palette does not depend on what
    /// was drawn before.
    fn reset(&mut self, seeds: &[Rgb]) {
        self.colors.clear();
        self.memo.fill((0, 0));
        for &c in seeds {
            if self.colors.len() < 256 && !self.colors.contains(&c) {
                self.colors.push(c);
            }
        }
    }

    /// The index for `c`: the nearest entry if it is close enough, else a new
    /// entry while there is room, else the nearest.
    fn index_of(&mut self, c: Rgb) -> u8 {
        let mut best = (u32::MAX, 0usize);
        for (i, p) in self.colors.iter().enumerate() {
            let d: u32 = (0..3)
                .map(|k| {
                    let e = u32::from(p[k].abs_diff(c[k]));
                    e * e
                })
                .sum();
            if d < best.0 {
                best = (d, i);
            }
        }
        let close = self
            .colors
            .get(best.1)
            .is_some_and(|p| (0..3).all(|k| p[k].abs_diff(c[k]) <= CLOSE_ENOUGH));
        if !close && self.colors.len() < 256 {
            self.colors.push(c);
            return (self.colors.len() - 1) as u8;
        }
        best.1 as u8
    }

    /// The index of `rgb` drawn with `alpha` over the colour at index `dst`.
    #[inline]
    fn blend(&mut self, dst: u8, (r, g, b): (u8, u8, u8), alpha: f64) -> u8 {
        let step = (alpha.clamp(0.0, 1.0) * f64::from(ALPHA_STEPS)).round() as u64;
        if step == 0 {
            return dst;
        }
        let rgb = (u64::from(r) << 16) | (u64::from(g) << 8) | u64::from(b);
        // An opaque colour does not depend on what is under it.
        let under = if step == u64::from(ALPHA_STEPS) {
            0
        } else {
            u64::from(dst)
        };
        let key = (step << 32) | (under << 24) | rgb;
        let slot = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 52) as usize % MEMO_SLOTS;
        if self.memo[slot].0 == key {
            return self.memo[slot].1;
        }
        let a = step as u32;
        let back = self
            .colors
            .get(usize::from(dst))
            .copied()
            .unwrap_or([255; 3]);
        let mix = |fg: u8, bg: u8| {
            ((u32::from(fg) * a + u32::from(bg) * (ALPHA_STEPS - a) + ALPHA_STEPS / 2)
                / ALPHA_STEPS) as u8
        };
        let c = [mix(r, back[0]), mix(g, back[1]), mix(b, back[2])];
        let index = self.index_of(c);
        self.memo[slot] = (key, index);
        index
    }

    /// `RGBRGB…`, as the PNG `PLTE` chunk wants it.
    fn plte(&self) -> Vec<u8> {
        self.colors.iter().flatten().copied().collect()
    }
}

/// The pixels and palette of one chart.
struct Surface {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
    palette: Palette,
}

/// A surface and the glyphs drawn on it; kept per thread between renders.
pub(super) struct Canvas {
    surface: Surface,
    glyphs: Glyphs,
}

thread_local! {
    static CANVAS: RefCell<Option<Canvas>> = const { RefCell::new(None) };
}

impl Canvas {
    fn new() -> Self {
        Self {
            surface: Surface {
                width: 0,
                height: 0,
                pixels: Vec::new(),
                palette: Palette::new(),
            },
            glyphs: Glyphs::new(),
        }
    }

    fn prepare(&mut self, (width, height): (u32, u32), seeds: &[Rgb]) {
        let s = &mut self.surface;
        s.width = width;
        s.height = height;
        s.palette.reset(seeds);
        s.pixels.clear();
        // Index 0 is the first seed, the background.
        s.pixels.resize(width as usize * height as usize, 0);
    }

    /// Runs `f` on this thread's canvas, prepared for a chart of `size`
    /// whose own colours are `seeds` (the background first).
    pub(super) fn with<T>(size: (u32, u32), seeds: &[Rgb], f: impl FnOnce(&mut Canvas) -> T) -> T {
        CANVAS.with(|cell| match cell.try_borrow_mut() {
            Ok(mut slot) => {
                let canvas = slot.get_or_insert_with(Canvas::new);
                canvas.prepare(size, seeds);
                let out = f(canvas);
                if canvas.surface.pixels.len() > KEEP_PIXELS {
                    *slot = None;
                }
                out
            }
            // Only if a render ever nested in another on one thread.
            Err(_) => {
                let mut canvas = Canvas::new();
                canvas.prepare(size, seeds);
                f(&mut canvas)
            }
        })
    }

    pub(super) fn backend(&mut self) -> IndexedBackend<'_> {
        IndexedBackend { canvas: self }
    }

    /// The canvas as an indexed-colour PNG.
    pub(super) fn encode(&self) -> Result<Vec<u8>, ChartError> {
        let s = &self.surface;
        let enc_err = |e: png::EncodingError| ChartError::Encode(e.to_string());
        let mut out = Vec::with_capacity(64 * 1024);
        let mut enc = png::Encoder::new(&mut out, s.width, s.height);
        enc.set_color(png::ColorType::Indexed);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_palette(s.palette.plte());
        enc.set_compression(png::Compression::Fast);
        enc.set_filter(png::FilterType::Paeth);
        let mut writer = enc.write_header().map_err(enc_err)?;
        writer.write_image_data(&s.pixels).map_err(enc_err)?;
        writer.finish().map_err(enc_err)?;
        Ok(out)
    }
}

impl Surface {
    /// One pixel, clipped.
    #[inline]
    fn put(&mut self, (x, y): BackendCoord, color: BackendColor) {
        if x < 0 || y < 0 || x as u32 >= self.width || y as u32 >= self.height {
            return;
        }
        let i = y as usize * self.width as usize + x as usize;
        let alpha = if color.alpha >= 1.0 - 1.0 / 256.0 {
            1.0
        } else {
            color.alpha
        };
        self.pixels[i] = self.palette.blend(self.pixels[i], color.rgb, alpha);
    }

    /// Blends `rgb` at `alpha` (translucent) over the span `x0..x1` of row
    /// `y` (already clipped); one lookup per run of one colour under it.
    fn span(&mut self, y: usize, x0: usize, x1: usize, rgb: (u8, u8, u8), alpha: f64) {
        let w = self.width as usize;
        let row = &mut self.pixels[y * w + x0..y * w + x1];
        let mut last: Option<(u8, u8)> = None;
        for p in row {
            let to = match last {
                Some((from, to)) if from == *p => to,
                _ => self.palette.blend(*p, rgb, alpha),
            };
            last = Some((*p, to));
            *p = to;
        }
    }

    /// Fills the rectangle between two corners (inclusive), clipped.
    fn rect(&mut self, a: BackendCoord, b: BackendCoord, color: BackendColor) {
        let (w, h) = (self.width as i32, self.height as i32);
        let x0 = a.0.min(b.0).max(0);
        let x1 = (a.0.max(b.0) + 1).min(w);
        let y0 = a.1.min(b.1).max(0);
        let y1 = (a.1.max(b.1) + 1).min(h);
        if x0 >= x1 || y0 >= y1 {
            return;
        }
        let (x0, x1) = (x0 as usize, x1 as usize);
        if color.alpha >= OPAQUE {
            // One colour whatever is under it: look it up once.
            let i = self.palette.blend(0, color.rgb, 1.0);
            let w = self.width as usize;
            for y in y0 as usize..y1 as usize {
                self.pixels[y * w + x0..y * w + x1].fill(i);
            }
            return;
        }
        for y in y0..y1 {
            self.span(y as usize, x0, x1, color.rgb, color.alpha);
        }
    }
}

/// plotters' view of a [`Canvas`].
pub(super) struct IndexedBackend<'c> {
    canvas: &'c mut Canvas,
}

impl DrawingBackend for IndexedBackend<'_> {
    type ErrorType = Infallible;

    fn get_size(&self) -> (u32, u32) {
        (self.canvas.surface.width, self.canvas.surface.height)
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Infallible>> {
        Ok(())
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<Infallible>> {
        Ok(())
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Infallible>> {
        self.canvas.surface.put(point, color);
        Ok(())
    }

    /// Horizontal and vertical one-pixel lines (the grid, ticks, frames)
    /// as spans, as BitMapBackend does; the rest through plotters'
    /// rasterizer.
    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Infallible>> {
        if (from.0 == to.0 || from.1 == to.1) && style.stroke_width() == 1 {
            if style.color().alpha > 0.0 {
                self.canvas.surface.rect(from, to, style.color());
            }
            return Ok(());
        }
        raster::draw_line(self, from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Infallible>> {
        if fill {
            // BitMapBackend fills up to, not including, the bottom right.
            let br = (bottom_right.0 - 1, bottom_right.1 - 1);
            self.canvas.surface.rect(upper_left, br, style.color());
            return Ok(());
        }
        raster::draw_rect(self, upper_left, bottom_right, style, fill)
    }

    /// Every thick line (the series, the thresholds' dashes) ends here.
    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vertices: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Infallible>> {
        let vertices: Vec<BackendCoord> = vertices.into_iter().collect();
        polygon::fill_polygon(self, &vertices, style)
    }

    /// plotters' `draw_text` with the glyphs from the per-thread cache.
    fn draw_text<T: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &T,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Infallible>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let place = placement(text, style, pos)?;
        let Canvas { surface, glyphs } = &mut *self.canvas;
        // The only family registered (`ensure_font`); any other is drawn
        // the way plotters draws it.
        if style.family().as_str() == "sans-serif"
            && glyphs.draw(text, style.size(), |x, y, c| {
                surface.put(place(x, y), color.mix(f64::from(c)))
            })
        {
            return Ok(());
        }
        let drawn = style.draw(text, (0, 0), |x, y, c| {
            surface.put(place(x, y), c);
            Ok::<(), Infallible>(())
        });
        match drawn {
            Ok(r) => r.map_err(DrawingErrorKind::DrawingError),
            Err(e) => Err(DrawingErrorKind::FontError(Box::new(e))),
        }
    }
}

/// Where a glyph pixel at (x, y) from the pen lands: plotters' anchoring
/// and rotation of text (`DrawingBackend::draw_text`).
fn placement<T: BackendTextStyle>(
    text: &str,
    style: &T,
    pos: BackendCoord,
) -> Result<impl Fn(i32, i32) -> BackendCoord + use<T>, DrawingErrorKind<Infallible>> {
    let ((min_x, min_y), (max_x, max_y)) = style
        .layout_box(text)
        .map_err(|e| DrawingErrorKind::FontError(Box::new(e)))?;
    let (width, height) = (max_x - min_x, max_y - min_y);
    let dx = match style.anchor().h_pos {
        HPos::Left => 0,
        HPos::Right => -width,
        HPos::Center => -width / 2,
    };
    let dy = match style.anchor().v_pos {
        VPos::Top => 0,
        VPos::Center => -height / 2,
        VPos::Bottom => -height,
    };
    let trans = style.transform();
    Ok(move |x: i32, y: i32| {
        let (x, y) = trans.transform(x + dx - min_x, y + dy - min_y);
        (pos.0 + x, pos.1 + y)
    })
}

/// The colours a chart is made of, background first: what the palette
/// starts with so that they are exact.
pub(super) fn seeds(lines: impl Iterator<Item = (u8, u8, u8)>, extra: &[RGBColor]) -> Vec<Rgb> {
    let mut out: Vec<Rgb> = vec![[255, 255, 255], [0, 0, 0]];
    out.extend(extra.iter().map(|c| [c.0, c.1, c.2]));
    out.extend(lines.map(|(r, g, b)| [r, g, b]));
    out
}
