//! plotters' scan fill of a polygon (plotters-backend 0.3.7,
//! `rasterizer::fill_polygon`), which draws every thick chart line: the
//! same spans and edge pixels in the same order, without its allocations
//! and clones per sweep line and with each edge's position computed once
//! per step instead of in every comparison of the sort. It was half of a
//! chart's drawing time. The test below holds it to plotters' pixels.

use std::cmp::Ordering;

use plotters_backend::{BackendCoord, BackendStyle, DrawingBackend, DrawingErrorKind};

/// An edge in sweep coordinates: `.0` along the sweep, `.1` across it.
#[derive(Clone, Copy)]
struct Edge {
    epoch: u32,
    total_epoch: u32,
    slave_begin: i32,
    slave_end: i32,
    /// Where the edge crosses the current sweep line.
    pos: f64,
}

impl Edge {
    fn new(mut from: BackendCoord, mut to: BackendCoord) -> Option<Edge> {
        if from.0 == to.0 {
            return None;
        }
        if from.0 > to.0 {
            std::mem::swap(&mut from, &mut to);
        }
        let mut edge = Edge {
            epoch: 0,
            total_epoch: (to.0 - from.0) as u32,
            slave_begin: from.1,
            slave_end: to.1,
            pos: 0.0,
        };
        edge.pos = edge.slave_pos();
        Some(edge)
    }

    fn master_pos(&self) -> i32 {
        (self.total_epoch - self.epoch) as i32
    }

    /// plotters' formula, operation for operation, so the sort and the
    /// pixels come out the same.
    fn slave_pos(&self) -> f64 {
        f64::from(self.slave_begin)
            + (i64::from(self.slave_end - self.slave_begin) * i64::from(self.epoch)) as f64
                / f64::from(self.total_epoch)
    }

    fn step(&mut self) {
        self.epoch += 1;
        self.pos = self.slave_pos();
    }
}

type Drawn<DB> = Result<(), DrawingErrorKind<<DB as DrawingBackend>::ErrorType>>;

pub(super) fn fill_polygon<DB: DrawingBackend, S: BackendStyle>(
    back: &mut DB,
    vertices: &[BackendCoord],
    style: &S,
) -> Drawn<DB> {
    let (Some(&first), Some(&last)) = (vertices.first(), vertices.last()) else {
        return Ok(());
    };
    let (mut xs, mut ys) = ((first.0, first.0), (first.1, first.1));
    for &(x, y) in vertices {
        xs = (xs.0.min(x), xs.1.max(x));
        ys = (ys.0.min(y), ys.1.max(y));
    }
    if xs.0 == xs.1 || ys.0 == ys.1 {
        return back.draw_line((xs.0, ys.0), (xs.1, ys.1), style);
    }
    let horizontal = xs.1 - xs.0 > ys.1 - ys.0;
    let flip = |(x, y): BackendCoord| if horizontal { (x, y) } else { (y, x) };
    let mut edges: Vec<(BackendCoord, BackendCoord)> = vertices
        .windows(2)
        .map(|w| (flip(w[0]), flip(w[1])))
        .chain(std::iter::once((flip(last), flip(first))))
        .collect();
    edges.sort_by_key(|(a, b)| a.0.min(b.0));
    for e in &mut edges {
        if e.0.0 > e.1.0 {
            std::mem::swap(&mut e.0, &mut e.1);
        }
    }
    let (low, high) = if horizontal { xs } else { ys };
    let mut next = 0;
    let mut active: Vec<Edge> = Vec::new();
    for sweep in low..=high {
        active.retain_mut(|e| {
            let keep = e.master_pos() > 0;
            if keep {
                e.step();
            }
            keep
        });
        while let Some(&(a, b)) = edges.get(next).filter(|e| e.0.0 <= sweep) {
            active.extend(Edge::new(a, b));
            next += 1;
        }
        active.sort_by(|a, b| a.pos.partial_cmp(&b.pos).unwrap_or(Ordering::Equal));
        spans(back, &active, sweep, horizontal, style)?;
    }
    Ok(())
}

/// Pairs the edges crossing one sweep line and fills between each pair,
/// as plotters does (including its pairing of edges that end here).
fn spans<DB: DrawingBackend, S: BackendStyle>(
    back: &mut DB,
    active: &[Edge],
    sweep: i32,
    horizontal: bool,
    style: &S,
) -> Drawn<DB> {
    let mut pair: (Option<Edge>, Option<Edge>) = (None, None);
    for &edge in active {
        if pair.0.is_none() {
            pair.0 = Some(edge);
        } else if pair.1.is_none() {
            pair.1 = Some(edge);
        }
        let (Some(a), Some(b)) = pair else {
            continue;
        };
        let (a_ends, b_ends) = (a.master_pos() == 0, b.master_pos() == 0);
        if a_ends != b_ends {
            pair = (Some(if a_ends { b } else { a }), None);
            continue;
        }
        pair = (None, None);
        let (from, to) = (a.pos, b.pos);
        if a_ends && b_ends && to - from > 1.0 {
            continue;
        }
        let color = style.color();
        if horizontal {
            back.draw_line(
                (sweep, from.ceil() as i32),
                (sweep, to.floor() as i32),
                &color,
            )?;
            back.draw_pixel((sweep, from.floor() as i32), color.mix(from.ceil() - from))?;
            back.draw_pixel((sweep, to.ceil() as i32), color.mix(to - to.floor()))?;
        } else {
            back.draw_line(
                (from.ceil() as i32, sweep),
                (to.floor() as i32, sweep),
                &color,
            )?;
            back.draw_pixel((from.floor() as i32, sweep), color.mix(from.ceil() - from))?;
            // plotters' sign, kept: this edge pixel is never drawn.
            back.draw_pixel((to.ceil() as i32, sweep), color.mix(to.floor() - to))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use plotters::prelude::*;
    use plotters_backend::rasterizer;

    /// A jagged two-pixel line like a busy series, made into a polygon the
    /// way plotters makes one; `tall` turns it on its side so the sweep
    /// runs the other way.
    fn polygon(tall: bool) -> Vec<(i32, i32)> {
        let path: Vec<(i32, i32)> = (0..600)
            .map(|i| {
                let x = 20 + i * 3 / 2;
                let y = 200 + ((f64::from(i) / 9.0).sin() * 120.0) as i32 + (i % 7) * 4;
                if tall { (y, x / 2) } else { (x, y) }
            })
            .collect();
        rasterizer::polygonize(&path, 2)
    }

    fn fill(with_plotters: bool, tall: bool) -> Vec<u8> {
        let mut buf = vec![255u8; 1000 * 500 * 3];
        {
            let mut back = BitMapBackend::with_buffer(&mut buf, (1000, 500));
            let color = RGBColor(214, 39, 40).to_backend_color();
            let v = polygon(tall);
            let r = if with_plotters {
                rasterizer::fill_polygon(&mut back, &v, &color)
            } else {
                super::fill_polygon(&mut back, &v, &color)
            };
            r.expect("draws");
        }
        buf
    }

    #[test]
    fn fills_exactly_what_plotters_fills() {
        for tall in [false, true] {
            let ours = fill(false, tall);
            let theirs = fill(true, tall);
            let drawn = theirs.iter().filter(|&&b| b != 255).count();
            assert!(drawn > 5000, "the polygon covers something ({drawn})");
            assert!(ours == theirs, "tall={tall}: the pixels differ");
        }
    }
}
