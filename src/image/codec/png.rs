//! PNG via oxipng: raw pixels in, an optimised PNG out (oxipng picks the colour type and bit
//! depth, e.g. a palette when the image has few colours).

use crate::image::config::PngConfig;
use image::DynamicImage;
use oxipng::{BitDepth, ColorType, Options, RawImage};

/// Encodes Luma8 / Rgb8 / Rgba8 pixels.
pub fn encode(img: &DynamicImage, c: PngConfig) -> Result<Vec<u8>, String> {
    let (w, h) = (img.width(), img.height());
    let (color, data) = match img {
        DynamicImage::ImageLuma8(g) => (
            ColorType::Grayscale {
                transparent_shade: None,
            },
            g.as_raw().clone(),
        ),
        DynamicImage::ImageRgb8(p) => (
            ColorType::RGB {
                transparent_color: None,
            },
            p.as_raw().clone(),
        ),
        other => (ColorType::RGBA, other.to_rgba8().into_raw()),
    };
    let raw = RawImage::new(w, h, color, BitDepth::Eight, data).map_err(|e| e.to_string())?;
    let mut opts = Options::from_preset(c.level);
    opts.fast_evaluation = true;
    raw.create_optimized_png(&opts).map_err(|e| e.to_string())
}
