//! A minimal RGB raster: filled rectangles, circles and triangles, lines
//! and bitmap text, with no anti-aliasing (so colours stay exact and images
//! are byte-stable), encoded as PNG.

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder};

use super::font;

/// An RGB colour.
pub type Rgb = [u8; 3];

/// An RGB image in memory, row-major, 3 bytes per pixel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canvas {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

impl Canvas {
    /// A canvas filled with `background`.
    pub fn new(width: u32, height: u32, background: Rgb) -> Self {
        Self { width, height, pixels: background.repeat((width * height) as usize) }
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The colour at `(x, y)` (`None` outside the canvas).
    pub fn get(&self, x: u32, y: u32) -> Option<Rgb> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = ((y * self.width + x) * 3) as usize;
        Some([self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]])
    }

    /// Fills the horizontal span `x0..x1` (exclusive) of row `y`, clipped.
    fn span(&mut self, y: i64, x0: i64, x1: i64, c: Rgb) {
        if y < 0 || y >= self.height as i64 {
            return;
        }
        let (x0, x1) = (x0.max(0), x1.min(self.width as i64));
        if x0 >= x1 {
            return;
        }
        let row = (y as usize) * self.width as usize * 3;
        for px in self.pixels[row + x0 as usize * 3..row + x1 as usize * 3].chunks_exact_mut(3) {
            px.copy_from_slice(&c);
        }
    }

    /// Fills the rectangle `[x0, x1) × [y0, y1)`, clipped to the canvas.
    pub fn fill_rect(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, c: Rgb) {
        for y in y0..y1 {
            self.span(y, x0, x1, c);
        }
    }

    /// Fills the disc of radius `r` centred on pixel `(cx, cy)`: the pixels
    /// whose centres lie within `r` of its centre.
    pub fn fill_circle(&mut self, cx: i64, cy: i64, r: i64, c: Rgb) {
        for dy in -r..=r {
            // Largest dx with dx² + dy² <= r².
            let mut dx = ((r * r - dy * dy) as f64).sqrt() as i64;
            while dx * dx + dy * dy > r * r {
                dx -= 1;
            }
            while (dx + 1) * (dx + 1) + dy * dy <= r * r {
                dx += 1;
            }
            self.span(cy + dy, cx - dx, cx + dx + 1, c);
        }
    }

    /// Fills an upright isosceles triangle with its apex at `(cx, top)` and
    /// its base of width `2·half + 1` on row `top + height - 1`.
    pub fn fill_triangle(&mut self, cx: i64, top: i64, half: i64, height: i64, c: Rgb) {
        let h = height.max(1);
        for i in 0..h {
            let w = if h == 1 { half } else { half * i / (h - 1) };
            self.span(top + i, cx - w, cx + w + 1, c);
        }
    }

    /// Draws `text` with the built-in font, top-left corner at `(x, y)`,
    /// each font pixel a `scale × scale` block. Unknown characters are
    /// skipped (left blank).
    pub fn text(&mut self, x: i64, y: i64, text: &str, scale: u32, c: Rgb) {
        let s = scale.max(1) as i64;
        for (k, ch) in text.chars().enumerate() {
            let Some(g) = font::glyph(ch) else { continue };
            let gx = x + k as i64 * font::ADVANCE as i64 * s;
            for (row, bits) in g.iter().enumerate() {
                for col in 0..font::GLYPH_W as i64 {
                    if bits >> (font::GLYPH_W as i64 - 1 - col) & 1 == 1 {
                        let px = gx + col * s;
                        let py = y + row as i64 * s;
                        self.fill_rect(px, py, px + s, py + s, c);
                    }
                }
            }
        }
    }

    /// Encodes the canvas as an 8-bit RGB PNG (fast deflate).
    pub fn to_png(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.pixels.len() / 8);
        let enc = PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Sub);
        // Encoding into a Vec only fails on inconsistent dimensions, which
        // `new` rules out; an empty Vec is returned in that case.
        if enc.write_image(&self.pixels, self.width, self.height, ExtendedColorType::Rgb8).is_err() {
            return Vec::new();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Rgb = [255, 255, 255];
    const K: Rgb = [0, 0, 0];

    fn count(c: &Canvas, colour: Rgb) -> usize {
        (0..c.height())
            .flat_map(|y| (0..c.width()).map(move |x| (x, y)))
            .filter(|&(x, y)| c.get(x, y) == Some(colour))
            .count()
    }

    #[test]
    fn shapes_fill_the_expected_pixels() {
        let mut c = Canvas::new(40, 40, W);
        c.fill_rect(2, 3, 7, 5, K);
        assert_eq!(count(&c, K), 10);
        let mut c = Canvas::new(40, 40, W);
        c.fill_circle(20, 20, 10, K);
        let n = count(&c, K) as f64;
        assert!((n - std::f64::consts::PI * 100.0).abs() < 20.0, "{n}");
        let mut c = Canvas::new(40, 40, W);
        c.fill_triangle(20, 5, 10, 21, K);
        let n = count(&c, K) as f64;
        assert!((n - 21.0 * 21.0 / 2.0).abs() < 25.0, "{n}");
    }

    #[test]
    fn drawing_is_clipped() {
        let mut c = Canvas::new(10, 10, W);
        c.fill_rect(-5, -5, 50, 3, K);
        c.fill_circle(0, 0, 30, K);
        c.text(-20, 8, "88", 3, K);
        assert_eq!(c.get(9, 2), Some(K));
    }

    #[test]
    fn text_uses_the_font() {
        let mut c = Canvas::new(20, 10, W);
        c.text(1, 1, "1", 1, K);
        // Glyph `1`, row 0 is 00100: only column 2 is set.
        assert_eq!(c.get(3, 1), Some(K));
        assert_eq!(c.get(2, 1), Some(W));
        assert_eq!(count(&c, K), 10);
    }

    #[test]
    fn png_round_trips() {
        let mut c = Canvas::new(16, 8, W);
        c.fill_rect(0, 0, 4, 4, [200, 10, 20]);
        let png = c.to_png();
        let img = image::load_from_memory_with_format(&png, image::ImageFormat::Png).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (16, 8));
        assert_eq!(img.get_pixel(1, 1).0, [200, 10, 20]);
        assert_eq!(img.get_pixel(10, 5).0, W);
    }
}
