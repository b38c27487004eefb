//! A 64-bit difference hash (dHash): the image in grayscale, box-averaged down to 9×8 cells;
//! bit `8·row + col` is set when cell `col` is brighter than cell `col + 1` of its row. Re-encoding
//! and resizing barely change it; different pictures differ in about half the bits.
//!
//! Decoding goes through the image module's probe first, so an image whose header declares more
//! pixels than the limits allow (a bomb) is refused before a pixel is decoded.

use crate::image::decode;
use crate::image::format::{sniff, SourceFormat};
use crate::image::probe::{self, HeaderLimits, Probe};
use crate::image::Reason;
use image::{DynamicImage, GrayImage};

/// Why no dHash could be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreadable {
    /// Not one of the image formats pixgate reads.
    NotImage,
    /// The header declares more pixels (or a larger side) than the limits allow, or a JPEG has
    /// more scans than pixgate decodes: refused without decoding.
    Bomb,
    /// The decoder rejected the data (or the format is one pixgate detects but does not decode).
    Undecodable,
}

impl Unreadable {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Unreadable::NotImage => "not_image",
            Unreadable::Bomb => "bomb",
            Unreadable::Undecodable => "undecodable",
        }
    }
}

/// Checks the header of `data` against `limits` without decoding pixels: the format and the
/// declared dimensions. Animated and truncated images pass (their first frame / what decodes is
/// hashed); only what cannot be read or would cost too much is refused.
pub fn probe(data: &[u8], limits: HeaderLimits) -> Result<Probe, Unreadable> {
    let format = sniff(data).ok_or(Unreadable::NotImage)?;
    let p = probe::dimensions(data, format, limits).map_err(|r| match r {
        Reason::TooManyPixels => Unreadable::Bomb,
        _ => Unreadable::Undecodable,
    })?;
    if format == SourceFormat::Jpeg && probe::jpeg_scans(data) > probe::MAX_JPEG_SCANS {
        return Err(Unreadable::Bomb);
    }
    Ok(p)
}

/// The dHash of encoded image bytes, within `limits`.
pub fn of_bytes(data: &[u8], limits: HeaderLimits) -> Result<u64, Unreadable> {
    let probe = probe(data, limits)?;
    let decoded = decode::decode(data, &probe).map_err(|_| Unreadable::Undecodable)?;
    Ok(of_image(&decoded.image))
}

/// The dHash of decoded pixels (alpha is ignored).
pub fn of_image(img: &DynamicImage) -> u64 {
    of_gray(&img.to_luma8())
}

/// The dHash of a grayscale image: each of the 9×8 cells is the mean of the pixels it covers
/// (at least one pixel, so tiny images hash too).
fn of_gray(g: &GrayImage) -> u64 {
    let (w, h) = (g.width() as usize, g.height() as usize);
    if w == 0 || h == 0 {
        return 0;
    }
    let span = |i: usize, n: usize, cells: usize| {
        let lo = (i * n / cells).min(n - 1);
        let hi = ((i + 1) * n / cells).clamp(lo + 1, n);
        (lo, hi)
    };
    let raw = g.as_raw();
    let mut cells = [[0f64; 9]; 8];
    for (row, cells_row) in cells.iter_mut().enumerate() {
        let (y0, y1) = span(row, h, 8);
        for (col, cell) in cells_row.iter_mut().enumerate() {
            let (x0, x1) = span(col, w, 9);
            let mut sum = 0u64;
            for y in y0..y1 {
                sum += raw[y * w + x0..y * w + x1]
                    .iter()
                    .map(|&p| u64::from(p))
                    .sum::<u64>();
            }
            *cell = sum as f64 / ((y1 - y0) * (x1 - x0)) as f64;
        }
    }
    let mut hash = 0u64;
    for (row, r) in cells.iter().enumerate() {
        for col in 0..8 {
            if r[col] > r[col + 1] {
                hash |= 1 << (row * 8 + col);
            }
        }
    }
    hash
}

/// How many of the 64 bits differ.
pub fn distance(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageFormat, RgbImage};

    const LIMITS: HeaderLimits = HeaderLimits {
        max_pixels: 4_000_000,
        max_dimension: 4096,
    };

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// A picture with structure at every scale: a diagonal gradient, a bright disc, a dark bar.
    fn scene(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            let disc = (fx - 0.3).powi(2) + (fy - 0.4).powi(2) < 0.04;
            let bar = (0.6..0.75).contains(&fx) && fy > 0.2;
            let base = (fx * 120.0 + fy * 80.0) as u8;
            let v = if disc {
                240
            } else if bar {
                15
            } else {
                base
            };
            image::Rgb([v, v.saturating_add(10), v / 2])
        })
    }

    fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn re_encoded_and_resized_copies_stay_near_a_different_picture_does_not() {
        let original = DynamicImage::ImageRgb8(scene(400, 300));
        let png = encode(&original, ImageFormat::Png);
        let h = of_bytes(&png, LIMITS).unwrap();
        // Smaller, and through a lossy codec.
        let small = original.resize_exact(250, 180, image::imageops::FilterType::Triangle);
        let jpeg = encode(&DynamicImage::ImageRgb8(small.to_rgb8()), ImageFormat::Jpeg);
        let near = of_bytes(&jpeg, LIMITS).unwrap();
        assert!(distance(h, near) <= 4, "copy: {}", distance(h, near));
        // The same scene mirrored is another picture as far as dHash is concerned.
        let mirrored = DynamicImage::ImageRgb8(image::imageops::flip_horizontal(&scene(400, 300)));
        let far = of_bytes(&encode(&mirrored, ImageFormat::Png), LIMITS).unwrap();
        assert!(distance(h, far) > 20, "mirrored: {}", distance(h, far));
    }

    #[test]
    fn a_photo_fixture_survives_webp_re_encoding() {
        let jpeg = fixture("progressive.jpg");
        let h = of_bytes(&jpeg, LIMITS).unwrap();
        let img = image::load_from_memory(&jpeg).unwrap();
        let half = img.resize(160, 120, image::imageops::FilterType::Lanczos3);
        let webp = encode(&half, ImageFormat::WebP);
        assert!(distance(h, of_bytes(&webp, LIMITS).unwrap()) <= 4);
        let other = of_bytes(&fixture("orient-1.jpg"), LIMITS).unwrap();
        assert!(distance(h, other) > 10, "{}", distance(h, other));
    }

    #[test]
    fn bombs_and_non_images_are_refused_before_decoding() {
        assert_eq!(
            of_bytes(&fixture("bomb.png"), LIMITS),
            Err(Unreadable::Bomb)
        );
        assert_eq!(
            of_bytes(&fixture("bomb.jpg"), LIMITS),
            Err(Unreadable::Bomb)
        );
        assert_eq!(
            of_bytes(b"<html></html>", LIMITS),
            Err(Unreadable::NotImage)
        );
        assert_eq!(of_bytes(&[], LIMITS), Err(Unreadable::NotImage));
        // The animated GIF's first frame hashes.
        assert!(of_bytes(&fixture("animated.gif"), LIMITS).is_ok());
        let tight = HeaderLimits {
            max_pixels: 100,
            max_dimension: 4096,
        };
        assert_eq!(of_bytes(&fixture("gray.png"), tight), Err(Unreadable::Bomb));
    }

    #[test]
    fn bits_follow_brightness_steps() {
        // Brightness falls left to right: every cell is brighter than its right neighbour.
        let falling = GrayImage::from_fn(90, 80, |x, _| image::Luma([255 - x as u8 * 2]));
        assert_eq!(of_gray(&falling), u64::MAX);
        let rising = GrayImage::from_fn(90, 80, |x, _| image::Luma([x as u8 * 2]));
        assert_eq!(of_gray(&rising), 0);
        assert_eq!(distance(u64::MAX, 0), 64);
        // Smaller than the grid: still defined.
        let tiny = GrayImage::from_fn(3, 2, |x, _| image::Luma([200 - x as u8 * 50]));
        let _ = of_gray(&tiny);
    }
}
