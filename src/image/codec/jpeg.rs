//! JPEG via mozjpeg: optimised Huffman tables, optional progressive scans, and optionally
//! mozjpeg's trellis quantisation (smaller at equal quality, several times the encode time).

use crate::image::config::JpegConfig;
use image::DynamicImage;
use mozjpeg::{qtable, ColorSpace, Compress};

/// Encodes Luma8 as grayscale JPEG and anything else as YCbCr 4:2:0.
pub(crate) fn encode(img: &DynamicImage, c: JpegConfig) -> Result<Vec<u8>, String> {
    let (cs, owned);
    let pixels: &[u8] = match img {
        DynamicImage::ImageLuma8(g) => {
            cs = ColorSpace::JCS_GRAYSCALE;
            g.as_raw()
        }
        DynamicImage::ImageRgb8(rgb) => {
            cs = ColorSpace::JCS_RGB;
            rgb.as_raw()
        }
        other => {
            cs = ColorSpace::JCS_RGB;
            owned = other.to_rgb8();
            owned.as_raw()
        }
    };
    let mut comp = Compress::new(cs);
    comp.set_size(img.width() as usize, img.height() as usize);
    if c.trellis {
        comp.set_quality(f32::from(c.quality));
    } else {
        // libjpeg-turbo's code path (no trellis search, no deringing), but with mozjpeg's
        // default quantisation table (N. Robidoux's, for luma and chroma) rather than Annex K's.
        comp.set_fastest_defaults();
        let q = f32::from(c.quality.clamp(1, 100));
        let table = qtable::NRobidoux.scaled(q, q);
        comp.set_luma_qtable(&table);
        comp.set_chroma_qtable(&table);
    }
    // Before the progressive switch: mozjpeg builds its scan script from this setting.
    comp.set_optimize_scans(c.optimize_scans);
    let area = u64::from(img.width()) * u64::from(img.height());
    if c.progressive && area >= c.progressive_min_pixels {
        comp.set_progressive_mode();
    }
    comp.set_optimize_coding(true);
    let mut started = comp.start_compress(Vec::new()).map_err(|e| e.to_string())?;
    started.write_scanlines(pixels).map_err(|e| e.to_string())?;
    started.finish().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The start-of-frame marker: 0xC0 baseline, 0xC2 progressive.
    fn frame_kind(jpeg: &[u8]) -> Option<u8> {
        jpeg.windows(2)
            .find(|w| w[0] == 0xFF && matches!(w[1], 0xC0..=0xC2))
            .map(|w| w[1])
    }

    #[test]
    fn progressive_only_from_the_pixel_threshold() {
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_fn(300, 200, |x, y| {
            image::Rgb([x as u8, y as u8, (x ^ y) as u8])
        }));
        let c = JpegConfig::default();
        assert_eq!(frame_kind(&encode(&img, c).expect("encodes")), Some(0xC0));
        let every = JpegConfig {
            progressive_min_pixels: 60_000,
            ..c
        };
        assert_eq!(
            frame_kind(&encode(&img, every).expect("encodes")),
            Some(0xC2)
        );
        let never = JpegConfig {
            progressive: false,
            progressive_min_pixels: 0,
            ..c
        };
        assert_eq!(
            frame_kind(&encode(&img, never).expect("encodes")),
            Some(0xC0)
        );
    }
}
